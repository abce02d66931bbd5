"""python -m stylebank_fast.stylize: inputs and outputs, every option, user errors (exit 2)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import STYLE_NAMES, synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.cli.stylize import main
from stylebank_fast.styles import parse_spec


def _photo(path, seed=0, h=21, w=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((synthetic_photo(seed, h, w) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """A folder with two photos of odd sizes (one nested) and a text file to skip."""
    folder = tmp_path / "in"
    _photo(folder / "a.png", 0, 21, 30)
    _photo(folder / "sub" / "b.jpg", 1, 17, 13)
    (folder / "notes.txt").write_text("skip me")
    return folder


def run(tiny_model_path, *args):
    return main([*map(str, args), "--model", str(tiny_model_path), "--device", "cpu"])


def test_parse_spec():
    assert parse_spec("great_wave") == "great_wave"
    assert parse_spec("2") == "2"
    assert parse_spec("starry_night:0.7,great_wave:0.3") == {
        "starry_night": 0.7,
        "great_wave": 0.3,
    }
    assert parse_spec("a:1+b:2") == {"a": 1.0, "b": 2.0}


def test_one_file_to_a_file_matches_the_api(tiny_model_path, photos, tmp_path):
    out = tmp_path / "out.webp"
    assert run(tiny_model_path, photos / "a.png", "-o", out, "--style", "great_wave") == 0
    with Image.open(out) as image:
        assert image.format == "WEBP" and image.size == (30, 21)
    png = tmp_path / "out.png"
    assert run(tiny_model_path, photos / "a.png", "-o", png, "--style", "1") == 0
    api = sb.Stylizer(tiny_model_path, device="cpu").stylize(photos / "a.png", style=1)
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(api))


def test_folder_to_a_new_folder_with_progress(tiny_model_path, photos, tmp_path, capsys):
    out = tmp_path / "made" / "here"
    blend = "starry_night:0.7,great_wave:0.3"
    assert run(tiny_model_path, photos, "-o", out, "--style", blend) == 0
    assert Image.open(out / "a.png").size == (30, 21)
    assert Image.open(out / "sub" / "b.jpg").size == (13, 17)
    assert not (out / "notes.txt").exists()
    assert "[2/2]" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == ["a.png", "b.jpg", "sub"]  # no temp files


def test_several_files_and_options(tiny_model_path, photos, tmp_path):
    out = tmp_path / "out"
    args = [photos / "a.png", photos / "sub" / "b.jpg", "-o", out, "--style", "mosaic"]
    extra = ["--strength", "0.5", "--preserve-color"]
    assert run(tiny_model_path, *args, *extra) == 0
    assert Image.open(out / "b.jpg").size == (13, 17)


def test_max_size_scales_larger_inputs_down(tiny_model_path, photos, tmp_path):
    out = tmp_path / "out"
    assert run(tiny_model_path, photos, "-o", out, "--style", "0", "--max-size", "20") == 0
    assert Image.open(out / "a.png").size == (20, 14)
    assert Image.open(out / "sub" / "b.jpg").size == (13, 17)  # not larger: unchanged


def test_regions_from_a_mask_of_another_size(tiny_model_path, photos, tmp_path):
    mask = np.zeros((7, 10, 3), np.uint8)
    mask[:, 5:] = (255, 255, 255)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = [photos / "a.png", "-o", out, "--regions", tmp_path / "mask.png"]
    styles = ["--region-styles", "mosaic,starry_night:0.5+great_wave:0.5", "--feather", "3"]
    assert run(tiny_model_path, *args, *styles) == 0
    labels = np.zeros((21, 30), np.int64)
    labels[:, 15:] = 1
    api = sb.Stylizer(tiny_model_path, device="cpu").stylize(
        photos / "a.png",
        regions=labels,
        region_styles=["mosaic", {"starry_night": 1, "great_wave": 1}],
        feather=3,
    )
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(api))


def test_regions_auto(tiny_model_path, photos, tmp_path):
    out = tmp_path / "out.png"
    args = [photos / "a.png", "-o", out, "--regions", "auto:3", "--region-styles", "0,1,2"]
    assert run(tiny_model_path, *args) == 0
    assert Image.open(out).size == (30, 21)


def test_list_styles(tiny_model_path, capsys):
    assert run(tiny_model_path, "--list-styles") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{i}\t{name}" for i, name in enumerate(STYLE_NAMES)]


def test_runs_as_a_module(tiny_model_path, photos, tmp_path):
    out = tmp_path / "out.jpg"
    command = [sys.executable, "-m", "stylebank_fast.stylize", str(photos / "a.png"), "-o"]
    command += [str(out), "--model", str(tiny_model_path), "--style", "mosaic", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (30, 21)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--style", "van_gogh"], "unknown style 'van_gogh'.*starry_night.*great_wave.*mosaic"),
        (["--style", "a:x"], "name:weight"),
        (["--regions", "auto:3", "--region-styles", "0,1"], "3.*but 2 region styles"),
        (["--regions", "nowhere.png", "--region-styles", "0"], "no such mask file"),
        (["--style", "0", "--strength", "2"], "strength"),
        ([], "give a style"),
    ],
)
def test_style_errors_exit_2(tiny_model_path, photos, tmp_path, capsys, args, message):
    out = tmp_path / "out.png"
    assert run(tiny_model_path, photos / "a.png", "-o", out, *args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()


def test_more_regions_than_styles_exit_2(tiny_model_path, photos, tmp_path, capsys):
    mask = np.repeat(np.arange(3, dtype=np.uint8)[None] * 80, 4, axis=0)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = [photos / "a.png", "-o", out, "--regions", tmp_path / "mask.png"]
    assert run(tiny_model_path, *args, "--region-styles", "0,1") == 2
    assert "the region map has 3 regions but 2 region styles" in capsys.readouterr().err
    assert not out.exists()


def test_not_an_image_exit_2(tiny_model_path, tmp_path, capsys):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    out = tmp_path / "out.png"
    assert run(tiny_model_path, fake, "-o", out, "--style", "0") == 2
    assert "fake.jpg is not a readable image" in capsys.readouterr().err
    assert not out.exists()


def test_bad_outputs_exit_2(tiny_model_path, photos, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    for out, message in [
        (blocker / "out.png", "cannot make output folder"),
        (tmp_path / "out.xyz", "cannot tell which image format"),
    ]:
        assert run(tiny_model_path, photos / "a.png", "-o", out, "--style", "0") == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    assert run(tiny_model_path, photos, "-o", blocker, "--style", "0") == 2
    assert "need an output folder, not a file" in capsys.readouterr().err


def test_failed_save_leaves_no_partial_file(tiny_model_path, photos, tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    out = tmp_path / "out"
    assert run(tiny_model_path, photos / "a.png", "-o", out / "a.png", "--style", "0") == 2
    assert list(out.iterdir()) == []


def test_missing_inputs_exit_2(tiny_model_path, tmp_path, capsys):
    assert (
        run(tiny_model_path, tmp_path / "nope.png", "-o", tmp_path / "o.png", "--style", "0") == 2
    )
    assert "input not found" in capsys.readouterr().err
    assert run(tiny_model_path, "--style", "0") == 2
    assert "give INPUT" in capsys.readouterr().err


def test_builtin_model_missing_exit_2(capsys, monkeypatch, tmp_path):
    from stylebank_fast import stylizer

    monkeypatch.setattr(stylizer, "BUILTIN_MODEL", tmp_path / "none.sbk")
    assert main(["--list-styles", "--device", "cpu"]) == 2
    assert "the built-in model is missing" in capsys.readouterr().err
