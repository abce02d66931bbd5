"""The video side of `python -m stylebank_fast.stylize`: clips in, clips out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import StyleBankError
from ..progress import Progress
from ..style_schedule import StyleSchedule
from ..styles import Style
from ..stylizer import Stylizer
from ..video_io import VIDEO_FORMATS, require_av

__all__ = ["stylize_videos", "video_targets"]


def _targets(sources: list[Path], out: Path) -> list[Path]:
    """OUT is the output clip for one input clip when it has a video extension; otherwise a
    folder (made when missing) that gets each clip under its own name."""
    if out.suffix.lower() in VIDEO_FORMATS and not out.is_dir():
        if len(sources) > 1:
            raise StyleBankError(f"-o {out}: several clips need an output folder, not a file")
        return [out]
    if out.suffix and not out.is_dir():
        raise StyleBankError(
            f"-o {out}: unknown video format {out.suffix!r}; use one of " + ", ".join(VIDEO_FORMATS)
        )
    out.mkdir(parents=True, exist_ok=True)
    return [out / source.name for source in sources]


def video_targets(args: argparse.Namespace, sources: list[Path]) -> list[Path]:
    """The output clip of each of `sources`, checked before any work: the [video] extra is
    installed, the options suit video, no input is overwritten."""
    require_av()  # the one-line message for a missing extra
    for source in sources:
        if not source.is_file():
            raise StyleBankError(f"input not found: {source}")
    if args.save_regions:
        raise StyleBankError("--save-regions is for images; it cannot be used with video")
    if args.batch < 1:
        raise StyleBankError(f"--batch must be >= 1, got {args.batch}")
    targets = _targets(sources, Path(args.out))
    for source, target in zip(sources, targets):
        if target.exists() and target.resolve() == source.resolve():
            raise StyleBankError(
                f"-o {args.out} would overwrite the input {source}; choose another output"
            )
    return targets


def stylize_videos(
    stylizer: Stylizer,
    args: argparse.Namespace,
    jobs: list[tuple[Path, Path]],
    style: Style | StyleSchedule | None,
    region_styles: list[Style] | None,
) -> int:
    """Stylizes each (clip, output clip) of `jobs` (from `video_targets`) as the options in
    `args` say; returns the exit code."""
    from ..video import stylize_video

    for source, target in jobs:
        if args.skip_existing and target.exists():
            print(f"skipped {target} (exists)", file=sys.stderr)
            continue
        result = stylize_video(
            stylizer,
            source,
            target,
            style=style,
            regions=args.regions,
            region_styles=region_styles,
            feather=args.feather,
            strength=args.strength,
            preserve_color=args.preserve_color,
            max_size=args.max_size,
            smoothing=args.temporal_smoothing,
            batch=args.batch,
            progress=Progress(unit="frame"),
        )
        if result.audio_note:
            print(f"{source}: {result.audio_note}", file=sys.stderr)
        rate = result.frames / max(result.seconds, 1e-9)
        print(
            f"wrote {target} ({result.frames} frames, {result.width}x{result.height}, "
            f"{rate:.2f} frames/s)",
            file=sys.stderr,
        )
    return 0
