"""Smoke test of examples/make_gallery.py on the tiny random model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "examples/make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_gallery(tiny_model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "gallery.png"
    args = ["--model", str(tiny_model_path), "--out", str(out), "--size", "48", "--device", "cpu"]
    assert load_script().main(args) == 0
    gallery = Image.open(out)
    photos = sorted((ROOT / "examples/photos").glob("*.jpg"))
    assert len(photos) == 3
    # columns: the photo and the three styles; rows: three photos, fusion, regions
    assert gallery.width >= 6 * (48 + 6)  # the fusion row: photo + 5 blends
    assert gallery.height >= 5 * 48
