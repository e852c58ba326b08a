// SPDX-License-Identifier: MIT
// Function transforms with the names users know from torch.func and JAX: grad, value_and_grad,
// vjp, jvp, hvp, jacobian, hessian. Each takes a function of one tensor or of a vector of tensors
// and returns derivatives at a point. jvp is forward mode (one pass carrying tangents) and hvp is
// forward-over-reverse (the tangent of a gradient taken at a dual input), which is cheaper than
// their reverse-only forms, kept as jvp_by_double_vjp and hvp_reverse_over_reverse.
//
// Transforms nest with forward mode too: an input that carries a tangent hands it to the fresh
// variable, and results keep their tangents (detached like the results), so the jvp of a grad is
// an hvp.
//
// The function is called on fresh variables standing in for the inputs, so tensors it captures are
// constants, as in torch.func. With create_graph=false the results are detached (no graph survives
// the call); with create_graph=true each fresh variable is an alias of its input that passes the
// gradient through, so the results stay differentiable with respect to the inputs and transforms
// nest: the hessian of a hessian, the grad of an hvp. The function always runs with recording on,
// even inside a NoGradGuard, because a derivative cannot be had otherwise.
#pragma once
#include <algorithm>
#include <concepts>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/forward.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/view.hpp"

namespace metagrad {

struct TransformOptions {
  /// Record the derivative computation, so its results can be differentiated again.
  bool create_graph = false;
};

/// A function of one tensor returning one tensor.
template <class F, class T>
concept TensorFunction = std::invocable<F&, const Tensor<T>&> &&
                         std::convertible_to<std::invoke_result_t<F&, const Tensor<T>&>, Tensor<T>>;
/// A function of a vector of tensors returning one tensor.
template <class F, class T>
concept TensorsFunction = std::invocable<F&, const std::vector<Tensor<T>>&> &&
                          std::convertible_to<std::invoke_result_t<F&, const std::vector<Tensor<T>>&>, Tensor<T>>;

namespace detail {

/// The identity with a gradient: a fresh handle to x's storage whose gradient flows back to x.
template <Floating T>
Tensor<T> alias(const Tensor<T>& x) {
  return record(
      "alias", view_as_shape(x, x.shape()), {x}, [](const Tensor<T>& g, BackwardContext<T>& c) { c.set(0, g); },
      [](const TangentContext<T>& c) { return c.tangent(0); });
}

/// The variables a transform differentiates with respect to: fresh leaves, or (to keep the graph
/// to x for a nested transform) aliases of inputs that already require grad.
template <Floating T>
std::vector<Tensor<T>> fresh_variables(std::span<const Tensor<T>> xs, bool create_graph, const char* op) {
  std::vector<Tensor<T>> vars;
  vars.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    check(xs[i].defined(), op, "input ", i, " is an undefined tensor");
    if (create_graph && xs[i].requires_grad()) {
      vars.push_back(alias(xs[i]));  // carries xs[i]'s tangent, if any
    } else {
      Tensor<T> leaf = xs[i].detach().requires_grad_();
      const Tensor<T> tangent = xs[i].tangent();
      vars.push_back(tangent.defined() ? make_dual(leaf, tangent) : leaf);
    }
  }
  return vars;
}

/// Σ_j cotangents[j]ᵀ · d outputs[j] / d vars, one tensor per variable; zeros (not an error) where
/// the outputs do not depend on a variable, since that derivative is zero.
template <Floating T>
std::vector<Tensor<T>> vjp_of(std::span<const Tensor<T>> outputs, std::span<const Tensor<T>> cotangents,
                              std::span<const Tensor<T>> vars, bool create_graph, bool retain_graph) {
  std::vector<Tensor<T>> live, live_cotangents;
  for (std::size_t j = 0; j < outputs.size(); ++j)
    if (outputs[j].requires_grad()) {
      live.push_back(outputs[j]);
      live_cotangents.push_back(cotangents[j]);
    }
  std::vector<Tensor<T>> grads(vars.size());
  if (!live.empty()) {
    GradOptions<T> options;
    options.grad_outputs = std::move(live_cotangents);
    options.create_graph = create_graph;
    options.retain_graph = retain_graph;
    options.allow_unused = true;
    grads = grad<T>(std::span<const Tensor<T>>(live), vars, options);
  }
  for (std::size_t i = 0; i < vars.size(); ++i)
    if (!grads[i].defined()) grads[i] = zeros<T>(vars[i].shape());
  return grads;
}

/// Hands results back: detached unless the caller asked for a graph. A forward-mode tangent is
/// kept (detached too), so that an enclosing jvp sees the derivative of the result.
template <Floating T>
Tensor<T> finish(Tensor<T> t, bool create_graph) {
  if (create_graph) return t;
  Tensor<T> out = t.detach();
  if (const Tensor<T> tangent = t.tangent(); tangent.defined()) out.impl()->tangent = tangent.detach().impl();
  return out;
}
template <Floating T>
std::vector<Tensor<T>> finish(std::vector<Tensor<T>> ts, bool create_graph) {
  if (!create_graph)
    for (auto& t : ts) t = finish(std::move(t), false);
  return ts;
}

/// Rows of the Jacobian of `output` by one vjp per output element, stacked per variable into
/// output.shape ++ var.shape.
template <Floating T>
std::vector<Tensor<T>> jacobian_of(const Tensor<T>& output, std::span<const Tensor<T>> vars, bool create_graph) {
  const std::int64_t m = output.numel();
  std::vector<std::vector<Tensor<T>>> rows(vars.size());
  for (auto& r : rows) r.reserve(static_cast<std::size_t>(m));
  for (std::int64_t k = 0; k < m; ++k) {
    auto e = zeros<T>(output.shape());
    e.fresh_data()[k] = T(1);
    // Every row walks the same graph, and a hessian's rows share the gradient's graph too.
    auto g = vjp_of<T>({&output, 1}, {&e, 1}, vars, create_graph, /*retain_graph=*/true);
    for (std::size_t i = 0; i < vars.size(); ++i) rows[i].push_back(std::move(g[i]));
  }
  std::vector<Tensor<T>> jac;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    Shape whole = output.shape();
    for (auto d : vars[i].shape()) whole.push_back(d);
    jac.push_back(m == 0 ? zeros<T>(whole) : reshape(stack(rows[i]), whole));
  }
  return jac;
}

