"""Export a StyleBank network for one style, a fixed blend, or K regions to a plain ONNX file.

The banks are linear, so a style or a fixed blend (and the strength, which blends the bank's
features with the encoder's) folds into one convolution: the exported graph is an ordinary
convolutional network with no custom op. A region export takes masks as a second input and
runs the fused op decomposed into standard ops: one convolution computing the K styles' banks
together, a mask-weighted sum, and the decoder's per-region InstanceNorm (`region_norm.py`).

Writing ONNX needs the `onnx` package (the optional extra `stylebank_fast[onnx]`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ._files import atomic_write
from ._version import __version__
from .errors import StyleBankError
from .extras import require_extra
from .model import StyleBankNet
from .onnx_graph import OPSET, GraphBuilder
from .styles import Style, blend_weights
from .stylizer import feature_blend, resolve_model

__all__ = ["OPSET", "export_onnx", "INPUT_DOC", "OUTPUT_DOC", "MASKS_DOC"]

INPUT_DOC = "float32 RGB in [0, 1], NCHW [N, 3, H, W], any size"
OUTPUT_DOC = "float32 RGB in [0, 1], NCHW [N, 3, H, W] (the input's size)"
MASKS_DOC = (
    "float32 region masks [N or 1, K, H, W] at the image's size: mask k weighs region k's "
    "style (one-hot for hard regions; soft masks should sum to 1 at each pixel)"
)


def _needs_onnx() -> None:
    require_extra("exporting to ONNX needs the onnx package", "onnx", {"onnx": "onnx"})


def _folded_bank(net: StyleBankNet, weights: Tensor, blend: float) -> tuple[Tensor, Tensor]:
    """One convolution equal to the blend `weights` [K] of the banks, then the strength's
    `blend` with the features themselves (an identity kernel: its centre tap)."""
    w = weights.to(torch.float64)
    kernel = torch.einsum("k,koihw->oihw", w, torch.stack(list(net.bank.weights)).double())
    bias = torch.einsum("k,ko->o", w, torch.stack(list(net.bank.biases)).double())
    identity = torch.zeros_like(kernel)
    centre = net.kernel_size // 2
    identity[:, :, centre, centre] = torch.eye(kernel.shape[0], dtype=torch.float64)
    return blend * kernel + (1 - blend) * identity, blend * bias


def _padded(g: GraphBuilder, image: str, net: StyleBankNet) -> tuple[str, str, str]:
    """The image padded bottom/right as `StyleBankNet._pad` pads it (reflecting, or
    replicating where the padding is not smaller than the image), its size (H, W) and the
    padding (bottom, right)."""
    size = g.dims(image, [2, 3])
    four = g.const([4, 4])
    multiple = g.op("Mul", g.op("Div", g.op("Add", size, g.const([3, 3])), four), four)
    padded = g.op("Max", multiple, g.const([net.min_size()] * 2))
    pad = g.op("Sub", padded, size)
    smaller = g.op("Cast", g.op("Less", pad, size), to=7)  # int64: ReduceMin takes no bool
    reflect = g.op("Cast", g.op("ReduceMin", smaller, keepdims=0), to=9)  # bool
    result = g.branch(
        reflect,
        lambda sub: sub.pad(image, pad, "reflect"),
        lambda sub: sub.pad(image, pad, "edge"),
    )
    return result, size, pad


def _region_bank(
    g: GraphBuilder,
    net: StyleBankNet,
    features: str,
    masks: str,
    pad: str,
    region_weights: Tensor,
) -> tuple[str, str]:
    """The fused op's region fusion (mask on the output) in standard ops, for the banks that
    the regions' styles use: the styled features and the decoder's region weights."""
    used = torch.nonzero(region_weights.sum(0) > 0).flatten().tolist()
    n_used = len(used)
    # masks at the feature map's size: padded as the image, averaged per 4x4 cell
    pooled = g.op("AveragePool", g.pad(masks, pad, "edge"), kernel_shape=[4, 4], strides=[4, 4])
    to_banks = region_weights[:, used].t()[:, :, None, None]  # [B, K, 1, 1]
    bank_masks = g.op("Conv", pooled, g.const(to_banks), kernel_shape=[1, 1])  # [N, B, h, w]

    # region_norm.region_weights: normalised per pixel; where all are 0, the used banks evenly
    peak = g.op("ReduceMax", bank_masks, axes=[0, 2, 3])  # [1, B, 1, 1]
    present = g.op("Cast", g.op("Greater", peak, g.const(0.0)), to=1)  # to float
    anything = g.op("Greater", g.op("ReduceMax", present, keepdims=0), g.const(0.0))
    present = g.op("Where", anything, present, g.const(1.0))
    even = g.op("Div", present, g.op("ReduceSum", present, keepdims=1))
    total = g.op("ReduceSum", bank_masks, g.const([1]), keepdims=1)
    share = g.op("Div", bank_masks, g.op("Max", total, g.const(1e-30)))
    weights = g.op("Where", g.op("Greater", total, g.const(0.0)), share, even)

    stacked_w = torch.stack([net.bank.weights[k] for k in used]).flatten(0, 1)
    stacked_b = torch.stack([net.bank.biases[k] for k in used]).flatten()
    styled = g.conv(features, stacked_w, stacked_b)  # [N, B*C, h, w]
    shape = g.op(
        "Concat",
        g.dims(features, [0]),
        g.const([n_used, stacked_w.shape[0] // n_used]),
        g.dims(features, [2, 3]),
        axis=0,
    )
    per_bank = g.op("Reshape", styled, shape)  # [N, B, C, h, w]
    masked = g.op("Mul", per_bank, g.op("Unsqueeze", bank_masks, g.const([2])))
    return g.op("ReduceSum", masked, g.const([1]), keepdims=0), weights


def export_onnx(
    model: StyleBankNet | str | os.PathLike[str] | None,
    path: str | os.PathLike[str],
    style: Style | None = None,
    region_styles: Sequence[Style] | None = None,
    strength: float = 1.0,
) -> Path:
    """Write the network for one style or blend, or for K regions, as an ONNX file.

    Args:
        model: a `StyleBankNet`, the path of a model file, or None for the built-in model.
        path: the ONNX file to write (atomically).
        style: a name, an index or a blend {style: weight} (normalised to sum 1): the graph
            takes `image` only, and the bank is folded into one convolution.
        region_styles: K styles (names, indices or blends), one per region, instead of
            `style`: the graph takes `image` and `masks` [N|1, K, H, W] at the image's size.
        strength: as `Stylizer.stylize`'s (1 the full style, 0 the reconstruction).

    The graph computes `Stylizer(model, fast=False).stylize` on the same inputs: `image`
    float32 RGB [N,3,H,W] in [0,1] (any size) -> `stylized`, the same layout and
    size, clamped to [0,1]. Opset 17, standard operators only. Returns the path.
    """
    _needs_onnx()
    import onnx
    from onnx import TensorProto, helper

    if (style is None) == (region_styles is None):
        raise StyleBankError("export one style or blend (style=), or regions (region_styles=)")
    if not 0 <= strength <= 1:
        raise StyleBankError(f"strength must be between 0 and 1, got {strength}")
    net = resolve_model(model)
    names = net.style_names
    if region_styles is not None:
        if len(region_styles) == 0:
            raise StyleBankError("region_styles is empty: give one style per region")
        region_weights = torch.stack(
            [blend_weights(names, s, normalise=True) for s in region_styles]
        )
    else:
        weights = blend_weights(names, style, normalise=True)
    blend = feature_blend(strength)

    g = GraphBuilder()
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    with torch.no_grad():
        padded, size, pad = _padded(g, "image", net)
        features = g.sequential(padded, net.encoder)
        regions = None
        if region_styles is None:
            kernel, bias = _folded_bank(net, weights, blend)
            styled = g.conv(features, kernel, bias)
        else:
            k = len(region_styles)
            inputs.append(
                helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["M", k, "H", "W"])
            )
            styled, regions = _region_bank(g, net, features, "masks", pad, region_weights)
            if blend != 1:  # torch.lerp(features, styled, blend)
                step = g.op("Mul", g.op("Sub", styled, features), g.const(float(blend)))
                styled = g.op("Add", features, step)
        decoded = g.sequential(styled, net.decoder, regions)
    cropped = g.op("Slice", decoded, g.const([0, 0]), size, g.const([2, 3]))
    g.nodes.append(helper.make_node("Clip", [cropped, g.const(0.0), g.const(1.0)], ["stylized"]))
    output = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["N", 3, "H", "W"])
    inputs[0].doc_string = INPUT_DOC
    output.doc_string = OUTPUT_DOC
    if len(inputs) > 1:
        inputs[1].doc_string = MASKS_DOC

    what = {"strength": strength}
    if region_styles is None:
        what["style"] = _described(names, weights)
    else:
        what["region_styles"] = [_described(names, w) for w in region_weights]
    graph = helper.make_graph(g.nodes, "stylebank", inputs, [output], g.initializers)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="stylebank_fast",
        producer_version=__version__,
        doc_string=f"StyleBank style transfer: {json.dumps(what)}. image: {INPUT_DOC}.",
    )
    onnx_model.ir_version = 8  # what onnxruntime >= 1.14 (and onnxruntime-web) read
    meta = {
        "image": INPUT_DOC,
        "stylized": OUTPUT_DOC,
        **{k: json.dumps(v) for k, v in what.items()},
    }
    if region_styles is not None:
        meta["masks"] = MASKS_DOC
    helper.set_model_props(onnx_model, meta)
    onnx.checker.check_model(onnx_model, full_check=True)
    out = Path(path)
    data = onnx_model.SerializeToString()
    atomic_write(out, lambda f: f.write(data))
    return out


def _described(names: Sequence[str], weights: Tensor) -> dict[str, float]:
    """A blend's weights by style name (the styles with weight > 0)."""
    return {names[k]: round(float(w), 6) for k, w in enumerate(weights) if w > 0}
