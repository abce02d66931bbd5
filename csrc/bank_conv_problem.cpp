#include "bank_conv_problem.h"

#include <sstream>

namespace stylebank_fast {
namespace {

std::string shape(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void check_device(const at::Tensor& x, const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.device() == x.device(), "bank_conv2d: ", name, " is on ", t.device(),
                    " but x is on ", x.device(), "; move all tensors to one device");
}

void check_same_place(const at::Tensor& x, const at::Tensor& t, const char* name) {
  check_device(x, t, name);
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), "bank_conv2d: ", name, " has dtype ",
                   t.scalar_type(), " but x has dtype ", x.scalar_type(),
                   "; all floating-point arguments must share x's dtype");
}

MixForm check_mix(const at::Tensor& x, const at::Tensor& mix, int64_t K) {
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  check_device(x, mix, "mix");
  if (!mix.is_floating_point()) {
    TORCH_CHECK_TYPE(mix.scalar_type() == at::kLong,
                     "bank_conv2d: mix of style ids must be int64 (torch.long), got ",
                     mix.scalar_type(), "; float mixes must share x's dtype (", x.scalar_type(),
                     ")");
    TORCH_CHECK_VALUE(mix.dim() == 1 && mix.size(0) == N,
                      "bank_conv2d: mix of style ids must have shape [N] = [", N, "], got ",
                      shape(mix));
    if (N > 0) {
      const int64_t lo = mix.min().item<int64_t>(), hi = mix.max().item<int64_t>();
      const int64_t bad = lo < 0 ? lo : hi;
      TORCH_CHECK_INDEX(lo >= 0 && hi < K, "bank_conv2d: style id ", bad,
                        " in mix is outside [0, K) for K=", K, " banks (weight has shape [K, ",
                        "Cout, C, k, k])");
    }
    return MixForm::Ids;
  }
  check_same_place(x, mix, "mix");
  const bool lead_ok = mix.dim() > 0 && (mix.size(0) == N || mix.size(0) == 1);
  if (mix.dim() == 2) {
    TORCH_CHECK_VALUE(lead_ok && mix.size(1) == K,
                      "bank_conv2d: mix of per-sample weights must have shape [N, K] = [", N, ", ",
                      K, "] (or [1, ", K, "] to broadcast), got ", shape(mix));
    return MixForm::SampleWeights;
  }
  TORCH_CHECK_VALUE(mix.dim() == 4,
                    "bank_conv2d: a float mix must be [N, K] per-sample weights or [N, K, H, W] "
                    "per-pixel weights, got shape ",
                    shape(mix));
  TORCH_CHECK_VALUE(lead_ok && mix.size(1) == K && mix.size(2) == H && mix.size(3) == W,
                    "bank_conv2d: mix of per-pixel weights must have shape [N, K, H, W] = [", N,
                    ", ", K, ", ", H, ", ", W, "] (or a leading 1 to broadcast), got ", shape(mix),
                    "; resize masks to x's spatial size first");
  return MixForm::PixelWeights;
}

}  // namespace

