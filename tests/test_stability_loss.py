"""The temporal stability term (synthetic camera motion) and fine-tuning from a model (--init)."""

from __future__ import annotations

import pytest
import torch

from stylebank_fast import StyleBankError, TrainConfig, load_model, resume_training, train_model
from stylebank_fast.checkpoint import load_checkpoint, save_model
from stylebank_fast.cli.train import main as train_main
from stylebank_fast.stability_loss import Motion, SyntheticMotion, move, stability_loss


@pytest.fixture
def config(small_train_config) -> TrainConfig:
    small_train_config.steps, small_train_config.checkpoint_every = 3, 10
    return small_train_config


def _images(n=2, h=40, w=52, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_an_integer_shift_moves_pixels_exactly():
    images = _images()
    theta = torch.tensor([[[1.0, 0.0, 2 * 3 / 52], [0.0, 1.0, -2 * 2 / 40]]]).repeat(2, 1, 1)
    moved, inside = move(images, theta)  # output (y, x) samples input (y - 2, x + 3)
    assert torch.allclose(moved[..., 2:, :-3], images[..., :-2, 3:], atol=1e-5)
    assert inside[..., 3:-4, 1:-4].all() and not inside[..., 0, :].any()
    assert not inside[..., -1].any()


def test_motions_are_small_random_and_reproducible():
    motion = SyntheticMotion()
    a = motion.draw(64, 40, 52, torch.Generator().manual_seed(1))
    b = motion.draw(64, 40, 52, torch.Generator().manual_seed(1))
    assert torch.equal(a.theta, b.theta) and torch.equal(a.noise, b.noise)
    shift_px = a.theta[:, 0, 2].abs() * 52 / 2
    assert shift_px.max() <= motion.shift and shift_px.std() > 1
    linear = a.theta[:, :, :2]
    assert (linear - torch.eye(2)).abs().max() < 0.1 and (linear - torch.eye(2)).abs().max() > 0
    assert 0 < a.noise.std() < motion.noise
    joined = Motion.cat([a, b])
    assert joined.theta.shape == (128, 2, 3) and joined.noise.shape == (128, 3, 40, 52)


def test_the_term_is_zero_for_a_motion_equivariant_stylization_only():
    images = _images()
    motion = SyntheticMotion(noise=0).draw(2, 40, 52, torch.Generator().manual_seed(2))

    def pointwise(x):  # an affine colour map commutes with any motion and its interpolation
        return 0.2 + 0.5 * x

    assert stability_loss(pointwise, images, pointwise(images), motion) < 1e-6
    stripes = (torch.arange(52) % 4 == 0).float()  # a pattern fixed to the frame, as the grid

    def pinned(x):
        return (x + stripes).clamp(0, 1)

    assert stability_loss(pinned, images, pinned(images), motion) > 0.05
    noisy = SyntheticMotion().draw(2, 40, 52, torch.Generator().manual_seed(2))
    assert stability_loss(pointwise, images, pointwise(images), noisy) > 1e-3  # noise shows


def test_training_with_the_term_reports_it_and_resumes(config, tmp_path):
    config.stability_weight = 5.0
    result = train_model(config, tmp_path / "m.sbk")
    stylizing = [step for step in result.losses if "total" in step]
    assert stylizing and all(step["stability"] > 0 for step in stylizing)
    for step in stylizing:  # the total holds the weighted term
        rest = step["content"] + 100 * step["style"] + 10 * step["tv"] + 100 * step["range"]
        assert step["total"] == pytest.approx(rest + 5.0 * step["stability"], rel=1e-4)
    config.steps = 2
    train_model(config, tmp_path / "part.sbk")
    resumed = resume_training(tmp_path / "part.sbk", tmp_path / "part.sbk", steps=3)
    assert resumed.losses == result.losses[2:]
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_checkpoints_written_before_the_new_settings_resume(config, tmp_path):
    config.steps = 2
    train_model(config, tmp_path / "old.sbk")
    model, data = load_checkpoint(tmp_path / "old.sbk")
    for key in ("stability_weight", "init"):  # what an older version wrote
        del data["training"]["config"][key]
    save_model(model, tmp_path / "old.sbk", training=data["training"])
    assert resume_training(tmp_path / "old.sbk", tmp_path / "old.sbk", steps=3).step == 3


def test_init_starts_from_the_model_and_its_banks_by_name(config, tmp_path):
    config.steps, config.seed = 1, 1
    base = train_model(config, tmp_path / "base.sbk").model
    config.names, config.seed, config.lr = ["other", base.style_names[1]], 0, 1e-30
    config.init = str(tmp_path / "base.sbk")
    tuned = train_model(config, tmp_path / "tuned.sbk").model
    for part in ("encoder", "decoder"):
        for (key, a), b in zip(
            getattr(base, part).state_dict().items(), getattr(tuned, part).state_dict().values()
        ):
            assert torch.allclose(a, b, atol=1e-12), key
    assert torch.allclose(tuned.bank.weights[1], base.bank.weights[1], atol=1e-12)
    assert not torch.allclose(tuned.bank.weights[0], base.bank.weights[0], atol=1e-3)


def test_init_and_stability_errors(config, tmp_path, capsys):
    config.steps = 1
    train_model(config, tmp_path / "base.sbk")
    k5 = TrainConfig(**{**config.__dict__, "kernel_size": 5, "init": str(tmp_path / "base.sbk")})
    with pytest.raises(StyleBankError, match="same --kernel-size"):
        train_model(k5, tmp_path / "k5.sbk")
    with pytest.raises(StyleBankError, match="stability_weight"):
        TrainConfig(**{**config.__dict__, "stability_weight": -1})
    with pytest.raises(StyleBankError, match="--resume continues"):
        resume_training(tmp_path / "base.sbk", tmp_path / "b.sbk", overrides={"init": "x.sbk"})
    argv = ["--resume", str(tmp_path / "base.sbk"), "--init", "x.sbk", "--out"]
    assert train_main([*argv, str(tmp_path / "y.sbk")]) == 2
    assert "--resume continues" in capsys.readouterr().err
    assert load_model(tmp_path / "base.sbk").n_styles == 2
