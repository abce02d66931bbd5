// Fused forward pass on the CPU: one pass over output tiles, each running only its active banks.
#include "passes.h"

namespace stylebank_fast::cpu {

namespace {

template <typename T>
void forward_typed(const Problem& p, at::Tensor& out) {
  const int64_t N = p.x.size(0), C = p.x.size(1), H = p.x.size(2), W = p.x.size(3);
  const BankSet<T> banks(p, p.weight.view({p.weight.size(0), p.weight.size(1), -1}), p.bias);
  const Tiling tiles(0, 0, H, W, p.per_pixel());
  const int64_t per_sample = tiles.count();
  parallel_jobs(
      N * per_sample, banks.rows * banks.depth * tiles.th * tiles.tw,
      [&] { return Scratch<T>(banks.depth, banks.rows, tiles.th * tiles.tw); },
      [&](int64_t job, Scratch<T>& buf) {
        const int64_t n = job / per_sample;
        const Rect t = tiles[job % per_sample];
        const Source<T> s{p.x.data_ptr<T>() + n * C * H * W, C, H, W, p.ksize(), p.reflect};
        const Target<T> out_n{out.data_ptr<T>() + n * banks.rows * H * W, H, W, 0};
        run_tile(s, banks.rows, p.mask_on_input, banks.active(n, t, s, p.mask_on_input), t, out_n,
                 buf);
      });
}

}  // namespace

at::Tensor forward(const Problem& p) {
  at::Tensor out =
      at::empty({p.x.size(0), p.weight.size(1), p.x.size(2), p.x.size(3)}, p.x.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, p.x.scalar_type(), "bank_conv2d_cpu",
                                 [&] { forward_typed<scalar_t>(p, out); });
  return out;
}

}  // namespace stylebank_fast::cpu
