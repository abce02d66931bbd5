"""A small client of the API on the standard library alone (http.client): multipart bodies,
GET and POST with a timeout. The benchmark and the tests use it; so can scripts."""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

__all__ = ["multipart", "request", "stylize"]


def multipart(fields: dict[str, str | bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body of `fields` (str values as text, bytes as files) and its
    Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            head = f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            head += "Content-Type: application/octet-stream\r\n"
            data = value
        else:
            head = f'Content-Disposition: form-data; name="{name}"\r\n'
            data = str(value).encode()
        parts.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(
    url: str, path: str, fields: dict[str, str | bytes] | None = None, timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of GET `url` + `path`, or of a POST of
    `fields` as multipart/form-data."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
    try:
        if fields is None:
            connection.request("GET", path)
        else:
            body, content_type = multipart(fields)
            connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def stylize(url: str, image: bytes, timeout: float = 60, **fields: str | bytes) -> bytes:
    """The stylized image (bytes in the format asked) of POST /api/stylize; a RuntimeError
    with the server's message for any other answer than 200."""
    status, _, body = request(url, "/api/stylize", {"image": image, **fields}, timeout)
    if status != 200:
        raise RuntimeError(f"{status}: {json.loads(body).get('error', body)}")
    return body
