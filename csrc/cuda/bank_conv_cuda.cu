// The CUDA kernels of stylebank_fast::bank_conv2d and its backward: the kernels of kernels.cuh
// launched on the current stream by the host code of passes.cuh.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "passes.cuh"

namespace stylebank_fast::cuda {
namespace {

struct CudaLaunch {
  template <typename... Params, typename... Args>
  static void run(dim3 grid, dim3 block, void (*kernel)(Params...), const Args&... args) {
    kernel<<<grid, block, 0, c10::cuda::getCurrentCUDAStream()>>>(args...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

constexpr DeviceKernels kKernels = device_kernels<CudaLaunch>();

struct CudaScope {
  c10::cuda::CUDAGuard guard;
  explicit CudaScope(const at::Tensor& x) : guard(x.device()) {}
};

using CudaOp = DeviceOp<kKernels, CudaScope>;

}  // namespace

TORCH_LIBRARY_IMPL(stylebank_fast, CUDA, m) {
  m.impl("bank_conv2d", &CudaOp::forward);
  m.impl("bank_conv2d_backward", &CudaOp::backward);
}

}  // namespace stylebank_fast::cuda
