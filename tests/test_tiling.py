"""Tiled stylization gives the untiled output: every normalisation with the whole image's
statistics, tiles reading far enough around themselves, the image's own padding at its border;
and the Stylizer tiles exactly when an image does not fit its memory budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import requires_extension, synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast import stylizer as stylizer_module
from stylebank_fast.cli.stylize import main
from stylebank_fast.fast_inference import fast_model
from stylebank_fast.tiling import TiledNetwork, budget, grid
from stylebank_fast.tiling import network as tiling_network

pytestmark = requires_extension

# Tiled and untiled outputs differ by float32 rounding only: the statistics are summed in
# another order (measured: at most 4e-6 on outputs in about [0, 1]).
ATOL = 2e-5


def _model(kernel_size: int) -> sb.StyleBankNet:
    torch.manual_seed(kernel_size)
    net = sb.StyleBankNet(3, kernel_size, style_names=["a", "b", "c"]).eval()
    for module in net.modules():  # non-trivial InstanceNorm affines
        if isinstance(module, torch.nn.InstanceNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net


@pytest.fixture(scope="module")
def fast_models() -> dict[int, sb.StyleBankNet]:
    return {k: fast_model(_model(k)) for k in (3, 7)}


def _tiled(fast, x, style, tile=32, **kwargs):
    out = torch.full_like(x, float("nan"))

    def write(rows, cols, block):
        assert out[..., rows, cols].isnan().all()  # each pixel written once
        out[..., rows, cols] = block

    tiles = TiledNetwork(fast, lambda r, c: x[..., r, c], tuple(x.shape[-2:]), tile, len(x))
    with torch.inference_mode():
        tiles.stylize(style, write, **kwargs)
    return out, len(tiles.tiles)


def _styles(n, h, w):
    g = torch.Generator().manual_seed(1)
    hard = torch.randint(2, (n, h, w), generator=g) * 2  # banks 0 and 2: bank 1 unused
    return {
        "index": 1,
        "ids": torch.tensor([2, 0][:n]),
        "blend": torch.tensor([[0.2, 0.5, 0.3]]),
        "soft masks": torch.rand(n, 3, h, w, generator=g),
        "hard masks": torch.nn.functional.one_hot(hard, 3).permute(0, 3, 1, 2).float(),
    }


@pytest.mark.parametrize(
    "kernel_size, form, size",
    [
        (3, "index", (93, 141)),
        (3, "ids", (61, 150)),
        (3, "blend", (93, 141)),
        (3, "soft masks", (61, 150)),
        (3, "hard masks", (93, 141)),
        (7, "index", (61, 150)),  # the bank reaches further: wider margins
        (7, "hard masks", (93, 141)),
    ],
)
def test_tiles_give_the_untiled_output(fast_models, kernel_size, form, size):
    fast = fast_models[kernel_size]
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(2))
    style = _styles(2, *size)[form]
    strength = 0.6 if form in ("blend", "hard masks") else 1.0
    with torch.inference_mode():
        want = fast(x, style, strength=strength)
    got, count = _tiled(fast, x, style, tile=40, strength=strength)
    assert count >= 6
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_tiles_match_the_model_itself():
    net = _model(3)
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = net(x, {0: 0.5, 2: 0.5})
    got, _ = _tiled(fast_model(net), x, {0: 0.5, 2: 0.5})
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)  # as fast vs module path


def test_a_margin_short_of_the_reach_shows(fast_models, monkeypatch):
    """The comparison above can fail: tiles reading 4 pixels less around them are wrong."""
    monkeypatch.setattr(tiling_network, "align", lambda pixels: grid.align(pixels) - 4)
    fast = fast_models[3]
    x = torch.rand(1, 3, 100, 120, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want = fast(x, 1)
    got, _ = _tiled(fast, x, 1, tile=40)
    assert (got - want).abs().max() > 0.01


def test_encoder_features_tile_by_tile(fast_models):
    fast = fast_models[3]
    x = torch.rand(1, 3, 90, 77, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        want = fast.encode(x)
    got = torch.full_like(want, float("nan"))
    tiles = TiledNetwork(fast, lambda r, c: x[..., r, c], (90, 77), 24)

    def consume(rows, cols, block):
        got[..., rows, cols] = block

    with torch.inference_mode():
        tiles.encode(consume)
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_progress_counts_the_work_of_every_pass(fast_models):
    fast = fast_models[3]
    x = torch.rand(1, 3, 64, 64)
    heard = []
    tiles = TiledNetwork(
        fast, lambda r, c: x[..., r, c], (64, 64), 32, progress=lambda *a: heard.append(a)
    )
    with torch.inference_mode():
        tiles.stylize(0, lambda *_: None)
    assert len(heard) == 6 * len(tiles.tiles)  # 5 normalisations, then the output
    assert {stage for stage, *_ in heard} == {"stylizing"}
    done = [d for _, d, _, _ in heard]
    assert done == sorted(done) and done[-1] == heard[-1][2]


def test_grid_covers_the_image_once():
    tiles = grid.tile_grid((100, 248), 48)
    covered = torch.zeros(100, 248, dtype=torch.int)
    for tile in tiles:
        assert tile.rows.start % 4 == 0 and tile.cols.start % 4 == 0
        assert tile.rows.stop - tile.rows.start <= 48 and tile.cols.stop - tile.cols.start <= 48
        covered[tile.rows, tile.cols] += 1
    assert covered.eq(1).all() and len(tiles) == 3 * 6


# --- the Stylizer ---


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of about 40 pixels: MIN_TILE lowered, and a budget with room for no more."""
    monkeypatch.setattr(budget, "MIN_TILE", 16)
    net = fast_model(sb.StyleBankNet(1))
    room = budget.activation_bytes((40 + 2 * tiling_network.margin(net)) ** 2, torch.float32)
    return (budget.RUNTIME_BYTES + room) / 1e9


