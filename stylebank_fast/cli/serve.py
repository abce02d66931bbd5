"""python -m stylebank_fast.serve: a local web app to paint style regions and see the result
live, and an HTTP API (docs/serve.md), on a server that batches requests across users."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import StyleBankError
from ..extras import require_extra
from ..stylizer import Stylizer
from .common import PRECISION_FLAGS, add_precision_option, run_cli

__all__ = ["main"]

SERVE_MODULES = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "python_multipart": "python-multipart",
}


def _build_parser() -> argparse.ArgumentParser:
    from ..serve.app import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB

    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.serve",
        description="A web page to paint where each style goes and see the result as you "
        "paint, and an HTTP API; concurrent requests share one forward of the network.",
    )
    parser.add_argument("--model", metavar="MODEL", help="model file (default: built-in model)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it "
        "to the network, with no authentication)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    add_precision_option(parser)
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest request body (default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"largest image, in pixels as decoded (default {DEFAULT_MAX_PIXELS})",
    )
    parser.add_argument(
        "--batch", type=int, default=8, metavar="N", help="most images in one forward (default 8)"
    )
    parser.add_argument(
        "--wait-ms",
        type=float,
        default=5,
        metavar="MS",
        help="how long a batch waits for more requests (default 5)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=64,
        metavar="N",
        help="most requests waiting at once; more are answered 503 (default 64)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    from ..serve.app import create_app
    from ..serve.server import Server, bind
    from ..serve.service import StyleService

    if not args.max_upload_mb > 0 or args.max_pixels < 1:
        raise StyleBankError(
            f"--max-upload-mb and --max-pixels must be > 0, got {args.max_upload_mb} and "
            f"{args.max_pixels}"
        )
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        raise StyleBankError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror}; choose another "
            "--port (0: any free one)"
        ) from None
    stylizer = Stylizer(args.model, device=args.device, bfloat16=PRECISION_FLAGS[args.precision])
    service = StyleService(
        stylizer, max_batch=args.batch, wait=args.wait_ms / 1000, max_queue=args.queue
    )
    server = Server(create_app(service, args.max_upload_mb, args.max_pixels), sock)
    print(
        f"stylebank_fast: serving {len(stylizer.list_styles())} styles on {server.url}/ "
        "(Ctrl-C stops)",
        flush=True,
    )
    try:
        server.run()
    finally:
        service.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:  # the one-line message for a missing extra, before any work
        require_extra(
            "the web app needs Starlette, uvicorn and python-multipart", "serve", SERVE_MODULES
        )
    except StyleBankError as error:
        print(f"python -m stylebank_fast.serve: error: {error}", file=sys.stderr)
        return 2
    return run_cli(_build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