MixForm check_arguments(const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
                        const std::string& padding_mode, const std::string& mask_on) {
  TORCH_CHECK_VALUE(padding_mode == "reflect" || padding_mode == "zeros",
                    "bank_conv2d: padding_mode must be 'reflect' or 'zeros', got '", padding_mode,
                    "'");
  TORCH_CHECK_VALUE(mask_on == "output" || mask_on == "input",
                    "bank_conv2d: mask_on must be 'output' or 'input', got '", mask_on, "'");
  TORCH_CHECK_VALUE(x.dim() == 4, "bank_conv2d: x must be 4-D [N, C, H, W], got shape ", shape(x));
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble ||
                       x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf,
                   "bank_conv2d: x must be float32, float64, bfloat16 or float16, got ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(weight.dim() == 5,
                    "bank_conv2d: weight must be 5-D [K, Cout, C, k, k], got shape ",
                    shape(weight));
  check_same_place(x, weight, "weight");
  const int64_t K = weight.size(0), Cout = weight.size(1), k = weight.size(3);
  TORCH_CHECK_VALUE(K >= 1 && Cout >= 1, "bank_conv2d: weight needs K >= 1 banks and Cout >= 1, ",
                    "got shape ", shape(weight));
  TORCH_CHECK_VALUE(weight.size(2) == x.size(1), "bank_conv2d: weight expects C=", weight.size(2),
                    " input channels (weight shape ", shape(weight), ") but x has C=", x.size(1),
                    " (x shape ", shape(x), ")");
  TORCH_CHECK_VALUE(weight.size(3) == weight.size(4) && k % 2 == 1 && k >= 1 && k <= 7,
                    "bank_conv2d: the kernel must be square with an odd size k in {1, 3, 5, 7}, ",
                    "got weight of shape ", shape(weight));
  TORCH_CHECK_VALUE(x.size(2) >= 1 && x.size(3) >= 1,
                    "bank_conv2d: x must have a non-empty image, got shape ", shape(x));
  const int64_t r = k / 2;
  TORCH_CHECK_VALUE(padding_mode != "reflect" || (r < x.size(2) && r < x.size(3)),
                    "bank_conv2d: reflect padding of ", r, " (k=", k,
                    ") needs an image larger than the padding, but x is ", x.size(2), "x",
                    x.size(3), "; use padding_mode='zeros' or a larger image");
  if (bias.has_value()) {
    check_same_place(x, *bias, "bias");
    TORCH_CHECK_VALUE(bias->dim() == 2 && bias->size(0) == K && bias->size(1) == Cout,
                      "bank_conv2d: bias must have shape [K, Cout] = [", K, ", ", Cout, "], got ",
                      shape(*bias));
  }
  if (!mix.has_value()) {
    TORCH_CHECK_VALUE(K == 1, "bank_conv2d: mix=None needs a single bank, but weight has K=", K,
                      " banks; pass style ids [N], weights [N, K] or masks [N, K, H, W]");
    return MixForm::None;
  }
  return check_mix(x, *mix, K);
}

namespace {

at::Tensor maybe_contiguous(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

// Per-sample weights are linear: sum_k a_nk conv_k(x_n) = conv(x_n, sum_k a_nk W_k).
Problem make_problem(const at::Tensor& x, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& mix,
                     const std::string& padding_mode, const std::string& mask_on, MixForm form) {
  Problem p;
  p.x = x.contiguous();
  p.weight = weight.contiguous();
  p.bias = maybe_contiguous(bias);
  p.reflect = padding_mode == "reflect";
  p.mask_on_input = mask_on == "input";
  const int64_t N = x.size(0);
  switch (form) {
    case MixForm::None:
      p.bank_of.assign(N, 0);
      break;
    case MixForm::Ids: {
      const at::Tensor ids = mix->to(at::kCPU).contiguous();
      p.bank_of.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + N);
      break;
    }
    case MixForm::SampleWeights: {
      const at::Tensor& a = *mix;
      std::vector<int64_t> blended_shape = p.weight.sizes().vec();
      blended_shape[0] = a.size(0);
      p.weight = at::matmul(a, p.weight.view({p.weight.size(0), -1})).view(blended_shape);
      if (p.bias.defined()) p.bias = at::matmul(a, p.bias);
      p.bank_of.resize(N);
      for (int64_t n = 0; n < N; ++n) p.bank_of[n] = a.size(0) == 1 ? 0 : n;
      break;
    }
    case MixForm::PixelWeights:
      p.masks = mix->contiguous();
      break;
  }
  return p;
}

at::Tensor nothing(const at::Tensor& like) { return at::empty({0}, like.options()); }

struct Gradients {
  at::Tensor x, weight, bias, masks;  // undefined where not requested
};

// dL/dmasks with the masks on the input: dL/dm_b(q) = x(q) . convT_b(g)(q) + g(q) . bias_b, one
// bank at a time through the device's input gradient.
at::Tensor input_mask_grad(const DeviceKernels& kernels, const Problem& p, const at::Tensor& g) {
  const int64_t N = p.x.size(0), B = p.weight.size(0);
  at::Tensor dm = at::empty({N, B, p.x.size(2), p.x.size(3)}, p.x.options());
  Problem single = p;
  single.masks = at::Tensor();
  for (int64_t b = 0; b < B; ++b) {
    single.bank_of.assign(N, b);
    at::Tensor d = (p.x * kernels.input_grad(single, g)).sum(1);
    if (p.bias.defined()) d += (g * p.bias[b].view({1, -1, 1, 1})).sum(1);
    dm.select(1, b).copy_(d);
  }
  return dm;
}

Gradients device_backward(const DeviceKernels& kernels, const Problem& p, const at::Tensor& g,
                          bool need_x, bool need_weight, bool need_bias, bool need_masks) {
  Gradients out;
  if (need_x) out.x = kernels.input_grad(p, g);
  if (need_weight || need_bias)
    std::tie(out.weight, out.bias) = kernels.weight_grad(p, g, need_weight, need_bias);
  if (need_masks)
    out.masks = p.mask_on_input ? input_mask_grad(kernels, p, g) : kernels.output_mask_grad(p, g);
  return out;
}

}  // namespace

