"""A normalisation's statistics over the whole image, gathered tile by tile."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from ..fast_inference.statistics import moment_sums, window_shift
from ..region_norm import Complete, moments_mean_var
from .grid import Tile


class TileStatistics:
    """Float64 sums of one normalisation's pre-norm pixels (and region weights), added tile by
    tile, each tile adding the part of the layer it owns; deviations are taken from one shift
    (the first tile's mean) for every tile, so the sums add up exactly as over the whole image.
    `complete()`, once all tiles are in, gives what completes the regions' sums (see
    `region_statistics.StyleAlone`; None: the regions' own statistics).
    """

    def __init__(self, complete: Callable[[], Complete | None] | None = None) -> None:
        self._complete = complete
        self._shift: Tensor | None = None
        self._sums: tuple[Tensor, Tensor, Tensor] | None = None
        self._moments: tuple[Tensor, Tensor] | None = None

    def add(self, windows: list[Tensor], weights: Tensor | None) -> None:
        """Adds pixels: windows [N,h,w,C] and weights [N,h,w,R] (None: no regions)."""
        if self._shift is None:
            self._shift = window_shift(windows)
        sums = moment_sums(windows, weights, self._shift)
        self._sums = sums if self._sums is None else tuple(a + b for a, b in zip(self._sums, sums))

    def moments(self, windows: list[Tensor], weights: Tensor | None) -> tuple[Tensor, Tensor]:
        """The whole image's mean and variance [N,R,C] (a `Moments` for the fast steps: the
        tile's own pixels are not looked at)."""
        if self._moments is None:
            if self._sums is None:
                raise RuntimeError("no tile has added its pixels")
            complete = None if self._complete is None else self._complete()
            self._moments = (complete or moments_mean_var)(*self._sums, self._shift)
        return self._moments

    def collector(self, tile: Tile, region: tuple[slice, slice]):
        """A `Moments` that adds the pixels `tile` owns of its layer, computed over `region`
        of the image (the tile and its margin), then stops the pass over that tile
        (`TileDone`)."""

        def collect(windows: list[Tensor], weights: Tensor | None) -> tuple[Tensor, Tensor]:
            owned = [_owned(tile, region, windows[0].shape[1:3], axis) for axis in (0, 1)]
            self.add(
                [window[:, owned[0], owned[1]] for window in windows],
                None if weights is None else weights[:, owned[0], owned[1]],
            )
            raise TileDone

        return collect


class TileDone(Exception):
    """Raised by a collector once its tile's statistics are added: the rest of the pass over
    that tile is not needed."""


def _owned(tile: Tile, region: tuple[slice, slice], size: tuple[int, int], axis: int) -> slice:
    """The pixels of `tile` in a layer of `size` computed over `region` (at the image's
    resolution): the layer is the region scaled down by a whole factor."""
    owned, around = (tile.rows, tile.cols)[axis], region[axis]
    scale, rest = divmod(around.stop - around.start, size[axis])
    if rest or scale == 0:
        raise ValueError(f"a layer of {size[axis]} pixels does not scale a region of {around}")
    return slice((owned.start - around.start) // scale, (owned.stop - around.start) // scale)
