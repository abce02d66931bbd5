"""ONNX export (styles folded into plain convolutions, regions decomposed into standard ops)
against Stylizer(fast=False), and torch.export keeping the fused op."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import requires_extension

import stylebank_fast as sb
from stylebank_fast.cli import export as export_cli
from stylebank_fast.errors import StyleBankError
from stylebank_fast.onnx_export import OPSET, export_onnx
from stylebank_fast.stylizer import feature_blend

pytestmark = requires_extension
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model() -> sb.StyleBankNet:
    torch.manual_seed(0)
    net = sb.StyleBankNet(4, kernel_size=5, style_names=["a", "b", "c", "d"]).eval()
    with torch.no_grad():  # banks far from each other, so a wrong bank shows
        for weight in net.bank.weights:
            weight.mul_(4)
    net.region_patches = 0  # the ONNX graph normalises each region with its own statistics
    return net


def run(path, **inputs) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]


def labels_for(h: int, w: int) -> torch.Tensor:
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[:, w // 2 :] = 1
    labels[2 * h // 3 :, : w // 3] = 2
    return labels


@pytest.mark.parametrize(
    "style, strength",
    [("b", 1.0), ({"a": 0.2, "d": 0.6}, 1.0), ("c", 0.4), ({"a": 1, "b": 1}, 0.0)],
)
def test_a_style_or_blend_matches_the_stylizer(model, tmp_path, style, strength):
    path = export_onnx(model, tmp_path / "s.onnx", style=style, strength=strength)
    stylizer = sb.Stylizer(model, device="cpu", fast=False)
    for shape in [(1, 3, 37, 50), (2, 3, 29, 18), (1, 3, 5, 9), (1, 3, 1, 3)]:
        image = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))
        expected = stylizer.stylize(image, style=style, strength=strength).numpy()
        out = run(path, image=image)
        assert out.shape == expected.shape
        assert np.abs(out - expected).max() < 1e-3


def test_the_builtin_model_exports_one_convolution_and_no_custom_op(tmp_path):
    path = export_onnx(None, tmp_path / "starry.onnx", style="starry_night")
    graph = onnx.load(str(path))
    assert {o.domain for o in graph.opset_import} == {""}
    assert graph.opset_import[0].version == OPSET
    assert {node.domain for node in graph.graph.node} == {""}
    # encoder 3 + bank 1 + decoder 3 convolutions: the bank is folded into one
    assert sum(node.op_type == "Conv" for node in graph.graph.node) == 7
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["style"] == '{"starry_night": 1.0}' and "[0, 1]" in meta["image"]
    image = torch.rand(1, 3, 41, 33)
    expected = sb.Stylizer(fast=False, device="cpu").stylize(image, style="starry_night")
    assert np.abs(run(path, image=image) - expected.numpy()).max() < 1e-3


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_regions_match_the_stylizer(model, tmp_path, strength):
    region_styles = ["c", {"a": 0.5, "d": 0.5}, "b"]
    path = export_onnx(model, tmp_path / "r.onnx", region_styles=region_styles, strength=strength)
    stylizer = sb.Stylizer(model, device="cpu", fast=False)
    for h, w in [(45, 67), (30, 23)]:
        image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        labels = labels_for(h, w)
        masks = F.one_hot(labels, 3).permute(2, 0, 1)[None].float()
        expected = stylizer.stylize(
            image, regions=labels.numpy(), region_styles=region_styles, strength=strength
        )
        assert np.abs(run(path, image=image, masks=masks) - expected.numpy()).max() < 1e-3
    graph = onnx.load(str(path))
    assert {node.domain for node in graph.graph.node} == {""}


def test_soft_absent_and_empty_regions_match_the_network(model, tmp_path):
    """Soft masks, a region absent from the masks and pixels no mask covers: as the module."""
    weights = torch.tensor([[0.0, 0, 1, 0], [0, 1, 0, 0], [0.5, 0, 0, 0.5]])
    path = export_onnx(model, tmp_path / "r.onnx", region_styles=["c", "b", {"a": 1, "d": 1}])
    h, w = 26, 35
    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, h, w, generator=g)
    masks = torch.rand(1, 3, h, w, generator=g)
    masks[:, 1] = 0  # region 1 nowhere
    masks[..., :8, :8] = 0  # no region in a corner
    out = run(path, image=image, masks=masks)  # one mask set for a batch of two
    bank_masks = torch.einsum("nrhw,rk->nkhw", masks, weights)
    with torch.no_grad():
        expected = model(image, bank_masks).clamp(0, 1)
    assert np.abs(out - expected.numpy()).max() < 1e-3


def test_bad_arguments_are_clear_errors(model, tmp_path):
    with pytest.raises(StyleBankError, match="unknown style 'z'"):
        export_onnx(model, tmp_path / "x.onnx", style="z")
    with pytest.raises(StyleBankError, match="one style or blend"):
        export_onnx(model, tmp_path / "x.onnx", style="a", region_styles=["b"])
    with pytest.raises(StyleBankError, match="one style or blend"):
        export_onnx(model, tmp_path / "x.onnx")
    with pytest.raises(StyleBankError, match="region_styles is empty"):
        export_onnx(model, tmp_path / "x.onnx", region_styles=[])
    with pytest.raises(StyleBankError, match="strength"):
        export_onnx(model, tmp_path / "x.onnx", style="a", strength=1.5)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temp file


def test_the_package_does_not_import_onnx():
    code = "import sys, stylebank_fast; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_without_onnx_the_message_names_the_extra(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(StyleBankError, match=r"stylebank_fast\[onnx\]"):
        export_onnx(model, tmp_path / "x.onnx", style="a")


def test_cli_writes_a_file_onnxruntime_runs(model, tmp_path, capsys):
    model_path = tmp_path / "m.sbk"
    sb.save_model(model, model_path)
    out = tmp_path / "regions.onnx"
    argv = ["--model", str(model_path), "--regions", "2", "--region-styles", "a,b:0.5+c:0.5"]
    assert export_cli.main([*argv, "--strength", "0.7", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    image = torch.rand(1, 3, 20, 28)
    masks = F.one_hot(labels_for(20, 28).clamp(max=1), 2).permute(2, 0, 1)[None].float()
    expected = sb.Stylizer(model, device="cpu", fast=False).stylize(
        image,
        regions=labels_for(20, 28).clamp(max=1).numpy(),
        region_styles=["a", {"b": 0.5, "c": 0.5}],
        strength=0.7,
    )
    assert np.abs(run(out, image=image, masks=masks) - expected.numpy()).max() < 1e-3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--regions", "2", "--region-styles", "a"], "--regions 2 but 1 region styles"),
        (["--regions", "2"], "needs --region-styles"),
        (["--style", "a", "--regions", "1", "--region-styles", "a"], "give --style SPEC, or"),
        (["--region-styles", "a,b", "--style", "a"], "--region-styles needs --regions"),
        (["--style", "nope"], "unknown style 'nope'"),
        (["--style", "a", "--strength", "2"], "strength must be between 0 and 1"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line(model, tmp_path, capsys, argv, message):
    model_path = tmp_path / "m.sbk"
    sb.save_model(model, model_path)
    out = tmp_path / "x.onnx"
    assert export_cli.main([*argv, "--model", str(model_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_never_overwrites_the_model(model, tmp_path, capsys):
    model_path = tmp_path / "m.sbk"
    sb.save_model(model, model_path)
    before = model_path.read_bytes()
    assert export_cli.main(["--model", str(model_path), "--style", "a", "-o", str(model_path)]) == 2
    assert "would overwrite the model" in capsys.readouterr().err
    assert model_path.read_bytes() == before


class _Wrapped(torch.nn.Module):
    def __init__(self, net: sb.StyleBankNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return self.net(images, mix, strength=feature_blend(0.8))


@pytest.mark.parametrize("form", ["ids", "weights", "masks"])
def test_torch_export_keeps_the_fused_op(model, form):
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 23, 30, generator=g)
    mix = {
        "ids": torch.tensor([3, 0]),
        "weights": torch.rand(2, 4, generator=g),
        "masks": torch.rand(2, 4, 23, 30, generator=g) * (torch.rand(1, 4, 1, 1) > 0.3),
    }[form]
    if form == "masks":
        mix[:, 1] = 0  # an unused bank: eager mode drops it, the exported graph keeps it
    program = torch.export.export(_Wrapped(model), (images, mix))
    calls = [n.target for n in program.graph.nodes if n.op == "call_function"]
    fused = [t for t in calls if t == torch.ops.stylebank_fast.bank_conv2d.default]
    assert len(fused) == 1
    with torch.no_grad():
        expected = _Wrapped(model)(images, mix)
        assert torch.allclose(program.module()(images, mix), expected, atol=1e-5)
