"""What the command-line tools share: user errors -> message + exit 2, progress, device."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Callable

from .._version import __version__
from ..devices import resolve_device
from ..errors import StyleBankError
from ..progress import Progress

__all__ = [
    "EXIT_USER_ERROR",
    "PRECISION_FLAGS",
    "Progress",
    "add_precision_option",
    "resolve_device",
    "run_cli",
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# --precision -> the Stylizer's bfloat16 argument
PRECISION_FLAGS = {"auto": None, "float32": False, "bfloat16": True}


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=sorted(PRECISION_FLAGS),
        default="auto",
        help="auto (default): bfloat16 on CPUs that compute it natively (AVX512-BF16, AMX), "
        "else float32",
    )


def run_cli(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    """Parse `argv` and run `body`; a user's mistake prints one line and returns 2."""
    parser.add_argument("--version", action="version", version=f"stylebank_fast {__version__}")
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2, already printed)
        return int(done.code or 0)
    try:
        return body(args)
    except StyleBankError as error:
        if str(error):  # empty: another rank of the run said what went wrong
            print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
