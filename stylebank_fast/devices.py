"""Which device to run on: "auto", "cpu", "cuda", "cuda:N", or any device this torch has."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .errors import StyleBankError
from .ops import backend_info

__all__ = ["autocast_dtype", "cpu_computes_bfloat16", "inference_dtype", "resolve_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """ "auto" -> CUDA when a GPU is there and the extension has CUDA kernels, else the CPU; a
    device this torch cannot use is a StyleBankError that says what to use instead."""
    if str(name) == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if not backend_info().get("cuda", False):
            warnings.warn(
                "stylebank_fast: a CUDA GPU is present but the extension was built without "
                "CUDA kernels, so the CPU is used (reinstall with the CUDA toolkit on "
                "CUDA_HOME to use the GPU)",
                RuntimeWarning,
                stacklevel=2,
            )
            return torch.device("cpu")
        return torch.device("cuda")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise StyleBankError(
            f"unknown device {str(name)!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise StyleBankError(
            f"device {str(name)!r}: stylebank_fast has kernels for the CPU and CUDA only; "
            "use 'cpu' (or 'cuda' on an NVIDIA GPU)"
        )
    if not torch.cuda.is_available():
        raise StyleBankError(
            f"device {str(name)!r}: no CUDA device is available to this torch "
            f"({torch.__version__}); use 'cpu'"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise StyleBankError(
            f"device {str(name)!r}: this machine has {torch.cuda.device_count()} CUDA "
            f"device(s), cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def cpu_computes_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX), not an emulation."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype a `precision` setting autocasts to on `device` (None: float32, no autocast)."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device.type == "cpu" and cpu_computes_bfloat16() else None


def inference_dtype(bfloat16: bool | None, device: torch.device) -> torch.dtype:
    """The dtype the fast network runs in: `bfloat16` True or False forces it; None ("auto")
    picks bfloat16 where the CPU computes it natively (the CUDA path stays float32 until its
    kernels have been measured on a GPU)."""
    if bfloat16 is None:
        bfloat16 = device.type == "cpu" and cpu_computes_bfloat16()
    return torch.bfloat16 if bfloat16 else torch.float32
