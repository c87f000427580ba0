"""Shared ``main`` of the generators: write the files, or ``--check`` that they are up to date."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(doc: str, tool: str, directory: Path, render: Callable[[], dict[str, str]],
         argv: list[str] | None = None) -> int:
    """Write ``render()``'s files into ``directory``; with ``--check``, exit 1 if one is stale."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for fname, text in render().items():
        path = directory / fname
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path.relative_to(REPO)))
        else:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"out of date (run python tools/{tool}): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0
