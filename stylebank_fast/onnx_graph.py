"""The StyleBank network's layers written as standard ONNX operators (for `onnx_export`).

Only ops of the default domain, at opset 17 (onnxruntime and onnxruntime-web run them):
reflection padding is a `Pad` before an unpadded `Conv`, the decoder's upsampling a nearest
`Resize`, InstanceNorm the `InstanceNormalization` op, and the per-region InstanceNorm of
region fusion (`region_norm.py`) a few reductions.
"""

from __future__ import annotations

import itertools
from typing import Callable, Union

import numpy as np
import torch
from torch import Tensor, nn

from .errors import StyleBankError

OPSET = 17

Array = Union[np.ndarray, Tensor, float, int, list]


class GraphBuilder:
    """Collects nodes and initializers; every value gets a fresh name."""

    def __init__(self, counter: itertools.count | None = None) -> None:
        import onnx  # the caller (onnx_export) has checked the extra is installed

        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self._counter = counter or itertools.count(1)  # shared with subgraphs: names unique

    def _name(self, stem: str) -> str:
        return f"{stem}_{next(self._counter)}"

    def const(self, value: Array, dtype: np.dtype | None = None, stem: str = "const") -> str:
        """An initializer holding `value` (float tensors become float32, ints int64)."""
        if isinstance(value, Tensor):
            value = value.detach().cpu().double().numpy()
        array = np.asarray(value)
        if dtype is None:
            dtype = np.int64 if array.dtype.kind in "iu" else np.float32
        name = self._name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(array.astype(dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs) -> str:
        """Appends one node; returns its (first) output's name."""
        names = [self._name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0]

    def branch(
        self,
        condition: str,
        then: Callable[[GraphBuilder], str],
        otherwise: Callable[[GraphBuilder], str],
    ) -> str:
        """An `If` node: `then` or `otherwise` builds its branch's float output."""
        helper = self.onnx.helper
        graphs = []
        for label, body in (("then", then), ("otherwise", otherwise)):
            sub = GraphBuilder(self._counter)
            result = body(sub)
            output = helper.make_tensor_value_info(result, self.onnx.TensorProto.FLOAT, None)
            graphs.append(helper.make_graph(sub.nodes, label, [], [output], sub.initializers))
        return self.op("If", condition, then_branch=graphs[0], else_branch=graphs[1])

    # --- shapes -----------------------------------------------------------------------------

    def dims(self, x: str, axes: list[int]) -> str:
        """x's sizes along `axes`, as an int64 vector."""
        return self.op("Gather", self.op("Shape", x), self.const(axes), axis=0)

    # --- layers -----------------------------------------------------------------------------

    def pad(self, x: str, pads: str | list[int], mode: str) -> str:
        """Pads the last two axes of a 4-d x: `pads` is [top, left, bottom, right], or the name
        of an int64 vector [bottom, right]."""
        if isinstance(pads, list):
            full = self.const([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])
        else:
            full = self.op("Concat", self.const([0] * 6), pads, axis=0)
        return self.op("Pad", x, full, mode=mode)

    def conv(
        self, x: str, weight: Tensor, bias: Tensor | None, stride: int = 1, reflect: bool = True
    ) -> str:
        """A kxk convolution with k // 2 of reflection (or no) padding."""
        k = weight.shape[-1]
        if reflect and k > 1:
            x = self.pad(x, [k // 2] * 4, "reflect")
        inputs = [x, self.const(weight, stem="weight")]
        if bias is not None:
            inputs.append(self.const(bias, stem="bias"))
        return self.op("Conv", *inputs, kernel_shape=[k, k], strides=[stride, stride])

    def upsample(self, x: str, factor: int) -> str:
        """Nearest upsampling by an integer factor, as torch's nn.Upsample(mode="nearest")."""
        scales = self.const([1.0, 1.0, float(factor), float(factor)])
        return self.op(
            "Resize",
            x,
            "",
            scales,
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    def instance_norm(self, x: str, layer: nn.InstanceNorm2d) -> str:
        c = layer.num_features
        gamma = layer.weight if layer.affine else torch.ones(c)
        beta = layer.bias if layer.affine else torch.zeros(c)
        return self.op(
            "InstanceNormalization",
            x,
            self.const(gamma),
            self.const(beta),
            epsilon=float(layer.eps),
        )

    def region_instance_norm(self, x: str, weights: str, layer: nn.InstanceNorm2d) -> str:
        """`region_norm.region_instance_norm`: x [N,C,H,W], region weights [N|1,R,H,W]."""
        m = self.op("Unsqueeze", weights, self.const([2]))  # [N,R,1,H,W]
        xu = self.op("Unsqueeze", x, self.const([1]))  # [N,1,C,H,W]
        pixels = self.const([3, 4])
        tiny = self.const(float(torch.finfo(torch.float32).tiny))
        mass = self.op("Max", self.op("ReduceSum", m, pixels, keepdims=1), tiny)
        mean = self.op("Div", self.op("ReduceSum", self.op("Mul", m, xu), pixels), mass)
        centred = self.op("Sub", xu, mean)  # [N,R,C,H,W]
        weighted = self.op("Mul", m, centred)
        var = self.op("Div", self.op("ReduceSum", self.op("Mul", weighted, centred), pixels), mass)
        std = self.op("Sqrt", self.op("Add", var, self.const(float(layer.eps))))
        out = self.op("ReduceSum", self.op("Div", weighted, std), self.const([1]), keepdims=0)
        if layer.affine:
            shape = [1, layer.num_features, 1, 1]
            out = self.op("Mul", out, self.const(layer.weight.detach().view(shape)))
            out = self.op("Add", out, self.const(layer.bias.detach().view(shape)))
        return out

    def sequential(self, x: str, layers: nn.Sequential, regions: str | None = None) -> str:
        """The encoder's or decoder's layers in order; with `regions` (region weights at the
        input's size) each InstanceNorm is a per-region one, as in `model.Decoder`."""
        scale = 1
        for layer in layers:
            if isinstance(layer, nn.Conv2d):
                k = layer.kernel_size[0]
                if layer.padding_mode != "reflect" or layer.padding != (k // 2, k // 2):
                    raise StyleBankError(f"cannot export {layer}: expected reflection padding k//2")
                x = self.conv(x, layer.weight, layer.bias, stride=layer.stride[0])
            elif isinstance(layer, nn.InstanceNorm2d):
                if regions is None:
                    x = self.instance_norm(x, layer)
                else:
                    at_layer = regions if scale == 1 else self.upsample(regions, scale)
                    x = self.region_instance_norm(x, at_layer, layer)
            elif isinstance(layer, nn.ReLU):
                x = self.op("Relu", x)
            elif isinstance(layer, nn.Upsample) and layer.mode == "nearest":
                factor = int(layer.scale_factor)
                x = self.upsample(x, factor)
                scale *= factor
            else:
                raise StyleBankError(f"cannot export a network with a {type(layer).__name__} layer")
        return x
