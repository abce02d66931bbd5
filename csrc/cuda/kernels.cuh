// The fused bank_conv2d kernels: implicit-GEMM tiles over the banks that reach each tile.
//
// nvcc builds them for the GPU (bank_conv_cuda.cu) and g++ builds them with the emulation header
// for the CPU (csrc/emulation/), so the tests run this source without a GPU. Everything they use
// of CUDA comes through device.cuh.
//
// Two kernels do all the convolution work:
// - conv_tile_kernel: a block computes out[n, co0:co0+64, 8x8 pixels] as a GEMM of the im2col
//   block (pixels x C*k*k, gathered through the padding into shared memory chunk by chunk) with
//   each active bank's filters, and blends the banks in its epilogue. A bank whose mask is zero
//   over the pixels that the tile depends on is skipped, so hard masks cost about one
//   convolution. It serves the forward pass, the input gradient (g convolved with the flipped,
//   transposed filters over the padded domain) and the mask gradient for masks on the output.
// - weight_grad_kernel: dW[b, co, kk] = sum over pixels of G[co, q] * im2col(x)[q, kk], one
//   split of the pixels per block, written to its own slot, so the sum over splits is made in a
//   fixed order (bitwise reproducible; no atomics anywhere).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../padding.h"
#include "device.cuh"

namespace stylebank_fast::cuda {

constexpr int kThreads = 128;            // four warps
constexpr int kTileM = 64, kTileN = 64;  // a block's product tile
constexpr int kTileK = 32;               // reduction chunk staged in shared memory
constexpr int kLd = kTileK + 8;          // staged row pitch: WMMA wants 32-byte multiples
constexpr int kOutLd = kTileN + 4;       // pitch of the accumulator staging
constexpr int kTileH = 8, kTileW = 8;    // output pixels of a convolution tile
constexpr int kOwned = kTileM * kTileN / kThreads;
static_assert(kTileH * kTileW == kTileM && kThreads == 2 * kTileM);

// Thread t owns the product elements (t % kTileM, t / kTileM + 2 i), i < kOwned: two threads
// per row, so a row's sum needs one exchange.
__device__ __forceinline__ int owned_row() { return threadIdx.x % kTileM; }
__device__ __forceinline__ int owned_col(int i) { return threadIdx.x / kTileM + 2 * i; }

// C[kTileM, kTileN] += A B, A staged as [m][k] and B as [n][k], both with pitch kLd.
// Strict FMA in the scalar type (float32 without TF32, float64).
template <typename T>
struct FmaCore {
  using scalar = T;
  using acc = T;
  T sum[kOwned];

  __device__ static T stage(T v) { return v; }
  __device__ void zero() {
    for (int i = 0; i < kOwned; ++i) sum[i] = 0;
  }
  __device__ void mma(const T* a, const T* b) {
    const T* row = a + owned_row() * kLd;
    for (int k = 0; k < kTileK; ++k) {
      const T av = row[k];
      for (int i = 0; i < kOwned; ++i) sum[i] += av * b[owned_col(i) * kLd + k];
    }
  }
  __device__ void finish() {}
  __device__ T get(int i) const { return sum[i]; }
};

// The same product on tensor cores: float16/bfloat16 (k = 16) or TF32 (k = 8) inputs, float
// accumulation. Each warp owns a 32x32 quarter of the tile as 2x2 fragments; finish() stages
// the result in shared memory, where the epilogue reads the elements it owns.
template <typename T>
struct WmmaCore {
  using scalar = T;
  using acc = float;
  using memory = typename WmmaType<T>::memory;
  using element = typename WmmaType<T>::element;
  static constexpr int kK = std::is_same_v<T, float> ? 8 : 16;
  wmma::fragment<wmma::accumulator, 16, 16, kK, float> sum[2][2];

