"""The op as torch sees it: schema, fake kernels, autograd registration, torch.compile."""

import pytest
import torch
from helpers import FORMS, make_problem, requires_extension

import stylebank_fast as sb

pytestmark = requires_extension

OP = torch.ops.stylebank_fast.bank_conv2d.default


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask_on", ("output", "input"))
def test_opcheck(form, mask_on):
    x, weight, bias, mix = make_problem(form, n=2, c=3, c_out=4, h=6, w=7, dtype=torch.float32)
    for t in (x, weight, bias):
        t.requires_grad_()
    if mix is not None and mix.is_floating_point():
        mix.requires_grad_()
    torch.library.opcheck(OP, (x, weight, bias, mix, "reflect", mask_on))


def test_opcheck_backward_op():
    x, weight, bias, mix = make_problem("masks", dtype=torch.float32)
    grad = torch.randn(2, 7, 9, 11)
    args = (grad, x, weight, bias, mix, "zeros", "input", [True, True, True, True])
    torch.library.opcheck(torch.ops.stylebank_fast.bank_conv2d_backward.default, args)


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(3, 8, 20, 30)
        out = sb.bank_conv2d(x, torch.empty(4, 16, 8, 5, 5), None, torch.empty(3, 4, 20, 30))
    assert out.shape == (3, 16, 20, 30)


@pytest.mark.parametrize("backend", ("aot_eager", "inductor"))
def test_torch_compile_fullgraph(backend):
    x, weight, bias, mix = make_problem("masks", dtype=torch.float32)
    weight.requires_grad_()

    def f(x, weight, bias, mix):
        return torch.relu(sb.bank_conv2d(x, weight, bias, mix, mask_on="input")) * 2

    compiled = torch.compile(f, fullgraph=True, backend=backend)
    out = compiled(x, weight, bias, mix)
    ref = f(x, weight, bias, mix)
    torch.testing.assert_close(out, ref)
    (g1,) = torch.autograd.grad(out.sum(), [weight])
    (g2,) = torch.autograd.grad(ref.sum(), [weight])
    torch.testing.assert_close(g1, g2)


def test_backend_info():
    info = sb.backend_info()
    assert info["extension"] and info["cpu"]
    assert info["torch_built"].split("+")[0] == torch.__version__.split("+")[0]
    assert info["cuda"] == (len(info["cuda_archs"]) > 0)


def test_autocast_runs_the_op_in_the_autocast_dtype():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 9, 11, generator=g, requires_grad=True)
    weight = torch.randn(3, 8, 8, 3, 3, generator=g, requires_grad=True)
    bias, mix = torch.randn(3, 8, generator=g), torch.rand(2, 3, generator=g)
    exact = sb.bank_conv2d(x, weight, bias, mix)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = sb.bank_conv2d(x, weight, bias, mix)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), exact, rtol=0.05, atol=0.1)
    fast.float().sum().backward()  # gradients reach the float32 leaves in their dtype
    assert x.grad.dtype == torch.float32 and weight.grad.dtype == torch.float32
