"""Test helpers shared by the test modules (imported as `from helpers import ...`): random
operator problems in every mix form, tiny synthetic photos and styles."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylebank_fast as sb

FORMS = ("none", "ids", "weights", "masks")

requires_extension = pytest.mark.skipif(
    not sb.extension_available(), reason="the compiled extension is not built"
)


def make_problem(
    form: str,
    *,
    n: int = 2,
    c: int = 5,
    c_out: int = 7,
    h: int = 9,
    w: int = 11,
    banks: int = 3,
    k: int = 3,
    dtype: torch.dtype = torch.float64,
    broadcast: bool = False,
    device: str = "cpu",
    seed: int = 0,
):
    """Random x, weight, bias, mix (never zeros); masks are sparse (hard and soft regions)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    x = rand(n, c, h, w)
    weight = rand(1 if form == "none" else banks, c_out, c, k, k)
    bias = rand(weight.shape[0], c_out)
    lead = 1 if broadcast else n
    if form == "none":
        mix = None
    elif form == "ids":
        mix = torch.randint(0, banks, (n,), generator=g).to(device)
    elif form == "weights":
        mix = torch.rand(lead, banks, generator=g, dtype=torch.float64).to(device, dtype)
    else:
        soft = torch.rand(lead, banks, h, w, generator=g, dtype=torch.float64)
        keep = torch.rand(lead, banks, h, w, generator=g) > 0.4
        mix = (soft * keep).to(device, dtype)
    return x, weight, bias, mix


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def synthetic_photo(seed: int, h: int = 48, w: int = 56) -> np.ndarray:
    """Smooth colour gradients with a few blobs: photo-like, no texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([a * x + b * y + c for a, b, c in rng.uniform(-0.5, 1, (3, 3))], -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    return image


def synthetic_style(kind: str, size: int = 48) -> np.ndarray:
    """A strongly textured 'painting': diagonal stripes or a checkerboard, in two colours."""
    y, x = np.mgrid[0:size, 0:size]
    if kind == "stripes":
        mask = ((x + y) // 3) % 2 == 0
        colours = ([0.9, 0.2, 0.1], [0.1, 0.1, 0.6])
    else:
        mask = ((x // 4) + (y // 4)) % 2 == 0
        colours = ([1.0, 0.9, 0.1], [0.0, 0.5, 0.2])
    return np.where(mask[..., None], colours[0], colours[1])


STYLE_NAMES = ("starry_night", "great_wave", "mosaic")  # the tiny test model's styles


# --- The CUDA emulation header: its extension and sanitizer runs ---

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    "csrc/emulation/emulated_op.cpp",
    "csrc/emulation/selftest.cpp",
    "csrc/bank_conv_problem.cpp",
]
FLAGS = {
    "plain": ["-O2"],
    "asan": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address"],
    "tsan": ["-O1", "-g", "-fsanitize=thread"],
}
SANITIZER_RUNTIME = {"asan": "libasan.so", "tsan": "libtsan.so"}


def load_emulation(variant: str = "plain"):
    """Builds (once; cached under build/emulation/) and loads the emulated ops:
    torch.ops.stylebank_fast_emulated.*. Sanitizer variants load only in a process that started
    with their runtime (see run_sanitized)."""
    from torch.utils import cpp_extension

    build = ROOT / "build" / "emulation" / variant
    build.mkdir(parents=True, exist_ok=True)
    flags = FLAGS[variant]
    cpp_extension.load(
        name=f"stylebank_fast_emulated_{variant}",
        sources=[str(ROOT / s) for s in SOURCES],
        extra_cflags=flags,
        extra_ldflags=[f for f in flags if f.startswith("-fsanitize")],
        build_directory=str(build),
        is_python_module=False,
    )
    return torch.ops.stylebank_fast_emulated


def run_sanitized(variant: str, code: str) -> subprocess.CompletedProcess:
    """Runs `code` (with `E` = the emulated ops) in a fresh Python under the sanitizer."""
    runtime = subprocess.run(
        ["g++", f"-print-file-name={SANITIZER_RUNTIME[variant]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ.pop("LD_PRELOAD")  # the compiler that builds the library runs without it
        sys.path.insert(0, {str(ROOT / "tests")!r})
        import torch
        torch.set_num_threads(1)
        from test_emulation_header import load_emulation
        E = load_emulation({variant!r})
        """
    ) + textwrap.dedent(code)
    env = dict(
        os.environ,
        LD_PRELOAD=runtime,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
        TSAN_OPTIONS="report_signal_unsafe=0",
        OMP_NUM_THREADS="1",
        MAX_JOBS="1",
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=900
    )
