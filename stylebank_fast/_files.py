"""Every file the package writes goes through `atomic_write` (models, styles, images)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable


def temp_file_beside(path: Path) -> tuple[int, str]:
    """An open, new temp file in `path`'s folder (so the final rename stays on one filesystem).

    Created with mode 0o666 minus the umask, as `open(path, "w")` would: tempfile.mkstemp's
    files are owner-only, which would make every output private.
    """
    folder = path.parent if str(path.parent) else Path(".")
    while True:
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue


def check_writable(path: Path) -> None:
    """Raises OSError unless a new file can be made in `path`'s folder (tried with a temp
    file, removed at once): checked before long work that ends by writing `path`."""
    fd, tmp = temp_file_beside(path)
    os.close(fd)
    os.unlink(tmp)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """`write` into a temp file in `path`'s folder, fsync, rename it over `path`, fsync the
    folder: a crash or kill at any moment leaves the old file or the new one, never half a
    file. OSError propagates (callers word it for their users)."""
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
