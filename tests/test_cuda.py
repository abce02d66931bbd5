"""The CUDA kernels on a GPU (skipped without one): the CPU tests' matrix against the float64
reference on the CPU, every dtype, NaN-poisoned memory, ragged tiles, gradcheck, opcheck,
torch.compile with CUDA graphs and bitwise reproducibility."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from helpers import FORMS, make_problem

import stylebank_fast as sb

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and sb.extension_available() and sb.backend_info()["cuda"]),
    reason="needs a GPU and the extension built with its CUDA kernels",
)

TOL = {torch.float64: 1e-10, torch.float32: 2e-4, torch.float16: 1e-2, torch.bfloat16: 6e-2}
TF32_TOL = 1e-2


def poison_allocator():
    """Fills the caching allocator's free memory with NaN, so that an output element the kernels
    never write shows up."""
    free = torch.cuda.mem_get_info()[0]
    torch.empty(min(free // 2, 1 << 30), dtype=torch.uint8, device="cuda").fill_(0xFF)
    torch.cuda.synchronize()


def on_cuda(problem, dtype):
    return [
        None if t is None else t.to("cuda", dtype) if t.is_floating_point() else t.cuda()
        for t in problem
    ]


def check(problem, padding_mode, mask_on, dtype=torch.float64, tol=None):
    tol = tol or TOL[dtype]
    x, weight, bias, mix = on_cuda(problem, dtype)
    leaves = [t.requires_grad_() for t in (x, weight, bias, mix) if t is not None]
    leaves = [t for t in leaves if t.is_floating_point()]
    ref_in = [
        None if t is None else t.detach().cpu().double() if t.is_floating_point() else t.cpu()
        for t in (x, weight, bias, mix)
    ]
    ref_leaves = [t.requires_grad_() for t in ref_in if t is not None and t.is_floating_point()]
    ref = sb.reference_bank_conv2d(*ref_in, padding_mode=padding_mode, mask_on=mask_on)
    grad = torch.randn(ref.shape, dtype=torch.float64).to("cuda", dtype)
    want = torch.autograd.grad(ref, ref_leaves, grad.cpu().double())
    poison_allocator()
    out = sb.bank_conv2d(x, weight, bias, mix, padding_mode=padding_mode, mask_on=mask_on)
    poison_allocator()
    got = torch.autograd.grad(out, leaves, grad)
    for name, a, b in zip(("out", "dx", "dweight", "dbias", "dmix"), [out, *got], [ref, *want]):
        assert a.dtype == dtype and a.shape == b.shape, name
        assert torch.isfinite(a).all(), f"{name}: elements never written"
        err = (a.double().cpu() - b).abs().max().item()
        assert err <= tol * max(1.0, b.abs().max().item()), f"{name}: max error {err}"


@pytest.fixture
def strict_fp32():
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize(
    "form,padding_mode,mask_on,k",
    list(itertools.product(FORMS, ("reflect", "zeros"), ("output", "input"), (1, 3, 5, 7))),
)
def test_matches_reference_float64(form, padding_mode, mask_on, k):
    check(make_problem(form, k=k, h=9, w=11), padding_mode, mask_on)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_dtypes(dtype, form, mask_on):
    problem = make_problem(form, n=3, c=13, c_out=70, h=37, w=45, banks=4)
    check(problem, "reflect", mask_on, dtype, TF32_TOL if dtype == torch.float32 else None)


@pytest.mark.parametrize("form", FORMS)
def test_strict_float32(form, strict_fp32):
    check(make_problem(form, c=13, c_out=70, h=21, w=19), "zeros", "input", torch.float32)


@pytest.mark.parametrize("form", ("weights", "masks"))
def test_broadcast_and_tiny(form):
    check(make_problem(form, n=3, broadcast=True), "reflect", "input")
    check(make_problem(form, n=1, c=2, c_out=3, h=4, w=5, k=7), "reflect", "output")


@pytest.mark.parametrize("form,mask_on", list(itertools.product(FORMS, ("output", "input"))))
def test_gradcheck(form, mask_on):
    x, weight, bias, mix = on_cuda(
        make_problem(form, c=2, c_out=3, h=5, w=6, banks=2), torch.float64
    )
    inputs = [t.requires_grad_() for t in (x, weight, bias)]
    if mix is not None and mix.is_floating_point():
        inputs.append(mix.requires_grad_())

    def fn(*args):
        return sb.bank_conv2d(*args[:3], args[3] if len(args) == 4 else mix, mask_on=mask_on)

    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("form", FORMS)
def test_opcheck(form):
    x, weight, bias, mix = on_cuda(make_problem(form), torch.float32)
    args = (x.requires_grad_(), weight.requires_grad_(), bias, mix, "reflect", "input")
    torch.library.opcheck(torch.ops.stylebank_fast.bank_conv2d.default, args)


@pytest.mark.parametrize("form", ("none", "weights", "masks"))
def test_compile_with_cuda_graphs(form):
    x, weight, bias, mix = on_cuda(make_problem(form, n=2, h=16, w=16), torch.float32)
    fn = torch.compile(
        lambda x: sb.bank_conv2d(x, weight, bias, mix).relu(),
        mode="reduce-overhead",
        fullgraph=True,
    )
    for _ in range(3):
        out = fn(x)
    torch.testing.assert_close(out, sb.bank_conv2d(x, weight, bias, mix).relu())


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
def test_deterministic_mode_is_bitwise_reproducible(dtype):
    x, weight, bias, mix = on_cuda(make_problem("masks", n=4, c=32, c_out=64, h=40, w=48), dtype)
    leaves = [t.requires_grad_() for t in (x, weight, bias, mix)]
    grad = torch.randn(4, 64, 40, 48, device="cuda", dtype=dtype)
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(10):
            out = sb.bank_conv2d(x, weight, bias, mix, mask_on="input")
            runs.append([out, *torch.autograd.grad(out, leaves, grad)])
    finally:
        torch.use_deterministic_algorithms(False)
    for run in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], run))


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
def test_fast_network_on_cuda_matches_the_cpu_module_path(dtype):
    """The inference rewrite (kept buffers, phase layouts, banded passes) on a GPU."""
    from stylebank_fast.fast_inference import fast_model

    torch.manual_seed(0)
    model = sb.StyleBankNet(3).eval()
    reference = copy.deepcopy(model)
    x = torch.rand(2, 3, 37, 53)
    masks = torch.rand(2, 3, 37, 53)
    fast = fast_model(model.cuda(), dtype)
    tol = 1e-3 if dtype == torch.float32 else 5e-2  # TF32 convolutions; bfloat16
    with torch.inference_mode():
        for style in (None, 1, {0: 0.3, 2: 0.7}, masks):
            on_gpu = style.cuda() if isinstance(style, torch.Tensor) else style
            got = [fast(x.cuda(), on_gpu).cpu() for _ in range(2)]  # buffers reused
            want = reference(x, style)
            for out in got:
                torch.testing.assert_close(out, want, rtol=tol, atol=tol)


def test_stylizer_on_cuda(tiny_model_path):
    photo = torch.rand(3, 45, 61)
    gpu = sb.Stylizer(tiny_model_path, device="cuda")
    cpu = sb.Stylizer(tiny_model_path, device="cpu", fast=False)
    halves = (torch.arange(61) >= 30).int().expand(45, 61).numpy()
    for kwargs in ({"style": 0}, {"regions": halves, "region_styles": [0, 1]}):
        torch.testing.assert_close(
            gpu.stylize(photo, **kwargs), cpu.stylize(photo, **kwargs), rtol=2e-3, atol=2e-3
        )
