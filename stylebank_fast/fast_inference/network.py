"""FastLayers (an encoder or decoder rewritten as fast steps) and fast_model (a network
with both rewritten); see the package docstring."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..model import StyleBankNet
from ..region_statistics import StyleAlone
from .buffers import Buffers
from .convolutions import Conv, PhasedConv
from .normalisations import InstanceNormReLU, Moments, NormReLU, UpsampleConvNormReLU
from .statistics import completed

__all__ = ["fast_model", "FastLayers"]


class FastLayers(nn.Module):
    """The inference-only equivalent of an encoder or decoder `nn.Sequential`.

    Input and output are float32 (NCHW values, any memory layout); inside, activations are
    channels_last in `dtype`. The padded inputs of the convolutions share one block of memory,
    their outputs another (each the size of the largest activation), kept for the
    next call (see `Buffers`); a caller running while another one is gets blocks of its own.
    `buffer_sets` shares the blocks with other FastLayers that never run at the same time in
    one caller (the encoder and decoder of one network).
    """

    def __init__(
        self,
        layers: nn.Sequential,
        dtype: torch.dtype = torch.float32,
        buffer_sets: list[Buffers] | None = None,
    ) -> None:
        super().__init__()
        modules = list(layers)
        self.steps = nn.ModuleList()
        self.source = layers  # the layers it was made from (region_statistics runs patches in them)
        self._buffer_sets = [] if buffer_sets is None else buffer_sets

        def follows(i: int, kind: type) -> bool:
            return i < len(modules) and isinstance(modules[i], kind)

        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, nn.Upsample):
                if m.mode != "nearest" or m.scale_factor not in (2, 2.0, (2.0, 2.0)):
                    raise ValueError(f"only nearest x2 upsampling is supported, got {m}")
                if not (
                    follows(i + 1, nn.Conv2d)
                    and follows(i + 2, nn.InstanceNorm2d)
                    and follows(i + 3, nn.ReLU)
                ):
                    raise ValueError(f"no fast equivalent for {m} at position {i}")
                self.steps.append(UpsampleConvNormReLU(modules[i + 1], modules[i + 2], dtype))
                i += 4
            elif isinstance(m, nn.Conv2d):
                after = self.steps[-1] if self.steps else None
                phased = isinstance(after, UpsampleConvNormReLU) and PhasedConv.fits(m)
                self.steps.append(PhasedConv(m, dtype) if phased else Conv(m, dtype))
                i += 1
            elif isinstance(m, nn.InstanceNorm2d) and follows(i + 1, nn.ReLU):
                self.steps.append(InstanceNormReLU(m))
                i += 2
            else:
                raise ValueError(f"no fast equivalent for {m} at position {i}")
        for norm, conv in zip(self.steps, self.steps[1:]):
            layout = getattr(conv, "in_layout", None)
            if isinstance(norm, NormReLU) and layout is not None:
                norm.out_layout = layout
                conv.prepadded = True
        for conv, norm in zip(self.steps, self.steps[1:]):
            # a normalisation that writes elsewhere only reads its input: the convolution's
            # output can live in a kept block (not so when normalised in place and returned)
            if isinstance(conv, Conv) and isinstance(norm, NormReLU):
                conv.output_read_at_once = norm.out_layout is not None

    def norm_steps(self) -> list[int]:
        """The indices of the normalising steps, in order."""
        return [i for i, step in enumerate(self.steps) if isinstance(step, NormReLU)]

    def input_margin(self, margin: int = 0, steps: int | None = None) -> int:
        """Pixels beyond a tile's edge that must be exact in the input for `margin` pixels
        beyond it to be exact after the first `steps` steps (all: None), given the
        normalisations' statistics (see each step's `input_margin`)."""
        for step in reversed(self.steps[:steps]):
            margin = step.input_margin(margin)
        return margin

    def forward(
        self,
        x: Tensor,
        regions: Tensor | None = None,
        moments: Sequence[Moments | None] | None = None,
        alone: StyleAlone | None = None,
    ) -> Tensor:
        """`regions` and `alone`: region weights for the normalisations and what completes
        their statistics (see `model.Decoder.forward`). `moments`: one per normalisation
        (`norm_steps`): statistics to use instead of its input's own (None: its own), as tiled
        stylization needs."""
        if alone is not None and moments is None:
            moments = [completed(alone.completion(j)) for j in range(len(self.norm_steps()))]
        moments = iter(moments or [])
        try:
            buffers = self._buffer_sets.pop()  # atomic: concurrent calls get different blocks
        except IndexError:
            buffers = Buffers()
        buffers.begin()
        try:
            with torch.no_grad():  # writes into kept buffers: nothing here can be differentiated
                for step in self.steps:
                    if isinstance(step, NormReLU):
                        x = step(x, buffers, regions, next(moments, None))
                    else:
                        x = step(x, buffers)
        finally:
            buffers.end()
            self._buffer_sets.append(buffers)
        return x.float()


def fast_model(model: StyleBankNet, dtype: torch.dtype = torch.float32) -> StyleBankNet:
    """An inference-only copy of `model` with fast encoder/decoder (no gradients flow through
    them; it runs in any grad mode, fastest in inference mode).

    It shares the bank (and its parameters) with `model`; later changes to `model`'s encoder or
    decoder weights are not seen. It keeps blocks of memory for its activations from one call
    to the next (see `FastLayers`); they go when the copy does.
    `dtype=torch.bfloat16` runs the convolutions in bfloat16 (faster on CPUs with
    AVX512-BF16/AMX; slightly less exact: see tests/test_fast_inference.py).
    """
    fast = copy.copy(model)  # shares parameters and buffers; gets its own module table below
    fast._modules = dict(model._modules)
    buffer_sets: list[Buffers] = []  # the encoder and the decoder never run at once in a call
    fast.encoder = FastLayers(model.encoder, dtype, buffer_sets)
    fast.decoder = FastLayers(model.decoder, dtype, buffer_sets)
    return fast.eval()
