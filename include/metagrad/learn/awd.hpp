// SPDX-License-Identifier: MIT
// AWD, adaptive wavelet distillation (Ha, Singh, Lanusse, Upadhyayula, Yu; NeurIPS 2021): learn the
// low-pass filter h0 of a wavelet transform W (nn/wavelet.hpp) so that W stays a wavelet (the
// constraint terms), keeps the data (reconstruction) and gives sparse coefficients and sparse
// attributions of a fixed, pretrained model f, read through W⁻¹, w.r.t. the coefficients:
//   L = ‖x − W⁻¹Wx‖²/B + λ_lSum·½(Σh0 − √2)² + λ_hSum·½(Σh1)² + λ_L2·½(‖h0‖² − 1)²
//     + λ_CMF·½Σ_k(|ĥ0(ω_k)|² + |ĥ0(ω_k + π)|² − 2)² + λ_conv·½‖(h0 ⋆ h0)↓2 − δ‖²
//     + λ_L1wave·‖Wx‖₁ + λ_L1attr·‖attr(f∘W⁻¹, Wx)‖₁
// with each term as the original computes it (Yu-Group/adaptive-wavelets, awave/losses.py):
//  - ĥ0 is the L-point DFT of h0 (no zero padding), ω_k = 2πk/L for k < L/2, so ω_k + π is bin k + L/2;
//  - (h0 ⋆ h0)↓2 is the autocorrelation of h0 at the even lags −L, −L+2, ..., L (conv1d(h0, h0,
//    stride 2, padding L) there), δ is 1 at lag 0;
//  - the two L1 terms are over the coefficient tensors (yl, yh_1, ..., yh_J) as a tuple: the sum
//    of each tensor's L1 norm divided by the batch size *and by the number of tensors, J + 1*
//    (tuple_L1Loss divides by len(tuple)); PAPERS.md writes ‖·‖₁/B, leaving that factor out. The
//    λs are tuned to the original's scale, so this keeps it.
//  - the attributions (awave/utils/wave_attributions.py, trim/trim.py with use_residuals): f is fed
//    W⁻¹(s) + stopgrad(x − W⁻¹(s)), whose value is x itself while its derivative in the
//    coefficients s goes through W⁻¹; Saliency is ∂f_target/∂s (signed, summed over the batch),
//    InputXGradient is s ⊙ that. Differentiating the L1 of attributions in h0 is a second-order
//    objective: the gradient is built with create_graph and differentiated again.
// The λ fields keep the original's names (lamlSum, ...; awave/losses.py, ex_mnist.py).
#pragma once
#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/nn/wavelet.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"

