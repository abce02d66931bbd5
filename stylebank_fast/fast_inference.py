"""Inference-only rewrite of a trained StyleBankNet's encoder and decoder: the same function,
computed faster.

`fast_model(model)` walks the model's own `nn.Sequential` encoder and decoder (so the network's
structure lives only in `model.py`) and replaces runs of layers by faster equivalents:

* InstanceNorm + ReLU -> per-channel statistics, then the affine and the ReLU in one pass,
  written straight into the padded input buffer of the next convolution;
* nearest x2 upsample + 3x3 reflect conv + InstanceNorm + ReLU -> four 2x2 convolutions at the
  low resolution (one per output phase, 4/9 of the multiply-adds); the normalisation reads each
  phase where the convolution left it and writes it to its pixels of the next convolution's
  input, so the full-resolution image is written once;
* the last conv (32 -> 3 channels, 9x9) -> a conv on the 2x2 space-to-depth image with 12
  outputs (oneDNN vectorises over output channels: 3 of 16 lanes would be used); the
  normalisation before it writes its input in that layout;
* activations in channels_last (the layout oneDNN's convolutions run fastest in), in padded
  buffers kept from one call to the next: at 1024x768 the page faults of a fresh 100 MB
  buffer cost more than the pass that fills it;
* optionally bfloat16 weights and activations (the normalisations' scale and shift are computed
  in float32; the bank runs in float32 between the bfloat16 encoder and decoder).

The bank keeps using the fused `bank_conv2d`, so `StyleBankNet.forward` (mixes, region masks,
strength, cropping) is reused unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import StyleBankNet

__all__ = ["fast_model", "FastLayers"]


class _Buffers:
    """The padded input buffers of one FastLayers call, one per step, kept for the next call
    (reallocated when the size changes)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, str], Tensor] = {}

    def empty(self, slot: tuple[int, str], shape: tuple[int, ...], like: Tensor) -> Tensor:
        buf = self._kept.get(slot)
        if buf is None or (buf.shape, buf.dtype, buf.device) != (shape, like.dtype, like.device):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._kept[slot] = buf
        return buf


@dataclass
class _Layout:
    """How a step stores its output for the next convolution: padded by `pad` pixels (by
    reflection or replication), as an NHWC image (`phases` 1) or as its 2x2 space-to-depth image
    (`phases` 2, channels ordered (row phase, column phase, C)), the input of a phased conv.

    The buffer is handled as a [N, Hc, f, Wc, f, C] view: padded pixel (R, S) of the image is
    [:, R // f, R % f, S // f, S % f]."""

    pad: int
    mode: str
    phases: int = 1

    def empty(
        self, buffers: _Buffers, slot: tuple[int, str], n: int, c: int, h: int, w: int, like: Tensor
    ) -> Tensor:
        """A buffer for an [N,C,h,w] image (uninitialised), as the 6-D view above."""
        f, p = self.phases, self.pad
        if (h + 2 * p) % f or (w + 2 * p) % f:
            raise ValueError(f"a space-to-depth buffer needs even sizes, got {h}x{w} + {p}")
        shape = (n, (h + 2 * p) // f, (w + 2 * p) // f, f, f, c)
        return buffers.empty(slot, shape, like).permute(0, 1, 3, 2, 4, 5)

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


def _weight(weight: Tensor, dtype: torch.dtype) -> Tensor:
    return weight.detach().to(dtype, memory_format=torch.channels_last)


class _Conv(nn.Module):
    """A Conv2d (reflect or zero padding) on channels_last activations.

    With `prepadded` set (by FastLayers), the previous step delivers the input already padded.
    """

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        if conv.padding[0] != conv.padding[1]:
            raise ValueError(f"only square padding is supported: {conv}")
        reflect = conv.padding_mode == "reflect" and conv.padding[0] > 0
        # how the input is padded; `prepadded`: by the previous step
        self.in_layout = _Layout(conv.padding[0], "reflect") if reflect else None
        self.prepadded = False
        self.slot = 0
        self.stride = conv.stride
        self.conv_padding = 0 if reflect else conv.padding
        self.register_buffer("weight", _weight(conv.weight, dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype), persistent=False)

    def forward(self, x: Tensor, buffers: _Buffers) -> Tensor:
        if self.in_layout is not None and not self.prepadded:
            x = _pad(x, self.in_layout, buffers, (self.slot, "in"), self.weight)
        else:
            x = x.to(self.weight.dtype, memory_format=torch.channels_last)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.conv_padding)


