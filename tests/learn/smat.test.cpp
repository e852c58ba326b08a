// SPDX-License-Identifier: MIT
// learn/simulation, smat, static_explainers, plausibility, student_training: the SMaT meta-gradient
// against a central finite difference of the outer loss through the student's real (clipped,
// weight-decayed) SGD step; each static explainer on a tiny Transformer against a hand or
// finite-difference computation, and the model-generic ones on a tiny ViT's patches; the plausibility AUC, quantiles and bootstrap on hand-made cases;
// meta steps on a toy teacher that find the informative explanation head and help the student;
// bad input.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "metagrad/core/creation.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/text.hpp"
#include "metagrad/learn/plausibility.hpp"
#include "metagrad/learn/simulation.hpp"
#include "metagrad/learn/smat.hpp"
#include "metagrad/learn/static_explainers.hpp"
#include "metagrad/learn/student_training.hpp"
#include "metagrad/nn/patch_embedding.hpp"
#include "metagrad/ops/compare.hpp"
#include "metagrad/ops/linalg.hpp"
#include "test_util.hpp"

using namespace metagrad;
using namespace metagrad::learn;

namespace smat_test {

using D = double;
using TextBatch = data::TextDataset<D>;

nn::TransformerConfig tiny_config() {
  return {.vocab_size = 9, .max_len = 5, .d_model = 4, .num_heads = 2, .d_ff = 6, .num_layers = 2, .num_classes = 2};
}

/// Four sequences of five tokens, the last two padded.
TextBatch tiny_batch(std::uint64_t seed) {
  Generator gen(seed);
  TextBatch b{randint(2, 9, Shape{4, 5}, gen), ones<D>(Shape{4, 5}), randint(0, 2, Shape{4}, gen)};
  for (std::int64_t t : {3, 4}) b.mask.mutable_data()[2 * 5 + t] = 0;
  b.mask.mutable_data()[3 * 5 + 4] = 0;
  return b;
}

/// The outer loss of the meta step computed the plain way: the student takes its real in-place
/// steps (StudentSGD) on the training batches with φ_T = phi, then CE on the validation batch;
/// the student is put back afterwards.
template <class S>
double outer_loss_by_real_steps(S& student, const std::vector<TextBatch>& batches,
                                const std::vector<Tensor<D>>& teacher_scores, const Tensor<D>& phi,
                                const TextBatch& valid, const SmatOptions& o) {
  LearnedAttentionExplainer<D> teacher_explainer(2, 2);
  teacher_explainer.head_logits = phi;
  NamedTensors<D> model_copy, explainer_copy;
  for (const auto& [n, t] : student.model().state_dict()) model_copy.insert(n, clone(t));
  for (const auto& [n, t] : student.explainer().state_dict()) explainer_copy.insert(n, clone(t));
  StudentSGD<D> sgd(student.parameters(), o.student_lr, o.max_grad_norm, o.weight_decay);
  for (std::size_t k = 0; k < batches.size(); ++k) {
    Tensor<D> teacher;
    {
      NoGradGuard no_grad;
      teacher = teacher_explainer.explanation_logits(teacher_scores[k], batches[k].mask);
    }
    sgd.step(simulation_loss(student(batches[k]), batches[k].labels, teacher, o.beta));
  }
  double loss;
  {
    NoGradGuard no_grad;
    loss = cross_entropy(student(valid).logits, valid.labels).item();
  }
  student.model().load_state_dict(model_copy);
  student.explainer().load_state_dict(explainer_copy);
  return loss;
}

void check_meta_gradient(double max_grad_norm, std::int64_t unroll_steps) {
  Generator gen(7);
  nn::TransformerEncoder<D> teacher(tiny_config(), gen), model(tiny_config(), gen);
  LearnedAttentionExplainer<D> teacher_explainer(2, 2), student_explainer(2, 2);
  // φ away from sparsemax's kinks: every head in the support, none near its threshold.
  teacher_explainer.head_logits = from_vector<D>({0.32, 0.21, 0.27, 0.19}, Shape{4});
  teacher_explainer.head_logits.requires_grad_();
  student_explainer.head_logits = from_vector<D>({0.3, 0.2, 0.25, 0.25}, Shape{4});
  student_explainer.head_logits.requires_grad_();  // a parameter, as the in-place step needs
  Student<D, nn::TransformerEncoder<D>, LearnedAttentionExplainer<D>, TransformerAttentionForward> student(
      model, student_explainer, {});
  const auto train = tiny_batch(1), valid = tiny_batch(2), train2 = tiny_batch(3);
  Tensor<D> scores, scores2;
  {
    NoGradGuard no_grad;
    scores = head_scores(teacher.forward(train.ids, train.mask).attention_logits, train.mask);
    scores2 = head_scores(teacher.forward(train2.ids, train2.mask).attention_logits, train2.mask);
  }
  SmatOptions o{.beta = 5.0, .student_lr = 0.5, .max_grad_norm = max_grad_norm, .weight_decay = 0.01,
                .unroll_steps = unroll_steps};
  const std::vector<TextBatch> batches =
      unroll_steps == 1 ? std::vector<TextBatch>{train} : std::vector<TextBatch>{train, train2};
  const std::vector<Tensor<D>> batch_scores{scores, scores2};
  const auto step = smat_meta_gradient<D, decltype(student), TextBatch>(
      student, batches,
      [&](std::int64_t k) {
        return teacher_explainer.explanation_logits(batch_scores[static_cast<std::size_t>(k)],
                                                    batches[static_cast<std::size_t>(k)].mask);
      },
      valid, {teacher_explainer.head_logits}, o);
  REQUIRE(step.meta_grads.size() == 1);
  const Tensor<D> g = step.meta_grads[0];
  // The meta-gradient must not vanish, else the comparison below proves nothing.
  double g_norm = 0;
  for (std::int64_t i = 0; i < 4; ++i) g_norm += g.data()[i] * g.data()[i];
  CHECK(std::sqrt(g_norm) > 1e-6);

  // Central differences of the outer loss, computed through the real in-place student step(s).
  auto outer_at = [&](const Tensor<D>& phi) {
    return outer_loss_by_real_steps(student, batches, batch_scores, phi, valid, o);
  };
  const double h = 1e-6;
  const auto phi0 = teacher_explainer.head_logits.detach();
  CHECK(outer_at(clone(phi0)) == doctest::Approx(static_cast<double>(step.outer_loss)).epsilon(1e-10));
  for (std::int64_t i = 0; i < 4; ++i) {
    auto plus = clone(phi0), minus = clone(phi0);
    plus.mutable_data()[i] += h;
    minus.mutable_data()[i] -= h;
    const double fd = (outer_at(plus) - outer_at(minus)) / (2 * h);
    CHECK(g.data()[i] == doctest::Approx(fd).epsilon(1e-5).scale(1e-8));
  }
}

/// A linear bag-of-features student whose explanation is its own gradient × input (the logit
/// difference's per-feature contributions), so explanation supervision shapes its weights.
class LinearStudent final : public nn::Module<D> {
 public:
  LinearStudent(std::int64_t features, Generator& gen) {
    weight = randn<D>(Shape{2, features}, gen, 0.0, 0.01);
    this->register_parameter("weight", weight);
  }
  Tensor<D> weight;
};
class NoParameters final : public nn::Module<D> {};

struct LinearForward {
  Explained<D> operator()(LinearStudent& m, NoParameters&, const data::Dataset<D>& b) const {
    const auto logits = matmul(b.inputs, transpose(m.weight, 0, 1));
    const auto contribution = mul(b.inputs, sub(select(m.weight, 0, 1), select(m.weight, 0, 0)));
    return {logits, mul(contribution, 10.0)};
  }
};

}  // namespace smat_test

