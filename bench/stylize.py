"""End-to-end stylization benchmark: the fast path against the same network in plain PyTorch.

Times `Stylizer.stylize` on a PIL image (image in, image out; model loading excluded) for one
style, a 4-style blend and 4-region fusion (four vertical stripes, one style each), against:

  plain   the same network written in plain PyTorch: the model's own encoder/decoder modules
          (NCHW float32), an nn.Conv2d per bank and naive fusion (the styles' convolutions,
          then the blend or the masked sum), with the same image conversions
  module  Stylizer(fast=False): the model's modules, the fused bank_conv2d
  fast    Stylizer(bfloat16=False): the inference rewrite (stylebank_fast/fast_inference/),
          float32
  bf16    Stylizer(bfloat16=True), where the device supports bfloat16 (what Stylizer() runs
          on CPUs that compute bfloat16 natively)
  onnx    onnxruntime (CPU, the same thread count) running the network exported by
          `stylebank_fast.export_onnx` (bank folded into one convolution; regions decomposed),
          where onnx and onnxruntime are installed and the device is the CPU
  1 thread  (with --busy) fast on one CPU thread: what a busy machine must never make worse

With --busy N, each case is timed again while N processes keep a core busy each (started
and ended by the benchmark), and a second table gives each variant's busy time over its
quiet time. The package is imported before torch, as `python -m stylebank_fast...` does, so
it chooses the OpenMP wait policy (stylebank_fast/cpu_threads.py); `GOMP_SPINCOUNT=300000
python bench/stylize.py --busy 2` measures libgomp's default instead.

A random-weight model (K=8 banks of 3x3) is timed: speed does not depend on the weights.
Variants run interleaved, repeats adaptive, medians reported.

    python bench/stylize.py                  # CPU: 512x384, 1024x768, 1920x1080
    python bench/stylize.py --device cuda
    python bench/stylize.py --quick          # 512x384 only, few repeats (a smoke test)
    python bench/stylize.py --size 1024x768  # one size
    python bench/stylize.py --size 1024x768 --busy 2  # also against two busy processes

Prints a markdown table and writes JSON (default bench/results/stylize_<device>.json).
"""

from __future__ import annotations

import stylebank_fast as sb  # first: it chooses the OpenMP wait policy before torch loads

# isort: split
import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from stylebank_fast.imageio import to_pil, to_tensor

K_BANKS = 8
BLEND = {0: 0.4, 1: 0.3, 2: 0.2, 3: 0.1}
SIZES = ((512, 384), (1024, 768), (1920, 1080))
FORMS = ("one style", "4-style blend", "4 regions")


class PlainStyleBankNet(nn.Module):
    """The StyleBank network in plain PyTorch: one nn.Conv2d per bank, naive fusion."""

    def __init__(self, model: sb.StyleBankNet) -> None:
        super().__init__()
        self.model = model  # its encoder, decoder and input padding are plain PyTorch already
        self.banks = nn.ModuleList()
        for weight, bias in zip(model.bank.weights, model.bank.biases):
            conv = nn.Conv2d(128, 128, model.kernel_size, padding="same", padding_mode="reflect")
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)
            self.banks.append(conv)

    def forward(self, images: Tensor, style: int | dict[int, float] | Tensor) -> Tensor:
        h, w = images.shape[-2:]
        features = self.model.encode(images)
        if isinstance(style, int):
            styled = self.banks[style](features)
        elif isinstance(style, dict):
            styled = sum(weight * self.banks[k](features) for k, weight in style.items())
        else:  # region masks [1,K,H,W] at image resolution
            masks = F.interpolate(style, size=features.shape[-2:], mode="bilinear", antialias=True)
            used = [k for k in range(len(self.banks)) if masks[:, k].any()]
            styled = sum(masks[:, k : k + 1] * self.banks[k](features) for k in used)
        return self.model.decoder(styled)[..., :h, :w]


