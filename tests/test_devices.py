"""Devices: what a user may ask for, and the messages for what this torch cannot do."""

from __future__ import annotations

import pytest
import torch

import stylebank_fast.devices as devices
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