  __device__ static T stage(float v) {
    if constexpr (std::is_same_v<T, float>) {
      return wmma::__float_to_tf32(v);
    } else {
      return T(v);
    }
  }
  __device__ static int warp_row() { return threadIdx.x / 32 % 2 * 32; }
  __device__ static int warp_col() { return threadIdx.x / 64 * 32; }
  __device__ static float* staging() {
    alignas(32) __shared__ float out[kTileM * kOutLd];
    return out;
  }
  __device__ void zero() {
    for (auto& row : sum)
      for (auto& f : row) wmma::fill_fragment(f, 0.0f);
  }
  __device__ void mma(const T* a, const T* b) {
    for (int k = 0; k < kTileK; k += kK) {
      wmma::fragment<wmma::matrix_a, 16, 16, kK, element, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, kK, element, wmma::col_major> fb[2];
      for (int i = 0; i < 2; ++i) {
        const T* at = a + (warp_row() + 16 * i) * kLd + k;
        const T* bt = b + (warp_col() + 16 * i) * kLd + k;
        wmma::load_matrix_sync(fa[i], reinterpret_cast<const memory*>(at), kLd);
        wmma::load_matrix_sync(fb[i], reinterpret_cast<const memory*>(bt), kLd);
      }
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(sum[i][j], fa[i], fb[j], sum[i][j]);
    }
  }
  __device__ void finish() {
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(staging() + (warp_row() + 16 * i) * kOutLd + warp_col() + 16 * j,
                                sum[i][j], kOutLd, wmma::mem_row_major);
    __syncthreads();
  }
  __device__ float get(int i) const { return staging()[owned_row() * kOutLd + owned_col(i)]; }
};

// The im2col element of output pixel (y, x) and reduction index kk = (c * k + dy) * k + dx:
// src[c] at (y + dy - r, x + dx - r) through the padding, times the mask there (mask may be null).
template <typename Acc, typename T>
__device__ Acc gather(const T* src, const T* mask, int64_t H, int64_t W, int k, bool reflect,
                      int64_t y, int64_t x, int64_t kk) {
  const int64_t c = kk / (k * k), tap = kk % (k * k);
  const int64_t sy = pad_index(y + tap / k - k / 2, H, reflect);
  const int64_t sx = pad_index(x + tap % k - k / 2, W, reflect);
  if (sy < 0 || sx < 0) return Acc(0);
  const Acc v = Acc(src[(c * H + sy) * W + sx]);
  return mask ? v * Acc(mask[sy * W + sx]) : v;
}

// Does the mask plane hold a non-zero value over rows [y0, y1) x columns [x0, x1) grown by
// `halo`, read through the padding? (This thread's share; the caller votes.)
template <typename T>
__device__ bool mask_reaches(const T* mask, int64_t H, int64_t W, int64_t y0, int64_t y1,
                             int64_t x0, int64_t x1, int halo, bool reflect) {
  const int64_t w = x1 - x0 + 2 * halo, count = (y1 - y0 + 2 * halo) * w;
  for (int64_t e = threadIdx.x; e < count; e += kThreads) {
    const int64_t sy = pad_index(y0 - halo + e / w, H, reflect);
    const int64_t sx = pad_index(x0 - halo + e % w, W, reflect);
    if (sy >= 0 && sx >= 0 && static_cast<float>(mask[sy * W + sx]) != 0.0f) return true;
  }
  return false;
}

// Which banks a sample runs: all of them (per-pixel masks), or one: ids[n] where the ids live
// in device memory, else base + step * n (no mix, per-sample weights: nothing to copy to the
// device, which keeps those forms capturable in CUDA graphs).
struct BankMap {
  const int64_t* ids;
  int64_t base, step;
  bool every;
  __device__ int64_t of(int64_t n) const { return ids ? ids[n] : base + step * n; }
};

template <typename T>
struct ConvArgs {
  const T* src;     // [N, c_src, H, W]
  const T* weight;  // [banks, c_dst, c_src * k * k]
  const T* bias;    // [banks, c_dst] or null
  const T* masks;   // [N or 1, banks, H, W] or null
  BankMap banks_of;
  const T* grad;  // mask-gradient mode: grad_out [N, c_dst, H, W]; null otherwise
  T* out;         // [N, c_dst, H + 2 ext, W + 2 ext]; mask-gradient mode: [N, banks, H, W]
  int64_t c_src, c_dst, H, W, banks, mask_stride;  // mask_stride: per sample, 0 to broadcast
  int k, ext, tiles_x;
  bool src_reflect;     // padding of the source: reflect or zeros
  bool mask_at_source;  // masks weight the source pixels (and the bias at the output pixel)
};

// Grid: (tiles of the output domain [-ext, H + ext) x [-ext, W + ext), channel tiles, N).
// In mask-gradient mode (grad set) a block runs every bank and every channel tile and writes
// dL/dm_b(q) = sum_co grad(q) (conv_b(src)(q) + bias_b); otherwise gridDim.y covers c_dst.
template <typename Core>
__global__ void __launch_bounds__(kThreads) conv_tile_kernel(ConvArgs<typename Core::scalar> a) {
  using T = typename Core::scalar;
  using Acc = typename Core::acc;
  alignas(32) __shared__ T tile_a[kTileM * kLd];
  alignas(32) __shared__ T tile_b[kTileN * kLd];
  __shared__ Acc row_sums[kThreads];
  const int64_t n = blockIdx.z, tile = blockIdx.x, HW = a.H * a.W, depth = a.c_src * a.k * a.k;
  const int64_t y0 = tile / a.tiles_x * kTileH - a.ext, x0 = tile % a.tiles_x * kTileW - a.ext;
  const int64_t y1 = y0 + kTileH < a.H + a.ext ? y0 + kTileH : a.H + a.ext;
  const int64_t x1 = x0 + kTileW < a.W + a.ext ? x0 + kTileW : a.W + a.ext;
  const int64_t py = y0 + owned_row() / kTileW, px = x0 + owned_row() % kTileW;
  const bool inside = py < y1 && px < x1;
  const T* src = a.src + n * a.c_src * HW;
  Acc total[kOwned];
  for (Acc& t : total) t = Acc(0);
  Core core;
  const int64_t first = a.banks_of.every ? 0 : a.banks_of.of(n);
  const int64_t last = a.banks_of.every ? a.banks : first + 1;
  for (int64_t b = first; b < last; ++b) {
    const T* mask = a.masks ? a.masks + n * a.mask_stride + b * HW : nullptr;
    if (mask) {
      const int halo = a.mask_at_source ? a.k / 2 : 0;
      const bool reflect = a.mask_at_source ? a.src_reflect : true;
      if (!__syncthreads_or(mask_reaches(mask, a.H, a.W, y0, y1, x0, x1, halo, reflect))) continue;
    }
    const T* src_mask = a.mask_at_source ? mask : nullptr;
    const T* weight = a.weight + b * a.c_dst * depth;
    const Acc out_mask = mask && inside
                             ? Acc(mask[pad_index(py, a.H, true) * a.W + pad_index(px, a.W, true)])
                             : Acc(1);
    Acc row_sum = 0;
    for (int64_t co0 = blockIdx.y * kTileN; co0 < a.c_dst; co0 += gridDim.y * kTileN) {
      core.zero();
      for (int64_t k0 = 0; k0 < depth; k0 += kTileK) {
        for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
          const int row = e % kTileM, col = e / kTileM;
          const int64_t y = y0 + row / kTileW, x = x0 + row % kTileW, kk = k0 + col;
          const bool valid = y < y1 && x < x1 && kk < depth;
          tile_a[row * kLd + col] = Core::stage(
              valid ? gather<Acc>(src, src_mask, a.H, a.W, a.k, a.src_reflect, y, x, kk) : Acc(0));
        }
        for (int e = threadIdx.x; e < kTileN * kTileK; e += kThreads) {
          const int row = e / kTileK, col = e % kTileK;
          const int64_t co = co0 + row, kk = k0 + col;
          tile_b[row * kLd + col] =
              Core::stage(co < a.c_dst && kk < depth ? Acc(weight[co * depth + kk]) : Acc(0));
        }
        __syncthreads();
        core.mma(tile_a, tile_b);
        __syncthreads();
      }
      core.finish();
      for (int i = 0; i < kOwned; ++i) {
        const int64_t co = co0 + owned_col(i);
        if (!inside || co >= a.c_dst) continue;
        const Acc prod = core.get(i), bias = a.bias ? Acc(a.bias[b * a.c_dst + co]) : Acc(0);
        if (a.grad) {
          row_sum += Acc(a.grad[((n * a.c_dst + co) * a.H + py) * a.W + px]) * (prod + bias);
        } else if (a.mask_at_source) {
          total[i] += prod + out_mask * bias;
        } else {
          total[i] += out_mask * (prod + bias);
        }
      }
    }
    if (a.grad) {
      row_sums[threadIdx.x] = row_sum;
      __syncthreads();
      if (threadIdx.x < kTileM && inside)
        a.out[(n * a.banks + b) * HW + py * a.W + px] = T(row_sum + row_sums[threadIdx.x + kTileM]);
    }
  }
  if (a.grad || !inside) return;
  const int64_t Hd = a.H + 2 * a.ext, Wd = a.W + 2 * a.ext;
  for (int i = 0; i < kOwned; ++i) {
    const int64_t co = blockIdx.y * kTileN + owned_col(i);
    if (co < a.c_dst) a.out[((n * a.c_dst + co) * Hd + py + a.ext) * Wd + px + a.ext] = T(total[i]);
  }
}

