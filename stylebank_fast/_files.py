"""The temporary file behind every atomic write (models, styles, images)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
