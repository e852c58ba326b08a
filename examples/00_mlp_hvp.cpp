// SPDX-License-Identifier: MIT
// Demo of the engine core. Trains a small tanh MLP (float) on synthetic data drawn from a seed,
// then checks the Hessian-vector product of its loss, a gradient of a gradient, against central
// finite differences of the gradient, in double, at the trained weights.
//   00_mlp_hvp [--quick] [--out DIR] [--seed N] [--epochs N]
// --out DIR writes DIR/results.json. Exits non-zero when the check fails or training does not
// lower the loss, so ctest runs it (with --quick) as a test.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "common.hpp"
#include "metagrad/autograd/engine.hpp"
#include "metagrad/backend/threads.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/unary.hpp"

using namespace metagrad;
using namespace metagrad::examples;

namespace {

struct Config {
  std::uint64_t seed = 1;
  int epochs = 20;
  std::int64_t train = 4096, test = 1024, features = 16, hidden = 64, classes = 4, batch = 128;
  double lr = 0.05, momentum = 0.9;
  std::int64_t check_batch = 256;  // examples in the loss whose HVP is checked
  double eps = 1e-5;               // finite-difference step along the direction v
  double tolerance = 1e-6;         // on the relative error of the HVP
  int timing_reps = 50;

  void make_quick() {
    epochs = 4;
    train = 1024;
    test = 256;
    check_batch = 64;
    timing_reps = 5;
  }
  Json json() const {
    return {{"seed", seed},   {"epochs", epochs},   {"train", train},         {"test", test},
            {"features", features}, {"hidden", hidden}, {"classes", classes}, {"batch", batch},
            {"lr", lr},       {"momentum", momentum}, {"check_batch", check_batch}, {"eps", eps},
            {"tolerance", tolerance}};
  }
};

/// Points x [n, features] with class labels y [n].
template <Floating T>
struct Data {
  Tensor<T> x;
  IndexTensor y;
};

/// weight [out, in] and bias [out] per layer, the layout linear() takes.
template <Floating T>
using Params = std::vector<Tensor<T>>;

/// Logits of an MLP with tanh between its layers.
template <Floating T>
Tensor<T> mlp(const Params<T>& p, const Tensor<T>& x) {
  Tensor<T> h = x;
  for (std::size_t l = 0; l + 2 < p.size(); l += 2) h = tanh(linear(h, p[l], p[l + 1]));
  return linear(h, p[p.size() - 2], p.back());
}

/// Weights drawn with standard deviation gain / sqrt(fan_in), zero biases.
Params<float> init_mlp(const std::vector<std::int64_t>& widths, float gain, Generator& gen) {
  Params<float> p;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const float stddev = gain / std::sqrt(static_cast<float>(widths[l]));
    p.push_back(randn<float>({widths[l + 1], widths[l]}, gen, 0.0f, stddev));
    p.push_back(zeros<float>({widths[l + 1]}));
  }
  return p;
}

std::vector<std::int64_t> argmax_rows(const Tensor<float>& logits) {
  const std::int64_t n = logits.size(0), c = logits.size(1);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * c;
    out[static_cast<std::size_t>(i)] = std::max_element(row, row + c) - row;
  }
  return out;
}

std::int64_t count_correct(const Tensor<float>& logits, const IndexTensor& y) {
  const auto predicted = argmax_rows(logits);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) correct += predicted[i] == y.data()[i];
  return correct;
}

/// Gaussian inputs labelled by a random "teacher" MLP, so the classes have curved boundaries.
Data<float> make_data(std::int64_t n, const Params<float>& teacher, std::int64_t features, Generator& gen) {
  Data<float> d{randn<float>({n, features}, gen), IndexTensor::empty({n})};
  NoGradGuard no_grad;
  const auto labels = argmax_rows(mlp(teacher, d.x));
  std::copy(labels.begin(), labels.end(), d.y.fresh_data());
  return d;
}

/// The examples at `rows`, copied into a batch.
Data<float> take(const Data<float>& d, std::span<const std::int64_t> rows) {
  const std::int64_t n = static_cast<std::int64_t>(rows.size()), f = d.x.size(1);
  Data<float> b{Tensor<float>::empty({n, f}), IndexTensor::empty({n})};
  for (std::int64_t k = 0; k < n; ++k) {
    std::copy_n(d.x.data() + rows[k] * f, f, b.x.fresh_data() + k * f);
    b.y.fresh_data()[k] = d.y.data()[rows[k]];
  }
  return b;
}

Tensor<double> to_double(const Tensor<float>& t) {
  auto out = Tensor<double>::empty(t.shape());
  std::copy_n(t.data(), t.numel(), out.fresh_data());
  return out;
}

