"""Fake (meta) kernels and autograd for the ops that csrc/bank_conv.cpp defines."""

from __future__ import annotations

import torch
from torch import Tensor

_OPS = torch.ops.stylebank_fast


@torch.library.register_fake("stylebank_fast::bank_conv2d")
def _bank_conv2d_fake(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    mix: Tensor | None,
    padding_mode: str,
    mask_on: str,
) -> Tensor:
    return x.new_empty(x.shape[0], weight.shape[1], x.shape[2], x.shape[3])


@torch.library.register_fake("stylebank_fast::bank_conv2d_backward")
def _bank_conv2d_backward_fake(
    grad_out: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    mix: Tensor | None,
    padding_mode: str,
    mask_on: str,
    output_mask: list[bool],
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    def like(t: Tensor | None, wanted: bool) -> Tensor:
        return x.new_empty(t.shape) if wanted and t is not None else x.new_empty(0)

    mix_grad = mix if mix is not None and mix.is_floating_point() else None
    return (
        like(x, output_mask[0]),
        like(weight, output_mask[1]),
        like(bias, output_mask[2]),
        like(mix_grad, output_mask[3]),
    )


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, mix, padding_mode, mask_on = inputs
    ctx.save_for_backward(x, weight, bias, mix)
    ctx.padding_mode = padding_mode
    ctx.mask_on = mask_on


def _backward(ctx, grad_out: Tensor):
    x, weight, bias, mix = ctx.saved_tensors
    needs = ctx.needs_input_grad
    output_mask = [
        needs[0],
        needs[1],
        needs[2] and bias is not None,
        needs[3] and mix is not None and mix.is_floating_point(),
    ]
    if not any(output_mask):
        return None, None, None, None, None, None
    grads = _OPS.bank_conv2d_backward(
        grad_out, x, weight, bias, mix, ctx.padding_mode, ctx.mask_on, output_mask
    )
    dx, dweight, dbias, dmix = (g if wanted else None for g, wanted in zip(grads, output_mask))
    return dx, dweight, dbias, dmix, None, None


torch.library.register_autograd(
    "stylebank_fast::bank_conv2d", _backward, setup_context=_setup_context
)


def _autocast_kernel(device_type: str):
    """Under autocast, run the op in the autocast dtype (its neighbours' convolutions run in
    it too): every floating argument is cast, as autocast does for a convolution."""

    def kernel(
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        mix: Tensor | None,
        padding_mode: str,
        mask_on: str,
    ) -> Tensor:
        dtype = torch.get_autocast_dtype(device_type)

        def cast(t: Tensor | None) -> Tensor | None:
            return t.to(dtype) if t is not None and t.is_floating_point() else t

        with torch.autocast(device_type, enabled=False):
            return _OPS.bank_conv2d(
                cast(x), cast(weight), cast(bias), cast(mix), padding_mode, mask_on
            )

    return kernel


_AUTOCAST_LIB = torch.library.Library("stylebank_fast", "IMPL")
for _device_type, _key in (("cpu", "AutocastCPU"), ("cuda", "AutocastCUDA")):
    _AUTOCAST_LIB.impl("bank_conv2d", _autocast_kernel(_device_type), _key)
