"""Regions for region fusion: label maps (arrays or mask images) and K-means on encoder
features (the paper's Fig. 10), as labels an image's rows are looked up in a band at a time
(`Labels`); region_maps.py makes them the feature map's region weights."""

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
    "Labels",
    "label_map",
    "label_source",
    "parse_auto",
    "kmeans",
    "cluster_labels",
    "feature_clusters",
    "cluster_centres",
    "nearest_centres",
    "cell_labels",
]

LabelSource = Union[str, "os.PathLike[str]", np.ndarray, Tensor]
# runs the encoder, handing each block of features [N,C,h,w] (its rows and columns of the
# feature map) to its argument: the whole map at once, or tile by tile
EncodeFn = Callable[[Callable[[slice, slice, Tensor], None]], None]


def parse_auto(regions: object) -> int | None:
    """N for the text "auto:N", None for anything else."""
    if not (isinstance(regions, str) and regions.startswith("auto:")):
        return None
    count = regions[len("auto:") :]
    if not count.isdigit() or int(count) < 1:
        raise StyleBankError(f"regions {regions!r}: write auto:N with N a whole number >= 1")
    return int(count)


class Labels:
    """Region labels (0..count-1) of N images of size (H, W), looked up a band of rows at a time
    in a dense map [N,h,w] through nearest-neighbour indices (`rows` [H] and `cols` [W] of the
    map), so that a large image's labels are never all in memory."""

    def __init__(self, dense: Tensor, count: int, rows: Tensor, cols: Tensor) -> None:
        self.dense, self.count = dense, count
        self._rows, self._cols = rows.to(dense.device), cols.to(dense.device)
        self.n = dense.shape[0]
        self.size = (len(rows), len(cols))

    def band(self, rows: slice = slice(None)) -> Tensor:
        """Labels [N,b,W] (int64) of the image's rows `rows`."""
        return self.dense[:, self._rows[rows]][:, :, self._cols].long()

    def to(self, device: torch.device) -> Labels:
        return Labels(self.dense.to(device), self.count, self._rows, self._cols)


def label_source(source: LabelSource, size: tuple[int, int]) -> Labels:
    """The region labels of an image of `size` (H, W) from a label map.

    `source` is a label array [h,w], a colour array [h,w,3], or a path to a label or colour
    image. Each distinct value (or colour) is one region, numbered in sorted order; a map of
    another size is resized (nearest neighbour, as F.interpolate's "nearest-exact").
    """
    if isinstance(source, Tensor):
        array = source.detach().cpu().numpy()
    elif isinstance(source, np.ndarray):
        array = source
    else:
        array = np.asarray(open_image(source, mode=None))
    if array.ndim == 3 and array.shape[2] in (3, 4):  # colour: one integer per RGB colour
        packed = array[..., 0].astype(np.int32) << 16
        packed |= array[..., 1].astype(np.int32) << 8
        packed |= array[..., 2]
        array = packed
    if array.ndim != 2 or array.size == 0:
        raise StyleBankError(
            f"a region map must be a label array [H,W] or a colour image, got shape {array.shape}"
        )
    dense, count = _dense_labels(array)
    rows, cols = (_nearest(n, size[i]) for i, n in enumerate(dense.shape))
    return Labels(torch.from_numpy(dense)[None], count, rows, cols)


def label_map(source: LabelSource, size: tuple[int, int]) -> tuple[Tensor, int]:
    """Region labels [H,W] (int64, 0..R-1) at `size` (H, W), and R: `label_source`'s labels
    all at once."""
    labels = label_source(source, size)
    return labels.band()[0], labels.count


def _nearest(length: int, size: int) -> Tensor:
    """Indices [size] of the pixels nearest-exact resizing takes from a row of `length`."""
    ramp = torch.arange(length, dtype=torch.float64)
    if length == size:
        return ramp.long()
    return F.interpolate(ramp[None, None], size=size, mode="nearest-exact")[0, 0].long()


def _dense_labels(array: np.ndarray) -> tuple[np.ndarray, int]:
    """The values of `array` renumbered 0..R-1 in sorted order (same shape, the smallest
    integer type that holds them), and R.

    Integer maps with a modest value range (label maps; colours packed in 24 bits) take a
    lookup table, linear in the pixels; np.unique would sort them all.
    """
    if array.dtype == bool:
        array = array.view(np.uint8)
    if array.dtype.kind in "iu" and array.size:
        low, high = int(array.min()), int(array.max())
        span = high - low + 1
        if span <= max(1 << 24, array.size):
            wide = np.int32 if -(1 << 31) <= low and high < 1 << 31 else np.int64
            shifted = array.astype(wide)
            shifted -= low
            present = np.zeros(span, bool)
            present[shifted.ravel()] = True
            count = int(present.sum())
            lookup = (np.cumsum(present) - 1).astype(_label_type(count))
            return lookup[shifted], count
    values, labels = np.unique(array, return_inverse=True)
    return labels.reshape(array.shape).astype(_label_type(len(values))), len(values)


