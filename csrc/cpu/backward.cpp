// Fused backward passes on the CPU. Each pass visits only the banks active on a tile, except the
// mask gradient, which every bank has at every pixel.
#include "passes.h"

namespace stylebank_fast::cpu {

namespace {

// Weight-gradient jobs are (bank, channel block, pixel split). Each job sums its pixels into its
// own slot and the slots are added in order, so the result depends on the shapes only. With few
// banks the pixels are split so that there are at least kMinWeightJobs jobs to balance.
constexpr int64_t kChannelBlock = 64;
constexpr int64_t kMinWeightJobs = 16;

// The adjoint of the padding: the padded-domain gradient [N, C, H+2r, W+2r] is folded back
// onto the pixels that the padding mirrored.
template <typename T>
void fold_reflect(const at::Tensor& padded, at::Tensor& dx, int64_t r) {
  const int64_t H = dx.size(2), W = dx.size(3), Hp = H + 2 * r, Wp = W + 2 * r;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (Hp * Wp));
  at::parallel_for(0, dx.size(0) * dx.size(1), grain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const T* src = padded.data_ptr<T>() + plane * Hp * Wp;
      T* dst = dx.data_ptr<T>() + plane * H * W;
      for (int64_t y = 0; y < H; ++y)
        std::memcpy(dst + y * W, src + (y + r) * Wp + r, W * sizeof(T));
      auto add = [&](int64_t Y, int64_t X) {
        T& to = dst[reflect_index(Y - r, H) * W + reflect_index(X - r, W)];
        to = to + src[Y * Wp + X];
      };
      for (int64_t Y = 0; Y < Hp; ++Y) {
        if (Y < r || Y >= H + r) {
          for (int64_t X = 0; X < Wp; ++X) add(Y, X);
          continue;
        }
        for (int64_t X = 0; X < r; ++X) add(Y, X);
        for (int64_t X = W + r; X < Wp; ++X) add(Y, X);
      }
    }
  });
}

template <typename T>
void input_grad_typed(const Problem& p, const at::Tensor& g, at::Tensor& target, int64_t ext) {
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  const int64_t Cout = g.size(1), B = p.weight.size(0);
  // The transposed convolution is a convolution of g (zero padding) with flipped, transposed
  // filters, over the padded domain when the forward pass reflected.
  const at::Tensor flipped = p.weight.flip({3, 4}).transpose(1, 2).contiguous().view({B, C, -1});
  const BankSet<T> banks(p, flipped, at::Tensor());
  const Tiling tiles(-ext, -ext, H + 2 * ext, W + 2 * ext, p.per_pixel());
  const int64_t per_sample = tiles.count();
  // Masks on the forward output weight g's pixels here, and the other way round.
  const bool mask_at_source = !p.mask_on_input;
  parallel_jobs(
      N * per_sample, C * banks.depth * tiles.th * tiles.tw,
      [&] { return Scratch<T>(banks.depth, C, tiles.th * tiles.tw); },
      [&](int64_t job, Scratch<T>& buf) {
        const int64_t n = job / per_sample;
        const Rect t = tiles[job % per_sample];
        const Source<T> s{g.data_ptr<T>() + n * Cout * H * W, Cout, H, W, p.ksize(), false};
        const Target<T> out{target.data_ptr<T>() + n * C * tiles.H * tiles.W, tiles.H, tiles.W,
                            ext};
        run_tile(s, C, mask_at_source, banks.active(n, t, s, mask_at_source), t, out, buf);
      });
}

