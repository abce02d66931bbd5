"""The style resolver that the network, the Stylizer and the command line share."""

from __future__ import annotations

import pytest
import torch

from stylebank_fast import StyleBankError
from stylebank_fast.styles import UnknownStyleError, blend_weights, parse_spec, style_index

NAMES = ["starry_night", "Great_Wave", "udnie"]


@pytest.mark.parametrize(
    "style, index",
    [("udnie", 2), (1, 1), ("1", 1), (" 2 ", 2), ("great_wave", 1), ("UDNIE", 2)],
)
def test_style_index_forms(style, index):
    assert style_index(NAMES, style) == index


@pytest.mark.parametrize("style", ["monet", 3, -1, True, 1.0, None])
def test_unknown_styles_are_every_kind_of_error_a_caller_catches(style):
    with pytest.raises(UnknownStyleError) as error:
        style_index(NAMES, style)
    assert isinstance(error.value, (KeyError, IndexError, StyleBankError))
    assert "0:starry_night, 1:Great_Wave, 2:udnie" in str(error.value)


def test_blends_normalised_or_as_given():
    raw = blend_weights(NAMES, {"udnie": 3.0, 0: 1.0, "UDNIE": 1.0}, normalise=False)
    torch.testing.assert_close(raw, torch.tensor([1.0, 0.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(
        blend_weights(NAMES, {"udnie": 3.0, 0: 1.0}, normalise=True),
        torch.tensor([0.25, 0.0, 0.75], dtype=torch.float64),
    )
    assert blend_weights(NAMES, "udnie", normalise=True).tolist() == [0.0, 0.0, 1.0]
    for bad in ({"udnie": float("nan")}, {"udnie": -1.0}, {"udnie": 0.0}, {"udnie": "x"}):
        with pytest.raises(StyleBankError):
            blend_weights(NAMES, bad, normalise=True)


def test_parse_spec():
    assert parse_spec("udnie") == "udnie" and parse_spec(" 2 ") == "2"
    assert parse_spec("a:0.5 + b:0.25, a:0.25") == {"a": 0.75, "b": 0.25}
    for bad in ("a:x", ":0.5,b:1"):
        with pytest.raises(StyleBankError):
            parse_spec(bad)
