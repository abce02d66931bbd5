"""Progress lines for long work (training, learning a style): steps, losses, rate, time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Prints `step i/n | losses | steps/s | time left`, at most every `every_s` seconds
    (`unit` names what is counted: "frame" prints `frame i/n | ... frames/s`)."""

    def __init__(
        self, every_s: float = 5.0, stream: TextIO | None = None, unit: str = "step"
    ) -> None:
        self.every_s = every_s
        self.unit = unit
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
        terms = "".join(f"{name} {value:.4g} | " for name, value in losses.items())
        left = _duration((steps - step) / rate) if rate > 0 else "?"
        print(
            f"{self.unit} {step}/{steps} | {terms}{rate:.2f} {self.unit}s/s | {left} left",
            file=self.stream or sys.stderr,
            flush=True,
        )
