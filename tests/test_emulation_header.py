"""The CUDA emulation header (csrc/emulation/cuda_emulation.h) itself: barriers, votes, shared
memory and WMMA behave as on a GPU, and a skipped barrier or an overrun shows up as a wrong result
or a sanitizer report. Also builds the emulated ops that tests/test_cuda_emulated.py uses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(scope="module")
def E():
    return load_emulation()


def matmul_inputs(seed: int, n: int = 32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)


def test_tiled_matmul_with_barriers_is_exact(E):
    a, b = matmul_inputs(0)
    torch.testing.assert_close(E.selftest_matmul(a, b, False), a @ b)


def test_skipped_barrier_gives_a_wrong_result(E):
    # Fresh inputs each try: the shared tiles still hold the previous launch's values.
    errors = []
    for seed in range(1, 6):
        a, b = matmul_inputs(seed)
        errors.append((E.selftest_matmul(a, b, True) - a @ b).abs().max().item())
        if errors[-1] > 1e-3:
            return
    pytest.fail(f"a skipped barrier went unnoticed: errors {errors}")


def test_block_vote(E):
    flags = torch.zeros(4, 64, dtype=torch.long)
    flags[1, 63] = flags[3, 0] = flags[3, 17] = 1
    assert E.selftest_vote(flags.flatten(), 64).tolist() == [0, 1, 0, 1]


def test_dynamic_shared_memory(E):
    x = torch.randn(4 * 32)
    assert torch.equal(E.selftest_reverse(x, 32, 0), x.view(4, 32).flip(1).flatten())


def test_wmma_fragments(E):
    a, b = matmul_inputs(7, 16)
    want = a.bfloat16().float() @ b.bfloat16().float()
    torch.testing.assert_close(E.selftest_wmma(a, b, False), want, rtol=1e-5, atol=1e-5)


RACES = """
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(32, 32, generator=g), torch.randn(32, 32, generator=g)
    E.selftest_matmul(a, b, {skip})
    E.selftest_wmma(a[:16, :16], b[:16, :16], {skip})
"""


@pytest.mark.parametrize("skip", (False, True))
def test_thread_sanitizer_sees_a_skipped_barrier(skip):
    result = run_sanitized("tsan", RACES.format(skip=skip))
    assert result.returncode == 0 or "ThreadSanitizer" in result.stderr, result.stderr[-3000:]
    reported = "WARNING: ThreadSanitizer: data race" in result.stderr
    assert reported == skip, result.stderr[-3000:]


@pytest.mark.parametrize("overrun", (0, 1))
def test_address_sanitizer_sees_a_shared_memory_overrun(overrun):
    result = run_sanitized("asan", f"E.selftest_reverse(torch.randn(64), 64, {overrun})")
    reported = "AddressSanitizer: heap-buffer-overflow" in result.stderr
    assert reported == bool(overrun), result.stderr[-3000:]
