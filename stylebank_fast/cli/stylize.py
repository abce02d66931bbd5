"""python -m stylebank_fast.stylize: stylize photos (files or folders) with a StyleBank model."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..data import find_images
from ..errors import DataError, StyleBankError
from ..imageio import alpha_channel, image_format, keeps_alpha, open_upright, save_image, to_rgb
from ..progress import WorkProgress
from ..regions import parse_auto
from ..style_schedule import parse_schedule
from ..styles import Style, parse_spec, parse_spec_list
from ..stylizer import DEFAULT_MEMORY_BUDGET, Stylizer
from ..video_io import is_video
from .common import PRECISION_FLAGS, Progress, add_precision_option, run_cli
from .stylize_video import stylize_videos, video_targets

__all__ = ["main"]

EXIT_SOME_FAILED = 1  # some inputs could not be read; the others were written


def _inputs(paths: Sequence[str], out: Path) -> list[tuple[Path, Path]]:
    """(input file, output path relative to an output folder) for files and folders; files
    under the output folder (when it lies inside an input folder) are earlier outputs, not
    inputs."""
    found = []
    for given in map(Path, paths):
        if given.is_dir():
            files = find_images(given, skip=out, what="input folder")
            found += [(p, p.relative_to(given)) for p in files]
        elif given.is_file():
            found.append((given, Path(given.name)))
        else:
            raise StyleBankError(f"input not found: {given}")
    names = [relative for _, relative in found]
    clashes = sorted({str(n) for n in names if names.count(n) > 1})
    if clashes:
        raise StyleBankError(f"several inputs would be written to the same output: {clashes}")
    return found


def _outputs(inputs: list[tuple[Path, Path]], out: Path, single_file: bool) -> list[Path]:
    """OUT is a file for one input file when it has an extension and is not a folder;
    otherwise a folder (made when missing) mirroring the inputs' names."""
    if single_file and out.suffix and not out.is_dir():
        image_format(out)
        return [out]
    if out.suffix and not out.is_dir() and len(inputs) > 1:
        raise StyleBankError(f"-o {out}: several images need an output folder, not a file")
    if out.exists() and not out.is_dir():
        raise StyleBankError(f"-o {out}: not a folder")
    return [out / relative for _, relative in inputs]


