// The operator's schemas, for its library (bank_conv.cpp) and the emulation's (emulated_op.cpp).
#pragma once

namespace stylebank_fast {

inline constexpr char kForwardSchema[] =
    "bank_conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor? mix, str padding_mode, "
    "str mask_on) -> Tensor";
inline constexpr char kBackwardSchema[] =
    "bank_conv2d_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor? bias, Tensor? mix, "
    "str padding_mode, str mask_on, bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)";

}  // namespace stylebank_fast
