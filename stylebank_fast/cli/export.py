"""python -m stylebank_fast.export: a style, a blend or K regions as a plain ONNX file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .._files import check_writable
from ..errors import StyleBankError
from ..onnx_export import INPUT_DOC, MASKS_DOC, OPSET, OUTPUT_DOC, export_onnx
from ..styles import parse_spec, parse_spec_list
from .common import run_cli

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.export",
        description="Export the network for one style, a fixed blend, or K regions (masks as "
        f"a second input) to an ONNX file: standard operators only, opset {OPSET}, any image "
        "size. docs/export.md shows how to run it in onnxruntime and in a browser.",
    )
    parser.add_argument("-o", "--out", metavar="OUT.onnx", required=True, help="file to write")
    parser.add_argument("--model", metavar="MODEL", help="model file (default: built-in model)")
    parser.add_argument(
        "--style", metavar="SPEC", help="a name or index, or a blend a:0.7,b:0.3 (normalised)"
    )
    parser.add_argument(
        "--regions",
        type=int,
        metavar="K",
        help="export K regions: the graph takes masks [1,K,H,W] too (needs --region-styles)",
    )
    parser.add_argument(
        "--region-styles",
        metavar="S1,S2,...",
        help="the K regions' styles, comma-separated; a blend within one region: a:0.5+b:0.5",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="0 (the photo, as the network rebuilds it) .. 1 (full style), fixed in the file",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if (args.style is None) == (args.regions is None):
        raise StyleBankError("give --style SPEC, or --regions K with --region-styles")
    region_styles = None
    if args.regions is not None:
        if args.regions < 1:
            raise StyleBankError(f"--regions must be >= 1, got {args.regions}")
        if args.region_styles is None:
            raise StyleBankError(f"--regions {args.regions} needs --region-styles (K styles)")
        region_styles = parse_spec_list(args.region_styles)
        if len(region_styles) != args.regions:
            raise StyleBankError(
                f"--regions {args.regions} but {len(region_styles)} region styles were given "
                f"({args.region_styles}); give one style per region"
            )
    elif args.region_styles is not None:
        raise StyleBankError("--region-styles needs --regions K")
    if args.model and out.resolve() == Path(args.model).resolve():
        raise StyleBankError(f"-o {out} would overwrite the model {args.model}; choose another")
    if out.is_dir():
        raise StyleBankError(f"-o {out} is a folder; give the ONNX file to write")
    try:
        check_writable(out)
    except OSError as error:
        raise StyleBankError(f"-o {out}: cannot write there ({error.strerror})") from None
    style = parse_spec(args.style) if args.style is not None else None
    export_onnx(args.model, out, style, region_styles, args.strength)
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({size_mb:.1f} MB, ONNX opset {OPSET})", file=sys.stderr)
    print(f"  input  image: {INPUT_DOC}", file=sys.stderr)
    if region_styles is not None:
        print(f"  input  masks: {MASKS_DOC}", file=sys.stderr)
    print(f"  output stylized: {OUTPUT_DOC}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