at::Tensor bank_conv2d_forward(const DeviceKernels& kernels, const at::Tensor& x,
                               const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                               const std::optional<at::Tensor>& mix,
                               const std::string& padding_mode, const std::string& mask_on) {
  const MixForm form = check_arguments(x, weight, bias, mix, padding_mode, mask_on);
  if (x.size(0) == 0) return at::empty({0, weight.size(1), x.size(2), x.size(3)}, x.options());
  return kernels.forward(make_problem(x, weight, bias, mix, padding_mode, mask_on, form));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bank_conv2d_backward(
    const DeviceKernels& kernels, const at::Tensor& grad_out, const at::Tensor& x,
    const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& mix, const std::string& padding_mode,
    const std::string& mask_on, std::array<bool, 4> output_mask) {
  const MixForm form = check_arguments(x, weight, bias, mix, padding_mode, mask_on);
  TORCH_CHECK_VALUE(grad_out.dim() == 4 && grad_out.size(0) == x.size(0) &&
                        grad_out.size(1) == weight.size(1) && grad_out.size(2) == x.size(2) &&
                        grad_out.size(3) == x.size(3),
                    "bank_conv2d_backward: grad_out must have the output's shape [N, Cout, H, W],"
                    " got ",
                    shape(grad_out));
  check_same_place(x, grad_out, "grad_out");
  const bool need_mix = output_mask[3] && mix.has_value() && mix->is_floating_point();
  const bool need_bias = output_mask[2] && bias.has_value();
  const bool blended = form == MixForm::SampleWeights;
  at::Tensor dx, dw, db, dmix;
  if (x.size(0) == 0) {
    dx = at::zeros_like(x);
    dw = at::zeros_like(weight);
    if (need_bias) db = at::zeros_like(*bias);
    if (need_mix) dmix = at::zeros_like(*mix);
  } else {
    const Problem p = make_problem(x, weight, bias, mix, padding_mode, mask_on, form);
    Gradients g = device_backward(kernels, p, grad_out.contiguous(), output_mask[0],
                                  output_mask[1] || (blended && need_mix),
                                  need_bias || (blended && need_mix && bias.has_value()),
                                  need_mix && form == MixForm::PixelWeights);
    dx = g.x;
    dw = g.weight;
    db = g.bias;
    if (form == MixForm::PixelWeights && need_mix) {
      dmix = mix->size(0) == 1 ? g.masks.sum(0, /*keepdim=*/true) : g.masks;
    } else if (blended) {
      // Chain rule through W_n = sum_k a_nk W_k (and the same for the bias).
      const at::Tensor& a = *mix;
      const at::Tensor dw_n = g.weight.view({a.size(0), -1});
      if (need_mix) {
        dmix = at::matmul(dw_n, weight.reshape({weight.size(0), -1}).t());
        if (bias.has_value()) dmix = dmix + at::matmul(g.bias, bias->t());
      }
      if (output_mask[1]) dw = at::matmul(a.t(), dw_n).view(weight.sizes());
      if (need_bias) db = at::matmul(a.t(), g.bias);
    }
  }
  return {output_mask[0] ? dx : nothing(x), output_mask[1] ? dw : nothing(x),
          need_bias ? db : nothing(x), need_mix ? dmix : nothing(x)};
}

}  // namespace stylebank_fast