double majority_fraction(const IndexTensor& y, std::int64_t classes) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(classes));
  for (auto label : y.values()) ++counts[static_cast<std::size_t>(label)];
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / static_cast<double>(y.numel());
}

/// Median wall time of fn in milliseconds, after one warm-up call.
template <class Fn>
double median_ms(int reps, Fn&& fn) {
  fn();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[static_cast<std::size_t>(reps / 2)];
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CommonOptions common;
  CLI::App app{"metagrad demo: train a small MLP, then check a Hessian-vector product of its loss"};
  add_common_options(app, common, cfg.seed, cfg.epochs,
                     {.quick = "small data and few epochs (seconds)",
                      .seed = "seed for the data, the weights and the HVP direction"});
  if (const auto exit_code = parse_command_line(app, argc, argv, common, [&] { cfg.make_quick(); })) return *exit_code;

  Generator gen(cfg.seed);
  const auto teacher = init_mlp({cfg.features, 32, cfg.classes}, 2.0f, gen);
  const auto train = make_data(cfg.train, teacher, cfg.features, gen);
  const auto test = make_data(cfg.test, teacher, cfg.features, gen);
  auto params = init_mlp({cfg.features, cfg.hidden, cfg.hidden, cfg.classes}, 1.0f, gen);
  std::int64_t n_weights = 0;
  for (const auto& p : params) n_weights += p.numel();
  const double majority = majority_fraction(test.y, cfg.classes);
  std::printf("data: %lld train / %lld test points, %lld features, %lld classes (seed %llu); majority class %.1f%%\n",
              static_cast<long long>(cfg.train), static_cast<long long>(cfg.test),
              static_cast<long long>(cfg.features), static_cast<long long>(cfg.classes),
              static_cast<unsigned long long>(cfg.seed), 100 * majority);
  std::printf("model: MLP %lld-%lld-%lld-%lld, tanh, %lld weights; SGD lr %g momentum %g, batch %lld; %d threads\n",
              static_cast<long long>(cfg.features), static_cast<long long>(cfg.hidden),
              static_cast<long long>(cfg.hidden), static_cast<long long>(cfg.classes),
              static_cast<long long>(n_weights), cfg.lr, cfg.momentum, static_cast<long long>(cfg.batch),
              num_threads());

  // ---- training: float, engine-level grad() ----
  auto evaluate = [&](const Data<float>& d) {
    NoGradGuard no_grad;
    const auto logits = mlp(params, d.x);
    return std::pair{cross_entropy(logits, d.y).item(),
                     static_cast<double>(count_correct(logits, d.y)) / static_cast<double>(d.x.size(0))};
  };
  const double initial_loss = evaluate(train).first;
  std::printf("loss before training %.4f\n", initial_loss);

  for (auto& p : params) p.requires_grad_();
  std::vector<Tensor<float>> velocity;
  for (const auto& p : params) velocity.push_back(zeros_like(p));
  std::vector<std::int64_t> order(static_cast<std::size_t>(cfg.train));
  std::iota(order.begin(), order.end(), 0);

  Json epochs = Json::array();
  double train_loss = initial_loss, test_acc = 0;
  const Progress progress(cfg.epochs);
  for (int epoch = 1; epoch <= cfg.epochs; ++epoch) {
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[gen.below(i + 1)]);
    double loss_sum = 0;
    std::int64_t correct = 0;
    for (std::int64_t start = 0; start < cfg.train; start += cfg.batch) {
      const std::int64_t n = std::min(cfg.batch, cfg.train - start);
      const auto batch = take(train, std::span(order).subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(n)));
      const auto logits = mlp(params, batch.x);
      const auto loss = cross_entropy(logits, batch.y);
      const auto grads = grad(loss, params);
      loss_sum += loss.item() * static_cast<double>(n);
      correct += count_correct(logits, batch.y);

      NoGradGuard no_grad;
      for (std::size_t i = 0; i < params.size(); ++i) {
        velocity[i] = add(mul(velocity[i], static_cast<float>(cfg.momentum)), grads[i]);
        params[i] = sub(params[i], mul(velocity[i], static_cast<float>(cfg.lr)));
        params[i].requires_grad_();
      }
    }
    train_loss = loss_sum / static_cast<double>(cfg.train);
    const double train_acc = static_cast<double>(correct) / static_cast<double>(cfg.train);
    const auto [test_loss, acc] = evaluate(test);
    test_acc = acc;
    const double elapsed =
        progress.print_epoch(epoch, formatted("loss %.4f  train acc %5.1f%%  test loss %.4f  test acc %5.1f%%",
                                              train_loss, 100 * train_acc, test_loss, 100 * test_acc));
    epochs.push_back({{"epoch", epoch},        {"train_loss", train_loss}, {"train_accuracy", train_acc},
                      {"test_loss", test_loss}, {"test_accuracy", test_acc}, {"seconds", elapsed}});
  }
  const double train_seconds = progress.elapsed();
  const bool learned = train_loss < initial_loss;

  // ---- the check: H v from the hvp transform against (g(w + eps v) - g(w - eps v)) / (2 eps), double ----
  std::vector<std::int64_t> first(static_cast<std::size_t>(cfg.check_batch));
  std::iota(first.begin(), first.end(), 0);
  const auto check_data = take(train, first);
  const auto x64 = to_double(check_data.x);
  auto loss64 = [&](const Params<double>& p) { return cross_entropy(mlp(p, x64), check_data.y); };
  Params<double> w, v;
  double v_norm2 = 0;
  for (const auto& p : params) {
    w.push_back(to_double(p.detach()));
    v.push_back(randn<double>(p.shape(), gen));
    v_norm2 += sum(square(v.back())).item();
  }
  for (auto& vi : v) vi = div(vi, std::sqrt(v_norm2));  // a unit direction, so eps is the step length
  const auto hv = hvp(loss64, w, v);
  auto grad_at = [&](double step) {
    Params<double> shifted;
    for (std::size_t i = 0; i < w.size(); ++i) shifted.push_back(add(w[i], mul(v[i], step)));
    return grad(loss64, shifted);
  };
  const auto g_plus = grad_at(cfg.eps), g_minus = grad_at(-cfg.eps);
  double diff2 = 0, fd2 = 0, max_abs = 0;
  for (std::size_t i = 0; i < w.size(); ++i)
    for (std::int64_t k = 0; k < w[i].numel(); ++k) {
      const double fd = (g_plus[i].data()[k] - g_minus[i].data()[k]) / (2 * cfg.eps);
      const double d = hv[i].data()[k] - fd;
      diff2 += d * d;
      fd2 += fd * fd;
      max_abs = std::max(max_abs, std::abs(d));
    }
  const double rel_error = std::sqrt(diff2 / fd2);
  const bool hvp_ok = rel_error < cfg.tolerance;
  std::printf("HVP check (double, %lld examples, %lld weights): |Hv - fd| / |fd| = %.2e, max |Hv - fd| = %.2e "
              "(central differences, eps %g): %s\n",
              static_cast<long long>(cfg.check_batch), static_cast<long long>(n_weights), rel_error, max_abs, cfg.eps,
              hvp_ok ? "ok" : "FAILED");

  // ---- cost of an HVP next to a gradient, at the training batch size in float ----
  const auto timing_batch = take(train, std::span(order).first(static_cast<std::size_t>(cfg.batch)));
  auto loss32 = [&](const Params<float>& p) { return cross_entropy(mlp(p, timing_batch.x), timing_batch.y); };
  Params<float> w32, v32;
  for (std::size_t i = 0; i < params.size(); ++i) {
    w32.push_back(params[i].detach());
    v32.push_back(randn<float>(params[i].shape(), gen));
  }
  const double grad_ms = median_ms(cfg.timing_reps, [&] { (void)grad(loss32, w32); });
  const double hvp_ms = median_ms(cfg.timing_reps, [&] { (void)hvp(loss32, w32, v32); });
  std::printf("time per batch of %lld (float, median of %d): gradient %.3f ms, HVP %.3f ms (%.1fx)\n",
              static_cast<long long>(cfg.batch), cfg.timing_reps, grad_ms, hvp_ms, hvp_ms / grad_ms);

  std::printf("result: training %s (loss %.4f -> %.4f, test acc %.1f%%), HVP check %s\n",
              learned ? "lowered the loss" : "did NOT lower the loss", initial_loss, train_loss, 100 * test_acc,
              hvp_ok ? "passed" : "FAILED");
  if (!common.out_dir.empty()) {
    const Json results = {{"example", "00_mlp_hvp"},
                          {"quick", common.quick},
                          {"config", cfg.json()},
                          {"threads", num_threads()},
                          {"epochs", epochs},
                          {"final",
                           {{"initial_train_loss", initial_loss},
                            {"train_loss", train_loss},
                            {"test_accuracy", test_acc},
                            {"majority_class_accuracy", majority},
                            {"train_seconds", train_seconds}}},
                          {"hvp_check",
                           {{"dtype", "double"},
                            {"examples", cfg.check_batch},
                            {"weights", n_weights},
                            {"eps", cfg.eps},
                            {"relative_error", rel_error},
                            {"max_abs_error", max_abs},
                            {"tolerance", cfg.tolerance},
                            {"passed", hvp_ok}}},
                          {"timing_ms", {{"batch", cfg.batch}, {"gradient", grad_ms}, {"hvp", hvp_ms}}}};
    write_json_atomic(std::filesystem::path(common.out_dir) / "results.json", results);
  }
  return learned && hvp_ok ? 0 : 1;
}
