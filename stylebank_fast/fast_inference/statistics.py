"""Per-channel statistics and cache-sized bands of pixels for the fast normalisations."""

from __future__ import annotations

import torch
from torch import Tensor

from ..region_norm import Complete, moments_mean_var

BAND_BYTES = 2 << 20  # a block of pixels small enough to stay in cache between two passes


def bands(rows: int, row: Tensor):
    """Slices of `rows` rows, each about BAND_BYTES of pixels like `row` (one row); a single
    slice on a GPU, where more kernel launches would cost and no cache is to be kept warm."""
    if row.device.type != "cpu":
        return (slice(0, rows),)
    step = max(1, BAND_BYTES // max(1, row.numel() * row.element_size()))
    return (slice(start, start + step) for start in range(0, rows, step))


def channel_mean_var(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean and biased variance [N,C,1,1] of channels_last `x`.

    One pass over blocks of pixels that stay in cache, summing deviations and squared
    deviations from a shift (the first block's mean): accurate where E[x^2] - mean^2 would cancel,
    and no image-sized temporary (at 1024x768 the page faults of one cost more than the
    arithmetic).
    """
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view for channels_last input
    chunks = [pixels[:, band] for band in bands(h * w, pixels[:, 0])]
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


def phase_mean_var(y: Tensor, phases: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Mean and variance [N,C] of the upsampled conv's output from its four phase windows.

    Statistics over all of `y` (contiguous, so fast), minus the one row and one column that
    lie outside each phase's window, then the four phases pooled.
    """
    n, _, rows, cols = y.shape
    c = phases.shape[-1]
    count = rows * cols
    mean_all, var_all = (s.view(n, 2, 2, c).double() for s in channel_mean_var(y))
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


def region_mean_var(windows: list[Tensor], weights: Tensor) -> tuple[Tensor, Tensor]:
    """Per-region mean and biased variance [N,R,C] of channels pooled over `windows` (views
    [N,h,w,C] of one layer's pixels, e.g. the four phases of an upsampled conv), each pixel
    weighing `weights` [N,h,w,R] (the same for every window)."""
    shift = window_shift(windows)
    return moments_mean_var(*moment_sums(windows, weights, shift), shift)


def completed(complete: Complete):
    """A `normalisations.Moments` giving each region's moment sums over the windows to
    `complete` (region_statistics.StyleAlone)."""

    def moments(windows: list[Tensor], weights: Tensor) -> tuple[Tensor, Tensor]:
        shift = window_shift(windows)
        return complete(*moment_sums(windows, weights, shift), shift)

    return moments


def window_shift(windows: list[Tensor]) -> Tensor:
    """A shift [N,1,1,C] to sum deviations from: the mean of the first window's first band."""
    acc = torch.promote_types(windows[0].dtype, torch.float32)
    first = next(iter(bands(windows[0].shape[1], windows[0][:, 0])))
    return windows[0][:, first].mean((1, 2), dtype=acc)[:, None, None]


def moment_sums(
    windows: list[Tensor], weights: Tensor | None, shift: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Float64 sums over `windows` (views [N,h,w,C] of one layer's pixels) of the weights
    [N,h,w,R] (None: one region, every pixel weighing 1), and of the weighted deviations from
    `shift` [N,1,1,C] and their squares: [N,R], [N,R,C], [N,R,C].

    Band by band (the products stay in cache), each band summed in float32 or wider.
    """
    n, h, w, c = windows[0].shape
    acc = torch.promote_types(windows[0].dtype, torch.float32)
    regions = 1 if weights is None else weights.shape[-1]
    sums = torch.zeros(n, regions, c, dtype=torch.float64, device=shift.device)
    squares = torch.zeros_like(sums)
    for band in bands(h, windows[0][:, 0]):
        m = None if weights is None else weights[:, band].to(acc).flatten(1, 2).transpose(1, 2)
        for window in windows:
            d = (window[:, band].to(acc) - shift).flatten(1, 2)  # [N,pixels,C]
            if m is None:
                sums += d.sum(1, keepdim=True)
                squares += d.square_().sum(1, keepdim=True)
            else:
                sums += m @ d
                squares += m @ d.square_()
    if weights is None:
        mass = torch.full((n, 1), float(h * w * len(windows)), dtype=torch.float64)
    else:
        mass = weights.sum((1, 2), dtype=torch.float64) * len(windows)
    return mass.to(shift.device), sums, squares
