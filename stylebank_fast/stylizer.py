"""Stylizer: the Python API for stylizing photos with a trained StyleBank model."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .checkpoint import load_model
from .color import transfer_luminance
from .cpu_threads import fitted_threads
from .devices import inference_dtype, resolve_device
from .errors import StyleBankError
from .fast_inference import fast_model
from .imageio import open_image
from .memory import available_memory, gigabytes
from .model import StyleBankNet
from .pixels import Canvas, Pixels
from .progress import ProgressFn, WorkProgress
from .region_maps import feature_regions
from .regions import Labels, LabelSource, cell_labels, feature_clusters, label_source, parse_auto
from .styles import Style, blend_weights
from .tiling import TiledNetwork
from .tiling.budget import (
    MIN_TILE,
    RUNTIME_BYTES,
    activation_bytes,
    smallest_tile_bytes,
    tile_side,
)
from .tiling.network import TileProgressFn

if TYPE_CHECKING:  # learning a style loads the loss network's code: on first use only
    from .painting_styles import LearntStyle, PaintingInput

__all__ = [
    "BUILTIN_MODEL",
    "DEFAULT_MEMORY_BUDGET",
    "REGION_COLOURS",
    "Stylizer",
    "ImageInput",
    "Style",
    "resolve_model",
]

BUILTIN_MODEL = Path(__file__).parent / "assets" / "builtin.sbk"
DEFAULT_MEMORY_BUDGET = 1.5  # GB a stylization may take besides the images (docs/stylize.md)

# Colours of regions 0, 1, 2, ... in region maps (then repeating): distinct, named in docs.
REGION_COLOURS = np.array(
    [
        [230, 25, 75],  # red
        [60, 180, 75],  # green
        [0, 130, 200],  # blue
        [255, 225, 25],  # yellow
        [145, 30, 180],  # purple
        [70, 240, 240],  # cyan
        [245, 130, 48],  # orange
        [240, 50, 230],  # magenta
    ],
    dtype=np.uint8,
)

# The output moves fast at small feature blends and barely at large ones: the distance from
# the reconstruction grows about as 1 - (1 - b)^4 with the blend b (docs/stylize.md), so a
# strength s blends b = 1 - (1 - s)^(1/4) and the output moves about evenly with s.
_STRENGTH_EXPONENT = 4.0


def feature_blend(strength: float | Tensor) -> float | Tensor:
    """The blend of bank and encoder features that gives a perceptually even `strength` (a
    number, or a tensor of them)."""
    return 1.0 - (1.0 - strength) ** (1.0 / _STRENGTH_EXPONENT)


ImageInput = Union[Image.Image, str, "os.PathLike[str]", np.ndarray, Tensor]


def resolve_model(model: StyleBankNet | str | os.PathLike[str] | None) -> StyleBankNet:
    """`model` itself, the model in a file, or (None) the built-in model."""
    if isinstance(model, StyleBankNet):
        return model
    if model is not None:
        return load_model(model)
    if not BUILTIN_MODEL.is_file():
        raise StyleBankError(
            f"the built-in model is missing ({BUILTIN_MODEL}): reinstall stylebank_fast, or "
            "pass a model file trained with `python -m stylebank_fast.train` (model= in "
            "Python, --model on the command line)"
        )
    return load_model(BUILTIN_MODEL)


class Stylizer:
    """Stylizes images with a StyleBank model.

    Args:
        model: a `StyleBankNet` (moved to `device`), the path of a model file, or None for the
            built-in model.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        fast: run the inference-only rewrite of the network (`fast_inference.fast_model`):
            the same function, faster (docs/stylize.md has the measurements).
        bfloat16: run the fast network's convolutions in bfloat16 (True) or float32 (False);
            None (the default) picks bfloat16 on CPUs that compute it natively (AVX512-BF16
            or AMX), where it is faster and differs from float32 by less than the eye sees
            (docs/stylize.md has the measurements), and float32 elsewhere.
        memory_budget: GB of memory a stylization may take, the input and output images
            aside; larger images are stylized in tiles, with the same output (each
            normalisation's statistics are the whole image's), a few times slower. The
            memory free on the machine caps it too. `float("inf")`: never tile.

    Example:
        >>> stylizer = Stylizer("model.sbk")
        >>> stylizer.stylize("photo.jpg", style={"starry_night": 0.7, "great_wave": 0.3})
    """

    def __init__(
        self,
        model: StyleBankNet | str | os.PathLike[str] | None = None,
        device: str = "auto",
        fast: bool = True,
        bfloat16: bool | None = None,
        memory_budget: float = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)):
            raise StyleBankError(f"memory_budget is a number of GB, got {memory_budget!r}")
        if not memory_budget > 0:
            raise StyleBankError(f"memory_budget must be more than 0 GB, got {memory_budget}")
        self.memory_budget = float(memory_budget)
        self.device = resolve_device(device)
        model = resolve_model(model)
        if model.n_styles == 0:
            raise StyleBankError("the model has no styles; train some with stylebank_fast.train")
        self.model = model.to(self.device).eval()
        if bfloat16 and not fast:
            raise StyleBankError("bfloat16 runs on the fast network: use it with fast=True")
        self.learnt_styles: dict[str, LearntStyle] = {}  # by learn_style, by name
        # what stylize runs: the model itself, or its fast rewrite (sharing its bank)
        self._dtype = inference_dtype(bfloat16, self.device) if fast else None
        self._net = fast_model(self.model, self._dtype) if fast else self.model
        self._tiled_net = self._net if fast else None  # tiles run the fast network: made on need

    @property
    def precision(self) -> str:
        """ "bfloat16" or "float32": what the network's convolutions compute in."""
        return "bfloat16" if self._dtype == torch.bfloat16 else "float32"

    def learn_style(
        self,
        painting: PaintingInput,
        name: str | None = None,
        steps: int | None = None,
        progress: bool | ProgressFn = True,
    ) -> str:
        """Learn a new style from any painting (a path or a PIL image); returns its name.

        Only a new bank is learnt (a few minutes on a laptop CPU; README), on the model's
        frozen encoder and decoder, so no other style changes. The bank is cached (see
        `style_cache`): the same painting on the same model loads at once next time. `name`
        defaults to the file's stem; `steps` caps the learning steps; `progress` prints
        progress lines (or is a callback `(step, steps, losses, seconds)`).
        The new style is then used like any other: by name, in blends and in regions.
        """
        from .painting_styles import add_painting_style
        from .style_learning import LearnSettings

        settings = LearnSettings() if steps is None else LearnSettings(steps=steps)
        learnt = add_painting_style(self.model, painting, name, settings, progress)
        self.learnt_styles[learnt.name] = learnt
        return learnt.name

    def list_styles(self) -> list[str]:
        """The model's style names, in index order."""
        return list(self.model.style_names)

    def style_weights(self, style: Style) -> Tensor:
        """Bank weights [K] (summing to 1) of a style name, index or blend {style: weight}."""
        return blend_weights(self.model.style_names, style, normalise=True).float()

    def stylize(
        self,
        image: ImageInput,
        style: Style | None = None,
        regions: LabelSource | str | None = None,
        region_styles: Sequence[Style] | None = None,
        feather: int = 0,
        strength: float = 1.0,
        preserve_color: bool = False,
        progress: bool | TileProgressFn = False,
    ) -> Image.Image | Tensor:
        """Stylize one image (or a batch of tensors); the output has the input's size.

        Args:
            image: a PIL image, a path, a uint8 array [H,W,3], or a float tensor [3,H,W] or
                [N,3,H,W] in [0,1]. A tensor gives a tensor of the same shape, anything else
                a PIL image.
            style: a name, an index, or a blend {style: weight} (normalised to sum 1).
                Give either `style` or `regions`.
            regions: a label map [H,W] (ints; or colours [H,W,3]; or the path of a label or
                colour image): each distinct value is one region, in sorted order; any size
                (resized to the image). Or "auto:N": N regions found by K-means on the
                encoder's features, numbered from the largest.
            region_styles: one style (name, index or blend) per region.
            feather: softens region borders over this many pixels.
            strength: 1 is the full style, 0 the auto-encoder's reconstruction of the photo;
                in between the output moves about evenly (0.5 is about half way), through a
                blend of the bank's and the encoder's features (`feature_blend`).
            preserve_color: keep the photo's colours (only the luminance is stylized).
            progress: for an image stylized in tiles (see `memory_budget`): True prints
                "stylizing 37% | 1m20s left" lines to stderr; or a callback
                `(stage, work done, all work, seconds)` (`tiling.TiledNetwork`).
        """
        if not 0 <= strength <= 1:
            raise StyleBankError(f"strength must be between 0 and 1, got {strength}")
        if isinstance(feather, bool) or not isinstance(feather, int) or feather < 0:
            raise StyleBankError(f"feather must be a whole number of pixels >= 0, got {feather!r}")
        if feather and regions is None:
            raise StyleBankError(
                f"feather={feather} softens region borders: it needs regions (and region_styles)"
            )
        pixels = self._pixels(image)
        canvas = Canvas(pixels, image if pixels.is_tensor else None)  # not an inference tensor
        report = WorkProgress() if progress is True else progress or None
        blend = feature_blend(strength)
        with torch.inference_mode(), fitted_threads():
            # the output (and PIL's copy of it) takes free memory where it lies, not budget
            held = canvas.nbytes() * (1 if pixels.is_tensor else 7 / 3)
            held *= canvas.device.type == self.device.type
            side = self._tile_side(pixels, held)
            tiles = None if side is None else self._tiles(pixels, side, report)
            mix = self._mix(pixels, style, regions, region_styles, feather, tiles)
            if mix.dim() == 4:  # the masks and region weights are held through the run
                side = self._tile_side(pixels, held, 2 * mix.numel() * mix.element_size())
                if side is not None:
                    tiles = tiles or self._tiles(pixels, side, report)
                    tiles.retile(side)  # the encoder's statistics are kept

            def write(rows: slice, cols: slice, out: Tensor, inputs: Tensor | None = None) -> None:
                out = out.clamp(0, 1)
                if preserve_color:
                    inputs = pixels.read(rows, cols) if inputs is None else inputs
                    out = transfer_luminance(inputs, out)
                canvas.write(rows, cols, out)

            if side is None:
                images = pixels.read()
                write(slice(None), slice(None), self._net(images, mix, strength=blend), images)
            else:
                tiles.stylize(mix, write, strength=blend)
        return canvas.result()

    def _tile_side(self, pixels: Pixels, held: float, budgeted: float = 0) -> int | None:
        """The side of the tiles to stylize `pixels` in, or None to stylize them whole: the
        network may take what the memory budget leaves beside the process itself and
        `budgeted` bytes (masks), and what the free memory leaves beside those and `held`
        bytes (the output image, not written yet)."""
        room = self.memory_budget * 1e9 - RUNTIME_BYTES - budgeted
        free = self._free_memory()
        free_room = None if free is None else free - budgeted - held
        if free_room is not None:
            room = min(room, free_room)
        pixel_count = pixels.n * math.prod(self.model.padded_size(*pixels.size))
        if activation_bytes(pixel_count, self._dtype) <= room:
            return None
        net = self._tiling_net()
        needed = smallest_tile_bytes(net, pixels.n)
        if room >= needed:
            return tile_side(net, pixels.n, room)
        h, w = pixels.size
        if free_room is not None and room == free_room:
            raise StyleBankError(
                f"stylizing a {w}x{h} image needs {gigabytes(held)} for its output and at "
                f"least {gigabytes(needed + budgeted)} more for the network, but only "
                f"{gigabytes(free)} of memory is free: free some, or scale the image down "
                "(max_size, --max-size)"
            )
        raise StyleBankError(
            f"memory_budget={self.memory_budget:g} GB is too little for a {w}x{h} image: the "
            f"process takes about {gigabytes(RUNTIME_BYTES)} and even tiles of {MIN_TILE} "
            f"pixels {gigabytes(needed + budgeted)} more; allow at least "
            f"{gigabytes(RUNTIME_BYTES + needed + budgeted)}"
        )

    def _free_memory(self) -> float | None:
        """Bytes free where the network runs: the machine's memory, or the GPU's."""
        if self.device.type == "cuda":
            return float(torch.cuda.mem_get_info(self.device)[0])
        return available_memory()

    def _tiling_net(self) -> StyleBankNet:
        """The fast network that tiles run (made for a Stylizer with fast=False)."""
        if self._tiled_net is None:
            self._tiled_net = fast_model(self.model)
        return self._tiled_net

    def _tiles(self, pixels: Pixels, side: int, progress: TileProgressFn | None) -> TiledNetwork:
        return TiledNetwork(self._tiling_net(), pixels.read, pixels.size, side, pixels.n, progress)

    def _mix(
        self,
        pixels: Pixels,
        style: Style | None,
        regions: LabelSource | str | None,
        region_styles: Sequence[Style] | None,
        feather: int,
        tiles: TiledNetwork | None,
    ) -> Tensor:
        """The model's `style` argument: weights [1,K], or masks [N,K,h,w] at the feature map's
        size for regions (`tiles`: how to run the encoder for auto:N, None: whole)."""
        if regions is None:
            if region_styles is not None:
                raise StyleBankError("region styles were given without regions")
            if style is None:
                raise StyleBankError(
                    "give a style (or regions with region styles); styles: "
                    + ", ".join(self.list_styles())
                )
            return self.style_weights(style)[None].to(self.device)
        if style is not None:
            raise StyleBankError("give either a style or regions with region styles, not both")
        if not region_styles:
            raise StyleBankError("regions need region styles: one style per region")
        labels = self._labels(pixels, regions, tiles)
        count = labels.count
        what = (
            f"regions {regions}" if parse_auto(regions) else f"the region map has {count} regions"
        )
        if count != len(region_styles):
            raise StyleBankError(
                f"{what} but {len(region_styles)} region styles were given "
                f"({', '.join(map(str, region_styles))}); give one style per region"
            )
        return self.region_mix(labels, region_styles, feather)

    def region_mix(self, labels: Labels, region_styles: Sequence[Style], feather: int) -> Tensor:
        """Bank masks (the `mix` of `stylize_batch`) [N,K,h,w] at the feature map's size, for
        region `labels` (see `regions.label_source`, `regions.cell_labels`), one style per
        region."""
        weights = torch.stack([self.style_weights(s) for s in region_styles]).to(self.device)
        padded = self.model.padded_size(*labels.size)
        maps = feature_regions(labels.to(self.device), padded, feather)
        return torch.einsum("nrhw,rk->nkhw", maps, weights)

    def stylize_batch(
        self,
        images: Tensor,
        mix: Tensor,
        strength: float | Tensor = 1.0,
        preserve_color: bool = False,
        features: Tensor | None = None,
    ) -> Tensor:
        """Stylize float images [N,3,H,W] in [0,1] on the model's device, whole (no tiling),
        with the network's own style argument `mix`: bank weights [N|1,K] (rows summing to
        1; one blend per image), or masks [N|1,K,h,w] from `region_mix`. Returns [N,3,H,W]
        in [0,1]. `strength` is one number or one per image [N]. The building block of
        video, where every frame can have its own mix, and of the server's batches;
        `features` (from `encode`, filtered over time by video) replaces the images' own."""
        with torch.inference_mode(), fitted_threads():
            if features is None:
                features = self._net.encode(images)
            size = images.shape[-2:]
            out = self._net.decode(features, size, mix, strength=feature_blend(strength))
            out = out.clamp(0, 1)
            return transfer_luminance(images, out) if preserve_color else out

    def encode(self, images: Tensor) -> Tensor:
        """Encoder features [N,C,h,w] of float images [N,3,H,W] (see `StyleBankNet.encode`)."""
        with torch.inference_mode(), fitted_threads():
            return self._net.encode(images.to(self.device))

    def _labels(
        self, pixels: Pixels, regions: LabelSource | str, tiles: TiledNetwork | None
    ) -> Labels:
        """The region labels of `pixels` (for one image, or each; 0..R-1)."""
        count = parse_auto(regions)
        if count is None:
            return label_source(regions, pixels.size)
        h, w = (side // 4 for side in self.model.padded_size(*pixels.size))

        def encode(consume: Callable[[slice, slice, Tensor], None]) -> None:
            if tiles is None:
                consume(slice(0, h), slice(0, w), self._net.encode(pixels.read()))
            else:
                tiles.encode(consume, "finding regions")

        dense = feature_clusters(encode, (pixels.n, h, w), count)
        return cell_labels(dense, count, pixels.size)

    def region_map(self, image: ImageInput, regions: LabelSource | str) -> Image.Image:
        """The regions `stylize` would use for `image`, as a colour image: region i in
        `REGION_COLOURS[i]` (label maps number their regions by sorted value, auto:N from the
        largest region to the smallest)."""
        pixels = self._pixels(image)
        if pixels.is_tensor:  # of a batch, the first image
            pixels = Pixels(pixels.data[:1], self.device)
        h, w = pixels.size
        colours = np.empty((h, w, 3), np.uint8)
        with torch.inference_mode(), fitted_threads():
            side = self._tile_side(pixels, colours.nbytes)
            labels = self._labels(pixels, regions, side and self._tiles(pixels, side, None))
            step = max(1, (32 << 20) // (8 * w))  # rows of int64 labels at a time
            for start in range(0, h, step):
                band = labels.band(slice(start, start + step))[0].cpu().numpy()
                colours[start : start + step] = REGION_COLOURS[band % len(REGION_COLOURS)]
        return Image.fromarray(colours, "RGB")

    def _pixels(self, image: ImageInput) -> Pixels:
        """`image` as `Pixels` for the model's device: a tensor as given (float [N,3,H,W]), any
        other image as 8-bit RGB."""
        if isinstance(image, Tensor):
            if image.dim() not in (3, 4) or image.shape[-3] != 3 or not image.is_floating_point():
                raise StyleBankError(
                    "an image tensor must be float [3,H,W] or [N,3,H,W] in [0,1], got "
                    f"{image.dtype} {list(image.shape)}"
                )
            return Pixels(image if image.dim() == 4 else image[None], self.device)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise StyleBankError(
                    f"an image array must be uint8 [H,W,3], got {image.dtype} {list(image.shape)}"
                )
            return Pixels(image, self.device)
        if isinstance(image, (str, os.PathLike)):
            image = open_image(image)
        elif not isinstance(image, Image.Image):
            raise StyleBankError(
                "image must be a PIL image, a path, a uint8 array [H,W,3] or a float tensor, "
                f"got {type(image).__name__}"
            )
        return Pixels(
            np.asarray(image if image.mode == "RGB" else image.convert("RGB")), self.device
        )
