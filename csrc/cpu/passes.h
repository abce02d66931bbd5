// The CPU kernels' passes, each one fused loop over tiles (see tile_conv.h).
#pragma once

#include "../bank_conv_problem.h"
#include "bank_set.h"
#include "tile_conv.h"

namespace stylebank_fast::cpu {

// out [N, Cout, H, W]
at::Tensor forward(const Problem& p);

// dL/dx for grad_out g [N, Cout, H, W], contiguous.
at::Tensor input_grad(const Problem& p, const at::Tensor& g);

// dL/dweight [B, Cout, C, k, k] and dL/dbias [B, Cout] of the Problem's banks (undefined
// where not wanted).
std::pair<at::Tensor, at::Tensor> weight_grad(const Problem& p, const at::Tensor& g,
                                              bool need_weight, bool need_bias);

// dL/dmasks [N, B, H, W] of a per-pixel Problem with the masks on the output (not yet summed
// over a broadcast N); masks on the input are assembled from input_grad (bank_conv_problem.cpp).
at::Tensor output_mask_grad(const Problem& p, const at::Tensor& g);

}  // namespace stylebank_fast::cpu
