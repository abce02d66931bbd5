"""Any painting as a style: a bank learnt for it on a model, kept in the cache for next time."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
from PIL import Image

from .checkpoint import autoencoder_fingerprint, export_style, import_style
from .errors import CheckpointError, DataError, StyleBankError
from .imageio import open_image, to_tensor
from .losses import LossNetwork, build_loss_network
from .model import StyleBankNet
from .progress import Progress, ProgressFn
from .style_cache import cache_entry, painting_digest
from .style_learning import LearnSettings, learn_bank

__all__ = ["LearntStyle", "PaintingInput", "add_painting_style"]

PaintingInput = Union[str, "os.PathLike[str]", Image.Image]


@dataclass
class LearntStyle:
    """What `add_painting_style` did for one painting."""

    name: str
    index: int
    cache_file: Path | None  # None: not cached (learning was interrupted)
    from_cache: bool
    steps: int = 0  # learning steps run (0 from the cache)
    seconds: float = 0.0
    interrupted: bool = False


def _read_painting(painting: PaintingInput) -> tuple[torch.Tensor, str, str | None]:
    """The painting [3,H,W], its digest, and its file's stem (None for an image object)."""
    if isinstance(painting, Image.Image):
        image = painting.convert("RGB")
        digest = painting_digest(f"{image.size}".encode() + image.tobytes())
        return to_tensor(image)[0], digest, None
    path = Path(painting)
    if not path.is_file():
        raise DataError(f"painting not found: {path}")
    data = path.read_bytes()
    return to_tensor(open_image(path))[0], painting_digest(data), path.stem


def add_painting_style(
    model: StyleBankNet,
    painting: PaintingInput,
    name: str | None = None,
    settings: LearnSettings | None = None,
    progress: bool | ProgressFn = True,
    loss_net: LossNetwork | None = None,
    photos: Sequence[Path] | None = None,
) -> LearntStyle:
    """Add a style learnt from `painting` (a path or a PIL image) to `model` as a new bank.

    The bank comes from the cache when this painting (same content) was learnt on a model
    with the same encoder and decoder and the same settings; else it is learnt (a few minutes
    on a CPU, `style_learning.learn_bank`) and cached. The other styles do not change.
    `name` defaults to the file's stem. `loss_net`: VGG-16 (the weights found as training
    finds them, else the ones shipped with the package) unless given. `photos`: the
    training photos (default: the package's; photos of your own make another cache entry).
    """
    settings = settings or LearnSettings()
    image, digest, stem = _read_painting(painting)
    name = name or stem or f"painting_{digest[:8]}"
    if name in model.style_names:
        raise StyleBankError(
            f"the model already has a style named {name!r}; give the painting another name "
            "(--style-name on the command line, name= in Python)"
        )
    entry = cache_entry(digest, autoencoder_fingerprint(model), settings, photos)
    if entry.is_file():
        try:
            index = import_style(model, entry, name)
            return LearntStyle(name, index, entry, from_cache=True)
        except CheckpointError as error:  # corrupt or foreign: learn it again
            warnings.warn(
                f"relearning {name!r}: its cache entry is unusable ({error})", stacklevel=2
            )
    device = next(model.parameters()).device
    if loss_net is None:
        loss_net = build_loss_network("vgg16", None, device)
    on_progress = Progress() if progress is True else (progress or None)
    learnt = learn_bank(model, image, loss_net, settings, photos, on_progress)
    (index,) = model.add_styles([name])
    with torch.no_grad():
        model.bank.weights[index].copy_(learnt.weight)
        model.bank.biases[index].copy_(learnt.bias)
    cached = None
    if not learnt.interrupted:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            export_style(model, index, entry)
            cached = entry
        except OSError as error:  # a read-only cache costs the next call time, not this one
            warnings.warn(
                f"could not cache style {name!r} in {entry.parent}: {error}", stacklevel=2
            )
    return LearntStyle(name, index, cached, False, learnt.steps, learnt.seconds, learnt.interrupted)
