"""Helpers for the serve tests: a server on 127.0.0.1 (a free port) in a thread; requests go
through `serve.client` (http.client, with a timeout)."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import numpy as np
from helpers import synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.serve.app import create_app
from stylebank_fast.serve.client import multipart, request
from stylebank_fast.serve.server import Server, bind
from stylebank_fast.serve.service import StyleService

TIMEOUT = 20  # seconds any one request may take
__all__ = [
    "TIMEOUT",
    "encoded",
    "error_of",
    "image_of",
    "multipart",
    "photo",
    "request",
    "running_server",
]


def photo(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    """A synthetic photo, uint8 [h,w,3]."""
    return (synthetic_photo(seed, h, w) * 255).round().astype(np.uint8)


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@contextmanager
def running_server(model, app_options=None, **batching):
    """A server for `model` (a path or a Stylizer): yields (url, service)."""
    stylizer = model if isinstance(model, sb.Stylizer) else sb.Stylizer(model, device="cpu")
    service = StyleService(stylizer, **batching)
    server = Server(create_app(service, **(app_options or {})), bind("127.0.0.1", 0)).start()
    try:
        yield server.url, service
    finally:
        server.stop()
        service.close()


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


def image_of(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
