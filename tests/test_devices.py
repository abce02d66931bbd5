"""Devices: what a user may ask for, and the messages for what this torch cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import stylebank_fast.devices as devices
import stylebank_fast.stylizer as stylizer_module
from stylebank_fast import StyleBankError, Stylizer
from stylebank_fast.devices import resolve_device
from stylebank_fast.stylize import main


def test_cpu_and_auto_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "name, message",
    [
        ("mps", "kernels for the CPU and CUDA only"),
        ("xpu", "kernels for the CPU and CUDA only"),
        ("toaster", "unknown device 'toaster'"),
    ],
)
def test_devices_this_package_cannot_use(name, message):
    with pytest.raises(StyleBankError, match=message):
        resolve_device(name)


def test_cuda_without_a_gpu_says_use_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StyleBankError, match="no CUDA device.*use 'cpu'"):
        resolve_device("cuda:1")


def test_auto_with_a_gpu_but_no_cuda_kernels_uses_the_cpu_and_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "backend_info", lambda: {"cpu": True, "cuda": False})
    with pytest.warns(RuntimeWarning, match="without CUDA kernels"):
        assert resolve_device("auto") == torch.device("cpu")


def test_python_errors_speak_python(tiny_model_path):
    with pytest.raises(StyleBankError) as error:
        Stylizer(tiny_model_path, device="mps")
    assert "--device" not in str(error.value) and "'mps'" in str(error.value)


def test_cli_device_error_exits_2(tiny_model_path, capsys):
    assert main(["--list-styles", "--model", str(tiny_model_path), "--device", "mps"]) == 2
    err = capsys.readouterr().err
    assert "mps" in err and "Traceback" not in err


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_where_the_cpu_computes_it(monkeypatch, tiny_model_path, native):
    monkeypatch.setattr(stylizer_module, "inference_dtype", devices.inference_dtype)  # conftest's
    monkeypatch.setattr(devices, "cpu_computes_bfloat16", lambda: native)
    want = "bfloat16" if native else "float32"
    assert Stylizer(tiny_model_path, device="cpu").precision == want
    assert Stylizer(tiny_model_path, device="cpu", bfloat16=False).precision == "float32"
    assert Stylizer(tiny_model_path, device="cpu", bfloat16=True).precision == "bfloat16"
    assert Stylizer(tiny_model_path, device="cpu", fast=False).precision == "float32"
    cuda = torch.device("cuda")
    assert devices.inference_dtype(None, cuda) == torch.float32  # until measured on a GPU


def test_cpu_computes_bfloat16_reads_the_cpu_flags(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr(devices, "Path", lambda p: info if p == "/proc/cpuinfo" else Path(p))
    for flags, want in [("fpu avx512_bf16 x", True), ("fpu amx_bf16", True), ("fpu avx2", False)]:
        info.write_text(f"processor : 0\nflags : {flags}\n")
        assert devices.cpu_computes_bfloat16() is want
    info.unlink()
    assert devices.cpu_computes_bfloat16() is False  # no /proc/cpuinfo: float32


def test_cli_precision_reaches_the_stylizer(tiny_model_path, tmp_path, monkeypatch):
    chosen = []
    real_init = Stylizer.__init__

    def spy(self, *args, **kwargs):
        chosen.append(kwargs.get("bfloat16"))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "__init__", spy)
    for flag in ["auto", "float32", "bfloat16"]:
        assert main(["--list-styles", "--model", str(tiny_model_path), "--precision", flag]) == 0
    assert chosen == [None, False, True]