template <typename T>
void weight_grad_typed(const Problem& p, const at::Tensor& g, bool need_weight, bool need_bias,
                       at::Tensor& dw, at::Tensor& db) {
  using A = at::opmath_type<T>;
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  const int64_t B = p.weight.size(0), Cout = p.weight.size(1), k = p.ksize();
  const int64_t depth = C * k * k, blocks = (Cout + kChannelBlock - 1) / kChannelBlock;
  const BankSet<T> banks(p, p.weight.view({B, Cout, -1}), p.bias);
  const Tiling tiles(0, 0, H, W, p.per_pixel());
  const int64_t P_max = tiles.th * tiles.tw, items = N * tiles.count();
  const int64_t splits = std::clamp<int64_t>(kMinWeightJobs / (B * blocks), 1, items);
  const int64_t per_split = (items + splits - 1) / splits;
  // One slot per split (the outputs themselves when there is one).
  at::Tensor dw_slots =
      need_weight && splits > 1 ? at::zeros({splits, B, Cout, depth}, dw.options()) : dw;
  at::Tensor db_slots = need_bias && splits > 1 ? at::zeros({splits, B, Cout}, db.options()) : db;
  struct Buffers {
    std::vector<T> cols, grad, product;
  };
  parallel_jobs(
      B * blocks * splits, std::min(kChannelBlock, Cout) * depth * H * W * N / (B * splits),
      [&] {
        return Buffers{std::vector<T>(depth * P_max), std::vector<T>(kChannelBlock * P_max),
                       std::vector<T>(std::is_same_v<T, A> ? 0 : kChannelBlock * depth)};
      },
      [&](int64_t job, Buffers& buf) {
        const int64_t split = job % splits, b = job / splits / blocks;
        const int64_t co0 = (job / splits % blocks) * kChannelBlock;
        const int64_t cb = std::min(kChannelBlock, Cout - co0);
        A* dwb =
            need_weight ? dw_slots.data_ptr<A>() + ((split * B + b) * Cout + co0) * depth : nullptr;
        A* dbb = need_bias ? db_slots.data_ptr<A>() + (split * B + b) * Cout + co0 : nullptr;
        const int64_t end = std::min(items, (split + 1) * per_split);
        for (int64_t item = split * per_split; item < end; ++item) {
          const int64_t n = item / tiles.count();
          if (!p.per_pixel() && p.bank_of[n] != b) continue;
          const T* mask = p.per_pixel() ? banks.mask(n, b) : nullptr;
          const Source<T> s{p.x.data_ptr<T>() + n * C * H * W, C, H, W, k, p.reflect};
          const T* gn = g.data_ptr<T>() + (n * Cout + co0) * H * W;
          const Rect t = tiles[item % tiles.count()];
          if (mask && !banks.is_active(mask, t, s, p.mask_on_input)) continue;
          const int64_t P = t.pixels();
          // The GEMM's left side: g, times the mask where the mask weighted the output.
          for (int64_t co = 0; co < cb; ++co) {
            A bias_sum = 0;
            for (int64_t y = 0; y < t.h; ++y)
              for (int64_t x = 0; x < t.w; ++x) {
                const int64_t pix = (t.y0 + y) * W + t.x0 + x;
                const T v = gn[co * H * W + pix];
                const A m = mask ? A(mask[pix]) : A(1);
                buf.grad[co * P + y * t.w + x] = mask && !p.mask_on_input ? T(A(v) * m) : v;
                bias_sum += A(v) * m;
              }
            if (dbb) dbb[co] += bias_sum;
          }
          if (!dwb) continue;
          gather_columns(s, p.mask_on_input ? mask : nullptr, t, buf.cols.data());
          const at::Tensor lhs = wrap(buf.grad.data(), {cb, P});
          const at::Tensor rhs = wrap(buf.cols.data(), {depth, P}).t();
          if constexpr (std::is_same_v<T, A>) {
            wrap(dwb, {cb, depth}).addmm_(lhs, rhs);
          } else {  // reduced precision: each tile's product is summed in float
            at::Tensor prod = wrap(buf.product.data(), {cb, depth});
            at::mm_out(prod, lhs, rhs);
            for (int64_t e = 0; e < cb * depth; ++e) dwb[e] += A(buf.product[e]);
          }
        }
      });
  if (splits == 1) return;
  for (int64_t split = 0; split < splits; ++split) {
    if (need_weight) dw.view({B, Cout, depth}).add_(dw_slots[split]);
    if (need_bias) db.add_(db_slots[split]);
  }
}

