"""Helpers for the serve tests: a server on 127.0.0.1 (a free port) in a thread, and
multipart requests through http.client with a timeout."""

from __future__ import annotations

import http.client
import io
import json
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
from helpers import synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.serve.app import create_app
from stylebank_fast.serve.server import Server, bind
from stylebank_fast.serve.service import StyleService

TIMEOUT = 20  # seconds any one request may take


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


def multipart(fields: dict) -> tuple[bytes, str]:
    """A multipart/form-data body of `fields`: str values as text, bytes values as files."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
            head += "Content-Type: application/octet-stream\r\n"
            data = value
        else:
            head = f'Content-Disposition: form-data; name="{name}"\r\n'
            data = str(value).encode()
        parts.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request(url: str, path: str, fields: dict | None = None, **options):
    """(status, headers, body) of GET `path`, or of a POST of `fields` as multipart."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=TIMEOUT)
    try:
        if fields is None:
            connection.request("GET", path)
        else:
            body, content_type = multipart(fields)
            connection.request("POST", path, body, {"Content-Type": content_type}, **options)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


def image_of(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
