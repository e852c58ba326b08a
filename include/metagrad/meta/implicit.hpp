// SPDX-License-Identifier: MIT
// Implicit differentiation: the hypergradient at a solution θ* of the inner problem
// (∇_θ inner(θ*, h) = 0) without backpropagating through the steps that found it. By the implicit
// function theorem dθ*/dh = -H⁻¹ ∂²inner/∂θ∂h with H = ∂²inner/∂θ², so
//   d outer / d h = ∂outer/∂h - (∂²inner/∂h∂θ) q,   (H + damping I) q = ∂outer/∂θ,
// where q is found with Hessian-vector products only (conjugate gradient, or a Neumann series),
// and the mixed term is one vector-Jacobian product of the inner gradient. Memory is that of one
// inner gradient graph, whatever the number of steps that produced θ*. Damping regularises an
// ill-conditioned or indefinite H (and biases the result: it solves the damped system).
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "metagrad/meta/hypergradient.hpp"
#include "metagrad/ops/reduction.hpp"

namespace metagrad {

enum class ImplicitSolver { conjugate_gradient, neumann };

struct ImplicitOptions {
  ImplicitSolver solver = ImplicitSolver::conjugate_gradient;
  /// CG iterations at most, or Neumann terms.
  std::int64_t iterations = 100;
  /// CG stops when ‖(H + damping I) q - v‖ <= tolerance ‖v‖.
  double tolerance = 1e-12;
  /// Added to the Hessian's diagonal.
  double damping = 0;
  /// Neumann: H⁻¹ ≈ α Σ_i (I - α H)^i; converges for 0 < α < 2 / λ_max(H + damping I).
  double neumann_step = 1;
};

template <Floating T>
struct ImplicitHypergradient : Hypergradient<T> {
  /// Solver iterations used and the final relative residual ‖(H + damping I) q - v‖ / ‖v‖.
  std::int64_t iterations = 0;
  double residual = 0;
};

namespace detail {

template <Floating T>
double dot_all(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
  double acc = 0;
  for (std::size_t i = 0; i < a.size(); ++i) acc += static_cast<double>(sum(mul(a[i], b[i])).item());
  return acc;
}
/// a + alpha * b, element by element of the lists.
template <Floating T>
std::vector<Tensor<T>> axpy(const std::vector<Tensor<T>>& a, double alpha, const std::vector<Tensor<T>>& b) {
  std::vector<Tensor<T>> out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = add(a[i], mul(b[i], static_cast<T>(alpha)));
  return out;
}

}  // namespace detail

/// The hypergradient of outer(θ*) w.r.t. `hyper` at an inner solution `solution` = θ*, where
/// `inner` (a function of θ that captures `hyper`) is stationary. `state_grads` stays empty.
template <Floating T>
ImplicitHypergradient<T> implicit_hypergradient(const std::vector<Tensor<T>>& solution,
                                                const std::function<Tensor<T>(const std::vector<Tensor<T>>&)>& inner,
                                                const OuterLoss<T>& outer, const std::vector<Tensor<T>>& hyper,
                                                const ImplicitOptions& options = {}) {
  constexpr const char* op = "implicit_hypergradient";
  check(!solution.empty(), op, "empty solution");
  check(options.iterations >= 0, op, "iterations must be >= 0, got ", options.iterations);
  check(options.damping >= 0 && std::isfinite(options.damping), op, "damping ", options.damping, " must be finite and >= 0");
  check(options.neumann_step > 0 && std::isfinite(options.neumann_step), op, "neumann_step ", options.neumann_step,
        " must be finite and > 0");
  detail::check_hyperparameters(hyper, op);
  EnableGradGuard recording;
  const auto vars = detail::fresh_leaves(solution);

  ImplicitHypergradient<T> out;
  std::vector<Tensor<T>> direct, v;
  {
    const Tensor<T> loss = outer(vars);
    check(loss.defined() && loss.numel() == 1, op, "the outer loss must be a one-element tensor");
    out.outer_loss = loss.item();
    std::vector<Tensor<T>> inputs = hyper;
    inputs.insert(inputs.end(), vars.begin(), vars.end());
    auto g = detail::gradients_or_zeros<T>({&loss, 1}, inputs);
    direct.assign(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(hyper.size()));
    v.assign(g.begin() + static_cast<std::ptrdiff_t>(hyper.size()), g.end());
  }

  // The inner gradient, kept as a graph: every HVP and the final mixed product walk it.
  const Tensor<T> inner_loss = inner(vars);
  check(inner_loss.defined() && inner_loss.numel() == 1, op, "the inner loss must be a one-element tensor");
  check(inner_loss.requires_grad(), op, "the inner loss does not depend on the parameters");
  GradOptions<T> go;
  go.create_graph = true;
  go.allow_unused = true;
  auto inner_grad = grad<T>(inner_loss, vars, go);
  for (std::size_t i = 0; i < vars.size(); ++i)
    if (!inner_grad[i].defined()) inner_grad[i] = zeros<T>(vars[i].shape());

  auto apply = [&](const std::vector<Tensor<T>>& p) {  // (H + damping I) p
    auto hp = detail::gradients_or_zeros<T>(std::span<const Tensor<T>>(inner_grad), vars, p, /*retain_graph=*/true);
    NoGradGuard no_grad;
    return options.damping != 0 ? detail::axpy(hp, options.damping, p) : hp;
  };

  std::vector<Tensor<T>> q;
  {
    NoGradGuard no_grad;
    const double v_norm = std::sqrt(detail::dot_all(v, v));
    if (options.solver == ImplicitSolver::conjugate_gradient) {
      for (const auto& vi : v) q.push_back(zeros<T>(vi.shape()));
      std::vector<Tensor<T>> r = v, p = v;
      double rs = v_norm * v_norm;
      while (out.iterations < options.iterations && std::sqrt(rs) > options.tolerance * v_norm) {
        const auto ap = apply(p);
        const double alpha = rs / detail::dot_all(p, ap);
        q = detail::axpy(q, alpha, p);
        r = detail::axpy(r, -alpha, ap);
        const double rs_next = detail::dot_all(r, r);
        p = detail::axpy(r, rs_next / rs, p);
        rs = rs_next;
        ++out.iterations;
      }
    } else {
      // q = α Σ_{i=0}^{N} (I - α(H + damping I))^i v
      std::vector<Tensor<T>> term = v, total = v;
      for (; out.iterations < options.iterations; ++out.iterations) {
        term = detail::axpy(term, -options.neumann_step, apply(term));
        total = detail::axpy(total, 1.0, term);
      }
      for (auto& t : total) q.push_back(mul(t, static_cast<T>(options.neumann_step)));
    }
    const auto residual = detail::axpy(apply(q), -1.0, v);
    out.residual = v_norm > 0 ? std::sqrt(detail::dot_all(residual, residual)) / v_norm : 0.0;
  }

  // The mixed term (∂²inner/∂h∂θ) q: the vjp of the inner gradient with q, w.r.t. h.
  const auto mixed = detail::gradients_or_zeros<T>(std::span<const Tensor<T>>(inner_grad), hyper, q);
  NoGradGuard no_grad;
  out.grads.resize(hyper.size());
  for (std::size_t i = 0; i < hyper.size(); ++i) out.grads[i] = sub(direct[i], mixed[i]);
  return out;
}

}  // namespace metagrad
