// SPDX-License-Identifier: MIT
// gradcheck / gradgradcheck: compare the analytical derivative of a function of double tensors
// with central finite differences, to any order. Order k checks the (k-1)-th vector-Jacobian
// product as a function of the inputs *and* the cotangents, so every backward rule is itself
// checked as a differentiable function (as torch.autograd.gradgradcheck does).
//
// Every order is also checked in forward mode: along a few random directions v, the tangent that
// make_dual(x, v) carries to the output must equal (f(x + eps v) - f(x - eps v)) / 2 eps. At order
// k >= 2 the checked function is made of backward rules, so this checks each rule's tangent rule
// and the tangent rules of the backward rules: forward-over-reverse.
#pragma once
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/forward.hpp"

namespace metagrad {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  int order = 1;               // check derivatives of orders 1..order
  std::uint64_t seed = 1234;   // for the random cotangents of orders >= 2
  int tangents = 2;            // random directions checked in forward mode at every order
};

struct GradcheckResult {
  bool ok = true;
  std::string report;  // what failed, with the worst entries
  explicit operator bool() const { return ok; }
};

using TensorFn = std::function<std::vector<Tensor<double>>(const std::vector<Tensor<double>>&)>;

namespace detail {

inline std::vector<Tensor<double>> fresh_leaves(const std::vector<Tensor<double>>& xs) {
  std::vector<Tensor<double>> out;
  for (const auto& x : xs) {
    auto t = Tensor<double>::empty(x.shape());
    std::copy_n(x.data(), x.numel(), t.fresh_data());
    out.push_back(t.requires_grad_());
  }
  return out;
}

/// The first-order check of f at xs; appends failures to `report`. Each perturbed input is
/// evaluated once for all outputs, so a check costs 2·(input elements) calls of f plus one vjp
/// per output element.
inline bool check_first_order(const TensorFn& f, const std::vector<Tensor<double>>& xs, const GradcheckOptions& o,
                              int order, std::ostringstream& report) {
  auto leaves = fresh_leaves(xs);
  const auto ys = f(leaves);
  // Analytical rows: rows[j][k][i] is d ys[j][k] / d xs[i], one vjp per output element.
  std::vector<std::vector<std::vector<Tensor<double>>>> rows(ys.size());
  for (std::size_t j = 0; j < ys.size(); ++j) {
    const auto& y = ys[j];
    rows[j].resize(static_cast<std::size_t>(y.numel()));
    if (!y.requires_grad()) continue;
    for (std::int64_t k = 0; k < y.numel(); ++k) {
      auto e = zeros<double>(y.shape());
      e.fresh_data()[k] = 1;
      GradOptions<double> go;
      go.grad_outputs = {e};
      go.retain_graph = true;
      go.allow_unused = true;
      rows[j][static_cast<std::size_t>(k)] =
          grad<double>(std::span<const Tensor<double>>(&y, 1), std::span<const Tensor<double>>(leaves), go);
    }
  }
  // Numerical columns, one input element at a time.
  bool ok = true;
  int failures = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    for (std::int64_t p = 0; p < xs[i].numel(); ++p) {
      auto plus = fresh_leaves(xs), minus = fresh_leaves(xs);
      plus[i].fresh_data()[p] += o.eps;
      minus[i].fresh_data()[p] -= o.eps;
      const auto yps = f(plus), yms = f(minus);
      for (std::size_t j = 0; j < ys.size(); ++j) {
        const auto &yp = yps[j], &ym = yms[j];
        for (std::int64_t k = 0; k < ys[j].numel(); ++k) {
          const double numeric = (yp.data()[k] - ym.data()[k]) / (2 * o.eps);
          const auto& row = rows[j][static_cast<std::size_t>(k)];
          const double analytic = !row.empty() && row[i].defined() ? row[i].data()[p] : 0.0;
          if (!std::isfinite(analytic) || std::abs(analytic - numeric) > o.atol + o.rtol * std::abs(numeric)) {
            ok = false;
            if (failures++ < 8)
              report << "order " << order << ": d output" << j << "[" << k << "] / d input" << i << "[" << p
                     << "]: analytical " << analytic << " vs numerical " << numeric << "\n";
          }
        }
      }
    }
  }
  return ok;
}

