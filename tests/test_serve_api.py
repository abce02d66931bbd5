"""The HTTP API on a real server (127.0.0.1, a free port): answers, errors as JSON with the
right status, limits, and a server that goes on (and gives its memory back) after bad
requests, bursts and clients that go away."""

from __future__ import annotations

import gc
import http.client
import os
import socket
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra: pip install 'stylebank_fast[serve]'")

from helpers import STYLE_NAMES  # noqa: E402
from serve_helpers import (  # noqa: E402
    TIMEOUT,
    encoded,
    error_of,
    image_of,
    multipart,
    photo,
    request,
    running_server,
)

import stylebank_fast as sb  # noqa: E402
from stylebank_fast.cli import command  # noqa: E402
from stylebank_fast.stylizer import REGION_COLOURS  # noqa: E402

PHOTO = encoded(photo(0))
# the start of a multipart body (boundary "b") whose image upload goes on
UPLOAD_START = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
HALVES = encoded(np.repeat(np.array([[0, 255]], np.uint8).repeat(32, 1), 48, 0))  # 48x64


@pytest.fixture(scope="module")
def stylizer(tiny_model_path) -> sb.Stylizer:
    return sb.Stylizer(tiny_model_path, device="cpu")


@pytest.fixture(scope="module")
def server(stylizer):
    options = {"max_upload_mb": 1, "max_pixels": 1_000_000}
    with running_server(stylizer, options) as (url, service):
        yield url, service