def _writable_folder(folder: Path) -> None:
    """Makes `folder` when missing; a folder that cannot be written is an error before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StyleBankError(f"cannot make output folder {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise StyleBankError(f"cannot write to output folder {folder}: permission denied")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.stylize",
        description="Stylize photos with a StyleBank model: one style, a blend of styles, or "
        "one style per region.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files or folders, or video clips (.mp4 .mov .mkv .webm .gif; the [video] "
        "extra)",
    )
    parser.add_argument("-o", "--out", metavar="OUT", help="output file, or folder")
    parser.add_argument("--model", metavar="MODEL", help="model file (default: built-in model)")
    parser.add_argument(
        "--style",
        metavar="SPEC",
        help="a name or index, or a blend a:0.7,b:0.3 (normalised); for video also keyframes "
        "0s:a,5s:b (blended in between; a blend in a keyframe joins its parts with +)",
    )
    parser.add_argument(
        "--style-image",
        action="append",
        metavar="PAINTING",
        help="learn a style from any painting (a few minutes the first time, cached after); "
        "use it by its name (the file's stem) in --style or --region-styles; repeatable",
    )
    parser.add_argument(
        "--style-name",
        action="append",
        metavar="NAME",
        help="the name of the --style-image style (one per --style-image, in order)",
    )
    parser.add_argument(
        "--style-steps", type=int, metavar="N", help="at most N learning steps per painting"
    )
    parser.add_argument(
        "--regions",
        metavar="MASK|auto:N",
        help="label or colour image (one region per value, in sorted order), or auto:N",
    )
    parser.add_argument(
        "--region-styles",
        metavar="S1,S2,...",
        help="one style per region, comma-separated; a blend within one region: a:0.5+b:0.5",
    )
    parser.add_argument(
        "--feather", type=int, default=0, metavar="PX", help="soft region borders (with --regions)"
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="0 (the photo, as the network rebuilds it) .. 1 (full style); 0.5 is about half way",
    )
    parser.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    parser.add_argument(
        "--max-size",
        type=int,
        metavar="PX",
        help="scale larger inputs down to this longer side (JPEGs decode at a reduced scale)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        default=DEFAULT_MEMORY_BUDGET,
        metavar="GB",
        help="memory a stylization may take besides the input and output images (default "
        f"{DEFAULT_MEMORY_BUDGET:g}); larger images are stylized in tiles, with the same output",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    add_precision_option(parser)
    parser.add_argument("--list-styles", action="store_true", help="print the styles and exit")
    parser.add_argument(
        "--save-regions",
        metavar="PATH",
        help="also write the regions used as a colour image (region 0 red, 1 green, 2 blue, "
        "3 yellow, ...); a folder with several inputs",
    )
    parser.add_argument(
        "--skip-existing", action="store_true", help="leave outputs that exist as they are"
    )
    parser.add_argument(
        "--batch", type=int, default=4, metavar="N", help="video: frames per network call"
    )
    parser.add_argument(
        "--temporal-smoothing",
        type=float,
        default=0.8,
        metavar="S",
        help="video: average features over frames where the content stands still, against "
        "flicker (0 = each frame on its own; default 0.8)",
    )
    return parser


def _learn_paintings(stylizer: Stylizer, args: argparse.Namespace) -> list[str]:
    """Learns (or loads from the cache) a style per --style-image; returns their names."""
    paintings, names = args.style_image or [], args.style_name or []
    if names and len(names) != len(paintings):
        raise StyleBankError(
            f"{len(names)} --style-name for {len(paintings)} --style-image; give one per painting"
        )
    if args.style_steps is not None and args.style_steps < 1:
        raise StyleBankError(f"--style-steps must be >= 1, got {args.style_steps}")
    for painting in paintings:  # all of them before minutes of learning the first
        if not Path(painting).is_file():
            raise StyleBankError(f"--style-image {painting}: no such file")
    learnt = []
    for i, painting in enumerate(paintings):
        name = stylizer.learn_style(
            painting, names[i] if names else None, args.style_steps, progress=Progress()
        )
        record = stylizer.learnt_styles[name]
        if record.from_cache:
            print(f"style {name!r} from the cache ({record.cache_file})", file=sys.stderr)
        elif record.interrupted:
            print(
                f"interrupted: style {name!r} uses its best bank after {record.steps} steps "
                "(not cached; the next call learns it again)",
                file=sys.stderr,
            )
        else:
            print(
                f"learnt style {name!r} in {record.seconds:.0f}s ({record.steps} steps); cached "
                f"in {record.cache_file or 'nowhere (the cache is not writable)'}",
                file=sys.stderr,
            )
        learnt.append(name)
    return learnt


def _run(args: argparse.Namespace) -> int:
    if not args.memory_budget > 0:
        raise StyleBankError(f"--memory-budget must be more than 0 GB, got {args.memory_budget}")
    stylizer = Stylizer(
        args.model,
        device=args.device,
        bfloat16=PRECISION_FLAGS[args.precision],
        memory_budget=args.memory_budget,
    )
    if args.list_styles:
        for index, name in enumerate(stylizer.list_styles()):
            print(f"{index}\t{name}")
        return 0
    if not args.inputs or not args.out:
        raise StyleBankError("give INPUT files or folders and -o OUT (or --list-styles)")
    if args.max_size is not None and args.max_size < 1:
        raise StyleBankError(f"--max-size must be >= 1, got {args.max_size}")
    schedule = parse_schedule(args.style) if args.style is not None else None
    style = schedule or (parse_spec(args.style) if args.style is not None else None)
    videos = [Path(p) for p in args.inputs if is_video(p)]
    if videos and len(videos) != len(args.inputs):
        raise StyleBankError("stylize video clips and images in separate calls")
    if schedule is not None and not videos:
        raise StyleBankError(f"--style {args.style}: keyframes (0s:...) are for video inputs")
    regions = args.regions
    if regions is not None and parse_auto(regions) is None and not Path(regions).is_file():
        raise StyleBankError(f"--regions {regions}: no such mask file (or write auto:N)")
    region_styles = None
    if args.region_styles is not None:
        region_styles = parse_spec_list(args.region_styles)
    if args.feather and regions is None:
        raise StyleBankError("--feather softens region borders: it needs --regions")
    if args.save_regions and regions is None:
        raise StyleBankError("--save-regions writes the regions used: it needs --regions")
    if videos:
        targets = video_targets(args, videos)
    else:
        inputs, outputs = _image_targets(args)
    learnt = _learn_paintings(stylizer, args)  # minutes: every path is checked before
    if style is None and regions is None and learnt:
        style = learnt[0]  # --style-image alone: stylize in that style
    if videos:
        return stylize_videos(stylizer, args, list(zip(videos, targets)), style, region_styles)
    return _stylize_images(stylizer, args, list(zip(inputs, outputs)), style, region_styles)


def _image_targets(args: argparse.Namespace) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The image inputs (file, path relative to an output folder) and their output paths,
    checked: no input overwritten, output folders writable, output formats known."""
    inputs = _inputs(args.inputs, Path(args.out))
    single_file = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    outputs = _outputs(inputs, Path(args.out), single_file)
    for (source, _), target in zip(inputs, outputs):
        if target.resolve() == source.resolve():
            raise StyleBankError(
                f"-o {args.out} would overwrite the input {source}; choose another output"
            )
    for folder in sorted({path.parent for path in outputs}):
        _writable_folder(folder)
    for path in outputs:
        image_format(path)  # an unknown extension fails before any work
    return inputs, outputs


