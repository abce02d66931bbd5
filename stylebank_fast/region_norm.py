"""InstanceNorm with one set of statistics per region (region fusion true to each style).

With region masks, a plain InstanceNorm in the decoder pools its statistics over all regions,
so each region is normalised with its neighbours' statistics and drifts towards them. Here
each region (a bank's mask) is normalised with its own statistics; where masks overlap (soft
masks, feathered borders) the normalised values are blended by the masks. The statistics are
the region's own pixels' (mask-weighted), or completed to its style's over the whole image by
`region_statistics.StyleAlone`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "region_weights",
    "upsample_regions",
    "region_moments",
    "moments_mean_var",
    "region_instance_norm",
]

# Turns a layer's per-region moment sums (mass [N,R], sums and squares of deviations from
# shift [N,R,C], shift [N,C]) into the mean and biased variance [N,R,C] to normalise with.
Complete = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def region_weights(mix: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel region weights [N,R,h,w] from a region-fusion mix [N|1,K,h,w]: the banks used
    anywhere, normalised to sum 1 at each pixel (pixels where all are 0 weigh the used banks
    equally; all banks when none is used); and each region's bank index [R].

    In eager mode the unused banks' columns (all 0) are dropped, which changes no value and
    saves the decoder's normalisations their work; a traced graph (torch.export, torch.compile)
    keeps all K, as its shapes cannot depend on the masks' values."""
    used = mix.flatten(2).amax(2).amax(0) > 0
    banks = torch.arange(mix.shape[1], device=mix.device)
    if not torch.compiler.is_compiling() and bool(used.any()):
        mix, banks, used = mix[:, used], banks[used], used[used]
    used = torch.where(used.any(), used, True).to(mix.dtype)
    total = mix.sum(1, keepdim=True)
    even = (used / used.sum()).view(1, -1, 1, 1)
    return torch.where(total > 0, mix / total.clamp_min(1e-30), even), banks


def upsample_regions(weights: Tensor, size: tuple[int, int]) -> Tensor:
    """Region weights at a layer of the decoder: nearest upsampling by the integer factor that
    the decoder's upsampling layers apply to the features."""
    h, w = weights.shape[-2:]
    if size == (h, w):
        return weights
    if size[0] % h or size[1] % w or size[0] // h != size[1] // w:
        raise ValueError(f"region weights of size {(h, w)} do not tile a layer of size {size}")
    return F.interpolate(weights, size=size, mode="nearest")


def region_moments(x: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each region's moment sums over `x` [N,C,H,W], pixels weighing `weights` [N,R,H,W]:
    mass [N,R], sums and squares of deviations from a shift [N,R,C], the shift [N,C] (each
    channel's mean, constant for autograd: deviations keep float32 sums exact)."""
    shift = x.detach().mean((2, 3))
    d = x - shift[..., None, None]
    mass = weights.sum((2, 3))
    sums = torch.einsum("nrhw,nchw->nrc", weights, d)
    squares = torch.einsum("nrhw,nchw->nrc", weights, d.square())
    return mass, sums, squares, shift


def moments_mean_var(
    mass: Tensor, sums: Tensor, squares: Tensor, shift: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and biased variance [N,R,C] from moment sums about `shift` (any shape holding
    [N,C]); a region of no mass gets the shift and variance 0 (its weight is 0 everywhere: any
    value does)."""
    n, _, c = sums.shape
    mass = mass.clamp_min(torch.finfo(mass.dtype).tiny)[..., None]
    mean = sums / mass
    var = (squares / mass - mean.square()).clamp_min(0)
    return shift.reshape(n, 1, c).to(mean.dtype) + mean, var


def region_instance_norm(
    x: Tensor,
    weights: Tensor,
    gamma: Tensor | None,
    beta: Tensor | None,
    eps: float,
    complete: Complete | None = None,
) -> Tensor:
    """InstanceNorm of `x` [N,C,H,W] with each region's statistics (biased variance), blended by
    the region weights [N|1,R,H,W] (summing to 1 per pixel), then the affine. The statistics
    are the regions' own, or what `complete` makes of their moment sums."""
    n, c = x.shape[:2]
    weights = weights.to(x.dtype).expand(n, -1, -1, -1)
    mean, var = (complete or moments_mean_var)(*region_moments(x, weights))
    rstd = torch.rsqrt(var.to(x.dtype) + eps)  # [N,R,C]
    scale = torch.einsum("nrhw,nrc->nchw", weights, rstd)
    shift = torch.einsum("nrhw,nrc->nchw", weights, mean.to(x.dtype) * rstd)
    out = x * scale - shift
    if gamma is not None:
        out = out * gamma.view(1, c, 1, 1) + beta.view(1, c, 1, 1)
    return out
