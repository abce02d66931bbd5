"""Progress lines for long work (training, learning a style, stylizing a large image): how far,
the rate or share done, and the time left."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

__all__ = ["Progress", "ProgressFn", "WorkProgress"]

# on_progress(step, steps, losses, seconds): called after every step of training or learning a
# style (on rank 0 only; losses are the means over all ranks); `step` counts from 1.
ProgressFn = Callable[[int, int, dict, float], None]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class _Lines:
    """Prints a line at most every `every_s` seconds (and always the last one)."""

    def __init__(self, every_s: float, stream: TextIO | None) -> None:
        self.every_s = every_s
        self.stream = stream  # None: sys.stderr at the time of printing
        self._last_print = float("-inf")

    def due(self, last: bool) -> bool:
        now = time.monotonic()
        if now - self._last_print < self.every_s and not last:
            return False
        self._last_print = now
        return True

    def print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)


class Progress(_Lines):
    """Prints `step i/n | losses | steps/s | time left`, at most every `every_s` seconds
    (`unit` names what is counted: "frame" prints `frame i/n | ... frames/s`)."""

    def __init__(
        self, every_s: float = 5.0, stream: TextIO | None = None, unit: str = "step"
    ) -> None:
        super().__init__(every_s, stream)
        self.unit = unit
        self._first_step: int | None = None

    def __call__(self, step: int, steps: int, losses: dict, seconds: float) -> None:
        if self._first_step is None:
            self._first_step = step - 1
        if not self.due(step == steps):
            return
        rate = (step - self._first_step) / max(seconds, 1e-9)
        terms = "".join(f"{name} {value:.4g} | " for name, value in losses.items())
        left = _duration((steps - step) / rate) if rate > 0 else "?"
        self.print(f"{self.unit} {step}/{steps} | {terms}{rate:.2f} {self.unit}s/s | {left} left")


class WorkProgress(_Lines):
    """Prints `label: stage 37% | 1m20s left` for work measured in any unit, at most every
    `every_s` seconds: a tiled stylization's `progress` (see `TiledNetwork`)."""

    def __init__(self, label: str = "", every_s: float = 5.0, stream: TextIO | None = None) -> None:
        super().__init__(every_s, stream)
        self.label = label

    def __call__(self, stage: str, done: float, total: float, seconds: float) -> None:
        if not self.due(done >= total):
            return
        share = done / total if total > 0 else 1.0
        left = _duration(seconds * (1 - share) / share) if share > 0 else "?"
        head = f"{self.label}: " if self.label else ""
        self.print(f"{head}{stage} {100 * share:.0f}% | {left} left")
