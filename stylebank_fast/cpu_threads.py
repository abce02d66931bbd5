"""CPU worker threads that keep their speed on a busy machine.

PyTorch's CPU kernels run on OpenMP (GNU libgomp in the pip wheels), whose workers by default
spin for a while at the end of every parallel region before they sleep. When other processes
want the cores, a spinning worker burns its time slice waiting for a peer that the scheduler
has put aside, and each of a stylization's hundreds of parallel regions can then cost a time
slice: many times the quiet time (docs/stylize.md, "On a busy machine"). Workers that sleep
at once (OMP_WAIT_POLICY=PASSIVE) cost next to nothing on a quiet machine.

libgomp reads its wait policy once, when torch loads it, so the package sets it before it
imports torch (`prefer_passive_wait`), unless the user chose a policy (OMP_WAIT_POLICY or
GOMP_SPINCOUNT set: theirs is kept). Where torch was imported first, the workers spin, and
`fitted_threads` runs a call on no more threads than there are cores free right now.

This module imports nothing heavy at the top: it runs before torch is imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["prefer_passive_wait", "spinning", "free_cores", "fitted_threads"]

_USER_POLICY = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_spinning = False  # set by prefer_passive_wait: this process's workers spin


def prefer_passive_wait() -> None:
    """Make OpenMP workers sleep at once (unless the user chose a wait policy); where torch is
    already imported it is too late for that, and `fitted_threads` takes over."""
    global _spinning
    if any(name in os.environ for name in _USER_POLICY):
        return  # the user's choice, spinning or not
    if "torch" in sys.modules:
        _spinning = True
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # inherited by child processes too


def spinning() -> bool:
    """Whether this process's OpenMP workers spin by default (torch came before the package,
    and no wait policy was chosen)."""
    return _spinning


def _running_threads(stat_lines: list[str]) -> int:
    """Threads in state R among /proc/<pid>/task/<tid>/stat contents."""
    # the state follows the command name, which is in parentheses and may contain spaces
    return sum(line.rpartition(")")[2].split()[:1] == ["R"] for line in stat_lines)


def free_cores(
    loadavg: str | None = None, own_stats: list[str] | None = None, cores: int | None = None
) -> int | None:
    """Cores that other processes leave free right now: this process's cores less the threads
    of other processes that are running or waiting to run (Linux's /proc/loadavg, less this
    process's own running threads). None where that is unknown (no /proc). The arguments
    replace what is read (for tests)."""
    try:
        if loadavg is None:
            with open("/proc/loadavg") as f:
                loadavg = f.read()
        if own_stats is None:
            own_stats = []
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        own_stats.append(f.read())
        runnable = int(loadavg.split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    others = max(0, runnable - max(1, _running_threads(own_stats)))  # at least this thread runs
    return max(0, (cores or 1) - others)


_lock = threading.Lock()
_users = 0  # calls inside fitted_threads now
_restore = 0  # the thread count to go back to when the last of them ends


@contextlib.contextmanager
def fitted_threads() -> Iterator[None]:
    """Within: where the workers spin (`spinning`), PyTorch's CPU thread count is cut to the
    cores free (at least 1) for the duration; elsewhere nothing changes. Calls from several
    threads share one cut, and the count is restored when the last one ends."""
    global _users, _restore
    if not _spinning:
        yield
        return
    import torch

    with _lock:
        if _users == 0:
            _restore = torch.get_num_threads()
            free = free_cores()
            if free is not None and free < _restore:
                torch.set_num_threads(max(1, free))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and torch.get_num_threads() != _restore:
                torch.set_num_threads(_restore)
