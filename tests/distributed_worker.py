"""One rank of `python -m stylebank_fast.train ARGS`, for test_distributed.py:

    RANK=r WORLD_SIZE=n SB_TEST_STORE=FILE python tests/distributed_worker.py ARGS

It joins a gloo process group through a file store (torchrun's TCP store listens on every
interface; the tests stay on the loopback), then runs the command line, which trains on the
process group it finds. $SB_TEST_LOSSES: a file where the progress callback (rank 0's only)
appends each step's losses, unrounded, as a JSON line. $SB_TEST_CRASH="RANK:STEP": that rank
raises in that step (counted from 1), as a worker that crashes would.
"""

from __future__ import annotations

import datetime
import json
import os
import sys

import torch.distributed as dist

from stylebank_fast.cli import train, training_options
from stylebank_fast.data import ContentSampler


class RecordingProgress(training_options.Progress):
    def __call__(self, step: int, steps: int, losses: dict, seconds: float) -> None:
        with open(os.environ["SB_TEST_LOSSES"], "a") as f:
            f.write(json.dumps({"step": step, "rank": dist.get_rank(), **losses}) + "\n")
        super().__call__(step, steps, losses, seconds)


def crash_in(step: int) -> None:
    draw, calls = ContentSampler.batch, []

    def batch(self, n, generator):
        calls.append(n)
        if len(calls) == step:
            raise RuntimeError(f"injected crash on rank {dist.get_rank()} in step {step}")
        return draw(self, n, generator)

    ContentSampler.batch = batch


def main() -> int:
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.environ['SB_TEST_STORE']}",
        rank=rank,
        world_size=size,
        timeout=datetime.timedelta(seconds=60),
    )
    if "SB_TEST_LOSSES" in os.environ:
        training_options.Progress = RecordingProgress
    crash_rank, _, step = os.environ.get("SB_TEST_CRASH", "").partition(":")
    if crash_rank == str(rank):
        crash_in(int(step))
    try:
        return train.main(sys.argv[1:])
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
