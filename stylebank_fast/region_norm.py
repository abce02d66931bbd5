"""InstanceNorm with one set of statistics per region (region fusion true to each style).

With region masks, a plain InstanceNorm in the decoder pools its statistics over all regions,
so each region is normalised with its neighbours' statistics and drifts towards them. Here
each region (a bank's mask) is normalised with its own mask-weighted statistics; where masks
overlap (soft masks, feathered borders) the normalised values are blended by the masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["region_weights", "upsample_regions", "region_instance_norm"]


def region_weights(mix: Tensor) -> Tensor:
    """Per-pixel region weights [N,R,h,w] from a region-fusion mix [N|1,K,h,w]: the banks used
    anywhere, normalised to sum 1 at each pixel (pixels where all are 0 weigh the used banks
    equally; all banks when none is used).

    In eager mode the unused banks' columns (all 0) are dropped, which changes no value and
    saves the decoder's normalisations their work; a traced graph (torch.export, torch.compile)
    keeps all K, as its shapes cannot depend on the masks' values."""
    used = mix.flatten(2).amax(2).amax(0) > 0
    if not torch.compiler.is_compiling() and bool(used.any()):
        mix, used = mix[:, used], used[used]
    used = torch.where(used.any(), used, True).to(mix.dtype)
    total = mix.sum(1, keepdim=True)
    even = (used / used.sum()).view(1, -1, 1, 1)
    return torch.where(total > 0, mix / total.clamp_min(1e-30), even)


def upsample_regions(weights: Tensor, size: tuple[int, int]) -> Tensor:
    """Region weights at a layer of the decoder: nearest upsampling by the integer factor that
    the decoder's upsampling layers apply to the features."""
    h, w = weights.shape[-2:]
    if size == (h, w):
        return weights
    if size[0] % h or size[1] % w or size[0] // h != size[1] // w:
        raise ValueError(f"region weights of size {(h, w)} do not tile a layer of size {size}")
    return F.interpolate(weights, size=size, mode="nearest")


def region_instance_norm(
    x: Tensor, weights: Tensor, gamma: Tensor | None, beta: Tensor | None, eps: float
) -> Tensor:
    """InstanceNorm of `x` [N,C,H,W] with each region's statistics (biased variance), blended by
    the region weights [N|1,R,H,W] (summing to 1 per pixel), then the affine."""
    n, c = x.shape[:2]
    weights = weights.to(x.dtype).expand(n, -1, -1, -1)
    out = torch.zeros_like(x)
    for r in range(weights.shape[1]):
        m = weights[:, r : r + 1]
        # a region with no pixel here (mass 0) has weight 0 everywhere: any mean does
        mass = m.sum((2, 3), keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        mean = (m * x).sum((2, 3), keepdim=True) / mass
        var = (m * (x - mean).square()).sum((2, 3), keepdim=True) / mass
        out = out + m * (x - mean) * torch.rsqrt(var + eps)
    if gamma is not None:
        out = out * gamma.view(1, c, 1, 1) + beta.view(1, c, 1, 1)
    return out
