"""The CMake build of the operator library (for C++/libtorch users) loads and runs."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "cmake")


@pytest.fixture(scope="module")
def library() -> str:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = [
        "cmake",
        "-S",
        ROOT,
        "-B",
        BUILD,
        *generator,
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
    ]
    for cmd in (configure, ["cmake", "--build", BUILD, "-j2"]):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return os.path.join(BUILD, "libstylebank_fast_ops.so")


def test_load_library_and_run(library):
    # A fresh interpreter: the Python extension registers the same ops and must not be loaded.
    code = f"""
import torch, torch.nn.functional as F
torch.ops.load_library({library!r})
x = torch.randn(2, 4, 6, 7, dtype=torch.float64)
w = torch.randn(3, 5, 4, 3, 3, dtype=torch.float64)
b = torch.randn(3, 5, dtype=torch.float64)
ids = torch.tensor([2, 0])
out = torch.ops.stylebank_fast.bank_conv2d(x, w, b, ids, "reflect", "output")
for n in range(2):
    ref = F.conv2d(F.pad(x[n:n+1], (1, 1, 1, 1), mode="reflect"), w[ids[n]], b[ids[n]])
    assert torch.allclose(out[n:n+1], ref, atol=1e-10), n
info = torch.ops.stylebank_fast._backend_info()
assert torch.__version__.split("+")[0] in info, info
print("OK")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
