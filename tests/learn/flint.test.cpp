// SPDX-License-Identifier: MIT
// learn/flint: each loss against a hand computation, gradchecks to second order, the schedule as the
// Trainer drives it, the metrics on hand-made logits and relevances, post-hoc mode, a short run that
// raises fidelity, and bad input.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/functional/gradcheck.hpp"
#include "metagrad/learn/flint.hpp"
#include "metagrad/learn/flint_networks.hpp"
#include "metagrad/learn/trainer.hpp"
#include "metagrad/nn/activation.hpp"
#include "metagrad/nn/conv.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/flatten.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/pool.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/ops/view.hpp"
#include "metagrad/optim/adam.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;

namespace flint_test {

using V = std::vector<Tensor<double>>;
template <Floating T>
using ToyFlint = Flint<T, SplitPredictor<T>>;

/// f: in -> hidden -> tanh (the layer Φ reads) -> classes; Φ: hidden -> J -> tanh; d: J -> in;
/// h: J -> classes. Smooth everywhere, so finite differences hold.
template <Floating T>
std::shared_ptr<ToyFlint<T>> toy_flint(std::int64_t in, std::int64_t hidden, std::int64_t attributes,
                                       std::int64_t classes, Generator& gen, std::int64_t phi_out = -1) {
  auto body = std::make_shared<nn::Sequential<T>>();
  body->template emplace_back<nn::Linear<T>>(in, hidden, gen);
  body->template emplace_back<nn::Tanh<T>>();
  auto head = std::make_shared<nn::Sequential<T>>();
  head->template emplace_back<nn::Linear<T>>(hidden, classes, gen);
  auto f = std::make_shared<SplitPredictor<T>>(body, head);
  auto phi = std::make_shared<nn::Sequential<T>>();
  phi->template emplace_back<nn::Linear<T>>(hidden, phi_out > 0 ? phi_out : attributes, gen);
  phi->template emplace_back<nn::Tanh<T>>();
  auto d = std::make_shared<nn::Linear<T>>(attributes, in, gen);
  auto h = std::make_shared<nn::Linear<T>>(attributes, classes, gen);
  return std::make_shared<ToyFlint<T>>(f, phi, d, h);
}

/// Three Gaussian blobs in 2-d, n / 3 points each.
data::Dataset<double> blobs(std::int64_t n, Generator& gen) {
  auto x = randn<double>(Shape{n, 2}, gen, 0.0, 0.5);
  auto y = Tensor<std::int64_t>::empty(Shape{n});
  const double centre[3][2] = {{2, 0}, {-1, 1.7}, {-1, -1.7}};
  double* px = x.mutable_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = i % 3;
    px[i * 2] += centre[c][0];
    px[i * 2 + 1] += centre[c][1];
    y.fresh_data()[i] = c;
  }
  return {x, y, {}};
}

Batch<double> batch_of(const data::Dataset<double>& d) { return {d.inputs, d.labels, {}, {}}; }

/// softmax and entropy of one row, by hand.
std::vector<double> softmax_row(const std::vector<double>& v) {
  double top = v[0], z = 0;
  for (double a : v) top = std::max(top, a);
  std::vector<double> p;
  for (double a : v) z += std::exp(a - top);
  for (double a : v) p.push_back(std::exp(a - top) / z);
  return p;
}
double entropy_row(const std::vector<double>& v) {
  const auto p = softmax_row(v);
  double e = 0;
  for (double q : p) e -= q * std::log(q);
  return e;
}

/// parameters -> FlintLoss(model, batch), for gradcheck.
template <class Loss>
auto loss_of_params(std::shared_ptr<ToyFlint<double>> model, Loss& loss, const Batch<double>& batch) {
  return [model, &loss, batch](const V& p) {
    ParameterOverride<double> scope(*model, std::span<const Tensor<double>>(p));
    return loss(*model, batch);
  };
}

/// A predictor that gives two hidden layers, and a Φ that reads both (the multi-layer contract).
class TwoHidden final : public nn::Module<double> {
 public:
  explicit TwoHidden(Generator& gen) : a_(2, 3, gen), b_(3, 3, gen), out_(3, 3, gen) {
    register_module("a", a_);
    register_module("b", b_);
    register_module("out", out_);
  }
  PredictorOutput<double> forward_with_hidden(const Tensor<double>& x) {
    auto h1 = tanh(a_.forward(x));
    auto h2 = tanh(b_.forward(h1));
    auto logits = out_.forward(h2);
    return {logits, {h1, h2}};
  }

