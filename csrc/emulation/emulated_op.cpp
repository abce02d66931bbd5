// Test-only ops that run the CUDA kernels' source on CPU tensors under the emulation header:
// torch.ops.stylebank_fast_emulated.bank_conv2d and bank_conv2d_backward, with the operator's
// checks and per-sample blending (bank_conv_problem.cpp) and the CUDA build's host code
// (launch.cuh) around them. Built by the tests (tests/test_emulation_header.py), never installed.
#include <torch/library.h>

#include "../cuda/launch.cuh"

namespace stylebank_fast::emulated {
namespace {

struct EmulatedLaunch {
  template <typename... Params, typename... Args>
  static void run(dim3 grid, dim3 block, void (*kernel)(Params...), const Args&... args) {
    cuda_emulation::launch(grid, block, 0, kernel, args...);
  }
};

constexpr DeviceKernels kKernels = cuda::device_kernels<EmulatedLaunch>();

void check_cpu(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.device().is_cpu(), "stylebank_fast_emulated runs on CPU tensors, got ",
                    x.device());
}

at::Tensor bank_conv2d(const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
                       c10::string_view padding_mode, c10::string_view mask_on) {
  check_cpu(x);
  return bank_conv2d_forward(kKernels, x, weight, bias, mix, std::string(padding_mode),
                             std::string(mask_on));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bank_conv2d_backward(
    const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
    c10::string_view padding_mode, c10::string_view mask_on, std::array<bool, 4> output_mask) {
  check_cpu(x);
  return stylebank_fast::bank_conv2d_backward(kKernels, grad_out, x, weight, bias, mix,
                                              std::string(padding_mode), std::string(mask_on),
                                              output_mask);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(stylebank_fast_emulated, m) {
  m.def(
      "bank_conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor? mix, str padding_mode, "
      "str mask_on) -> Tensor",
      &bank_conv2d);
  m.def(
      "bank_conv2d_backward(Tensor grad_out, Tensor x, Tensor weight, Tensor? bias, Tensor? mix, "
      "str padding_mode, str mask_on, bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)",
      &bank_conv2d_backward);
}

}  // namespace stylebank_fast::emulated
