"""How torch sees the ops that csrc/bank_conv.cpp defines: fake (meta) kernels that check\nshapes at trace time, autograd (first derivatives; double backward refused), autocast."""

from __future__ import annotations

import torch
from torch import Tensor

_OPS = torch.ops.stylebank_fast


def _check_shapes(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    mix: Tensor | None,
    padding_mode: str,
    mask_on: str,
) -> None:
    """What csrc/bank_conv_problem.cpp checks without reading data (style id ranges need the
    values), so that torch.compile reports a bad call at trace time. The C++ checks stay the
    reference: these mirror them, with shorter messages."""

    def same_place(t: Tensor, name: str) -> None:
        torch._check(
            t.device == x.device, lambda: f"bank_conv2d: {name} is on {t.device}, x on {x.device}"
        )
        torch._check_type(
            t.dtype == x.dtype, lambda: f"bank_conv2d: {name} has dtype {t.dtype}, x has {x.dtype}"
        )

    shape = list
    torch._check_value(
        padding_mode in ("reflect", "zeros"),
        lambda: f"bank_conv2d: padding_mode must be 'reflect' or 'zeros', got {padding_mode!r}",
    )
    torch._check_value(
        mask_on in ("output", "input"),
        lambda: f"bank_conv2d: mask_on must be 'output' or 'input', got {mask_on!r}",
    )
    torch._check_value(
        x.dim() == 4, lambda: f"bank_conv2d: x must be 4-D [N, C, H, W], got {shape(x.shape)}"
    )
    torch._check_type(
        x.dtype in (torch.float32, torch.float64, torch.bfloat16)
        or (x.dtype == torch.float16 and x.device.type == "cuda"),
        lambda: (
            f"bank_conv2d: x must be float32, float64 or bfloat16 (float16 on CUDA), "
            f"got {x.dtype} on {x.device.type}"
        ),
    )
    torch._check_value(
        weight.dim() == 5,
        lambda: f"bank_conv2d: weight must be [K, Cout, C, k, k], got {shape(weight.shape)}",
    )
    same_place(weight, "weight")
    n_banks, c_out, c_in, k = weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]
    torch._check_value(
        n_banks >= 1 and c_out >= 1, lambda: "bank_conv2d: weight needs K >= 1, Cout >= 1"
    )
    torch._check_value(
        c_in == x.shape[1], lambda: f"bank_conv2d: weight expects C={c_in}, x has C={x.shape[1]}"
    )
    torch._check_value(
        k == weight.shape[4] and k % 2 == 1 and 1 <= k <= 7,
        lambda: f"bank_conv2d: kernel must be square, odd, 1..7, got {shape(weight.shape[3:])}",
    )
    torch._check_value(
        padding_mode != "reflect" or (k // 2 < x.shape[2] and k // 2 < x.shape[3]),
        lambda: (
            f"bank_conv2d: reflect padding {k // 2} needs H, W > {k // 2}, got {shape(x.shape[2:])}"
        ),
    )
    if bias is not None:
        same_place(bias, "bias")
        torch._check_value(
            bias.dim() == 2 and bias.shape[0] == n_banks and bias.shape[1] == c_out,
            lambda: (
                f"bank_conv2d: bias must be [K, Cout] = [{n_banks}, {c_out}], got {shape(bias.shape)}"
            ),
        )
    if mix is None:
        torch._check_value(
            n_banks == 1, lambda: f"bank_conv2d: mix=None needs K=1, weight has K={n_banks}"
        )
        return
    torch._check(
        mix.device == x.device, lambda: f"bank_conv2d: mix is on {mix.device}, x on {x.device}"
    )
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    if not mix.is_floating_point():
        torch._check_type(
            mix.dtype == torch.long,
            lambda: f"bank_conv2d: style ids must be int64, got {mix.dtype}",
        )
        torch._check_value(
            mix.dim() == 1 and mix.shape[0] == n,
            lambda: f"bank_conv2d: style ids must have shape [N] = [{n}], got {shape(mix.shape)}",
        )
        return
    same_place(mix, "mix")
    lead = mix.dim() > 0 and (mix.shape[0] == n or mix.shape[0] == 1)
    wanted = [n_banks] if mix.dim() == 2 else [n_banks, h, w]
    torch._check_value(
        mix.dim() in (2, 4) and lead and list(mix.shape[1:]) == wanted,
        lambda: (
            f"bank_conv2d: a float mix must be [N, K] or [N, K, H, W] = [{n}, {n_banks}, {h}, {w}] "
            f"(a leading 1 broadcasts), got {shape(mix.shape)}"
        ),
    )


@torch.library.register_fake("stylebank_fast::bank_conv2d")
def _bank_conv2d_fake(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    mix: Tensor | None,
    padding_mode: str,
    mask_on: str,
) -> Tensor:
    _check_shapes(x, weight, bias, mix, padding_mode, mask_on)
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


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        "stylebank_fast.bank_conv2d supports first derivatives only: differentiating its "
        "gradient (create_graph=True, double backward) is not implemented"
    )


def _backward_setup_context(ctx, inputs, output) -> None:
    pass


torch.library.register_autograd(
    "stylebank_fast::bank_conv2d_backward",
    _no_double_backward,
    setup_context=_backward_setup_context,
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