using namespace smat_test;

TEST_CASE("smat: meta-gradient equals a central finite difference through the clipped SGD step") {
  SUBCASE("clipping active") { check_meta_gradient(0.05, 1); }
  SUBCASE("clipping inactive") { check_meta_gradient(1e6, 1); }
  SUBCASE("two unrolled steps") { check_meta_gradient(0.05, 2); }
}

TEST_CASE("smat: the unrolled first step is the student's real in-place update") {
  Generator gen(3);
  nn::TransformerEncoder<D> model(tiny_config(), gen);
  LearnedAttentionExplainer<D> se(2, 2), te(2, 2);
  te.head_logits.requires_grad_();
  Student<D, nn::TransformerEncoder<D>, LearnedAttentionExplainer<D>, TransformerAttentionForward> student(model, se, {});
  const auto train = tiny_batch(4), valid = tiny_batch(5);
  const auto scores = randn<D>(Shape{4, 4, 5}, gen);
  const SmatOptions o{.beta = 5.0, .student_lr = 0.5, .max_grad_norm = 0.05, .weight_decay = 0.01};
  const std::vector<TextBatch> one{train};
  const auto step = smat_meta_gradient<D, decltype(student), TextBatch>(
      student, one, [&](std::int64_t) { return te.explanation_logits(scores, train.mask); }, valid, {te.head_logits},
      o);
  Tensor<D> teacher;
  {
    NoGradGuard no_grad;
    teacher = te.explanation_logits(scores, train.mask);
  }
  StudentSGD<D> sgd(student.parameters(), o.student_lr, o.max_grad_norm, o.weight_decay);
  sgd.step(simulation_loss(student(train), train.labels, teacher, o.beta));
  const auto params = student.parameters();
  REQUIRE(params.size() == step.first_step.size());
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(testing::allclose(step.first_step[i], params[i], 1e-12, 1e-10));
}