template <typename T, typename Acc>
struct WeightGradArgs {
  const T* x;      // [N, C, H, W]
  const T* grad;   // [N, c_out, H, W]
  const T* masks;  // [N or 1, banks, H, W] or null
  BankMap banks_of;
  Acc* dw;  // [splits, banks, c_out, C * k * k]
  Acc* db;  // [splits, banks, c_out] or null
  int64_t N, C, c_out, H, W, banks, mask_stride, chunks_per_split;
  int k;
  bool reflect, mask_on_input;
};

// Grid: (reduction-index tiles, output-channel tiles, banks x splits). Split s sums the chunks
// [s * chunks_per_split, ...) of kTileK pixels, skipping chunks that the bank does not reach.
template <typename Core>
__global__ void __launch_bounds__(kThreads)
    weight_grad_kernel(WeightGradArgs<typename Core::scalar, typename Core::acc> a) {
  using T = typename Core::scalar;
  using Acc = typename Core::acc;
  alignas(32) __shared__ T tile_a[kTileM * kLd];  // G [co][q]
  alignas(32) __shared__ T tile_b[kTileN * kLd];  // im2col(x) [kk][q]
  const int64_t b = blockIdx.z % a.banks, split = blockIdx.z / a.banks;
  const int64_t HW = a.H * a.W, depth = a.C * a.k * a.k;
  const int64_t per_sample = (HW + kTileK - 1) / kTileK, chunks = a.N * per_sample;
  const int64_t co0 = blockIdx.y * kTileM, kk0 = blockIdx.x * kTileN;
  const int64_t begin = split * a.chunks_per_split;
  const int64_t end = begin + a.chunks_per_split < chunks ? begin + a.chunks_per_split : chunks;
  const bool sums_bias = a.db && blockIdx.x == 0;
  Acc bias_sum = 0;
  Core core;
  core.zero();
  for (int64_t chunk = begin; chunk < end; ++chunk) {
    const int64_t n = chunk / per_sample, q0 = chunk % per_sample * kTileK;
    const int64_t q1 = q0 + kTileK < HW ? q0 + kTileK : HW;
    if (!a.banks_of.every && a.banks_of.of(n) != b) continue;
    const T* mask = a.masks ? a.masks + n * a.mask_stride + b * HW : nullptr;
    if (mask) {
      const int halo = a.mask_on_input ? a.k / 2 : 0;  // whole rows: a superset of the chunk
      if (!__syncthreads_or(
              mask_reaches(mask, a.H, a.W, q0 / a.W, (q1 - 1) / a.W + 1, 0, a.W, halo, a.reflect)))
        continue;
    }
    const T* x = a.x + n * a.C * HW;
    for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
      const int row = e / kTileK, col = e % kTileK;
      const int64_t co = co0 + row, q = q0 + col;
      Acc v = 0;
      if (co < a.c_out && q < q1) {
        v = Acc(a.grad[(n * a.c_out + co) * HW + q]);
        if (mask && !a.mask_on_input) v *= Acc(mask[q]);
      }
      tile_a[row * kLd + col] = Core::stage(v);
    }
    for (int e = threadIdx.x; e < kTileN * kTileK; e += kThreads) {
      const int row = e / kTileK, col = e % kTileK;
      const int64_t kk = kk0 + row, q = q0 + col;
      const T* src_mask = a.mask_on_input ? mask : nullptr;
      tile_b[row * kLd + col] =
          Core::stage(kk < depth && q < q1
                          ? gather<Acc>(x, src_mask, a.H, a.W, a.k, a.reflect, q / a.W, q % a.W, kk)
                          : Acc(0));
    }
    __syncthreads();
    core.mma(tile_a, tile_b);
    if (sums_bias && threadIdx.x < kTileM)  // the bias term is m * bias for either mask position
      for (int64_t q = q0; q < q1; ++q)
        bias_sum += Acc(tile_a[threadIdx.x * kLd + q - q0]) *
                    (mask && a.mask_on_input ? Acc(mask[q]) : Acc(1));
    __syncthreads();
  }
  core.finish();
  const int64_t slot = split * a.banks + b, co = co0 + owned_row();
  if (co >= a.c_out) return;
  for (int i = 0; i < kOwned; ++i) {
    const int64_t kk = kk0 + owned_col(i);
    if (kk < depth) a.dw[(slot * a.c_out + co) * depth + kk] = core.get(i);
  }
  if (sums_bias && threadIdx.x < kTileM) a.db[slot * a.c_out + co] = bias_sum;
}

