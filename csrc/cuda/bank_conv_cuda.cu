// The CUDA kernels of stylebank_fast::bank_conv2d and its backward: the kernels of kernels.cuh
// launched on the current stream by the host code of launch.cuh.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launch.cuh"

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

at::Tensor bank_conv2d_cuda(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& mix, c10::string_view padding_mode,
                            c10::string_view mask_on) {
  const c10::cuda::CUDAGuard guard(x.device());
  return bank_conv2d_forward(kKernels, x, weight, bias, mix, std::string(padding_mode),
                             std::string(mask_on));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bank_conv2d_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
    c10::string_view padding_mode, c10::string_view mask_on, std::array<bool, 4> output_mask) {
  const c10::cuda::CUDAGuard guard(x.device());
  return bank_conv2d_backward(kKernels, grad_out, x, weight, bias, mix, std::string(padding_mode),
                              std::string(mask_on), output_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(stylebank_fast, CUDA, m) {
  m.impl("bank_conv2d", &bank_conv2d_cuda);
  m.impl("bank_conv2d_backward", &bank_conv2d_backward_cuda);
}

}  // namespace stylebank_fast::cuda