TEST_CASE("smat: the implicit route gives a finite, non-zero meta-gradient and leaves the student alone") {
  Generator gen(9);
  nn::TransformerEncoder<D> model(tiny_config(), gen);
  LearnedAttentionExplainer<D> se(2, 2), te(2, 2);
  se.head_logits.requires_grad_();
  te.head_logits.requires_grad_();
  Student<D, nn::TransformerEncoder<D>, LearnedAttentionExplainer<D>, TransformerAttentionForward> student(model, se, {});
  const auto train = tiny_batch(7), valid = tiny_batch(8);
  const auto scores = randn<D>(Shape{4, 4, 5}, gen);
  const auto before = clone(model.parameters()[0]);
  SmatOptions o{.beta = 5.0, .student_lr = 0.1, .route = MetaRoute::implicit};
  o.implicit.iterations = 5;
  o.implicit.damping = 1.0;  // the student is not at a minimum: keep the solve well posed
  const std::vector<TextBatch> one{train};
  const auto step = smat_meta_gradient<D, decltype(student), TextBatch>(
      student, one, [&](std::int64_t) { return te.explanation_logits(scores, train.mask); }, valid, {te.head_logits},
      o);
  REQUIRE(step.meta_grads.size() == 1);
  double norm = 0;
  for (std::int64_t i = 0; i < 4; ++i) {
    CHECK(std::isfinite(step.meta_grads[0].data()[i]));
    norm += std::abs(step.meta_grads[0].data()[i]);
  }
  CHECK(norm > 0);
  CHECK(step.first_step.empty());
  CHECK(testing::same(before, model.parameters()[0]));
}

TEST_CASE("smat: explanation_kl and simulation_loss by hand, padding finite") {
  const auto t = from_vector<D>({0.0, 1.0, -1e9}, Shape{1, 3});
  const auto s = from_vector<D>({1.0, 0.0, -1e9}, Shape{1, 3});
  const double pt0 = 1 / (1 + std::exp(1.0)), pt1 = 1 - pt0;
  const double want = pt0 * (std::log(pt0) - std::log(pt1)) + pt1 * (std::log(pt1) - std::log(pt0));
  CHECK(explanation_kl(t, s).item() == doctest::Approx(want).epsilon(1e-12));
  auto sv = s.detach().requires_grad_();
  const auto kl = explanation_kl(t, sv);
  backward(kl);
  for (std::int64_t i = 0; i < 3; ++i) CHECK(std::isfinite(sv.grad().data()[i]));
  CHECK(sv.grad().data()[2] == 0.0);
  const Explained<D> out{from_vector<D>({2.0, 0.0}, Shape{1, 2}), s};
  const IndexTensor label = from_vector<std::int64_t>({0}, Shape{1});
  const double ce = std::log(1 + std::exp(-2.0));
  CHECK(simulation_loss(out, label, t, 0.0).item() == doctest::Approx(ce));
  CHECK(simulation_loss(out, label, t, 5.0).item() == doctest::Approx(ce + 5 * want));
}

