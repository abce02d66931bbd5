// C++ API of stylebank_fast::bank_conv2d for libtorch users (link libstylebank_fast_ops).
// The semantics are those of the Python stylebank_fast.bank_conv2d; see README.md.
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
