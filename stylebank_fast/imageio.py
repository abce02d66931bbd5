"""Reading and writing images for stylization: EXIF-aware RGB loading, atomic saving."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from ._files import atomic_write
from .errors import DataError, StyleBankError
from .memory import available_memory, gigabytes

__all__ = [
    "ImageTooLarge",
    "alpha_channel",
    "image_format",
    "keeps_alpha",
    "open_image",
    "open_upright",
    "save_image",
    "to_pil",
    "to_rgb",
    "to_tensor",
    "to_uint8",
]

PathLike = Union[str, "os.PathLike[str]"]


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as RGB: 16- and 32-bit integer greyscale scaled to 8 bits (PIL's own convert
    clips them, which turns a 16-bit photo white or black), palette and CMYK through PIL,
    alpha dropped (composited on nothing: the colour channels as stored)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey] * 3, -1), "RGB")
    if image.mode == "F":
        grey = np.clip(np.asarray(image) * (255 if image.getextrema()[1] <= 1 else 1), 0, 255)
        return Image.fromarray(np.stack([grey.astype(np.uint8)] * 3, -1), "RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")  # no copy of a large photo


@contextmanager
def _no_pixel_limit():
    """PIL refuses images over MAX_IMAGE_PIXELS (179 megapixels) as possible decompression
    bombs; stylization takes any size in bounded memory, so the limit that matters is what
    fits in memory (`_check_fits`), not a fixed count. PIL's guard is back on return."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _decoded_bytes(image: Image.Image) -> int:
    """Bytes PIL will hold for `image` (opened, not decoded yet)."""
    mode = image.mode
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return math.prod(image.size) * per_pixel


class ImageTooLarge(DataError):
    """An image with more pixels than allowed or than the free memory can hold."""


def _check_fits(
    path: Path | str, image: Image.Image, scaled: tuple[int, int] | None, max_pixels: int | None
) -> None:
    """A clear error before decoding an image (and scaling it to `scaled`) that has more than
    `max_pixels` pixels (None: no limit) or that the free memory cannot hold."""
    w, h = image.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLarge(
            f"{path} is {w}x{h} ({w * h / 1e6:.1f} megapixels), more than the limit of "
            f"{max_pixels / 1e6:g} megapixels; scale it down first"
        )
    free = available_memory()
    needed = _decoded_bytes(image) + (0 if scaled is None else 4 * math.prod(scaled))
    if free is None or needed <= free:
        return
    how = (
        "a smaller maximum size (--max-size, max_size) decodes a JPEG at a reduced scale"
        if image.format == "JPEG"
        else "scale it down with another tool first"
    )
    raise ImageTooLarge(
        f"{path} is {w}x{h} ({w * h / 1e6:.0f} megapixels): decoding it takes "
        f"{gigabytes(needed)}, more than the {gigabytes(free)} of memory free; {how}"
    )


def _scaled_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int] | None:
    """`size` (W, H) scaled down so that its longer side is `max_size`; None: no scaling."""
    if max_size is None or max(size) <= max_size:
        return None
    scale = max_size / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def open_upright(
    path: PathLike | BinaryIO,
    max_size: int | None = None,
    max_pixels: int | None = None,
    name: str | None = None,
) -> Image.Image:
    """An image file (a path, or a binary file object called `name` in errors) in its own
    mode, turned upright by its EXIF orientation and scaled down so that its longer side is at
    most `max_size` (never up; JPEGs decode at a reduced scale first, so a huge photo never
    lies in memory at full size). Any size opens that the free memory can hold and that has at
    most `max_pixels` pixels as decoded (None: no limit); `ImageTooLarge` otherwise."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"image not found: {path}")
    label = name or path
    try:
        with _no_pixel_limit(), Image.open(path) as image:
            if max_size is not None and image.format == "JPEG":
                image.draft(image.mode, (max_size, max_size))
            _check_fits(label, image, _scaled_size(image.size, max_size), max_pixels)
            ImageOps.exif_transpose(image, in_place=True)  # a copy would double the memory
    except ImageTooLarge:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        detail = str(error).replace(repr(path), "(not a format PIL reads)")  # a file object
        raise DataError(f"{label} is not a readable image: {detail}") from None
    size = _scaled_size(image.size, max_size)
    if size is not None:
        if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "P"):
            image = image.convert("I" if image.mode.startswith("I") else "RGBA")
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def open_image(path: PathLike, max_size: int | None = None, mode: str = "RGB") -> Image.Image:
    """An image file as a PIL image in `mode` ("RGB", or None to keep the file's own mode),
    upright and scaled down as `open_upright` does."""
    image = open_upright(path, max_size)
    if mode == "RGB":
        return to_rgb(image)
    return image if mode is None else image.convert(mode)


def alpha_channel(image: Image.Image) -> Image.Image | None:
    """The image's transparency as an "L" image, or None when it has none."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return image.getchannel("A")
    return None


def keeps_alpha(path: PathLike) -> bool:
    """Whether the format `path`'s extension names stores an alpha channel."""
    return image_format(path) in ("PNG", "WEBP", "TIFF")


def image_format(path: PathLike) -> str:
    """The PIL format that `path`'s extension names ("PNG" for .png); a clear error otherwise."""
    suffix = Path(path).suffix.lower()
    formats = Image.registered_extensions()
    if suffix not in formats or formats[suffix] not in Image.SAVE:
        raise StyleBankError(
            f"cannot tell which image format to write for {path}: use an extension such as "
            ".png, .jpg, .webp, .bmp or .tif"
        )
    return formats[suffix]


def save_image(image: Image.Image, path: PathLike) -> None:
    """Write `image` to `path` in the format its extension names, atomically
    (`_files.atomic_write`), so that a failure never leaves a partial file."""
    path = Path(path)
    fmt = image_format(path)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        atomic_write(path, lambda f: image.save(f, format=fmt, **options))
    except OSError as error:
        raise StyleBankError(f"cannot write {path}: {error.strerror or error}") from None


def to_tensor(image: Image.Image) -> Tensor:
    """An RGB PIL image as float [1,3,H,W] in [0,1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def to_pil(image: Tensor) -> Image.Image:
    """Float [3,H,W] in [0,1] as an RGB PIL image (rounded, clamped)."""
    return Image.fromarray(to_uint8(image), "RGB")


def to_uint8(image: Tensor) -> np.ndarray:
    """Float [3,H,W] in [0,1] as a uint8 array [H,W,3] (rounded, clamped)."""
    array = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    return array.cpu().numpy()
