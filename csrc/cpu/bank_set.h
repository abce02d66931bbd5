// Which banks act on a tile of one sample, as raw pointers for run_tile.
#pragma once

#include "../bank_conv_problem.h"
#include "tile_conv.h"

namespace stylebank_fast::cpu {

template <typename T>
const T* maybe_ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// The banks of a Problem seen through `weight` [B, rows, depth] (the forward weights, or their
// transposed flips for the input gradient) and `bias` [B, rows] (or undefined).
template <typename T>
struct BankSet {
  const Problem& p;
  const T* weight;
  const T* bias;
  int64_t rows, depth;

  BankSet(const Problem& p, const at::Tensor& weight, const at::Tensor& bias)
      : p(p),
        weight(weight.data_ptr<T>()),
        bias(maybe_ptr<T>(bias)),
        rows(weight.size(1)),
        depth(weight[0][0].numel()) {}

  const T* mask(int64_t n, int64_t b) const {
    const int64_t H = p.masks.size(2), W = p.masks.size(3);
    const int64_t sample = p.masks.size(0) == 1 ? 0 : n;
    return p.masks.data_ptr<T>() + (sample * p.masks.size(1) + b) * H * W;
  }

  BankTerm<T> term(int64_t b, const T* mask) const {
    return {weight + b * rows * depth, bias ? bias + b * rows : nullptr, mask};
  }

  // Is the mask of (n, b) non-zero somewhere the tile's result depends on: over the tile for
  // masks on the output, over the tile and its halo when masks weight the source pixels?
  bool is_active(const T* m, const Rect& t, const Source<T>& s, bool mask_at_source) const {
    const int64_t H = p.masks.size(2), W = p.masks.size(3);
    if (!mask_at_source) return mask_active(m, H, W, t, 0, reflect_index);
    return mask_active(m, H, W, t, s.radius(),
                       [&](int64_t i, int64_t len) { return s.map(i, len); });
  }

  std::vector<BankTerm<T>> active(int64_t n, const Rect& t, const Source<T>& s,
                                  bool mask_at_source) const {
    if (!p.per_pixel()) return {term(p.bank_of[n], nullptr)};
    std::vector<BankTerm<T>> terms;
    for (int64_t b = 0; b < p.masks.size(1); ++b) {
      const T* m = mask(n, b);
      if (is_active(m, t, s, mask_at_source)) terms.push_back(term(b, m));
    }
    return terms;
  }
};

}  // namespace stylebank_fast::cpu
