"""InstanceNorm + ReLU after a convolution, or fused with a nearest x2 upsample and the 3x3 conv
after it, written straight into the next convolution's padded input."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..phases import upsampled_conv_phases
from ..region_norm import upsample_regions
from .buffers import Buffers, Layout, pad
from .convolutions import convolve, weight_like
from .statistics import bands, channel_mean_var, phase_mean_var, region_mean_var

# Statistics given from outside (tiled stylization: those of the whole image). Called with the
# layer's pre-norm pixels as windows [N,h,w,C] (the four phases of an upsampled conv) and the
# region weights [N,h,w,R] at their size (None without regions), it returns the mean and biased
# variance to normalise with: [N,1,C], or [N,R,C] with regions.
Moments = Callable[[list[Tensor], Optional[Tensor]], tuple[Tensor, Tensor]]


class NormReLU(nn.Module):
    """The InstanceNorm2d (affine, biased variance) + ReLU that follows a convolution."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = norm.eps
        self.out_layout: Layout | None = None  # set by FastLayers: where the output goes
        self.register_buffer("gamma", norm.weight.detach().float(), persistent=False)
        self.register_buffer("beta", norm.bias.detach().float(), persistent=False)

    def scale_shift(self, mean: Tensor, var: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """[N,1,1,C] factors of the affine that normalises channels of this mean and variance."""
        n = mean.shape[0]
        scale = self.gamma * torch.rsqrt(var.float().view(n, -1) + self.eps)
        shift = self.beta - mean.float().view(n, -1) * scale
        return scale.to(dtype).view(n, 1, 1, -1), shift.to(dtype).view(n, 1, 1, -1)

    def region_affine(
        self, windows: list[Tensor], regions: Tensor, moments: Moments | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Region weights [N,h,w,R] at the windows' size, and each region's scale and shift
        [N,1,R,C]: a pixel's affine is its weights times these (region_norm). The statistics
        are the windows' own, or `moments`'."""
        n, h, w, _ = windows[0].shape
        weights = upsample_regions(regions, (h, w)).expand(n, -1, -1, -1).permute(0, 2, 3, 1)
        mean, var = (moments or region_mean_var)(windows, weights)
        scale = self.gamma * torch.rsqrt(var.float() + self.eps)
        shift = self.beta - mean.float() * scale
        dtype = windows[0].dtype
        return weights.to(dtype), scale.to(dtype)[:, None], shift.to(dtype)[:, None]


class InstanceNormReLU(NormReLU):
    """InstanceNorm + ReLU: statistics, then the affine and the ReLU in one pass, in place or
    into the next convolution's padded input."""

    def input_margin(self, margin: int) -> int:
        """Pixels beyond a tile's edge that must be exact in the input for `margin` pixels
        beyond it to be exact in the output (given the statistics): pixel by pixel."""
        return margin

    def forward(
        self,
        x: Tensor,
        buffers: Buffers,
        regions: Tensor | None = None,
        moments: Moments | None = None,
    ) -> Tensor:
        n, c, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1)
        if regions is None:
            mean_var = channel_mean_var(x) if moments is None else moments([pixels], None)
            scale, shift = self.scale_shift(*mean_var, x.dtype)
        else:
            weights, scales, shifts = self.region_affine([pixels], regions, moments)
        if self.out_layout is None:
            buf, out = x, pixels
        else:
            buf = self.out_layout.empty(buffers, n, c, h, w, x)
            out = self.out_layout.interior(buf, h, w)
        for band in bands(h, pixels[:, 0]):  # the ReLU finds the band still in cache
            if regions is not None:
                scale, shift = weights[:, band] @ scales, weights[:, band] @ shifts
            torch.addcmul(shift, pixels[:, band], scale, out=out[:, band]).relu_()
        return x if self.out_layout is None else self.out_layout.fill_border(buf, h, w)


class UpsampleConvNormReLU(NormReLU):
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
        phases = upsampled_conv_phases(conv.weight.detach().double())
        self.c_out = conv.out_channels
        self.in_layout = Layout(1, "replicate")
        self.prepadded = False
        self.register_buffer("weight", weight_like(phases, dtype), persistent=False)
        self.register_buffer("bias", conv.bias.detach().to(dtype).repeat(4), persistent=False)

    def input_margin(self, margin: int) -> int:
        """As `InstanceNormReLU.input_margin`: the conv reads one upsampled pixel further, and
        upsampled pixel R is input pixel R // 2."""
        return -(-(margin + 1) // 2)

    def forward(
        self,
        x: Tensor,
        buffers: Buffers,
        regions: Tensor | None = None,
        moments: Moments | None = None,
    ) -> Tensor:
        if not self.prepadded:
            x = pad(x, self.in_layout, buffers, self.weight)
        n, _, h, w = x.shape
        h, w, c = h - 2, w - 2, self.c_out
        y = convolve(x, self.weight, self.bias, buffers=buffers)  # [N, 4C, h+1, w+1], NHWC
        phases = y.permute(0, 2, 3, 1).unflatten(3, (2, 2, c))  # [N, h+1, w+1, a, b, C]
        # output pixel (2i+a, 2j+b) is phase pixel (i, j) of window (a, b), in its regions
        windows = [phases[:, a : a + h, b : b + w, a, b] for a in (0, 1) for b in (0, 1)]
        if regions is None:
            mean_var = (
                phase_mean_var(y, phases, h, w) if moments is None else moments(windows, None)
            )
            scale, shift = self.scale_shift(*mean_var, y.dtype)
        else:
            weights, scales, shifts = self.region_affine(windows, regions, moments)
        if self.out_layout is None:
            buf = torch.empty(n, 2 * h, 2 * w, c, dtype=y.dtype, device=y.device)
            out = buf.view(n, h, 2, w, 2, c)
        else:
            buf = self.out_layout.empty(buffers, n, c, 2 * h, 2 * w, y)
            out = self.out_layout.phase_interior(buf, h, w)
        for band in bands(h, out[:, 0]):  # the ReLU finds the band still in cache
            if regions is not None:
                scale, shift = weights[:, band] @ scales, weights[:, band] @ shifts
            for a in (0, 1):
                for b in (0, 1):
                    window = windows[2 * a + b][:, band]
                    torch.addcmul(shift, window, scale, out=out[:, band, a, :, b])
            out[:, band].relu_()
        if self.out_layout is None:
            return buf.permute(0, 3, 1, 2)
        return self.out_layout.fill_border(buf, 2 * h, 2 * w)