def _stylize_images(
    stylizer: Stylizer,
    args: argparse.Namespace,
    jobs: list[tuple[tuple[Path, Path], Path]],
    style: Style | None,
    region_styles: list[Style] | None,
) -> int:
    """Stylizes each ((input, relative path), output) of `jobs`; returns the exit code."""
    regions = args.regions

    start = time.monotonic()
    failed: list[str] = []
    for i, ((source, relative), target) in enumerate(jobs, 1):
        if args.skip_existing and target.exists():
            print(f"skipped {target} (exists)", file=sys.stderr)
            continue
        try:
            original = open_upright(source, args.max_size)
        except DataError as error:  # one bad file in a folder does not stop the others
            if len(jobs) == 1:
                raise
            failed.append(f"{source}: {error}")
            print(f"[{i}/{len(jobs)}] cannot read {source}; going on", file=sys.stderr)
            continue
        result = stylizer.stylize(
            to_rgb(original),
            style=style,
            regions=regions,
            region_styles=region_styles,
            feather=args.feather,
            strength=args.strength,
            preserve_color=args.preserve_color,
            progress=WorkProgress(str(source)),  # heard only for an image stylized in tiles
        )
        alpha = alpha_channel(original)
        if alpha is not None and keeps_alpha(target):  # transparency goes through unchanged
            result.putalpha(alpha)
        save_image(result, target)
        if args.save_regions:
            where = Path(args.save_regions)
            if len(jobs) > 1:
                where = (where / relative).with_suffix(".png")
                _writable_folder(where.parent)
            save_image(stylizer.region_map(to_rgb(original), regions), where)
            print(f"wrote {where}", file=sys.stderr)
        line = f"wrote {target}"
        if len(jobs) > 1:
            left = (time.monotonic() - start) / i * (len(jobs) - i)
            line = f"[{i}/{len(jobs)}] {line} ({left:.0f}s left)"
        print(line, file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(jobs)} inputs could not be read:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
