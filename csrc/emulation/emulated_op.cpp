// Test-only ops that run the CUDA kernels' source on CPU tensors under the emulation header:
// torch.ops.stylebank_fast_emulated.bank_conv2d and bank_conv2d_backward, with the operator's
// checks and per-sample blending (bank_conv_problem.cpp) and the CUDA build's host code
// (passes.cuh) around them. Built by the tests (tests/test_emulation_header.py), never installed.
#include <torch/library.h>

#include "../cuda/passes.cuh"
#include "../schema.h"

namespace stylebank_fast::emulated {
namespace {

struct EmulatedLaunch {
  template <typename... Params, typename... Args>
  static void run(dim3 grid, dim3 block, void (*kernel)(Params...), const Args&... args) {
    cuda_emulation::launch(grid, block, 0, kernel, args...);
  }
};

constexpr DeviceKernels kKernels = cuda::device_kernels<EmulatedLaunch>();

struct EmulatedScope {
  explicit EmulatedScope(const at::Tensor& x) {
    TORCH_CHECK_VALUE(x.device().is_cpu(), "stylebank_fast_emulated runs on CPU tensors, got ",
                      x.device());
  }
};

using EmulatedOp = DeviceOp<kKernels, EmulatedScope>;

}  // namespace

TORCH_LIBRARY_FRAGMENT(stylebank_fast_emulated, m) {
  m.def(kForwardSchema, &EmulatedOp::forward);
  m.def(kBackwardSchema, &EmulatedOp::backward);
}

}  // namespace stylebank_fast::emulated
