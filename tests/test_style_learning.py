"""Any painting as a style: the fast bank learner, the cache, Stylizer.learn_style and the
command lines (--style-image, add_style --fast)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import _save, requires_extension, synthetic_photo, synthetic_style
from PIL import Image

import stylebank_fast as sb
from stylebank_fast import style_learning as style_learning_module
from stylebank_fast.cli import add_style as add_style_cli
from stylebank_fast.cli import stylize as stylize_cli
from stylebank_fast.errors import StyleBankError
from stylebank_fast.imageio import open_image, to_tensor
from stylebank_fast.losses import build_loss_network
from stylebank_fast.painting_styles import add_painting_style
from stylebank_fast.style_cache import CACHE_ENV, cache_dir
from stylebank_fast.style_learning import SHIPPED_PHOTOS, LearnSettings, learn_bank

pytestmark = requires_extension

# tiny settings: a few steps on a few small crops
TINY = functools.partial(
    LearnSettings, steps=3, crop=32, crops=4, batch=2, style_size=32, time_budget_s=0
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def model(tiny_model_path) -> sb.StyleBankNet:
    return sb.load_model(tiny_model_path)


@pytest.fixture(scope="module")
def loss_net(vgg16_random_weights):
    return build_loss_network("vgg16", str(vgg16_random_weights))


@pytest.fixture
def painting(tmp_path) -> Path:
    path = tmp_path / "my_painting.png"
    return _save(synthetic_style("stripes"), path)


def test_the_package_ships_photos_with_credits():
    photos = sorted(SHIPPED_PHOTOS.glob("*.jpg"))
    credits = (SHIPPED_PHOTOS / "CREDITS.md").read_text()
    assert len(photos) == 32
    for photo in photos:
        assert f"`{photo.name}`" in credits
        assert min(Image.open(photo).size) == 256


def test_learn_bank_trains_only_a_new_bank(model, loss_net, painting):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.decoder.requires_grad_(False)  # a mix of flags, to be given back as they were
    flags = [p.requires_grad for p in model.parameters()]
    learnt = learn_bank(model, _tensor(painting), loss_net, TINY(steps=4))
    assert learnt.steps == 4 and not learnt.interrupted and len(learnt.losses) == 4
    identity = torch.zeros_like(learnt.weight)
    identity[:, :, 1, 1] = torch.eye(128)
    assert not torch.equal(learnt.weight, identity)  # it moved
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in model.parameters()] == flags


def test_learning_stops_when_the_loss_stops_improving_or_time_runs_out(model, loss_net, painting):
    flat = learn_bank(model, _tensor(painting), loss_net, TINY(steps=500, lr=1e-12, patience=5))
    assert flat.steps == 25  # kept from step 20 on, then 5 steps without improvement
    timed = learn_bank(model, _tensor(painting), loss_net, TINY(steps=500, time_budget_s=1e-3))
    assert timed.steps == 5  # the step time is known after 5 steps: no time left


def test_ctrl_c_keeps_the_best_bank_so_far_and_caches_nothing(model, loss_net, painting, cache):
    def interrupt(step, steps, losses, seconds):
        if step == 2:
            raise KeyboardInterrupt

    learnt = add_painting_style(model, painting, None, TINY(), interrupt, loss_net)
    assert learnt.interrupted and learnt.steps == 2 and learnt.cache_file is None
    assert model.style_names[-1] == "my_painting"
    assert not cache.exists() or not list(cache.iterdir())


def test_old_styles_are_bitwise_unchanged_and_the_new_one_serves_every_form(
    model, loss_net, painting
):
    photo = torch.rand(2, 3, 36, 44, generator=torch.Generator().manual_seed(0))
    stylizer = sb.Stylizer(model, device="cpu")
    old = {name: stylizer.stylize(photo, style=name) for name in stylizer.list_styles()}
    learnt = add_painting_style(model, painting, None, TINY(), False, loss_net)
    assert learnt.name == "my_painting" and stylizer.list_styles()[-1] == "my_painting"
    for name, out in old.items():
        assert torch.equal(stylizer.stylize(photo, style=name), out)
    new = stylizer.stylize(photo, style="my_painting")
    assert not torch.equal(new, old[model.style_names[0]])
    blend = stylizer.stylize(photo, style={"my_painting": 0.5, model.style_names[0]: 0.5})
    assert not torch.equal(blend, new)
    labels = (torch.arange(44) >= 22).long().expand(36, 44).numpy()
    halves = stylizer.stylize(photo, regions=labels, region_styles=[0, "my_painting"])
    assert halves.shape == photo.shape
    with torch.no_grad():  # a batch of mixed styles in one fused call
        ids = torch.tensor([learnt.index, 0])
        mixed = model(photo, ids)
        assert torch.allclose(mixed[0], model(photo[:1], learnt.index)[0], atol=1e-5)


def test_the_cache_returns_the_same_bank_and_relearns_a_corrupt_entry(
    tiny_model_path, loss_net, painting
):
    first_model = sb.load_model(tiny_model_path)
    first = add_painting_style(first_model, painting, None, TINY(), False, loss_net)
    assert not first.from_cache and first.cache_file.is_file()
    again_model = sb.load_model(tiny_model_path)
    again = add_painting_style(again_model, painting, "renamed", TINY(), False, loss_net)
    assert again.from_cache and again.steps == 0 and again.name == "renamed"
    assert torch.equal(first_model.bank.weights[first.index], again_model.bank.weights[again.index])
    # another file with the same content is the same painting
    copy = painting.parent / "copy.png"
    copy.write_bytes(painting.read_bytes())
    assert add_painting_style(
        sb.load_model(tiny_model_path), copy, None, TINY(), False, loss_net
    ).from_cache
    # other settings or another painting: another entry
    other = add_painting_style(
        sb.load_model(tiny_model_path), painting, None, TINY(steps=2), False, loss_net
    )
    assert not other.from_cache and other.cache_file != first.cache_file

    data = bytearray(first.cache_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte in the middle of the tensors
    first.cache_file.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="relearning"):
        relearnt = add_painting_style(
            sb.load_model(tiny_model_path), painting, None, TINY(), False, loss_net
        )
    assert not relearnt.from_cache
    assert add_painting_style(
        sb.load_model(tiny_model_path), painting, None, TINY(), False, loss_net
    ).from_cache


def test_a_name_the_model_has_is_refused(model, loss_net, painting):
    with pytest.raises(StyleBankError, match="already has a style named"):
        add_painting_style(model, painting, model.style_names[0], TINY(), False, loss_net)


def test_a_pil_image_is_a_painting_too(model, loss_net):
    learnt = add_painting_style(
        model, _pil(synthetic_style("checks")), None, TINY(), False, loss_net
    )
    assert learnt.name.startswith("painting_") and learnt.cache_file.is_file()


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "stylebank_fast"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "stylebank_fast"


@pytest.fixture
def small_defaults(monkeypatch, vgg16_random_weights):
    """The Stylizer and the command lines learn with tiny settings and a random VGG-16."""
    monkeypatch.setattr(style_learning_module, "LearnSettings", TINY)  # the Stylizer's
    monkeypatch.setattr(add_style_cli, "LearnSettings", TINY)
    monkeypatch.setenv("STYLEBANK_VGG16", str(vgg16_random_weights))


def test_stylizer_learn_style(model, painting, small_defaults, capsys):
    stylizer = sb.Stylizer(model, device="cpu")
    name = stylizer.learn_style(painting, steps=2)
    assert name == "my_painting" and stylizer.learnt_styles[name].steps == 2
    assert "step 2/2" in capsys.readouterr().err  # progress
    photo = _pil(synthetic_photo(0))
    assert stylizer.stylize(photo, style=name).size == photo.size


def test_cli_style_image_learns_then_loads_from_the_cache(
    tiny_model_path, painting, small_defaults, tmp_path, capsys
):
    photo = tmp_path / "photo.png"
    _save(synthetic_photo(1), photo)
    argv = [str(photo), "--model", str(tiny_model_path), "--style-image", str(painting)]
    assert stylize_cli.main([*argv, "-o", str(tmp_path / "a.png"), "--device", "cpu"]) == 0
    assert "learnt style 'my_painting'" in capsys.readouterr().err
    blend = ["--style", "my_painting:0.5,0:0.5", "--style-name", "my_painting"]
    assert stylize_cli.main([*argv, *blend, "-o", str(tmp_path / "b.png")]) == 0
    assert "from the cache" in capsys.readouterr().err
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--style-image", "nowhere.png"], "--style-image nowhere.png: no such file"),
        (["--style-image", "P", "--style-name", "a", "--style-name", "b"], "2 --style-name for 1"),
        (["--style-image", "P", "--style-steps", "0"], "--style-steps must be >= 1"),
    ],
)
def test_cli_style_image_mistakes_exit_2(
    tiny_model_path, painting, tmp_path, capsys, extra, message
):
    photo = tmp_path / "photo.png"
    _save(synthetic_photo(1), photo)
    extra = [str(painting) if a == "P" else a for a in extra]
    argv = [str(photo), "-o", str(tmp_path / "o.png"), "--model", str(tiny_model_path), *extra]
    assert stylize_cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_add_style_fast_writes_a_model_with_the_new_style(
    tiny_model_path, painting, small_defaults, tmp_path, capsys, vgg16_random_weights
):
    out = tmp_path / "more.sbk"
    argv = ["--model", str(tiny_model_path), "--style", str(painting), "--out", str(out)]
    assert add_style_cli.main([*argv, "--fast", "--steps", "2"]) == 0
    base, grown = sb.load_model(tiny_model_path), sb.load_model(out)
    assert grown.style_names == [*base.style_names, "my_painting"]
    for i in range(base.n_styles):
        assert torch.equal(base.bank.weights[i], grown.bank.weights[i])
    assert add_style_cli.main([*argv, "--fast", "--size", "64"]) == 2
    assert "--fast does not take --size" in capsys.readouterr().err


def _pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray((array * 255).astype(np.uint8))


def _tensor(path: Path) -> torch.Tensor:
    return to_tensor(open_image(path))[0]