namespace metagrad::learn {

/// The weights of the AWD objective under the original's names (awave/losses.py Loss; the
/// defaults are ex_mnist.py's: 1 for every wavelet constraint, and its λ_L1wave 0.1, λ_L1attr 1).
struct AwdLambdas {
  double lamlSum = 1, lamhSum = 1, lamL2norm = 1, lamCMF = 1, lamConv = 1;
  double lamL1wave = 0.1, lamL1attr = 1;
};

/// The attribution of the target logit to the coefficients (wave_attributions.py Attributer).
enum class AwdAttribution { saliency, input_x_gradient };

inline const char* awd_attribution_name(AwdAttribution a) {
  return a == AwdAttribution::saliency ? "Saliency" : "InputXGradient";
}

/// ‖x − recon‖² / B (the original's F.mse_loss(reduction="sum") / batch size).
template <Floating T>
Tensor<T> awd_reconstruction_loss(const Tensor<T>& x, const Tensor<T>& recon) {
  check(x.dim() >= 1 && x.shape() == recon.shape(), "awd_reconstruction_loss", "input ", x.shape(),
        " and reconstruction ", recon.shape(), " must have one shape with a batch dimension");
  return div(sum(square(sub(x, recon))), static_cast<T>(x.size(0)));
}

/// ½(Σh0 − √2)²: a low-pass filter of an orthonormal wavelet sums to √2.
template <Floating T>
Tensor<T> awd_lowpass_sum_loss(const Tensor<T>& h0) {
  nn::wavelet_detail::check_wavelet_filter(h0.shape(), "awd_lowpass_sum_loss");
  return mul(square(sub(sum(h0), static_cast<T>(std::numbers::sqrt2))), T(0.5));
}

/// ½(Σh1)² with h1 the alternating flip of h0: the high-pass filter sums to 0.
template <Floating T>
Tensor<T> awd_highpass_sum_loss(const Tensor<T>& h0) {
  return mul(square(sum(nn::wavelet_highpass(h0))), T(0.5));
}

/// ½(‖h0‖² − 1)²: unit norm.
template <Floating T>
Tensor<T> awd_l2norm_loss(const Tensor<T>& h0) {
  nn::wavelet_detail::check_wavelet_filter(h0.shape(), "awd_l2norm_loss");
  return mul(square(sub(sum(square(h0)), T(1))), T(0.5));
}

/// ½ Σ_{k<L/2} (|ĥ0(k)|² + |ĥ0(k + L/2)|² − 2)² over the L-point DFT of h0: the conjugate mirror
/// filter condition |ĥ0(ω)|² + |ĥ0(ω + π)|² = 2 on the original's grid.
template <Floating T>
Tensor<T> awd_cmf_loss(const Tensor<T>& h0) {
  nn::wavelet_detail::check_wavelet_filter(h0.shape(), "awd_cmf_loss");
  const std::int64_t l = h0.size(0);
  // The DFT as two constant matrices: re_k = Σ_n h_n cos(2πkn/L), im_k = −Σ_n h_n sin(2πkn/L).
  std::vector<T> c(static_cast<std::size_t>(l * l)), s(c.size());
  for (std::int64_t k = 0; k < l; ++k)
    for (std::int64_t n = 0; n < l; ++n) {
      const double w = 2 * std::numbers::pi * static_cast<double>((k * n) % l) / static_cast<double>(l);
      c[static_cast<std::size_t>(k * l + n)] = static_cast<T>(std::cos(w));
      s[static_cast<std::size_t>(k * l + n)] = static_cast<T>(-std::sin(w));
    }
  const auto column = reshape(h0, Shape{l, 1});
  const auto re = mm(from_vector<T>(c, Shape{l, l}), column), im = mm(from_vector<T>(s, Shape{l, l}), column);
  const auto power = reshape(add(square(re), square(im)), Shape{l});
  const auto identity = add(narrow(power, 0, 0, l / 2), narrow(power, 0, l / 2, l / 2));
  return mul(sum(square(sub(identity, T(2)))), T(0.5));
}

/// ½‖v − δ‖² with v_k = Σ_m h0[m] h0[m + 2k − L], k = 0..L (the autocorrelation at even lags) and
/// δ one at lag 0: h0 is orthogonal to its even shifts and has unit norm.
template <Floating T>
Tensor<T> awd_conv_loss(const Tensor<T>& h0) {
  nn::wavelet_detail::check_wavelet_filter(h0.shape(), "awd_conv_loss");
  const std::int64_t l = h0.size(0);
  const auto row = reshape(h0, Shape{1, 1, 1, l});
  const auto v = reshape(conv2d(row, row, {}, Size2d{1, 2}, Size2d{0, l}), Shape{l + 1});
  std::vector<T> delta(static_cast<std::size_t>(l + 1), T(0));
  delta[static_cast<std::size_t>(l / 2)] = T(1);
  return mul(sum(square(sub(v, from_vector<T>(delta)))), T(0.5));
}

/// Σ_i ‖parts_i‖₁ / (B · number of parts), B = parts[0].size(0): tuple_L1Loss / batch size.
template <Floating T>
Tensor<T> awd_l1_loss(std::span<const Tensor<T>> parts) {
  check(!parts.empty() && parts[0].defined() && parts[0].dim() >= 1, "awd_l1_loss",
        "needs at least one tensor with a batch dimension");
  Tensor<T> total;
  for (const auto& p : parts) {
    check(p.defined() && p.dim() >= 1 && p.size(0) == parts[0].size(0), "awd_l1_loss", "every part must have batch ",
          parts[0].size(0), ", got ", p.defined() ? p.shape().str() : "an undefined tensor");
    const auto l1 = sum(abs(p));
    total = total.defined() ? add(total, l1) : l1;
  }
  return div(total, static_cast<T>(parts[0].size(0) * static_cast<std::int64_t>(parts.size())));
}

/// How the attributions are taken (wave_attributions.py Attributer, trim.py TrimModel).
struct AwdAttributionOptions {
  std::int64_t target = 6;  // ex_mnist.py: the logit of digit 6
  AwdAttribution method = AwdAttribution::saliency;
  /// f reads W⁻¹(s) + stopgrad(x − W⁻¹(s)) (TrimModel(use_residuals=True), as ex_mnist.py): its
  /// value is x whatever h0 is. The stop-gradient makes the derivative in h0 (and in x, off a
  /// perfect-reconstruction filter) a straight-through one, not the derivative of the function's
  /// value. false feeds W⁻¹(s) itself: an exact composition.
  bool use_residuals = true;
  /// Record the gradient, so the attributions differentiate again (training needs it).
  bool create_graph = true;
};

/// The attributions of f's logit o.target to the coefficients of x, in coeffs.tensors() order.
/// model: logits [N, classes] from images like x.
template <Floating T>
std::vector<Tensor<T>> awd_attributions(nn::Layer<T>& model, const Tensor<T>& h0, const nn::WaveletCoeffs<T>& coeffs,
                                        const Tensor<T>& x, const AwdAttributionOptions& o) {
  constexpr const char* op = "awd_attributions";
  // Recording is needed for the gradient even under a caller's no-grad guard (evaluation).
  EnableGradGuard grad_on;
  // Coefficients made without recording (constants) become leaves here: the same values, and a
  // gradient to take.
  auto parts = coeffs.tensors();
  for (auto& p : parts)
    if (!p.requires_grad()) p = p.detach().requires_grad_();
  const auto recon = nn::idwt2d(coeffs.with_tensors(parts), h0);
  check(recon.shape() == x.shape(), op, "the coefficients reconstruct ", recon.shape(), " but x is ", x.shape());
  const auto fed = o.use_residuals ? add(recon, sub(x, recon).detach()) : recon;
  const auto logits = model(fed);
  check(logits.dim() == 2 && logits.size(0) == x.size(0) && o.target >= 0 && o.target < logits.size(1), op, "target ",
        o.target, " must index the model's logits [", x.size(0), ", classes], got ", logits.shape());
  // The per-example logits summed: each example's gradient is its own (torch.unbind in the original).
  const auto score = sum(narrow(logits, 1, o.target, 1));
  auto grads = grad(std::span<const Tensor<T>>(&score, 1), std::span<const Tensor<T>>(parts),
                    GradOptions<T>{.create_graph = o.create_graph, .allow_unused = true});
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) grads[i] = zeros_like(parts[i]);
    if (o.method == AwdAttribution::input_x_gradient) grads[i] = mul(parts[i], grads[i]);
  }
  return grads;
}

