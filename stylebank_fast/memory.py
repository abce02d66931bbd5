"""How much memory this process can still take (the system's, within its cgroup's limit), and
handing freed memory back."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

__all__ = ["available_memory", "gigabytes", "release_free_memory"]


def available_memory() -> int | None:
    """Bytes of memory available to this process: the kernel's MemAvailable, capped by what its
    cgroup (a container's memory limit) has left; None where that cannot be read."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    free = None
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            free = int(line.split()[1]) * 1024
    left = _cgroup_left()
    if free is None or left is None:
        return free if left is None else left
    return min(free, left)


def _cgroup_left() -> int | None:
    """Bytes below this process's cgroup memory limit (v2 memory.max, v1
    memory.limit_in_bytes), or None: no limit, or none that can be read."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    root = Path("/sys/fs/cgroup")
    folders = []  # the cgroup's own folder, then the namespace's root (a container's view)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            folders += [(root / path.lstrip("/"), "memory.max", "memory.current")]
        elif "memory" in controllers.split(","):
            v1 = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            folders += [(root / "memory" / path.lstrip("/"), *v1), (root / "memory", *v1)]
    for folder, limit_file, usage_file in folders:
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # "no limit" in v2 and v1
            return None
        return max(0, int(limit) - usage)
    return None


def release_free_memory() -> None:
    """Hands the free pages of the C heap back to the system (glibc's malloc_trim; nothing
    elsewhere). After freeing large blocks glibc serves blocks of up to 32 MB from its heap and
    keeps them when freed: tile after tile, that grew a tiled run's memory by half."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def gigabytes(count: float) -> str:
    """A byte count as "1.25 GB"."""
    return f"{count / 1e9:.2f} GB"
