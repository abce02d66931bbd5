"""Data-parallel training: two gloo ranks on the CPU (processes this test starts, on the
loopback) against one process on the same combined batch; a crashing rank; Ctrl-C on one rank,
and resuming with another number of ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stylebank_fast import TrainConfig, resume_training, train_model
from stylebank_fast.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"
LIMIT_S = 120  # a whole run of these tiny models takes a few seconds: more is a hang

# Losses of the two ranks (averaged) against one process on their combined batch. Step 1 is
# the same computation on the same weights up to the order of float32 sums (the mean of two
# shard means against one mean: measured 4e-7 relative). The later steps follow Adam updates
# from gradients rounded differently (a convolution's backward over one image per rank, then
# the all-reduce, against one over both), and Adam's first updates are about lr whatever a
# gradient's size, so rounding that flips a near-zero gradient's sign moves its weight by 2 lr:
# the difference grows chaotically, measured 4e-7, 8e-6, 1.5e-4, 3.2e-4 relative at steps 2-5
# (2026-12-02, torch 2.13.0). Broken, the same steps differ by far more: ranks that each step
# on their own gradients 9e-2 from step 2, ranks that drop the banks the other rank used
# 6e-2 from step 4.
FIRST_STEP_REL = 1e-6
LATER_STEPS_REL = 5e-3


@pytest.fixture
def config(content_dir, style_images, vgg16_random_weights) -> TrainConfig:
    styles = [str(style_images[0]), str(style_images[1]), str(style_images[0])]  # 3 banks
    return TrainConfig(
        content=str(content_dir),
        styles=styles,
        loss_net_weights=str(vgg16_random_weights),
        size=32,
        batch=1,
        steps=5,  # T = 2: steps 1, 2, 4, 5 stylize, step 3 trains the auto-encoder
        lr=1e-3,
        precision="float32",
        checkpoint_every=1000,
    )


def _argv(config: TrainConfig, out: Path) -> list[str]:
    return [
        "--content",
        config.content,
        "--style",
        *config.styles,
        "--loss-net-weights",
        str(config.loss_net_weights),
        *("--size", str(config.size), "--batch", str(config.batch), "--lr", str(config.lr)),
        *("--steps", str(config.steps), "--checkpoint-every", str(config.checkpoint_every)),
        *("--precision", config.precision, "--device", "cpu", "--out", str(out)),
    ]


def _start(argv: list[str], tmp_path: Path, ranks: int = 2, **env: str) -> list[subprocess.Popen]:
    loopback = "lo0" if sys.platform == "darwin" else "lo"
    common = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORLD_SIZE": str(ranks),
        "SB_TEST_STORE": str(tmp_path / "store"),
        "GLOO_SOCKET_IFNAME": loopback,
        "OMP_NUM_THREADS": "1",
        **env,
    }
    return [
        subprocess.Popen(
            [sys.executable, str(WORKER), *argv],
            env={**common, "RANK": str(rank)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(ranks)
    ]


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    """Exit codes and stderr of every rank; kills them all if any is still running at the limit."""
    deadline = time.monotonic() + LIMIT_S
    try:
        results = []
        for proc in procs:
            _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, err))
        return results
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"the ranks were still running after {LIMIT_S} s (a hang)")


def _losses(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_ranks_match_one_process_on_their_combined_batch(config, tmp_path):
    out, log = tmp_path / "out" / "two.sbk", tmp_path / "losses.jsonl"
    out.parent.mkdir()
    procs = _start(_argv(config, out), tmp_path, SB_TEST_LOSSES=str(log))
    single = train_model(config, tmp_path / "one.sbk", shards_per_rank=2)  # meanwhile
    for code, err in _finish(procs):
        assert code == 0, err
    assert [p.name for p in out.parent.iterdir()] == ["two.sbk"]  # rank 0's model only
    two = _losses(log)
    assert [(s["step"], s["rank"]) for s in two] == [(i, 0) for i in range(1, 6)]
    assert [s.keys() - {"step", "rank"} for s in two] == [s.keys() for s in single.losses]
    for i, (mine, theirs) in enumerate(zip(two, single.losses)):
        rel = FIRST_STEP_REL if i == 0 else LATER_STEPS_REL
        for term, value in theirs.items():
            assert mine[term] == pytest.approx(value, rel=rel), (i + 1, term)
    state = load_checkpoint(out)[1]["training"]
    assert state["step"] == 5 and state["shards"] == 2


def test_each_shard_draws_its_own_images(content_dir):
    from stylebank_fast.data import ContentSampler, find_images
    from stylebank_fast.training import _step_generator

    sampler = ContentSampler(find_images(content_dir), 32, 2.0)
    shards = [sampler.batch(2, _step_generator(3, 7, shard)) for shard in range(4)]
    assert all(not torch.equal(a, b) for i, a in enumerate(shards) for b in shards[:i])
    # shard 0 is the stream of one process, as checkpoints written before shards were resumed
    legacy = sampler.batch(2, torch.Generator().manual_seed(3 * 1_000_003 + 7))
    assert torch.equal(shards[0], legacy)


def test_a_crashing_rank_ends_the_run(config, tmp_path):
    config.steps = 20
    procs = _start(_argv(config, tmp_path / "m.sbk"), tmp_path, SB_TEST_CRASH="1:3")
    (code0, err0), (code1, err1) = _finish(procs)
    assert code1 != 0 and "RuntimeError: injected crash on rank 1 in step 3" in err1
    assert code0 == 1 and "Traceback" not in err0
    assert "error: rank 0 of 2 lost the other ranks" in err0
    assert "its message is in its output" in err0


def test_ctrl_c_on_one_rank_stops_all_and_resumes_with_one(config, tmp_path):
    config.steps, out, log = 10_000, tmp_path / "m.sbk", tmp_path / "losses.jsonl"
    procs = _start(_argv(config, out), tmp_path, SB_TEST_LOSSES=str(log))
    deadline = time.monotonic() + LIMIT_S
    while not (log.is_file() and len(_losses(log)) >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGINT)  # rank 1 only: rank 0 hears of it in the next step
    (code0, err0), (code1, err1) = _finish(procs)
    assert (code0, code1) == (130, 130), err0 + err1
    step = load_checkpoint(out)[1]["training"]["step"]
    assert f"stopped at step {step}; saved" in err0 and "stopped" not in err1
    assert len(_losses(log)) == step
    with pytest.warns(RuntimeWarning, match="2 shard.* effective batch goes from 2 to 1"):
        more = resume_training(out, out, steps=step + 1)
    assert more.step == step + 1 and not more.interrupted
    assert load_checkpoint(out)[1]["training"]["shards"] == 1


def test_shards_per_rank_on_the_command_line(config, tmp_path, capsys):
    from stylebank_fast import add_style, train

    out = tmp_path / "m.sbk"
    config.steps = 1
    assert train.main([*_argv(config, out), "--shards-per-rank", "2"]) == 0
    assert load_checkpoint(out)[1]["training"]["shards"] == 2
    argv = ["--model", str(out), "--style", config.styles[0], "--out", str(tmp_path / "p.sbk")]
    assert add_style.main([*argv, "--fast", "--shards-per-rank", "2"]) == 2
    assert "--fast runs in one process" in capsys.readouterr().err
