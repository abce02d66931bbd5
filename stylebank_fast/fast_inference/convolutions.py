"""The fast layers' convolutions: channels_last, reading padded inputs the previous step wrote;
the last conv on a space-to-depth image."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .buffers import Buffers, Layout, pad


def convolve(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    buffers: Buffers | None = None,
) -> Tensor:
    """F.conv2d of channels_last `x`. With `buffers` (when the caller reads the result before
    the next convolution runs), a float32 CPU result is written into their kept "output" block
    by PyTorch's oneDNN convolution that adds into a given (zeroed) tensor: the page faults of
    a fresh output cost more than zeroing kept memory. F.conv2d where this PyTorch lacks it."""
    use_kept = buffers is not None and x.device.type == "cpu" and x.dtype == torch.float32
    fused = _fused_conv() if use_kept else None
    if fused is None:
        return F.conv2d(x, weight, bias, stride, padding)
    n, _, h, w = x.shape
    k_h, k_w = weight.shape[-2:]
    out_h = (h + 2 * padding[0] - k_h) // stride[0] + 1
    out_w = (w + 2 * padding[1] - k_w) // stride[1] + 1
    out = buffers.empty((n, out_h, out_w, weight.shape[0]), x, "output").permute(0, 3, 1, 2)
    out.zero_()
    args = (list(padding), list(stride), [1, 1], 1, "add", None, None, [], None)
    return fused(out, x, weight, bias, *args)


@functools.cache
def _fused_conv():
    """`torch.ops.mkldnn._convolution_pointwise_.binary` (the in-place convolution + add that
    torch.compile's CPU backend uses) if this PyTorch has it and it matches F.conv2d, else
    None. It is a private operator: checked once, not trusted blindly."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise_.binary
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 8, 9, 11, generator=g).contiguous(memory_format=torch.channels_last)
        w = torch.randn(16, 8, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
        b = torch.randn(16, generator=g)
        for stride in (1, 2):
            want = F.conv2d(x, w, b, stride)
            out = torch.zeros_like(want)
            got = op(out, x, w, b, [0, 0], [stride] * 2, [1, 1], 1, "add", None, None, [], None)
            close = torch.allclose(out, want, rtol=1e-4, atol=1e-4)
            if got.data_ptr() != out.data_ptr() or not close:
                return None
    except (AttributeError, RuntimeError, NotImplementedError):
        return None
    return op


def weight_like(weight: Tensor, dtype: torch.dtype) -> Tensor:
    """A conv weight as the fast layers hold it: detached, in `dtype`, channels_last."""
    return weight.detach().to(dtype, memory_format=torch.channels_last)


class Conv(nn.Module):
    """A Conv2d (reflect or zero padding) on channels_last activations.

    With `prepadded` set (by FastLayers), the previous step delivers the input already padded.
    """

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        if conv.padding[0] != conv.padding[1]:
            raise ValueError(f"only square padding is supported: {conv}")
        reflect = conv.padding_mode == "reflect" and conv.padding[0] > 0
        # how the input is padded; `prepadded`: by the previous step
        self.in_layout = Layout(conv.padding[0], "reflect") if reflect else None
        self.prepadded = False
        self.output_read_at_once = False  # set by FastLayers: the next step only reads it
        self.stride = conv.stride
        self.kernel_size = conv.kernel_size[0]
        self.conv_padding = (0, 0) if reflect else conv.padding
        self.register_buffer("weight", weight_like(conv.weight, dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype), persistent=False)

    def input_margin(self, margin: int) -> int:
        """Pixels beyond a tile's edge that must be exact in the input for `margin` pixels
        beyond it to be exact in the output: output pixel o reads input s*o - p .. s*o - p + k - 1
        (assuming the tile starts at a multiple of the stride s)."""
        k, s = self.kernel_size, self.stride[0]
        p = self.in_layout.pad if self.in_layout is not None else self.conv_padding[0]
        return s * margin + max(p, k - s - p)

    def forward(self, x: Tensor, buffers: Buffers) -> Tensor:
        if self.in_layout is not None and not self.prepadded:
            x = pad(x, self.in_layout, buffers, self.weight)
        else:
            x = x.to(self.weight.dtype, memory_format=torch.channels_last)
        kept = buffers if self.output_read_at_once else None
        return convolve(x, self.weight, self.bias, self.stride, self.conv_padding, kept)


class PhasedConv(nn.Module):
    """A stride-1 reflect conv with few outputs (the decoder's last, 32 -> 3), run on the 2x2
    space-to-depth image (4*C_in channels, half resolution) as a conv with 4*C_out outputs, one
    per output phase, followed by a pixel shuffle. The previous step delivers its input padded,
    in space-to-depth form (`in_layout`)."""

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype) -> None:
        super().__init__()
        self.in_layout = Layout(conv.padding[0], "reflect", phases=2)
        self.prepadded = True  # always: FastLayers puts it only after an UpsampleConvNormReLU
        self.register_buffer("weight", phase_weight(conv.weight, dtype), persistent=False)
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

    def input_margin(self, margin: int) -> int:
        """As `Conv.input_margin`: a stride-1 conv reading `pad` pixels to either side."""
        return margin + self.in_layout.pad

    def forward(self, x: Tensor, buffers: Buffers) -> Tensor:
        return F.pixel_shuffle(convolve(x, self.weight, self.bias, buffers=buffers), 2)


def phase_weight(weight: Tensor, dtype: torch.dtype) -> Tensor:
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
    return weight_like(out.reshape(c_out * 4, 4 * c_in, taps, taps), dtype)
