"""Each region's statistics completed to its style alone's (region_statistics.StyleAlone)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import synthetic_photo
from torch import nn

import stylebank_fast as sb
from stylebank_fast.fast_inference import fast_model
from stylebank_fast.region_norm import moments_mean_var
from stylebank_fast.region_statistics import PatchSampler, StyleAlone


def _net(kernel_size: int = 3) -> sb.StyleBankNet:
    torch.manual_seed(0)
    net = sb.StyleBankNet(3, kernel_size=kernel_size).eval()
    with torch.no_grad():  # banks far apart, so a region's statistics differ from its style's
        for weight in net.bank.weights:
            weight.mul_(3)
    return net


def _photo(h: int, w: int) -> torch.Tensor:
    return torch.from_numpy(synthetic_photo(1, h, w)).permute(2, 0, 1)[None].float()


def _halves(h: int, w: int, banks: tuple[int, int] = (0, 2)) -> torch.Tensor:
    masks = torch.zeros(1, 3, h, w)
    masks[:, banks[0], :, : w // 2] = 1
    masks[:, banks[1], :, w // 2 :] = 1
    return masks


def _norm_inputs(net: sb.StyleBankNet, run) -> list[torch.Tensor]:
    """The inputs of the decoder's InstanceNorms during `run()`."""
    seen = []
    norms = [m for m in net.decoder if isinstance(m, nn.InstanceNorm2d)]
    hooks = [m.register_forward_pre_hook(lambda _, args: seen.append(args[0])) for m in norms]
    try:
        with torch.no_grad():
            run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _completed(monkeypatch) -> tuple[list, list]:
    """The regions' own statistics that StyleAlone's completions get, and what they return."""
    own, got = [], []
    completion = StyleAlone.completion

    def recording(self, j):
        complete = completion(self, j)

        def wrapped(*sums):
            own.append(moments_mean_var(*sums))
            got.append(complete(*sums))
            return got[-1]

        return wrapped

    monkeypatch.setattr(StyleAlone, "completion", recording)
    return own, got


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_completed_statistics_are_the_style_alones(monkeypatch, kernel_size):
    """Each region's completed mean and variance at both normalisations are near its style
    alone's over the whole image, much nearer than the region's own statistics."""
    net = _net(kernel_size)
    image, masks = _photo(192, 240), _halves(192, 240)
    own, got = _completed(monkeypatch)
    with torch.no_grad():
        net(image, masks)
    assert len(got) == 2
    for r, bank in enumerate((0, 2)):
        alone = _norm_inputs(net, lambda bank=bank: net(image, bank))
        for j, x in enumerate(alone):
            want_mean, want_var = x.mean((2, 3))[0], x.var((2, 3), unbiased=False)[0]
            mean, var = (s[0, r].float() for s in got[j])
            own_mean = own[j][0][0, r].float()
            error, own_error = (mean - want_mean).abs().mean(), (own_mean - want_mean).abs().mean()
            assert error < 0.25 * own_error, (j, r, error, own_error)
            assert ((var - want_var).abs() / want_var).mean() < 0.1, (j, r)


def test_the_fast_path_completes_as_the_module():
    net = _net()
    image, masks = _photo(70, 90), _halves(70, 90)
    with torch.no_grad():
        want = net(image, masks)
        got = fast_model(net)(image, masks)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    net.region_patches = 0
    with torch.no_grad():
        assert (net(image, masks) - want).abs().max() > 1e-2  # the completion changed it


def test_one_region_or_no_patches_is_the_regions_own_normalisation():
    net = _net()
    image = _photo(40, 48)
    everywhere = torch.zeros(1, 3, 40, 48)
    everywhere[:, 1] = 1
    with torch.no_grad():
        torch.testing.assert_close(net(image, everywhere), net(image, 1), rtol=0, atol=1e-5)
        tiny, masks = _photo(12, 12), _halves(12, 12)  # a 3x3 feature map holds no patch
        want = net(tiny, masks)
        net.region_patches = 0
        torch.testing.assert_close(net(tiny, masks), want, rtol=0, atol=0)


def test_batched_strengths_complete_each_image_alone():
    """The server batches requests of different strengths: each as if run alone."""
    net = _net()
    images = torch.cat([_photo(48, 64), _photo(48, 64).flip(-1)])
    masks = _halves(48, 64).expand(2, -1, -1, -1)
    strengths = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        features = net.encode(images)
        both = net.decode(features, (48, 64), masks, strength=strengths)
        for i in range(2):
            one = net.decode(features[i : i + 1], (48, 64), masks[:1], strength=float(strengths[i]))
            torch.testing.assert_close(both[i : i + 1], one, rtol=0, atol=1e-5)


def test_gradients_flow_through_the_completion_float64():
    net = _net().double()
    masks = _halves(16, 20).double()
    image = _photo(16, 20).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: net(x, masks)[..., ::3, ::3], (image,), atol=1e-5)
    out = net(image.detach(), masks)
    out.square().mean().backward()
    assert all(
        w.grad is not None and w.grad.abs().sum() > 0
        for w in (net.bank.weights[0], net.bank.weights[2])
    )


def test_patch_sampler_lattice_and_tiles():
    cpu = torch.device("cpu")
    sampler = PatchSampler((30, 41), 3, 64, regions=2, n=1, channels=2, device=cpu)
    corners = sampler.corners
    assert 1 < len(sampler) <= 64
    assert corners.min() >= 0 and corners[:, 0].max() <= 30 - 4 and corners[:, 1].max() <= 41 - 4
    rows, cols = corners[:, 0].unique(), corners[:, 1].unique()
    assert rows.diff().min() >= 2 and cols.diff().min() >= 2  # centres never overlap
    features = torch.randn(1, 2, 30, 41)
    whole = PatchSampler((30, 41), 3, 64, regions=2, n=1, channels=2, device=cpu)
    whole.add(slice(0, 30), slice(0, 41), features)
    for r0, r1 in ((0, 13), (13, 30)):  # tile by tile: the same patches
        for c0, c1 in ((0, 20), (20, 41)):
            sampler.add(slice(r0, r1), slice(c0, c1), features[..., r0:r1, c0:c1])
    assert torch.equal(sampler.patches, whole.patches)
    i, j = corners[5].tolist()
    assert torch.equal(whole.patches[0, 5], features[0, :, i : i + 4, j : j + 4])
    assert 1 < len(PatchSampler((30, 41), 3, 64, 5, 1, 2, cpu)) <= 16  # shared by 5 regions
    assert len(PatchSampler((3, 40), 3, 64, 2, 1, 2, cpu)) == 0
    assert len(PatchSampler((30, 40), 3, 0, 2, 1, 2, cpu)) == 0


def test_statistics_asked_out_of_order_are_refused():
    net = _net()
    regions = F.one_hot(torch.arange(12).div(6, rounding_mode="floor"), 2).T[None, :, None]
    regions = regions.float().expand(1, 2, 12, 12)
    sampler = net.patch_sampler((12, 12), regions, torch.device("cpu"))
    sampler.add(slice(0, 12), slice(0, 12), torch.randn(1, 128, 12, 12))
    alone = net.style_alone(sampler, regions, torch.tensor([0, 2]), 1.0)
    sums = torch.ones(1, 2), torch.zeros(1, 2, 64), torch.zeros(1, 2, 64), torch.zeros(1, 64)
    with pytest.raises(RuntimeError, match="normalisation 1 asked before 0"):
        alone.completion(1)(*sums)
