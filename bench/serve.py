"""Throughput and latency of the server (python -m stylebank_fast.serve) under concurrent
clients, on loopback only: (a) 8 clients all asking one style, (b) 8 clients asking 8
different styles, (c) one client at a time. Requests of different styles share one forward
(style weights per sample in one bank_conv2d call), so (b) should run about as fast as (a).

    nice -n 15 python bench/serve.py [--model MODEL] [--size 512] [--requests 6]

Prints a markdown table (docs/serve.md has the measured one).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from stylebank_fast.serve.client import request, stylize

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "photos" / "tubingen.jpg"


def start_server(model: str | None, batch: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "stylebank_fast.serve", "--port", "0", "--batch", str(batch)]
    if model:
        command += ["--model", model]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if " on http://" not in line:
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, line.split(" on ", 1)[1].split("/ ", 1)[0]


def run(url: str, image: bytes, styles: list[str], requests: int) -> tuple[float, list, list]:
    """len(styles) clients, client i asking styles[i] `requests` times, all at once: images/s,
    the latencies (s) and the batch sizes the server reported."""
    latencies: list[float] = []
    batches: list[int] = []
    lock = threading.Lock()

    def client(style: str) -> None:
        for _ in range(requests):
            started = time.perf_counter()
            status, headers, body = request(
                url, "/api/stylize", {"image": image, "style": style, "format": "jpeg"}
            )
            if status != 200:
                raise SystemExit(f"{status}: {body[:200]!r}")
            with lock:
                latencies.append(time.perf_counter() - started)
                batches.append(int(headers["x-batch-size"]))

    threads = [threading.Thread(target=client, args=(style,)) for style in styles]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - started), latencies, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file (default: the built-in model)")
    parser.add_argument("--size", type=int, default=512, help="longer side of the photo")
    parser.add_argument("--requests", type=int, default=4, help="requests per client a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    photo = Image.open(PHOTO).convert("RGB")
    photo.thumbnail((args.size, args.size))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    image = buffer.getvalue()

    server, url = start_server(args.model, args.clients)
    try:
        names = json.loads(request(url, "/api/styles")[2])
        for style in names[:2]:  # warm-up: the network's buffers, the allocator
            stylize(url, image, style=style, format="jpeg")
        scenarios = [
            (f"(a) {args.clients} clients, one style", [names[0]] * args.clients),
            (
                f"(b) {args.clients} clients, {args.clients} styles",
                [names[i % len(names)] for i in range(args.clients)],
            ),
            ("(c) one client at a time", [names[0]]),
        ]
        # rounds of (a), (b), (c) in turn, so that a change in the machine's load (the
        # training run it shares) falls on every scenario alike; the median round is reported
        results = {title: ([], [], []) for title, _ in scenarios}
        for _ in range(args.rounds):
            for title, styles in scenarios:
                requests = args.requests * (args.clients if len(styles) == 1 else 1)
                rate, latencies, batches = run(url, image, styles, requests)
                results[title][0].append(rate)
                results[title][1].extend(latencies)
                results[title][2].extend(batches)
    finally:
        server.terminate()
        server.wait(30)

    import torch

    print(
        f"{photo.width}x{photo.height} JPEG in and out, {args.requests * args.clients} "
        f"requests per scenario and round; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print("| scenario | images/s (median round) | rounds | p50 ms | p90 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|---|")
    medians = []
    for title, (rates, latencies, batches) in results.items():
        cuts = statistics.quantiles(latencies, n=100)
        medians.append(statistics.median(rates))
        print(
            f"| {title} | {medians[-1]:.2f} | {', '.join(f'{r:.2f}' for r in rates)} | "
            f"{cuts[49] * 1000:.0f} | {cuts[89] * 1000:.0f} | {cuts[98] * 1000:.0f} | "
            f"{statistics.mean(batches):.1f} |"
        )
    a, b, c = medians
    print(f"(b)/(a) = {b / a:.2f}; (a)/(c) = {a / c:.2f}; (b)/(c) = {b / c:.2f}")


if __name__ == "__main__":
    main()
