// SPDX-License-Identifier: MIT
// conv2d and conv_transpose2d with PyTorch semantics (NCHW, no groups), built as a closed family
// of three bilinear primitives. With B(x, w, g) = <conv2d(x, w), g>:
//   conv2d(x, w)                      = ∂B/∂g
//   conv2d_input_grad(g, w, x_shape)  = ∂B/∂x  (which is also conv_transpose2d)
//   conv2d_weight_grad(x, g, w_shape) = ∂B/∂w
// Each primitive is a partial derivative of the same trilinear form, so the derivative of any of
// them is again one of the three, and the family differentiates to any order.
//
// conv2d(x, w) and conv2d_weight_grad(x, g) both lower x (im2col), and their derivatives lower the
// same x again: a Hessian-vector product of a CNN lowered each input four times. So when a graph
// is being recorded, the lowering of x is made once, kept by the graph (like PyTorch's finput) and
// handed from rule to rule; its size is capped, since it is patch/C times the input.
#pragma once
#include <memory>
#include <ostream>

#include "metagrad/backend/conv.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/reduction.hpp"

namespace metagrad {

/// A pair of extents (height, width); a single integer means the same for both.
struct Size2d {
  std::int64_t h = 0, w = 0;
  constexpr Size2d(std::int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, like PyTorch's int args
  constexpr Size2d(std::int64_t height, std::int64_t width) : h(height), w(width) {}
  friend std::ostream& operator<<(std::ostream& os, const Size2d& s) { return os << "(" << s.h << ", " << s.w << ")"; }
};

template <Floating T>
Tensor<T> conv2d_input_grad(const Tensor<T>& grad_output, const Tensor<T>& weight, const Shape& input_shape,
                            Size2d stride = 1, Size2d padding = 0, Size2d dilation = 1);
template <Floating T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& input, const Tensor<T>& grad_output, const Shape& weight_shape,
                             Size2d stride = 1, Size2d padding = 0, Size2d dilation = 1);

namespace detail {
struct ConvParams {
  Size2d stride, padding, dilation;
};

/// Checks a convolution of an input of shape x with a weight of shape w and returns its geometry.
inline backend::ConvGeometry conv_geometry(const Shape& x, const Shape& w, const ConvParams& p, const char* op) {
  check(x.rank() == 4, op, "input must be 4-D [N, C, H, W], got ", x);
  check(w.rank() == 4, op, "weight must be 4-D [out, in, kh, kw], got ", w);
  check(x[1] == w[1], op, "input ", x, " has ", x[1], " channels but weight ", w, " expects ", w[1]);
  check(p.stride.h >= 1 && p.stride.w >= 1, op, "stride ", p.stride, " must be positive");
  check(p.dilation.h >= 1 && p.dilation.w >= 1, op, "dilation ", p.dilation, " must be positive");
  check(p.padding.h >= 0 && p.padding.w >= 0, op, "padding ", p.padding, " must be non-negative");
  check(w[2] >= 1 && w[3] >= 1, op, "weight ", w, " has an empty kernel");
  const auto axis = [&](std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t pad, std::int64_t d) {
    backend::ConvAxis a{in, k, s, pad, d, 0};
    const std::int64_t span = d * (k - 1) + 1;
    check(span <= in + 2 * pad, op, "kernel of weight ", w, " (spanning ", span, " with dilation ", d,
          ") is larger than the padded input ", in + 2 * pad, " of input ", x);
    a.out = (in + 2 * pad - span) / s + 1;
    return a;
  };
  backend::ConvGeometry g;
  g.batch = x[0];
  g.in_channels = x[1];
  g.out_channels = w[0];
  g.h = axis(x[2], w[2], p.stride.h, p.padding.h, p.dilation.h);
  g.w = axis(x[3], w[3], p.stride.w, p.padding.w, p.dilation.w);
  return g;
}

inline Shape conv_output_shape(const backend::ConvGeometry& g) { return Shape{g.batch, g.out_channels, g.h.out, g.w.out}; }

/// The gradient of a convolution's output must have the output's shape.
inline void check_grad_output(const Shape& grad, const backend::ConvGeometry& g, const Shape& x, const Shape& w,
                              const char* op) {
  check(grad == conv_output_shape(g), op, "grad_output ", grad, " does not match the output ", conv_output_shape(g),
        " of a convolution of input ", x, " with weight ", w);
}
/// The im2col of a convolution input for one geometry (backend::lower layout), shared by the
/// rules of every op that reads that input; null when not kept.
template <Floating T>
using Lowering = std::shared_ptr<const Tensor<T>>;

/// The largest lowering kept alive with a graph, in elements (32 MiB of float).
inline constexpr std::int64_t kMaxKeptLowering = std::int64_t{1} << 23;

inline bool lowering_fits(const backend::ConvGeometry& g) { return g.batch * g.patch() * g.positions() <= kMaxKeptLowering; }

template <Floating T>
Lowering<T> lower(const Tensor<T>& x, const backend::ConvGeometry& g) {
  auto cols = Tensor<T>::empty(Shape{g.batch * g.patch() * g.positions()});
  backend::lower(x, g, cols);
  return std::make_shared<const Tensor<T>>(std::move(cols));
}

/// The lowering to use: the one handed in, else a new one when a rule recorded now will read x
/// again (`reread`), else none (the kernel lowers chunk by chunk in cache).
template <Floating T>
Lowering<T> lowering_for(const Tensor<T>& x, const backend::ConvGeometry& g, Lowering<T> given, bool reread) {
  if (given || !reread || !GradMode::enabled() || !lowering_fits(g)) return given;
  return lower(x, g);
}

template <Floating T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& p,
                 Lowering<T> lowered);
template <Floating T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& input, const Tensor<T>& grad_output, const Shape& weight_shape,
                             const ConvParams& p, Lowering<T> lowered);
}  // namespace detail

