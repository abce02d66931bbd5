"""Gradients of the fused CPU kernels: against the reference's autograd, and gradcheck."""

import itertools

import pytest
import torch
from helpers import FORMS, make_problem, requires_extension

import stylebank_fast as sb

pytestmark = requires_extension


def grad_inputs(x, weight, bias, mix):
    inputs = [x, weight, bias]
    if mix is not None and mix.is_floating_point():
        inputs.append(mix)
    return [t.requires_grad_() for t in inputs]


def compare_with_reference(x, weight, bias, mix, padding_mode, mask_on, tol=1e-10):
    inputs = grad_inputs(x, weight, bias, mix)
    kwargs = {"padding_mode": padding_mode, "mask_on": mask_on}
    out = sb.bank_conv2d(x, weight, bias, mix, **kwargs)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, grad)
    want = torch.autograd.grad(
        sb.reference_bank_conv2d(x, weight, bias, mix, **kwargs), inputs, grad
    )
    for name, a, b in zip(("x", "weight", "bias", "mix"), got, want):
        assert a.shape == b.shape, name
        err = (a - b).abs().max().item()
        assert err <= tol * max(1.0, b.abs().max().item()), f"d{name}: max error {err}"


@pytest.mark.parametrize(
    "form,padding_mode,mask_on,k",
    list(itertools.product(FORMS, ("reflect", "zeros"), ("output", "input"), (1, 3, 5, 7))),
)
def test_gradients_match_reference(form, padding_mode, mask_on, k):
    compare_with_reference(*make_problem(form, k=k), padding_mode, mask_on)


@pytest.mark.parametrize("form", ("weights", "masks"))
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_gradients_broadcast_mix(form, mask_on):
    compare_with_reference(*make_problem(form, n=3, broadcast=True), "reflect", mask_on)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_gradients_ragged_tiles(form, mask_on):
    x, weight, bias, mix = make_problem(form, n=2, c=9, c_out=70, h=21, w=41, banks=4)
    compare_with_reference(x, weight, bias, mix, "reflect", mask_on)


@pytest.mark.parametrize("form", FORMS)
def test_gradients_float32(form):
    x, weight, bias, mix = make_problem(form, dtype=torch.float32, h=13, w=17)
    compare_with_reference(x, weight, bias, mix, "reflect", "output", tol=1e-4)


@pytest.mark.parametrize("h,w,k", [(4, 5, 7), (2, 2, 3), (1, 1, 1)])
@pytest.mark.parametrize("form", FORMS)
def test_gradients_tiny_reflect(h, w, k, form):
    x, weight, bias, mix = make_problem(form, n=1, c=2, c_out=3, h=h, w=w, k=k)
    compare_with_reference(x, weight, bias, mix, "reflect", "input")
    compare_with_reference(
        *make_problem(form, n=1, c=2, c_out=3, h=h, w=w, k=k), "reflect", "output"
    )


@pytest.mark.parametrize(
    "form,padding_mode,mask_on",
    list(itertools.product(FORMS, ("reflect", "zeros"), ("output", "input"))),
)
def test_gradcheck(form, padding_mode, mask_on):
    x, weight, bias, mix = make_problem(form, n=2, c=2, c_out=2, h=4, w=5, banks=2)
    inputs = grad_inputs(x, weight, bias, mix)
    with_mix = len(inputs) == 4

    def fn(*args):
        m = args[3] if with_mix else mix
        return sb.bank_conv2d(*args[:3], m, padding_mode=padding_mode, mask_on=mask_on)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8)


def test_only_requested_gradients():
    x, weight, bias, mix = make_problem("masks")
    x.requires_grad_()
    out = sb.bank_conv2d(x, weight, bias, mix)
    (dx,) = torch.autograd.grad(out.sum(), [x])
    assert weight.grad is None and dx.shape == x.shape
    # The backward op returns empty tensors for what was not asked for.
    grads = torch.ops.stylebank_fast.bank_conv2d_backward(
        torch.ones_like(out),
        x.detach(),
        weight,
        bias,
        mix,
        "reflect",
        "output",
        [False, True, False, False],
    )
    assert [g.numel() == 0 for g in grads] == [True, False, True, True]


def test_backward_is_reproducible():
    x, weight, bias, mix = make_problem("masks", c=16, c_out=70, h=30, w=40, dtype=torch.float32)
    inputs = grad_inputs(x, weight, bias, mix)
    runs = []
    for _ in range(3):
        out = sb.bank_conv2d(x, weight, bias, mix)
        runs.append(torch.autograd.grad(out, inputs, torch.ones_like(out)))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
