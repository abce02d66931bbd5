"""How much memory a stylization's activations take, and how large tiles a budget allows."""

from __future__ import annotations

import math

import torch

from ..model import StyleBankNet
from .grid import ALIGN
from .network import margin

__all__ = ["RUNTIME_BYTES", "MIN_TILE", "activation_bytes", "smallest_tile_bytes", "tile_side"]

# Measured on the CPU with the built-in model (docs/stylize.md, "Memory"): the peak resident
# memory of a stylization is RUNTIME_BYTES (Python, torch, the model: 0.30 GB measured) plus,
# for the network's activations, these bytes per pixel of the (padded) image or tile it runs
# on: the fast network in float32 (430 whole, up to 560 for a tile with its margins) or
# bfloat16 (250 whole), or (None) the model's own modules (950 whole).
RUNTIME_BYTES = 350e6
_BYTES_PER_PIXEL = {torch.float32: 540, torch.bfloat16: 320, None: 950}
MIN_TILE = 128  # smaller tiles would spend most of their work on their margins


def activation_bytes(pixels: float, dtype: torch.dtype | None) -> float:
    """Peak bytes of the activations over `pixels` pixels (all images together) of the fast
    network running in `dtype`, or (None) of the model's modules."""
    return _BYTES_PER_PIXEL[dtype] * pixels


def _dtype(net: StyleBankNet) -> torch.dtype:
    return net.encoder.steps[0].weight.dtype  # a fast network's


def smallest_tile_bytes(net: StyleBankNet, batch: int) -> float:
    """Peak bytes of the activations of a MIN_TILE tile (margins included) of `batch` images
    in `net`, a fast network."""
    return activation_bytes(batch * (MIN_TILE + 2 * margin(net)) ** 2, _dtype(net))


def tile_side(net: StyleBankNet, batch: int, room: float) -> int:
    """The side (a multiple of ALIGN, at least MIN_TILE) of the largest square tiles of
    `batch` images whose run in `net`, a fast network, takes at most `room` bytes of
    activations, margins included."""
    if room < smallest_tile_bytes(net, batch):
        raise ValueError(f"{room} bytes are too few for the smallest tiles")
    with_margins = math.sqrt(room / activation_bytes(batch, _dtype(net)))
    return max(MIN_TILE, int(with_margins - 2 * margin(net)) // ALIGN * ALIGN)
