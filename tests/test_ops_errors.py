"""Bad arguments raise errors that name the argument and the values involved."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_problem, requires_extension

import stylebank_fast as sb

x, weight, bias, _ = make_problem("ids", n=2, c=5, c_out=7, h=9, w=11, banks=3, dtype=torch.float32)
ids = torch.tensor([0, 2])

CASES = [
    # (description, args, kwargs, error type, words the message must hold)
    ("x not 4-D", (x[0], weight, bias, ids), {}, ValueError, ["x must be 4-D", "[5, 9, 11]"]),
    (
        "weight not 5-D",
        (x, weight[0], bias, ids),
        {},
        ValueError,
        ["weight must be 5-D", "[7, 5, 3, 3]"],
    ),
    ("C mismatch", (x[:, :4], weight, bias, ids), {}, ValueError, ["C=5", "C=4"]),
    (
        "even k",
        (x, torch.randn(3, 7, 5, 4, 4), bias, ids),
        {},
        ValueError,
        ["odd", "[3, 7, 5, 4, 4]"],
    ),
    (
        "k too large",
        (x, torch.randn(3, 7, 5, 9, 9), bias, ids),
        {},
        ValueError,
        ["{1, 3, 5, 7}", "[3, 7, 5, 9, 9]"],
    ),
    (
        "non-square k",
        (x, torch.randn(3, 7, 5, 3, 5), bias, ids),
        {},
        ValueError,
        ["square", "[3, 7, 5, 3, 5]"],
    ),
    ("bias K mismatch", (x, weight, bias[:2], ids), {}, ValueError, ["bias", "[3, 7]", "[2, 7]"]),
    (
        "id too large",
        (x, weight, bias, torch.tensor([0, 3])),
        {},
        IndexError,
        ["style id 3", "K=3"],
    ),
    ("id negative", (x, weight, bias, torch.tensor([-1, 0])), {}, IndexError, ["style id -1"]),
    (
        "ids wrong length",
        (x, weight, bias, torch.tensor([0, 1, 2])),
        {},
        ValueError,
        ["[N] = [2]", "[3]"],
    ),
    ("ids int32", (x, weight, bias, ids.int()), {}, TypeError, ["int64", "Int"]),
    ("mix=None with K>1", (x, weight, bias, None), {}, ValueError, ["K=3", "mix=None"]),
    (
        "weights wrong K",
        (x, weight, bias, torch.rand(2, 4)),
        {},
        ValueError,
        ["[N, K] = [2, 3]", "[2, 4]"],
    ),
    (
        "weights wrong N",
        (x, weight, bias, torch.rand(3, 3)),
        {},
        ValueError,
        ["[N, K] = [2, 3]", "[3, 3]"],
    ),
    (
        "masks wrong size",
        (x, weight, bias, torch.rand(2, 3, 9, 10)),
        {},
        ValueError,
        ["[2, 3, 9, 11]", "[2, 3, 9, 10]"],
    ),
    (
        "mix 3-D",
        (x, weight, bias, torch.rand(2, 3, 9)),
        {},
        ValueError,
        ["[N, K, H, W]", "[2, 3, 9]"],
    ),
    ("dtype mix", (x, weight.double(), bias, ids), {}, TypeError, ["weight", "Double", "Float"]),
    ("dtype of bias", (x, weight, bias.double(), ids), {}, TypeError, ["bias", "Double"]),
    (
        "reflect too large",
        (x[:, :, :3], torch.randn(3, 7, 5, 7, 7), bias, ids),
        {},
        ValueError,
        ["reflect padding of 3", "3x11", "zeros"],
    ),
    (
        "padding_mode",
        (x, weight, bias, ids),
        {"padding_mode": "circular"},
        ValueError,
        ["padding_mode", "circular"],
    ),
    ("mask_on", (x, weight, bias, ids), {"mask_on": "middle"}, ValueError, ["mask_on", "middle"]),
    ("integer x", (x.long(), weight, bias, ids), {}, TypeError, ["x must be float32"]),
    (
        "float16 on the CPU",
        (x.half(), weight.half(), bias.half(), ids),
        {},
        TypeError,
        ["float16", "CUDA"],
    ),
]


@requires_extension
@pytest.mark.parametrize("desc,args,kwargs,error,words", CASES, ids=[c[0] for c in CASES])
def test_bad_argument(desc, args, kwargs, error, words):
    with pytest.raises(error) as info:
        sb.bank_conv2d(*args, **kwargs)
    message = str(info.value)
    assert message.startswith("bank_conv2d:"), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@requires_extension
def test_mixed_devices():
    meta = torch.empty(3, 7, 5, 3, 3, device="meta")
    with pytest.raises(ValueError, match="weight is on meta but x is on cpu"):
        torch.ops.stylebank_fast.bank_conv2d.default.redispatch(
            torch._C.DispatchKeySet(torch._C.DispatchKey.CPU),
            x,
            meta,
            None,
            ids,
            "reflect",
            "output",
        )


def run_without_extension(code: str, allow_reference: bool) -> subprocess.CompletedProcess:
    # A None entry in sys.modules makes `from . import _C` raise ImportError.
    prelude = "import sys; sys.modules['stylebank_fast._C'] = None\n"
    env = dict(os.environ, STYLEBANK_FAST_ALLOW_REFERENCE="1" if allow_reference else "0")
    return subprocess.run(
        [sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_extension_says_how_to_build():
    code = (
        "import torch, stylebank_fast as sb\n"
        "assert not sb.extension_available()\n"
        "try:\n"
        "    sb.bank_conv2d(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 3, 3))\n"
        "except RuntimeError as e:\n"
        "    print('ERROR', e)\n"
    )
    result = run_without_extension(code, allow_reference=False)
    assert result.returncode == 0, result.stderr
    assert "could not be loaded" in result.stderr  # the one warning at import
    assert result.stderr.count("could not be loaded") == 1
    assert "ERROR" in result.stdout and "pip install --no-build-isolation" in result.stdout
    assert "STYLEBANK_FAST_ALLOW_REFERENCE=1" in result.stdout


def test_missing_extension_cli_exits_2_without_a_traceback(tmp_path):
    photo = Path(__file__).parents[1] / "examples" / "photos" / "tubingen.jpg"
    code = (
        "import sys\n"
        "from stylebank_fast.stylize import main\n"
        f"sys.exit(main([{str(photo)!r}, '--style', '0', '-o', {str(tmp_path / 'o.png')!r}]))\n"
    )
    result = run_without_extension(code, allow_reference=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "extension is not available" in result.stderr and "pip install" in result.stderr
    assert not list(tmp_path.iterdir())  # no partial output


def test_missing_extension_reference_opt_in():
    code = (
        "import torch, stylebank_fast as sb\n"
        "x, w = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 2, 3, 3)\n"
        "out = sb.bank_conv2d(x, w)\n"
        "ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1,) * 4, mode='reflect'), w[0])\n"
        "assert torch.allclose(out, ref, atol=1e-5)\n"
        "print('OK')\n"
    )
    result = run_without_extension(code, allow_reference=True)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


DATA_DEPENDENT = {"id too large", "id negative"}  # need the ids' values: checked when run


@requires_extension
@pytest.mark.parametrize(
    "desc,args,kwargs,error,words",
    [c for c in CASES if c[0] not in DATA_DEPENDENT],
    ids=[c[0] for c in CASES if c[0] not in DATA_DEPENDENT],
)
def test_fake_kernel_refuses_what_the_kernel_refuses(desc, args, kwargs, error, words):
    """torch.compile sees a bad call at trace time, with the same kind of error."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
    options = {"padding_mode": "reflect", "mask_on": "output", **kwargs}
    with mode, pytest.raises(error):
        torch.ops.stylebank_fast.bank_conv2d(*fake, options["padding_mode"], options["mask_on"])


@requires_extension
def test_double_backward_is_refused():
    x = torch.randn(1, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 4, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(
        sb.bank_conv2d(x, w, None, torch.tensor([1])).sum(), x, create_graph=True
    )
    with pytest.raises(RuntimeError, match="first derivatives only"):
        grad.sum().backward()
