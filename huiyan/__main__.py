"""`python -m huiyan` is the same as the `huiyan` console script."""

from huiyan.cli import main

raise SystemExit(main())
