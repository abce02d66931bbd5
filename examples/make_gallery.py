"""Makes the gallery PNG: example photos x styles, a linear-fusion row and region fusion.

    python examples/make_gallery.py --blend starry_night,the_scream   # docs/gallery.png
    python examples/make_gallery.py --model model.sbk --styles 0,2 --blend 0,2 --out g.png
    python examples/make_gallery.py --style-image night_cafe.png --style-image langlois_bridge.png \
        --styles starry_night,night_cafe,langlois_bridge --out docs/painting_styles.png

Without --model it uses the built-in model. Rows: each photo in examples/photos/ and its
stylizations; then one photo blended from one style to another (linear fusion); then one photo
with its left and right halves in two styles, and two regions found automatically (auto:2).
--style-image learns a style from a painting (Stylizer.learn_style; cached) and adds a first
row with the paintings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stylebank_fast import Stylizer
from stylebank_fast.imageio import open_image, save_image

HERE = Path(__file__).parent
LABEL_H = 22  # pixels of caption above each tile
GAP = 6


def load_photos(folder: Path, size: int) -> list[Image.Image]:
    """The folder's photos (sorted by name), scaled to `size` pixels on the long side."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise SystemExit(f"no photos (.jpg, .png) in {folder}")
    photos = []
    for path in paths:
        photo = open_image(path)
        photo.thumbnail((size, size), Image.LANCZOS)
        photos.append(photo)
    return photos


def gallery_rows(
    stylizer: Stylizer, photos: Sequence[Image.Image], styles: Sequence[str], blend: Sequence[str]
) -> list[list[tuple[str, Image.Image]]]:
    """Rows of (caption, image) tiles."""
    rows = [
        [("photo", photo)] + [(style, stylizer.stylize(photo, style=style)) for style in styles]
        for photo in photos
    ]
    a, b = blend
    fusion = [("photo", photos[0])]
    for weight in (1.0, 0.75, 0.5, 0.25, 0.0):
        caption = (
            a if weight == 1 else b if weight == 0 else f"{weight:.0%} {a} + {1 - weight:.0%} {b}"
        )
        fusion.append((caption, stylizer.stylize(photos[0], style={a: weight, b: 1 - weight})))
    rows.append(fusion)
    photo = photos[1 % len(photos)]
    halves = np.broadcast_to(np.arange(photo.width) * 2 // photo.width, photo.size[::-1])
    rows.append(
        [
            ("photo", photo),
            (f"left {a} | right {b}", stylizer.stylize(photo, regions=halves, region_styles=blend)),
            (
                f"auto:2 regions {a}, {b}",
                stylizer.stylize(photo, regions="auto:2", region_styles=blend, feather=4),
            ),
        ]
    )
    return rows


def compose(rows: Sequence[Sequence[tuple[str, Image.Image]]], tile: int) -> Image.Image:
    """Lays the tiles out on a white canvas, each centred in a tile x tile cell under its caption."""
    font = ImageFont.load_default(size=13)
    cell_h = max(image.height for row in rows for _, image in row)
    columns = max(len(row) for row in rows)
    width = GAP + columns * (tile + GAP)
    height = GAP + len(rows) * (LABEL_H + cell_h + GAP)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        y = GAP + r * (LABEL_H + cell_h + GAP)
        for c, (caption, image) in enumerate(row):
            x = GAP + c * (tile + GAP)
            while draw.textlength(caption, font=font) > tile and len(caption) > 4:
                caption = caption[:-4] + "..."
            draw.text(
                (x + tile // 2, y + LABEL_H // 2), caption, fill="black", font=font, anchor="mm"
            )
            canvas.paste(
                image, (x + (tile - image.width) // 2, y + LABEL_H + (cell_h - image.height) // 2)
            )
    return canvas


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file (default: the built-in model)")
    parser.add_argument("--photos", type=Path, default=HERE / "photos", help="folder of photos")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "gallery.png")
    parser.add_argument("--size", type=int, default=256, help="tile size (long side), pixels")
    parser.add_argument("--styles", help="comma-separated style names (default: all)")
    parser.add_argument(
        "--blend", help="two comma-separated styles to fuse (default: the first two)"
    )
    parser.add_argument(
        "--style-image", action="append", default=[], help="learn a style from this painting"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    stylizer = Stylizer(args.model, device=args.device)
    paintings = {stylizer.learn_style(path): open_image(path) for path in args.style_image}
    styles = args.styles.split(",") if args.styles else stylizer.list_styles()
    blend = args.blend.split(",") if args.blend else (styles * 2)[:2]
    if len(blend) != 2:
        raise SystemExit(f"--blend needs two styles, got {blend}")
    photos = load_photos(args.photos, args.size)
    rows = gallery_rows(stylizer, photos, styles, blend)
    if paintings:
        blank = Image.new("RGB", (1, 1), "white")
        for painting in paintings.values():
            painting.thumbnail((args.size, args.size), Image.LANCZOS)
        first = [
            (f"painting: {s}", paintings[s]) if s in paintings else ("", blank) for s in styles
        ]
        rows.insert(0, [("", blank), *first])
    canvas = compose(rows, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(canvas, args.out)
    print(f"wrote {args.out} ({canvas.width}x{canvas.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
