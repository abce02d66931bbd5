"""Training throughput with 1 and more processes (torchrun, gloo on the CPU, NCCL on GPUs).

Runs `python -m stylebank_fast.train` (one process) and `torchrun --nproc-per-node R -m
stylebank_fast.train` on the package's photos (two of the example photos as styles: the
timing does not depend on what the styles look like), and prints, per configuration, seconds
per step and images per second after the first step (measured from the progress lines).

  same batch    the effective batch kept at --batch: each of R ranks takes --batch / R
  batch / rank  each rank takes --batch: R times the images per step

On the CPU, each of R processes gets cores / R threads; one process runs with every core and
with one. On GPUs, R processes take R GPUs (`--ranks 1` where there is one GPU). Configurations alternate, --repeats times, and the medians are printed (the machine
may be shared). The last column compares images per second with the first row's.

    python bench/train_ranks.py [--size 256] [--batch 4] [--steps 20] [--ranks 1 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "stylebank_fast" / "assets" / "photos"
STYLES = [
    ROOT / "examples" / "photos" / "golden_gate.jpg",
    ROOT / "examples" / "photos" / "venice_boat.jpg",
]
LINE = re.compile(r"^step (\d+)/\d+ \|.*\| ([\d.]+) steps/s", re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds_per_step(
    ranks: int, threads: int, batch: int, args: argparse.Namespace, out: Path
) -> float:
    """One run; seconds per step after step 1 (the warm-up), from the progress lines."""
    train = [
        *("--content", str(PHOTOS), "--style", *map(str, STYLES), "--out", str(out)),
        *("--size", str(args.size), "--batch", str(batch), "--steps", str(args.steps)),
        *("--checkpoint-every", str(10 * args.steps), "--device", args.device),
    ]
    if ranks == 1:
        command = [sys.executable, "-m", "stylebank_fast.train", *train]
    else:
        launch = ["--nproc-per-node", str(ranks), "--master-addr", "127.0.0.1"]
        launch += ["--master-port", str(_free_port())]
        command = [sys.executable, "-m", "torch.distributed.run", *launch]
        command += ["-m", "stylebank_fast.train", *train]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    # Progress prints `step i/n | ... | rate steps/s`, the rate since the first step
    points = [(int(i), int(i) / float(rate)) for i, rate in LINE.findall(done.stderr)]
    (first_step, first_s), (last_step, last_s) = points[0], points[-1]  # step 1 is always shown
    if last_step == first_step:
        raise SystemExit("too few progress lines: give more --steps")
    return (last_s - first_s) / (last_step - first_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    # (ranks, threads per rank, batch per rank): one process on every core, and on one core
    # (the per-core rate R processes can at best multiply); per R: the batch split, and
    # --batch per rank
    one_core = cores > 1 and args.device == "cpu"
    configs = [(1, cores, args.batch), *([(1, 1, args.batch)] if one_core else [])]
    for ranks in (r for r in args.ranks if r > 1):
        threads = max(1, cores // ranks)
        configs += [(ranks, threads, max(1, args.batch // ranks)), (ranks, threads, args.batch)]
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for config in configs:
                out = Path(folder) / "m.sbk"
                times[config].append(seconds_per_step(*config, args, out))
                print(f"repeat {repeat + 1}: {config}: {times[config][-1]:.3f} s/step", flush=True)
    print(f"\n{args.size} px, {args.device}, {cores} cores, medians of {args.repeats}")
    print("| ranks | threads/rank | batch/rank | images/step | s/step | images/s | vs row 1 |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for config in configs:
        ranks, threads, batch = config
        s = statistics.median(times[config])
        rate = ranks * batch / s
        base = base or rate
        print(
            f"| {ranks} | {threads} | {batch} | {ranks * batch} | {s:.2f} | {rate:.2f} | {rate / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
