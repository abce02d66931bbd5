"""The HTTP side: the page, GET /api/styles, POST /api/stylize and /api/regions, the upload
limit, and errors as JSON {"error": ...} (400 bad input, 413 too large, 503 busy, 500 a bug:
the server goes on after any of them)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import StyleBankError
from ..imageio import ImageTooLarge
from .batcher import QueueFull
from .form import parse_regions, parse_stylize
from .service import StyleService, encode_image

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_UPLOAD_MB", "create_app"]

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_MB = 25.0
DEFAULT_MAX_PIXELS = 50_000_000  # as decoded (after max_size): a 48-megapixel phone photo
_log = logging.getLogger("stylebank_fast.serve")


class UploadTooLarge(StyleBankError):
    """A request body above the upload limit."""


class _LimitBody:
    """ASGI middleware: a request body longer than `limit` bytes is refused as soon as it is
    (by its Content-Length, else while it streams in), before it is all read or kept."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            return await _error(413, self._message(int(length)))(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise UploadTooLarge(self._message(seen))
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return (
            f"the upload is {size / 1e6:.1f} MB, more than the limit of {self.limit / 1e6:g} MB; "
            "send a smaller image (or start the server with a larger --max-upload-mb)"
        )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _status(error: Exception) -> int:
    if isinstance(error, (ImageTooLarge, UploadTooLarge)):
        return 413
    if isinstance(error, QueueFull):
        return 503
    return 400


def create_app(
    service: StyleService,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ASGIApp:
    """The ASGI app serving `service`."""

    async def form_of(request: Request):
        content_type = request.headers.get("content-type", "")
        how = "send the fields as multipart/form-data (curl -F name=value, -F image=@photo.jpg)"
        if not content_type.startswith("multipart/form-data"):
            raise StyleBankError(f"{how}, not {content_type or 'a body without a type'}")
        try:
            return await request.form(max_files=2, max_fields=16)
        except HTTPException as error:  # multipart that does not parse
            raise StyleBankError(f"{how}: {error.detail}") from None

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def styles(_: Request) -> Response:
        return JSONResponse(service.styles())

    async def parsed(request: Request, parse):
        form = await form_of(request)
        try:
            return await run_in_threadpool(parse, form, max_pixels)
        finally:
            await form.close()

    async def stylize(request: Request) -> Response:
        parsed_request = await parsed(request, parse_stylize)
        future = await run_in_threadpool(service.stylize, parsed_request)
        image, batch = await asyncio.wrap_future(future)
        body, media_type = await run_in_threadpool(encode_image, image, parsed_request.format)
        return Response(body, media_type=media_type, headers={"X-Batch-Size": str(batch)})

    async def regions(request: Request) -> Response:
        image = await asyncio.wrap_future(service.region_map(await parsed(request, parse_regions)))
        body, media_type = await run_in_threadpool(encode_image, image, "png")
        return Response(body, media_type=media_type)

    async def user_error(_: Request, error: Exception) -> Response:
        return _error(_status(error), str(error))

    async def http_error(_: Request, error: Exception) -> Response:
        return _error(error.status_code, str(error.detail))

    async def server_error(_: Request, error: Exception) -> Response:
        _log.exception("a request failed", exc_info=error)
        return _error(500, f"internal error ({type(error).__name__}): please report it")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/styles", styles),
            Route("/api/stylize", stylize, methods=["POST"]),
            Route("/api/regions", regions, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            StyleBankError: user_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    return _LimitBody(app, int(max_upload_mb * 1e6))
