"""Makes docs/video_frames.jpg: frames of a short clip stylized through the video pipeline.

    python examples/make_video_sheet.py      # needs the [video] extra

The clip is made from examples/photos/venice_boat.jpg (a slow pan and zoom, 2% sensor noise,
2 s at 12 frames/s), written as .mp4, stylized by `stylize_video` with keyframes
(starry_night at 0 s to the_scream at 2 s) and read back. Rows: the input frames, per-frame
stylization (--temporal-smoothing 0) and the default smoothing; every fourth frame is shown.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from stylebank_fast import Stylizer
from stylebank_fast.imageio import open_image, save_image
from stylebank_fast.video import stylize_video
from stylebank_fast.video_io import VideoReader, write_frames

HERE = Path(__file__).parent
FPS, SECONDS, SIZE = 12, 2, (320, 192)
STYLE = f"0s:starry_night,{SECONDS}s:the_scream"


def make_clip(path: Path) -> None:
    photo = open_image(HERE / "photos" / "venice_boat.jpg")
    rng = np.random.default_rng(0)
    frames = []
    for i in range(FPS * SECONDS):
        zoom = 1.0 + 0.004 * i
        w, h = round(photo.width / 1.6 / zoom), round(photo.height / 1.6 / zoom)
        left, top = round(40 + 3 * i), (photo.height - h) // 2
        view = photo.crop((left, top, left + w, top + h)).resize(SIZE, Image.Resampling.LANCZOS)
        noisy = np.asarray(view, dtype=float) + rng.normal(0, 5, (SIZE[1], SIZE[0], 3))
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    write_frames(path, frames, fps=FPS)


def read_frames(path: Path) -> list[np.ndarray]:
    reader = VideoReader(path)
    try:
        return [item[0] for item in reader.items() if isinstance(item, tuple)]
    finally:
        reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "video_frames.jpg"))
    args = parser.parse_args()
    stylizer = Stylizer()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip)
        rows = [read_frames(clip)]
        for smoothing in (0.0, 0.8):
            out = Path(folder) / f"out_{smoothing}.mp4"
            stylize_video(stylizer, clip, out, style=STYLE, smoothing=smoothing, progress=False)
            rows.append(read_frames(out))
    picked = [row[::4] for row in rows]
    sheet = np.concatenate([np.concatenate(row, axis=1) for row in picked], axis=0)
    save_image(Image.fromarray(sheet), Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
