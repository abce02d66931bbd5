// C++ API of stylebank_fast::bank_conv2d for libtorch users (link libstylebank_fast_ops).
// The semantics are those of the Python stylebank_fast.bank_conv2d; see README.md.
// Forward only: the library registers the forward and backward ops
// (torch::ops stylebank_fast::bank_conv2d, bank_conv2d_backward) but no autograd formula,
// which the Python package registers (stylebank_fast/_registrations.py). C++ training code
// calls bank_conv2d_backward itself, or wraps both in a torch::autograd::Function.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace stylebank_fast {

at::Tensor bank_conv2d(const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias = std::nullopt,
                       const std::optional<at::Tensor>& mix = std::nullopt,
                       const std::string& padding_mode = "reflect",
                       const std::string& mask_on = "output");

}  // namespace stylebank_fast
