"""Where the fast layers keep their activations: blocks of memory reused from call to call, and
the layouts (NHWC or 2x2 space-to-depth, padded) the padded inputs take in them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


class Buffers:
    """Blocks of memory kept from one FastLayers call to the next: one that every padded
    convolution input takes in turn ("padded"), one that every convolution output read within
    the call takes in turn ("output").

    A step writes the padded input of the next convolution, which reads it before the step
    after it writes the next one, so one block serves them all; likewise each convolution's
    output is read by the step that follows it before the next convolution writes its own.
    Keeping the blocks spares the page faults of fresh memory (at 1024x768 a fresh 100 MB
    block costs more than the pass that fills it); a block is let go when a call needs less
    than half of it (a smaller image).
    """

    def __init__(self) -> None:
        self._blocks: dict[str, Tensor] = {}
        self._largest: dict[str, int] = {}  # in this call

    def begin(self) -> None:
        self._largest = {}

    def end(self) -> None:
        for kind, block in list(self._blocks.items()):
            if block.numel() > 2 * self._largest.get(kind, 0):
                del self._blocks[kind]

    def empty(self, shape: tuple[int, ...], like: Tensor, kind: str = "padded") -> Tensor:
        """An uninitialised [shape] tensor in block `kind`, valid until its next request."""
        numel = math.prod(shape)
        self._largest[kind] = max(self._largest.get(kind, 0), numel)
        block = self._blocks.get(kind)
        # an inference tensor cannot be written outside inference mode: a call in the other
        # mode gets a new block
        mode = (like.dtype, like.device, torch.is_inference_mode_enabled())
        if (
            block is None
            or block.numel() < numel
            or ((block.dtype, block.device, block.is_inference()) != mode)
        ):
            block = self._blocks[kind] = torch.empty(numel, dtype=like.dtype, device=like.device)
        return block[:numel].view(shape)


@dataclass
class Layout:
    """How a step stores its output for the next convolution: padded by `pad` pixels (by
    reflection or replication), as an NHWC image (`phases` 1) or as its 2x2 space-to-depth image
    (`phases` 2, channels ordered (row phase, column phase, C)), the input of a phased conv.

    The buffer is handled as a [N, Hc, f, Wc, f, C] view: padded pixel (R, S) of the image is
    [:, R // f, R % f, S // f, S % f]."""

    pad: int
    mode: str
    phases: int = 1

    def empty(self, buffers: Buffers, n: int, c: int, h: int, w: int, like: Tensor) -> Tensor:
        """A buffer for an [N,C,h,w] image (uninitialised), as the 6-D view above."""
        f, p = self.phases, self.pad
        if (h + 2 * p) % f or (w + 2 * p) % f:
            raise ValueError(f"a space-to-depth buffer needs even sizes, got {h}x{w} + {p}")
        shape = (n, (h + 2 * p) // f, (w + 2 * p) // f, f, f, c)
        return buffers.empty(shape, like).permute(0, 1, 3, 2, 4, 5)

    def interior(self, buf: Tensor, h: int, w: int) -> Tensor:
        """The image's h x w pixels as an [N, h, w, C] view (NHWC buffers only)."""
        if self.phases != 1:
            raise ValueError("a space-to-depth buffer is written phase by phase")
        p = self.pad
        return buf[:, p : p + h, 0, p : p + w, 0]

    def phase_interior(self, buf: Tensor, h: int, w: int) -> Tensor:
        """The image's 2h x 2w pixels as an [N, h, 2, w, 2, C] view: pixel (2i+a, 2j+b) is
        [:, i, a, j, b]."""
        p, f = self.pad, self.phases
        if f == 2:
            return buf[:, p // 2 : p // 2 + h, :, p // 2 : p // 2 + w]
        return self.interior(buf, 2 * h, 2 * w).unflatten(1, (h, 2)).unflatten(3, (w, 2))

    def fill_border(self, buf: Tensor, h: int, w: int) -> Tensor:
        """Fills the border of an h x w image's buffer from its interior; returns the buffer as
        the channels_last [N, f*f*C, Hc, Wc] tensor a convolution reads."""
        p, f = self.pad, self.phases

        def source(i: int, size: int) -> int:  # the padded index whose value index i takes
            k = i - p
            if self.mode == "reflect":
                k = -k if k < 0 else min(k, 2 * (size - 1) - k)
            else:
                k = min(max(k, 0), size - 1)
            return k + p

        border = [*range(p), *range(p + h, h + 2 * p)]
        for i in border:  # rows (all columns: the column border is overwritten below)
            j = source(i, h)
            buf[:, i // f, i % f].copy_(buf[:, j // f, j % f])
        border = [*range(p), *range(p + w, w + 2 * p)]
        for i in border:  # columns, all rows (corners included)
            j = source(i, w)
            buf[:, :, :, i // f, i % f].copy_(buf[:, :, :, j // f, j % f])
        n, hc, _, wc, _, c = buf.shape
        nhwc = buf.permute(0, 1, 3, 2, 4, 5).reshape(n, hc, wc, f * f * c)  # a view
        return nhwc.permute(0, 3, 1, 2)


def pad(x: Tensor, layout: Layout, buffers: Buffers, like: Tensor) -> Tensor:
    """`x` (any dtype and memory layout) padded as `layout` says, in `like`'s dtype."""
    n, c, h, w = x.shape
    buf = layout.empty(buffers, n, c, h, w, like)
    layout.interior(buf, h, w).copy_(x.permute(0, 2, 3, 1))
    return layout.fill_border(buf, h, w)
