"""Region-wise InstanceNorm: each region normalised with its own statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from stylebank_fast.region_norm import region_instance_norm, region_weights, upsample_regions

G = torch.Generator().manual_seed(0)
PHOTO = Path(__file__).parents[1] / "examples" / "photos" / "venice_boat.jpg"


def test_one_region_is_instance_norm():
    x = torch.randn(2, 5, 7, 9, generator=G) * 3 + 1
    gamma, beta = torch.rand(5, generator=G), torch.randn(5, generator=G)
    ones = torch.ones(1, 1, 7, 9)
    want = F.instance_norm(x, weight=gamma, bias=beta, eps=1e-5)
    torch.testing.assert_close(region_instance_norm(x, ones, gamma, beta, 1e-5), want)


def test_hard_regions_are_normalised_alone():
    x = torch.randn(1, 4, 6, 10, generator=G)
    x[..., 5:] = x[..., 5:] * 4 + 3  # the right half has other statistics
    masks = torch.zeros(1, 2, 6, 10)
    masks[:, 0, :, :5], masks[:, 1, :, 5:] = 1, 1
    out = region_instance_norm(x, masks, None, None, 1e-5)
    torch.testing.assert_close(out[..., :5], F.instance_norm(x[..., :5], eps=1e-5))
    torch.testing.assert_close(out[..., 5:], F.instance_norm(x[..., 5:], eps=1e-5))


def test_soft_regions_blend_the_normalised_values():
    x = torch.randn(2, 3, 5, 6, generator=G)
    t = torch.rand(2, 1, 5, 6, generator=G)
    masks = torch.cat([t, 1 - t], 1)
    out = region_instance_norm(x, masks, None, None, 1e-5)
    parts = []
    for m in (t, 1 - t):
        mean = (m * x).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True)
        var = (m * (x - mean) ** 2).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True)
        parts.append(m * (x - mean) / torch.sqrt(var + 1e-5))
    torch.testing.assert_close(out, parts[0] + parts[1])


def test_gradients_float64():
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, generator=G, requires_grad=True)
    t = torch.rand(1, 1, 4, 5, dtype=torch.float64, generator=G)
    masks = torch.cat([t, 1 - t], 1)
    gamma = torch.rand(2, dtype=torch.float64, generator=G, requires_grad=True)
    beta = torch.randn(2, dtype=torch.float64, generator=G, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, g, b: region_instance_norm(x, masks, g, b, 1e-5), (x, gamma, beta)
    )


def test_region_weights_drop_unused_banks_and_normalise():
    mix = torch.zeros(1, 4, 2, 3)
    mix[0, 1, :, :2] = 2.0  # bank 1 on the left, at weight 2
    mix[0, 3, :, 1:] = 1.0  # bank 3 on the right; column 1 is shared
    weights, banks = region_weights(mix)
    assert weights.shape == (1, 2, 2, 3) and banks.tolist() == [1, 3]
    torch.testing.assert_close(weights.sum(1), torch.ones(1, 2, 3))
    torch.testing.assert_close(weights[0, :, 0, 1], torch.tensor([2 / 3, 1 / 3]))
    empty = torch.zeros(1, 2, 2, 2)
    empty[0, 0, 0, 0] = 1
    assert torch.equal(region_weights(empty)[0][0, 0], torch.tensor([[1.0, 1.0], [1.0, 1.0]]))


def test_upsample_regions_refuses_a_size_it_cannot_tile():
    weights = torch.rand(1, 2, 3, 4)
    assert upsample_regions(weights, (6, 8)).shape == (1, 2, 6, 8)
    with pytest.raises(ValueError, match="do not tile"):
        upsample_regions(weights, (7, 8))


@pytest.mark.parametrize("fast", [False, True])
def test_two_regions_on_a_photo_look_like_each_style_alone(fast):
    """Away from the border (32 px), each half of a two-region output is within a few grey
    levels of its style alone: about 2 here, where a shared InstanceNorm put them 39-40 off
    and each region's own statistics (no completion, `region_patches = 0`) 6-8 off."""
    from stylebank_fast import Stylizer

    stylizer = Stylizer(fast=fast)
    image = Image.open(PHOTO).convert("RGB")
    image = image.resize((512, round(512 * image.height / image.width)))
    w, h = image.size
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2 :] = 1
    a, b = "starry_night", "the_scream"
    both = np.asarray(stylizer.stylize(image, regions=labels, region_styles=[a, b]), np.float32)
    alone = [np.asarray(stylizer.stylize(image, style=s), np.float32) for s in (a, b)]
    left = np.abs(both[:, : w // 2 - 32] - alone[0][:, : w // 2 - 32]).mean()
    right = np.abs(both[:, w // 2 + 32 :] - alone[1][:, w // 2 + 32 :]).mean()
    apart = np.abs(alone[0] - alone[1]).mean()
    assert apart > 40
    assert left < 4 and right < 4, (left, right)
