"""Images in and out of stylization, block by block, so that a large image is never all
float: the input as given (a float tensor, or 8-bit RGB), the output as it will be returned."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .imageio import to_uint8

__all__ = ["Pixels", "Canvas"]


class Pixels:
    """Images to stylize: a float tensor [N,3,H,W] in [0,1], or one 8-bit RGB image as a uint8
    array [H,W,3]; `read` gives blocks of them as float32 [N,3,h,w] on `device`."""

    def __init__(self, data: Tensor | np.ndarray, device: torch.device) -> None:
        self.data, self.device = data, device
        self.is_tensor = isinstance(data, Tensor)
        self.n = data.shape[0] if self.is_tensor else 1
        self.size: tuple[int, int] = tuple(data.shape[-2:] if self.is_tensor else data.shape[:2])

    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> Tensor:
        if self.is_tensor:
            return self.data[..., rows, cols].to(self.device, torch.float32)
        block = self.data[rows, cols].astype(np.float32) / 255.0  # as `imageio.to_tensor`
        return torch.from_numpy(block).permute(2, 0, 1)[None].to(self.device)

    def nbytes(self) -> int:
        return self.data.element_size() * self.data.numel() if self.is_tensor else self.data.nbytes


class Canvas:
    """The output of stylizing `pixels`, written block by block (float [N,3,h,w] in [0,1]):
    for a tensor input a tensor of its dtype, device and shape; else a PIL image."""

    def __init__(self, pixels: Pixels, like: Tensor | None = None) -> None:
        h, w = pixels.size
        self.device = pixels.data.device if pixels.is_tensor else torch.device("cpu")
        if pixels.is_tensor:
            data: Tensor = pixels.data
            self._out: Tensor | np.ndarray = torch.empty(
                pixels.n, 3, h, w, dtype=data.dtype, device=data.device
            )
            self._squeeze = like is not None and like.dim() == 3
        else:
            self._out = np.empty((h, w, 3), np.uint8)

    def nbytes(self) -> int:
        out = self._out
        return out.element_size() * out.numel() if isinstance(out, Tensor) else out.nbytes

    def write(self, rows: slice, cols: slice, block: Tensor) -> None:
        if isinstance(self._out, Tensor):
            self._out[..., rows, cols] = block
        else:
            self._out[rows, cols] = to_uint8(block[0])

    def result(self) -> Image.Image | Tensor:
        if isinstance(self._out, Tensor):
            return self._out[0] if self._squeeze else self._out
        return Image.fromarray(self._out, "RGB")
