"""The fast inference path computes the module path's function (float32), and bfloat16 stays
close to it."""

from __future__ import annotations

import platform

import pytest
import torch
from helpers import requires_extension

import stylebank_fast as sb
from stylebank_fast.fast_inference import convolutions, fast_model, statistics
from stylebank_fast.fast_inference.statistics import channel_mean_var

pytestmark = requires_extension


@pytest.fixture(params=["kept output", "F.conv2d"])
def conv_path(request, monkeypatch) -> None:
    """Convolution outputs go to kept memory through PyTorch's oneDNN in-place convolution
    where it is there, else they are plain F.conv2d results: test both."""
    if request.param == "F.conv2d":
        monkeypatch.setattr(convolutions, "_fused_conv", lambda: None)


@pytest.fixture(params=["bands", "one band"])
def bands(request, monkeypatch) -> None:
    """Passes over pixels run in cache-sized bands: test many small bands and a single one."""
    monkeypatch.setattr(statistics, "BAND_BYTES", 512 if request.param == "bands" else 1 << 40)


@pytest.fixture(scope="module")
def model() -> sb.StyleBankNet:
    torch.manual_seed(0)
    net = sb.StyleBankNet(3).eval()
    for module in net.modules():  # non-trivial InstanceNorm affines
        if isinstance(module, torch.nn.InstanceNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net


def _styles(n: int, h: int, w: int) -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "none": None,
        "index": 1,
        "ids": torch.tensor([2, 0][:n]),
        "weights": torch.tensor([[0.2, 0.5, 0.3]]),
        "masks": torch.rand(n, 3, h, w, generator=g),
        # hard regions of banks 0 and 2 (bank 1 unused: no region of its own)
        "hard": torch.nn.functional.one_hot(2 * torch.randint(2, (n, h, w), generator=g), 3)
        .permute(0, 3, 1, 2)
        .float(),
    }


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (5, 7), (64, 48), (30, 90), (44, 60)])
@pytest.mark.parametrize("form", ["none", "index", "ids", "weights", "masks", "hard"])
def test_fast_equals_module(
    model: sb.StyleBankNet, size: tuple[int, int], form: str, bands: None, conv_path: None
) -> None:
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(2))
    style = _styles(2, *size)[form]
    fast = fast_model(model)
    with torch.inference_mode():
        want = model(x, style, strength=0.7)
        got = fast(x, style, strength=0.7)
    assert got.shape == want.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(2, 3), (3, 5), (7, 9)])
def test_fast_decoder_odd_feature_sizes(
    model: sb.StyleBankNet, size: tuple[int, int], bands: None
) -> None:
    """Upsample + reflect conv as phase convolutions, exact at the borders of odd sizes."""
    features = torch.randn(2, 128, *size)
    with torch.inference_mode():
        want = model.decoder(features)
        got = fast_model(model).decoder(features)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_fast_encoder_features(model: sb.StyleBankNet) -> None:
    x = torch.rand(1, 3, 41, 29)
    with torch.inference_mode():
        torch.testing.assert_close(
            fast_model(model).encode(x), model.encode(x), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("shape", [(2, 5, 130, 131), (1, 3, 7, 9)])
def test_channel_statistics_in_blocks(shape: tuple[int, ...], bands: None) -> None:
    rows = torch.linspace(0, 4, shape[2])[:, None]  # a mean that drifts from block to block
    x = (torch.randn(shape) * 3 + 10 + rows).contiguous(memory_format=torch.channels_last)
    mean, var = channel_mean_var(x)
    expected_var, expected_mean = torch.var_mean(x.double(), (2, 3), correction=0, keepdim=True)
    torch.testing.assert_close(mean, expected_mean.float(), rtol=1e-6, atol=0)
    torch.testing.assert_close(var, expected_var.float(), rtol=1e-5, atol=0)


def test_fast_model_leaves_model_alone(model: sb.StyleBankNet) -> None:
    encoder, decoder = model.encoder, model.decoder
    fast = fast_model(model)
    assert model.encoder is encoder and model.decoder is decoder
    assert fast.bank is model.bank


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a - b).square().mean()))


def test_bfloat16_psnr(model: sb.StyleBankNet) -> None:
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = model(x, {0: 0.5, 2: 0.5}).clamp(0, 1)
        got = fast_model(model, torch.bfloat16)(x, {0: 0.5, 2: 0.5}).clamp(0, 1)
    assert got.dtype == torch.float32
    assert psnr(got, want) > 35


