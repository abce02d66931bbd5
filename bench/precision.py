"""bfloat16 against float32: how far the fast network's bfloat16 output is from its float32 one.

Stylizes each photo with every style of a model twice, `Stylizer(bfloat16=False)` and
`Stylizer(bfloat16=True)`, and prints per style the PSNR of the bfloat16 image against the
float32 one (8-bit images, as saved; min and median over the photos) and the largest pixel
difference (of 255). 40 dB and above is a difference no one sees side by side.

    python bench/precision.py --photos photos/              # the built-in model
    python bench/precision.py --photos photos/ --model my.sbk --size 1024
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from quality import load  # this folder's quality report: its photos at a long side

from stylebank_fast import Stylizer
from stylebank_fast.data import find_images
from stylebank_fast.errors import DataError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf where they are equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", required=True, help="folder of photos")
    parser.add_argument("--model", help="model file (default: the built-in model)")
    parser.add_argument("--size", type=int, default=768, help="long side of the photos")
    args = parser.parse_args()

    try:
        paths = find_images(args.photos, what="photo folder")
    except DataError as error:
        print(error, file=sys.stderr)
        return 2
    if not paths:
        print(f"no photos in {args.photos}", file=sys.stderr)
        return 2
    photos = [load(path, args.size) for path in paths]
    exact, fast = Stylizer(args.model, bfloat16=False), Stylizer(args.model, bfloat16=True)

    print(f"# bfloat16 against float32 on {len(photos)} photos of {args.photos}, {args.size} px")
    print("| style | PSNR min dB | PSNR median dB | max difference (of 255) |")
    print("|---|---|---|---|")
    for style in exact.list_styles():
        scores, worst = [], 0
        for photo in photos:
            a = np.asarray(exact.stylize(photo, style))
            b = np.asarray(fast.stylize(photo, style))
            scores.append(psnr(a, b))
            worst = max(worst, int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
        print(f"| {style} | {min(scores):.1f} | {statistics.median(scores):.1f} | {worst} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