def _pad(
    x: Tensor, layout: _Layout, buffers: _Buffers, slot: tuple[int, str], like: Tensor
) -> Tensor:
    """`x` (any dtype and memory layout) padded as `layout` says, in `like`'s dtype."""
    n, c, h, w = x.shape
    buf = layout.empty(buffers, slot, n, c, h, w, like)
    layout.interior(buf, h, w).copy_(x.permute(0, 2, 3, 1))
    return layout.fill_border(buf, h, w)


class _PhasedConv(nn.Module):
    """A stride-1 reflect conv with few outputs (the decoder's last, 32 -> 3), run on the 2x2
    space-to-depth image (4*C_in channels, half resolution) as a conv with 4*C_out outputs, one
    per output phase, followed by a pixel shuffle. The previous step delivers its input padded,
    in space-to-depth form (`in_layout`)."""

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        self.in_layout = _Layout(conv.padding[0], "reflect", phases=2)
        self.prepadded = True  # always: FastLayers puts it only after an _UpsampleConvNormReLU
        self.register_buffer("weight", _phase_weight(conv.weight, dtype), persistent=False)
        self.register_buffer(
            "bias", conv.bias.detach().to(dtype).repeat_interleave(4), persistent=False
        )

    @staticmethod
    def fits(conv: nn.Conv2d) -> bool:
        return (
            conv.padding_mode == "reflect"
            and conv.stride == (1, 1)
            and conv.padding[0] == conv.padding[1] == conv.kernel_size[0] // 2
            and conv.padding[0] % 2 == 0
            and 4 * conv.out_channels <= 16
        )

    def forward(self, x: Tensor, buffers: _Buffers) -> Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias), 2)


def _phase_weight(weight: Tensor, dtype: torch.dtype) -> Tensor:
    """A kxk stride-1 conv's weight as the equivalent conv on the 2x2 space-to-depth input,
    with 4*C_out outputs ordered (C_out, a, b) for pixel_shuffle.

    Output pixel (2i+a, 2j+b) reads padded input rows 2i+a+dy = 2(i+u)+p, so tap dy lands at
    row u = (a+dy)//2 of space-to-depth phase p = (a+dy)%2 (likewise for columns).
    """
    c_out, c_in, k, _ = weight.shape
    taps = k // 2 + 1
    out = weight.new_zeros(c_out, 2, 2, 2, 2, c_in, taps, taps)
    for a in (0, 1):
        for b in (0, 1):
            for dy in range(k):
                for dx in range(k):
                    u, p = divmod(a + dy, 2)
                    v, q = divmod(b + dx, 2)
                    out[:, a, b, p, q, :, u, v] = weight[:, :, dy, dx]
    return _weight(out.reshape(c_out * 4, 4 * c_in, taps, taps), dtype)


_BAND_BYTES = 2 << 20  # a block of pixels small enough to stay in cache between two passes


