"""StyleBankNet: shapes, the forms of `style`, and that one bank call equals per-style calls."""

from __future__ import annotations

import pytest
import torch

from stylebank_fast import StyleBankNet


@pytest.fixture(scope="module")
def net() -> StyleBankNet:
    torch.manual_seed(0)
    return StyleBankNet(3, style_names=["ink", "oil", "wax"]).eval()


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (9, 4), (33, 47), (64, 48)])
def test_output_has_input_size(net, size):
    x = torch.rand(2, 3, *size)
    for style in (None, 1, "wax", torch.tensor([0, 2]), torch.rand(2, 3), torch.rand(2, 3, 5, 9)):
        assert net(x, style).shape == x.shape


@pytest.mark.parametrize("kernel_size", [5, 7])
def test_larger_bank_kernels(kernel_size):
    net = StyleBankNet(2, kernel_size=kernel_size)
    x = torch.rand(1, 3, 13, 21)
    assert net(x, 1).shape == x.shape
    assert net.bank.weights[0].shape == (128, 128, kernel_size, kernel_size)


def test_style_forms_agree(net):
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        by_index = net(x, 2)
        torch.testing.assert_close(net(x, "wax"), by_index, rtol=0, atol=0)
        torch.testing.assert_close(net(x, torch.tensor([2, 2])), by_index, rtol=0, atol=0)
        one_hot = torch.tensor([[0.0, 0.0, 1.0]])
        torch.testing.assert_close(net(x, one_hot.expand(2, 3)), by_index)
        torch.testing.assert_close(net(x, {"wax": 1.0}), by_index)
        torch.testing.assert_close(net(x, one_hot[:, :, None, None].expand(2, 3, 7, 5)), by_index)
        blend = net(x, {"ink": 0.25, 1: 0.75})
        torch.testing.assert_close(net(x, torch.tensor([[0.25, 0.75, 0.0]]).expand(2, 3)), blend)


def test_one_style_per_image_matches_separate_runs(net):
    x = torch.rand(3, 3, 20, 28)
    with torch.no_grad():
        together = net(x, torch.tensor([2, 0, 1]))
        for i, style in enumerate([2, 0, 1]):
            torch.testing.assert_close(together[i : i + 1], net(x[i : i + 1], style))


def test_region_masks_pick_styles_by_region(net):
    # InstanceNorm in the decoder is global, so compare what the decoder receives
    seen = []
    hook = net.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 3, 16, 16)  # any resolution: resized to the 16x16 feature map
    mask[:, 0, :, :8] = 1  # left: style 0, right: style 1
    mask[:, 1, :, 8:] = 1
    with torch.no_grad():
        net(x, mask), net(x, 0), net(x, 1)
    hook.remove()
    mixed, left, right = seen
    torch.testing.assert_close(mixed[..., :7], left[..., :7])
    torch.testing.assert_close(mixed[..., 9:], right[..., 9:])


def test_image_sized_masks_align_with_the_feature_pixels(net):
    # 10x14 is padded to 12x16 before encoding: features 3x4, feature pixel j covers image
    # columns [4j, 4j+4). A mask split at column 8 is feature column 2's left edge exactly.
    x = torch.rand(2, 3, 10, 14)
    mask = torch.zeros(2, 3, 10, 14)
    mask[:, 0, :, :8] = 1
    mask[:, 2, :, 8:] = 1
    at_features = torch.zeros(2, 3, 3, 4)
    at_features[:, 0, :, :2] = 1
    at_features[:, 2, :, 2:] = 1
    assert net.padded_size(10, 14) == (12, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x, mask), net(x, at_features))


def test_autoencoder_branch_skips_the_banks(net):
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = net.decoder(net.encoder(x))
        torch.testing.assert_close(net(x, None), expected, rtol=0, atol=0)


def test_bad_styles_say_what_is_wrong(net):
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(KeyError, match="unknown style 'acrylic'"):
        net(x, "acrylic")
    with pytest.raises(IndexError, match=r"style index 3 is outside \[0, 3\)"):
        net(x, 3)
    with pytest.raises(ValueError, match=r"style ids must have shape \[2\]"):
        net(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\[N,3\]"):
        net(x, torch.rand(2, 4))
    with pytest.raises(ValueError, match="already used"):
        net.add_styles(["ink"])


def test_add_styles_appends_banks():
    net = StyleBankNet(1, style_names=["a"])
    assert net.add_styles(["b", "c"]) == [1, 2]
    assert net.style_names == ["a", "b", "c"] and net.n_styles == 3
    assert net(torch.rand(1, 3, 8, 8), "c").shape == (1, 3, 8, 8)


def test_float64_model_takes_every_style_form():
    net = StyleBankNet(2).double().eval()
    x = torch.rand(1, 3, 16, 20, dtype=torch.float64)
    with torch.no_grad():
        for style in ({0: 1.0}, torch.tensor([[0.3, 0.7]]), torch.rand(1, 2, 16, 20), 1):
            assert net(x, style).dtype == torch.float64
