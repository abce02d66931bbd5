"""Inference-only rewrite of a trained StyleBankNet's encoder and decoder: the same function,
computed faster.

`fast_model(model)` walks the model's own `nn.Sequential` encoder and decoder (so the network's
structure lives only in `model.py`) and replaces runs of layers by faster equivalents:

* nearest x2 upsample + 3x3 reflect conv -> four 2x2 convolutions at the low resolution (one
  per output phase, 4/9 of the multiply-adds), interleaved into the full-resolution output;
* the last conv (32 -> 3 channels, 9x9) -> a conv on the 2x2 space-to-depth image with 12
  outputs (oneDNN vectorises over output channels: 3 of 16 lanes would be used);
* InstanceNorm + ReLU -> per-channel statistics, then the affine and the ReLU in one pass,
  written straight into the padded input buffer of the next convolution;
* activations in channels_last (the layout oneDNN's convolutions run fastest in);
* optionally bfloat16 weights and activations (the normalisations' scale and shift are computed
  in float32; the bank runs in float32 between the bfloat16 encoder and decoder).

The bank keeps using the fused `bank_conv2d`, so `StyleBankNet.forward` (mixes, region masks,
strength, cropping) is reused unchanged.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import StyleBankNet

__all__ = ["fast_model", "FastLayers"]


def _fill_border(out: Tensor, p: int, mode: str) -> Tensor:
    """Fills the p-pixel border of `out` from its interior, by reflection or replication."""
    h, w = out.shape[-2] - 2 * p, out.shape[-1] - 2 * p
    rows = slice(p, p + h)
    for i in range(1, p + 1):  # columns of the interior rows first, then whole rows (corners)
        left, right = (p + i, p + w - 1 - i) if mode == "reflect" else (p, p + w - 1)
        out[..., rows, p - i] = out[..., rows, left]
        out[..., rows, p + w - 1 + i] = out[..., rows, right]
    for i in range(1, p + 1):
        top, bottom = (p + i, p + h - 1 - i) if mode == "reflect" else (p, p + h - 1)
        out[..., p - i, :] = out[..., top, :]
        out[..., p + h - 1 + i, :] = out[..., bottom, :]
    return out


def _padded_empty(x: Tensor, p: int) -> tuple[Tensor, Tensor]:
    """An uninitialised channels_last buffer with a p-pixel border, and its interior view."""
    n, c, h, w = x.shape
    out = torch.empty(
        n,
        c,
        h + 2 * p,
        w + 2 * p,
        dtype=x.dtype,
        device=x.device,
        memory_format=torch.channels_last,
    )
    return out, out[..., p : p + h, p : p + w]


def _pad(x: Tensor, p: int, mode: str) -> Tensor:
    """F.pad(x, (p,) * 4, mode) into a channels_last buffer."""
    out, interior = _padded_empty(x, p)
    interior.copy_(x)
    return _fill_border(out, p, mode)


def _weight(weight: Tensor, dtype: torch.dtype) -> Tensor:
    return weight.detach().to(dtype, memory_format=torch.channels_last)


class _Conv(nn.Module):
    """A Conv2d (reflect or zero padding) on channels_last activations.

    A stride-1 reflect conv with few output channels (the decoder's last, 32 -> 3) wastes most
    of oneDNN's 16-wide output vectors; on even-sized inputs it runs instead on the 2x2
    space-to-depth image (4*C_in channels, half resolution) as a conv with 4*C_out outputs,
    one per output phase, followed by a pixel shuffle.
    """

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        if conv.padding[0] != conv.padding[1]:
            raise ValueError(f"only square padding is supported: {conv}")
        reflect = conv.padding_mode == "reflect" and conv.padding[0] > 0
        # (pixels, mode) the input is padded by; `prepadded`: the previous step already did
        self.in_pad = (conv.padding[0], "reflect") if reflect else None
        self.prepadded = False
        self.stride = conv.stride
        self.conv_padding = 0 if reflect else conv.padding
        self.register_buffer("weight", _weight(conv.weight, dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype), persistent=False)
        self.phased = reflect and conv.stride == (1, 1) and 4 * conv.out_channels <= 16
        if self.phased:
            self.register_buffer(
                "phase_weight", _phase_weight(conv.weight, dtype), persistent=False
            )
            self.register_buffer("phase_bias", self.bias.repeat_interleave(4), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_pad is not None and not self.prepadded:
            x = _pad(x, *self.in_pad)
        if self.phased and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
            y = F.conv2d(_space_to_depth(x), self.phase_weight, self.phase_bias)
            return F.pixel_shuffle(y, 2)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.conv_padding)


def _space_to_depth(x: Tensor) -> Tensor:
    """2x2 space-to-depth of a channels_last image, channels ordered (row phase p, column
    phase q, C) so that the copy moves whole pixels (pixel_unshuffle's (C, p, q) is far slower)."""
    n, c, h, w = x.shape
    nhwc = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2 * c)
    out = nhwc.transpose(2, 3).reshape(n, h // 2, w // 2, 4 * c)
    return out.permute(0, 3, 1, 2)


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


class _UpsampleConv(nn.Module):
    """Nearest x2 upsample followed by a 3x3 reflect-padded conv, at the low resolution.

    Output row 2i+a of the upsampled conv reads upsampled rows 2i+a-1 .. 2i+a+1, i.e. input
    rows {i-1, i} (a=0, taps 0 | 1+2) or {i, i+1} (a=1, taps 0+1 | 2); likewise for columns.
    At the border, reflecting the upsampled image (row -1 -> row 1 = input row 0) is
    replicating the input, so: replicate-pad the input by 1, run one 2x2 conv holding the four
    phases' kernels as 4*C_out channels, and take phase (a, b) from the window offset (a, b).
    """

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
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
        self.in_pad = (1, "replicate")
        self.prepadded = False
        self.register_buffer("weight", _weight(torch.cat(phases), dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype).repeat(4), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if not self.prepadded:
            x = _pad(x, *self.in_pad)
        n, _, h, w = x.shape
        h, w = h - 2, w - 2
        y = F.conv2d(x, self.weight, self.bias)
        # y: [N, 4*C, h+1, w+1] (channels_last); write each phase into its pixels of the output
        out = torch.empty(n, h, 2, w, 2, self.c_out, dtype=y.dtype, device=y.device)
        phases = y.permute(0, 2, 3, 1).unflatten(3, (2, 2, self.c_out))
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, a, :, b] = phases[:, a : a + h, b : b + w, a, b]
        return out.view(n, 2 * h, 2 * w, self.c_out).permute(0, 3, 1, 2)


_STATS_CHUNK = 16384  # pixels per block of centred squares: a small buffer that stays in cache


def _channel_mean_var(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean and biased variance [N,C,1,1] of channels_last `x`.

    Two passes (the mean, then centred squares: exact where E[x^2] - mean^2 would cancel),
    the second over blocks of pixels, so no image-sized temporary is allocated: at 1024x768
    the page faults of one cost more than the arithmetic.
    """
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view for channels_last input
    mean = pixels.sum(1, keepdim=True) / (h * w)
    squares = pixels.new_zeros(n, 1, c)
    block = torch.empty(n, min(_STATS_CHUNK, h * w), c, dtype=x.dtype, device=x.device)
    for start in range(0, h * w, _STATS_CHUNK):
        chunk = pixels[:, start : start + _STATS_CHUNK]
        part = torch.sub(chunk, mean, out=block[:, : chunk.shape[1]]).square_()
        squares += part.sum(1, keepdim=True)
    var = squares / (h * w)
    return mean.view(n, c, 1, 1), var.view(n, c, 1, 1)


class _InstanceNormReLU(nn.Module):
    """InstanceNorm2d (affine, biased variance) followed by ReLU: statistics, then the affine
    and the ReLU in one pass.

    With `out_pad` set (by FastLayers) it writes into the interior of a buffer padded as the
    next convolution needs, saving that convolution a copy of its input.
    """

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.out_pad: tuple[int, str] | None = None
        self.register_buffer("gamma", norm.weight.detach().float()[:, None, None], persistent=False)
        self.register_buffer("beta", norm.bias.detach().float()[:, None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        mean, var = _channel_mean_var(x)
        scale = self.gamma * torch.rsqrt(var.float() + self.eps)
        shift = self.beta - mean.float() * scale
        if self.out_pad is None:
            out, interior = x, x
        else:
            out, interior = _padded_empty(x, self.out_pad[0])
        torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype), out=interior).relu_()
        return out if self.out_pad is None else _fill_border(out, *self.out_pad)


class FastLayers(nn.Module):
    """The inference-only equivalent of an encoder or decoder `nn.Sequential`.

    Input and output are float32 (NCHW values, any memory layout); inside, activations are
    channels_last in `dtype`.
    """

    def __init__(self, layers: nn.Sequential, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        modules = list(layers)
        self.dtype = dtype
        self.steps = nn.ModuleList()
        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, nn.Upsample):
                if m.mode != "nearest" or m.scale_factor not in (2, 2.0, (2.0, 2.0)):
                    raise ValueError(f"only nearest x2 upsampling is supported, got {m}")
                self.steps.append(_UpsampleConv(modules[i + 1], dtype))
                i += 2
            elif isinstance(m, nn.Conv2d):
                self.steps.append(_Conv(m, dtype))
                i += 1
            elif isinstance(m, nn.InstanceNorm2d) and isinstance(
                modules[i + 1] if i + 1 < len(modules) else None, nn.ReLU
            ):
                self.steps.append(_InstanceNormReLU(m))
                i += 2
            else:
                raise ValueError(f"no fast equivalent for {m} at position {i}")
        for norm, conv in zip(self.steps, self.steps[1:]):
            if isinstance(norm, _InstanceNormReLU) and getattr(conv, "in_pad", None):
                norm.out_pad, conv.prepadded = conv.in_pad, True

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype, memory_format=torch.channels_last)
        for step in self.steps:
            x = step(x)
        return x.float()


def fast_model(model: StyleBankNet, dtype: torch.dtype = torch.float32) -> StyleBankNet:
    """An inference-only copy of `model` with fast encoder/decoder (call it in inference mode).

    It shares the bank (and its parameters) with `model`; later changes to `model`'s encoder or
    decoder weights are not seen. `dtype=torch.bfloat16` runs the convolutions in bfloat16
    (faster on CPUs with AVX512-BF16/AMX; slightly less exact: see tests/test_fast_inference.py).
    """
    fast = copy.copy(model)  # shares parameters and buffers; gets its own module table below
    fast._modules = dict(model._modules)
    fast.encoder = FastLayers(model.encoder, dtype)
    fast.decoder = FastLayers(model.decoder, dtype)
    return fast.eval()
