"""stylebank_fast: fast StyleBank neural style transfer on a fused multi-bank convolution."""

from . import cpu_threads

cpu_threads.prefer_passive_wait()  # before torch loads OpenMP (see cpu_threads)

import torch  # noqa: F401  (must be imported before the extension)

from ._version import __version__
from .checkpoint import export_style, import_style, load_model, save_model
from .errors import CheckpointError, DataError, StyleBankError, WeightsError
from .model import StyleBankNet
from .onnx_export import export_onnx
from .ops import backend_info, bank_conv2d, extension_available, reference_bank_conv2d
from .stylizer import Stylizer
from .training import TrainConfig, TrainResult, add_styles, resume_training, train_model

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