// dx[plane, y, x] = the sum of the padded-domain gradient [plane, H + 2r, W + 2r] over the
// padded pixels that reflect onto (y, x): the adjoint of reflect padding.
constexpr int kFoldThreads = 256;

// The padded coordinates (domain starting at -r) that reflect onto i; returns their count.
__device__ __forceinline__ int mirrors(int64_t i, int64_t n, int r, int64_t* out) {
  int count = 0;
  out[count++] = i + r;
  if (i >= 1 && i <= r) out[count++] = r - i;
  if (i >= n - 1 - r && i <= n - 2) out[count++] = r + 2 * (n - 1) - i;
  return count;
}

template <typename T, typename Acc>
__global__ void __launch_bounds__(kFoldThreads)
    fold_reflect_kernel(const T* padded, T* dx, int64_t planes, int64_t H, int64_t W, int r) {
  const int64_t Hp = H + 2 * r, Wp = W + 2 * r, count = planes * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / (H * W), y = i / W % H, x = i % W;
    int64_t rows[3], cols[3];
    const int nr = mirrors(y, H, r, rows), nc = mirrors(x, W, r, cols);
    Acc sum = 0;
    for (int u = 0; u < nr; ++u)
      for (int v = 0; v < nc; ++v) sum += Acc(padded[(plane * Hp + rows[u]) * Wp + cols[v]]);
    dx[i] = T(sum);
  }
}

}  // namespace stylebank_fast::cuda