def _stylize(url: str, **fields):
    return request(url, "/api/stylize", {"image": PHOTO, **fields})


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_styles_page_and_static_files(server):
    url, _ = server
    status, _, body = request(url, "/api/styles")
    assert status == 200 and __import__("json").loads(body) == list(STYLE_NAMES)
    status, headers, body = request(url, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/app.js"' in body
    for name in ("app.js", "app.css"):
        assert request(url, f"/static/{name}")[0] == 200


def test_the_page_paints_in_the_region_maps_colours():
    script = (Path(sb.__file__).parent / "serve" / "static" / "app.js").read_text()
    palette = script.split("const PALETTE = [", 1)[1].split("];", 1)[0]
    numbers = [int(n) for n in palette.replace("[", " ").replace("]", " ").split(",") if n.strip()]
    assert np.array_equal(np.array(numbers).reshape(-1, 3), REGION_COLOURS)


def test_stylize_answers_each_form_of_style(server, stylizer):
    url, _ = server
    status, headers, body = _stylize(url, style="mosaic")
    assert status == 200 and headers["content-type"] == "image/png"
    alone = np.asarray(stylizer.stylize(photo(0), style="mosaic"), dtype=np.int16)
    assert np.abs(image_of(body).astype(np.int16) - alone).max() <= 1
    blend = _stylize(url, style="starry_night:0.7,great_wave:0.3", strength="0.5")[2]
    regions = _stylize(url, regions=HALVES, region_styles="mosaic,great_wave", feather="2")[2]
    assert not np.array_equal(image_of(blend), image_of(regions))
    for fmt, media_type in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
        status, headers, body = _stylize(url, style="1", format=fmt, preserve_color="true")
        assert status == 200 and headers["content-type"] == media_type
        assert image_of(body).shape == (48, 64, 3)
    status, _, body = _stylize(url, style="mosaic", max_size="32")
    assert status == 200 and image_of(body).shape == (24, 32, 3)


def test_auto_regions_map_and_stylize(server, stylizer):
    url, _ = server
    status, headers, body = request(url, "/api/regions", {"image": PHOTO, "regions": "auto:2"})
    assert status == 200 and headers["content-type"] == "image/png"
    colours = {tuple(c) for c in image_of(body).reshape(-1, 3)}
    assert colours == {tuple(c) for c in REGION_COLOURS[:2]}
    styles = "mosaic,great_wave"
    status, _, body = _stylize(url, regions="auto:2", region_styles=styles)
    alone = stylizer.stylize(photo(0), regions="auto:2", region_styles=styles.split(","))
    assert status == 200 and np.abs(image_of(body) - np.asarray(alone, np.int16)).max() <= 1
    status, _, body = _stylize(url, regions="auto:3", region_styles=styles)
    assert status == 400 and "regions auto:3 makes 3 regions" in error_of(body)
    status, _, body = _stylize(url, regions="everywhere", region_styles=styles)
    assert status == 400 and "or auto:N, got 'everywhere'" in error_of(body)
    status, _, body = _stylize(url, regions="auto:2", region_styles="mosaic,van_gogh")
    assert status == 400 and "unknown style 'van_gogh'" in error_of(body)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": b"not an image at all", "style": "mosaic"}, "not a readable image"),
        ({"image": PHOTO[: len(PHOTO) // 2], "style": "mosaic"}, "not a readable image"),
        ({"image": PHOTO, "style": "van_gogh"}, "unknown style 'van_gogh'"),
        ({"image": PHOTO, "style": "mosaic:x"}, "write a blend as name:weight"),
        ({"image": PHOTO}, "send either 'style'"),
        ({"image": PHOTO, "style": "mosaic", "regions": HALVES}, "send either 'style'"),
        ({"image": PHOTO, "regions": HALVES}, "needs 'region_styles'"),
        (
            {"image": PHOTO, "regions": HALVES, "region_styles": "mosaic"},
            "has 2 regions (distinct values or colours) but 1",
        ),
        ({"image": PHOTO, "regions": b"junk", "region_styles": "mosaic"}, "regions (regions"),
        ({"image": "a text, not a file", "style": "mosaic"}, "must be a file upload"),
        ({"image": PHOTO, "style": b"a file"}, "'style' must be text"),
        ({"image": PHOTO, "style": "mosaic", "strength": "strong"}, "'strength' must be a float"),
        ({"image": PHOTO, "style": "mosaic", "strength": "2"}, "between 0.0 and 1.0"),
        ({"image": PHOTO, "style": "mosaic", "max_size": "0"}, "'max_size' must be >= 1"),
        ({"image": PHOTO, "style": "mosaic", "preserve_color": "maybe"}, "true or false"),
        ({"image": PHOTO, "style": "mosaic", "format": "gif"}, "one of png, jpeg, webp"),
        ({"image": PHOTO, "style": "mosaic", "feather": "3"}, "needs 'regions'"),
        ({"image": PHOTO, "style": "mosaic", "colour": "red"}, "unknown field 'colour'"),
        ({"style": "mosaic"}, "'image' is missing"),
    ],
)
def test_bad_input_is_400_with_a_message(server, fields, message):
    url, _ = server
    status, headers, body = request(url, "/api/stylize", fields)
    assert status == 400 and headers["content-type"] == "application/json"
    assert message in error_of(body)


def test_bad_regions_requests_and_a_body_that_is_no_form(server):
    url, _ = server
    status, _, body = request(url, "/api/regions", {"image": PHOTO, "regions": "auto:9"})
    assert status == 400 and "auto:N with N from 1 to 8" in error_of(body)
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=TIMEOUT)
    connection.request("POST", "/api/stylize", b"{}", {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400 and "multipart/form-data" in error_of(response.read())
    connection.close()


def _png_header_only(width: int, height: int) -> bytes:
    """A greyscale PNG that says it is width x height, with one compressed row: what a
    decompression bomb looks like before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_too_large_is_413(server):
    url, _ = server
    status, _, body = request(url, "/api/stylize", {"image": b"\0" * 1_200_000, "style": "0"})
    assert status == 413 and "limit of 1 MB" in error_of(body)
    # without a Content-Length (chunked), the limit is met while the body streams in
    fields_body = [UPLOAD_START] + [b"x" * 65536] * 20
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=TIMEOUT)
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    connection.request("POST", "/api/stylize", iter(fields_body), headers, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "limit of 1 MB" in error_of(response.read())
    connection.close()
    bomb = _png_header_only(40_000, 40_000)  # 1.6 gigapixels in 60 kB
    status, _, body = request(url, "/api/stylize", {"image": bomb, "style": "mosaic"})
    assert status == 413 and "40000x40000" in error_of(body) and "megapixels" in error_of(body)
    status, _, body = request(url, "/api/regions", {"image": bomb, "regions": "auto:2"})
    assert status == 413


def test_a_full_queue_is_503(stylizer):
    big = encoded(photo(1, 96, 128))
    with running_server(stylizer, max_queue=1, wait=0) as (url, _):
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: _stylize(url, style="mosaic", image=big), range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert set(statuses) == {200, 503} and statuses.count(200) >= 1
        busy = next(body for status, _, body in answers if status == 503)
        assert "try again" in error_of(busy)
        assert _stylize(url, style="mosaic")[0] == 200


def _burst(url: str, count: int) -> list[tuple[int, dict, bytes]]:
    styles = ["mosaic", "starry_night", "great_wave:0.5,mosaic:0.5"]
    with ThreadPoolExecutor(count) as pool:
        return list(
            pool.map(
                lambda i: _stylize(url, style=styles[i % 3], strength=str(i / count)), range(count)
            )
        )


def test_50_concurrent_requests_batch_and_memory_comes_back(server):
    url, service = server
    _burst(url, 50)  # warms the allocator and the network's buffers
    gc.collect()
    before = _rss()
    sizes_before = len(service.batcher.batch_sizes)
    for _ in range(2):
        answers = _burst(url, 50)
        assert [status for status, _, _ in answers] == [200] * 50
    assert max(int(headers["x-batch-size"]) for _, headers, _ in answers) > 1
    assert max(service.batcher.batch_sizes[sizes_before:]) > 1
    gc.collect()
    assert _rss() - before < 64 << 20, "memory kept growing over bursts of requests"


def test_memory_comes_back_after_a_large_image(server):
    url, _ = server
    _burst(url, 4)
    gc.collect()
    before = _rss()
    large = encoded(photo(2, 720, 720))
    assert request(url, "/api/stylize", {"image": large, "style": "mosaic"})[0] == 200
    peak = _rss()
    for _ in range(2):  # a smaller image lets the network's large buffers go
        assert _stylize(url, style="mosaic")[0] == 200
    gc.collect()
    assert peak - before > 100 << 20  # the large image did take memory (the test can fail)
    assert _rss() - before < 64 << 20, f"{(_rss() - before) >> 20} MB kept after a large image"


def test_clients_that_go_away_leave_the_server_running(server):
    url, service = server
    where = urlsplit(url)
    for sent in (UPLOAD_START + PHOTO[:100], None):  # mid-upload; and before the answer
        with socket.create_connection((where.hostname, where.port), timeout=TIMEOUT) as sock:
            if sent is None:
                body, content_type = multipart({"image": PHOTO, "style": "mosaic"})
                length = len(body)
            else:
                body, content_type, length = sent, "multipart/form-data; boundary=b", 100_000
            head = (
                f"POST /api/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {length}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
    for _ in range(3):
        assert _stylize(url, style="mosaic")[0] == 200
    assert request(url, "/api/styles")[0] == 200


def test_the_command_line_serves_and_says_where(tiny_model_path):
    command = [sys.executable, "-m", "stylebank_fast.serve", "--model", str(tiny_model_path)]
    process = subprocess.Popen(
        [*command, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        assert "serving 3 styles on http://127.0.0.1:" in line
        url = line.split(" on ", 1)[1].split("/ ", 1)[0]
        assert request(url, "/api/styles")[0] == 200
    finally:
        process.terminate()
        process.wait(TIMEOUT)


def test_stylebank_fast_serve_is_the_same_command(capsys):
    assert command.main(["serve", "--help"]) == 0
    assert "--max-upload-mb" in capsys.readouterr().out


def test_a_missing_extra_is_named_in_one_line(tmp_path):
    (tmp_path / "starlette.py").write_text("raise ImportError('no starlette here')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "stylebank_fast.serve"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "pip install 'stylebank_fast[serve]'" in done.stderr


def test_the_core_never_imports_the_extra():
    code = "import sys, stylebank_fast, stylebank_fast.stylizer; print('starlette' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
