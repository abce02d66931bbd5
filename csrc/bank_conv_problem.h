// The operator's arguments, checked once and brought into the two forms the device kernels run:
// one bank per sample, or per-pixel masks over the banks.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace stylebank_fast {

struct Problem {
  at::Tensor x;       // [N, C, H, W], contiguous
  at::Tensor weight;  // [B, Cout, C, k, k], contiguous: the banks the kernel runs
  at::Tensor bias;    // [B, Cout], contiguous, or undefined
  // Exactly one of the two mixing forms is set:
  std::vector<int64_t> bank_of;  // per sample: the bank it runs (size N)
  at::Tensor masks;              // [N or 1, B, H, W], contiguous: per-pixel weights
  bool reflect = true;
  bool mask_on_input = false;

  bool per_pixel() const { return masks.defined(); }
  int64_t ksize() const { return weight.size(3); }
  int64_t radius() const { return weight.size(3) / 2; }
};

enum class MixForm { None, Ids, SampleWeights, PixelWeights };

// Validates every argument (the only place that does) and returns the mix form.
MixForm check_arguments(const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
                        const std::string& padding_mode, const std::string& mask_on);

// One device's fused passes over a Problem; the backward is assembled from them once, for
// every device (bank_conv_problem.cpp).
struct DeviceKernels {
  // out [N, Cout, H, W]
  at::Tensor (*forward)(const Problem&);
  // dL/dx for grad_out g [N, Cout, H, W], contiguous
  at::Tensor (*input_grad)(const Problem&, const at::Tensor& g);
  // dL/dweight [B, Cout, C, k, k] and dL/dbias [B, Cout] (undefined where not wanted)
  std::pair<at::Tensor, at::Tensor> (*weight_grad)(const Problem&, const at::Tensor& g,
                                                   bool need_weight, bool need_bias);
  // dL/dmasks [N, B, H, W] of a per-pixel Problem with the masks on the output
  at::Tensor (*output_mask_grad)(const Problem&, const at::Tensor& g);
};

// The device-independent part of the operator: checks, per-sample filter blending and its
// chain rule, around one device's kernels.
at::Tensor bank_conv2d_forward(const DeviceKernels& kernels, const at::Tensor& x,
                               const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               const std::optional<at::Tensor>& mix,
                               const std::string& padding_mode, const std::string& mask_on);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bank_conv2d_backward(
    const DeviceKernels& kernels, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& mix, const std::string& padding_mode,
    const std::string& mask_on, std::array<bool, 4> output_mask);

// The op's entry points for one device, in the dispatcher's argument types. A `Scope` is built
// from x around the work: a device guard, or a check of what the device cannot run.
template <const DeviceKernels& kernels, typename Scope>
struct DeviceOp {
  static at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& mix, c10::string_view padding_mode,
                            c10::string_view mask_on) {
    const Scope scope(x);
    return bank_conv2d_forward(kernels, x, weight, bias, mix, std::string(padding_mode),
                               std::string(mask_on));
  }

  static std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
      const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& weight,
      const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
      c10::string_view padding_mode, c10::string_view mask_on, std::array<bool, 4> output_mask) {
    const Scope scope(x);
    return bank_conv2d_backward(kernels, grad_out, x, weight, bias, mix, std::string(padding_mode),
                                std::string(mask_on), output_mask);
  }
};

}  // namespace stylebank_fast
