"""TiledNetwork: a fast StyleBankNet run tile by tile over an image of any size, every
normalisation with the statistics of the whole image, so the output is the untiled one.

Each normalisation takes one pass over the tiles: each tile computes the layer below it from
the image (its statistics from the passes before) and adds the part of that layer it owns to
the layer's sums (`TileStatistics`); a last pass writes the output. A tile reads the image
around it as far as the layers it runs reach (`FastLayers.input_margin`): every value it keeps
is then computed from exact inputs, and at the image's border its own padding is the image's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from ..fast_inference import FastLayers
from ..fast_inference.convolutions import Conv, PhasedConv
from ..fast_inference.normalisations import UpsampleConvNormReLU
from ..memory import release_free_memory
from ..model import StyleBankNet, StyleSpec
from ..region_norm import Complete
from ..region_statistics import StyleAlone
from .grid import ALIGN, Tile, align, tile_grid
from .statistics import TileDone, TileStatistics

__all__ = ["TiledNetwork", "ReadFn", "WriteFn", "TileProgressFn", "margin"]

ReadFn = Callable[[slice, slice], Tensor]  # rows, cols of the image -> [N,3,h,w] float32
WriteFn = Callable[[slice, slice, Tensor], None]  # rows, cols, network output [N,3,h,w]
TileProgressFn = Callable[[str, float, float, float], None]  # stage, done, all work, seconds
FEATURE_SCALE = 1 / ALIGN**2  # feature pixels per image pixel
# one pass: the margin its tiles read, its work per pixel, and what it does with a tile
_Pass = tuple[int, float, Callable[[Tile, tuple[slice, slice], Tensor], None]]


class TiledNetwork:
    """Stylizes an image of `size` (H, W), `batch` images at once, in tiles of about `tile` x
    `tile` pixels, with `net`, a `fast_inference.fast_model`.

    `read(rows, cols)` gives those pixels of the images ([N,3,h,w] float32 on the network's
    device); a tile reads at most its size plus a margin of a few dozen pixels per side.
    `progress(stage, done, total, seconds)` hears after each tile of each pass, the work in
    multiply-adds, `stage` as the call named it.
    """

    def __init__(
        self,
        net: StyleBankNet,
        read: ReadFn,
        size: tuple[int, int],
        tile: int,
        batch: int = 1,
        progress: TileProgressFn | None = None,
    ) -> None:
        if not (isinstance(net.encoder, FastLayers) and isinstance(net.decoder, FastLayers)):
            raise TypeError("tiled stylization runs a fast_inference.fast_model network")
        self.net, self.size, self.batch = net, size, batch
        self.padded = net.padded_size(*size)
        self.retile(tile)
        self.progress = progress
        self._read_image, self._mode = read, net.pad_mode(*size)
        self._encoder_statistics: list[TileStatistics] | None = None

    def retile(self, tile: int) -> None:
        """Tiles of about `tile` x `tile` pixels from now on (the statistics gathered stay)."""
        self.tiles = tile_grid(self.padded, max(ALIGN, align(tile)))

    def encode(self, consume: WriteFn, stage: str = "encoding") -> None:
        """Runs the encoder: `consume(rows, cols, features)` gets each tile's features
        [N,128,h,w] (rows and cols of the feature map, which is a quarter of the padded
        image)."""
        encoder = self.net.encoder
        run_passes = self._encoder_passes()

        def features(tile: Tile, region: tuple[slice, slice], x: Tensor) -> None:
            out = encoder(x, moments=self._given(self._encoder_statistics))
            rows, cols = (
                _crop(owned, around, ALIGN) for owned, around in zip((tile.rows, tile.cols), region)
            )
            consume(_scaled(tile.rows, ALIGN), _scaled(tile.cols, ALIGN), out[..., rows, cols])

        cost = _macs(encoder)
        self._run(run_passes + [(align(encoder.input_margin()), cost, features)], stage)

    def stylize(
        self,
        style: StyleSpec,
        write: WriteFn,
        mask_on: str = "output",
        strength: float = 1.0,
        stage: str = "stylizing",
    ) -> None:
        """What `net(images, style, mask_on, strength)` computes, tile by tile:
        `write(rows, cols, out)` gets each tile's output [N,3,h,w] (rows and cols of the
        image)."""
        net, decoder = self.net, self.net.decoder
        device = net.bank.weights[0].device
        mix, regions, banks = net.bank_mix(style, self.batch, self.size, device)
        sampler = None
        if regions is not None:
            features_size = (self.padded[0] // ALIGN, self.padded[1] // ALIGN)
            sampler = net.patch_sampler(features_size, regions, device)
        alone: list[StyleAlone] = []  # made once the first pass has filled the sampler

        def completion(j: int) -> Complete | None:
            if sampler is None:
                return None
            if not alone:
                alone.append(net.style_alone(sampler, regions, banks, strength))
            return alone[0].completion(j)

        passes = self._encoder_passes()
        statistics = [
            TileStatistics(partial(completion, j)) for j in range(len(decoder.norm_steps()))
        ]
        encoder_macs = _macs(net.encoder)
        bank_macs = net.bank.weights[0].numel() * FEATURE_SCALE

        def decode(
            region: tuple[slice, slice], x: Tensor, moments: Sequence, sample: Tile | None = None
        ) -> Tensor:
            features = net.encoder(x, moments=self._given(self._encoder_statistics))
            if sample is not None and sampler is not None:  # the tile's own feature pixels
                own = [
                    _crop(owned, around, ALIGN)
                    for owned, around in zip((sample.rows, sample.cols), region)
                ]
                rows, cols = _scaled(sample.rows, ALIGN), _scaled(sample.cols, ALIGN)
                sampler.add(rows, cols, features[..., own[0], own[1]])
            rows, cols = (_scaled(around, ALIGN) for around in region)
            tile_mix = mix[..., rows, cols] if mix.dim() == 4 else mix
            features = net.styled_features(features, tile_mix, mask_on, strength)
            tile_regions = None if regions is None else regions[..., rows, cols]
            return decoder(features, tile_regions, moments)

        for j, step in enumerate(decoder.norm_steps()):

            def collect(tile: Tile, region: tuple[slice, slice], x: Tensor, j: int = j) -> None:
                moments = self._given(statistics[:j]) + [statistics[j].collector(tile, region)]
                decode(region, x, moments, tile if j == 0 else None)

            cost = encoder_macs + bank_macs + _macs(decoder, step + 1, FEATURE_SCALE)
            passes.append((margin(net, step + 1), cost, collect))

        def output(tile: Tile, region: tuple[slice, slice], x: Tensor) -> None:
            out = decode(region, x, self._given(statistics))
            h, w = self.size
            rows = slice(tile.rows.start, min(tile.rows.stop, h))
            cols = slice(tile.cols.start, min(tile.cols.stop, w))
            crop = [_crop(owned, around, 1) for owned, around in zip((rows, cols), region)]
            write(rows, cols, out[..., crop[0], crop[1]])

        passes.append(
            (margin(net), encoder_macs + bank_macs + _macs(decoder, None, FEATURE_SCALE), output)
        )
        self._run(passes, stage)

    def _encoder_passes(self) -> list[_Pass]:
        """A pass per encoder normalisation whose statistics are not known yet (they are kept:
        `encode` and `stylize` share them)."""
        if self._encoder_statistics is not None:
            return []
        encoder = self.net.encoder
        statistics = self._encoder_statistics = [TileStatistics() for _ in encoder.norm_steps()]
        passes: list[_Pass] = []
        for j, step in enumerate(encoder.norm_steps()):

            def collect(tile: Tile, region: tuple[slice, slice], x: Tensor, j: int = j) -> None:
                moments = self._given(statistics[:j]) + [statistics[j].collector(tile, region)]
                encoder(x, moments=moments)

            reach = align(encoder.input_margin(0, step + 1))
            passes.append((reach, _macs(encoder, step + 1), collect))
        return passes

    @staticmethod
    def _given(statistics: Sequence[TileStatistics]) -> list:
        return [s.moments for s in statistics]

    def _run(self, passes: list[_Pass], stage: str) -> None:
        """Runs the passes over every tile, reporting progress by work done (multiply-adds)."""

        def work(margin: int, cost: float, tile: Tile) -> float:
            rows, cols = tile.region(margin, self.padded)
            return cost * (rows.stop - rows.start) * (cols.stop - cols.start)

        total = sum(work(m, c, t) for m, c, _ in passes for t in self.tiles)
        done, start = 0.0, time.monotonic()
        try:
            for margin, cost, run in passes:
                for tile in self.tiles:
                    region = tile.region(margin, self.padded)
                    try:
                        run(tile, region, self._read(*region))
                    except TileDone:
                        pass
                    release_free_memory()  # what the tile freed, before the next one
                    done += work(margin, cost, tile)
                    if self.progress is not None:
                        self.progress(stage, done, total, time.monotonic() - start)
        except BaseException:
            self._encoder_statistics = None  # a pass cut short leaves partial sums
            raise

    def _read(self, rows: slice, cols: slice) -> Tensor:
        """Pixels of the padded image: beyond the image's bottom and right, padded as the
        whole image is (`StyleBankNet.pad_mode`)."""
        h, w = self.size
        x = self._read_image(
            slice(rows.start, min(rows.stop, h)), slice(cols.start, min(cols.stop, w))
        )
        pad = (0, max(0, cols.stop - w), 0, max(0, rows.stop - h))
        return F.pad(x, pad, mode=self._mode) if any(pad) else x


def margin(net: StyleBankNet, decoder_steps: int | None = None) -> int:
    """The margin (a multiple of ALIGN) a tile reads around itself for the first
    `decoder_steps` steps of the decoder (all: None) to be exact over the tile."""
    reach = net.decoder.input_margin(0, decoder_steps) + net.kernel_size // 2  # the bank's
    return align(net.encoder.input_margin(reach))


def _scaled(pixels: slice, factor: int) -> slice:
    return slice(pixels.start // factor, pixels.stop // factor)


def _crop(owned: slice, around: slice, factor: int) -> slice:
    """`owned` within a layer computed over `around`, `factor` times smaller than the image."""
    return slice((owned.start - around.start) // factor, (owned.stop - around.start) // factor)


def _macs(layers: FastLayers, steps: int | None = None, scale: float = 1.0) -> float:
    """Multiply-adds per image pixel of the first `steps` steps of `layers` (all: None), fed
    at `scale` output pixels per image pixel; normalisations count as free. Only to tell how
    far a run has got."""
    macs = 0.0
    for step in layers.steps[:steps]:
        if isinstance(step, Conv):
            scale /= step.stride[0] * step.stride[1]
            macs += step.weight.numel() * scale
        elif isinstance(step, PhasedConv):  # on the half-resolution space-to-depth image
            macs += step.weight.numel() * scale / 4
        elif isinstance(step, UpsampleConvNormReLU):  # four phases at the input's resolution
            macs += step.weight.numel() * scale
            scale *= 4
    return macs
