// The operator's schema, and its C++ entry point through the dispatcher.
#include "bank_conv.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <sstream>

#include "schema.h"

#ifndef STYLEBANK_FAST_TORCH_VERSION
#define STYLEBANK_FAST_TORCH_VERSION "unknown"
#endif
#ifndef STYLEBANK_FAST_CUDA_ARCHS
#define STYLEBANK_FAST_CUDA_ARCHS ""
#endif

namespace stylebank_fast {
namespace {

// JSON text: which kernels this library holds, and the torch it was built against.
std::string backend_info() {
  const bool cuda = c10::Dispatcher::singleton()
                        .findSchemaOrThrow("stylebank_fast::bank_conv2d", "")
                        .hasKernelForDispatchKey(c10::DispatchKey::CUDA);
  std::ostringstream s;
  s << "{\"cpu\": true, \"cuda\": " << (cuda ? "true" : "false") << ", \"cuda_archs\": \""
    << (cuda ? STYLEBANK_FAST_CUDA_ARCHS : "") << "\", \"torch_built\": \""
    << STYLEBANK_FAST_TORCH_VERSION << "\"}";
  return s.str();
}

}  // namespace

at::Tensor bank_conv2d(const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
                       const std::string& padding_mode, const std::string& mask_on) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("stylebank_fast::bank_conv2d", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            const std::optional<at::Tensor>&, c10::string_view,
                            c10::string_view)>();
  return op.call(x, weight, bias, mix, padding_mode, mask_on);
}

TORCH_LIBRARY(stylebank_fast, m) {
  m.def(kForwardSchema);
  m.def(kBackwardSchema);
  m.def("_backend_info() -> str", &backend_info);
}

}  // namespace stylebank_fast
