"""Model and style files: one `torch.save` file each, read only with `weights_only=True`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor

from ._files import atomic_write
from .errors import CheckpointError
from .model import FEATURES, StyleBankNet

__all__ = [
    "save_model",
    "load_model",
    "load_checkpoint",
    "export_style",
    "import_style",
    "atomic_save",
]

PathLike = Union[str, "os.PathLike[str]"]

MODEL_FORMAT = "stylebank_fast.model"
STYLE_FORMAT = "stylebank_fast.style"
VERSION = 1


def atomic_save(obj: Any, path: PathLike) -> None:
    """`torch.save` to `path` atomically (`_files.atomic_write`): a crash or kill at any moment
    leaves either the old file or the new one, never half a file."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise CheckpointError(f"cannot write {path}: folder {folder} does not exist")
    atomic_write(path, lambda f: torch.save(obj, f))


def tensor_checksum(state: dict) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _checksum_of(data: dict) -> str | None:
    """The checksum of the tensors a model file (its state dict) or style file (its bank) holds."""
    state = data.get("state_dict", {k: data[k] for k in ("weight", "bias") if k in data})
    if not isinstance(state, dict) or not all(isinstance(t, Tensor) for t in state.values()):
        return None
    return tensor_checksum(state)


def _read(path: PathLike, expected_format: str, what: str) -> dict:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give the {what} file itself")
    if not path.is_file():
        raise CheckpointError(f"{what} file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and "unsafe global" errors all mean: not ours
        # torch's own text advises weights_only=False, which would let a file run code
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "weights_only" in str(error):
            reason = "it holds objects other than tensors and plain values"
        raise CheckpointError(
            f"{path} is not a readable {what} file (corrupt, truncated, or not made by "
            f"stylebank_fast): {reason or type(error).__name__}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path} is not a stylebank_fast {what} file (expected format {expected_format!r}, "
            f"found {found!r})"
        )
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has {what} format version {data.get('version')!r}; this stylebank_fast "
            f"reads version {VERSION}. Use the stylebank_fast release that wrote it."
        )
    expected = data.get("checksum")  # files written before checksums have none
    if expected is not None and _checksum_of(data) != expected:
        raise CheckpointError(
            f"{path} is damaged: its tensors do not match the checksum stored with them "
            "(the file was changed after it was written); use another copy"
        )
    return data


def _tensors(state: dict) -> dict:
    return {name: t.detach().cpu() for name, t in state.items()}


def save_model(model: StyleBankNet, path: PathLike, training: dict | None = None) -> None:
    """Write `model` (config, style names, weights) to `path`, atomically.

    `training` (optional) is resumable training state (step, optimiser, settings).
    """
    data = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        "config": model.config(),
        "style_names": list(model.style_names),
        "state_dict": _tensors(model.state_dict()),
    }
    data["checksum"] = tensor_checksum(data["state_dict"])
    if training is not None:
        data["training"] = training
    atomic_save(data, path)


def load_checkpoint(path: PathLike) -> tuple[StyleBankNet, dict]:
    """Load a model file; returns the model (on the CPU) and its raw data (incl. "training")."""
    data = _read(path, MODEL_FORMAT, "model")
    try:
        config = data["config"]
        model = StyleBankNet(
            config["n_styles"], config["kernel_size"], style_names=data["style_names"]
        )
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: the model file is damaged or inconsistent: {error}"
        ) from None
    return model, data


def load_model(path: PathLike) -> StyleBankNet:
    """Load a `StyleBankNet` saved by `save_model` (on the CPU; `.style_names` set)."""
    return load_checkpoint(path)[0]


def autoencoder_fingerprint(model: StyleBankNet) -> str:
    """A hash of E and D: a bank only makes sense with the auto-encoder it was trained with."""
    digest = hashlib.sha256()
    for part in (model.encoder, model.decoder):
        for name, tensor in part.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_style(model: StyleBankNet, style: int | str, path: PathLike) -> None:
    """Write one style's bank to a small file that `import_style` adds to a model with the same E, D."""
    index = model.style_index(style)
    data = {
        "format": STYLE_FORMAT,
        "version": VERSION,
        "name": model.style_names[index],
        "kernel_size": model.kernel_size,
        "autoencoder": autoencoder_fingerprint(model),
        "weight": model.bank.weights[index].detach().cpu(),
        "bias": model.bank.biases[index].detach().cpu(),
    }
    data["checksum"] = _checksum_of(data)
    atomic_save(data, path)


def import_style(model: StyleBankNet, path: PathLike, name: str | None = None) -> int:
    """Add the style in `path` (from `export_style`) to `model`; returns its index.

    The model must have the auto-encoder the style was trained with. `name` renames it
    (needed when the model already has a style of that name).
    """
    data = _read(path, STYLE_FORMAT, "style")
    weight, bias = data.get("weight"), data.get("bias")
    if not isinstance(weight, Tensor) or not isinstance(bias, Tensor):
        raise CheckpointError(f"{path}: the style file has no bank tensors")
    if data.get("kernel_size") != model.kernel_size:
        raise CheckpointError(
            f"{path}: the style has kernel size {data.get('kernel_size')}, the model "
            f"{model.kernel_size}"
        )
    if data.get("autoencoder") != autoencoder_fingerprint(model):
        raise CheckpointError(
            f"{path}: style {data.get('name')!r} was trained with a different encoder/decoder; "
            "it only works in a model made from the same base model"
        )
    shape = (FEATURES, FEATURES, model.kernel_size, model.kernel_size)
    if tuple(weight.shape) != shape or tuple(bias.shape) != (FEATURES,):
        raise CheckpointError(
            f"{path}: bank shapes {list(weight.shape)}, {list(bias.shape)} do not fit the model"
        )
    new_name = name if name is not None else str(data.get("name"))
    if new_name in model.style_names:
        raise CheckpointError(
            f"{path}: the model already has a style named {new_name!r}; pass another name"
        )
    (index,) = model.add_styles([new_name])
    with torch.no_grad():
        model.bank.weights[index].copy_(weight)
        model.bank.biases[index].copy_(bias)
    return index
