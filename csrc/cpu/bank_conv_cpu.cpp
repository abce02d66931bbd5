// The CPU kernels of stylebank_fast::bank_conv2d and its backward.
#include <torch/library.h>

#include "passes.h"

namespace stylebank_fast::cpu {
namespace {

Gradients backward(const Problem& p, const at::Tensor& g, bool need_x, bool need_weight,
                   bool need_bias, bool need_masks) {
  Gradients out;
  if (need_x) out.x = input_grad(p, g);
  if (need_weight || need_bias)
    std::tie(out.weight, out.bias) = weight_grad(p, g, need_weight, need_bias);
  if (need_masks) out.masks = mask_grad(p, g);
  return out;
}

constexpr DeviceKernels kKernels{forward, backward};

void check_cpu_dtype(const at::Tensor& x) {
  TORCH_CHECK_TYPE(x.scalar_type() != at::kHalf,
                   "bank_conv2d: float16 runs on CUDA only; on the CPU use float32, float64 or "
                   "bfloat16");
}

at::Tensor bank_conv2d_cpu(const at::Tensor& x, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias,
                           const std::optional<at::Tensor>& mix, c10::string_view padding_mode,
                           c10::string_view mask_on) {
  check_cpu_dtype(x);
  return bank_conv2d_forward(kKernels, x, weight, bias, mix, std::string(padding_mode),
                             std::string(mask_on));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bank_conv2d_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
    c10::string_view padding_mode, c10::string_view mask_on, std::array<bool, 4> output_mask) {
  check_cpu_dtype(x);
  return bank_conv2d_backward(kKernels, grad_out, x, weight, bias, mix, std::string(padding_mode),
                              std::string(mask_on), output_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(stylebank_fast, CPU, m) {
  m.impl("bank_conv2d", &bank_conv2d_cpu);
  m.impl("bank_conv2d_backward", &bank_conv2d_backward_cpu);
}

}  // namespace stylebank_fast::cpu
