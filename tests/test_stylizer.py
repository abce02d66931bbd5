"""The Python stylization API: every form of style, regions, feather, strength, preserve_color;
image forms and sizes; user errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import STYLE_NAMES
from PIL import Image

import stylebank_fast as sb
from stylebank_fast import region_maps
from stylebank_fast import stylizer as stylizer_module
from stylebank_fast.color import rgb_to_yiq, transfer_luminance, yiq_to_rgb
from stylebank_fast.imageio import open_image, save_image, to_pil
from stylebank_fast.region_maps import feature_regions
from stylebank_fast.regions import Labels, cluster_labels, kmeans, label_map, label_source
from stylebank_fast.stylizer import feature_blend


@pytest.fixture(scope="module")
def stylizer(tiny_model_path) -> sb.Stylizer:
    return sb.Stylizer(tiny_model_path, device="cpu")


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return torch.rand(3, 19, 26, generator=torch.Generator().manual_seed(1))  # odd sizes


def expected(stylizer, photo, style, strength=1.0):
    with torch.inference_mode():
        return stylizer.model(photo[None], style, strength=strength).clamp(0, 1)[0]


def test_list_styles(stylizer):
    assert stylizer.list_styles() == list(STYLE_NAMES)


@pytest.mark.parametrize("style", ["great_wave", 1, "1"])
def test_style_by_name_or_index(stylizer, photo, style):
    out = stylizer.stylize(photo, style=style)
    torch.testing.assert_close(out, expected(stylizer, photo, 1))


def test_blend_is_normalised_linear_fusion(stylizer, photo):
    out = stylizer.stylize(photo, style={"starry_night": 7, 2: 3})
    weights = torch.tensor([[0.7, 0.0, 0.3]])
    torch.testing.assert_close(out, expected(stylizer, photo, weights))
    assert not torch.allclose(out, stylizer.stylize(photo, style=0))


def test_strength_blends_with_the_reconstruction(stylizer, photo):
    torch.testing.assert_close(
        stylizer.stylize(photo, style="mosaic", strength=0.0), expected(stylizer, photo, None)
    )
    half = stylizer.stylize(photo, style="mosaic", strength=0.5)
    # strength 0.5 is a feature blend that moves the output about half way (issue 12)
    torch.testing.assert_close(half, expected(stylizer, photo, 2, strength=feature_blend(0.5)))
    assert not torch.allclose(half, stylizer.stylize(photo, style="mosaic"))


def test_preserve_color_keeps_the_photo_chroma(stylizer, photo):
    out = stylizer.stylize(photo, style=0, preserve_color=True)
    torch.testing.assert_close(
        out, transfer_luminance(photo[None], expected(stylizer, photo, 0)[None])[0]
    )
    styled = torch.rand(1, 3, 5, 6) * 0.2 + 0.4  # stays in range: chroma exactly the photo's
    content = torch.rand(1, 3, 5, 6) * 0.2 + 0.4
    mixed = rgb_to_yiq(transfer_luminance(content, styled))
    torch.testing.assert_close(mixed[:, 0], rgb_to_yiq(styled)[:, 0])
    torch.testing.assert_close(mixed[:, 1:], rgb_to_yiq(content)[:, 1:])
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(styled)), styled)


def test_image_forms_and_sizes(stylizer, photo, tmp_path):
    pil = to_pil(photo)
    path = tmp_path / "photo.png"
    save_image(pil, path)
    array = np.asarray(pil)
    results = [stylizer.stylize(form, style=0) for form in (pil, path, str(path), array)]
    for result in results:
        assert isinstance(result, Image.Image) and result.size == (26, 19)
        assert np.array_equal(np.asarray(result), np.asarray(results[0]))
    batch = torch.stack([photo, photo.flip(-1)])
    out = stylizer.stylize(batch, style=0)
    assert out.shape == batch.shape
    torch.testing.assert_close(out[0], stylizer.stylize(photo, style=0))
    tiny = stylizer.stylize(torch.rand(3, 5, 3, dtype=torch.float64), style=0)
    assert tiny.shape == (3, 5, 3) and tiny.dtype == torch.float64
    tiny.mul_(0.5)  # an ordinary tensor, not an inference-mode one


def test_feature_regions_and_feather():
    array = np.zeros((6, 10), int)
    array[:, 5:] = 1
    labels = label_source(array, array.shape)
    # at the feature map's resolution: padded to 8x12, 4x4 cells averaged (column 1 straddles
    # the border at image column 5)
    cells = feature_regions(labels, (8, 12))
    assert cells.shape == (1, 2, 2, 3)
    torch.testing.assert_close(cells[0, 0], torch.tensor([[1.0, 0.25, 0.0]]).expand(2, 3))
    torch.testing.assert_close(cells.sum(1), torch.ones(1, 2, 3))
    hard = feature_regions(labels, (6, 10), cell=1)  # at the image's resolution
    assert torch.equal(hard[0, 1], torch.from_numpy(array == 1).float())
    soft = feature_regions(labels, (6, 10), feather=2, cell=1)
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 6, 10))
    row = soft[0, 0, 0]
    assert row[:3].eq(1).all() and row[7:].eq(0).all()  # hard beyond 2 px of the border
    assert ((row[3:7] > 0) & (row[3:7] < 1)).all()
    assert (row[:-1] >= row[1:]).all()


@pytest.mark.parametrize("feather", [0, 3])
@pytest.mark.parametrize("size", [(37, 53), (9, 7)])
def test_feature_regions_band_by_band_are_the_full_size_maps_pooled(feather, size, monkeypatch):
    """Rows, then columns, a band at a time: what feature_masks makes of the feathered
    full-size maps."""
    monkeypatch.setattr(region_maps, "BAND_BYTES", 1)  # bands of 4 rows, columns one by one
    g = torch.Generator().manual_seed(0)
    array = torch.randint(3, (2, *size), generator=g)
    labels = Labels(array, 3, torch.arange(size[0]), torch.arange(size[1]))
    net = sb.StyleBankNet(1)
    full = torch.nn.functional.one_hot(array, 3).permute(0, 3, 1, 2).float()
    if feather:
        full = region_maps._box_mean(region_maps._box_mean(full, feather, 3), feather, 2)
    want = net.feature_masks(full, size)
    got = feature_regions(labels, net.padded_size(*size), feather)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_label_maps_resize_as_nearest_exact_interpolation():
    array = np.random.default_rng(0).integers(0, 5, (13, 29))
    for size in [(31, 17), (13, 29), (5, 90)]:
        want = torch.nn.functional.interpolate(
            torch.from_numpy(array)[None, None].double(), size, mode="nearest-exact"
        )
        assert torch.equal(label_map(array, size)[0], want[0, 0].long())


@pytest.mark.parametrize(
    "array",
    [
        np.array([[5, -3, 5], [7, 7, -3]]),  # negative ints
        np.array([[True, False], [True, True]]),
        np.array([[0, 1 << 40], [3, 0]]),  # a range too wide for a lookup table
        np.array([[0.5, 0.25], [0.5, 2.0]]),  # floats
        np.arange(12, dtype=np.uint8).reshape(3, 4)[:, ::-1],
    ],
)
def test_label_map_numbers_values_in_sorted_order(array):
    labels, count = label_map(array, array.shape)
    values, inverse = np.unique(array, return_inverse=True)
    assert count == len(values)
    assert np.array_equal(labels.numpy(), inverse.reshape(array.shape))


def test_label_map_from_colours_any_size(tmp_path):
    colours = np.zeros((4, 6, 3), np.uint8)
    colours[:, 3:] = (255, 0, 0)
    colours[2:, :3] = (0, 0, 9)
    path = tmp_path / "mask.png"
    Image.fromarray(colours).save(path)
    labels, count = label_map(path, (8, 12))  # twice the mask's size
    assert count == 3 and labels.shape == (8, 12)
    # sorted colour order: black (0), (0,0,9) (1), red (2)
    assert labels[0, 0] == 0 and labels[7, 0] == 1 and labels[0, 11] == 2


def test_regions_label_map(stylizer, photo):
    labels = np.zeros((19, 26), np.int64)
    labels[:, 13:] = 5
    out = stylizer.stylize(photo, regions=labels, region_styles=["mosaic", {0: 1, 1: 1}])
    masks = torch.zeros(1, 3, 19, 26)
    masks[0, 2, :, :13] = 1
    masks[0, :2, :, 13:] = 0.5
    torch.testing.assert_close(out, expected(stylizer, photo, masks))
    # one region with one style is that style; a mask of another size is resized
    one = stylizer.stylize(photo, regions=np.ones((4, 4), int), region_styles=["great_wave"])
    torch.testing.assert_close(one, stylizer.stylize(photo, style="great_wave"))
    small = stylizer.stylize(photo, regions=labels[::3, ::2], region_styles=["mosaic", 0])
    assert small.shape == photo.shape


def test_feather_softens_the_output(stylizer, photo):
    labels = torch.zeros(19, 26, dtype=torch.long)
    labels[:, 13:] = 1
    hard = stylizer.stylize(photo, regions=labels, region_styles=[0, 2])
    soft = stylizer.stylize(photo, regions=labels, region_styles=[0, 2], feather=4)
    assert soft.shape == hard.shape and not torch.allclose(soft, hard)


def test_kmeans_finds_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = (centres[:, None] + 0.1 * torch.randn(3, 50, 2, generator=g)).reshape(-1, 2)
    found = kmeans(points, 3)
    distance = torch.cdist(found.float(), centres).min(dim=1).values
    assert (distance < 0.1).all()


def test_cluster_labels_largest_first():
    features = torch.zeros(4, 5, 6)
    features[:, :, 4:] = 3.0  # a small region on the right
    labels = cluster_labels(features, 2, (19, 22))
    assert labels.shape == (19, 22)
    assert (labels[:, :16] == 0).all() and (labels[:, 16:] == 1).all()


def test_regions_auto(stylizer, photo):
    out = stylizer.stylize(photo, regions="auto:2", region_styles=["starry_night", "mosaic"])
    assert out.shape == photo.shape
    again = stylizer.stylize(photo, regions="auto:2", region_styles=["starry_night", "mosaic"])
    torch.testing.assert_close(out, again)  # fixed seed
    same = stylizer.stylize(photo, regions="auto:2", region_styles=[1, 1])
    torch.testing.assert_close(same, stylizer.stylize(photo, style=1))


def test_builtin_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(stylizer_module, "BUILTIN_MODEL", tmp_path / "none.sbk")
    with pytest.raises(sb.StyleBankError, match="built-in model is missing.*stylebank_fast.train"):
        sb.Stylizer(device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"style": "van_gogh"}, "unknown style 'van_gogh'.*0:starry_night, 1:great_wave"),
        ({"style": 3}, "unknown style 3"),
        ({"style": {"mosaic": 0}}, "not all zero"),
        ({}, "give a style"),
        ({"style": 0, "regions": "auto:2", "region_styles": [0, 1]}, "not both"),
        ({"regions": "auto:2"}, "one style per region"),
        ({"region_styles": [0]}, "without regions"),
        ({"regions": "auto:x", "region_styles": [0]}, "auto:N"),
        ({"regions": "auto:3", "region_styles": [0, 1]}, "3.*but 2 region styles"),
        ({"regions": np.arange(3)[None].repeat(2, 0), "region_styles": [0, 1]}, "3 regions"),
        ({"style": 0, "strength": 1.5}, "strength"),
        ({"style": 0, "feather": -1}, "feather"),
    ],
)
def test_user_errors(stylizer, photo, kwargs, message):
    with pytest.raises(sb.StyleBankError, match=message):
        stylizer.stylize(photo, **kwargs)


def test_bad_images(stylizer, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(sb.StyleBankError, match="not a readable image"):
        stylizer.stylize(text, style=0)
    with pytest.raises(sb.StyleBankError, match="image not found"):
        stylizer.stylize(tmp_path / "missing.jpg", style=0)
    with pytest.raises(sb.StyleBankError, match=r"uint8 \[H,W,3\]"):
        stylizer.stylize(np.zeros((4, 4, 3), np.float32), style=0)
    with pytest.raises(sb.StyleBankError, match="float"):
        stylizer.stylize(torch.zeros(4, 5, 6), style=0)


def test_exif_orientation_and_max_size(stylizer, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (30, 12), (200, 40, 40)).save(path, exif=exif)
    assert open_image(path).size == (12, 30)
    assert open_image(path, max_size=15).size == (6, 15)
    assert stylizer.stylize(path, style=0).size == (12, 30)
