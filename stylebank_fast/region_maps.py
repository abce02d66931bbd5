"""Region maps at the feature map's resolution: each region's share of each feature pixel, from
region labels feathered at the image's resolution, made a band of rows at a time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .regions import Labels

__all__ = ["feature_regions"]

BAND_BYTES = 32 << 20  # about this much of temporary maps at a time


def feature_regions(
    labels: Labels, padded: tuple[int, int], feather: int = 0, cell: int = 4
) -> Tensor:
    """Region maps [N,R,Hp/cell,Wp/cell]: each region's share of each cell x cell block of the
    image (a feature pixel) after the labels' one-hot maps are feathered over `feather` pixels
    (a box blur, edges replicated, so the maps still sum to 1) and padded bottom/right to
    `padded` (Hp, Wp) by replication, as the image is: `StyleBankNet.feature_masks` of the
    full-size maps.

    Blur, padding and mean act along rows and along columns separately, so the full-size maps
    are never made: the row-wise part runs a band of rows at a time, the column-wise part on
    maps already a cell narrower (without feathering, band by band too).
    """
    n, (h, w), count = labels.n, labels.size, labels.count
    device = labels.dense.device
    regions = torch.arange(count, device=device).view(1, count, 1, 1)

    def along_rows(rows: slice) -> Tensor:  # [N,R,b,Wp/cell]
        maps = (labels.band(rows)[:, None] == regions).float()
        if feather:
            maps = _box_mean(maps, feather, 3)
        maps = F.pad(maps, (0, padded[1] - w, 0, 0), mode="replicate")
        return F.avg_pool2d(maps, (1, cell))

    def down_columns(maps: Tensor, last: bool) -> Tensor:  # the rows of a band, or all
        maps = F.pad(maps, (0, 0, 0, padded[0] - h if last else 0), mode="replicate")
        return F.avg_pool2d(maps, (cell, 1))

    per_row = n * count * w * 9  # bytes: the comparison and the float maps
    step = max(cell, BAND_BYTES // per_row // cell * cell)
    bands = [slice(start, min(start + step, h)) for start in range(0, h, step)]
    if not feather:
        return torch.cat([down_columns(along_rows(b), b.stop == h) for b in bands], 2)
    narrow = torch.cat([along_rows(b) for b in bands], 2)  # [N,R,H,Wp/cell]
    width = max(1, BAND_BYTES // (n * count * h * 4 * 4))  # prefix sums: about 4 copies
    blocks = [
        down_columns(_box_mean(narrow[..., start : start + width], feather, 2), True)
        for start in range(0, narrow.shape[-1], width)
    ]
    return torch.cat(blocks, 3)


def _box_mean(maps: Tensor, radius: int, dim: int) -> Tensor:
    """Mean over a (2*radius+1)-pixel window along `dim`, edges replicated, from prefix sums:
    the cost does not grow with the radius."""
    n = maps.shape[dim]
    zero = torch.zeros_like(maps.narrow(dim, 0, 1))
    prefix = torch.cat([zero, maps.cumsum(dim)], dim)  # prefix[j + 1] = x[0] + ... + x[j]
    first, last = maps.narrow(dim, 0, 1), maps.narrow(dim, n - 1, 1)
    shape = [1] * maps.dim()
    shape[dim] = n

    def extended_prefix(j: Tensor) -> Tensor:
        """Sums up to j of the edge-replicated row, for any j (beyond either edge too)."""
        inside = prefix.index_select(dim, j.clamp(-1, n - 1) + 1)
        beyond = (j - (n - 1)).clamp_min(0).view(shape).to(maps) * last
        before = (j + 1).clamp_max(0).view(shape).to(maps) * first
        return inside + beyond + before

    index = torch.arange(n, device=maps.device)
    total = extended_prefix(index + radius) - extended_prefix(index - radius - 1)
    return total / (2 * radius + 1)
