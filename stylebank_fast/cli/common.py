"""What the command-line tools share: user errors -> message + exit 2, progress, device."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Callable, TextIO

from .._version import __version__
from ..devices import resolve_device
from ..errors import StyleBankError

__all__ = ["EXIT_USER_ERROR", "Progress", "resolve_device", "run_cli"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Prints `step i/n | losses | steps/s | time left`, at most every `every_s` seconds."""

    def __init__(self, every_s: float = 5.0, stream: TextIO | None = None) -> None:
        self.every_s = every_s
        self.stream = stream  # None: sys.stderr at the time of printing
        self._first_step: int | None = None
        self._last_print = float("-inf")

    def __call__(self, step: int, steps: int, losses: dict, seconds: float) -> None:
        if self._first_step is None:
            self._first_step = step - 1
        now = time.monotonic()
        if now - self._last_print < self.every_s and step != steps:
            return
        self._last_print = now
        rate = (step - self._first_step) / max(seconds, 1e-9)
        terms = " ".join(f"{name} {value:.4g}" for name, value in losses.items())
        left = _duration((steps - step) / rate) if rate > 0 else "?"
        print(
            f"step {step}/{steps} | {terms} | {rate:.2f} steps/s | {left} left",
            file=self.stream or sys.stderr,
            flush=True,
        )
