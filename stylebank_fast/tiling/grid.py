"""Tiles of an image for tiled stylization: a grid of owned blocks, and the region around each
that a pass reads."""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 4  # the encoder halves the image twice: tiles start at multiples of 4 pixels


def align(pixels: int) -> int:
    """`pixels` rounded up to a multiple of ALIGN."""
    return -(-pixels // ALIGN) * ALIGN


@dataclass(frozen=True)
class Tile:
    """A block of the (padded) image: rows and columns [start, stop), multiples of ALIGN.

    The tiles of a grid cover the image once: each is the part of every layer's output (at that
    layer's resolution) that it owns."""

    rows: slice
    cols: slice

    def region(self, margin: int, size: tuple[int, int]) -> tuple[slice, slice]:
        """The tile and `margin` pixels around it (a multiple of ALIGN), within `size`."""
        return (
            slice(max(0, self.rows.start - margin), min(size[0], self.rows.stop + margin)),
            slice(max(0, self.cols.start - margin), min(size[1], self.cols.stop + margin)),
        )


def tile_grid(size: tuple[int, int], side: int) -> list[Tile]:
    """Tiles of about `side` x `side` pixels (at most; multiples of ALIGN, near-equal) covering
    an image of `size` (multiples of ALIGN), row by row."""

    def starts(length: int) -> list[int]:
        count = -(-length // side)
        step = align(-(-length // count))
        return list(range(0, length, step)) + [length]

    rows, cols = starts(size[0]), starts(size[1])
    return [
        Tile(slice(r0, r1), slice(c0, c1))
        for r0, r1 in zip(rows, rows[1:])
        for c0, c1 in zip(cols, cols[1:])
    ]