 private:
  nn::Linear<double> a_, b_, out_;
};

class ConcatPhi final : public nn::Module<double> {
 public:
  explicit ConcatPhi(Generator& gen) : fc_(6, 4, gen) { register_module("fc", fc_); }
  Tensor<double> forward(const std::vector<Tensor<double>>& hidden) { return tanh(fc_.forward(concat(hidden, 1))); }

 private:
  nn::Linear<double> fc_;
};

}  // namespace flint_test

TEST_SUITE("learn.flint") {
  TEST_CASE("learn.flint: each loss matches a hand computation") {
    // Output fidelity: −mean_n Σ_c softmax(f)_nc log softmax(g)_nc.
    const std::vector<std::vector<double>> g = {{0.5, -1, 2}, {1, 0, 0.3}}, f = {{2, 0, -1}, {0.1, 0.2, 0.3}};
    double of = 0;
    for (int n = 0; n < 2; ++n) {
      const auto p = flint_test::softmax_row(f[n]), q = flint_test::softmax_row(g[n]);
      for (int c = 0; c < 3; ++c) of -= p[c] * std::log(q[c]) / 2;
    }
    const auto gt = tensor<double>({{0.5, -1, 2}, {1, 0, 0.3}}), ft = tensor<double>({{2, 0, -1}, {0.1, 0.2, 0.3}});
    CHECK(flint_output_fidelity_loss(gt, ft).item() == doctest::Approx(of).epsilon(1e-12));

    // Input fidelity: mean squared error.
    const auto rec = tensor<double>({{1, 2}, {3, 4}}), x = tensor<double>({{0, 2}, {5, 4}});
    CHECK(flint_input_fidelity_loss(rec, x).item() == doctest::Approx(1.25).epsilon(1e-14));

    // Entropy: mean_x E(|Φ(x)|) − E(mean_batch |Φ(x)|); sparsity: mean |Φ|.
    const auto attr = tensor<double>({{1, -2, 0.5}, {0, 3, -1}});
    const double per_point = (flint_test::entropy_row({1, 2, 0.5}) + flint_test::entropy_row({0, 3, 1})) / 2;
    const double of_batch = flint_test::entropy_row({0.5, 2.5, 0.75});
    CHECK(flint_entropy_loss(attr).item() == doctest::Approx(per_point - of_batch).epsilon(1e-12));
    CHECK(flint_sparsity_loss(attr).item() == doctest::Approx(7.5 / 6).epsilon(1e-14));
    CHECK(flint_conciseness_diversity_loss(attr, 0.3).item() ==
          doctest::Approx(per_point - of_batch + 0.3 * 7.5 / 6).epsilon(1e-12));
  }

  TEST_CASE("learn.flint: FlintLoss is the weighted sum of its terms on the model's outputs") {
    Generator gen(1);
    auto model = flint_test::toy_flint<double>(3, 5, 4, 3, gen);
    const Batch<double> b{randn<double>(Shape{6, 3}, gen), from_vector<std::int64_t>({0, 1, 2, 2, 1, 0}, Shape{6}), {},
                          {}};
    FlintLoss<double> loss;
    loss.on_epoch(4, 12);  // paper epoch 5: every term on
    const auto w = loss.weights();
    const auto out = model->forward_all(b.x);
    const double expected = cross_entropy(out.f_logits, b.y).item() +
                            w.rec * mse_loss(out.reconstruction, b.x).item() +
                            w.expl * flint_output_fidelity_loss(out.g_logits, out.f_logits).item() +
                            w.ent * flint_entropy_loss(out.attributes).item() +
                            w.spa * flint_sparsity_loss(out.attributes).item();
    const auto t = loss.terms(*model, b);
    CHECK(t.total.item() == doctest::Approx(expected).epsilon(1e-12));
    CHECK(loss(*model, b).item() == doctest::Approx(expected).epsilon(1e-12));
    CHECK(t.ce.item() == doctest::Approx(cross_entropy(out.f_logits, b.y).item()).epsilon(1e-12));
  }

  TEST_CASE("learn.flint: the losses pass gradcheck to second order where they are differentiable") {
    Generator gen(2);
    // Attributes away from 0, where |·| is smooth.
    auto away_from_zero = [&](Shape s) {
      auto t = randn<double>(s, gen);
      for (double& v : std::span<double>(t.mutable_data(), static_cast<std::size_t>(t.numel())))
        v += v >= 0 ? 0.2 : -0.2;
      return t;
    };
    const auto attr = away_from_zero(Shape{4, 5});
    for (const auto& [name, fn] :
         std::vector<std::pair<const char*, std::function<Tensor<double>(const flint_test::V&)>>>{
             {"entropy", [](const flint_test::V& a) { return flint_entropy_loss(a[0]); }},
             {"sparsity", [](const flint_test::V& a) { return flint_sparsity_loss(a[0]); }},
             {"L_cd", [](const flint_test::V& a) { return flint_conciseness_diversity_loss(a[0], 0.5); }}}) {
      INFO(name);
      const auto result = gradcheck(fn, {attr}, {.order = 2});
      CHECK_MESSAGE(result.ok, result.report);
    }
    // L_of is differentiable in the interpreter's logits; f's logits are a constant target.
    const auto f_logits = randn<double>(Shape{4, 3}, gen);
    const auto of = gradcheck([&](const flint_test::V& a) { return flint_output_fidelity_loss(a[0], f_logits); },
                              {randn<double>(Shape{4, 3}, gen)}, {.order = 2});
    CHECK_MESSAGE(of.ok, of.report);
    const auto lif = gradcheck([](const flint_test::V& a) { return flint_input_fidelity_loss(a[0], a[1]); },
                               {randn<double>(Shape{4, 3}, gen), randn<double>(Shape{4, 3}, gen)}, {.order = 2});
    CHECK_MESSAGE(lif.ok, lif.report);

    // And the whole loss. In the interpreter's parameters every term is differentiable; in f's, L_of
    // is not the gradient of anything (its target, f's softmax, is detached on purpose), so f's are
    // checked with every other term on.
    auto model = flint_test::toy_flint<double>(3, 4, 3, 3, gen);
    Batch<double> b{randn<double>(Shape{4, 3}, gen), from_vector<std::int64_t>({0, 2, 1, 2}, Shape{4}), {}, {}};
    FlintLoss<double> loss;
    loss.on_epoch(5, 12);
    const auto f_params = model->f().parameters();
    const auto interpreter = gradcheck(
        [&](const flint_test::V& p) {
          flint_test::V all = f_params;
          all.insert(all.end(), p.begin(), p.end());
          ParameterOverride<double> scope(*model, std::span<const Tensor<double>>(all));
          return loss(*model, b);
        },
        model->interpreter_parameters(), {.order = 2});
    CHECK_MESSAGE(interpreter.ok, interpreter.report);
    FlintLoss<double> no_of({.schedule = {.expl = 0, .spa_after = 0, .ent_after = 0}});
    const auto all = gradcheck(flint_test::loss_of_params(model, no_of, b), model->parameters(), {.order = 2});
    CHECK_MESSAGE(all.ok, all.report);
  }

  TEST_CASE("learn.flint: output fidelity sends no gradient to f's logits") {
    Generator gen(3);
    auto g = randn<double>(Shape{3, 4}, gen).requires_grad_();
    auto f = randn<double>(Shape{3, 4}, gen).requires_grad_();
    backward(flint_output_fidelity_loss(g, f));
    CHECK(g.grad().defined());
    CHECK_FALSE(f.grad().defined());
  }

  TEST_CASE("learn.flint: the schedule switches at the paper's epochs as the Trainer drives it") {
    // flint.py, epochs from 1: rec 0.8; expl 0.5·[ep>2]; spa 0.1·[ep>2]; ent 0.2·[ep>4].
    const FlintSchedule s;
    CHECK(s.at(2).expl == 0);
    CHECK(s.at(3).expl == 0.5);
    CHECK(s.at(3).spa == 0.1);
    CHECK(s.at(4).ent == 0);
    CHECK(s.at(5).ent == 0.2);
    CHECK(s.at(1).rec == 0.8);
    CHECK(s.at(1).ce == 1);

    FlintLoss<double> before;  // no on_epoch yet: epoch 1
    CHECK(before.weights().expl == 0);
    CHECK(before.weights().rec == 0.8);

    Generator gen(4);
    auto model = flint_test::toy_flint<double>(2, 6, 3, 3, gen);
    const auto train = flint_test::blobs(12, gen), valid = flint_test::blobs(6, gen);
    FlintLoss<double> loss;
    std::vector<FlintWeights> seen;
    Trainer<double> trainer({.epochs = 6, .batch_size = 12, .select_on = "valid_fidelity", .progress = false},
                            {.evaluate = [&](int) { return evaluate_flint(*model, valid).metrics("valid_"); },
                             .on_epoch_end = [&](const EpochRecord&) { seen.push_back(loss.weights()); },
                             .print = {}});
    Adam<double> opt(model->parameters(), {.lr = 1e-3});
    const auto history = trainer.fit(*model, opt, loss, train, valid);
    REQUIRE(seen.size() == 6);
    // Trainer epoch e (from 0) is the paper's e + 1.
    const double expl[6] = {0, 0, 0.5, 0.5, 0.5, 0.5}, spa[6] = {0, 0, 0.1, 0.1, 0.1, 0.1},
                 ent[6] = {0, 0, 0, 0, 0.2, 0.2};
    for (int e = 0; e < 6; ++e) {
      INFO("trainer epoch ", e);
      CHECK(seen[e].ce == 1);
      CHECK(seen[e].rec == 0.8);
      CHECK(seen[e].expl == expl[e]);
      CHECK(seen[e].spa == spa[e]);
      CHECK(seen[e].ent == ent[e]);
    }
    CHECK(history.best_valid.contains("valid_cns_tau_1.5"));

    FlintLoss<double> post_hoc({.post_hoc = true});
    post_hoc.on_epoch(4, 12);
    CHECK(post_hoc.weights().ce == 0);
    CHECK(post_hoc.weights().ent == 0.2);
  }

  TEST_CASE("learn.flint: accuracy and fidelity on hand-made logits") {
    // argmax f = [0, 1, 2, 1], argmax g = [0, 2, 2, 1], labels [0, 1, 1, 1].
    const auto f = tensor<double>({{3, 1, 0}, {0, 2, 1}, {0, 0, 5}, {1, 4, 2}});
    const auto g = tensor<double>({{1, 0, 0}, {0, 1, 3}, {-1, -2, 0}, {0, 1, 0.5}});
    const auto y = from_vector<std::int64_t>({0, 1, 1, 1}, Shape{4});
    CHECK(flint_accuracy(f, y) == doctest::Approx(0.75));
    CHECK(flint_accuracy(g, y) == doctest::Approx(0.5));
    CHECK(flint_fidelity(g, f) == doctest::Approx(0.75));
    CHECK(flint_fidelity(f, f) == 1.0);
  }

  TEST_CASE("learn.flint: relevance and conciseness on hand-made values") {
    // r = |Φ ⊙ W_h[ŷ]|.
    const auto attr = tensor<double>({{1, -2}, {0.5, 3}});
    const auto w = tensor<double>({{1, 2}, {-1, 0.5}, {0, 0}});
    const auto pred = from_vector<std::int64_t>({1, 0}, Shape{2});
    const auto r = flint_relevance(attr, w, pred);
    CHECK(testing::allclose(r, tensor<double>({{1, 1}, {0.5, 6}}), 1e-14));

    // CNS(τ) = mean #{j : r_j > max r / τ}; a row of zeros counts 0.
    const auto rel = tensor<double>({{1, 0.6, 0.3, 0}, {0.5, 0.5, 0.5, 0.5}, {0, 0, 0, 0}});
    CHECK(flint_conciseness(rel, 1.5) == doctest::Approx(5.0 / 3));
    CHECK(flint_conciseness(rel, 2) == doctest::Approx(6.0 / 3));
    CHECK(flint_conciseness(rel, 4) == doctest::Approx(7.0 / 3));
    CHECK(flint_conciseness(rel, 5) == doctest::Approx(7.0 / 3));
    CHECK(flint_conciseness(tensor<double>({{2, 0.5}}), 3) == doctest::Approx(1.0));  // 0.5 < 2/3
    CHECK(flint_conciseness(tensor<double>({{2, 0.5}}), 5) == doctest::Approx(2.0));  // 0.5 > 2/5
  }

  TEST_CASE("learn.flint: the class-attribute relevance averages max-normalised relevances per predicted class") {
    const auto r = tensor<double>({{1, 1}, {0.5, 6}, {2, 0}});
    const auto pred = from_vector<std::int64_t>({1, 0, 0}, Shape{3});
    const auto m = flint_class_attribute_relevance(r, pred, 3);
    CHECK(m.count == std::vector<std::int64_t>{2, 1, 0});
    CHECK(m.at(0, 0) == doctest::Approx((0.5 / 6 + 1) / 2));
    CHECK(m.at(0, 1) == doctest::Approx((1 + 0) / 2.0));
    CHECK(m.at(1, 0) == doctest::Approx(1));
    CHECK(m.at(1, 1) == doctest::Approx(1));
    CHECK(std::isnan(m.at(2, 0)));
    CHECK(m.relevant(0, 1));
    CHECK_FALSE(m.relevant(2, 0));
    CHECK(m.relevant_attributes(1) == std::vector<std::int64_t>{0, 1});
    const auto strict = flint_class_attribute_relevance(r, pred, 3, 0.6);
    CHECK(strict.relevant_attributes(0) == std::vector<std::int64_t>{});
  }

  TEST_CASE("learn.flint: post-hoc mode leaves f without gradient and trains only the interpreter") {
    Generator gen(5);
    auto model = flint_test::toy_flint<double>(2, 6, 3, 3, gen);
    const auto data = flint_test::blobs(30, gen);
    const auto b = flint_test::batch_of(data);
    model->train(true);

    FlintLoss<double> post_hoc({.post_hoc = true});
    post_hoc.on_epoch(5, 12);
    backward(post_hoc(*model, b));
    for (const auto& p : model->f().parameters()) CHECK_FALSE(p.grad().defined());
    for (const auto& p : model->interpreter_parameters()) CHECK(p.grad().defined());
    CHECK(model->f().is_training());  // f ran in eval mode and was put back
    model->zero_grad();

    // Joint mode, by contrast, reaches f through CE and through Φ's hidden layer.
    FlintLoss<double> joint;
    joint.on_epoch(5, 12);
    backward(joint(*model, b));
    for (const auto& p : model->f().parameters()) CHECK(p.grad().defined());
    model->zero_grad();

    // Fit f alone first, then the interpreter post hoc: f's parameters stay exactly as they were.
    {
      Adam<double> opt(model->f().parameters(), {.lr = 0.05});
      for (int s = 0; s < 100; ++s) {
        opt.zero_grad();
        backward(cross_entropy(model->forward(b.x), b.y));
        opt.step();
      }
    }
    std::vector<std::vector<double>> f_before;
    for (const auto& p : model->f().parameters()) f_before.push_back(p.to_vector());
    const double fidelity_before = evaluate_flint(*model, data).fidelity;
    Adam<double> opt(model->interpreter_parameters(), {.lr = 0.03});
    for (int s = 0; s < 200; ++s) {
      opt.zero_grad();
      backward(post_hoc(*model, b));
      opt.step();
    }
    const auto params = model->f().parameters();
    for (std::size_t i = 0; i < params.size(); ++i) CHECK(params[i].to_vector() == f_before[i]);
    const auto ev = evaluate_flint(*model, data);
    MESSAGE("post hoc: fidelity ", fidelity_before, " -> ", ev.fidelity, ", acc(f) ", ev.acc_f);
    CHECK(ev.fidelity >= 0.95);
  }

  TEST_CASE("learn.flint: a short joint run raises fidelity on a toy task") {
    Generator gen(6);
    auto model = flint_test::toy_flint<double>(2, 8, 4, 3, gen);
    const auto data = flint_test::blobs(60, gen);
    const auto b = flint_test::batch_of(data);
    const auto before = evaluate_flint(*model, data);
    // Every term on from the first step.
    FlintLoss<double> loss({.schedule = {.expl_after = 0, .spa_after = 0, .ent_after = 0}});
    Adam<double> opt(model->parameters(), {.lr = 0.02});
    model->train(true);
    for (int s = 0; s < 300; ++s) {
      opt.zero_grad();
      backward(loss(*model, b));
      opt.step();
    }
    const auto after = evaluate_flint(*model, data);
    MESSAGE("fidelity ", before.fidelity, " -> ", after.fidelity, ", acc(f) ", before.acc_f, " -> ", after.acc_f,
            ", acc(g) ", after.acc_g, ", CNS(2) ", after.cns[1]);
    CHECK(after.fidelity >= 0.95);
    CHECK(after.fidelity > before.fidelity);
    CHECK(after.acc_f >= 0.9);
    CHECK(after.acc_g >= 0.9);
    CHECK(after.cns.size() == 6);
    for (double c : after.cns) CHECK((c >= 1 && c <= 4));
  }

  TEST_CASE("learn.flint: evaluate_flint agrees with the metrics on the whole set, in any batch size") {
    Generator gen(7);
    auto model = flint_test::toy_flint<double>(2, 6, 3, 3, gen);
    const auto data = flint_test::blobs(10, gen);
    model->train(true);
    const auto ev = evaluate_flint(*model, data, 3);
    CHECK(model->is_training());
    model->eval();
    const auto out = model->forward_all(data.inputs, false, false);
    CHECK(ev.n == 10);
    CHECK(ev.acc_f == flint_accuracy(out.f_logits, data.labels));
    CHECK(ev.acc_g == flint_accuracy(out.g_logits, data.labels));
    CHECK(ev.fidelity == flint_fidelity(out.g_logits, out.f_logits));
    const auto r = flint_relevance(out.attributes, model->h().weight, argmax(out.g_logits, 1));
    CHECK(ev.cns[2] == doctest::Approx(flint_conciseness(r, 2.5)).epsilon(1e-14));
    const auto m = ev.metrics("test_");
    CHECK(m.at("test_acc") == ev.acc_f);
    CHECK(m.at("test_cns_tau_2.5") == ev.cns[2]);
    CHECK(m.at("test_cns_tau_5") == ev.cns[5]);
  }

  TEST_CASE("learn.flint: a predictor with several hidden layers and a Φ that reads them all") {
    Generator gen(8);
    auto f = std::make_shared<flint_test::TwoHidden>(gen);
    auto phi = std::make_shared<flint_test::ConcatPhi>(gen);
    auto d = std::make_shared<nn::Linear<double>>(4, 2, gen);
    auto h = std::make_shared<nn::Linear<double>>(4, 3, gen);
    Flint<double, flint_test::TwoHidden, flint_test::ConcatPhi, nn::Linear<double>> model(f, phi, d, h, 0.01);
    const auto data = flint_test::blobs(9, gen);
    FlintLoss<double> loss;
    const auto l = loss(model, flint_test::batch_of(data));
    CHECK(std::isfinite(l.item()));
    backward(l);
    for (const auto& p : model.parameters()) CHECK(p.grad().defined());
    CHECK(model.state_dict().find("phi.fc.weight") != nullptr);
    CHECK(model.state_dict().find("f.b.bias") != nullptr);
  }

  TEST_CASE("learn.flint: the MNIST/FMNIST networks of networks.py fit the contract") {
    Generator gen(11);
    auto model = flint_mnist<double>(gen);
    Batch<double> b{rand<double>(Shape{2, 1, 28, 28}, gen), from_vector<std::int64_t>({3, 7}, Shape{2}), {}, {}};
    const auto out = model->forward_all(b.x);
    CHECK(out.f_logits.shape() == Shape{2, 10});
    CHECK(out.attributes.shape() == Shape{2, 25});
    CHECK(out.g_logits.shape() == Shape{2, 10});
    CHECK(out.reconstruction.shape() == Shape{2, 1, 28, 28});
    FlintLoss<double> loss;
    loss.on_epoch(11, 12);
    backward(loss(*model, b));
    for (const auto& [name, p] : model->named_parameters()) {
      INFO(name);
      CHECK(p.grad().defined());
    }
  }

  TEST_CASE("learn.flint: name and setting") {
    // No float case here: it would instantiate every op again for float and double this file's
    // compile time (nothing else in tests/learn uses float).
    FlintLoss<double> loss;
    CHECK(loss.name() == "flint");
    CHECK(FlintLoss<double>({.post_hoc = true}).name() == "flint_post_hoc");
    CHECK(loss.setting().dump() ==
          R"({"post_hoc":false,"ce":1.0,"rec":0.8,"rec_after":0,"expl":0.5,"expl_after":2,"spa":0.1,)"
          R"("spa_after":2,"ent":0.2,"ent_after":4})");
  }

  TEST_CASE("learn.flint: bad input names the function and the shapes") {
    Generator gen(10);
    METAGRAD_CHECK_ERROR(flint_conciseness(ones<double>(Shape{3, 4}), 1.0), "flint_conciseness", "tau must be > 1",
                         "[3, 4]");
    METAGRAD_CHECK_ERROR(flint_conciseness(ones<double>(Shape{3, 4}), 0.5), "flint_conciseness", "tau");
    METAGRAD_CHECK_ERROR(flint_output_fidelity_loss(ones<double>(Shape{2, 3}), ones<double>(Shape{2, 4})),
                         "flint_output_fidelity_loss", "[2, 4]", "[2, 3]");
    METAGRAD_CHECK_ERROR(flint_input_fidelity_loss(ones<double>(Shape{2, 3}), ones<double>(Shape{2, 4})),
                         "flint_input_fidelity_loss", "[2, 3]", "[2, 4]");
    METAGRAD_CHECK_ERROR(flint_entropy_loss(zeros<double>(Shape{0, 3})), "flint_entropy_loss", "[0, 3]");
    METAGRAD_CHECK_ERROR(flint_sparsity_loss(ones<double>(Shape{3})), "flint_sparsity_loss", "[3]");
    METAGRAD_CHECK_ERROR(flint_fidelity(ones<double>(Shape{2, 3}), ones<double>(Shape{3, 3})), "flint_fidelity",
                         "[3, 3]", "[2, 3]");
    METAGRAD_CHECK_ERROR(flint_accuracy(ones<double>(Shape{2, 3}), from_vector<std::int64_t>({0}, Shape{1})),
                         "flint_accuracy", "[1]", "[2, 3]");
    METAGRAD_CHECK_ERROR(flint_relevance(ones<double>(Shape{2, 3}), ones<double>(Shape{4, 2}),
                                         from_vector<std::int64_t>({0, 1}, Shape{2})),
                         "flint_relevance", "[4, 2]", "[2, 3]");
    METAGRAD_CHECK_ERROR(flint_relevance(ones<double>(Shape{2, 3}), ones<double>(Shape{4, 3}),
                                         from_vector<std::int64_t>({0, 4}, Shape{2})),
                         "flint_relevance", "class 4", "[4, 3]");
    METAGRAD_CHECK_ERROR(flint_class_attribute_relevance(ones<double>(Shape{2, 3}),
                                                         from_vector<std::int64_t>({0, 3}, Shape{2}), 3),
                         "flint_class_attribute_relevance", "class 3", "[2, 3]");
    METAGRAD_CHECK_ERROR(FlintSchedule{}.at(0), "FlintSchedule", "from 1");
    METAGRAD_CHECK_ERROR(FlintLoss<double>({.schedule = {.expl = -1}}), "FlintLoss", "-1");

    auto model = flint_test::toy_flint<double>(2, 5, 3, 3, gen);
    FlintLoss<double> loss;
    METAGRAD_CHECK_ERROR(loss.on_epoch(-1, 12), "FlintLoss::on_epoch", "-1");
    Batch<double> empty{zeros<double>(Shape{0, 2}), Tensor<std::int64_t>::empty(Shape{0}), {}, {}};
    METAGRAD_CHECK_ERROR(loss(*model, empty), "FlintLoss", "[0, 2]");
    Batch<double> bad_label{ones<double>(Shape{2, 2}), from_vector<std::int64_t>({0, 3}, Shape{2}), {}, {}};
    METAGRAD_CHECK_ERROR(loss(*model, bad_label), "FlintLoss", "label 3", "[2, 3]");
    const auto data = flint_test::blobs(6, gen);
    METAGRAD_CHECK_ERROR(evaluate_flint(*model, data, 512, {1.5, 1.0}), "evaluate_flint", "tau");
    const data::Dataset<double> none{zeros<double>(Shape{0, 2}), Tensor<std::int64_t>::empty(Shape{0}), {}};
    METAGRAD_CHECK_ERROR(evaluate_flint(*model, none), "evaluate_flint", "empty", "[0, 2]");

    // Φ gives 4 attributes where h reads 3.
    auto wrong = flint_test::toy_flint<double>(2, 5, 3, 3, gen, 4);
    METAGRAD_CHECK_ERROR(wrong->forward_all(ones<double>(Shape{2, 2})), "Flint", "[2, 3]", "[2, 4]");
    // A decoder whose output is not the input's shape.
    auto model3 = flint_test::toy_flint<double>(3, 5, 3, 3, gen);
    Batch<double> b3{ones<double>(Shape{2, 3}), from_vector<std::int64_t>({0, 1}, Shape{2}), {}, {}};
    CHECK(std::isfinite(loss(*model3, b3).item()));
    METAGRAD_CHECK_ERROR(flint_input_fidelity_loss(model3->forward_all(b3.x).reconstruction, ones<double>(Shape{2, 4})),
                         "flint_input_fidelity_loss", "[2, 3]", "[2, 4]");
  }
}