def region_labels(h: int, w: int) -> np.ndarray:
    """Four vertical stripes, labelled 0..3."""
    return np.broadcast_to(np.arange(w) * 4 // w, (h, w)).astype(np.int64)


def bf16_supported(device: str) -> bool:
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def onnx_run(
    model: sb.StyleBankNet, form: str, labels: np.ndarray, photo: Image.Image, folder: str
) -> Callable[[], Image.Image]:
    """Image in, image out through onnxruntime on the exported network."""
    import onnxruntime as ort

    from stylebank_fast.onnx_export import export_onnx

    path = Path(folder) / f"{form}.onnx"
    if form == "one style":
        export_onnx(model, path, style=0)
    elif form == "4-style blend":
        export_onnx(model, path, style=BLEND)
    else:
        export_onnx(model, path, region_styles=[0, 1, 2, 3])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    masks = F.one_hot(torch.from_numpy(labels), 4).permute(2, 0, 1)[None].float().numpy()

    def run() -> Image.Image:
        feed = {"image": to_tensor(photo).numpy()}
        if form == "4 regions":
            feed["masks"] = masks
        return to_pil(torch.from_numpy(session.run(None, feed)[0])[0])

    return run


def onnx_available(device: str) -> bool:
    found = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
    return found and device == "cpu"


def one_thread(run: Callable[[], object]) -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass"


@contextlib.contextmanager
def busy_processes(n: int, seconds: float) -> Iterator[None]:
    """`n` processes that keep a core busy each, for at most `seconds` (ended on exit)."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(seconds)]) for _ in range(n)]
    try:
        time.sleep(0.5)  # running
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


def variants(
    model: sb.StyleBankNet,
    device: str,
    form: str,
    photo: Image.Image,
    folder: str,
    single_thread: bool = False,
) -> dict[str, Callable[[], object]]:
    h, w = photo.height, photo.width
    labels = region_labels(h, w)
    plain = PlainStyleBankNet(model).to(device).eval()
    if form == "one style":
        kwargs: dict = {"style": 0}
        plain_style: int | dict | Tensor = 0
    elif form == "4-style blend":
        kwargs = {"style": BLEND}
        plain_style = BLEND
    else:
        kwargs = {"regions": labels, "region_styles": [0, 1, 2, 3]}
        plain_style = F.one_hot(torch.from_numpy(labels), K_BANKS).permute(2, 0, 1)[None].float()

    def run_plain() -> Image.Image:
        with torch.inference_mode():
            images = to_tensor(photo).to(device)
            style = plain_style.to(device) if isinstance(plain_style, Tensor) else plain_style
            return to_pil(plain(images, style).clamp(0, 1)[0])

    runs = {"plain": run_plain}
    stylizers = {
        "module": sb.Stylizer(model, device=device, fast=False),
        "fast": sb.Stylizer(model, device=device, bfloat16=False),
    }
    if bf16_supported(device):
        stylizers["bf16"] = sb.Stylizer(model, device=device, bfloat16=True)
    for name, stylizer in stylizers.items():
        runs[name] = lambda s=stylizer: s.stylize(photo, **kwargs)
    if single_thread:
        runs["1 thread"] = lambda: one_thread(lambda: stylizers["fast"].stylize(photo, **kwargs))
    if onnx_available(device):
        runs["onnx"] = onnx_run(model, form, labels, photo, folder)
    return runs


def time_interleaved(
    runs: dict[str, Callable[[], object]], sync: Callable[[], None], budget_s: float, min_reps: int
) -> dict[str, float]:
    """Median seconds of each run, taking turns (so load changes hit all of them alike)."""
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    start = time.perf_counter()
    while len(times["plain"]) < min_reps or (
        time.perf_counter() - start < budget_s and len(times["plain"]) < 25
    ):
        for name, run in runs.items():
            sync()
            t0 = time.perf_counter()
            run()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


NAMES = ("plain", "module", "fast", "bf16", "onnx")
BUSY_NAMES = NAMES + ("1 thread",)  # one thread is timed only against busy processes


def busy_table(results: list[dict], busy: int) -> str:
    """Each variant's time quiet and against `busy` busy processes, and their ratio."""
    names = [n for n in BUSY_NAMES if n in results[0]["seconds"]]
    head = ["size", "style"] + [f"{n}: quiet / busy (s), slowdown" for n in names]
    lines = [f"against {busy} busy processes:", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for r in results:
        quiet, loaded = r["seconds"], r["busy_seconds"]
        cells = [f"{quiet[n]:.3f} / {loaded[n]:.3f}, {loaded[n] / quiet[n]:.2f}x" for n in names]
        lines.append("| " + " | ".join([r["size"], r["form"]] + cells) + " |")
    return "\n".join(lines)


def table(results: list[dict]) -> str:
    names = [n for n in NAMES if n in results[0]["seconds"]]
    one_style = {
        r["size"]: r["seconds"] for r in results if r["form"] == "one style"
    }  # for the regions/one-style ratio
    head = ["size", "style"] + [f"{n} (s)" for n in names] + ["plain/fast"]
    if "bf16" in names:
        head.append("plain/bf16")
    if "onnx" in names:
        head.append("onnx/fast")
    head.append("fast / fast one style")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["seconds"]
        row = [r["size"], r["form"]] + [f"{s[n]:.3f}" for n in names]
        row.append(f"{s['plain'] / s['fast']:.2f}x")
        if "bf16" in names:
            row.append(f"{s['plain'] / s['bf16']:.2f}x")
        if "onnx" in names:
            row.append(f"{s['onnx'] / s['fast']:.2f}")
        row.append(f"{s['fast'] / one_style[r['size']]['fast']:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="512x384 only, few repeats")
    parser.add_argument("--size", action="append", metavar="WxH", help="a size (repeatable)")
    parser.add_argument("--budget", type=float, default=None, help="seconds per case")
    parser.add_argument("--json", help="where to write the results (default bench/results/)")
    parser.add_argument(
        "--busy", type=int, default=0, metavar="N", help="also time against N busy processes"
    )
    args = parser.parse_args(argv)

    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    budget = args.budget if args.budget is not None else (1.0 if args.quick else 8.0)
    sizes = SIZES[:1] if args.quick else SIZES
    if args.size:
        sizes = tuple(tuple(int(v) for v in size.lower().split("x")) for size in args.size)
    torch.manual_seed(0)
    model = sb.StyleBankNet(K_BANKS).eval()
    results = []
    with tempfile.TemporaryDirectory(prefix="stylebank_bench_") as folder:  # ONNX files
        for w, h in sizes:
            rng = np.random.default_rng(0)
            photo = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
            for form in FORMS:
                runs = variants(model, device, form, photo, folder, single_thread=args.busy > 0)
                min_reps = 2 if args.quick else 3
                seconds = time_interleaved(runs, sync, budget, min_reps)
                result = {"size": f"{w}x{h}", "form": form, "seconds": seconds}
                times = ", ".join(f"{n} {t:.3f}s" for n, t in seconds.items())
                print(f"{w}x{h} {form}: {times}", file=sys.stderr)
                if args.busy:
                    with busy_processes(args.busy, seconds=max(600, 100 * budget)):
                        result["busy_seconds"] = time_interleaved(runs, sync, budget, min_reps)
                    times = ", ".join(f"{n} {t:.3f}s" for n, t in result["busy_seconds"].items())
                    print(f"  busy: {times}", file=sys.stderr)
                results.append(result)
    info = {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "model": f"random weights, K={K_BANKS} banks of {model.kernel_size}x{model.kernel_size}",
        "batch": 1,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
        "busy_processes": args.busy,
    }
    print(f"stylebank_fast end-to-end stylization: {json.dumps(info)}\n")
    print(table(results))
    if args.busy:
        print("\n" + busy_table(results, args.busy))
    path = Path(
        args.json or Path(__file__).parent / "results" / f"stylize_{device.split(':')[0]}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": info, "results": results}, indent=2) + "\n")
    print(f"\nwrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
