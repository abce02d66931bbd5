"""The CMake build of the operator library (for C++/libtorch users) loads and runs."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "cmake")


def cuda_torch_without_toolkit(root: str) -> str:
    """A torch tree laid out like a CUDA build (libtorch_cuda.so present) whose CMake config
    fails as a CUDA torch's does on a machine without a CUDA toolkit; headers and CPU
    libraries are this torch's. Returns its cmake prefix path."""
    real = os.path.dirname(torch.__file__)
    os.makedirs(os.path.join(root, "lib"))
    os.symlink(os.path.join(real, "include"), os.path.join(root, "include"))
    for name in ("libtorch.so", "libtorch_cpu.so", "libc10.so"):
        os.symlink(os.path.join(real, "lib", name), os.path.join(root, "lib", name))
    open(os.path.join(root, "lib", "libtorch_cuda.so"), "w").close()
    shutil.copy(os.path.join(real, "version.py"), os.path.join(root, "version.py"))
    config = os.path.join(root, "share", "cmake", "Torch")
    os.makedirs(config)
    with open(os.path.join(config, "TorchConfig.cmake"), "w") as f:
        f.write(
            'message(FATAL_ERROR "Your installed Caffe2 version uses CUDA but I cannot find '
            'the CUDA libraries. Please set the proper CUDA prefixes and / or install CUDA.")\n'
        )
    return os.path.join(root, "share", "cmake")


@pytest.fixture(scope="module", params=["torch", "cuda-torch-without-toolkit"])
def library(request, tmp_path_factory) -> str:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    build, prefix, extra = BUILD, torch.utils.cmake_prefix_path, []
    if request.param == "cuda-torch-without-toolkit":
        build = os.path.join(BUILD + "-cuda-torch")
        prefix = cuda_torch_without_toolkit(str(tmp_path_factory.mktemp("torch") / "torch"))
        extra = ["-DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=TRUE"]  # as on a machine without one
        shutil.rmtree(build, ignore_errors=True)  # its cache names the temporary tree
    configure = [
        "cmake",
        "-S",
        ROOT,
        "-B",
        build,
        *generator,
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_PREFIX_PATH={prefix}",
        *extra,
    ]
    for cmd in (configure, ["cmake", "--build", build, "-j2"]):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return os.path.join(build, "libstylebank_fast_ops.so")


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