/// The forward-mode check of f at xs along `o.tangents` random directions drawn from gen; appends
/// failures to `report`. Each direction costs one call of f with tangents and two without.
inline bool check_forward_mode(const TensorFn& f, const std::vector<Tensor<double>>& xs, const GradcheckOptions& o,
                               int order, Generator& gen, std::ostringstream& report) {
  bool ok = true;
  int failures = 0;
  for (int direction = 0; direction < o.tangents; ++direction) {
    std::vector<Tensor<double>> vs, duals;
    const auto leaves = fresh_leaves(xs);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      vs.push_back(randn<double>(xs[i].shape(), gen));
      duals.push_back(make_dual(leaves[i], vs[i]));
    }
    const auto ys = f(duals);
    auto plus = fresh_leaves(xs), minus = fresh_leaves(xs);
    for (std::size_t i = 0; i < xs.size(); ++i)
      for (std::int64_t p = 0; p < xs[i].numel(); ++p) {
        plus[i].fresh_data()[p] += o.eps * vs[i].data()[p];
        minus[i].fresh_data()[p] -= o.eps * vs[i].data()[p];
      }
    const auto yps = f(plus), yms = f(minus);
    for (std::size_t j = 0; j < ys.size(); ++j) {
      const Tensor<double> tangent = ys[j].tangent();
      for (std::int64_t k = 0; k < ys[j].numel(); ++k) {
        const double numeric = (yps[j].data()[k] - yms[j].data()[k]) / (2 * o.eps);
        const double analytic = tangent.defined() ? tangent.data()[k] : 0.0;
        if (!std::isfinite(analytic) || std::abs(analytic - numeric) > o.atol + o.rtol * std::abs(numeric)) {
          ok = false;
          if (failures++ < 8)
            report << "order " << order << " (forward mode): tangent of output" << j << "[" << k << "] along direction "
                   << direction << ": analytical " << analytic << " vs numerical " << numeric << "\n";
        }
      }
    }
  }
  return ok;
}

}  // namespace detail

/// Checks derivatives of f (a function of double tensors returning one or more tensors) at xs,
/// for every order up to options.order.
inline GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor<double>>& xs, GradcheckOptions options = {}) {
  GradcheckResult result;
  std::ostringstream report;
  TensorFn fk = f;
  std::vector<Tensor<double>> inputs = xs;
  Generator gen(options.seed);
  // Its own stream, so the cotangents drawn from gen are the same with or without forward checks.
  Generator tangent_gen(options.seed ^ 0x9e3779b97f4a7c15ULL);
  for (int order = 1; order <= options.order; ++order) {
    const bool reverse_ok = detail::check_first_order(fk, inputs, options, order, report);
    const bool forward_ok = detail::check_forward_mode(fk, inputs, options, order, tangent_gen, report);
    if (!reverse_ok || !forward_ok) {
      result.ok = false;
      break;
    }
    if (order == options.order) break;
    // Next order: the vjp of fk, as a function of fk's inputs and a cotangent per output.
    const std::size_t n_in = inputs.size();
    std::vector<Tensor<double>> probe;
    {
      NoGradGuard guard;
      probe = fk(detail::fresh_leaves(inputs));
    }
    for (const auto& y : probe) inputs.push_back(randn<double>(y.shape(), gen));
    fk = [prev = fk, n_in](const std::vector<Tensor<double>>& args) {
      std::vector<Tensor<double>> xs(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(n_in));
      std::vector<Tensor<double>> us(args.begin() + static_cast<std::ptrdiff_t>(n_in), args.end());
      auto ys = prev(xs);
      std::vector<Tensor<double>> live_ys, live_us;
      for (std::size_t j = 0; j < ys.size(); ++j)
        if (ys[j].requires_grad()) {
          live_ys.push_back(ys[j]);
          live_us.push_back(us[j]);
        }
      std::vector<Tensor<double>> out;
      if (live_ys.empty()) {
        for (const auto& x : xs) out.push_back(zeros<double>(x.shape()));
        return out;
      }
      GradOptions<double> go;
      go.grad_outputs = live_us;
      go.create_graph = true;
      go.allow_unused = true;
      auto gs = grad<double>(std::span<const Tensor<double>>(live_ys), std::span<const Tensor<double>>(xs), go);
      for (std::size_t i = 0; i < gs.size(); ++i) out.push_back(gs[i].defined() ? gs[i] : zeros<double>(xs[i].shape()));
      return out;
    };
  }
  result.report = report.str();
  return result;
}

/// gradcheck with one tensor-valued output.
inline GradcheckResult gradcheck(const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>& f,
                                 const std::vector<Tensor<double>>& xs, GradcheckOptions options = {}) {
  return gradcheck(TensorFn([f](const std::vector<Tensor<double>>& a) { return std::vector<Tensor<double>>{f(a)}; }), xs,
                   options);
}

/// gradcheck of orders 1 and 2.
template <class F>
GradcheckResult gradgradcheck(const F& f, const std::vector<Tensor<double>>& xs, GradcheckOptions options = {}) {
  options.order = std::max(options.order, 2);
  return gradcheck(f, xs, options);
}

}  // namespace metagrad
