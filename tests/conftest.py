"""Shared helpers for the operator tests: random problems in every mix form."""

from __future__ import annotations

import pytest
import torch

import stylebank_fast as sb

FORMS = ("none", "ids", "weights", "masks")

requires_extension = pytest.mark.skipif(
    not sb.extension_available(), reason="the compiled extension is not built"
)


def make_problem(
    form: str,
    *,
    n: int = 2,
    c: int = 5,
    c_out: int = 7,
    h: int = 9,
    w: int = 11,
    banks: int = 3,
    k: int = 3,
    dtype: torch.dtype = torch.float64,
    broadcast: bool = False,
    device: str = "cpu",
    seed: int = 0,
):
    """Random x, weight, bias, mix (never zeros); masks are sparse (hard and soft regions)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    x = rand(n, c, h, w)
    weight = rand(1 if form == "none" else banks, c_out, c, k, k)
    bias = rand(weight.shape[0], c_out)
    lead = 1 if broadcast else n
    if form == "none":
        mix = None
    elif form == "ids":
        mix = torch.randint(0, banks, (n,), generator=g).to(device)
    elif form == "weights":
        mix = torch.rand(lead, banks, generator=g, dtype=torch.float64).to(device, dtype)
    else:
        soft = torch.rand(lead, banks, h, w, generator=g, dtype=torch.float64)
        keep = torch.rand(lead, banks, h, w, generator=g) > 0.4
        mix = (soft * keep).to(device, dtype)
    return x, weight, bias, mix