/// Calls f on the fresh variables (with recording on) and returns its output.
template <Floating T, class Call>
Tensor<T> call_on(Call& call, const std::vector<Tensor<T>>& vars, const char* op) {
  Tensor<T> out = call(vars);
  check(out.defined(), op, "the function returned an undefined tensor");
  return out;
}

template <Floating T>
void check_scalar_output(const Tensor<T>& out, const char* op) {
  check(out.numel() == 1, op, "the function must return a one-element tensor, got shape ", out.shape());
}

template <Floating T>
void check_like_inputs(std::span<const Tensor<T>> xs, std::span<const Tensor<T>> vs, const char* op, const char* what) {
  check(xs.size() == vs.size(), op, xs.size(), " inputs but ", vs.size(), " ", what, "s");
  for (std::size_t i = 0; i < xs.size(); ++i)
    check(vs[i].defined() && vs[i].shape() == xs[i].shape(), op, what, " ", i, " of shape ",
          vs[i].defined() ? vs[i].shape().str() : std::string("<undefined>"), " for input ", i, " of shape ",
          xs[i].shape());
}

// ---- the transforms over a vector of inputs; the public overloads below wrap them ----

template <Floating T, class Call>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(Call& call, std::span<const Tensor<T>> xs,
                                                             const TransformOptions& o, const char* op) {
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, op);
  const Tensor<T> out = call_on<T>(call, vars, op);
  check_scalar_output(out, op);
  const Tensor<T> seed;  // undefined: ones
  auto g = vjp_of<T>({&out, 1}, {&seed, 1}, vars, o.create_graph, o.create_graph);
  return {finish(out, o.create_graph), finish(std::move(g), o.create_graph)};
}

