"""stylebank_fast: fast StyleBank neural style transfer on a fused multi-bank convolution."""

from importlib import import_module
from typing import TYPE_CHECKING

from . import cpu_threads

cpu_threads.prefer_passive_wait()  # before torch loads OpenMP (see cpu_threads)

import torch  # noqa: F401  (must be imported before the extension)

from ._version import __version__
from .checkpoint import export_style, import_style, load_model, save_model
from .errors import CheckpointError, DataError, StyleBankError, WeightsError
from .model import StyleBankNet
from .ops import backend_info, bank_conv2d, extension_available, reference_bank_conv2d
from .stylizer import Stylizer

if TYPE_CHECKING:
    from .onnx_export import export_onnx
    from .training import TrainConfig, TrainResult, add_styles, resume_training, train_model

# Loaded on first use: stylizing never needs the training stack or torch.onnx (start-up time).
_LAZY = {
    "export_onnx": ".onnx_export",
    **dict.fromkeys(
        ("TrainConfig", "TrainResult", "add_styles", "resume_training", "train_model"), ".training"
    ),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "CheckpointError",
    "DataError",
    "StyleBankError",
    "StyleBankNet",
    "Stylizer",
    "TrainConfig",
    "TrainResult",
    "WeightsError",
    "add_styles",
    "backend_info",
    "bank_conv2d",
    "export_onnx",
    "export_style",
    "extension_available",
    "import_style",
    "load_model",
    "reference_bank_conv2d",
    "resume_training",
    "save_model",
    "train_model",
]