/// 2-D convolution (cross-correlation, as in PyTorch): x [N, C, H, W], weight [O, C, kh, kw],
/// optional bias [O]; the result is [N, O, OH, OW].
template <Floating T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {}, Size2d stride = 1,
                 Size2d padding = 0, Size2d dilation = 1) {
  return detail::conv2d(x, weight, bias, detail::ConvParams{stride, padding, dilation}, detail::Lowering<T>{});
}

namespace detail {
/// conv2d, reading the lowering of x when one is given.
template <Floating T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvParams& p,
                 Lowering<T> lowered) {
  const auto g = conv_geometry(x.shape(), weight.shape(), p, "conv2d");
  const bool with_bias = bias.defined();
  check(!with_bias || bias.shape() == Shape{g.out_channels}, "conv2d", "bias ", with_bias ? bias.shape().str() : "",
        " does not match weight ", weight.shape());
  // The weight gradient reads x again.
  lowered = lowering_for(x, g, std::move(lowered), weight.requires_grad());
  auto y = Tensor<T>::empty(conv_output_shape(g));
  if (lowered)
    backend::conv2d_forward_lowered(*lowered, weight, bias, g, y);
  else
    backend::conv2d_forward(x, weight, bias, g, y);
  auto rule = [p, with_bias, lowered](const Tensor<T>& gy, BackwardContext<T>& c) {
    const auto &x = c.input(0), &w = c.input(1);
    if (c.wants(0)) c.set(0, conv2d_input_grad(gy, w, x.shape(), p.stride, p.padding, p.dilation));
    if (c.wants(1)) c.set(1, conv2d_weight_grad(x, gy, w.shape(), p, lowered));
    if (with_bias && c.wants(2)) c.set(2, sum(gy, {0, 2, 3}));
  };
  auto tangent_rule = [p, with_bias, lowered](const TangentContext<T>& c) {
    // Bilinear in (x, w), plus the bias: conv(dx, w) + conv(x, dw) + db.
    const auto &x = c.input(0), &w = c.input(1);
    const Tensor<T> dx = c.has_tangent(0) ? conv2d(c.tangent(0), w, Tensor<T>{}, p, Lowering<T>{}) : Tensor<T>();
    const Tensor<T> dw = c.has_tangent(1) ? conv2d(x, c.tangent(1), Tensor<T>{}, p, lowered) : Tensor<T>();
    Tensor<T> out = add_terms(dx, dw, c.output_shape());
    if (with_bias && c.has_tangent(2))
      out = add_terms(out, reshape(c.tangent(2), Shape{1, c.output_shape()[1], 1, 1}), c.output_shape());
    return out;
  };
  if (with_bias) return record("conv2d", std::move(y), {x, weight, bias}, std::move(rule), std::move(tangent_rule));
  return record("conv2d", std::move(y), {x, weight}, std::move(rule), std::move(tangent_rule));
}
}  // namespace detail

