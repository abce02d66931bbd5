"""Colour preservation: keep the photo's chroma, take the stylized image's luminance (YIQ)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["rgb_to_yiq", "yiq_to_rgb", "transfer_luminance"]

# NTSC YIQ (FCC); Y is the luminance, I and Q the chroma.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(matrix: Tensor, images: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(images), images)


def rgb_to_yiq(images: Tensor) -> Tensor:
    """[N,3,H,W] RGB -> YIQ."""
    return _apply(_RGB_TO_YIQ, images)


def yiq_to_rgb(images: Tensor) -> Tensor:
    """[N,3,H,W] YIQ -> RGB."""
    return _apply(_YIQ_TO_RGB, images)


def transfer_luminance(content: Tensor, styled: Tensor) -> Tensor:
    """`styled`'s luminance with `content`'s chroma (both [N,3,H,W] RGB), clamped to [0,1]."""
    yiq = torch.cat([rgb_to_yiq(styled)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)
