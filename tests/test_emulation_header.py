"""The CUDA emulation header (csrc/emulation/cuda_emulation.h) itself: barriers, votes, shared
memory and WMMA behave as on a GPU, and a skipped barrier or an overrun shows up as a wrong result
or a sanitizer report. Also builds the emulated ops that tests/test_cuda_emulated.py uses."""

from __future__ import annotations

import pytest
import torch
from helpers import load_emulation, run_sanitized


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