/// Every term of the objective (unweighted, as the original reports them) and the weighted total.
template <Floating T>
struct AwdLossTerms {
  Tensor<T> reconstruction, lowpass_sum, highpass_sum, l2norm, cmf, conv, l1_wave, l1_attr, total;
};

struct AwdOptions {
  AwdLambdas lambdas;
  AwdAttributionOptions attribution;
  double lr = 1e-3;  // Adam on h0
};

/// The AWD objective of `dwt` on images x [N, C, H, W], the attributions from `model` (frozen: its
/// parameters get no gradient from here). l1_attr is computed (and differentiated) only when
/// lamL1attr > 0, as the original, else it is left undefined.
template <Floating T>
AwdLossTerms<T> awd_loss(const nn::DWT2d<T>& dwt, nn::Layer<T>& model, const Tensor<T>& x, const AwdOptions& o) {
  const auto& lam = o.lambdas;
  AwdLossTerms<T> t;
  const auto coeffs = dwt(x);
  const auto parts = coeffs.tensors();
  t.reconstruction = awd_reconstruction_loss(x, dwt.inverse(coeffs));
  t.lowpass_sum = awd_lowpass_sum_loss(dwt.h0);
  t.highpass_sum = awd_highpass_sum_loss(dwt.h0);
  t.l2norm = awd_l2norm_loss(dwt.h0);
  t.cmf = awd_cmf_loss(dwt.h0);
  t.conv = awd_conv_loss(dwt.h0);
  t.l1_wave = awd_l1_loss(std::span<const Tensor<T>>(parts));
  t.total = t.reconstruction;
  const auto add_term = [&](const Tensor<T>& term, double lambda) {
    if (lambda != 0) t.total = add(t.total, mul(term, static_cast<T>(lambda)));
  };
  add_term(t.lowpass_sum, lam.lamlSum);
  add_term(t.highpass_sum, lam.lamhSum);
  add_term(t.l2norm, lam.lamL2norm);
  add_term(t.cmf, lam.lamCMF);
  add_term(t.conv, lam.lamConv);
  add_term(t.l1_wave, lam.lamL1wave);
  if (lam.lamL1attr > 0) {
    auto ao = o.attribution;
    ao.create_graph = true;
    const auto attr = awd_attributions(model, dwt.h0, coeffs, x, ao);
    t.l1_attr = awd_l1_loss(std::span<const Tensor<T>>(attr));
    add_term(t.l1_attr, lam.lamL1attr);
  }
  return t;
}

