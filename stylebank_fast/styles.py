"""Styles as people name them, resolved in one place for the network, the Stylizer and the
command line: names (exact, else case-insensitive), indices, digit strings ("2" from a command
line), blends {style: weight} and SPEC strings ("a:0.7,b:0.3")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import Tensor

from .errors import StyleBankError

__all__ = [
    "Style",
    "UnknownStyleError",
    "blend_weights",
    "parse_spec",
    "parse_spec_list",
    "style_index",
]

# A style: a name, an index, or a blend {style: weight}.
Style = Union[str, int, Mapping[Union[str, int], float]]


class UnknownStyleError(StyleBankError, KeyError, IndexError):
    """A style name or index the model does not have (a KeyError for a name, an IndexError for
    an index, and a StyleBankError for the command line)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def style_index(names: Sequence[str], style: object) -> int:
    """The index of `style` (a name, an index, or a digit string) among `names`."""
    if isinstance(style, str) and style not in names:
        stripped = style.strip()
        folded = [name for name in names if name.casefold() == stripped.casefold()]
        if stripped.isdigit():
            style = int(stripped)
        elif len(folded) == 1:
            style = folded[0]  # case-insensitive where that is unambiguous
    listing = ", ".join(f"{i}:{name}" for i, name in enumerate(names))
    if isinstance(style, str):
        if style in names:
            return list(names).index(style)
        raise UnknownStyleError(f"unknown style {style!r}; the model's styles are {listing}")
    if isinstance(style, bool) or not isinstance(style, int):
        raise UnknownStyleError(
            f"a style is a name or an index, got {style!r}; the model's styles are {listing}"
        )
    if not 0 <= style < len(names):
        raise UnknownStyleError(
            f"unknown style {style}: style index {style} is outside [0, {len(names)}); the "
            f"model's styles are {listing}"
        )
    return style


def blend_weights(names: Sequence[str], style: Style, *, normalise: bool) -> Tensor:
    """Bank weights [K] (float64) of a style or blend; a style named twice gets the sum of its
    weights. Weights must be finite and >= 0, not all zero; `normalise` makes them sum to 1
    (the Stylizer's blends), else they are used as given (the network's)."""
    blend = list(style.items()) if isinstance(style, Mapping) else [(style, 1.0)]
    weights = torch.zeros(len(names), dtype=torch.float64)
    for key, weight in blend:
        try:
            value = float(weight)
        except (TypeError, ValueError):
            value = float("nan")
        if not math.isfinite(value) or value < 0:
            raise StyleBankError(
                f"style blend {dict(blend)!r}: the weight of {key!r} is {weight!r}; weights "
                "must be finite numbers >= 0"
            )
        weights[style_index(names, key)] += value
    if weights.sum() <= 0:
        raise StyleBankError(f"style blend {dict(blend)!r}: weights must be >= 0 and not all zero")
    return weights / weights.sum() if normalise else weights


def parse_spec(text: str) -> Style:
    """A command line's SPEC: "starry_night" or "2" -> itself; "a:0.7,b:0.3" or "a:0.7+b:0.3"
    -> {"a": 0.7, "b": 0.3} (spaces allowed; a name given twice adds up)."""
    parts = [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    if len(parts) == 1 and ":" not in parts[0]:
        return parts[0]
    blend: dict[str, float] = {}
    for part in parts:
        name, _, weight = part.rpartition(":")
        name = name.strip()
        if not name:
            raise StyleBankError(f"style {text!r}: {part!r} has no style name")
        try:
            blend[name] = blend.get(name, 0.0) + float(weight)
        except ValueError:
            raise StyleBankError(
                f"style {text!r}: write a blend as name:weight,name:weight (e.g. "
                "starry_night:0.7,great_wave:0.3)"
            ) from None
    return blend


def parse_spec_list(text: str) -> list[Style]:
    """A command line's list of styles, one per region: "a,b:0.5+c:0.5" -> ["a", {b, c}]
    (within one region a blend's parts are joined by "+")."""
    return [parse_spec(part.strip()) for part in text.split(",")]