TEST_CASE("smat: static explainers of a tiny Transformer against hand and finite-difference computations") {
  Generator gen(11);
  nn::TransformerEncoder<D> model(tiny_config(), gen);
  const auto b = tiny_batch(6);
  const std::int64_t n = 4, s = 5, d = 4;
  const auto out = model.forward(b.ids, b.mask);
  const auto pred = argmax(out.logits.detach(), 1);

  SUBCASE("attention: mean over unpadded query rows, then over heads") {
    for (auto kind : {StaticExplainer::attention_all, StaticExplainer::attention_last}) {
      const auto sc = static_explainer_scores(kind, model, b.ids, b.mask);
      const std::int64_t first = kind == StaticExplainer::attention_all ? 0 : 1;
      const std::int64_t heads = (2 - first) * 2;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t t = 0; t < s; ++t) {
          double want = 0;
          for (std::int64_t l = first; l < 2; ++l)
            for (std::int64_t h = 0; h < 2; ++h) {
              double row_sum = 0, rows = 0;
              for (std::int64_t q = 0; q < s; ++q)
                if (b.mask(i, q) == 1) {
                  row_sum += out.attention_logits[static_cast<std::size_t>(l)](i, h, q, t);
                  rows += 1;
                }
              want += row_sum / rows / static_cast<double>(heads);
            }
          CHECK(sc(i, t) == doctest::Approx(want).epsilon(1e-12));
        }
    }
  }

  // f(e) = the predicted logit of example i from token embeddings e.
  NoGradGuard no_grad;
  const auto emb = model.tok->forward(b.ids).detach();
  auto logit_at = [&](const Tensor<D>& e, std::int64_t i) {
    return model.forward_embeddings(e, b.mask).logits(i, pred(i));
  };
  auto fd_gradient = [&](const Tensor<D>& at, std::int64_t i, std::int64_t t, std::int64_t k) {
    auto plus = clone(at), minus = clone(at);
    plus.mutable_data()[(i * s + t) * d + k] += 1e-6;
    minus.mutable_data()[(i * s + t) * d + k] -= 1e-6;
    return (logit_at(plus, i) - logit_at(minus, i)) / 2e-6;
  };
  SUBCASE("gradient norm and gradient x input") {
    const auto norm_scores = static_explainer_scores(StaticExplainer::gradient_norm, model, b.ids, b.mask);
    const auto gxi = static_explainer_scores(StaticExplainer::gradient_x_input, model, b.ids, b.mask);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t t = 0; t < s; ++t) {
        double sq = 0, dot = 0;
        for (std::int64_t k = 0; k < d; ++k) {
          const double g = fd_gradient(emb, i, t, k);
          sq += g * g;
          dot += g * emb(i, t, k);
        }
        CHECK(norm_scores(i, t) == doctest::Approx(std::sqrt(sq)).epsilon(1e-6).scale(1e-9));
        CHECK(gxi(i, t) == doctest::Approx(dot).epsilon(1e-6).scale(1e-9));
      }
  }
  SUBCASE("integrated gradients: 10 midpoints from a zero baseline") {
    const auto ig = static_explainer_scores(StaticExplainer::integrated_gradients, model, b.ids, b.mask);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t t = 0; t < s; ++t) {
        double want = 0;
        for (int m = 0; m < 10; ++m) {
          const auto point = mul(emb, (m + 0.5) / 10);
          for (std::int64_t k = 0; k < d; ++k) want += fd_gradient(point, i, t, k) * emb(i, t, k) / 10;
        }
        CHECK(ig(i, t) == doctest::Approx(want).epsilon(1e-6).scale(1e-9));
      }
  }
  SUBCASE("temperatures, beta and padding") {
    const auto z = static_explanation_logits(StaticExplainer::gradient_x_input, model, b.ids, b.mask);
    const auto raw = static_explainer_scores(StaticExplainer::gradient_x_input, model, b.ids, b.mask);
    CHECK(z(0, 0) == doctest::Approx(raw(0, 0) / 0.1));
    CHECK(z(2, 4) < -1e8);
    CHECK(softmax(z, 1)(2, 4) == 0.0);
    CHECK(explainer_beta(StaticExplainer::attention_all) == 5.0);
    CHECK(explainer_beta(StaticExplainer::integrated_gradients) == 0.2);
    CHECK(explainer_temperature(StaticExplainer::integrated_gradients) == 0.5);
    CHECK(static_explainer_named("gradient_norm") == StaticExplainer::gradient_norm);
  }
}

