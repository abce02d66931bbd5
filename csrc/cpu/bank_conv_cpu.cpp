// The CPU kernels of stylebank_fast::bank_conv2d and its backward.
#include <torch/library.h>

#include "passes.h"

namespace stylebank_fast::cpu {
namespace {

constexpr DeviceKernels kKernels{forward, input_grad, weight_grad, output_mask_grad};

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