template <Floating T, class Call>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(Call& call, std::span<const Tensor<T>> xs, const Tensor<T>& v,
                                                 const TransformOptions& o) {
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, "vjp");
  const Tensor<T> out = call_on<T>(call, vars, "vjp");
  check(v.defined() && v.shape() == out.shape(), "vjp", "cotangent of shape ",
        v.defined() ? v.shape().str() : std::string("<undefined>"), " for an output of shape ", out.shape());
  auto g = vjp_of<T>({&out, 1}, {&v, 1}, vars, o.create_graph, o.create_graph);
  return {finish(out, o.create_graph), finish(std::move(g), o.create_graph)};
}

/// J·v in forward mode: one call of f on dual inputs, the output's tangent. f runs with recording
/// on (it may take gradients itself), but without create_graph nothing it is given requires grad,
/// so only what f creates is recorded.
template <Floating T, class Call>
std::pair<Tensor<T>, Tensor<T>> jvp(Call& call, std::span<const Tensor<T>> xs, std::span<const Tensor<T>> vs,
                                    const TransformOptions& o) {
  check_like_inputs(xs, vs, "jvp", "tangent");
  EnableGradGuard recording;
  std::vector<Tensor<T>> duals;
  duals.reserve(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor<T> primal = o.create_graph && xs[i].requires_grad() ? alias(xs[i]) : xs[i].detach();
    duals.push_back(make_dual(primal, o.create_graph ? vs[i] : vs[i].detach()));
  }
  const Tensor<T> out = call_on<T>(call, duals, "jvp");
  return {finish(out, o.create_graph), finish(tangent_or_zeros(out), o.create_graph)};
}

/// J·v by the double-vjp trick: u ↦ Jᵀu is linear in a dummy cotangent u, and its vjp with v is J·v.
/// Reverse mode only (two backward passes); jvp is cheaper.
template <Floating T, class Call>
std::pair<Tensor<T>, Tensor<T>> jvp_by_double_vjp(Call& call, std::span<const Tensor<T>> xs,
                                                  std::span<const Tensor<T>> vs, const TransformOptions& o) {
  check_like_inputs(xs, vs, "jvp_by_double_vjp", "tangent");
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, "jvp_by_double_vjp");
  const Tensor<T> out = call_on<T>(call, vars, "jvp_by_double_vjp");
  const Tensor<T> u = zeros<T>(out.shape()).requires_grad_();
  const auto jt_u = vjp_of<T>({&out, 1}, {&u, 1}, vars, /*create_graph=*/true, /*retain_graph=*/true);
  auto jv = vjp_of<T>(jt_u, vs, {&u, 1}, o.create_graph, o.create_graph);
  return {finish(out, o.create_graph), finish(std::move(jv[0]), o.create_graph)};
}

/// H·v forward-over-reverse: the gradient of f at the dual input (x, v) carries H·v as its tangent.
/// The backward pass propagates tangents whether or not it is recorded, so without create_graph
/// this costs about one gradient with tangents (no second backward pass, no recorded first one).
template <Floating T, class Call>
std::vector<Tensor<T>> hvp(Call& call, std::span<const Tensor<T>> xs, std::span<const Tensor<T>> vs,
                           const TransformOptions& o) {
  check_like_inputs(xs, vs, "hvp", "vector");
  EnableGradGuard recording;
  // Without create_graph nothing differentiates the tangents (only the gradient's is read), so
  // their computations need no tape. (A function that itself differentiates tangent_of(...) in
  // reverse mode needs create_graph.)
  const TangentRecordingGuard tangent_recording(o.create_graph);
  const auto vars = fresh_variables(xs, o.create_graph, "hvp");
  std::vector<Tensor<T>> duals;
  duals.reserve(vars.size());
  for (std::size_t i = 0; i < vars.size(); ++i) duals.push_back(make_dual(vars[i], o.create_graph ? vs[i] : vs[i].detach()));
  const Tensor<T> out = call_on<T>(call, duals, "hvp");
  check_scalar_output(out, "hvp");
  const Tensor<T> seed;  // undefined: ones
  const auto g = vjp_of<T>({&out, 1}, {&seed, 1}, duals, o.create_graph, o.create_graph);
  std::vector<Tensor<T>> hv;
  hv.reserve(g.size());
  for (const auto& gi : g) hv.push_back(tangent_or_zeros(gi));
  return finish(std::move(hv), o.create_graph);
}

