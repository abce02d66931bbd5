// Implicit-GEMM convolution of one output tile over a chosen set of banks: the building block
// of every CPU pass (forward, input gradient, weight gradient, mix gradient).
//
// A tile gathers its im2col block (padding resolved while gathering, optionally multiplied by a
// mask at the source pixels) into a per-thread buffer that stays in cache, multiplies it by each
// active bank with the BLAS that ATen ships, and blends the results into the output. Banks
// whose mask is zero over the tile are never run.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../padding.h"

namespace stylebank_fast::cpu {

// Output pixels per tile: big enough for an efficient GEMM, small enough that the im2col block
// (C*k*k x pixels) stays in L2 and that tiles follow region borders closely.
constexpr int64_t kTilePixels = 256;
constexpr int64_t kMaskTileWidth = 32;

struct Rect {
  int64_t y0, x0, h, w;  // in output coordinates
  int64_t pixels() const { return h * w; }
};

// A grid of tiles over the output domain [y_begin, y_begin + H) x [x_begin, x_begin + W).
struct Tiling {
  int64_t y_begin, x_begin, H, W, th, tw;
  Tiling(int64_t y_begin, int64_t x_begin, int64_t H, int64_t W, bool per_pixel)
      : y_begin(y_begin), x_begin(x_begin), H(H), W(W) {
    // One bank per sample: full-width bands, so the GEMM can write straight into the output.
    tw = per_pixel ? std::min(W, kMaskTileWidth) : W;
    th = std::max<int64_t>(1, kTilePixels / tw);
  }
  int64_t rows() const { return (H + th - 1) / th; }
  int64_t cols() const { return (W + tw - 1) / tw; }
  int64_t count() const { return rows() * cols(); }
  Rect operator[](int64_t i) const {
    const int64_t ty = i / cols(), tx = i % cols();
    const int64_t y0 = y_begin + ty * th, x0 = x_begin + tx * tw;
    return {y0, x0, std::min(th, y_begin + H - y0), std::min(tw, x_begin + W - x0)};
  }
};

// What a tile convolves: out(y, x) reads plane(y + dy - r, x + dx - r) through the padding.
template <typename T>
struct Source {
  const T* data;  // [C, H, W]
  int64_t C, H, W, k;
  bool reflect;
  int64_t radius() const { return k / 2; }
  int64_t depth() const { return C * k * k; }  // the GEMM's reduction length
  // Source index of an output coordinate shifted by d - r; -1 where the padding is zero.
  int64_t map(int64_t i, int64_t n) const { return pad_index(i, n, reflect); }
};

// cols[(c*k + dy)*k + dx][i*t.w + j] = mask(s) * plane[c](s) with s = pad(t.y0 + i + dy - r,
// t.x0 + j + dx - r): the mask multiplies source pixels before padding (mask may be null).
template <typename T>
void gather_columns(const Source<T>& s, const T* mask, const Rect& t, T* cols) {
  const int64_t k = s.k, r = s.radius(), P = t.pixels();
  std::vector<int64_t> sx(k * t.w);           // source column of each (dx, j)
  std::vector<int64_t> run_lo(k), run_hi(k);  // the in-image run of j, copied in one go
  for (int64_t dx = 0; dx < k; ++dx) {
    const int64_t shift = t.x0 + dx - r;
    run_lo[dx] = std::clamp<int64_t>(-shift, 0, t.w);
    run_hi[dx] = std::clamp<int64_t>(s.W - shift, run_lo[dx], t.w);
    for (int64_t j = 0; j < t.w; ++j) sx[dx * t.w + j] = s.map(shift + j, s.W);
  }
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t dy = 0; dy < k; ++dy) {
      for (int64_t i = 0; i < t.h; ++i) {
        const int64_t sy = s.map(t.y0 + i + dy - r, s.H);
        T* dst = cols + (c * k + dy) * k * P + i * t.w;
        if (sy < 0) {
          for (int64_t dx = 0; dx < k; ++dx) std::fill_n(dst + dx * P, t.w, T(0));
          continue;
        }
        const T* row = s.data + (c * s.H + sy) * s.W;
        const T* mrow = mask ? mask + sy * s.W : nullptr;
        for (int64_t dx = 0; dx < k; ++dx, dst += P) {
          const int64_t* xs = sx.data() + dx * t.w;
          auto pixel = [&](int64_t j) {
            if (xs[j] < 0) return T(0);
            return mrow ? row[xs[j]] * mrow[xs[j]] : row[xs[j]];
          };
          const int64_t lo = run_lo[dx], hi = run_hi[dx];
          for (int64_t j = 0; j < lo; ++j) dst[j] = pixel(j);
          for (int64_t j = hi; j < t.w; ++j) dst[j] = pixel(j);
          if (hi == lo) continue;
          const T* src = row + xs[lo];
          if (mrow) {
            const T* m = mrow + xs[lo];
            for (int64_t j = 0; j < hi - lo; ++j) dst[lo + j] = src[j] * m[j];
          } else {
            std::memcpy(dst + lo, src, (hi - lo) * sizeof(T));
          }
        }
      }
    }
  }
}

