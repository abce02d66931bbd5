"""Inputs that used to lose data or give wrong results without a word (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.imageio import open_image
from stylebank_fast.region_maps import feature_regions
from stylebank_fast.regions import label_source
from stylebank_fast.stylize import main


def _photo(path, seed=0, h=21, w=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((synthetic_photo(seed, h, w) * 255).astype(np.uint8)).save(path)
    return path


def run(tiny_model_path, *args):
    return main([*map(str, args), "--model", str(tiny_model_path), "--device", "cpu"])


def test_output_equal_to_the_input_is_refused_before_any_work(tiny_model_path, tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    before = photo.read_bytes()
    assert run(tiny_model_path, photo, "-o", photo, "--style", "0") == 2
    assert "overwrite the input" in capsys.readouterr().err
    folder = tmp_path / "in"
    _photo(folder / "b.png")
    assert run(tiny_model_path, folder, "-o", folder, "--style", "0") == 2
    assert photo.read_bytes() == before


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tiny_model_path, tmp_path):
    folder = tmp_path / "in"
    _photo(folder / "a.png")
    out = folder / "styled"
    for _ in range(2):  # the second run must not stylize styled/a.png into styled/styled/a.png
        assert run(tiny_model_path, folder, "-o", out, "--style", "0") == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png"]


def test_folders_take_every_extension_single_files_take(tiny_model_path, tmp_path):
    folder = tmp_path / "in"
    rgb = Image.fromarray((synthetic_photo(0, 21, 30) * 255).astype(np.uint8))
    folder.mkdir()
    for suffix in ("tif", "bmp", "gif"):
        rgb.save(folder / f"p.{suffix}")
    assert run(tiny_model_path, folder, "-o", tmp_path / "out", "--style", "0") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p.bmp", "p.gif", "p.tif"]


def test_16_bit_greyscale_keeps_its_picture(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    image = np.asarray(open_image(tmp_path / "g16.png"), np.float32)
    assert image.shape == (8, 64, 3)
    np.testing.assert_allclose(image[0, :, 0], np.linspace(0, 255, 64), atol=1)


@pytest.mark.parametrize("mode", ["CMYK", "P", "RGBA", "LA"])
def test_other_modes_open_as_rgb(tmp_path, mode):
    rgb = Image.fromarray((synthetic_photo(1, 12, 16) * 255).astype(np.uint8))
    rgb.convert(mode).save(tmp_path / "x.tif" if mode == "CMYK" else tmp_path / "x.png")
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (16, 12)
    assert np.asarray(image).std() > 10


@pytest.mark.parametrize("spec", ["0:nan,1:1", "0:inf", "0:-inf,1:1"])
def test_non_finite_blend_weights_exit_2(tiny_model_path, tmp_path, capsys, spec):
    photo = _photo(tmp_path / "a.png")
    assert run(tiny_model_path, photo, "-o", tmp_path / "o.png", "--style", spec) == 2
    assert "finite" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_blends_allow_spaces_any_case_and_sum_repeats(tiny_model_path):
    stylizer = sb.Stylizer(tiny_model_path, device="cpu")
    names = stylizer.list_styles()
    upper = {names[0].upper(): 1.0, f" {names[1]} ": 1.0, names[0]: 2.0}
    weights = stylizer.style_weights(upper)
    torch.testing.assert_close(weights[:2], torch.tensor([0.75, 0.25]))
    from stylebank_fast.styles import parse_spec

    assert parse_spec(f" {names[0]} : 0.5 , {names[1]}:0.5") == {names[0]: 0.5, names[1]: 0.5}


def test_feather_needs_regions(tiny_model_path, tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    assert (
        run(tiny_model_path, photo, "-o", tmp_path / "o.png", "--style", "0", "--feather", "4") == 2
    )
    assert "needs --regions" in capsys.readouterr().err
    with pytest.raises(sb.StyleBankError, match="needs regions"):
        sb.Stylizer(tiny_model_path, device="cpu").stylize(photo, style=0, feather=3)


def test_any_feather_radius_gives_masks_that_sum_to_one():
    array = np.zeros((40, 50), int)
    array[:, 25:] = 1
    labels = label_source(array, array.shape)
    small = feature_regions(labels, (40, 50), feather=3, cell=1)
    huge = feature_regions(labels, (40, 50), feather=100_000, cell=1)  # no 200001-px window
    for masks in (small, huge):
        torch.testing.assert_close(masks.sum(1), torch.ones(1, 40, 50))
    assert small[0, 0, 0, 21] > 0.99 and 0.4 < small[0, 0, 0, 24] < 0.6
    torch.testing.assert_close(huge[0, 0], torch.full((40, 50), 0.5), atol=1e-3, rtol=0)


def test_an_unreadable_file_does_not_stop_a_folder(tiny_model_path, tmp_path, capsys):
    folder = tmp_path / "in"
    _photo(folder / "a.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    _photo(folder / "c.png", 2)
    assert run(tiny_model_path, folder, "-o", tmp_path / "out", "--style", "0") == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert "broken.jpg" in err.split("could not be read:")[1]
    assert err.count("wrote ") == 2


def test_skip_existing_and_one_line_per_written_file(tiny_model_path, tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    out = tmp_path / "o.png"
    assert run(tiny_model_path, photo, "-o", out, "--style", "0") == 0
    assert f"wrote {out}" in capsys.readouterr().err
    out.write_bytes(b"keep me")
    assert run(tiny_model_path, photo, "-o", out, "--style", "0", "--skip-existing") == 0
    assert out.read_bytes() == b"keep me" and "skipped" in capsys.readouterr().err


def test_strength_moves_the_output_about_evenly():
    from pathlib import Path

    photo = Image.open(Path(__file__).parents[1] / "examples" / "photos" / "tubingen.jpg")
    photo = photo.convert("RGB").resize((256, 192))
    stylizer = sb.Stylizer()
    outs = {
        s: np.asarray(stylizer.stylize(photo, style="the_scream", strength=s), np.float32)
        for s in (0.0, 0.2, 0.5, 1.0)
    }
    way = {
        s: np.abs(outs[s] - outs[0.0]).mean() / np.abs(outs[1.0] - outs[0.0]).mean()
        for s in (0.2, 0.5)
    }
    assert 0.1 < way[0.2] < 0.3 and 0.4 < way[0.5] < 0.6, way  # a raw feature blend: 0.65, 0.91


def test_any_image_opens_that_memory_can_hold(tmp_path, monkeypatch):
    """PIL's fixed pixel limit (decompression bombs) gives way to what the free memory holds,
    checked on the size decoded after --max-size (a JPEG decodes at a reduced scale)."""
    from stylebank_fast import imageio
    from stylebank_fast.errors import DataError

    photo = (synthetic_photo(0, 400, 600) * 255).astype(np.uint8)
    png, jpeg = tmp_path / "big.png", tmp_path / "big.jpg"
    Image.fromarray(photo[:40, :60]).save(png)
    Image.fromarray(photo).save(jpeg)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 2400 pixels: a "bomb" to PIL
    assert open_image(png).size == (60, 40)
    assert Image.MAX_IMAGE_PIXELS == 500  # PIL's guard is back for everyone else
    monkeypatch.setattr(imageio, "available_memory", lambda: 60 * 40 * 4 - 1)
    with pytest.raises(DataError, match=r"big.png is 60x40 .* more than .* memory free"):
        open_image(png)
    monkeypatch.setattr(imageio, "available_memory", lambda: 300_000)  # 600x400 takes 960 kB
    with pytest.raises(DataError, match="--max-size"):
        open_image(jpeg)
    assert open_image(jpeg, max_size=150).size == (150, 100)  # decoded at 300x200, then scaled


def test_alpha_goes_through_where_the_output_format_keeps_it(tiny_model_path, tmp_path):
    rgba = np.dstack(
        [(synthetic_photo(0, 21, 30) * 255).astype(np.uint8), np.tile(np.arange(30) * 8, (21, 1))]
    ).astype(np.uint8)
    photo = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(photo)
    assert run(tiny_model_path, photo, "-o", tmp_path / "o.png", "--style", "0") == 0
    out = Image.open(tmp_path / "o.png")
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    assert run(tiny_model_path, photo, "-o", tmp_path / "o.jpg", "--style", "0") == 0
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_save_regions_shows_the_regions_used(tiny_model_path, tmp_path, capsys):
    from stylebank_fast.stylizer import REGION_COLOURS

    photo = _photo(tmp_path / "a.png")
    labels = np.zeros((21, 30), np.uint8)
    labels[:, 10:] = 7  # two regions: value 0 is region 0, value 7 region 1 (sorted order)
    Image.fromarray(labels).save(tmp_path / "mask.png")
    argv = [photo, "-o", tmp_path / "o.png", "--regions", tmp_path / "mask.png"]
    argv += ["--region-styles", "0,1", "--save-regions", tmp_path / "regions.png"]
    assert run(tiny_model_path, *argv) == 0
    shown = np.asarray(Image.open(tmp_path / "regions.png"))
    assert (shown[:, :10] == REGION_COLOURS[0]).all() and (shown[:, 10:] == REGION_COLOURS[1]).all()
    auto = [photo, "-o", tmp_path / "p.png", "--regions", "auto:2", "--region-styles", "0,1"]
    assert run(tiny_model_path, *auto, "--save-regions", tmp_path / "auto.png") == 0
    colours = {tuple(c) for c in np.asarray(Image.open(tmp_path / "auto.png")).reshape(-1, 3)}
    assert colours <= {tuple(REGION_COLOURS[0]), tuple(REGION_COLOURS[1])} and len(colours) == 2
    assert (
        run(
            tiny_model_path,
            photo,
            "-o",
            tmp_path / "q.png",
            "--style",
            "0",
            "--save-regions",
            tmp_path / "r.png",
        )
        == 2
    )
