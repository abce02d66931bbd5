// What the kernel headers may use of CUDA: nvcc's own, or csrc/emulation/cuda_emulation.h when
// g++ builds the kernels for the CPU. Kernels use nothing else (no inline PTX, no warp-level
// intrinsics beyond WMMA), so that both builds run the same source.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <type_traits>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#else
#include "../emulation/cuda_emulation.h"
#endif

namespace stylebank_fast::cuda {

namespace wmma = nvcuda::wmma;

// The WMMA element type of a kernel scalar type, and the type its tiles are loaded from.
template <typename T>
struct WmmaType {
#if defined(__CUDACC__)
  using element = std::conditional_t<std::is_same_v<T, c10::Half>, __half, __nv_bfloat16>;
#else
  using element = T;
#endif
  using memory = element;
};
template <>
struct WmmaType<float> {
  using element = wmma::precision::tf32;
  using memory = float;
};

}  // namespace stylebank_fast::cuda
