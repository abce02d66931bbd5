"""Each region's InstanceNorm statistics as its style alone gives them over the whole image.

A region normalised with its own statistics (region_norm) still differs from its style alone
by several grey levels: the style alone is normalised with statistics over the whole image,
and a style's statistics over half a photo are not those over all of it. Over the whole image
they are the region's own moments (exact, from the fused pass) plus its style's moments over
the rest of the image. Those are estimated here on a lattice of small patches of the encoder's
features, each run through the region's bank and the decoder up to each InstanceNorm with
unpadded convolutions, so that each gives its style alone's values at the patch's centre.
The rest of the image is where the region's bank has no weight at all: pixels that blend it
(soft masks, feathered borders, a blend everywhere) count as the region's own, so a blend over
the whole image is normalised as without regions.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .phases import upsampled_conv_phases
from .region_norm import Complete, moments_mean_var

__all__ = ["PATCHES", "PatchSampler", "StyleAlone"]

# Patches per image, shared by its regions (each runs through the banks of the regions it lies
# outside): at 512 px two regions then land within 2-4 grey levels of their styles alone, for
# about a tenth more time (docs/stylize.md#region-fusion).
PATCHES = 1024


class PatchSampler:
    """Patches of the encoder's features [N,P,C,k,k] on an even lattice over a feature map of
    `size` (h, w), filled from the whole map or tile by tile (`add`); k holds the bank's
    reach around 2x2 centre pixels. For `regions` regions, each patch lies outside all but
    about one: `budget` // (regions - 1) patches then cost about `budget` bank runs. No
    patches where the map is smaller than one."""

    def __init__(
        self,
        size: tuple[int, int],
        kernel_size: int,
        budget: int,
        regions: int,
        n: int,
        channels: int,
        device: torch.device,
    ) -> None:
        self.reach = kernel_size // 2
        self.k = 2 + 2 * self.reach
        self.corners = _lattice(size, self.k, budget // max(1, regions - 1)).to(device)
        # [N,P,k,k,C]: a pixel's channels together, as the features' channels_last gather them
        self._pixels = torch.zeros(n, len(self.corners), self.k, self.k, channels, device=device)
        self._filled = False  # the patches take the features' dtype at the first `add`
        self._offsets = torch.arange(self.k, device=device)

    def __len__(self) -> int:
        return len(self.corners)

    @property
    def patches(self) -> Tensor:
        """The patches [N,P,C,k,k]."""
        return self._pixels.permute(0, 1, 4, 2, 3)

    def add(self, rows: slice, cols: slice, features: Tensor) -> None:
        """Takes the patches' pixels in `features` [N,C,h,w], rows and cols of the map."""
        picked, inside = [], []
        for axis, span in enumerate((rows, cols)):
            at = self.corners[:, axis, None] + self._offsets  # [P,k] map coordinates
            inside.append((at >= span.start) & (at < span.stop))
            picked.append((at - span.start).clamp(0, span.stop - span.start - 1))
        pixels = features.permute(0, 2, 3, 1)
        values = pixels[:, picked[0][:, :, None], picked[1][:, None, :]]  # [N,P,k,k,C]
        mask = inside[0][:, :, None] & inside[1][:, None, :]
        if not self._filled:
            self._pixels, self._filled = self._pixels.to(values.dtype), True
        self._pixels = torch.where(mask[..., None], values, self._pixels)


