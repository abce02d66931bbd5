"""Video benchmark: temporal stability on synthetic camera motion, and frames per second.

Stability (per model, every style, averaged over the photos; grey levels 0-255, lower is
steadier). Clips are made from photos, so the true motion is known:

  pan      warping error on pans (1-3 px per frame, both axes): the mean absolute difference
           between frame t's output and frame t-1's output moved by the true motion, over the
           pixels both frames show.
  zoom     the same on a zoom (1.5% per frame about the centre; the previous output is
           resampled bilinearly, so a perfectly steady output scores a little above 0).
  flicker  a static shot with sensor-like noise (each frame the same photo plus independent
           Gaussian noise, sigma 2% of full scale): the mean absolute frame-to-frame difference.
  input    the same three measures on the input frames themselves, for scale.

Speed (--speed WxH, repeatable): frames/s of `stylize_video` on a synthetic clip (decode,
stylize in batches, encode, on two threads) against stylizing the same frames as images
in batches of the same size.

    python bench/video.py --photos photos/ --model a.sbk --model b.sbk --speed 640x360

Without --model the built-in model is measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from stylebank_fast import Stylizer
from stylebank_fast.imageio import open_image, to_tensor
from stylebank_fast.temporal import FeatureSmoother

FRAMES = 6
PANS = [(1, 0), (2, 1), (3, 3), (0, 2)]
ZOOM = 1.015
NOISE = 0.02


def pan_clip(photo: torch.Tensor, size: tuple[int, int], step: tuple[int, int]) -> torch.Tensor:
    """FRAMES crops [T,3,H,W] of `photo` [3,H',W'] moving by `step` (x, y) pixels a frame."""
    (h, w), (dx, dy) = size, step
    return torch.stack([photo[:, t * dy : t * dy + h, t * dx : t * dx + w] for t in range(FRAMES)])


def pan_error(frames: torch.Tensor, step: tuple[int, int]) -> float:
    """Warping error of [T,3,H,W] frames that pan by `step`: frame t at (i, j) shows what
    frame t-1 showed at (i + dy, j + dx)."""
    dx, dy = step
    h, w = frames.shape[-2:]
    now, before = frames[1:, :, : h - dy, : w - dx], frames[:-1, :, dy:, dx:]
    return float((now - before).abs().mean()) * 255


def _zoom_grid(size: tuple[int, int], scale: float) -> torch.Tensor:
    """Sampling grid [1,H,W,2] of a zoom by `scale` about the centre (align_corners=False)."""
    h, w = size
    ys = (torch.arange(h) + 0.5) / h * 2 - 1
    xs = (torch.arange(w) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    return (grid / scale)[None]


def zoom_clip(photo: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """FRAMES views [T,3,H,W] of the centre of `photo`, each ZOOM times closer."""
    h, w = size
    top, left = (photo.shape[1] - h) // 2, (photo.shape[2] - w) // 2
    centre = photo[None, :, top : top + h, left : left + w]
    grids = torch.cat([_zoom_grid(size, ZOOM**t) for t in range(FRAMES)])
    return F.grid_sample(centre.expand(FRAMES, -1, -1, -1), grids, align_corners=False)


def zoom_error(frames: torch.Tensor) -> float:
    """Warping error of a ZOOM clip: frame t-1 zoomed by ZOOM against frame t."""
    grid = _zoom_grid(frames.shape[-2:], ZOOM).expand(len(frames) - 1, -1, -1, -1)
    moved = F.grid_sample(frames[:-1], grid, align_corners=False)
    # every pixel is visible in both frames when zooming in; drop the resampled border
    return float((frames[1:] - moved)[..., 2:-2, 2:-2].abs().mean()) * 255


def static_clip(photo: torch.Tensor, size: tuple[int, int], seed: int) -> torch.Tensor:
    h, w = size
    g = torch.Generator().manual_seed(seed)
    still = photo[None, :, :h, :w]
    return (still + NOISE * torch.randn(FRAMES, 3, h, w, generator=g)).clamp(0, 1)


def flicker(frames: torch.Tensor) -> float:
    return float((frames[1:] - frames[:-1]).abs().mean()) * 255


def stability(run, photos: list[torch.Tensor], size: tuple[int, int]) -> dict[str, float]:
    """The three measures of `run` ([T,3,H,W] -> [T,3,H,W]) averaged over photos."""
    pans, zooms, flickers = [], [], []
    for i, photo in enumerate(photos):
        pans += [pan_error(run(pan_clip(photo, size, step)), step) for step in PANS]
        zooms.append(zoom_error(run(zoom_clip(photo, size))))
        flickers.append(flicker(run(static_clip(photo, size, i))))
    return {
        "pan": statistics.mean(pans),
        "zoom": statistics.mean(zooms),
        "flicker": statistics.mean(flickers),
    }


def load_photos(paths: list[str], size: tuple[int, int]) -> list[torch.Tensor]:
    """Photos [3,H',W'] scaled so that the largest pan still fits."""
    h, w = size
    need_w, need_h = w + max(dx for dx, _ in PANS) * FRAMES, h + max(dy for _, dy in PANS) * FRAMES
    files = []
    for given in map(Path, paths):
        files += (
            sorted(p for p in given.iterdir() if p.suffix.lower() in (".jpg", ".png"))
            if given.is_dir()
            else [given]
        )
    photos = []
    for file in files:
        image = open_image(file)
        scale = max(need_w / image.width, need_h / image.height)
        image = image.resize((round(image.width * scale) + 1, round(image.height * scale) + 1))
        photos.append(to_tensor(image)[0])
    return photos


def speed(
    stylizer: Stylizer, style: str, size: tuple[int, int], seconds: float
) -> tuple[float, float]:
    """frames/s of stylize_video on a synthetic clip, and of the same frames as image batches."""
    from stylebank_fast.video import stylize_video  # needs the [video] extra
    from stylebank_fast.video_io import write_frames

    h, w = size
    frames = max(8, round(seconds * 5))
    g = torch.Generator().manual_seed(0)
    still = (torch.rand(3, h // 8, w // 8, generator=g) * 255).byte()
    still = F.interpolate(still[None].float(), size=(h, w), mode="bilinear")[0].byte()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        rgb = still.permute(1, 2, 0).numpy()
        write_frames(clip, (rgb.copy() for _ in range(frames)))
        start = time.perf_counter()
        stylize_video(stylizer, clip, Path(folder) / "out.mp4", style=style, progress=False)
        video_fps = frames / (time.perf_counter() - start)
    batch = torch.rand(4, 3, h, w)
    start = time.perf_counter()
    for _ in range(0, frames, 4):
        stylizer.stylize(batch, style=style)
    image_fps = frames / (time.perf_counter() - start)
    return video_fps, image_fps


def _runner(stylizer: Stylizer, style: str, smoothing: float):
    """[T,3,H,W] -> [T,3,H,W]: the clip stylized as video stylizes it."""

    def run(clip: torch.Tensor) -> torch.Tensor:
        features = FeatureSmoother(smoothing)(stylizer.encode(clip))
        mix = stylizer.style_weights(style)[None]
        return stylizer.stylize_batch(clip, mix, features=features)

    return run


def _print_row(label: str, row: dict[str, float]) -> None:
    print(
        f"{label:48s} pan {row['pan']:6.2f}  zoom {row['zoom']:6.2f}  flicker {row['flicker']:6.2f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--photos", nargs="+", default=["examples/photos"], help="photos or folders"
    )
    parser.add_argument(
        "--model", action="append", help="model file (repeatable; default built-in)"
    )
    parser.add_argument("--size", default="320x192", metavar="WxH", help="clip size for stability")
    parser.add_argument(
        "--speed", action="append", default=[], metavar="WxH", help="frames/s at this size"
    )
    parser.add_argument("--styles", help="comma-separated styles (default: all)")
    parser.add_argument(
        "--smoothing",
        type=float,
        nargs="+",
        default=[0.0, 0.8],
        help="temporal smoothing amounts to measure (0: each frame on its own)",
    )
    args = parser.parse_args()
    w, h = map(int, args.size.lower().split("x"))
    photos = load_photos(args.photos, (h, w))
    print(f"{len(photos)} photos, {FRAMES}-frame clips at {w}x{h}; grey levels, lower is steadier")
    _print_row("input", stability(lambda clip: clip, photos, (h, w)))
    for model in args.model or [None]:
        stylizer = Stylizer(model, device="cpu")
        styles = args.styles.split(",") if args.styles else stylizer.list_styles()
        for smoothing in args.smoothing:
            label = f"{Path(model).name if model else 'built-in'} smoothing {smoothing:g}"
            rows = []
            for style in styles:
                run = _runner(stylizer, style, smoothing)
                rows.append(stability(run, photos, (h, w)))
                _print_row(f"{label} {style}", rows[-1])
            _print_row(f"{label} mean", {k: statistics.mean(r[k] for r in rows) for k in rows[0]})
        for size in args.speed:
            sw, sh = map(int, size.lower().split("x"))
            video_fps, image_fps = speed(stylizer, styles[0], (sh, sw), 4.0)
            print(
                f"{model or 'built-in'} {sw}x{sh}: video {video_fps:.2f} frames/s, images "
                f"{image_fps:.2f} frames/s ({video_fps / image_fps:.2f}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