/// H·v reverse-over-reverse: the vjp of the gradient with v (H is symmetric). Two backward passes,
/// the first recorded; hvp is cheaper.
template <Floating T, class Call>
std::vector<Tensor<T>> hvp_reverse_over_reverse(Call& call, std::span<const Tensor<T>> xs, std::span<const Tensor<T>> vs,
                                                const TransformOptions& o) {
  check_like_inputs(xs, vs, "hvp_reverse_over_reverse", "vector");
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, "hvp_reverse_over_reverse");
  const Tensor<T> out = call_on<T>(call, vars, "hvp_reverse_over_reverse");
  check_scalar_output(out, "hvp_reverse_over_reverse");
  const Tensor<T> seed;
  const auto g = vjp_of<T>({&out, 1}, {&seed, 1}, vars, /*create_graph=*/true, /*retain_graph=*/true);
  return finish(vjp_of<T>(g, vs, vars, o.create_graph, o.create_graph), o.create_graph);
}

template <Floating T, class Call>
std::vector<Tensor<T>> jacobian(Call& call, std::span<const Tensor<T>> xs, const TransformOptions& o) {
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, "jacobian");
  const Tensor<T> out = call_on<T>(call, vars, "jacobian");
  return finish(jacobian_of<T>(out, vars, o.create_graph), o.create_graph);
}

/// Blocks H[i][j] = d²f / dx_i dx_j of shape x_i.shape ++ x_j.shape.
template <Floating T, class Call>
std::vector<std::vector<Tensor<T>>> hessian(Call& call, std::span<const Tensor<T>> xs, const TransformOptions& o) {
  EnableGradGuard recording;
  const auto vars = fresh_variables(xs, o.create_graph, "hessian");
  const Tensor<T> out = call_on<T>(call, vars, "hessian");
  check_scalar_output(out, "hessian");
  const Tensor<T> seed;
  const auto g = vjp_of<T>({&out, 1}, {&seed, 1}, vars, /*create_graph=*/true, /*retain_graph=*/true);
  std::vector<std::vector<Tensor<T>>> h;
  for (const auto& gi : g) h.push_back(finish(jacobian_of<T>(gi, vars, o.create_graph), o.create_graph));
  return h;
}

