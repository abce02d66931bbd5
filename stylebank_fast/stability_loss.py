"""A training term for temporal stability, on synthetic camera motion of still photos.

Video flickers and swims when the stylization of a moved picture is not the moved
stylization: strokes that jump with the encoder's 4-px sampling phase under a slow pan, or
change with sensor noise on a still shot. The term moves each training image by a random small
shift, zoom and rotation (its true motion is known), adds noise, stylizes both, and penalises
the difference between the moved output and the output of the moved image over the pixels both
show: the warping error of bench/video.py, made a loss. No optical flow at test time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Motion", "SyntheticMotion", "move", "stability_loss"]


@dataclass(frozen=True)
class SyntheticMotion:
    """Random camera motion between two frames: shifts up to `shift` pixels (any phase of the
    encoder's 4-px grid), zooms by up to `zoom` (a fraction), rotations up to `rotation`
    degrees, and Gaussian noise of up to `noise` (on [0, 1] pixels) on the second frame."""

    shift: float = 6.0
    zoom: float = 0.05
    rotation: float = 2.0
    noise: float = 0.02

    def draw(self, n: int, height: int, width: int, generator: torch.Generator) -> Motion:
        """`n` random motions of `height` x `width` images."""

        def uniform(bound: float) -> Tensor:
            return (torch.rand(n, generator=generator) * 2 - 1) * bound

        scale = 1 + uniform(self.zoom)
        angle = uniform(math.radians(self.rotation))
        # a shift of d pixels is 2d / size in normalised coordinates
        tx, ty = uniform(self.shift) * 2 / width, uniform(self.shift) * 2 / height
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        aspect = height / width  # a rotation in pixels, not in the unit square
        theta = torch.stack(
            [
                torch.stack([cos, -sin * aspect, tx], 1),
                torch.stack([sin / aspect, cos, ty], 1),
            ],
            1,
        )
        sigma = torch.rand(n, 1, 1, 1, generator=generator) * self.noise
        return Motion(theta, sigma * torch.randn(n, 3, height, width, generator=generator))


class Motion(NamedTuple):
    """Motions of a batch: affine maps [N,2,3] (output -> input, normalised coordinates, as
    `F.affine_grid` takes them) and the noise [N,3,H,W] added to the second frame."""

    theta: Tensor
    noise: Tensor

    @staticmethod
    def cat(motions: Sequence[Motion]) -> Motion:
        return Motion(*(torch.cat(parts) for parts in zip(*motions)))


def move(images: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """`images` [N,C,H,W] moved by the affine maps `theta` [N,2,3] (bilinear), and the mask
    [N,1,H,W] of the pixels that come from inside the image."""
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    inside = (grid.abs() <= 1 - 2 / min(images.shape[-2:])).all(-1)[:, None]
    return moved, inside.to(images.dtype)


def stability_loss(
    stylize: Callable[[Tensor], Tensor], images: Tensor, outputs: Tensor, motion: Motion
) -> Tensor:
    """Mean absolute difference, over the pixels both frames show, between the stylized
    `outputs` [N,3,H,W] of `images` moved by `motion` and `stylize` of the moved, noisy images
    (a float in [0, 1] units). 0 when stylizing commutes with the motion and ignores noise."""
    moved, inside = move(images, motion.theta)
    second = stylize((moved + motion.noise.to(images)).clamp(0, 1))
    expected, _ = move(outputs.float(), motion.theta)
    difference = (second.float() - expected).abs().mean(1, keepdim=True) * inside
    return difference.sum() / inside.sum().clamp_min(1)
