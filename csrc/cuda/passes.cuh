// The CUDA kernels' passes (host side), written once for both builds. `Launch::run(grid, block,
// kernel, args...)` runs a kernel: on the current CUDA stream (bank_conv_cuda.cu), or on the CPU
// under the emulation (csrc/emulation/emulated_op.cpp). Tensors live on the kernels' device.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/OpMathType.h>

#include <algorithm>

#include "../bank_conv_problem.h"
#include "kernels.cuh"

namespace stylebank_fast::cuda {

template <typename Core>
struct CoreTag {
  using type = Core;
};

// Tensor cores for float16 and bfloat16, and for float32 where torch allows TF32 in cuDNN
// convolutions (torch.backends.cudnn.allow_tf32); strict FMA otherwise and for float64.
template <typename Fn>
void with_core(at::ScalarType dtype, Fn&& fn) {
  switch (dtype) {
    case at::kDouble:
      return fn(CoreTag<FmaCore<double>>{});
    case at::kFloat:
      if (at::globalContext().allowTF32CuDNN()) return fn(CoreTag<WmmaCore<float>>{});
      return fn(CoreTag<FmaCore<float>>{});
    case at::kHalf:
      return fn(CoreTag<WmmaCore<c10::Half>>{});
    case at::kBFloat16:
      return fn(CoreTag<WmmaCore<c10::BFloat16>>{});
    default:
      TORCH_CHECK_TYPE(false, "bank_conv2d: no CUDA kernel for dtype ", dtype);
  }
}

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The banks of a Problem's samples, and the device copy of their ids where one is needed.
struct Banks {
  BankMap map;
  at::Tensor ids;
};

inline Banks banks_of(const Problem& p) {
  if (p.per_pixel()) return {{nullptr, 0, 0, true}, at::Tensor()};
  const std::vector<int64_t>& b = p.bank_of;
  const int64_t step = b.size() > 1 ? b[1] - b[0] : 0;
  bool affine = true;
  for (size_t n = 0; n < b.size(); ++n) affine = affine && b[n] == b[0] + step * int64_t(n);
  if (affine) return {{nullptr, b[0], step, false}, at::Tensor()};
  at::Tensor ids = at::tensor(b, at::dtype(at::kLong)).to(p.x.device());
  return {{ids.data_ptr<int64_t>(), 0, 0, false}, ids};
}

constexpr BankMap kEveryBank{nullptr, 0, 0, true};

inline int64_t mask_stride(const at::Tensor& masks) {
  return masks.defined() && masks.size(0) > 1 ? masks[0].numel() : 0;
}

// One conv_tile_kernel launch: out = the fused convolution of src [N, c_src, H, W] by the banks
// `weight` [B, c_dst, c_src, k, k] over the output domain grown by `ext` on each side.
struct ConvPass {
  at::Tensor src, weight, bias, masks;
  BankMap banks_of;
  at::Tensor grad, out;
  bool src_reflect, mask_at_source;
  int64_t ext;
};

template <typename Launch>
void launch_conv(const ConvPass& c) {
  const int64_t N = c.src.size(0), H = c.src.size(2), W = c.src.size(3);
  const int64_t c_dst = c.weight.size(1);
  const int64_t tiles_x = ceil_div(W + 2 * c.ext, kTileW);
  const int64_t tiles = ceil_div(H + 2 * c.ext, kTileH) * tiles_x;
  TORCH_CHECK(N <= 65535 && tiles < (int64_t(1) << 31),
              "bank_conv2d: the CUDA kernels take at most 65535 samples per call, got ", N);
  with_core(c.src.scalar_type(), [&](auto tag) {
    using Core = typename decltype(tag)::type;
    using T = typename Core::scalar;
    const ConvArgs<T> args{c.src.data_ptr<T>(),
                           c.weight.data_ptr<T>(),
                           data_or_null<T>(c.bias),
                           data_or_null<T>(c.masks),
                           c.banks_of,
                           data_or_null<T>(c.grad),
                           c.out.data_ptr<T>(),
                           c.src.size(1),
                           c_dst,
                           H,
                           W,
                           c.weight.size(0),
                           mask_stride(c.masks),
                           static_cast<int>(c.weight.size(3)),
                           static_cast<int>(c.ext),
                           static_cast<int>(tiles_x),
                           c.src_reflect,
                           c.mask_at_source};
    const dim3 grid(static_cast<unsigned>(tiles),
                    c.grad.defined() ? 1u : static_cast<unsigned>(ceil_div(c_dst, kTileN)),
                    static_cast<unsigned>(N));
    Launch::run(grid, dim3(kThreads), conv_tile_kernel<Core>, args);
  });
}

template <typename Launch>
at::Tensor forward(const Problem& p) {
  at::Tensor out =
      at::empty({p.x.size(0), p.weight.size(1), p.x.size(2), p.x.size(3)}, p.x.options());
  const Banks banks = banks_of(p);
  launch_conv<Launch>({p.x, p.weight, p.bias, p.masks, banks.map, at::Tensor(), out, p.reflect,
                       p.mask_on_input, 0});
  return out;
}

// The transposed convolution is a convolution of g (zero padding) with flipped, transposed
// filters, over the padded domain when the forward pass reflected; the padding's adjoint folds
// that domain back onto the image.
template <typename Launch>
at::Tensor input_grad(const Problem& p, const at::Tensor& g) {
  const int64_t ext = p.reflect ? p.radius() : 0;
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  at::Tensor dx = at::empty_like(p.x);
  at::Tensor target = ext ? at::empty({N, C, H + 2 * ext, W + 2 * ext}, p.x.options()) : dx;
  // Masks on the forward output weight g's pixels here, and the other way round.
  const Banks banks = banks_of(p);
  launch_conv<Launch>({g, p.weight.flip({3, 4}).transpose(1, 2).contiguous(), at::Tensor(), p.masks,
                       banks.map, at::Tensor(), target, false, !p.mask_on_input, ext});
  if (!ext) return dx;
  with_core(p.x.scalar_type(), [&](auto tag) {
    using Core = typename decltype(tag)::type;
    using T = typename Core::scalar;
    const int64_t blocks = std::min<int64_t>(ceil_div(dx.numel(), kFoldThreads), 4096);
    Launch::run(dim3(static_cast<unsigned>(blocks)), dim3(kFoldThreads),
                fold_reflect_kernel<T, typename Core::acc>, target.data_ptr<T>(), dx.data_ptr<T>(),
                N * C, H, W, static_cast<int>(ext));
  });
  return dx;
}

// Pixel splits of the weight gradient: enough blocks to fill a GPU, a bounded workspace, and a
// count that depends only on the shapes (so the summation order, and the result, never change).
inline int64_t weight_grad_splits(int64_t blocks, int64_t chunks, int64_t slot_size) {
  const int64_t by_blocks = ceil_div(1024, blocks);
  const int64_t by_memory = std::max<int64_t>(1, (int64_t(1) << 26) / slot_size);
  return std::clamp<int64_t>(std::min(by_blocks, by_memory), 1, chunks);
}

template <typename Launch>
std::pair<at::Tensor, at::Tensor> weight_grad(const Problem& p, const at::Tensor& g,
                                              bool need_weight, bool need_bias) {
  need_bias = need_bias && p.bias.defined();
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  const int64_t B = p.weight.size(0), c_out = p.weight.size(1), k = p.ksize();
  const int64_t depth = C * k * k, chunks = N * ceil_div(H * W, kTileK);
  const int64_t blocks = ceil_div(depth, kTileN) * ceil_div(c_out, kTileM) * B;
  const int64_t per_split = ceil_div(chunks, weight_grad_splits(blocks, chunks, B * c_out * depth));
  const int64_t splits = ceil_div(chunks, per_split);
  TORCH_CHECK(B * splits <= 65535, "bank_conv2d: too many banks for the CUDA weight gradient (", B,
              ")");
  const auto acc = p.x.options().dtype(at::toOpMathType(p.x.scalar_type()));
  at::Tensor dw = at::empty({splits, B, c_out, C, k, k}, acc);
  at::Tensor db = need_bias ? at::empty({splits, B, c_out}, acc) : at::Tensor();
  const Banks banks = banks_of(p);
  with_core(p.x.scalar_type(), [&](auto tag) {
    using Core = typename decltype(tag)::type;
    using T = typename Core::scalar;
    using Acc = typename Core::acc;
    const WeightGradArgs<T, Acc> args{p.x.data_ptr<T>(),
                                      g.data_ptr<T>(),
                                      data_or_null<T>(p.masks),
                                      banks.map,
                                      dw.data_ptr<Acc>(),
                                      data_or_null<Acc>(db),
                                      N,
                                      C,
                                      c_out,
                                      H,
                                      W,
                                      B,
                                      mask_stride(p.masks),
                                      per_split,
                                      static_cast<int>(k),
                                      p.reflect,
                                      p.mask_on_input};
    const dim3 grid(static_cast<unsigned>(ceil_div(depth, kTileN)),
                    static_cast<unsigned>(ceil_div(c_out, kTileM)),
                    static_cast<unsigned>(B * splits));
    Launch::run(grid, dim3(kThreads), weight_grad_kernel<Core>, args);
  });
  const auto finish = [&](const at::Tensor& t) { return t.sum(0).to(p.x.scalar_type()); };
  return {need_weight ? finish(dw) : at::Tensor(), need_bias ? finish(db) : at::Tensor()};
}

// dL/dmasks with the masks on the output (masks on the input: bank_conv_problem.cpp).
template <typename Launch>
at::Tensor output_mask_grad(const Problem& p, const at::Tensor& g) {
  at::Tensor dm =
      at::empty({p.x.size(0), p.weight.size(0), p.x.size(2), p.x.size(3)}, p.x.options());
  launch_conv<Launch>(
      {p.x, p.weight, p.bias, at::Tensor(), kEveryBank, g, dm, p.reflect, false, 0});
  return dm;
}

template <typename Launch>
constexpr DeviceKernels device_kernels() {
  return {forward<Launch>, input_grad<Launch>, weight_grad<Launch>, output_mask_grad<Launch>};
}

}  // namespace stylebank_fast::cuda
