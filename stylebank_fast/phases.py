"""A nearest x2 upsample followed by a 3x3 convolution, as one 2x2 convolution per phase."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["upsampled_conv_phases"]


def upsampled_conv_phases(weight: Tensor) -> Tensor:
    """The four phases' 2x2 kernels [4*C_out, C_in, 2, 2] of a 3x3 `weight` read after a
    nearest x2 upsample, in order (a, b) = (0,0), (0,1), (1,0), (1,1).

    Upsampled row 2i+a of the 3x3 conv reads upsampled rows 2i+a-1 .. 2i+a+1, i.e. input rows
    {i-1, i} (a=0: taps 0 | 1+2) or {i, i+1} (a=1: taps 0+1 | 2); likewise for columns."""
    w = weight
    rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2)]
    rows.append(torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2))
    phases = []
    for r in rows:
        phases.append(torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1))
        phases.append(torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1))
    return torch.cat(phases)