TEST_CASE("smat: plausibility AUC, quantiles and bootstrap on hand-made cases") {
  const std::vector<double> sc{0.9, 0.1, 0.5, 0.5};
  const std::vector<int> lab{1, 0, 1, 0};
  CHECK(roc_auc(sc, lab) == doctest::Approx(3.5 / 4));  // the 0.5/0.5 tie counts one half
  const std::vector<int> flipped{0, 1, 0, 1};
  CHECK(roc_auc(sc, flipped) == doctest::Approx(0.5 / 4));
  // Row 0: a perfect ranking over its three real tokens (the padded fourth would spoil it);
  // row 1: all rationale, skipped; row 2: none, skipped.
  const auto scores = from_vector<D>({3, 2, 1, 9, 1, 2, 3, 4, 1, 1, 1, 1}, Shape{3, 4});
  const auto gold = from_vector<D>({1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, Shape{3, 4});
  const auto mask = from_vector<D>({1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1}, Shape{3, 4});
  const auto p = plausibility_auc(scores, gold, mask);
  CHECK(p.auc == doctest::Approx(1.0));
  CHECK(p.counted == 1);
  CHECK(p.skipped == 2);
  CHECK(plausibility_auc(scores, gold).auc == doctest::Approx(2.0 / 3));  // the padded 9 counts now
  const auto m5 = median_iqr({5, 1, 4, 2, 3});
  CHECK(m5.median == 3.0);
  CHECK(m5.q25 == 2.0);
  CHECK(m5.q75 == 4.0);
  const auto m4 = median_iqr({1, 2, 3, 4});
  CHECK(m4.median == doctest::Approx(2.5));
  CHECK(m4.q25 == doctest::Approx(1.75));
  CHECK(m4.q75 == doctest::Approx(3.25));
  const std::vector<std::int64_t> a{0, 1, 1, 0, 1, 0, 1, 1}, same = a, half{0, 1, 1, 0, 0, 1, 0, 0};
  const auto full = bootstrap_agreement(a, same, 1);
  CHECK(full.mean == 1.0);
  CHECK(full.low == 1.0);
  const auto part = bootstrap_agreement(a, half, 1);
  CHECK(part.mean == doctest::Approx(0.5).epsilon(0.1));
  CHECK(part.low < part.mean);
  CHECK(part.high > part.mean);
}

TEST_CASE("smat: meta steps find the informative teacher head and help the student simulate") {
  // Teacher: a linear model on 40 binary features of which 6 decide the class. Its explanation has
  // two "heads": head 0 the teacher's true per-feature contributions, head 1 noise. A student
  // with 24 examples learns more from head 0; SMaT starts at equal weights and must move to it.
  constexpr std::int64_t F = 40, n_train = 24, n_valid = 64;
  Generator gen(21);
  auto w = zeros<D>(Shape{F});
  for (std::int64_t k = 0; k < 6; ++k) w.mutable_data()[k] = k % 2 == 0 ? 2.0 : -2.0;
  auto make = [&](std::int64_t n) {
    data::Dataset<D> ds{lt(rand<D>(Shape{n, F}, gen), 0.25), IndexTensor::empty(Shape{n}), {}};
    const auto logit = matmul(ds.inputs, reshape(w, Shape{F, 1}));
    for (std::int64_t i = 0; i < n; ++i) ds.labels.mutable_data()[i] = logit(i, 0) > 0 ? 1 : 0;
    return ds;
  };
  const auto train = make(n_train), valid = make(n_valid);
  // Per training row: head 0 = x ⊙ w (signed by the teacher's class), head 1 = noise on present features.
  auto heads = zeros<D>(Shape{n_train, 2, F});
  const auto noise = randn<D>(Shape{n_train, F}, gen, 0.0, 2.0);
  for (std::int64_t i = 0; i < n_train; ++i)
    for (std::int64_t f = 0; f < F; ++f) {
      const double x = train.inputs(i, f);
      heads.mutable_data()[(i * 2 + 0) * F + f] = x * w(f) * (train.labels(i) == 1 ? 1 : -1);
      heads.mutable_data()[(i * 2 + 1) * F + f] = x * noise(i, f);
    }

  auto run = [&](bool meta) {
    Generator init(5);
    LinearStudent model(F, init);
    NoParameters none;
    Student<D, LinearStudent, NoParameters, LinearForward> student(model, none, {});
    LearnedAttentionExplainer<D> explainer(1, 2);
    TeacherExplanationFn<D> teacher = [&](std::span<const std::int64_t> rows) {
      return explainer.explanation_logits(data::take_rows(heads, rows));
    };
    StudentFitOptions o{.max_epochs = 15, .patience = 15, .batch_size = 8, .seed = 3,
                        .smat = {.beta = 5.0, .student_lr = 0.05, .max_grad_norm = 5.0, .weight_decay = 0.01},
                        .meta_lr = 0.05};
    const auto r = fit_student<D>(student, train, valid, teacher, o, meta ? &explainer : nullptr);
    return std::pair{r, explainer.head_weights().detach()};
  };
  const auto [fixed, fixed_lambda] = run(false);
  const auto [learned, learned_lambda] = run(true);
  CHECK(fixed_lambda(0) == doctest::Approx(0.5));
  CHECK(learned_lambda(0) > 0.6);  // moved towards the informative head
  MESSAGE("valid simulability: fixed explainer ", fixed.best_valid_simulability, ", SMaT ",
          learned.best_valid_simulability, " (lambda_0 ", learned_lambda(0), ")");
  CHECK(learned.best_valid_simulability >= fixed.best_valid_simulability + 0.03);
}

TEST_CASE("smat: fit_student stops after patience epochs without a better valid simulability, never before min_epochs") {
  // A student whose lr is too small to change a prediction: its valid simulability is that of
  // epoch 1 forever, so only the stopping rule decides how long it trains.
  constexpr std::int64_t F = 6;
  Generator gen(4);
  // Labels 0 for the first half of the rows, 1 for the rest.
  const auto halves = [](std::int64_t n) {
    auto y = IndexTensor::empty(Shape{n});
    for (std::int64_t i = 0; i < n; ++i) y.fresh_data()[i] = i < n / 2 ? 0 : 1;
    return y;
  };
  const data::Dataset<D> train{rand<D>(Shape{16, F}, gen), halves(16), {}};
  const data::Dataset<D> valid{rand<D>(Shape{12, F}, gen), halves(12), {}};
  const auto epochs_run = [&](int patience, int min_epochs) {
    Generator init(5);
    LinearStudent model(F, init);
    NoParameters none;
    Student<D, LinearStudent, NoParameters, LinearForward> student(model, none, {});
    StudentFitOptions o{.max_epochs = 20, .patience = patience, .min_epochs = min_epochs, .batch_size = 8,
                        .smat = {.beta = 0.0, .student_lr = 1e-12}};
    const auto r = fit_student<D>(student, train, valid, {}, o);
    CHECK(r.best_epoch == 1);
    return r.epochs_run;
  };
  CHECK(epochs_run(3, 0) == 4);
  CHECK(epochs_run(3, 9) == 9);
  CHECK(epochs_run(3, 2) == 4);   // patience ends it later than min_epochs would
  CHECK(epochs_run(30, 0) == 20);  // max_epochs ends it first
  Generator init(5);
  LinearStudent model(F, init);
  NoParameters none;
  Student<D, LinearStudent, NoParameters, LinearForward> student(model, none, {});
  METAGRAD_CHECK_ERROR(fit_student<D>(student, train, valid, {}, {.max_epochs = 5, .min_epochs = 6}), "fit_student",
                       "min_epochs 6", "max_epochs (5)");
}

TEST_CASE("smat: the model-generic static explainers on a tiny ViT's patches") {
  Generator gen(21);
  nn::VisionTransformerConfig c{.image_size = 4, .channels = 1, .patch = 2};
  c.encoder = {.d_model = 4, .num_heads = 2, .d_ff = 6, .num_layers = 2, .num_classes = 3};
  nn::VisionTransformer<D> vit(c, gen);
  const auto images = rand<D>(Shape{3, 1, 4, 4}, gen, 0, 1);
  const std::int64_t n = 3, p = 4, d = 4;
  NoGradGuard no_grad;
  const auto out = vit.forward(images);
  const auto pred = argmax(out.logits, 1);
  SUBCASE("attention_last: the last layer's heads, the CLS key dropped") {
    const auto scores = narrow(head_scores(out.attention_logits), 2, 1, p);
    const auto last = attention_explainer_scores(StaticExplainer::attention_last, scores, 2);
    REQUIRE(last.shape() == Shape{n, p});
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t t = 0; t < p; ++t) {
        double want = 0;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t q = 0; q < p + 1; ++q) want += out.attention_logits[1](i, h, q, t + 1) / (2.0 * (p + 1));
        CHECK(last(i, t) == doctest::Approx(want).epsilon(1e-12));
      }
  }
  SUBCASE("gradient x input w.r.t. the patch embeddings against finite differences") {
    const auto patches = vit.patch(images).detach();
    auto logits_of = [&](const Tensor<D>& e) { return vit.forward_patches(e).logits; };
    const auto gxi = gradient_explainer_scores(StaticExplainer::gradient_x_input, patches, logits_of);
    REQUIRE(gxi.shape() == Shape{n, p});
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t t = 0; t < p; ++t) {
        double dot = 0;
        for (std::int64_t k = 0; k < d; ++k) {
          auto plus = clone(patches), minus = clone(patches);
          plus.mutable_data()[(i * p + t) * d + k] += 1e-6;
          minus.mutable_data()[(i * p + t) * d + k] -= 1e-6;
          const double g = (logits_of(plus)(i, pred(i)) - logits_of(minus)(i, pred(i))) / 2e-6;
          dot += g * patches(i, t, k);
        }
        CHECK(gxi(i, t) == doctest::Approx(dot).epsilon(1e-6).scale(1e-9));
      }
  }
  SUBCASE("a gradient kind for the attention part and back are errors") {
    const auto scores = zeros<D>(Shape{n, 4, p});
    METAGRAD_CHECK_ERROR(attention_explainer_scores(StaticExplainer::gradient_norm, scores, 2),
                         "attention_explainer_scores", "gradient_norm");
    METAGRAD_CHECK_ERROR(attention_explainer_scores(StaticExplainer::attention_all, scores, 3),
                         "attention_explainer_scores", "[3, 4, 4]", "H = 3");
    auto logits_of = [&](const Tensor<D>& e) { return vit.forward_patches(e).logits; };
    METAGRAD_CHECK_ERROR(gradient_explainer_scores(StaticExplainer::attention_last, zeros<D>(Shape{n, p, d}), logits_of),
                         "gradient_explainer_scores", "attention_last");
    METAGRAD_CHECK_ERROR(gradient_explainer_scores(StaticExplainer::gradient_norm, zeros<D>(Shape{n, d}), logits_of),
                         "gradient_explainer_scores", "[3, 4]");
  }
}

