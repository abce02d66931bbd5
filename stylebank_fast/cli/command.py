"""`stylebank-fast COMMAND ...`: one console script for the command-line tools.

    stylebank-fast stylize photo.jpg -o out.jpg --style starry_night
    stylebank-fast train ...    stylebank-fast add-style ...    stylebank-fast export ...
    stylebank-fast serve [--port 8000]
    stylebank-fast --version

Each command is the same as `python -m stylebank_fast.<command>` (add-style: add_style).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from .._version import __version__

COMMANDS = {
    "stylize": "stylize",
    "train": "train",
    "add-style": "add_style",
    "export": "export",
    "serve": "serve",
}
_USAGE = f"usage: stylebank-fast {{{','.join(COMMANDS)}}} [options]   (--help after a command)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"{_USAGE}\n\n{__doc__.strip()}")
        return 0 if args else 2
    if args[0] == "--version":
        print(f"stylebank-fast {__version__}")
        return 0
    name = COMMANDS.get(args[0]) or (args[0] if args[0] in COMMANDS.values() else None)
    if name is None:
        print(f"stylebank-fast: unknown command {args[0]!r}\n{_USAGE}", file=sys.stderr)
        return 2
    return importlib.import_module(f"stylebank_fast.cli.{name}").main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
