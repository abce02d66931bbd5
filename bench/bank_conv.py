"""Microbenchmark of stylebank_fast.bank_conv2d against the best library convolution.

For each case it times, side by side in one run (medians):
  fused  bank_conv2d
  floor  one library conv2d of the same shape (ATen/oneDNN on the CPU, cuDNN on CUDA)
  naive  K library convolutions, then the blend (reference_bank_conv2d)
and prints fused/floor (1.0 = as fast as one convolution) and naive/fused (the speed-up).

    python bench/bank_conv.py                 # CPU: N=1 and N=4, 128 channels, 192x256, float32
    python bench/bank_conv.py --device cuda   # CUDA: N=8, 256x256, bfloat16 and float32
    python bench/bank_conv.py --quick         # a subset, for a smoke test

Results are also written as JSON (default bench/results/bank_conv_<device>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import stylebank_fast as sb

FORMS = ("hard", "soft", "ids", "weights")


@dataclass
class Case:
    device: str
    dtype: str
    n: int
    k_banks: int
    form: str  # "plain" (K=1, mix=None) or one of FORMS
    passes: str  # "fwd" or "fwd+bwd"


@dataclass
class Result(Case):
    fused_ms: float
    floor_ms: float
    naive_ms: float | None
    tflops: float  # achieved by the fused op, counting only the work of one convolution per pixel


def block_masks(n: int, k_banks: int, h: int, w: int, overlap: bool, **kw) -> torch.Tensor:
    """Blocky regions (a grid of K blocks); with overlap, each pixel also gets its neighbour bank."""
    rows = int(k_banks**0.5)
    while k_banks % rows:
        rows -= 1
    cols = k_banks // rows
    region = (torch.arange(h)[:, None] * rows // h) * cols + torch.arange(w)[None, :] * cols // w
    masks = F.one_hot(region, k_banks).permute(2, 0, 1).to(**kw)
    if overlap:
        masks = 0.6 * masks + 0.4 * masks.roll(1, dims=0)
    return masks.expand(n, -1, -1, -1).contiguous()


def make_mix(case: Case, h: int, w: int, **kw) -> torch.Tensor | None:
    n, k = case.n, case.k_banks
    if case.form == "plain":
        return None
    if case.form in ("hard", "soft"):
        return block_masks(n, k, h, w, overlap=case.form == "soft", **kw)
    if case.form == "ids":  # all different, spread over the banks
        return (torch.arange(n) * max(1, k // n)).remainder(k).to(kw["device"])
    return torch.softmax(torch.randn(n, k, **kw), dim=1)


def median_ms(
    fn: Callable[[], object], sync: Callable[[], None], budget_s: float, min_reps: int = 3
) -> float:
    fn()  # warm-up (and cuDNN's algorithm search)
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < 25):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def time_case(case: Case, c: int, h: int, w: int, budget_s: float, naive: bool) -> Result:
    kw = {"device": case.device, "dtype": getattr(torch, case.dtype)}
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(case.n, c, h, w, generator=g).to(**kw)
    weight = (torch.randn(case.k_banks, c, c, 3, 3, generator=g) * 0.03).to(**kw)
    bias = torch.randn(case.k_banks, c, generator=g).to(**kw)
    mix = make_mix(case, h, w, **kw)
    backward = case.passes == "fwd+bwd"
    for t in (x, weight, bias):
        t.requires_grad_(backward)
    grad = torch.randn(case.n, c, h, w, generator=g).to(**kw)

    def run(op: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            out = op()
            if backward:
                torch.autograd.grad(out, (x, weight, bias), grad)

        return step

    def floor_op() -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight[0], bias[0])

    sync = torch.cuda.synchronize if case.device == "cuda" else (lambda: None)
    fused = median_ms(run(lambda: sb.bank_conv2d(x, weight, bias, mix)), sync, budget_s)
    floor = median_ms(run(floor_op), sync, budget_s)
    naive_ms = None
    if naive:
        naive_ms = median_ms(
            run(lambda: sb.reference_bank_conv2d(x, weight, bias, mix)), sync, budget_s / 2, 1
        )
    flops = 2 * case.n * c * c * 9 * h * w * (3 if backward else 1)
    return Result(
        **asdict(case),
        fused_ms=fused,
        floor_ms=floor,
        naive_ms=naive_ms,
        tflops=flops / fused / 1e9,
    )


def cases(device: str, quick: bool) -> tuple[list[Case], int, int]:
    if device == "cpu":
        ns, banks, dtypes, h, w = (1, 4), (1, 4, 16), ("float32",), 192, 256
    else:
        ns, banks, dtypes, h, w = (8,), (1, 4, 16, 50), ("bfloat16", "float32"), 256, 256
    if quick:
        ns, banks, dtypes = ns[-1:], (1, 4), dtypes[:1]
    out = []
    for dtype in dtypes:
        for passes in ("fwd", "fwd+bwd"):
            for n in ns:
                for k in banks:
                    for form in ("plain",) if k == 1 else FORMS:
                        out.append(Case(device, dtype, n, k, form, passes))
    return out, h, w


def table(results: list[Result]) -> str:
    lines = [
        "| device | dtype | pass | N | K | mix | fused ms | conv2d ms | naive ms | fused/conv2d | naive/fused | TFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        naive = f"{r.naive_ms:.1f}" if r.naive_ms else "-"
        speedup = f"{r.naive_ms / r.fused_ms:.2f}x" if r.naive_ms else "-"
        lines.append(
            f"| {r.device} | {r.dtype} | {r.passes} | {r.n} | {r.k_banks} | {r.form} "
            f"| {r.fused_ms:.1f} | {r.floor_ms:.1f} | {naive} | {r.fused_ms / r.floor_ms:.2f} "
            f"| {speedup} | {r.tflops:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of repeats per timing")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive route (slow)")
    parser.add_argument("--quick", action="store_true", help="a small subset of the cases")
    parser.add_argument("--json", help="where to write the results (default bench/results/)")
    args = parser.parse_args(argv)

    info = sb.backend_info()
    if args.device == "cuda" and not (torch.cuda.is_available() and info.get("cuda")):
        print(
            f"CUDA benchmark skipped: torch.cuda.is_available()={torch.cuda.is_available()}, "
            f"backend_info()={info}",
            file=sys.stderr,
        )
        return 0
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    todo, h, w = cases(args.device, args.quick)
    print(
        f"# bank_conv2d on {args.device}: C=Cout={args.channels}, {h}x{w}, k=3, reflect; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    results = []
    for i, case in enumerate(todo, 1):
        r = time_case(case, args.channels, h, w, args.budget, naive=not args.no_naive)
        results.append(r)
        print(
            f"[{i}/{len(todo)}] {case.passes} N={case.n} K={case.k_banks} {case.form}: "
            f"fused {r.fused_ms:.1f} ms, conv2d {r.floor_ms:.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    print(table(results))
    path = args.json or os.path.join(
        os.path.dirname(__file__), "results", f"bank_conv_{args.device}.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(
            {
                "backend": info,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "results": [asdict(r) for r in results],
            },
            f,
            indent=1,
        )
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