def _label_type(count: int) -> type:
    """The smallest integer type for labels 0..count-1 (that torch also has)."""
    return np.uint8 if count <= 256 else np.int16 if count <= 1 << 15 else np.int32


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


def feature_clusters(
    encode: EncodeFn, shape: tuple[int, int, int], n: int, sample: int = 4096
) -> Tensor:
    """Labels [N,h,w] of `n` regions found by K-means, image by image, on the encoder's
    features of N images (`shape` (N, h, w): the feature map's), which `encode` hands over a
    block at a time (twice: for the sample, then for the labels).

    Fitted on at most `sample` feature pixels (fixed seed, the same pixels in every image);
    regions are numbered from the largest to the smallest.
    """
    count, h, w = shape
    g = torch.Generator().manual_seed(0)
    subset = torch.randperm(h * w, generator=g)[:sample]
    at_row, at_col = subset // w, subset % w
    points: list[Tensor] = []  # [N, sample, C], filled block by block

    def gather(rows: slice, cols: slice, features: Tensor) -> None:
        if not points:
            points.append(features.new_empty(count, len(subset), features.shape[1]))
        inside = (at_row >= rows.start) & (at_row < rows.stop)
        inside &= (at_col >= cols.start) & (at_col < cols.stop)
        where = inside.nonzero()[:, 0]
        r, c = (
            (at_row[where] - rows.start).to(features.device),
            (at_col[where] - cols.start).to(features.device),
        )
        points[0][:, where.to(features.device)] = features[:, :, r, c].transpose(1, 2)

    encode(gather)
    centres = [kmeans(p, n).to(p) for p in points[0]]
    labels = torch.empty(count, h, w, dtype=torch.long, device=points[0].device)

    def assign(rows: slice, cols: slice, features: Tensor) -> None:
        pixels = features.flatten(2).transpose(1, 2)  # [N, pixels, C]
        for i in range(count):
            nearest = torch.cdist(pixels[i], centres[i]).argmin(dim=1)
            labels[i, rows, cols] = nearest.view(rows.stop - rows.start, cols.stop - cols.start)

    encode(assign)
    for image in labels:  # renumbered from the largest region
        sizes = torch.bincount(image.flatten(), minlength=n)
        image.copy_(torch.argsort(torch.argsort(sizes, descending=True, stable=True))[image])
    return labels


def cluster_centres(features: Tensor, n: int, sample: int = 4096) -> Tensor:
    """`n` K-means centres [n,C] of one image's features [C,h,w], fitted on at most `sample`
    feature pixels (fixed seed), ordered from the largest region to the smallest: a clip's
    first frame, whose centres label the frames after it (`nearest_centres`)."""
    c, h, w = features.shape
    points = features.reshape(c, h * w).T
    subset = torch.randperm(h * w, generator=torch.Generator().manual_seed(0))[:sample]
    centres = kmeans(points[subset.to(points.device)], n).to(points)
    sizes = torch.bincount(torch.cdist(points, centres).argmin(dim=1), minlength=n)
    return centres[torch.argsort(sizes, descending=True, stable=True)]


def nearest_centres(features: Tensor, centres: Tensor) -> Tensor:
    """Labels [N,h,w]: the nearest of `centres` [n,C] to each pixel of `features` [N,C,h,w]."""
    n, c, h, w = features.shape
    pixels = features.flatten(2).transpose(1, 2)  # [N, pixels, C]
    return torch.cdist(pixels, centres.to(features)[None]).argmin(dim=2).view(n, h, w)


def cell_labels(dense: Tensor, count: int, size: tuple[int, int], cell: int = 4) -> Labels:
    """The labels of images of `size` (H, W) whose cell x cell blocks (feature pixels) have
    the labels `dense` [N,h,w] (the image's last blocks may be cut short)."""
    return Labels(dense, count, torch.arange(size[0]) // cell, torch.arange(size[1]) // cell)


def cluster_labels(features: Tensor, n: int, size: tuple[int, int], sample: int = 4096) -> Tensor:
    """Labels [H,W] of `n` regions found by K-means on `features` [C,h,w] (from
    `StyleBankNet.encode`: feature pixel (i, j) covers image pixels [4i, 4i+4) x [4j, 4j+4));
    `feature_clusters` on one image, all at once."""
    _, h, w = features.shape

    def encode(consume: Callable[[slice, slice, Tensor], None]) -> None:
        consume(slice(0, h), slice(0, w), features[None])

    return cell_labels(feature_clusters(encode, (1, h, w), n, sample), n, size).band()[0]
