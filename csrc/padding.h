// The padding index shared by the CPU kernels, the CUDA kernels and their emulation.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define STYLEBANK_FAST_HOST_DEVICE __host__ __device__
#else
#define STYLEBANK_FAST_HOST_DEVICE
#endif

namespace stylebank_fast {

// Reflection without repeating the edge, valid for -n < i < 2n - 1.
STYLEBANK_FAST_HOST_DEVICE inline int64_t reflect_index(int64_t i, int64_t n) {
  return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

// Index of coordinate i in [0, n) through reflection, or -1 (a zero) under zero padding.
STYLEBANK_FAST_HOST_DEVICE inline int64_t pad_index(int64_t i, int64_t n, bool reflect) {
  if (i >= 0 && i < n) return i;
  return reflect ? reflect_index(i, n) : -1;
}

}  // namespace stylebank_fast