TEST_CASE("smat: bad input names the op and the shapes") {
  const auto a = zeros<D>(Shape{2, 3});
  METAGRAD_CHECK_ERROR(explanation_kl(a, zeros<D>(Shape{2, 4})), "explanation_kl", "[2, 3]", "[2, 4]");
  const Explained<D> out{zeros<D>(Shape{2, 2}), a};
  METAGRAD_CHECK_ERROR(simulation_loss(out, zeros<std::int64_t>(Shape{3}), a, 1.0), "simulation_loss", "[3]");
  METAGRAD_CHECK_ERROR(simulation_loss(out, zeros<std::int64_t>(Shape{2}), Tensor<D>(), 1.0), "simulation_loss",
                       "needs both");
  METAGRAD_CHECK_ERROR(simulation_loss(out, zeros<std::int64_t>(Shape{2}), a, -1.0), "simulation_loss", "beta");
  METAGRAD_CHECK_ERROR(plausibility_auc(a, zeros<D>(Shape{3, 2})), "plausibility_auc", "[3, 2]");
  const std::vector<double> s1{1, 2};
  const std::vector<int> l1{1, 1};
  METAGRAD_CHECK_ERROR(roc_auc(s1, l1), "roc_auc", "both classes");
  METAGRAD_CHECK_ERROR(static_explainer_named("saliency"), "static_explainer_named", "saliency");
  LearnedAttentionExplainer<D> e(2, 2);
  METAGRAD_CHECK_ERROR(e.explanation_logits(zeros<D>(Shape{1, 3, 5})), "LearnedAttentionExplainer", "[1, 3, 5]");
  METAGRAD_CHECK_ERROR(check_smat_options({.unroll_steps = 0}, "smat"), "smat", "unroll_steps");
}
