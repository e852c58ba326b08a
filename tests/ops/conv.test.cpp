// SPDX-License-Identifier: MIT
#include "metagrad/backend/threads.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/reduction.hpp"
#include "op_table.hpp"
#include "test_util.hpp"

using namespace metagrad;
using metagrad::testing::allclose;
using metagrad::testing::OpRow;
using V = std::vector<Tensor<double>>;

namespace {
struct Case {
  const char* name;
  Shape x, w;
  Size2d stride = 1, padding = 0, dilation = 1;
};

/// conv2d by its definition, one output at a time, in double.
template <class T>
Tensor<double> naive_conv2d(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias, const Case& c) {
  const std::int64_t n = x.size(0), ci = x.size(1), h = x.size(2), wd = x.size(3);
  const std::int64_t o = w.size(0), kh = w.size(2), kw = w.size(3);
  const std::int64_t oh = (h + 2 * c.padding.h - c.dilation.h * (kh - 1) - 1) / c.stride.h + 1;
  const std::int64_t ow = (wd + 2 * c.padding.w - c.dilation.w * (kw - 1) - 1) / c.stride.w + 1;
  auto y = zeros<double>(Shape{n, o, oh, ow});
  double* py = y.fresh_data();
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t oc = 0; oc < o; ++oc)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          double s = bias.defined() ? static_cast<double>(bias.data()[oc]) : 0.0;
          for (std::int64_t c2 = 0; c2 < ci; ++c2)
            for (std::int64_t p = 0; p < kh; ++p)
              for (std::int64_t q = 0; q < kw; ++q) {
                const std::int64_t ih = i * c.stride.h - c.padding.h + p * c.dilation.h;
                const std::int64_t iw = j * c.stride.w - c.padding.w + q * c.dilation.w;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                s += static_cast<double>(x.at({b, c2, ih, iw})) * static_cast<double>(w.at({oc, c2, p, q}));
              }
          py[((b * o + oc) * oh + i) * ow + j] = s;
        }
  return y;
}

double inner(const Tensor<double>& a, const Tensor<double>& b) { return sum(a * b).item(); }

const Case kCases[] = {
    {"plain", {2, 3, 7, 6}, {4, 3, 3, 3}},
    {"stride 2, padding 1", {2, 3, 7, 6}, {4, 3, 3, 3}, 2, 1},
    {"dilation 2", {2, 3, 7, 6}, {4, 3, 3, 3}, 1, 0, 2},
    {"mixed per axis", {5, 2, 9, 8}, {3, 2, 3, 2}, {2, 1}, {0, 2}, {1, 2}},
    {"padding wider than dilated taps", {3, 1, 4, 5}, {2, 1, 2, 3}, {3, 2}, {2, 1}, {2, 1}},
    {"1x1 kernel", {7, 4, 5, 3}, {6, 4, 1, 1}},
    {"many positions", {3, 2, 30, 29}, {5, 2, 5, 4}, 1, 2},
};

/// Runs fn with metagrad's thread count set to each of 1, 2 and 3 (3 splits a batch unevenly).
template <class Fn>
void for_thread_counts(Fn&& fn) {
  const int saved = num_threads();
  for (int t : {1, 2, 3}) {
    CAPTURE(t);
    set_num_threads(t);
    fn();
  }
  set_num_threads(saved);
}
}  // namespace

