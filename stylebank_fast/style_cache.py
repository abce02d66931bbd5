"""Where learnt styles are kept: one small bank file per (painting, auto-encoder, settings).

The folder is $STYLEBANK_FAST_CACHE, else $XDG_CACHE_HOME/stylebank_fast, else
~/.cache/stylebank_fast. Files are written atomically (`checkpoint.export_style`) and carry a
checksum; an entry that does not load is learnt again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .style_learning import LearnSettings

__all__ = ["CACHE_ENV", "cache_dir", "cache_entry", "painting_digest"]

CACHE_ENV = "STYLEBANK_FAST_CACHE"
_LEARNER_VERSION = 2  # bump when the learner changes what it learns from the same settings


def cache_dir() -> Path:
    """The folder of learnt styles (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylebank_fast"


def painting_digest(data: bytes) -> str:
    """SHA-256 of the painting: its file's bytes (the same file found anywhere is one entry)."""
    return hashlib.sha256(data).hexdigest()


def cache_entry(
    painting: str,
    autoencoder: str,
    settings: LearnSettings,
    photos: Sequence[Path] | None = None,
) -> Path:
    """The cache file for a painting digest, an auto-encoder fingerprint, the settings and
    the training photos (None: the package's)."""
    where = None if photos is None else sorted(str(Path(p).resolve()) for p in photos)
    recipe = json.dumps([_LEARNER_VERSION, asdict(settings), where], sort_keys=True, default=str)
    settings_digest = hashlib.sha256(recipe.encode()).hexdigest()
    name = f"{painting[:24]}-{autoencoder[:16]}-{settings_digest[:8]}.style"
    return cache_dir() / name