/// One number per term of the last step (NaN for a term not computed).
struct AwdLossValues {
  double reconstruction = 0, lowpass_sum = 0, highpass_sum = 0, l2norm = 0, cmf = 0, conv = 0, l1_wave = 0,
         l1_attr = std::nan(""), total = 0;
};

template <Floating T>
AwdLossValues awd_values(const AwdLossTerms<T>& t) {
  const auto v = [](const Tensor<T>& x) { return x.defined() ? static_cast<double>(x.item()) : std::nan(""); };
  return {v(t.reconstruction), v(t.lowpass_sum), v(t.highpass_sum), v(t.l2norm), v(t.cmf),
          v(t.conv),           v(t.l1_wave),     v(t.l1_attr),      v(t.total)};
}

/// Trains h0 of `dwt` by Adam (lr o.lr) on the AWD objective, one batch per step(); the model is
/// only read. Both are held by reference and must outlive the trainer.
template <Floating T>
class AwdTrainer {
 public:
  AwdTrainer(nn::DWT2d<T>& dwt, nn::Layer<T>& model, AwdOptions options)
      : dwt_(dwt), model_(model), o_(options), opt_({dwt.h0}, {.lr = options.lr}) {
    const auto& l = o_.lambdas;
    for (double v : {l.lamlSum, l.lamhSum, l.lamL2norm, l.lamCMF, l.lamConv, l.lamL1wave, l.lamL1attr})
      check(std::isfinite(v) && v >= 0, "AwdTrainer", "every lambda must be finite and >= 0, got ", v);
  }

  /// One Adam step on the batch x; returns the terms before the step.
  AwdLossValues step(const Tensor<T>& x) {
    const auto terms = awd_loss(dwt_, model_, x, o_);
    // Only h0 is asked for, so the model's parameters are neither touched nor accumulated into.
    dwt_.h0.set_grad(grad(terms.total, dwt_.h0));
    opt_.step();
    return awd_values(terms);
  }

  const AwdOptions& options() const { return o_; }

 private:
  nn::DWT2d<T>& dwt_;
  nn::Layer<T>& model_;
  AwdOptions o_;
  Adam<T> opt_;
};

}  // namespace metagrad::learn
