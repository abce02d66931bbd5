// CUDA's execution model on the host, so that g++ can build and run the kernel headers of
// csrc/cuda/ on the CPU (tests only; never part of the installed extension).
//
// - A launch runs its blocks one after another. A block's threads are host threads, started once
//   per launch and reused for every block, that meet at a barrier for __syncthreads and at the end
//   of each block.
// - __shared__ variables become statics: one copy that the blocks reuse in turn, as blocks
//   resident on one SM reuse its shared memory. Launches are serialised for that reason.
// - Dynamic shared memory is a fresh heap buffer of exactly the launch's size (AddressSanitizer
//   sees reads past it).
// - WMMA fragments hold the whole tile in every lane. A lane stores only its own share of an
//   accumulator, so a lane that reads another lane's share without a barrier reads a stale value
//   and races, as on the GPU, where ThreadSanitizer reports it here.
// Not modelled: warp-synchronous execution (a kernel must not rely on lockstep lanes), early
// returns before a barrier (the emulated barrier waits for every thread), inline PTX.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x = 1, unsigned y = 1, unsigned z = 1) : x(x), y(y), z(z) {}
};

inline thread_local dim3 threadIdx{0, 0, 0};
inline thread_local dim3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace cuda_emulation {

// A reusable barrier for a block's threads that also ORs a vote (for __syncthreads_or).
class Barrier {
 public:
  explicit Barrier(int threads) : threads_(threads) {}

  bool arrive_and_wait(bool vote) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t phase = phase_;
    votes_ = votes_ || vote;
    if (++arrived_ == threads_) {
      result_ = votes_;
      votes_ = false;
      arrived_ = 0;
      ++phase_;
      released_.notify_all();
      return result_;
    }
    released_.wait(lock, [&] { return phase_ != phase; });
    return result_;  // stable: the next phase cannot end before this thread arrives again
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  int threads_, arrived_ = 0;
  uint64_t phase_ = 0;
  bool votes_ = false, result_ = false;
};

inline thread_local Barrier* block_barrier = nullptr;
inline thread_local unsigned char* block_dynamic_shared = nullptr;

inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

// kernel<<<grid, block, dynamic_shared_bytes>>>(args...)
template <typename... Params, typename... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_shared_bytes, void (*kernel)(Params...),
            const Args&... args) {
  const std::lock_guard<std::mutex> serial(launch_mutex());
  const unsigned threads = block.x * block.y * block.z;
  Barrier barrier(static_cast<int>(threads));
  std::vector<unsigned char> dynamic_shared(dynamic_shared_bytes);
  auto run = [&](unsigned t) {
    threadIdx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    blockDim = block;
    gridDim = grid;
    block_barrier = &barrier;
    block_dynamic_shared = dynamic_shared.data();
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          blockIdx = {x, y, z};
          kernel(args...);
          barrier.arrive_and_wait(false);  // the next block reuses the shared memory
        }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(run, t);
  for (std::thread& thread : pool) thread.join();
}

inline unsigned lane_id() {
  return (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) % 32;
}

}  // namespace cuda_emulation

inline void __syncthreads() { cuda_emulation::block_barrier->arrive_and_wait(false); }
inline int __syncthreads_or(int predicate) {
  return cuda_emulation::block_barrier->arrive_and_wait(predicate != 0);
}

// `extern __shared__ T buffer[]` of the launch's dynamic size.
template <typename T>
T* dynamic_shared_memory() {
  return reinterpret_cast<T*>(cuda_emulation::block_dynamic_shared);
}

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

// The whole tile, row-major as (row, column) of the matrix it holds, in every lane. Uniform
// element-wise access through x[i], i < num_elements, works as on the GPU.
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  using element = std::conditional_t<std::is_same_v<T, precision::tf32>, float, T>;
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  element x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = std::is_same_v<Layout, row_major> ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K, typename T, typename V>
void fill_fragment(fragment<accumulator, M, N, K, T>& f, V value) {
  std::fill_n(f.x, f.num_elements, static_cast<T>(value));
}

template <int M, int N, int K, typename Tab, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d,
              const fragment<matrix_a, M, N, K, Tab, LA>& a,
              const fragment<matrix_b, M, N, K, Tab, LB>& b,
              const fragment<accumulator, M, N, K, float>& c) {
  float out[M * N];
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float sum = c.x[m * N + n];
      for (int k = 0; k < K; ++k)
        sum += static_cast<float>(a.x[m * K + k]) * static_cast<float>(b.x[k * N + n]);
      out[m * N + n] = sum;
    }
  std::copy_n(out, M * N, d.x);
}

// Each lane writes its own share of the tile (every 32nd element).
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm,
                       layout_t layout) {
  for (int e = static_cast<int>(cuda_emulation::lane_id()); e < M * N; e += 32) {
    const int m = e / N, n = e % N;
    p[layout == mem_row_major ? m * ldm + n : n * ldm + m] = f.x[e];
  }
}

// Rounds to TF32's 10-bit mantissa (to nearest, ties away from zero, as cvt.rna.tf32.f32).
inline float __float_to_tf32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & 0xffffe000u;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace nvcuda::wmma
