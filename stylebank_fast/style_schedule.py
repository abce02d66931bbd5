"""Styles that change over a clip's time: keyframes ("0s:starry_night,5s:the_scream"), blended
linearly between them; before the first keyframe its style, after the last the last's."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import StyleBankError
from .styles import Style, blend_weights, parse_spec

__all__ = ["StyleSchedule", "parse_schedule"]

_KEYFRAME = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*:(.+)$")


@dataclass(frozen=True)
class StyleSchedule:
    """Keyframes (seconds, style) in increasing time; a style is a name, index or blend."""

    keyframes: tuple[tuple[float, Style], ...]

    def __post_init__(self) -> None:
        if not self.keyframes:
            raise StyleBankError("a style schedule needs at least one keyframe")
        times = [t for t, _ in self.keyframes]
        if any(b <= a for a, b in zip(times, times[1:])):
            raise StyleBankError(f"style keyframes must be in increasing time, got {times}")

    def weights(self, names: Sequence[str], seconds: Sequence[float]) -> Tensor:
        """Bank weights [len(seconds), K] (rows summing to 1) at those times."""
        times = torch.tensor([t for t, _ in self.keyframes], dtype=torch.float64)
        styles = torch.stack([blend_weights(names, s, normalise=True) for _, s in self.keyframes])
        at = torch.tensor(list(seconds), dtype=torch.float64).clamp(times[0], times[-1])
        right = torch.searchsorted(times, at, right=True).clamp(1, len(times) - 1)
        left = right - 1
        if len(times) == 1:
            return styles[[0] * len(at)]
        span = (times[right] - times[left]).clamp_min(1e-12)
        t = ((at - times[left]) / span).clamp(0, 1)[:, None]
        return torch.lerp(styles[left], styles[right], t)


def parse_schedule(text: str) -> StyleSchedule | None:
    """A SPEC with keyframes, "0s:a,5s:b:0.5+c:0.5", as a StyleSchedule (a blend within one
    keyframe joins its parts with "+"); None for a SPEC without keyframes."""
    parts = [part for part in text.split(",") if part.strip()]
    matches = [_KEYFRAME.match(part) for part in parts]
    if not any(matches):
        return None
    if not all(matches):
        bad = next(part for part, m in zip(parts, matches) if not m)
        raise StyleBankError(
            f"style {text!r}: {bad.strip()!r} has no time; write every keyframe as SECONDSs:STYLE "
            "(e.g. 0s:starry_night,5s:the_scream)"
        )
    return StyleSchedule(tuple((float(m.group(1)), parse_spec(m.group(2))) for m in matches))
