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

struct CpuScope {
  explicit CpuScope(const at::Tensor& x) {
    TORCH_CHECK_TYPE(x.scalar_type() != at::kHalf,
                     "bank_conv2d: float16 runs on CUDA only; on the CPU use float32, float64 or "
                     "bfloat16");
  }
};

using CpuOp = DeviceOp<kKernels, CpuScope>;

}  // namespace

TORCH_LIBRARY_IMPL(stylebank_fast, CPU, m) {
  m.impl("bank_conv2d", &CpuOp::forward);
  m.impl("bank_conv2d_backward", &CpuOp::backward);
}

}  // namespace stylebank_fast::cpu
