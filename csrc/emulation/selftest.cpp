// Kernels that test the emulation header itself (tests/test_emulation_header.py): each can skip
// its barrier or read past its shared memory, which must show up as a wrong result or a
// sanitizer report.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "cuda_emulation.h"

namespace stylebank_fast::emulated {
namespace {

constexpr int kTile = 8;

// c = a @ b for n x n float matrices, n a multiple of 8: 8x8 tiles in static shared memory.
__global__ void tiled_matmul(const float* a, const float* b, float* c, int n, bool skip_barrier) {
  __shared__ float ta[kTile][kTile];
  __shared__ float tb[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float sum = 0;
  for (int k0 = 0; k0 < n; k0 += kTile) {
    ta[threadIdx.y][threadIdx.x] = a[row * n + k0 + threadIdx.x];
    tb[threadIdx.y][threadIdx.x] = b[(k0 + threadIdx.y) * n + col];
    if (!skip_barrier) __syncthreads();
    for (int k = 0; k < kTile; ++k) sum += ta[threadIdx.y][k] * tb[k][threadIdx.x];
    __syncthreads();
  }
  c[row * n + col] = sum;
}

// out[block] = whether any thread of the block holds a non-zero flag.
__global__ void block_vote(const int64_t* flags, int64_t* out) {
  const int any = __syncthreads_or(flags[blockIdx.x * blockDim.x + threadIdx.x] != 0);
  if (threadIdx.x == 0) out[blockIdx.x] = any;
}

// Reverses each block's slice through dynamic shared memory, reading `overrun` elements past it.
__global__ void reverse_blocks(const float* x, float* y, int overrun) {
  float* buffer = dynamic_shared_memory<float>();
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  buffer[threadIdx.x] = x[i];
  __syncthreads();
  y[i] = buffer[blockDim.x - 1 - threadIdx.x + overrun];
}

// One warp: c = a @ b for 16x16 bfloat16 tiles on (emulated) tensor cores, staged through shared
// memory; each lane then copies a column, most of which other lanes stored.
__global__ void wmma_tile(const c10::BFloat16* a, const c10::BFloat16* b, float* c,
                          bool skip_barrier) {
  namespace wmma = nvcuda::wmma;
  __shared__ float staged[16 * 16];
  wmma::fragment<wmma::matrix_a, 16, 16, 16, c10::BFloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, c10::BFloat16, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 0.0f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  wmma::store_matrix_sync(staged, fc, 16, wmma::mem_row_major);
  if (!skip_barrier) __syncthreads();
  if (threadIdx.x < 16)
    for (int r = 0; r < 16; ++r) c[r * 16 + threadIdx.x] = staged[r * 16 + threadIdx.x];
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, bool skip_barrier) {
  const int n = static_cast<int>(a.size(0));
  TORCH_CHECK(a.dtype() == at::kFloat && n % kTile == 0 && a.sizes() == b.sizes());
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  at::Tensor c = at::empty_like(ac);
  cuda_emulation::launch(dim3(n / kTile, n / kTile), dim3(kTile, kTile), 0, tiled_matmul,
                         ac.data_ptr<float>(), bc.data_ptr<float>(), c.data_ptr<float>(), n,
                         skip_barrier);
  return c;
}

at::Tensor vote(const at::Tensor& flags, int64_t threads) {
  const at::Tensor f = flags.to(at::kLong).contiguous();
  TORCH_CHECK(f.numel() % threads == 0);
  at::Tensor out = at::empty({f.numel() / threads}, f.options());
  cuda_emulation::launch(dim3(out.numel()), dim3(threads), 0, block_vote, f.data_ptr<int64_t>(),
                         out.data_ptr<int64_t>());
  return out;
}

at::Tensor reverse(const at::Tensor& x, int64_t threads, int64_t overrun) {
  const at::Tensor xc = x.to(at::kFloat).contiguous();
  TORCH_CHECK(xc.numel() % threads == 0);
  at::Tensor y = at::empty_like(xc);
  cuda_emulation::launch(dim3(xc.numel() / threads), dim3(threads), threads * sizeof(float),
                         reverse_blocks, xc.data_ptr<float>(), y.data_ptr<float>(),
                         static_cast<int>(overrun));
  return y;
}

at::Tensor wmma(const at::Tensor& a, const at::Tensor& b, bool skip_barrier) {
  const at::Tensor ac = a.to(at::kBFloat16).contiguous(), bc = b.to(at::kBFloat16).contiguous();
  TORCH_CHECK(ac.numel() == 256 && bc.numel() == 256);
  at::Tensor c = at::empty({16, 16}, a.options().dtype(at::kFloat));
  cuda_emulation::launch(dim3(1), dim3(32), 0, wmma_tile, ac.data_ptr<c10::BFloat16>(),
                         bc.data_ptr<c10::BFloat16>(), c.data_ptr<float>(), skip_barrier);
  return c;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(stylebank_fast_emulated, m) {
  m.def("selftest_matmul(Tensor a, Tensor b, bool skip_barrier) -> Tensor", &matmul);
  m.def("selftest_vote(Tensor flags, int threads) -> Tensor", &vote);
  m.def("selftest_reverse(Tensor x, int threads, int overrun) -> Tensor", &reverse);
  m.def("selftest_wmma(Tensor a, Tensor b, bool skip_barrier) -> Tensor", &wmma);
}

}  // namespace stylebank_fast::emulated