/// Adapts a function of one tensor to the vector form.
template <Floating T, class F>
auto unary_call(F& f) {
  return [&f](const std::vector<Tensor<T>>& vars) -> Tensor<T> { return std::invoke(f, vars[0]); };
}
template <Floating T, class F>
auto vector_call(F& f) {
  return [&f](const std::vector<Tensor<T>>& vars) -> Tensor<T> { return std::invoke(f, vars); };
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public transforms. Each has a form for f(Tensor) and one for f(std::vector<Tensor>).

/// {f(x), df/dx} for f returning a one-element tensor.
template <Floating T, TensorFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> value_and_grad(F&& f, const Tensor<T>& x, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  auto [value, g] = detail::value_and_grad<T>(call, {&x, 1}, options, "value_and_grad");
  return {std::move(value), std::move(g[0])};
}
template <Floating T, TensorsFunction<T> F>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(F&& f, const std::vector<Tensor<T>>& xs,
                                                            const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::value_and_grad<T>(call, xs, options, "value_and_grad");
}

/// df/dx for f returning a one-element tensor.
template <Floating T, TensorFunction<T> F>
Tensor<T> grad(F&& f, const Tensor<T>& x, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return std::move(detail::value_and_grad<T>(call, {&x, 1}, options, "grad").second[0]);
}
template <Floating T, TensorsFunction<T> F>
std::vector<Tensor<T>> grad(F&& f, const std::vector<Tensor<T>>& xs, const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return std::move(detail::value_and_grad<T>(call, xs, options, "grad").second);
}

/// {f(x), vᵀ·J}: the vector-Jacobian product with a cotangent v of f(x)'s shape.
template <Floating T, TensorFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> vjp(F&& f, const Tensor<T>& x, const Tensor<T>& v, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  auto [value, g] = detail::vjp<T>(call, {&x, 1}, v, options);
  return {std::move(value), std::move(g[0])};
}
template <Floating T, TensorsFunction<T> F>
std::pair<Tensor<T>, std::vector<Tensor<T>>> vjp(F&& f, const std::vector<Tensor<T>>& xs, const Tensor<T>& v,
                                                 const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::vjp<T>(call, xs, v, options);
}

/// {f(x), J·v}: the Jacobian-vector product with a tangent v of x's shape (one per input).
template <Floating T, TensorFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> jvp(F&& f, const Tensor<T>& x, const Tensor<T>& v, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return detail::jvp<T>(call, {&x, 1}, {&v, 1}, options);
}
template <Floating T, TensorsFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> jvp(F&& f, const std::vector<Tensor<T>>& xs, const std::vector<Tensor<T>>& vs,
                                    const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::jvp<T>(call, xs, vs, options);
}

/// {f(x), J·v} by two reverse passes (the double-vjp trick); jvp gives the same in one forward pass.
template <Floating T, TensorFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> jvp_by_double_vjp(F&& f, const Tensor<T>& x, const Tensor<T>& v,
                                                  const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return detail::jvp_by_double_vjp<T>(call, {&x, 1}, {&v, 1}, options);
}
template <Floating T, TensorsFunction<T> F>
std::pair<Tensor<T>, Tensor<T>> jvp_by_double_vjp(F&& f, const std::vector<Tensor<T>>& xs,
                                                  const std::vector<Tensor<T>>& vs, const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::jvp_by_double_vjp<T>(call, xs, vs, options);
}

/// H·v, the Hessian of a one-element f at x times v, forward-over-reverse: about the cost of one
/// gradient carrying tangents.
template <Floating T, TensorFunction<T> F>
Tensor<T> hvp(F&& f, const Tensor<T>& x, const Tensor<T>& v, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return std::move(detail::hvp<T>(call, {&x, 1}, {&v, 1}, options)[0]);
}
template <Floating T, TensorsFunction<T> F>
std::vector<Tensor<T>> hvp(F&& f, const std::vector<Tensor<T>>& xs, const std::vector<Tensor<T>>& vs,
                           const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::hvp<T>(call, xs, vs, options);
}

/// H·v reverse-over-reverse (the gradient of <gradient, v>): two backward passes, the first recorded.
template <Floating T, TensorFunction<T> F>
Tensor<T> hvp_reverse_over_reverse(F&& f, const Tensor<T>& x, const Tensor<T>& v, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return std::move(detail::hvp_reverse_over_reverse<T>(call, {&x, 1}, {&v, 1}, options)[0]);
}
template <Floating T, TensorsFunction<T> F>
std::vector<Tensor<T>> hvp_reverse_over_reverse(F&& f, const std::vector<Tensor<T>>& xs,
                                                const std::vector<Tensor<T>>& vs, const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::hvp_reverse_over_reverse<T>(call, xs, vs, options);
}

/// d f(x) / dx of shape f(x).shape ++ x.shape, one vjp per element of f(x).
template <Floating T, TensorFunction<T> F>
Tensor<T> jacobian(F&& f, const Tensor<T>& x, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return std::move(detail::jacobian<T>(call, {&x, 1}, options)[0]);
}
/// One Jacobian per input, each of shape f(xs).shape ++ xs[i].shape.
template <Floating T, TensorsFunction<T> F>
std::vector<Tensor<T>> jacobian(F&& f, const std::vector<Tensor<T>>& xs, const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::jacobian<T>(call, xs, options);
}

/// d²f / dx² of shape x.shape ++ x.shape for a one-element f.
template <Floating T, TensorFunction<T> F>
Tensor<T> hessian(F&& f, const Tensor<T>& x, const TransformOptions& options = {}) {
  auto call = detail::unary_call<T>(f);
  return std::move(detail::hessian<T>(call, {&x, 1}, options)[0][0]);
}
/// Blocks h[i][j] = d²f / dxs[i] dxs[j], of shape xs[i].shape ++ xs[j].shape.
template <Floating T, TensorsFunction<T> F>
std::vector<std::vector<Tensor<T>>> hessian(F&& f, const std::vector<Tensor<T>>& xs,
                                            const TransformOptions& options = {}) {
  auto call = detail::vector_call<T>(f);
  return detail::hessian<T>(call, xs, options);
}

}  // namespace metagrad
