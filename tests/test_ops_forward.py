"""The fused CPU forward kernel against the reference, over every argument form."""

import itertools

import pytest
import torch
from helpers import FORMS, make_problem, requires_extension

import stylebank_fast as sb

pytestmark = requires_extension

TOL = {torch.float64: 1e-10, torch.float32: 2e-4, torch.bfloat16: 6e-2}


def check_forward(x, weight, bias, mix, padding_mode, mask_on, dtype=torch.float64):
    out = sb.bank_conv2d(x, weight, bias, mix, padding_mode=padding_mode, mask_on=mask_on)
    # The reference in float64 is the specification.
    up = [
        None if t is None else (t.double() if t.is_floating_point() else t)
        for t in (x, weight, bias, mix)
    ]
    ref = sb.reference_bank_conv2d(*up, padding_mode=padding_mode, mask_on=mask_on)
    assert out.shape == ref.shape and out.dtype == x.dtype
    scale = ref.abs().max().item()
    err = (out.double() - ref).abs().max().item()
    assert err <= TOL[dtype] * max(1.0, scale), f"max error {err} (output scale {scale})"


@pytest.mark.parametrize(
    "form,padding_mode,mask_on,k",
    list(itertools.product(FORMS, ("reflect", "zeros"), ("output", "input"), (1, 3, 5, 7))),
)
def test_matches_reference_float64(form, padding_mode, mask_on, k):
    x, weight, bias, mix = make_problem(form, k=k, h=9, w=11)
    check_forward(x, weight, bias, mix, padding_mode, mask_on)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_ragged_tiles_many_channels(form, mask_on):
    # Larger than one tile in both directions, sizes that leave ragged tiles, odd channels.
    x, weight, bias, mix = make_problem(form, n=3, c=13, c_out=9, h=37, w=45, banks=4)
    check_forward(x, weight, bias, mix, "reflect", mask_on)


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("form", FORMS)
def test_reduced_precision(dtype, form):
    x, weight, bias, mix = make_problem(form, dtype=dtype, c=8, c_out=6, h=13, w=17)
    check_forward(x, weight, bias, mix, "reflect", "output", dtype)


@pytest.mark.parametrize("form", ("weights", "masks"))
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_broadcast_mix(form, mask_on):
    x, weight, bias, mix = make_problem(form, n=3, broadcast=True)
    assert mix.shape[0] == 1
    check_forward(x, weight, bias, mix, "zeros", mask_on)


@pytest.mark.parametrize(
    "h,w,k,padding_mode",
    [
        (1, 1, 1, "reflect"),
        (2, 2, 3, "reflect"),
        (4, 5, 7, "reflect"),
        (1, 3, 7, "zeros"),
        (2, 1, 5, "zeros"),
        (3, 4, 5, "reflect"),
    ],
)
@pytest.mark.parametrize("form", FORMS)
def test_tiny_images(h, w, k, padding_mode, form):
    x, weight, bias, mix = make_problem(form, h=h, w=w, k=k, n=1, c=2, c_out=3)
    check_forward(x, weight, bias, mix, padding_mode, "input")
    check_forward(x, weight, bias, mix, padding_mode, "output")


def test_without_bias():
    x, weight, _, mix = make_problem("masks")
    check_forward(x, weight, None, mix, "reflect", "input")


def test_non_contiguous_and_channels_last():
    x, weight, bias, mix = make_problem("masks", c=6, c_out=6)
    x_cl = x.to(memory_format=torch.channels_last)
    weight_nc = weight.transpose(1, 2).contiguous().transpose(1, 2)  # same values, odd strides
    mix_nc = mix.transpose(2, 3).contiguous().transpose(2, 3)
    assert not weight_nc.is_contiguous() and not mix_nc.is_contiguous()
    check_forward(x_cl, weight_nc, bias[:, ::1], mix_nc, "reflect", "output")
    sliced = torch.randn(2, 12, 9, 11, dtype=torch.float64)[:, ::2]
    check_forward(sliced, weight, bias, mix, "zeros", "input")


def test_hard_masks_equal_single_bank_convolutions():
    # Where a hard mask picks bank b, the output is bank b's plain convolution.
    x, weight, bias, _ = make_problem("ids", banks=3, h=16, w=40)
    region = (torch.arange(40) // 14).expand(2, 16, 40)
    masks = torch.nn.functional.one_hot(region, 3).permute(0, 3, 1, 2).double()
    out = sb.bank_conv2d(x, weight, bias, masks)
    for b in range(3):
        single = sb.bank_conv2d(x, weight[b : b + 1], bias[b : b + 1])
        sel = region == b
        assert torch.allclose(
            out.permute(0, 2, 3, 1)[sel], single.permute(0, 2, 3, 1)[sel], atol=1e-12
        )


def test_zero_mix_gives_zero_and_empty_batch():
    x, weight, bias, mix = make_problem("masks")
    assert sb.bank_conv2d(x, weight, bias, torch.zeros_like(mix)).abs().max() == 0
    out = sb.bank_conv2d(x[:0], weight, bias, mix[:0])
    assert out.shape == (0, 7, 9, 11)