def test_stylizer_fast_matches_module_path(tiny_model_path) -> None:
    photo = torch.rand(3, 45, 61)
    fast = sb.Stylizer(tiny_model_path, device="cpu")
    slow = sb.Stylizer(tiny_model_path, device="cpu", fast=False)
    for kwargs in ({"style": "great_wave"}, {"regions": "auto:2", "region_styles": [0, 2]}):
        torch.testing.assert_close(
            fast.stylize(photo, **kwargs), slow.stylize(photo, **kwargs), rtol=1e-4, atol=1e-4
        )


def test_stylizer_bfloat16_needs_fast(tiny_model_path) -> None:
    with pytest.raises(sb.StyleBankError, match="fast=True"):
        sb.Stylizer(tiny_model_path, device="cpu", fast=False, bfloat16=True)
    out = sb.Stylizer(tiny_model_path, device="cpu", bfloat16=True).stylize(
        torch.rand(3, 20, 24), style=0
    )
    assert out.dtype == torch.float32 and out.shape == (3, 20, 24)


def test_kept_buffers_never_leak_into_results(model: sb.StyleBankNet, conv_path: None) -> None:
    """The padded buffers are reused from call to call (and reallocated for a new size): a
    result must not change when the model runs again, and every size must stay exact."""
    fast = fast_model(model)
    g = torch.Generator().manual_seed(4)
    inputs = [torch.rand(1, 3, *size, generator=g) for size in ((36, 52), (36, 52), (20, 28))]
    with torch.inference_mode():
        got = [fast(x, 1) for x in inputs]
        want = [model(x, 1) for x in inputs]
    for g_, w_ in zip(got, want):
        torch.testing.assert_close(g_, w_, rtol=1e-4, atol=1e-4)
    with torch.inference_mode():  # the encoder's output is handed out: never kept memory
        features = fast.encode(inputs[0])
        copy = features.clone()
        fast.encode(inputs[1] + 0.5)
    assert torch.equal(features, copy)


def test_concurrent_calls_get_their_own_buffers(model: sb.StyleBankNet) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fast = fast_model(model)
    inputs = [
        torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(s)) for s in range(6)
    ]

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fast(x, 2)

    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(run, inputs))
    with torch.inference_mode():
        for x, out in zip(inputs, got):
            torch.testing.assert_close(out, model(x, 2), rtol=1e-4, atol=1e-4)


def test_any_grad_mode_in_any_order(model: sb.StyleBankNet) -> None:
    """Buffers kept from an inference-mode call cannot be written outside it (and back)."""
    fast = fast_model(model)
    x = torch.rand(1, 3, 32, 40)
    with torch.inference_mode():
        want = model(x, 1)
    modes = [torch.inference_mode, torch.no_grad, torch.enable_grad, torch.inference_mode]
    for mode in modes:
        with mode():
            got = fast(x, 1)
        assert not got.requires_grad
        torch.testing.assert_close(got.detach(), want, rtol=1e-4, atol=1e-4)


def test_kept_blocks_serve_every_padded_input_and_read_once_output(
    model: sb.StyleBankNet, conv_path: None
) -> None:
    fast = fast_model(model)
    with torch.inference_mode():
        fast(torch.rand(1, 3, 64, 96), 0)
        assert fast.decoder._buffer_sets is fast.encoder._buffer_sets  # one network, one set
        (buffers,) = fast.encoder._buffer_sets
        blocks = dict(buffers._blocks)
        assert blocks["padded"].numel() == (64 + 8) * (96 + 8) * 32  # the last conv's input
        assert ("output" in blocks) == (convolutions._fused_conv() is not None)
        fast(torch.rand(1, 3, 64, 96), 1)
        assert all(buffers._blocks[kind] is block for kind, block in blocks.items())
        fast(torch.rand(1, 3, 24, 40), 1)  # a much smaller image lets them go
        assert all(buffers._blocks[k].numel() < b.numel() / 2 for k, b in blocks.items())


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available() or platform.machine() not in ("x86_64", "AMD64"),
    reason="PyTorch's oneDNN in-place convolution is expected on x86 builds",
)
def test_this_pytorch_has_the_in_place_convolution() -> None:
    """Not a correctness matter (F.conv2d stands in), but the fast path loses much of its edge
    without it: a PyTorch release that drops or changes it should be noticed."""
    assert convolutions._fused_conv() is not None