// Does the mask plane [H, W] hold a non-zero value at any pixel that the tile grown by `halo`
// reaches through the padding map `pad` (reflection, or -1 for zeros)?
template <typename T, typename Map>
bool mask_active(const T* mask, int64_t H, int64_t W, const Rect& t, int64_t halo, Map&& pad) {
  for (int64_t y = t.y0 - halo; y < t.y0 + t.h + halo; ++y) {
    const int64_t sy = pad(y, H);
    if (sy < 0) continue;
    for (int64_t x = t.x0 - halo; x < t.x0 + t.w + halo; ++x) {
      const int64_t sx = pad(x, W);
      if (sx >= 0 && mask[sy * W + sx] != T(0)) return true;
    }
  }
  return false;
}

// One bank's part in a tile.
template <typename T>
struct BankTerm {
  const T* weight;  // [Cout, depth]
  const T* bias;    // [Cout] or null
  const T* mask;    // [H, W] in image coordinates, or null (weight 1 everywhere)
};

// A destination plane [Cout, H, W] whose pixel (0, 0) is output coordinate (-origin, -origin).
// Output coordinates outside the image (the input gradient's padded domain) read the masks of
// the pixels they reflect to.
template <typename T>
struct Target {
  T* data;
  int64_t H, W, origin;
  int64_t mask_index(int64_t y, int64_t x, int64_t image_h, int64_t image_w) const {
    return reflect_index(y, image_h) * image_w + reflect_index(x, image_w);
  }
};

// Per-thread buffers of one pass.
template <typename T>
struct Scratch {
  using A = at::opmath_type<T>;
  std::vector<T> cols, product;
  std::vector<A> acc;
  Scratch(int64_t depth, int64_t cout, int64_t pixels)
      : cols(depth * pixels), product(cout * pixels), acc(cout * pixels) {}
};

// A tensor view of a raw buffer (contiguous, or with the given strides).
template <typename T>
at::Tensor wrap(const T* data, at::IntArrayRef sizes, at::OptionalIntArrayRef strides = {}) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  if (strides) return at::from_blob(const_cast<T*>(data), sizes, *strides, options);
  return at::from_blob(const_cast<T*>(data), sizes, options);
}

// product[Cout, P] = weight[Cout, depth] @ cols[depth, P]
template <typename T>
void bank_product(const T* weight, int64_t cout, int64_t depth, const T* cols, int64_t P,
                  T* product) {
  at::Tensor out = wrap(product, {cout, P});
  at::mm_out(out, wrap(weight, {cout, depth}), wrap(cols, {depth, P}));
}

