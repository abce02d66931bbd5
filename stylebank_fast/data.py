"""Images: a recursive content folder with random crops and flips, and style images."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from .errors import DataError
from .imageio import to_rgb

__all__ = ["IMAGE_SUFFIXES", "ContentSampler", "find_images", "load_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def find_images(
    folder: str | Path, skip: Path | None = None, what: str = "content folder"
) -> list[Path]:
    """All images under `folder` (recursive; see IMAGE_SUFFIXES), sorted; files under `skip`
    (an output folder inside it: earlier outputs, not inputs) left out."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{what} not found: {folder}")
    skip = skip.resolve() if skip is not None and skip.resolve() != root.resolve() else None
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not (skip is not None and skip in p.resolve().parents)
    )
    if not paths:
        raise DataError(
            f"no images in {folder} (looked recursively for {', '.join(IMAGE_SUFFIXES)})"
        )
    return paths


def _open_rgb(path: Path, min_side: int | None = None) -> Image.Image:
    try:
        with Image.open(path) as image:
            if min_side is not None:  # JPEG: decode at a reduced scale that still covers min_side
                image.draft("RGB", (min_side, min_side))
            return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None


def _to_tensor(image: Image.Image) -> Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _resize_short_side(image: Image.Image, side: int) -> Image.Image:
    w, h = image.size
    scale = side / min(w, h)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def load_image(path: str, short_side: int | None = None) -> Tensor:
    """An image as float [1,3,H,W] in [0, 1], its shorter side resized to `short_side`."""
    image = _open_rgb(Path(path), short_side)
    if short_side is not None:
        image = _resize_short_side(image, short_side)
    return _to_tensor(image)[None]


class ContentSampler:
    """Random square crops, at several scales, with horizontal flips, of the images in a folder.

    Each crop covers `size` to `max_scale * size` pixels of the image (its shorter side
    resized to `max_scale * size` first), resized to `size` x `size`: the network sees strokes
    and objects at several sizes. A batch depends only on the generator it is given, so a run
    that seeds one generator per step is reproducible and resumable. Unreadable files are
    skipped with a warning.
    """

    def __init__(self, paths: Sequence[Path], size: int, max_scale: float = 1.0) -> None:
        if max_scale < 1:
            raise DataError(f"max_scale must be >= 1, got {max_scale}")
        self.paths = list(paths)
        self.size = size
        self.max_scale = max_scale
        self._load = lru_cache(maxsize=256)(self._load_resized)

    def _load_resized(self, path: Path) -> Tensor:
        side = round(self.size * self.max_scale)
        return _to_tensor(_resize_short_side(_open_rgb(path, side), side))

    def _image(self, index: int) -> Tensor:
        while self.paths:
            path = self.paths[index % len(self.paths)]
            try:
                return self._load(path)
            except DataError as error:
                warnings.warn(f"skipping {error}", RuntimeWarning, stacklevel=3)
                self.paths.remove(path)
        raise DataError("none of the content images could be read")

    def batch(self, n: int, generator: torch.Generator) -> Tensor:
        """[n,3,size,size] crops, randomness drawn from `generator` only."""
        crops = []
        for _ in range(n):
            index = int(torch.randint(1 << 30, (), generator=generator))
            image = self._image(index)
            h, w = image.shape[-2:]
            side = self.size
            if self.max_scale > 1:  # crop side uniform in [size, shorter side]
                side += int(torch.randint(min(h, w) - self.size + 1, (), generator=generator))
            top = int(torch.randint(h - side + 1, (), generator=generator))
            left = int(torch.randint(w - side + 1, (), generator=generator))
            crop = image[:, top : top + side, left : left + side]
            if side != self.size:
                crop = F.interpolate(
                    crop[None], size=(self.size, self.size), mode="bilinear", antialias=True
                )[0].clamp(0, 1)
            if torch.rand((), generator=generator) < 0.5:
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.stack(crops)