TEST_SUITE("ops.conv") {
  TEST_CASE("ops.conv: op table, conv2d at order 3 on tiny shapes") {
    auto conv = [](Size2d s, Size2d p, Size2d d) {
      return [=](const V& a) { return conv2d(a[0], a[1], a[2], s, p, d); };
    };
    const std::vector<OpRow> rows = {
        {"conv2d", {{2, 3, 7, 6}, {4, 3, 3, 3}, {4}}, conv(1, 0, 1)},
        {"conv2d stride 2 padding 1", {{2, 3, 7, 6}, {4, 3, 3, 3}, {4}}, conv(2, 1, 1)},
        {"conv2d dilation 2", {{2, 3, 7, 6}, {4, 3, 3, 3}, {4}}, conv(1, 0, 2)},
        // Third order on tiny odd shapes (the cost grows with the square of the element count):
        // batch 2 and 2 input channels still sum in every weight and input gradient.
        {"conv2d order 3", {{2, 2, 4, 3}, {3, 2, 2, 2}, {3}}, conv(1, 0, 1), 3},
        {"conv2d stride 2 padding 1 dilation 2, order 3", {{2, 2, 5, 4}, {3, 2, 2, 2}, {3}}, conv(2, 1, 2), 3},
        {"conv2d mixed per-axis params, no bias", {{2, 2, 6, 5}, {3, 2, 3, 2}},
         [](const V& a) { return conv2d(a[0], a[1], {}, {2, 1}, {0, 2}, {1, 2}); }},
        {"conv2d_input_grad", {{2, 4, 4, 3}, {4, 3, 3, 3}},
         [](const V& a) { return conv2d_input_grad(a[0], a[1], Shape{2, 3, 7, 6}, 2, 1); }},
        {"conv2d_weight_grad", {{2, 3, 7, 6}, {2, 4, 4, 3}},
         [](const V& a) { return conv2d_weight_grad(a[0], a[1], Shape{4, 3, 3, 3}, 2, 1); }},
        {"conv_transpose2d stride 2 padding 1 output_padding 1", {{2, 3, 3, 4}, {3, 2, 3, 3}, {2}},
         [](const V& a) { return conv_transpose2d(a[0], a[1], a[2], 2, 1, 1); }},
        {"conv_transpose2d dilation 2, no bias", {{1, 2, 4, 3}, {2, 3, 2, 3}},
         [](const V& a) { return conv_transpose2d(a[0], a[1], {}, 1, 0, 0, 2); }},
    };
    metagrad::testing::check_op_table(rows);
  }

  TEST_CASE("ops.conv2d: matches a direct loop on random data, for every thread split") {
    Generator gen(21);
    for (const auto& c : kCases) {
      CAPTURE(c.name);
      auto x = randn<float>(c.x, gen), w = randn<float>(c.w, gen), b = randn<float>(Shape{c.w[0]}, gen);
      const auto expected = naive_conv2d(x, w, b, c);
      for_thread_counts([&] {
        const auto y = conv2d(x, w, b, c.stride, c.padding, c.dilation);
        REQUIRE(y.shape() == expected.shape());
        CHECK(allclose(cpu::map_unary<double>(y, [](const auto& v) { return v; }), expected, 1e-4, 1e-4));
      });
    }
  }

  TEST_CASE("ops.conv2d: input and weight gradients are the adjoints of conv2d") {
    // <conv2d(x, w), g> = <x, conv2d_input_grad(g, w)> = <w, conv2d_weight_grad(x, g)>.
    Generator gen(22);
    for (const auto& c : kCases) {
      CAPTURE(c.name);
      auto x = randn<double>(c.x, gen), w = randn<double>(c.w, gen);
      const auto y = conv2d(x, w, {}, c.stride, c.padding, c.dilation);
      auto g = randn<double>(y.shape(), gen);
      const double form = inner(y, g);
      for_thread_counts([&] {
        const auto dx = conv2d_input_grad(g, w, x.shape(), c.stride, c.padding, c.dilation);
        const auto dw = conv2d_weight_grad(x, g, w.shape(), c.stride, c.padding, c.dilation);
        CHECK(inner(x, dx) == doctest::Approx(form).epsilon(1e-12));
        CHECK(inner(w, dw) == doctest::Approx(form).epsilon(1e-12));
      });
    }
  }

  TEST_CASE("ops.conv_transpose2d: the adjoint identity and PyTorch's output size") {
    Generator gen(23);
    // conv_transpose2d(y, w) with w [Cin=O, Cout=C] is the adjoint of conv2d(., w) on x's shape.
    auto x = randn<double>(Shape{2, 3, 8, 7}, gen), w = randn<double>(Shape{4, 3, 3, 2}, gen);
    const auto y = conv2d(x, w, {}, 2, 1, 1);
    auto v = randn<double>(y.shape(), gen);
    // y is [2, 4, 4, 4]; output_padding (1, 1) restores x's 8 x 7 (stride 2 maps two sizes to one).
    const auto t = conv_transpose2d(v, w, {}, 2, 1, 1);
    REQUIRE(t.shape() == x.shape());
    CHECK(inner(y, v) == doctest::Approx(inner(x, t)).epsilon(1e-12));

    // Output size (H-1)*s - 2p + d*(k-1) + output_padding + 1.
    auto a = randn<double>(Shape{1, 2, 5, 4}, gen), k = randn<double>(Shape{2, 3, 3, 3}, gen);
    CHECK(conv_transpose2d(a, k, {}, {3, 2}, {1, 0}, {2, 1}, {1, 2}).shape() == Shape{1, 3, 15, 12});

    // A single input pixel stamps the kernel (plus bias) into the output.
    auto one = zeros<double>(Shape{1, 1, 2, 2});
    one.fresh_data()[3] = 2.0;  // the pixel at (1, 1)
    auto ker = tensor<double>({1, 2, 3, 4});
    const auto stamp = conv_transpose2d(one, reshape(ker, Shape{1, 1, 2, 2}), tensor<double>({0.5}), 2);
    CHECK(allclose(stamp, reshape(tensor<double>({0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2.5, 4.5, 0.5,
                                                   0.5, 6.5, 8.5}),
                                  Shape{1, 1, 4, 4})));
  }

  TEST_CASE("ops.conv2d: small hand-computed values with padding and bias") {
    // 3x3 input 1..9, 2x2 kernel of ones, padding 1: each output sums the input under its window.
    auto x = reshape(arange<double>(1, 10), Shape{1, 1, 3, 3});
    auto w = ones<double>(Shape{1, 1, 2, 2});
    const auto y = conv2d(x, w, tensor<double>({10}), 2, 1);
    CHECK(allclose(y, reshape(tensor<double>({11, 15, 21, 38}), Shape{1, 1, 2, 2})));
  }

  TEST_CASE("ops.conv2d: the lowering a graph keeps gives the values of lowering chunk by chunk") {
    // With a graph recorded, conv2d and conv2d_weight_grad lower x once for the whole batch and
    // hand that to their rules; without one, the kernels lower chunk by chunk. Same numbers.
    Generator gen(25);
    for (const auto& c : kCases) {
      CAPTURE(c.name);
      auto x = randn<double>(c.x, gen).requires_grad_(), w = randn<double>(c.w, gen).requires_grad_();
      const Tensor<double> none;
      for_thread_counts([&] {
        const auto y = conv2d(x, w, none, c.stride, c.padding, c.dilation);  // keeps the lowering of x
        auto r = randn<double>(y.shape(), gen).requires_grad_();
        Tensor<double> y_plain, dw_plain;
        {
          NoGradGuard plain;
          y_plain = conv2d(x, w, none, c.stride, c.padding, c.dilation);
          dw_plain = conv2d_weight_grad(x, r, w.shape(), c.stride, c.padding, c.dilation);
        }
        CHECK(allclose(y, y_plain, 1e-12, 1e-12));
        // The weight gradient reads the kept lowering; its own derivative in r (conv2d(x, v))
        // reads it once more.
        const auto dw = grad(sum(mul(y, r)), w, {.create_graph = true});
        CHECK(allclose(dw, dw_plain, 1e-12, 1e-12));
        const auto v = randn<double>(w.shape(), gen);
        const auto dr = grad(sum(mul(dw, v)), r);
        Tensor<double> dr_plain;
        {
          NoGradGuard plain;
          dr_plain = conv2d(x, v, none, c.stride, c.padding, c.dilation);
        }
        CHECK(allclose(dr, dr_plain, 1e-12, 1e-12));
      });
    }
  }

  TEST_CASE("ops.conv2d: every derivative is again one of the three conv ops") {
    Generator gen(24);
    auto x = randn<double>(Shape{1, 2, 5, 5}, gen).requires_grad_();
    auto w = randn<double>(Shape{3, 2, 3, 3}, gen).requires_grad_();
    // c requires grad so that the gradients below are recorded functions of something.
    auto c = randn<double>(Shape{1, 3, 3, 3}, gen).requires_grad_();
    auto g1 = grad(sum(mul(conv2d(x, w), c)), std::vector{x, w}, {.create_graph = true});
    REQUIRE(g1[0].grad_fn());
    REQUIRE(g1[1].grad_fn());
    CHECK(std::string(g1[0].grad_fn()->name()) == "conv2d_input_grad");
    CHECK(std::string(g1[1].grad_fn()->name()) == "conv2d_weight_grad");
    // Second order: d/dw <conv2d_input_grad(c, w), u> and d/dx <conv2d_weight_grad(x, c), v>.
    auto u = randn<double>(x.shape(), gen), v = randn<double>(w.shape(), gen);
    auto gw = grad(sum(mul(g1[0], u)), w, {.create_graph = true});
    auto gx = grad(sum(mul(g1[1], v)), x, {.create_graph = true});
    REQUIRE(gw.grad_fn());
    REQUIRE(gx.grad_fn());
    CHECK(std::string(gw.grad_fn()->name()) == "conv2d_weight_grad");
    CHECK(std::string(gx.grad_fn()->name()) == "conv2d_input_grad");
  }

  TEST_CASE("ops.conv: bad input names the op and the shapes") {
    auto x = zeros<float>(Shape{2, 3, 7, 6});
    METAGRAD_CHECK_ERROR(conv2d(x, zeros<float>(Shape{4, 2, 3, 3})), "conv2d", "[2, 3, 7, 6]", "[4, 2, 3, 3]",
                         "channels");
    METAGRAD_CHECK_ERROR(conv2d(x, zeros<float>(Shape{4, 3, 9, 3})), "conv2d", "[2, 3, 7, 6]", "[4, 3, 9, 3]",
                         "larger than the padded input");
    METAGRAD_CHECK_ERROR(conv2d(x, zeros<float>(Shape{4, 3, 3, 3}), {}, 1, 0, 4), "conv2d", "dilation 4",
                         "larger than the padded input");
    METAGRAD_CHECK_ERROR(conv2d(zeros<float>(Shape{3, 7, 6}), zeros<float>(Shape{4, 3, 3, 3})), "conv2d", "[3, 7, 6]");
    METAGRAD_CHECK_ERROR(conv2d(x, zeros<float>(Shape{4, 3, 3, 3}), zeros<float>(Shape{3})), "conv2d", "bias", "[3]",
                         "[4, 3, 3, 3]");
    METAGRAD_CHECK_ERROR(conv2d(x, zeros<float>(Shape{4, 3, 3, 3}), {}, 0), "conv2d", "stride (0, 0)");
    METAGRAD_CHECK_ERROR(conv2d_input_grad(zeros<float>(Shape{2, 4, 4, 4}), zeros<float>(Shape{4, 3, 3, 3}), x.shape()),
                         "conv2d_input_grad", "[2, 4, 4, 4]", "[2, 4, 5, 4]");
    METAGRAD_CHECK_ERROR(conv_transpose2d(x, zeros<float>(Shape{4, 2, 3, 3})), "conv_transpose2d", "[2, 3, 7, 6]",
                         "[4, 2, 3, 3]", "channels");
    METAGRAD_CHECK_ERROR(conv_transpose2d(x, zeros<float>(Shape{3, 2, 3, 3}), {}, 2, 0, 2), "conv_transpose2d",
                         "output_padding (2, 2)", "stride (2, 2)");
  }
}