/// The adjoint of conv2d in its input: the gradient of <conv2d(x, weight), grad_output> with
/// respect to x, for x of shape input_shape. Bilinear in (grad_output, weight).
template <Floating T>
Tensor<T> conv2d_input_grad(const Tensor<T>& grad_output, const Tensor<T>& weight, const Shape& input_shape,
                            Size2d stride, Size2d padding, Size2d dilation) {
  const detail::ConvParams p{stride, padding, dilation};
  const auto g = detail::conv_geometry(input_shape, weight.shape(), p, "conv2d_input_grad");
  detail::check_grad_output(grad_output.shape(), g, input_shape, weight.shape(), "conv2d_input_grad");
  auto dx = Tensor<T>::empty(input_shape);
  backend::conv2d_input_grad(grad_output, weight, g, dx);
  return record("conv2d_input_grad", std::move(dx), {grad_output, weight}, [p, g](const Tensor<T>& u, BackwardContext<T>& c) {
    // <conv2d_input_grad(g, w), u> = B(u, w, g). Both products lower u: when both are wanted, once.
    const auto &gy = c.input(0), &w = c.input(1);
    const auto lowered = c.wants(0) && c.wants(1) && detail::lowering_fits(g) ? detail::lower(u, g) : detail::Lowering<T>{};
    if (c.wants(0)) c.set(0, detail::conv2d(u, w, {}, p, lowered));
    if (c.wants(1)) c.set(1, detail::conv2d_weight_grad(u, gy, w.shape(), p, lowered));
  }, [p](const TangentContext<T>& c) {
    // Bilinear in (grad_output, weight).
    const auto &gy = c.input(0), &w = c.input(1);
    const Shape& x_shape = c.output_shape();
    const Tensor<T> dg = c.has_tangent(0)
                             ? conv2d_input_grad(c.tangent(0), w, x_shape, p.stride, p.padding, p.dilation)
                             : Tensor<T>();
    const Tensor<T> dw = c.has_tangent(1)
                             ? conv2d_input_grad(gy, c.tangent(1), x_shape, p.stride, p.padding, p.dilation)
                             : Tensor<T>();
    return detail::add_terms(dg, dw, x_shape);
  });
}

/// The adjoint of conv2d in its weight: the gradient of <conv2d(input, w), grad_output> with
/// respect to w, for w of shape weight_shape. Bilinear in (input, grad_output).
template <Floating T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& input, const Tensor<T>& grad_output, const Shape& weight_shape,
                             Size2d stride, Size2d padding, Size2d dilation) {
  return detail::conv2d_weight_grad(input, grad_output, weight_shape, detail::ConvParams{stride, padding, dilation},
                                    detail::Lowering<T>{});
}

