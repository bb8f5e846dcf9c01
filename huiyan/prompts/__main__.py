"""`python -m huiyan.prompts [SOUNDS_DIR] [--force]`: render the voice prompts (default: <data_dir>/sounds)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from huiyan.prompts.synth import PromptError, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m huiyan.prompts", description=__doc__)
    parser.add_argument("sounds_dir", nargs="?", type=Path, help="default: <settings.data_dir>/sounds")
    parser.add_argument("--force", action="store_true", help="re-render every file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sounds_dir = args.sounds_dir
    if sounds_dir is None:
        from huiyan.config.settings import load_settings

        sounds_dir = load_settings().data_dir / "sounds"
    try:
        written = generate(sounds_dir, force=args.force)
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} file(s) written in {sounds_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
