"""Stylizer: the Python API for stylizing photos with a trained StyleBank model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .checkpoint import load_model
from .color import transfer_luminance
from .devices import resolve_device
from .errors import StyleBankError
from .fast_inference import fast_model
from .imageio import open_image, to_pil, to_tensor
from .model import StyleBankNet
from .painting_styles import LearntStyle, PaintingInput, add_painting_style
from .regions import LabelSource, cluster_labels, label_map, parse_auto, region_masks
from .style_learning import LearnSettings
from .styles import Style, blend_weights
from .training import ProgressFn

__all__ = ["BUILTIN_MODEL", "REGION_COLOURS", "Stylizer", "ImageInput", "Style", "resolve_model"]

BUILTIN_MODEL = Path(__file__).parent / "assets" / "builtin.sbk"

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
# the reconstruction grows about as 1 - (1 - b)^2.6 with the blend b (docs/stylize.md), so a
# strength s blends b = 1 - (1 - s)^(1/2.6) and the output moves about evenly with s.
_STRENGTH_EXPONENT = 2.6


def feature_blend(strength: float) -> float:
    """The blend of bank and encoder features that gives a perceptually even `strength`."""
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
        bfloat16: run the fast network's convolutions in bfloat16 (faster on CPUs with
            AVX512-BF16 or AMX, and on recent GPUs; slightly less exact: docs/stylize.md).

    Example:
        >>> stylizer = Stylizer("model.sbk")
        >>> stylizer.stylize("photo.jpg", style={"starry_night": 0.7, "great_wave": 0.3})
    """

    def __init__(
        self,
        model: StyleBankNet | str | os.PathLike[str] | None = None,
        device: str = "auto",
        fast: bool = True,
        bfloat16: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        model = resolve_model(model)
        if model.n_styles == 0:
            raise StyleBankError("the model has no styles; train some with stylebank_fast.train")
        self.model = model.to(self.device).eval()
        if bfloat16 and not fast:
            raise StyleBankError("bfloat16 runs on the fast network: use it with fast=True")
        self.learnt_styles: dict[str, LearntStyle] = {}  # by learn_style, by name
        # what stylize runs: the model itself, or its fast rewrite (sharing its bank)
        self._net = (
            fast_model(self.model, torch.bfloat16 if bfloat16 else torch.float32)
            if fast
            else self.model
        )

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
        """
        if not 0 <= strength <= 1:
            raise StyleBankError(f"strength must be between 0 and 1, got {strength}")
        if isinstance(feather, bool) or not isinstance(feather, int) or feather < 0:
            raise StyleBankError(f"feather must be a whole number of pixels >= 0, got {feather!r}")
        if feather and regions is None:
            raise StyleBankError(
                f"feather={feather} softens region borders: it needs regions (and region_styles)"
            )
        images, was_tensor = self._as_batch(image)
        with torch.inference_mode():
            mix = self._mix(images, style, regions, region_styles, feather)
            out = self.stylize_batch(images, mix, strength, preserve_color)
        if not was_tensor:
            return to_pil(out[0])
        # a clone outside inference mode is an ordinary tensor (in-place ops, autograd allowed)
        out = out.to(device=image.device, dtype=image.dtype).clone()
        return out if image.dim() == 4 else out[0]

    def stylize_batch(
        self,
        images: Tensor,
        mix: Tensor,
        strength: float = 1.0,
        preserve_color: bool = False,
        features: Tensor | None = None,
    ) -> Tensor:
        """Stylize float images [N,3,H,W] in [0,1] on the model's device with the network's
        own style argument `mix`: bank weights [N|1,K] (rows summing to 1; one blend per
        image), or masks [N|1,K,h,w] from `region_mix`. Returns [N,3,H,W] in [0,1]. The
        building block of `stylize` and of video, where every frame can have its own mix;
        `features` (from `encode`, filtered over time by video) replaces the images' own."""
        with torch.inference_mode():
            if features is None:
                features = self._net.encode(images)
            size = images.shape[-2:]
            out = self._net.decode(features, size, mix, strength=feature_blend(strength))
            out = out.clamp(0, 1)
            return transfer_luminance(images, out) if preserve_color else out

    def region_mix(
        self, labels: Tensor, region_styles: Sequence[Style], size: tuple[int, int], feather: int
    ) -> Tensor:
        """Bank masks (the `mix` of `stylize_batch`) for region labels [N|1,H,W] (0..R-1) at
        image size `size`, one style per region."""
        weights = torch.stack([self.style_weights(s) for s in region_styles]).to(self.device)

        def to_features(maps: Tensor) -> Tensor:
            return self.model.feature_masks(maps, size)

        return region_masks(labels.to(self.device), weights, feather, to_features)

    def encode(self, images: Tensor) -> Tensor:
        """Encoder features [N,C,h,w] of float images [N,3,H,W] (see `StyleBankNet.encode`)."""
        with torch.inference_mode():
            return self._net.encode(images.to(self.device))

    def _mix(
        self,
        images: Tensor,
        style: Style | None,
        regions: LabelSource | str | None,
        region_styles: Sequence[Style] | None,
        feather: int,
    ) -> Tensor:
        """The model's `style` argument: weights [1,K], or masks [N,K,H,W] for regions."""
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
        h, w = images.shape[-2:]
        labels, count = self._labels(images, regions)
        what = (
            f"regions {regions}" if parse_auto(regions) else f"the region map has {count} regions"
        )
        if count != len(region_styles):
            raise StyleBankError(
                f"{what} but {len(region_styles)} region styles were given "
                f"({', '.join(map(str, region_styles))}); give one style per region"
            )
        return self.region_mix(labels, region_styles, (h, w), feather)

    def _labels(self, images: Tensor, regions: LabelSource | str) -> tuple[Tensor, int]:
        """Region labels [N|1,H,W] (0..R-1) for `images` [N,3,H,W], and R."""
        h, w = images.shape[-2:]
        count = parse_auto(regions)
        if count is not None:
            features = self._net.encode(images)
            return torch.stack([cluster_labels(f, count, (h, w)) for f in features]), count
        labels, count = label_map(regions, (h, w))
        return labels[None], count

    def region_map(self, image: ImageInput, regions: LabelSource | str) -> Image.Image:
        """The regions `stylize` would use for `image`, as a colour image: region i in
        `REGION_COLOURS[i]` (label maps number their regions by sorted value, auto:N from the
        largest region to the smallest)."""
        images, _ = self._as_batch(image)
        with torch.inference_mode():
            labels, _ = self._labels(images[:1], regions)
        return Image.fromarray(REGION_COLOURS[labels[0].cpu().numpy() % len(REGION_COLOURS)], "RGB")

    def _as_batch(self, image: ImageInput) -> tuple[Tensor, bool]:
        """`image` as float [N,3,H,W] on the model's device, and whether it was a tensor."""
        if isinstance(image, Tensor):
            if image.dim() not in (3, 4) or image.shape[-3] != 3 or not image.is_floating_point():
                raise StyleBankError(
                    "an image tensor must be float [3,H,W] or [N,3,H,W] in [0,1], got "
                    f"{image.dtype} {list(image.shape)}"
                )
            batch = image if image.dim() == 4 else image[None]
            return batch.to(self.device, torch.float32), True
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise StyleBankError(
                    f"an image array must be uint8 [H,W,3], got {image.dtype} {list(image.shape)}"
                )
            image = Image.fromarray(image, "RGB")
        elif isinstance(image, (str, os.PathLike)):
            image = open_image(image)
        elif not isinstance(image, Image.Image):
            raise StyleBankError(
                "image must be a PIL image, a path, a uint8 array [H,W,3] or a float tensor, "
                f"got {type(image).__name__}"
            )
        return to_tensor(image).to(self.device), False
