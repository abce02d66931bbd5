"""The CUDA kernels' source, run on the CPU under the emulation header, against the float64
reference: every mix form, padding, mask position, kernel size and core (strict FMA, TF32,
float16 and bfloat16 WMMA), forward and backward; a few cases under AddressSanitizer and
ThreadSanitizer."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import FORMS, ROOT, load_emulation, make_problem, run_sanitized

import stylebank_fast as sb

# Relative to the largest reference value. TF32 keeps 10 mantissa bits, bfloat16 7.
TOL = {"float64": 1e-10, "float32": 2e-4, "tf32": 1e-2, "float16": 1e-2, "bfloat16": 6e-2}
DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "tf32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


@pytest.fixture(scope="module")
def E():
    return load_emulation()


@pytest.fixture
def tf32(request):
    """Whether float32 runs on (emulated) TF32 tensor cores, as cudnn.allow_tf32 says."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = request.param
    yield request.param
    torch.backends.cudnn.allow_tf32 = before


def double(t):
    return None if t is None else (t.double() if t.is_floating_point() else t)


def check(E, problem, padding_mode, mask_on, precision="float64"):
    """Forward and all gradients of the emulated kernels against the reference's autograd."""
    dtype = DTYPES[precision]
    x, weight, bias, mix = (
        None if t is None else t.to(dtype) if t.is_floating_point() else t for t in problem
    )
    ref_inputs = [double(t) for t in (x, weight, bias, mix)]
    leaves = [t.requires_grad_() for t in ref_inputs if t is not None and t.is_floating_point()]
    ref = sb.reference_bank_conv2d(*ref_inputs, padding_mode=padding_mode, mask_on=mask_on)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = torch.autograd.grad(ref, leaves, grad.to(dtype).double())
    out = torch.full_like(ref, float("nan"), dtype=dtype)
    out.copy_(E.bank_conv2d(x, weight, bias, mix, padding_mode, mask_on))
    with_mix = mix is not None and mix.is_floating_point()
    got = E.bank_conv2d_backward(
        grad.to(dtype),
        x,
        weight,
        bias,
        mix,
        padding_mode,
        mask_on,
        [True, True, bias is not None, with_mix],
    )
    got = [g for g, wanted in zip(got, [True, True, bias is not None, with_mix]) if wanted]
    tol = TOL[precision]
    for name, a, b in zip(("out", "dx", "dweight", "dbias", "dmix"), [out, *got], [ref, *want]):
        assert a.dtype == dtype and a.shape == b.shape, name
        assert torch.isfinite(a).all(), f"{name}: not every element written"
        err = (a.double() - b).abs().max().item()
        assert err <= tol * max(1.0, b.abs().max().item()), f"{name}: max error {err}"


@pytest.mark.parametrize(
    "form,padding_mode,mask_on,k",
    list(itertools.product(FORMS, ("reflect", "zeros"), ("output", "input"), (1, 3, 5))),
)
def test_matches_reference_float64(E, form, padding_mode, mask_on, k):
    check(E, make_problem(form, k=k), padding_mode, mask_on)


@pytest.mark.parametrize(
    "precision,tf32",
    [("float32", False), ("tf32", True), ("float16", False), ("bfloat16", False)],
    indirect=["tf32"],
)
@pytest.mark.parametrize("form", FORMS)
def test_cores(E, form, precision, tf32):
    check(E, make_problem(form, c=8, c_out=6, h=13, w=17), "reflect", "output", precision)
    check(E, make_problem(form, c=8, c_out=6, h=13, w=17, seed=1), "zeros", "input", precision)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_ragged_tiles_two_channel_tiles(E, form, mask_on):
    # Tiles ragged in both directions, more output channels than one tile, wide halos.
    problem = make_problem(form, n=2, c=3, c_out=70, h=19, w=13, banks=3, k=5)
    check(E, problem, "reflect", mask_on)


@pytest.mark.parametrize("form", ("weights", "masks"))
def test_broadcast_mix(E, form):
    check(E, make_problem(form, n=3, broadcast=True), "reflect", "input")


@pytest.mark.parametrize("h,w,k", [(1, 1, 1), (2, 2, 3), (4, 5, 7)])
def test_tiny_images(E, h, w, k):
    for form in FORMS:
        check(E, make_problem(form, n=1, c=2, c_out=3, h=h, w=w, k=k), "reflect", "input")


@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_hard_masks_skip_banks(E, mask_on):
    # Blocky regions: most tiles see one bank, so the occupancy test skips the others.
    x, weight, bias, _ = make_problem("ids", n=2, banks=4, h=24, w=32)
    region = (torch.arange(32) // 9).expand(2, 24, 32)
    masks = F.one_hot(region, 4).permute(0, 3, 1, 2).double()
    check(E, (x, weight, bias, masks), "reflect", mask_on)
    check(E, (x, weight, None, torch.zeros_like(masks)), "zeros", mask_on)


def test_bitwise_reproducible(E):
    x, weight, bias, mix = (t.float() for t in make_problem("masks", h=17, w=19))
    grad = torch.randn(2, 7, 17, 19)
    runs = [
        (
            E.bank_conv2d(x, weight, bias, mix, "reflect", "output"),
            *E.bank_conv2d_backward(grad, x, weight, bias, mix, "reflect", "output", [True] * 4),
        )
        for _ in range(3)
    ]
    for run in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], run))


def test_errors_come_from_the_shared_checks(E):
    x, weight, bias, mix = make_problem("masks")
    with pytest.raises(ValueError, match="mix of per-pixel weights"):
        E.bank_conv2d(x, weight, bias, mix[:, :, :4], "reflect", "output")


SANITIZED_CASES = """
    import sys
    sys.path.insert(0, {tests!r})
    from helpers import make_problem
    cases = [("masks", "bfloat16", "input"), ("masks", "float64", "output"), ("ids", "float32", "input")]
    for form, dtype, mask_on in cases:
        x, w, b, m = (t.to(getattr(torch, dtype)) if t is not None and t.is_floating_point() else t
                      for t in make_problem(form, n=1, h=9, w=10))
        out = E.bank_conv2d(x, w, b, m, "reflect", mask_on)
        E.bank_conv2d_backward(torch.randn_like(out), x, w, b, m, "reflect", mask_on, [True] * 4)
    print("ran", len(cases))
"""


@pytest.mark.parametrize("variant", ("asan", "tsan"))
def test_kernels_under_sanitizers(variant):
    result = run_sanitized(variant, SANITIZED_CASES.format(tests=str(ROOT / "tests")))
    assert result.returncode == 0 and "ran 3" in result.stdout, result.stderr[-4000:]
    assert "Sanitizer" not in result.stderr, result.stderr[-4000:]