def _bands(rows: int, row: Tensor):
    """Slices of `rows` rows, each about _BAND_BYTES of pixels like `row` (one row); a single
    slice on a GPU, where more kernel launches would cost and no cache is to be kept warm."""
    if row.device.type != "cpu":
        return (slice(0, rows),)
    step = max(1, _BAND_BYTES // max(1, row.numel() * row.element_size()))
    return (slice(start, start + step) for start in range(0, rows, step))


def _channel_mean_var(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean and biased variance [N,C,1,1] of channels_last `x`.

    One pass over blocks of pixels that stay in cache, summing deviations and squared
    deviations from a shift (the first block's mean): accurate where E[x^2] - mean^2 would cancel,
    and no image-sized temporary (at 1024x768 the page faults of one cost more than the
    arithmetic).
    """
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view for channels_last input
    chunks = [pixels[:, band] for band in _bands(h * w, pixels[:, 0])]
    shift = chunks[0].mean(1, keepdim=True)
    acc = torch.promote_types(x.dtype, torch.float32)  # bfloat16 sums are kept in float32
    sums, squares = (torch.zeros(n, 1, c, dtype=acc, device=x.device) for _ in range(2))
    block = torch.empty_like(chunks[0])
    for chunk in chunks:
        d = torch.sub(chunk, shift, out=block[:, : chunk.shape[1]])
        sums += d.sum(1, keepdim=True, dtype=acc)
        squares += d.square_().sum(1, keepdim=True, dtype=acc)
    mean = sums / (h * w)
    var = squares / (h * w) - mean.square()
    return (shift + mean).view(n, c, 1, 1), var.view(n, c, 1, 1)


class _NormReLU(nn.Module):
    """The InstanceNorm2d (affine, biased variance) + ReLU that follows a convolution."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.out_layout: _Layout | None = None  # set by FastLayers: where the output goes
        self.slot = 0
        self.register_buffer("gamma", norm.weight.detach().float(), persistent=False)
        self.register_buffer("beta", norm.bias.detach().float(), persistent=False)

    def scale_shift(self, mean: Tensor, var: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """[N,1,1,C] factors of the affine that normalises channels of this mean and variance."""
        n = mean.shape[0]
        scale = self.gamma * torch.rsqrt(var.float().view(n, -1) + self.eps)
        shift = self.beta - mean.float().view(n, -1) * scale
        return scale.to(dtype).view(n, 1, 1, -1), shift.to(dtype).view(n, 1, 1, -1)


class _InstanceNormReLU(_NormReLU):
    """InstanceNorm + ReLU: statistics, then the affine and the ReLU in one pass, in place or
    into the next convolution's padded input."""

    def forward(self, x: Tensor, buffers: _Buffers) -> Tensor:
        n, c, h, w = x.shape
        scale, shift = self.scale_shift(*_channel_mean_var(x), x.dtype)
        pixels = x.permute(0, 2, 3, 1)
        if self.out_layout is None:
            buf, out = x, pixels
        else:
            buf = self.out_layout.empty(buffers, (self.slot, "out"), n, c, h, w, x)
            out = self.out_layout.interior(buf, h, w)
        for band in _bands(h, pixels[:, 0]):  # the ReLU finds the band still in cache
            torch.addcmul(shift, pixels[:, band], scale, out=out[:, band]).relu_()
        return x if self.out_layout is None else self.out_layout.fill_border(buf, h, w)


class _UpsampleConvNormReLU(_NormReLU):
    """Nearest x2 upsample, 3x3 reflect-padded conv, InstanceNorm and ReLU, at the low
    resolution.

    Output row 2i+a of the upsampled conv reads upsampled rows 2i+a-1 .. 2i+a+1, i.e. input
    rows {i-1, i} (a=0, taps 0 | 1+2) or {i, i+1} (a=1, taps 0+1 | 2); likewise for columns.
    At the border, reflecting the upsampled image (row -1 -> row 1 = input row 0) is
    replicating the input, so: replicate-pad the input by 1, run one 2x2 conv holding the four
    phases' kernels as 4*C_out channels, and find phase (a, b) at window offset (a, b). The
    normalisation takes its statistics over those four windows and writes each phase to its
    pixels of the output.
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.InstanceNorm2d, dtype: torch.dtype) -> None:
        super().__init__(norm)
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding_mode != "reflect":
            raise ValueError(f"expected a 3x3 stride-1 reflect conv after the upsample: {conv}")
        w = conv.weight.detach().double()
        # rows[a] sums the 3 taps into the 2 input rows phase a reads
        rows = [torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2)]
        rows.append(torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2))
        phases = []
        for a in (0, 1):
            r = rows[a]
            cols = [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1)]
            cols.append(torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1))
            phases += cols  # order (a, b) = (0,0), (0,1), (1,0), (1,1)
        self.c_out = w.shape[0]
        self.in_layout = _Layout(1, "replicate")
        self.prepadded = False
        self.register_buffer("weight", _weight(torch.cat(phases), dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype).repeat(4), persistent=False)

    def forward(self, x: Tensor, buffers: _Buffers) -> Tensor:
        if not self.prepadded:
            x = _pad(x, self.in_layout, buffers, (self.slot, "in"), self.weight)
        n, _, h, w = x.shape
        h, w, c = h - 2, w - 2, self.c_out
        y = F.conv2d(x, self.weight, self.bias)  # [N, 4C, h+1, w+1], channels_last
        phases = y.permute(0, 2, 3, 1).unflatten(3, (2, 2, c))  # [N, h+1, w+1, a, b, C]
        scale, shift = self.scale_shift(*_phase_mean_var(y, phases, h, w), y.dtype)
        if self.out_layout is None:
            buf = torch.empty(n, 2 * h, 2 * w, c, dtype=y.dtype, device=y.device)
            out = buf.view(n, h, 2, w, 2, c)
        else:
            buf = self.out_layout.empty(buffers, (self.slot, "out"), n, c, 2 * h, 2 * w, y)
            out = self.out_layout.phase_interior(buf, h, w)
        for band in _bands(h, out[:, 0]):  # the ReLU finds the band still in cache
            rows = range(h)[band]
            for a in (0, 1):
                for b in (0, 1):
                    window = phases[:, rows.start + a : rows.stop + a, b : b + w, a, b]
                    torch.addcmul(shift, window, scale, out=out[:, band, a, :, b])
            out[:, band].relu_()
        if self.out_layout is None:
            return buf.permute(0, 3, 1, 2)
        return self.out_layout.fill_border(buf, 2 * h, 2 * w)


def _phase_mean_var(y: Tensor, phases: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Mean and variance [N,C] of the upsampled conv's output from its four phase windows.

    Statistics over all of `y` (contiguous, so fast), minus the one row and one column that
    lie outside each phase's window, then the four phases pooled.
    """
    n, _, rows, cols = y.shape
    c = phases.shape[-1]
    count = rows * cols
    mean_all, var_all = (s.view(n, 2, 2, c).double() for s in _channel_mean_var(y))
    means, variances = [], []
    for a in (0, 1):
        for b in (0, 1):
            row, col = (h if a == 0 else 0), (w if b == 0 else 0)
            inner = slice(0, h) if a == 0 else slice(1, h + 1)
            outside = torch.cat([phases[:, row, :, a, b], phases[:, inner, col, a, b]], 1)
            shift = mean_all[:, a, b]  # [N, C]: the mean the squares of var_all are centred on
            d = outside.double() - shift[:, None]
            total = -d.sum(1)  # the window's, as the whole map's deviations sum to zero
            squares = count * var_all[:, a, b] - d.square().sum(1)
            mean = total / (h * w)
            means.append(shift + mean)
            variances.append(squares / (h * w) - mean.square())
    mean = torch.stack(means).mean(0)
    var = torch.stack([v + (m - mean).square() for m, v in zip(means, variances)]).mean(0)
    return mean, var


class FastLayers(nn.Module):
    """The inference-only equivalent of an encoder or decoder `nn.Sequential`.

    Input and output are float32 (NCHW values, any memory layout); inside, activations are
    channels_last in `dtype`. The padded buffers between layers are kept for the next call
    (one set per concurrent caller): about 0.35 GB for a 1024x768 image in float32.
    """

    def __init__(self, layers: nn.Sequential, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        modules = list(layers)
        self.steps = nn.ModuleList()
        self._buffer_sets: list[_Buffers] = []

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
                self.steps.append(_UpsampleConvNormReLU(modules[i + 1], modules[i + 2], dtype))
                i += 4
            elif isinstance(m, nn.Conv2d):
                after = self.steps[-1] if self.steps else None
                phased = isinstance(after, _UpsampleConvNormReLU) and _PhasedConv.fits(m)
                self.steps.append(_PhasedConv(m, dtype) if phased else _Conv(m, dtype))
                i += 1
            elif isinstance(m, nn.InstanceNorm2d) and follows(i + 1, nn.ReLU):
                self.steps.append(_InstanceNormReLU(m))
                i += 2
            else:
                raise ValueError(f"no fast equivalent for {m} at position {i}")
        for slot, step in enumerate(self.steps):
            step.slot = slot
        for norm, conv in zip(self.steps, self.steps[1:]):
            layout = getattr(conv, "in_layout", None)
            if isinstance(norm, _NormReLU) and layout is not None:
                norm.out_layout = layout
                conv.prepadded = True

    def forward(self, x: Tensor) -> Tensor:
        try:
            buffers = self._buffer_sets.pop()  # atomic: concurrent calls get different sets
        except IndexError:
            buffers = _Buffers()
        try:
            for step in self.steps:
                x = step(x, buffers)
        finally:
            self._buffer_sets.append(buffers)
        return x.float()


def fast_model(model: StyleBankNet, dtype: torch.dtype = torch.float32) -> StyleBankNet:
    """An inference-only copy of `model` with fast encoder/decoder (call it in inference mode).

    It shares the bank (and its parameters) with `model`; later changes to `model`'s encoder or
    decoder weights are not seen. It keeps its padded activation buffers from one call to the
    next (see `FastLayers`); they go when it does. `dtype=torch.bfloat16` runs the convolutions in bfloat16
    (faster on CPUs with AVX512-BF16/AMX; slightly less exact: see tests/test_fast_inference.py).
    """
    fast = copy.copy(model)  # shares parameters and buffers; gets its own module table below
    fast._modules = dict(model._modules)
    fast.encoder = FastLayers(model.encoder, dtype)
    fast.decoder = FastLayers(model.decoder, dtype)
    return fast.eval()
