"""The OpenMP wait policy chosen at import, and the thread count fitted to the free cores."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from stylebank_fast import cpu_threads


def run_python(code: str, **env: str) -> str:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


REPORT = "import os; print(os.environ.get('OMP_WAIT_POLICY'), cpu_threads.spinning())"


def test_package_first_makes_workers_sleep() -> None:
    out = run_python(f"import stylebank_fast; from stylebank_fast import cpu_threads; {REPORT}")
    assert out == "PASSIVE False"


def test_torch_first_leaves_spinning_workers_to_fitted_threads() -> None:
    code = f"import torch; import stylebank_fast; from stylebank_fast import cpu_threads; {REPORT}"
    assert run_python(code) == "None True"


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "1000")])
def test_a_policy_the_user_chose_is_kept(name: str, value: str) -> None:
    code = f"import stylebank_fast; from stylebank_fast import cpu_threads; import os; print(os.environ.get('{name}'), os.environ.get('OMP_WAIT_POLICY'), cpu_threads.spinning())"
    expected = f"{value} {value if name == 'OMP_WAIT_POLICY' else None} False"
    assert run_python(code, **{name: value}) == expected


def stat(tid: int, name: str, state: str) -> str:
    return f"{tid} ({name}) {state} 1 {tid} {tid} 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0"


def test_free_cores_counts_other_processes_runnable_threads() -> None:
    own = [stat(1, "python", "R"), stat(2, "python", "S"), stat(3, "py (worker) R", "R")]
    # 5 runnable in the system, 2 of them ours: 3 others
    assert cpu_threads.free_cores("0.50 0.40 0.30 5/300 1234\n", own, cores=4) == 1
    assert cpu_threads.free_cores("0.50 0.40 0.30 5/300 1234\n", own, cores=2) == 0
    # only this (reading) thread runs: everything is free, even if its own stat says S
    asleep = [stat(1, "python", "S")]
    assert cpu_threads.free_cores("0.1 0.1 0.1 1/300 1234\n", asleep, cores=2) == 2
    assert cpu_threads.free_cores("garbage", own, cores=2) is None


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux's /proc")
def test_free_cores_sees_busy_processes() -> None:
    cores = len(os.sched_getaffinity(0))
    if cores > 8:
        pytest.skip("starts one busy process per core")
    loop = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass"
    busy = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(cores)]
    try:
        deadline = time.monotonic() + 10
        while cpu_threads.free_cores() != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu_threads.free_cores() == 0
    finally:
        for p in busy:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture
def spinning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_threads, "_spinning", True)
    monkeypatch.setattr(cpu_threads, "free_cores", lambda: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_fitted_threads_cuts_to_the_free_cores_and_restores(spinning: None) -> None:
    with cpu_threads.fitted_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_fitted_threads_restores_when_the_last_of_concurrent_calls_ends(spinning: None) -> None:
    inside = threading.Barrier(2)
    seen: list[int] = []

    def call() -> None:
        with cpu_threads.fitted_threads():
            inside.wait(timeout=10)
            seen.append(torch.get_num_threads())
            inside.wait(timeout=10)

    workers = [threading.Thread(target=call) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=20)
    assert seen == [1, 1]
    assert torch.get_num_threads() == 2


def test_fitted_threads_changes_nothing_where_workers_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu_threads, "_spinning", False)
    monkeypatch.setattr(cpu_threads, "free_cores", lambda: 0)
    before = torch.get_num_threads()
    with cpu_threads.fitted_threads():
        assert torch.get_num_threads() == before


def test_stylize_runs_on_the_fitted_threads(
    spinning: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stylebank_fast as sb

    stylizer = sb.Stylizer(sb.StyleBankNet(2).eval())
    seen: list[int] = []
    net = stylizer._net

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(net, name)

        def __call__(self, *args: object, **kwargs: object) -> object:
            seen.append(torch.get_num_threads())
            return net(*args, **kwargs)

    monkeypatch.setattr(stylizer, "_net", Spy())
    stylizer.stylize(torch.rand(3, 40, 56), style=0)
    assert seen == [1]
    assert torch.get_num_threads() == 2
