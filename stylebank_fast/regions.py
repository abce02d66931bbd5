"""Regions for region fusion: label maps (arrays or mask images), K-means on encoder features
(the paper's Fig. 10), feathering, and the per-pixel bank masks they become."""

from __future__ import annotations

import os
from typing import Callable, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import StyleBankError
from .imageio import open_image

__all__ = [
    "LabelSource",
    "label_map",
    "parse_auto",
    "kmeans",
    "cluster_centres",
    "assign_labels",
    "cluster_labels",
    "region_masks",
]

LabelSource = Union[str, "os.PathLike[str]", np.ndarray, Tensor]


def parse_auto(regions: object) -> int | None:
    """N for the text "auto:N", None for anything else."""
    if not (isinstance(regions, str) and regions.startswith("auto:")):
        return None
    count = regions[len("auto:") :]
    if not count.isdigit() or int(count) < 1:
        raise StyleBankError(f"regions {regions!r}: write auto:N with N a whole number >= 1")
    return int(count)


def label_map(source: LabelSource, size: tuple[int, int]) -> tuple[Tensor, int]:
    """Region labels [H,W] (int64, 0..R-1) at `size` (H, W), and R.

    `source` is a label array [h,w], a colour array [h,w,3], or a path to a label or colour
    image. Each distinct value (or colour) is one region, numbered in sorted order; a map of
    another size is resized (nearest neighbour).
    """
    if isinstance(source, Tensor):
        array = source.detach().cpu().numpy()
    elif isinstance(source, np.ndarray):
        array = source
    else:
        array = np.asarray(open_image(source, mode=None))
    if array.ndim == 3 and array.shape[2] in (3, 4):  # colour: one integer per RGB colour
        rgb = array[..., :3].astype(np.int64)
        array = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    if array.ndim != 2 or array.size == 0:
        raise StyleBankError(
            f"a region map must be a label array [H,W] or a colour image, got shape {array.shape}"
        )
    labels, count = _dense_labels(array)
    labels = torch.from_numpy(labels)
    if tuple(labels.shape) != tuple(size):
        labels = F.interpolate(labels[None, None].double(), size=size, mode="nearest-exact")
        labels = labels[0, 0].long()
    return labels, count


def _dense_labels(array: np.ndarray) -> tuple[np.ndarray, int]:
    """The values of `array` renumbered 0..R-1 in sorted order (int64, same shape), and R.

    Integer maps with a modest value range (label maps; colours packed in 24 bits) take a
    lookup table, linear in the pixels; np.unique would sort them all.
    """
    if array.dtype.kind in "iub" and array.size:
        low = int(array.min())
        span = int(array.max()) - low + 1
        if span <= max(1 << 24, array.size):
            shifted = array.astype(np.int64) - low
            present = np.zeros(span, bool)
            present[shifted.ravel()] = True
            lookup = np.cumsum(present) - 1
            return lookup[shifted], int(present.sum())
    values, labels = np.unique(array, return_inverse=True)
    return labels.reshape(array.shape).astype(np.int64), len(values)


def kmeans(points: Tensor, n: int, iterations: int = 20, seed: int = 0) -> Tensor:
    """`n` centres [n,C] of `points` [P,C] by K-means (k-means++ start, fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    points = points.detach().double().cpu()
    centres = points[torch.randint(len(points), (1,), generator=g)]
    for _ in range(1, n):
        distance = torch.cdist(points, centres).min(dim=1).values ** 2
        if distance.sum() == 0:  # fewer distinct points than centres: any point will do
            distance = torch.ones_like(distance)
        pick = torch.multinomial(distance, 1, generator=g)
        centres = torch.cat([centres, points[pick]])
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=n).unsqueeze(1)
        # an empty cluster keeps its centre
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres


def cluster_centres(features: Tensor, n: int, sample: int = 4096) -> Tensor:
    """`n` K-means centres [n,C] of `features` [C,h,w] (from `StyleBankNet.encode`), fitted
    on at most `sample` feature pixels (fixed seed), ordered from the largest region to the
    smallest."""
    c, h, w = features.shape
    points = features.reshape(c, h * w).T
    g = torch.Generator().manual_seed(0)
    subset = torch.randperm(len(points), generator=g)[:sample].to(points.device)
    centres = kmeans(points[subset], n).to(points)
    sizes = torch.bincount(torch.cdist(points, centres).argmin(dim=1), minlength=n)
    return centres[torch.argsort(sizes, descending=True, stable=True)]


def assign_labels(features: Tensor, centres: Tensor, size: tuple[int, int]) -> Tensor:
    """Labels [H,W]: the nearest of `centres` [n,C] to each feature pixel of `features`
    [C,h,w] (feature pixel (i, j) covers image pixels [4i, 4i+4) x [4j, 4j+4))."""
    c, h, w = features.shape
    labels = torch.cdist(features.reshape(c, h * w).T, centres.to(features)).argmin(dim=1)
    full = F.interpolate(labels.reshape(1, 1, h, w).float(), scale_factor=4, mode="nearest")
    return full[0, 0, : size[0], : size[1]].long()  # exact: labels < 2^24


def cluster_labels(features: Tensor, n: int, size: tuple[int, int], sample: int = 4096) -> Tensor:
    """Labels [H,W] of `n` regions found by K-means on `features` [C,h,w], numbered from the
    largest region to the smallest (`cluster_centres`, then `assign_labels`)."""
    return assign_labels(features, cluster_centres(features, n, sample), size)


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


def _box_blur(maps: Tensor, radius: int) -> Tensor:
    """Separable box blur of [N,R,H,W] with a (2*radius+1)-pixel window. Edges are replicated,
    so maps that sum to 1 per pixel still do."""
    return _box_mean(_box_mean(maps, radius, 3), radius, 2)


def region_masks(
    labels: Tensor,
    weights: Tensor,
    feather: int = 0,
    resize: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Bank masks [N,K,H',W'] from region labels [N,H,W] (0..R-1) and each region's bank
    weights [R,K] (rows summing to 1). `feather` > 0 softens region borders over that many
    pixels on each side (the masks still sum to 1 at every pixel).

    `resize` maps the R region maps [N,R,H,W] to another resolution before they become K bank
    masks, e.g. `StyleBankNet.feature_masks`, so the K masks are never built at image size.
    """
    regions = F.one_hot(labels, weights.shape[0]).permute(0, 3, 1, 2).to(weights)
    if feather > 0:
        regions = _box_blur(regions, feather)
    if resize is not None:
        regions = resize(regions)
    return torch.einsum("nrhw,rk->nkhw", regions, weights)