// Masks on the output: dL/dm_b(q) = sum_co g(q) * (conv_b(x)(q) + bias_b).
template <typename T>
void mask_grad_output_typed(const Problem& p, const at::Tensor& g, at::Tensor& dm) {
  using A = at::opmath_type<T>;
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  const int64_t B = p.weight.size(0), Cout = p.weight.size(1);
  const BankSet<T> banks(p, p.weight.view({B, Cout, -1}), p.bias);
  const Tiling tiles(0, 0, H, W, true);
  const int64_t per_sample = tiles.count(), P_max = tiles.th * tiles.tw;
  parallel_jobs(
      N * per_sample, B * Cout * banks.depth * P_max,
      [&] { return Scratch<T>(banks.depth, Cout, P_max); },
      [&](int64_t job, Scratch<T>& buf) {
        const int64_t n = job / per_sample;
        const Rect t = tiles[job % per_sample];
        const int64_t P = t.pixels();
        const Source<T> s{p.x.data_ptr<T>() + n * C * H * W, C, H, W, p.ksize(), p.reflect};
        gather_columns(s, static_cast<const T*>(nullptr), t, buf.cols.data());
        const T* gn = g.data_ptr<T>() + n * Cout * H * W;
        for (int64_t b = 0; b < B; ++b) {
          const BankTerm<T> term = banks.term(b, nullptr);
          bank_product(term.weight, Cout, banks.depth, buf.cols.data(), P, buf.product.data());
          A* sum = buf.acc.data();
          std::fill_n(sum, P, A(0));
          for (int64_t co = 0; co < Cout; ++co) {
            const A bias = term.bias ? A(term.bias[co]) : A(0);
            const T* prod = buf.product.data() + co * P;
            for (int64_t y = 0; y < t.h; ++y) {
              const T* grow = gn + co * H * W + (t.y0 + y) * W + t.x0;
              for (int64_t x = 0; x < t.w; ++x)
                sum[y * t.w + x] += A(grow[x]) * (A(prod[y * t.w + x]) + bias);
            }
          }
          T* out = dm.data_ptr<T>() + (n * B + b) * H * W;
          for (int64_t y = 0; y < t.h; ++y)
            for (int64_t x = 0; x < t.w; ++x) out[(t.y0 + y) * W + t.x0 + x] = T(sum[y * t.w + x]);
        }
      });
}

}  // namespace

at::Tensor input_grad(const Problem& p, const at::Tensor& g) {
  const int64_t ext = p.reflect ? p.radius() : 0;
  at::Tensor dx = at::empty_like(p.x);
  at::Tensor target =
      ext ? at::empty({p.x.size(0), p.x.size(1), p.x.size(2) + 2 * ext, p.x.size(3) + 2 * ext},
                      p.x.options())
          : dx;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, p.x.scalar_type(), "bank_conv2d_input_grad", [&] {
    input_grad_typed<scalar_t>(p, g, target, ext);
    if (ext) fold_reflect<scalar_t>(target, dx, ext);
  });
  return dx;
}

std::pair<at::Tensor, at::Tensor> weight_grad(const Problem& p, const at::Tensor& g,
                                              bool need_weight, bool need_bias) {
  need_bias = need_bias && p.bias.defined();
  const auto acc_type = at::toOpMathType(p.x.scalar_type());
  const auto acc = p.x.options().dtype(acc_type);
  at::Tensor dw = need_weight ? at::zeros(p.weight.sizes(), acc) : at::Tensor();
  at::Tensor db = need_bias ? at::zeros({p.weight.size(0), p.weight.size(1)}, acc) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, p.x.scalar_type(), "bank_conv2d_weight_grad", [&] {
    weight_grad_typed<scalar_t>(p, g, need_weight, need_bias, dw, db);
  });
  const auto to_input_type = [&](const at::Tensor& t) {
    return t.defined() ? t.to(p.x.scalar_type()) : t;
  };
  return {to_input_type(dw), to_input_type(db)};
}

at::Tensor output_mask_grad(const Problem& p, const at::Tensor& g) {
  at::Tensor dm =
      at::empty({p.x.size(0), p.weight.size(0), p.x.size(2), p.x.size(3)}, p.x.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, p.x.scalar_type(), "bank_conv2d_mask_grad",
                                 [&] { mask_grad_output_typed<scalar_t>(p, g, dm); });
  return dm;
}

}  // namespace stylebank_fast::cpu
