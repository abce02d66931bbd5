"""stylebank_fast: fast StyleBank neural style transfer on a fused multi-bank convolution."""

import torch  # noqa: F401  (must be imported before the extension)

from .ops import backend_info, bank_conv2d, extension_available, reference_bank_conv2d

__version__ = "0.1.0"

__all__ = [
    "backend_info",
    "bank_conv2d",
    "extension_available",
    "reference_bank_conv2d",
]
