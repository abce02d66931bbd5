"""Peak memory and time of stylizing one large image, each case in a fresh process.

Stylizes a synthetic photo (PIL image in, PIL image out) with the built-in model and one style,
after a warm-up call on a small image, and reports the process's resident memory: after
loading (the runtime), with the input image made, and at its peak (ru_maxrss), with the time
of the call and the number of tiles (0: stylized whole).

    python bench/stylize_memory.py --size 4000x3000 --size 6000x6000
    python bench/stylize_memory.py --size 1920x1080 --budget 0.6 --budget inf
    python bench/stylize_memory.py --size 4000x3000 --regions   # two label-map regions, feathered

Prints a markdown table. `--budget inf` stylizes whole (the code before tiling).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child(width: int, height: int, budget: float, regions: bool) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import stylebank_fast as sb
    from stylebank_fast.tiling import network

    tiles = []
    original = network.TiledNetwork.stylize

    def counted(self, *args, **kwargs):
        tiles.append(len(self.tiles))
        return original(self, *args, **kwargs)

    network.TiledNetwork.stylize = counted
    stylizer = sb.Stylizer(device="cpu", memory_budget=budget)
    style = {"style": "starry_night"}
    stylizer.stylize(Image.new("RGB", (256, 256), (90, 120, 200)), **style)  # warm-up
    runtime = _rss()
    pixels = np.empty((height, width, 3), np.uint8)  # made band by band: no float image
    x = np.linspace(0, 3, width, dtype=np.float32)[:, None] + np.arange(3, dtype=np.float32)
    for start in range(0, height, 256):
        y = np.linspace(0, 7, height, dtype=np.float32)[start : start + 256, None, None]
        pixels[start : start + 256] = np.sin(y + x) * 127 + 128
    photo = Image.fromarray(pixels)
    del pixels
    if regions:
        labels = np.zeros((height, width), np.uint8)
        labels[:, width // 2 :] = 1
        style = {"regions": labels, "region_styles": ["starry_night", "udnie"], "feather": 32}
    with_input = _rss()
    torch.set_num_threads(torch.get_num_threads())
    start = time.perf_counter()
    out = stylizer.stylize(photo, **style)
    seconds = time.perf_counter() - start
    assert out.size == (width, height)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {"runtime": runtime, "with_input": with_input, "peak": peak, "seconds": seconds}
            | {"tiles": tiles[-1] if tiles else 0}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", help="WxH (repeatable)")
    parser.add_argument("--budget", action="append", type=float, help="GB (repeatable)")
    parser.add_argument("--regions", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        width, height, budget = args.child
        child(int(width), int(height), float(budget), args.regions)
        return
    print("| size | budget GB | tiles | runtime GB | with input GB | peak GB | seconds |")
    print("|---|---|---|---|---|---|---|")
    for size in args.size or ["4000x3000"]:
        width, height = size.split("x")
        for budget in args.budget or [1.5]:
            command = [sys.executable, __file__, "--child", width, height, str(budget)]
            command += ["--regions"] if args.regions else []
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                print(f"| {size} | {budget:g} | failed: {done.stderr.strip()[-200:]} |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            gb = {k: r[k] / 1e9 for k in ("runtime", "with_input", "peak")}
            print(
                f"| {size} | {budget:g} | {r['tiles']} | {gb['runtime']:.2f} | "
                f"{gb['with_input']:.2f} | {gb['peak']:.2f} | {r['seconds']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