// out[t] = sum over banks of the bank's term at each output pixel q of the tile:
//   mask at source: conv(mask * src)(q) + m(q) * bias
//   mask at output: m(q) * (conv(src)(q) + bias)
// with m(q) read through the padding map for coordinates outside the image.
template <typename T>
void run_tile(const Source<T>& s, int64_t cout, bool mask_at_source,
              const std::vector<BankTerm<T>>& banks, const Rect& t, const Target<T>& out,
              Scratch<T>& buf) {
  using A = at::opmath_type<T>;
  const int64_t P = t.pixels(), plane = out.H * out.W;
  T* first = out.data + (t.y0 + out.origin) * out.W + (t.x0 + out.origin);
  auto store = [&](auto&& value) {  // value(co, p) for every pixel of the tile
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t i = 0; i < t.h; ++i) {
        T* row = first + co * plane + i * out.W;
        for (int64_t j = 0; j < t.w; ++j) row[j] = static_cast<T>(value(co, i * t.w + j));
      }
  };
  if (banks.empty()) {
    store([](int64_t, int64_t) { return A(0); });
    return;
  }
  const int64_t depth = s.depth();
  if (banks.size() == 1 && !banks[0].mask && t.w == out.W) {
    // A plain convolution over full rows: the GEMM writes straight into the output.
    const T* bias = banks[0].bias;
    store([&](int64_t co, int64_t) { return bias ? A(bias[co]) : A(0); });
    gather_columns(s, static_cast<const T*>(nullptr), t, buf.cols.data());
    wrap(first, {cout, P}, at::IntArrayRef{plane, 1})
        .addmm_(wrap(banks[0].weight, {cout, depth}), wrap(buf.cols.data(), {depth, P}));
    return;
  }
  // The output mask of each pixel, through the padding map (dx runs over the padded domain).
  std::vector<int64_t> mask_at(P);
  for (int64_t i = 0; i < t.h; ++i)
    for (int64_t j = 0; j < t.w; ++j)
      mask_at[i * t.w + j] = out.mask_index(t.y0 + i, t.x0 + j, s.H, s.W);
  std::fill(buf.acc.begin(), buf.acc.end(), A(0));
  bool gathered = false;
  for (const BankTerm<T>& b : banks) {
    const T* source_mask = mask_at_source ? b.mask : nullptr;
    if (!gathered || source_mask) gather_columns(s, source_mask, t, buf.cols.data());
    gathered = !source_mask;
    bank_product(b.weight, cout, depth, buf.cols.data(), P, buf.product.data());
    for (int64_t co = 0; co < cout; ++co) {
      const T* prod = buf.product.data() + co * P;
      A* acc = buf.acc.data() + co * P;
      const A bias = b.bias ? A(b.bias[co]) : A(0);
      if (!b.mask) {
        for (int64_t p = 0; p < P; ++p) acc[p] += A(prod[p]) + bias;
      } else if (mask_at_source) {
        for (int64_t p = 0; p < P; ++p) acc[p] += A(prod[p]) + A(b.mask[mask_at[p]]) * bias;
      } else {
        for (int64_t p = 0; p < P; ++p) acc[p] += A(b.mask[mask_at[p]]) * (A(prod[p]) + bias);
      }
    }
  }
  store([&](int64_t co, int64_t p) { return buf.acc[co * P + p]; });
}

// Multiply-adds below which one more thread costs more than it brings.
constexpr int64_t kWorkPerThread = int64_t(1) << 22;

// Runs fn(job, scratch) for jobs [0, n) of about `job_work` multiply-adds each on ATen's thread
// pool, handing jobs out one at a time (tiles differ in cost with the masks). Each job writes
// its own outputs, so the result does not depend on which thread ran it.
template <typename MakeScratch, typename Fn>
void parallel_jobs(int64_t n, int64_t job_work, MakeScratch&& make_scratch, Fn&& fn) {
  std::atomic<int64_t> next{0};
  const int64_t by_work = std::max<int64_t>(1, n * job_work / kWorkPerThread);
  const int64_t workers = std::min<int64_t>({at::get_num_threads(), n, by_work});
  auto work = [&](int64_t begin, int64_t end) {
    auto scratch = make_scratch();
    for (int64_t w = begin; w < end; ++w)
      for (int64_t job = next++; job < n; job = next++) fn(job, scratch);
  };
  if (workers <= 1) return work(0, 1);
  at::parallel_for(0, workers, 1, work);
}

}  // namespace stylebank_fast::cpu