namespace detail {
/// conv2d_weight_grad, reading the lowering of input when one is given.
template <Floating T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& input, const Tensor<T>& grad_output, const Shape& weight_shape,
                             const ConvParams& p, Lowering<T> lowered) {
  const auto g = conv_geometry(input.shape(), weight_shape, p, "conv2d_weight_grad");
  check_grad_output(grad_output.shape(), g, input.shape(), weight_shape, "conv2d_weight_grad");
  // The derivative in grad_output is conv2d(input, u), which reads input again.
  lowered = lowering_for(input, g, std::move(lowered), grad_output.requires_grad());
  auto dw = Tensor<T>::empty(weight_shape);
  if (lowered)
    backend::conv2d_weight_grad_lowered(*lowered, grad_output, g, dw);
  else
    backend::conv2d_weight_grad(input, grad_output, g, dw);
  return record("conv2d_weight_grad", std::move(dw), {input, grad_output},
                [p, lowered](const Tensor<T>& u, BackwardContext<T>& c) {
                  // <conv2d_weight_grad(x, g), u> = B(x, u, g).
                  const auto &x = c.input(0), &gy = c.input(1);
                  if (c.wants(0)) c.set(0, conv2d_input_grad(gy, u, x.shape(), p.stride, p.padding, p.dilation));
                  if (c.wants(1)) c.set(1, conv2d(x, u, {}, p, lowered));
                },
                [p, lowered](const TangentContext<T>& c) {
                  // Bilinear in (input, grad_output); the second term reads the kept lowering of x.
                  const auto &x = c.input(0), &gy = c.input(1);
                  const Shape& w_shape = c.output_shape();
                  const Tensor<T> dx = c.has_tangent(0) ? conv2d_weight_grad(c.tangent(0), gy, w_shape, p, Lowering<T>{})
                                                        : Tensor<T>();
                  const Tensor<T> dg = c.has_tangent(1) ? conv2d_weight_grad(x, c.tangent(1), w_shape, p, lowered) : Tensor<T>();
                  return add_terms(dx, dg, w_shape);
                });
}
}  // namespace detail

/// Transposed convolution (PyTorch semantics): x [N, Cin, H, W], weight [Cin, Cout, kh, kw],
/// optional bias [Cout]; the result is [N, Cout, (H-1)*stride - 2*padding + dilation*(kh-1) +
/// output_padding + 1, ...]. It is conv2d_input_grad at that output shape.
template <Floating T>
Tensor<T> conv_transpose2d(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {}, Size2d stride = 1,
                           Size2d padding = 0, Size2d output_padding = 0, Size2d dilation = 1) {
  const char* op = "conv_transpose2d";
  check(x.dim() == 4, op, "input must be 4-D [N, C, H, W], got ", x.shape());
  check(weight.dim() == 4, op, "weight must be 4-D [in, out, kh, kw], got ", weight.shape());
  check(x.size(1) == weight.size(0), op, "input ", x.shape(), " has ", x.size(1), " channels but weight ",
        weight.shape(), " expects ", weight.size(0));
  // A larger output_padding would make the result more than the adjoint of one conv2d.
  check(output_padding.h >= 0 && output_padding.w >= 0 && output_padding.h < stride.h && output_padding.w < stride.w,
        op, "output_padding ", output_padding, " must be non-negative and smaller than stride ", stride);
  const auto extent = [](std::int64_t in, std::int64_t s, std::int64_t p, std::int64_t d, std::int64_t k, std::int64_t extra) {
    return (in - 1) * s - 2 * p + d * (k - 1) + extra + 1;
  };
  const Shape out{x.size(0), weight.size(1), extent(x.size(2), stride.h, padding.h, dilation.h, weight.size(2), output_padding.h),
                  extent(x.size(3), stride.w, padding.w, dilation.w, weight.size(3), output_padding.w)};
  check(out[2] >= 1 && out[3] >= 1, op, "input ", x.shape(), " with weight ", weight.shape(), ", padding ", padding,
        " gives an empty output ", out);
  check(!bias.defined() || bias.shape() == Shape{out[1]}, op, "bias ", bias.defined() ? bias.shape().str() : "",
        " does not match weight ", weight.shape());
  auto y = conv2d_input_grad(x, weight, out, stride, padding, dilation);
  return bias.defined() ? add(y, reshape(bias, Shape{1, out[1], 1, 1})) : y;
}

}  // namespace metagrad