def _lattice(size: tuple[int, int], k: int, budget: int) -> Tensor:
    """Top-left corners [P,2] of up to `budget` k x k patches spread evenly over a map of
    `size`, cell centres of a grid shaped like the map, at least 2 apart (so the patches' 2x2
    centres never overlap)."""
    h, w = size
    if h < k or w < k or budget < 1:
        return torch.zeros(0, 2, dtype=torch.long)
    free_h, free_w = h - k + 1, w - k + 1  # corner positions along each axis
    gh = max(1, min(free_h // 2, round(math.sqrt(budget * h / w))))
    gw = max(1, min(free_w // 2, budget // gh))
    rows = ((torch.arange(gh) + 0.5) * free_h / gh).long()
    cols = ((torch.arange(gw) + 0.5) * free_w / gw).long()
    return torch.cartesian_prod(rows, cols).view(-1, 2)


class StyleAlone:
    """Completes each region's moment sums at each of the decoder's InstanceNorms to its style
    alone's over the whole image (`completion(j)`, for the j-th; they are asked in order).

    Args:
        decoder: the decoder's layers (Upsample, Conv2d, InstanceNorm2d and ReLU).
        weights, biases: each region's bank [R,C,C,k,k], [R,C].
        strength: as in `StyleBankNet.forward`: a number, or one per image [N].
        regions: region weights [N|1,R,h,w] at the feature map's size.
        sampler: the encoder features' patches (`PatchSampler`).
    """

    def __init__(
        self,
        decoder: nn.Sequential,
        weights: Tensor,
        biases: Tensor,
        strength: float | Tensor,
        regions: Tensor,
        sampler: PatchSampler,
    ) -> None:
        patches = sampler.patches
        n, _, c = patches.shape[:3]
        self._layers, self._next_layer, self._next_norm = list(decoder), 0, 0
        self._corners, self._regions = sampler.corners, regions.expand(n, -1, -1, -1)
        self._rest = (self._regions == 0).flatten(2).float().mean(2)  # [N,R] of each layer
        # where the live pixels of the patches lie: map pixel scale * corner + offset + [0, size)
        self._scale, self._offset, self._size = 1, sampler.reach, 2
        centre = slice(sampler.reach, sampler.reach + 2)
        self._picks, self._values = [], []
        for r in range(weights.shape[0]):
            pick = torch.arange(len(sampler), device=patches.device)
            if not torch.compiler.is_compiling():  # only the patches that reach outside r
                pick = pick[self._outside(r, pick).flatten(2).amax((0, 2)) > 0]
            x = patches[:, pick].flatten(0, 1)
            styled = F.conv2d(x, weights[r].to(x), biases[r].to(x))
            at = strength if not isinstance(strength, Tensor) else strength.to(x).view(n, 1)
            if isinstance(at, Tensor):
                at = at.expand(n, len(pick)).reshape(-1, 1, 1, 1)
            self._picks.append(pick)
            self._values.append(torch.lerp(x[..., centre, centre], styled, at).view(n, -1, c, 2, 2))

    def _outside(self, r: int, pick: Tensor) -> Tensor:
        """1 where a live pixel of the picked patches is outside region r, else 0: [N,P,s,s]."""
        at = self._offset + torch.arange(self._size, device=pick.device)
        rows, cols = (
            (self._scale * self._corners[pick, axis, None] + at) // self._scale for axis in (0, 1)
        )
        return (self._regions[:, r][:, rows[:, :, None], cols[:, None, :]] == 0).float()

    def completion(self, j: int) -> Complete:
        """The `region_norm.Complete` for the decoder's j-th InstanceNorm."""

        def complete(mass: Tensor, sums: Tensor, squares: Tensor, shift: Tensor):
            if j != self._next_norm:
                raise RuntimeError(
                    f"statistics of normalisation {j} asked before {self._next_norm}"
                )
            norm = self._run_to_norm()
            n, c = shift.reshape(mass.shape[0], -1).shape
            rest = mass.sum(1, keepdim=True) * self._rest.to(mass)  # [N,R]: outside each
            parts = []
            for r, (pick, x) in enumerate(zip(self._picks, self._values)):
                outside = self._outside(r, pick).to(x)  # [N,P,s,s]
                d = x - shift.reshape(n, 1, c, 1, 1).to(x)
                sampled = outside.sum((1, 2, 3))
                factor = torch.where(sampled > 0, rest[:, r] / sampled.clamp_min(1e-30), 0)
                factor = factor.to(sums)[:, None]
                parts.append(
                    (
                        mass[:, r] + rest[:, r] * (sampled > 0),
                        sums[:, r] + factor * torch.einsum("npij,npcij->nc", outside, d).to(sums),
                        squares[:, r]
                        + factor * torch.einsum("npij,npcij->nc", outside, d.square()).to(sums),
                    )
                )
            whole = [torch.stack(part, 1) for part in zip(*parts)]
            mean, var = moments_mean_var(*whole, shift)
            self._normalise(norm, mean, var)
            return mean, var

        return complete

    def _run_to_norm(self) -> nn.InstanceNorm2d:
        """Runs the patches through the decoder's layers up to the next InstanceNorm."""
        while not isinstance(layer := self._layers[self._next_layer], nn.InstanceNorm2d):
            self._next_layer += 1
            after = self._layers[self._next_layer]
            if isinstance(layer, nn.Upsample) and isinstance(after, nn.Conv2d):
                self._next_layer += 1  # the upsample and the conv after it, by phases
                self._scale, self._offset = 2 * self._scale, 2 * self._offset + 1
                self._size = 2 * self._size - 2
                self._map(partial(_upsampled_conv, conv=after))
            elif isinstance(layer, nn.Conv2d):
                reach = layer.kernel_size[0] // 2
                self._offset, self._size = self._offset + reach, self._size - 2 * reach
                self._map(lambda x: F.conv2d(x, layer.weight.to(x), layer.bias.to(x)))
            elif isinstance(layer, nn.ReLU):
                self._map(F.relu)
            else:
                raise ValueError(f"no patch equivalent for decoder layer {layer}")
        self._next_layer += 1
        self._next_norm += 1
        return layer

    def _map(self, fn) -> None:
        self._values = [fn(x.flatten(0, 1)).unflatten(0, x.shape[:2]) for x in self._values]

    def _normalise(self, norm: nn.InstanceNorm2d, mean: Tensor, var: Tensor) -> None:
        """Normalises each region's patches with its statistics [N,R,C], then the affine."""
        for r, x in enumerate(self._values):
            m, v = (s[:, r, None, :, None, None].to(x) for s in (mean, var))
            x = (x - m) * torch.rsqrt(v + norm.eps)
            if norm.weight is not None:
                x = x * norm.weight.to(x).view(1, 1, -1, 1, 1) + norm.bias.to(x).view(
                    1, 1, -1, 1, 1
                )
            self._values[r] = x


def _upsampled_conv(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """`conv` (3x3, unpadded) after a nearest x2 upsample of `x` [B,C,s,s]: [B,C',2s-2,2s-2],
    by the phases' 2x2 kernels (2.25x fewer multiply-adds than on the upsampled image).
    Output row 2p of the upsampled conv is phase 1 at input row p, row 2p+1 phase 0."""
    if conv.kernel_size != (3, 3):
        raise ValueError(f"no patch equivalent for {conv} after an upsample")
    kernels = upsampled_conv_phases(conv.weight).to(x)
    y = F.conv2d(x, kernels, conv.bias.to(x).repeat(4))  # [B, 4C', s-1, s-1]
    b, _, p, q = y.shape
    y = y.view(b, 2, 2, conv.out_channels, p, q).flip(1, 2)  # phases (1-a, 1-b)
    return y.permute(0, 3, 4, 1, 5, 2).reshape(b, conv.out_channels, 2 * p, 2 * q)
