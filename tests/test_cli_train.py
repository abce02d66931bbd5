"""The train and add_style command lines: they work, and a user's mistake exits 2 with a message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylebank_fast import add_style, load_model, train
from stylebank_fast import vgg as vgg_module
from stylebank_fast.vgg import VGG16_ENV


@pytest.fixture
def common(vgg16_random_weights) -> list[str]:
    return [
        "--vgg-weights",
        str(vgg16_random_weights),
        "--size",
        "32",
        "--batch",
        "1",
        "--device",
        "cpu",
    ]


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_train_resume_and_add_style(content_dir, style_images, common, tmp_path, capsys):
    model = tmp_path / "m.sbk"
    args = ["--content", str(content_dir), "--style", str(style_images[0]), "--out", str(model)]
    assert train.main([*args, *common, "--steps", "2", "--name", "lines"]) == 0
    err = capsys.readouterr().err
    assert "step 2/2" in err and "steps/s" in err and "left" in err and "saved" in err
    assert train.main(["--resume", str(model), "--out", str(model), "--steps", "3"]) == 0
    assert "step 3/3" in capsys.readouterr().err
    plus = tmp_path / "plus.sbk"
    argv = ["--model", str(model), "--style", str(style_images[1]), "--out", str(plus)]
    assert add_style.main([*argv, *common, "--steps", "1"]) == 0  # content: from the model
    assert load_model(plus).style_names == ["lines", "checks"]


def test_unreadable_content_files_are_skipped(content_dir, style_images, common, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("broken.jpg", "empty.png", "zero.webp"):
        (folder / name).write_bytes(b"not an image" if name == "broken.jpg" else b"")
    (folder / "good.png").write_bytes((content_dir / "b.png").read_bytes())
    args = ["--content", str(folder), "--style", str(style_images[0]), "--out", str(tmp_path / "m")]
    with pytest.warns(RuntimeWarning, match="skipping cannot read image"):
        assert train.main([*args, *common, "--steps", "3"]) == 0


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_folder", "content folder not found"),
        ("empty_folder", "no images in"),
        ("bad_style", "cannot read image .*bad.jpg"),
        ("missing_style", "style image not found"),
        ("no_style", "--style needed"),
        ("missing_vgg", "no VGG-16 weights found.*vgg16-397923af.pth"),
        ("vgg_with_effnet", "--vgg-weights goes with --loss-net vgg16"),
        ("bad_device", "unknown device 'toaster'"),
        ("resume_missing", "model file not found"),
    ],
)
def test_user_errors_exit_2(
    case, message, content_dir, style_images, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached VGG-16
    monkeypatch.delenv(VGG16_ENV, raising=False)
    monkeypatch.setattr(vgg_module, "SHIPPED_VGG16", tmp_path / "not_shipped.pth")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    vgg = tmp_path / "vgg.pth"
    vgg.write_bytes(b"")  # existence is enough for the errors checked before loading it
    content, style = str(content_dir), str(style_images[0])
    extra: list[str] = ["--vgg-weights", str(vgg)]
    if case == "missing_folder":
        content = str(tmp_path / "nowhere")
    elif case == "empty_folder":
        content = str(tmp_path / "empty")
    elif case == "bad_style":
        style = str(tmp_path / "bad.jpg")
    elif case == "missing_style":
        style = str(tmp_path / "nowhere.jpg")
    elif case == "missing_vgg":
        extra = []
    elif case == "vgg_with_effnet":
        extra += ["--loss-net", "efficientnet_lite0"]
    elif case == "bad_device":
        extra += ["--device", "toaster"]
    argv = ["--content", content, "--style", style, "--out", str(tmp_path / "m"), *extra]
    if case == "no_style":
        argv = ["--content", content, "--out", str(tmp_path / "m")]
    elif case == "resume_missing":
        argv = ["--resume", str(tmp_path / "nowhere.sbk"), "--out", str(tmp_path / "m")]
    assert train.main([*argv, "--steps", "1", "--size", "32"]) == 2
    err = _error(capsys)
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err


def test_add_style_errors_exit_2(style_images, tmp_path, capsys):
    (tmp_path / "junk.sbk").write_bytes(b"junk")
    argv = ["--model", str(tmp_path / "junk.sbk"), "--style", str(style_images[0]), "--out", "x"]
    assert add_style.main(argv) == 2
    assert "junk.sbk is not a readable model file" in _error(capsys)
    assert add_style.main(["--style", "a.png", "--out", "x"]) == 2  # argparse: --model missing
    assert "required: --model" in _error(capsys)


def test_real_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    argv = [
        "--content",
        str(tmp_path / "nowhere"),
        "--style",
        "x.jpg",
        "--out",
        str(tmp_path / "m"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "stylebank_fast.train", *argv],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("python -m stylebank_fast.train: error: content folder not found")
    assert "Traceback" not in done.stderr


def test_an_unwritable_out_fails_before_the_first_step(
    content_dir, style_images, common, tmp_path, capsys
):
    args = ["--content", str(content_dir), "--style", str(style_images[0]), *common]
    for out, message in (
        (tmp_path / "missing" / "m.sbk", "does not exist"),
        (tmp_path, "is a directory"),
    ):
        assert train.main([*args, "--steps", "1", "--out", str(out)]) == 2
        err = _error(capsys)
        assert message in err and "step 1/1" not in err


def test_add_style_inherits_the_loss_network_of_the_model(
    content_dir, style_images, efficientnet_random_weights, tmp_path, monkeypatch
):
    from stylebank_fast.checkpoint import load_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG-16 to fall back on
    monkeypatch.delenv(VGG16_ENV, raising=False)
    model, plus = tmp_path / "m.sbk", tmp_path / "plus.sbk"
    small = ["--size", "32", "--batch", "1", "--device", "cpu", "--steps", "1"]
    argv = ["--content", str(content_dir), "--style", str(style_images[0]), "--out", str(model)]
    effnet = [
        "--loss-net",
        "efficientnet_lite0",
        "--loss-net-weights",
        str(efficientnet_random_weights),
    ]
    assert train.main([*argv, *effnet, *small]) == 0
    argv = ["--model", str(model), "--style", str(style_images[1]), "--out", str(plus)]
    assert add_style.main([*argv, *small]) == 0
    assert load_checkpoint(plus)[1]["training"]["config"]["loss_net"] == "efficientnet_lite0"


def test_samples_at_each_checkpoint(content_dir, style_images, common, tmp_path, capsys):
    from PIL import Image

    model = tmp_path / "m.sbk"
    photo = sorted(content_dir.rglob("*.png"))[0]
    argv = ["--content", str(content_dir), "--style", *map(str, style_images), "--out", str(model)]
    argv += [*common, "--steps", "4", "--checkpoint-every", "2", "--sample", str(photo)]
    assert train.main(argv) == 0
    samples = sorted((tmp_path / "m.sbk.samples").iterdir())
    assert [p.name for p in samples] == ["step_000002.jpg", "step_000004.jpg"]
    width, height = Image.open(photo).size
    strip = Image.open(samples[-1])
    assert strip.size[0] == 3 * width and strip.size[1] > height  # photo + 2 styles, captions
    assert f"sample: {samples[-1]}" in capsys.readouterr().err
    resume = ["--resume", str(model), "--out", str(model), "--steps", "5", "--sample", str(photo)]
    assert train.main(resume) == 0
    assert (tmp_path / "m.sbk.samples" / "step_000005.jpg").is_file()
