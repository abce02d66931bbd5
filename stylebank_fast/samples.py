"""Samples of a model in training: one photo in every style, written at each checkpoint, so a
run can be looked at while it goes (the losses alone do not show blobs or lost structure)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .imageio import open_image, save_image, to_pil, to_tensor
from .model import StyleBankNet

__all__ = ["SampleWriter", "sample_strip"]

CAPTION = 14  # pixels of caption above each tile


def sample_strip(model: StyleBankNet, photo: Image.Image) -> Image.Image:
    """`photo`, then `photo` in each of `model`'s styles, side by side, captioned."""
    device = next(model.parameters()).device
    x = to_tensor(photo).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            tiles = [photo] + [to_pil(model(x, i)[0].clamp(0, 1)) for i in range(model.n_styles)]
    finally:
        model.train(was_training)
    w, h = photo.size
    strip = Image.new("RGB", (w * len(tiles), h + CAPTION), "white")
    draw = ImageDraw.Draw(strip)
    for i, (tile, name) in enumerate(zip(tiles, ["photo", *model.style_names])):
        strip.paste(tile, (i * w, CAPTION))
        draw.text((i * w + 2, 1), name, fill="black")
    return strip


class SampleWriter:
    """Writes `sample_strip` of one photo (its longer side scaled to `size`) into `folder` as
    step_NNNNNN.jpg at every call (use as `train_model(..., on_checkpoint=writer)`)."""

    def __init__(self, photo: str | Path, folder: str | Path, size: int = 320) -> None:
        self.photo = open_image(photo, size)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def __call__(self, model: StyleBankNet, step: int) -> None:
        path = self.folder / f"step_{step:06d}.jpg"
        save_image(sample_strip(model, self.photo), path)
        self.written.append(path)
