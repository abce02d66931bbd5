"""The fused StyleBank operator: extension loading, autograd and fake kernels, the reference."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ExtensionError

__all__ = ["bank_conv2d", "reference_bank_conv2d", "backend_info", "extension_available"]

_LIB = "stylebank_fast"
_ALLOW_REFERENCE_ENV = "STYLEBANK_FAST_ALLOW_REFERENCE"
_BUILD_HINT = (
    "Build it with `pip install --no-build-isolation -e .` from the repository root "
    "(a C++ compiler is needed; see README.md), or set "
    f"{_ALLOW_REFERENCE_ENV}=1 to run the slow pure-PyTorch reference instead."
)

_PACKAGE = Path(__file__).parent
if (_PACKAGE.parent / "setup.py").is_file() and not any(_PACKAGE.glob("_C.*")):
    # `pip install .` builds _C into site-packages, but from the repository root Python imports
    # this source folder first, which has none
    _BUILD_HINT = (
        f"Python imported the source folder {_PACKAGE}, which has no built extension (run from "
        "the repository root, it shadows a copy installed with `pip install .`). " + _BUILD_HINT
    )

try:
    from . import _C  # noqa: F401  (registers torch.ops.stylebank_fast.*)

    _EXTENSION_ERROR: BaseException | None = None
except (ImportError, OSError) as error:  # missing, or built against another torch
    _EXTENSION_ERROR = error
    warnings.warn(
        f"stylebank_fast: the compiled extension could not be loaded ({error}). "
        f"bank_conv2d will not run until it is built. {_BUILD_HINT}",
        RuntimeWarning,
        stacklevel=2,
    )


def extension_available() -> bool:
    """True when the compiled operator library (`stylebank_fast._C`) is loaded."""
    return _EXTENSION_ERROR is None


def backend_info() -> dict:
    """Which kernels were built (cpu, cuda and its arch list), and against which torch."""
    info = {"torch_runtime": torch.__version__, "extension": extension_available()}
    if not extension_available():
        info["error"] = str(_EXTENSION_ERROR)
        return info
    info.update(json.loads(torch.ops.stylebank_fast._backend_info()))
    return info


def reference_bank_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mix: Tensor | None = None,
    *,
    padding_mode: str = "reflect",
    mask_on: str = "output",
) -> Tensor:
    """Plain-PyTorch specification of :func:`bank_conv2d` (slow; K full convolutions).

    The kernels are tested against this function. It checks the math, not the arguments:
    use :func:`bank_conv2d` for the argument checks with readable errors.
    """
    n_banks, c_out, _, k, _ = weight.shape
    pad = (k // 2,) * 4
    mode = "reflect" if padding_mode == "reflect" else "constant"

    def conv(z: Tensor, bank: int) -> Tensor:
        return F.conv2d(F.pad(z, pad, mode=mode), weight[bank])

    if mix is None:
        mix = x.new_ones(1, n_banks)
    elif not mix.is_floating_point():
        mix = F.one_hot(mix, n_banks).to(x.dtype)
    if mix.dim() == 2:
        mix = mix[:, :, None, None]
    out = x.new_zeros(x.shape[0], c_out, *x.shape[2:])
    for bank in range(n_banks):
        m = mix[:, bank : bank + 1]
        b = 0 if bias is None else bias[bank].view(1, -1, 1, 1)
        if mask_on == "output":
            out = out + m * (conv(x, bank) + b)
        else:
            out = out + conv(m * x, bank) + m * b
    return out


def bank_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mix: Tensor | None = None,
    *,
    padding_mode: str = "reflect",
    mask_on: str = "output",
) -> Tensor:
    """Multi-bank 3x3/kxk convolution with linear and region fusion, in one fused kernel.

    Args:
        x: features ``[N, C, H, W]``.
        weight: the banks, ``[K, Cout, C, k, k]``; k odd, 1 <= k <= 7.
        bias: ``[K, Cout]`` or None.
        mix: how the banks combine: None (K == 1 only); int64 ``[N]`` style ids;
            float ``[N, K]`` per-sample weights; float ``[N, K, H, W]`` per-pixel weights.
            A leading 1 in a float mix broadcasts over N. Weights are used as given.
        padding_mode: ``"reflect"`` or ``"zeros"``; k // 2 on each side, stride 1.
        mask_on: ``"output"``: ``sum_k mix_k * (conv_k(x) + bias_k)``;
            ``"input"`` (the paper's Eq. 6): ``sum_k conv_k(mix_k * x) + mix_k * bias_k``.

    Returns:
        ``[N, Cout, H, W]``.
    """
    if _EXTENSION_ERROR is not None:
        if os.environ.get(_ALLOW_REFERENCE_ENV) == "1":
            return reference_bank_conv2d(
                x, weight, bias, mix, padding_mode=padding_mode, mask_on=mask_on
            )
        raise ExtensionError(
            f"stylebank_fast.bank_conv2d: the compiled extension is not available "
            f"({_EXTENSION_ERROR}). {_BUILD_HINT}"
        )
    return torch.ops.stylebank_fast.bank_conv2d(x, weight, bias, mix, padding_mode, mask_on)


if _EXTENSION_ERROR is None:
    from . import _registrations  # noqa: E402,F401  (fake, autograd and autocast kernels)