def _spy_tiles(monkeypatch) -> list:
    made = []
    original = stylizer_module.Stylizer._tiles

    def spy(self, *args):
        made.append(original(self, *args))
        return made[-1]

    monkeypatch.setattr(stylizer_module.Stylizer, "_tiles", spy)
    return made


def test_stylizer_tiles_above_its_budget_with_the_same_output(
    tiny_model_path, small_tiles, monkeypatch
):
    whole = sb.Stylizer(tiny_model_path, device="cpu")
    tiled = sb.Stylizer(tiny_model_path, device="cpu", memory_budget=small_tiles)
    made = _spy_tiles(monkeypatch)
    photo = (synthetic_photo(0, 77, 103) * 255).astype(np.uint8)
    labels = np.zeros((77, 103), int)
    labels[:, 50:] = 1
    labels[40:, :20] = 2
    cases = {
        "style": {"style": "mosaic"},
        "blend": {"style": {"mosaic": 0.3, "great_wave": 0.7}, "strength": 0.6},
        "label map": {"regions": labels, "region_styles": [0, {1: 1, 2: 1}, 2]},
        "feathered": {"regions": labels, "region_styles": [0, 1, 2], "feather": 5},
        "auto:2": {"regions": "auto:2", "region_styles": [0, 2]},
        "colours kept": {"style": 1, "preserve_color": True},
    }
    tensor = torch.from_numpy(photo).permute(2, 0, 1).double() / 255  # float64 stays float64
    for name, kwargs in cases.items():
        want, got = whole.stylize(tensor, **kwargs), tiled.stylize(tensor, **kwargs)
        assert got.dtype == torch.float64 and got.shape == tensor.shape
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL, msg=name)
        assert len(made[-1].tiles) >= 6, name
    image = Image.fromarray(photo)
    for kwargs in (cases["style"], cases["feathered"]):  # 8 bits: rounding moves a level at most
        want = np.asarray(whole.stylize(image, **kwargs), np.int16)
        got = np.asarray(tiled.stylize(image, **kwargs), np.int16)
        assert np.abs(got - want).max() <= 1 and (got != want).mean() < 1e-3
    regions = whole.region_map(photo, "auto:3")
    assert np.array_equal(np.asarray(tiled.region_map(photo, "auto:3")), np.asarray(regions))


def test_tiling_only_above_the_budget(tiny_model_path, monkeypatch):
    monkeypatch.setattr(stylizer_module, "available_memory", lambda: None)  # not this machine's
    stylizer = sb.Stylizer(tiny_model_path, device="cpu")
    pixels = stylizer_module.Pixels(torch.zeros(1, 3, 1, 1).expand(1, 3, 768, 1024), "cpu")
    assert stylizer._tile_side(pixels, 0) is None
    big = stylizer_module.Pixels(torch.zeros(1, 3, 1, 1).expand(1, 3, 6000, 6000), "cpu")
    side = stylizer._tile_side(big, 0)
    margin = tiling_network.margin(stylizer._net)
    tile_bytes = budget.activation_bytes((side + 2 * margin) ** 2, torch.float32)
    assert 512 <= side and tile_bytes <= 1.5e9 - budget.RUNTIME_BYTES
    assert sb.Stylizer(tiny_model_path, device="cpu", memory_budget=50)._tile_side(big, 0) is None


def test_memory_errors_say_what_to_do(tiny_model_path, monkeypatch):
    photo = torch.zeros(3, 1, 1).expand(3, 300, 300)
    with pytest.raises(sb.StyleBankError, match="memory_budget must be more than 0 GB"):
        sb.Stylizer(tiny_model_path, device="cpu", memory_budget=0)
    with pytest.raises(sb.StyleBankError, match="memory_budget is a number of GB"):
        sb.Stylizer(tiny_model_path, device="cpu", memory_budget="1.5")
    monkeypatch.setattr(stylizer_module, "available_memory", lambda: None)
    with pytest.raises(sb.StyleBankError, match=r"memory_budget=0.36 GB is too little .* 0.37 GB"):
        sb.Stylizer(tiny_model_path, device="cpu", memory_budget=0.36).stylize(photo, style=0)
    monkeypatch.setattr(stylizer_module, "available_memory", lambda: 1e6)
    with pytest.raises(sb.StyleBankError, match=r"300x300 image .* only 0.00 GB of memory is free"):
        sb.Stylizer(tiny_model_path, device="cpu").stylize(photo, style=0)


def test_command_line_memory_budget_and_progress(
    tiny_model_path, small_tiles, tmp_path, capsys, monkeypatch
):
    photo = tmp_path / "big.png"
    Image.fromarray((synthetic_photo(1, 70, 90) * 255).astype(np.uint8)).save(photo)
    made = _spy_tiles(monkeypatch)
    args = [str(photo), "--model", str(tiny_model_path), "--device", "cpu", "--style", "1"]
    assert main([*args, "-o", str(tmp_path / "whole.png")]) == 0
    assert not made
    assert (
        main([*args, "-o", str(tmp_path / "tiled.png"), "--memory-budget", str(small_tiles)]) == 0
    )
    assert made
    err = capsys.readouterr().err
    assert f"{photo}: stylizing 100% | 0m00s left" in err
    whole, tiled = (
        np.asarray(Image.open(tmp_path / f), np.int16) for f in ("whole.png", "tiled.png")
    )
    assert np.abs(whole - tiled).max() <= 1
    assert main([*args, "-o", str(tmp_path / "x.png"), "--memory-budget", "-1"]) == 2
    assert "--memory-budget must be more than 0 GB, got -1.0" in capsys.readouterr().err
