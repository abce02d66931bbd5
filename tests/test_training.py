"""Training: losses fall, (T+1) alternation, exact resume, Ctrl-C, incremental learning."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from stylebank_fast import (
    CheckpointError,
    StyleBankError,
    TrainConfig,
    add_styles,
    load_model,
    resume_training,
    train_model,
)
from stylebank_fast.checkpoint import load_checkpoint


@pytest.fixture
def config(small_train_config) -> TrainConfig:
    return small_train_config


def _params(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_losses_fall_on_a_synthetic_style(config, tmp_path):
    config.styles, config.steps, config.lr, config.batch = config.styles[:1], 30, 1e-2, 1
    result = train_model(config, tmp_path / "m.sbk")
    totals = [step["total"] for step in result.losses if "total" in step]
    assert len(totals) == 20  # T=2: two stylizing steps, then one auto-encoder step
    assert sum(totals[-4:]) < 0.7 * sum(totals[:4])
    identity = [step["identity"] for step in result.losses if "identity" in step]
    assert len(identity) == 10 and all(v > 0 for v in identity)


def test_resume_continues_exactly(config, tmp_path):
    whole = train_model(config, tmp_path / "whole.sbk")
    config.steps = 4
    first = train_model(config, tmp_path / "part.sbk")
    rest = resume_training(tmp_path / "part.sbk", tmp_path / "part.sbk", steps=6)
    assert rest.step == 6 and len(rest.losses) == 2
    assert first.losses + rest.losses == whole.losses
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, rest.model.state_dict()[key]), key


def test_checkpoints_along_the_way(config, tmp_path):
    seen = []

    def on_progress(step, steps, losses, seconds):
        if (tmp_path / "m.sbk").exists():
            seen.append((step, load_checkpoint(tmp_path / "m.sbk")[1]["training"]["step"]))

    train_model(config, tmp_path / "m.sbk", on_progress=on_progress)
    assert seen[0] == (5, 4)  # the checkpoint of step 4 exists from then on
    assert load_checkpoint(tmp_path / "m.sbk")[1]["training"]["step"] == 6


def test_ctrl_c_saves_and_resumes(config, tmp_path):
    def interrupt(step, steps, losses, seconds):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN where a shell started pytest with `&`
    stopped = train_model(config, tmp_path / "m.sbk", on_progress=interrupt)
    assert stopped.interrupted and stopped.step == 2
    assert load_checkpoint(tmp_path / "m.sbk")[1]["training"]["step"] == 2
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    rest = resume_training(tmp_path / "m.sbk", tmp_path / "m.sbk")
    assert not rest.interrupted and rest.step == 6


def test_a_step_moves_only_the_banks_it_used(config, tmp_path):
    config.styles = config.styles * 3  # 6 banks, batch 2: at most 2 are used
    config.names = [f"s{i}" for i in range(6)]
    config.steps = 1
    torch.manual_seed(config.seed)
    result = train_model(config, tmp_path / "m.sbk")
    torch.manual_seed(config.seed)
    from stylebank_fast import StyleBankNet

    initial = StyleBankNet(6, style_names=config.names)
    moved = [
        i
        for i in range(6)
        if not torch.equal(initial.bank.weights[i], result.model.bank.weights[i])
    ]
    assert 1 <= len(moved) <= 2
    assert not torch.equal(initial.encoder[0].weight, result.model.encoder[0].weight)


def test_incremental_learning_keeps_old_styles_bitwise(config, tmp_path):
    config.steps, config.styles = 3, config.styles[:1]
    base = train_model(config, tmp_path / "base.sbk").model
    before = _params(base)
    x = torch.rand(2, 3, 28, 36)
    with torch.no_grad():
        old_output = base(x, 0)
    new_style = config.styles[0]
    add = TrainConfig(**{**config.__dict__, "styles": [new_style], "names": ["new"]})
    result = add_styles(tmp_path / "base.sbk", add, tmp_path / "plus.sbk")
    model = load_model(tmp_path / "plus.sbk")
    assert model.style_names == ["stripes", "new"]
    after = model.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key  # E, D and the old bank untouched
    assert not torch.equal(after["bank.weights.1"], result.model.bank.weights[0])
    with torch.no_grad():
        assert torch.equal(model(x, 0), old_output)
        assert torch.equal(model(x, torch.tensor([0, 1]))[0], old_output[0])
    # the incremental run resumes like any other
    more = resume_training(tmp_path / "plus.sbk", tmp_path / "plus.sbk", steps=4)
    assert more.step == 4 and all("identity" not in s for s in more.losses)
    assert torch.equal(more.model.bank.weights[0], model.bank.weights[0])


def test_incremental_names_must_be_new(config, tmp_path):
    config.steps, config.styles = 1, config.styles[:1]
    train_model(config, tmp_path / "base.sbk")
    again = TrainConfig(**{**config.__dict__, "names": ["stripes"]})
    with pytest.raises(StyleBankError, match="already has a style named 'stripes'"):
        add_styles(tmp_path / "base.sbk", again, tmp_path / "plus.sbk")


def test_autoencoder_gradients_rescaled_to_the_stylizing_norm(config, tmp_path, monkeypatch):
    from stylebank_fast import training

    seen = []
    original = training._Run._rescale_autoencoder_grads

    def record(run):
        original(run)
        seen.append(
            (training._grad_norm(list(run.model.encoder.parameters())), run.encoder_grad_norm)
        )

    monkeypatch.setattr(training._Run, "_rescale_autoencoder_grads", record)
    config.steps = 3  # rescaling is on by default
    train_model(config, tmp_path / "m.sbk")
    ((after, target),) = seen  # steps 0, 1 stylize; step 2 is the auto-encoder step
    assert target > 0 and after == pytest.approx(target, rel=1e-4)


def test_bfloat16_steps_track_the_float32_steps(config, tmp_path):
    config.steps = 3
    config.precision = "float32"
    exact = train_model(config, tmp_path / "f32.sbk")
    config.precision = "bfloat16"
    fast = train_model(config, tmp_path / "bf16.sbk")
    for a, b in zip(exact.losses, fast.losses):
        assert a.keys() == b.keys()
        for term in a:
            assert b[term] == pytest.approx(a[term], rel=0.05, abs=1e-4), term
    with pytest.raises(StyleBankError, match="precision"):
        TrainConfig(content="x", styles=["a"], precision="float16")


def test_crops_cover_several_scales(tmp_path):
    from PIL import Image

    from stylebank_fast.data import ContentSampler

    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.float32), (100, 1))  # x as brightness
    Image.fromarray(np.stack([ramp] * 3, -1).astype(np.uint8)).save(tmp_path / "ramp.png")
    sampler = ContentSampler([tmp_path / "ramp.png"], 20, max_scale=2.0)
    crops = sampler.batch(64, torch.Generator().manual_seed(0))
    again = sampler.batch(64, torch.Generator().manual_seed(0))
    assert crops.shape == (64, 3, 20, 20) and torch.equal(crops, again)
    spans = (crops[:, 0, 10].amax(-1) - crops[:, 0, 10].amin(-1)).sort().values
    # the image is cached at a shorter side of 40 (160 wide): a 20 px crop spans 1/8 of the
    # ramp, a 40 px crop 1/4
    assert spans[0] < 0.15 and spans[-1] > 0.2
    single = ContentSampler([tmp_path / "ramp.png"], 20).batch(64, torch.Generator())
    single_spans = single[:, 0, 10].amax(-1) - single[:, 0, 10].amin(-1)
    assert single_spans.max() - single_spans.min() < 0.02  # one scale: 20 of 80 px


def test_training_state_is_versioned_and_reads_files_from_before(config, tmp_path):
    from stylebank_fast.checkpoint import atomic_save

    config.steps = 3
    train_model(config, tmp_path / "m.sbk")
    data = load_checkpoint(tmp_path / "m.sbk")[1]
    assert data["training"]["version"] == 1
    del data["training"]["version"]  # as written before the version was recorded
    atomic_save(data, tmp_path / "old.sbk")
    assert resume_training(tmp_path / "old.sbk", tmp_path / "old.sbk", steps=4).step == 4
    data["training"]["version"] = 7
    atomic_save(data, tmp_path / "future.sbk")
    with pytest.raises(CheckpointError, match="training state version 7"):
        resume_training(tmp_path / "future.sbk", tmp_path / "x.sbk", steps=5)
