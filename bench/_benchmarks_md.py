"""BENCHMARKS.md: each benchmark script owns one section and rewrites only that."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = ("# Benchmarks\n\nEvery result is a ratio against a peer run in the same invocation, on this 2-core "
          "machine; absolute numbers are context only.\n")


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section that starts with `heading` (up to the next heading of any level: a '### '
    subsection after it belongs to another script) with `section`, or append it; the file is made if
    missing."""
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^##+ |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")
