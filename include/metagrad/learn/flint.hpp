// SPDX-License-Identifier: MIT
// FLINT, "A Framework to Learn with Interpretation" (Parekh, Mozharovskyi, d'Alché-Buc; NeurIPS
// 2021): a predictor f is trained together with an interpreter g = h∘Φ that reads f's hidden
// layers. Φ maps them to J attributes, h (a linear classifier J → C) predicts from the attributes,
// and a decoder d reconstructs the input from them. The loss (jayneelparekh/FLINT flint.py: train) is
//   L = CE(f(x), y) + rec·L_if + expl·L_of + ent·L_ent + spa·L_spa
//   L_of  = −Σ_c softmax(f(x))_c log softmax(h(Φ(x)))_c, f detached, mean over the batch
//   L_if  = MSE(d(Φ(x)), x)
//   L_ent = mean_x E(|Φ(x)|) − E(mean_batch |Φ(x)|),  E(v) = −Σ_j softmax(v)_j log softmax(v)_j
//   L_spa = mean |Φ(x)| over every element
// (the paper's L_cd = L_ent + η·L_spa, with the two weighted separately as the code does), and the
// weights follow the MNIST/FMNIST schedule, epochs counted from 1: rec 0.8, expl 0.5·[ep>2],
// spa 0.1·[ep>2], ent 0.2·[ep>4]. A post-hoc mode keeps f fixed: only Φ, d and h learn, CE is off.
//
// The contract for the modules a caller supplies (all nn modules, all of one scalar type T):
//  - f: an nn::Module<T> with `PredictorOutput<T> forward_with_hidden(const Tensor<T>& x)` giving
//    its logits [N, C] and the hidden activations Φ reads (for MNIST the one conv block output
//    [N, 32, 14, 14]). SplitPredictor builds one from two layers (body: x → hidden, head: hidden →
//    logits), e.g. two nn::Sequential.
//  - Φ: a module with `forward(const std::vector<Tensor<T>>& hidden)`, or any nn::Layer<T> when f
//    gives exactly one hidden layer; it returns attributes [N, J].
//  - d: an nn::Layer<T>, attributes [N, J] → x's shape.
//  - h: nn::Linear<T>(J, C) — a Linear, because conciseness reads its weight W_h. The paper's
//    Dropout(0.01) in front of h is Flint's h_dropout argument.
// Flint is itself an nn::Layer whose forward is f's logits, so Trainer, evaluate() and
// StateSnapshot see f while state_dict() holds all four modules ("f.*", "phi.*", "d.*", "h.*").
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/core/error.hpp"
#include "metagrad/core/random.hpp"
#include "metagrad/core/tensor.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/learn/batch.hpp"
#include "metagrad/learn/metrics.hpp"
#include "metagrad/nn/dropout.hpp"
#include "metagrad/nn/linear.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/ops/arithmetic.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"

namespace metagrad::learn {

// ---------------------------------------------------------------------------------------------
// The predictor and the interpreter
// ---------------------------------------------------------------------------------------------

/// What FLINT reads of the predictor f: its logits and the hidden layers the interpreter reads.
template <Floating T>
struct PredictorOutput {
  Tensor<T> logits;               ///< f(x) [N, C]
  std::vector<Tensor<T>> hidden;  ///< the hidden activations Φ reads (one or more layers)
};

/// A predictor f for FLINT: an nn module that gives its logits together with its hidden layers.
template <class F, class T>
concept PredictorWithHidden = std::derived_from<F, nn::Module<T>> && requires(F& f, const Tensor<T>& x) {
  { f.forward_with_hidden(x) } -> std::convertible_to<PredictorOutput<T>>;
};

/// Φ: reads all of f's hidden layers, or (a Layer) the one hidden layer f gives.
template <class P, class T>
concept AttributeFunctions =
    std::derived_from<P, nn::Module<T>> &&
    (requires(P& p, const std::vector<Tensor<T>>& hidden) {
      { p.forward(hidden) } -> std::convertible_to<Tensor<T>>;
    } || requires(P& p, const Tensor<T>& hidden) {
      { p.forward(hidden) } -> std::convertible_to<Tensor<T>>;
    });

/// f = head∘body, whose hidden layer is body's output: the usual way to make an nn model a FLINT
/// predictor (MNIST: body = the conv block up to the ReLU after dropout, head = the fc layers).
template <Floating T>
class SplitPredictor final : public nn::Layer<T> {
 public:
  SplitPredictor(std::shared_ptr<nn::Layer<T>> body, std::shared_ptr<nn::Layer<T>> head)
      : body_(this->register_module("body", std::move(body))), head_(this->register_module("head", std::move(head))) {}

  PredictorOutput<T> forward_with_hidden(const Tensor<T>& x) {
    Tensor<T> hidden = body_->forward(x);
    Tensor<T> logits = head_->forward(hidden);
    return {std::move(logits), {std::move(hidden)}};
  }
  Tensor<T> forward(const Tensor<T>& x) override { return head_->forward(body_->forward(x)); }

  nn::Layer<T>& body() { return *body_; }
  nn::Layer<T>& head() { return *head_; }

 private:
  std::shared_ptr<nn::Layer<T>> body_;
  std::shared_ptr<nn::Layer<T>> head_;
};

/// Everything one pass of f and the interpreter computes.
template <Floating T>
struct FlintForward {
  Tensor<T> f_logits;        ///< f(x) [N, C]
  Tensor<T> attributes;      ///< Φ(x) [N, J]
  Tensor<T> g_logits;        ///< h(Φ(x)) [N, C]
  Tensor<T> reconstruction;  ///< d(Φ(x)), x's shape; undefined when not decoded
};

namespace detail {
/// Puts a module back in the training mode it had, also when a forward throws.
template <Floating T>
class TrainingModeRestore {
 public:
  explicit TrainingModeRestore(nn::Module<T>& m) : module_(m), was_training_(m.is_training()) {}
  ~TrainingModeRestore() { module_.train(was_training_); }
  TrainingModeRestore(const TrainingModeRestore&) = delete;
  TrainingModeRestore& operator=(const TrainingModeRestore&) = delete;

 private:
  nn::Module<T>& module_;
  bool was_training_;
};
}  // namespace detail

/// f together with its interpreter: the model FlintLoss trains and evaluate_flint measures.
template <Floating T, class F, class Phi = nn::Layer<T>, class D = nn::Layer<T>>
  requires PredictorWithHidden<F, T> && AttributeFunctions<Phi, T> && std::derived_from<D, nn::Layer<T>>
class Flint final : public nn::Layer<T> {
 public:
  /// h_dropout: the probability of the dropout in front of h while training (0.01 in the paper);
  /// its masks are drawn from a stream seeded from gen, as nn::Dropout's.
  Flint(std::shared_ptr<F> f, std::shared_ptr<Phi> phi, std::shared_ptr<D> d, std::shared_ptr<nn::Linear<T>> h,
        double h_dropout = 0, Generator& gen = default_generator())
      : f_(this->register_module("f", std::move(f))),
        phi_(this->register_module("phi", std::move(phi))),
        d_(this->register_module("d", std::move(d))),
        h_(this->register_module("h", std::move(h))),
        h_dropout_(h_dropout, gen) {
    this->register_module("h_dropout", h_dropout_);
  }

  /// f's logits: what Trainer and evaluate() train on and measure.
  Tensor<T> forward(const Tensor<T>& x) override { return f_->forward_with_hidden(x).logits; }

  /// f, Φ, h and (when decode) d at x. With f_frozen, f runs as a fixed function: in eval mode
  /// (its dropout off) and without a graph, so no gradient reaches its parameters.
  FlintForward<T> forward_all(const Tensor<T>& x, bool f_frozen = false, bool decode = true) {
    constexpr const char* op = "Flint";
    check(x.defined() && x.dim() >= 1 && x.size(0) > 0, op, "needs a batch of inputs [N, ...], got ",
          x.defined() ? x.shape() : Shape{});
    PredictorOutput<T> fo;
    if (f_frozen) {
      const detail::TrainingModeRestore<T> restore(*f_);
      f_->eval();
      NoGradGuard no_grad;
      fo = f_->forward_with_hidden(x);
      for (auto& layer : fo.hidden) layer = layer.detach();
    } else {
      fo = f_->forward_with_hidden(x);
    }
    check(fo.logits.defined() && fo.logits.dim() == 2 && fo.logits.size(0) == x.size(0), op,
          "the predictor must return logits [", x.size(0), ", classes] for inputs ", x.shape(), ", got ",
          fo.logits.defined() ? fo.logits.shape() : Shape{});
    FlintForward<T> out;
    out.attributes = attributes_of(fo.hidden);
    check(out.attributes.dim() == 2 && out.attributes.size(0) == x.size(0) &&
              out.attributes.size(1) == h_->in_features(),
          op, "phi must return attributes [", x.size(0), ", ", h_->in_features(), "] (h reads ", h_->in_features(),
          "), got ", out.attributes.shape());
    out.g_logits = h_->forward(h_dropout_.forward(out.attributes));
    check(out.g_logits.shape() == fo.logits.shape(), op, "h gives logits ", out.g_logits.shape(),
          " but f gives ", fo.logits.shape());
    if (decode) out.reconstruction = d_->forward(out.attributes);
    out.f_logits = std::move(fo.logits);
    return out;
  }

  /// The parameters of Φ, d and h: what a post-hoc optimizer steps.
  std::vector<Tensor<T>> interpreter_parameters() const {
    std::vector<Tensor<T>> out = phi_->parameters();
    for (const auto& p : d_->parameters()) out.push_back(p);
    for (const auto& p : h_->parameters()) out.push_back(p);
    return out;
  }

  F& f() { return *f_; }
  Phi& phi() { return *phi_; }
  D& d() { return *d_; }
  nn::Linear<T>& h() { return *h_; }
  std::int64_t num_attributes() const { return h_->in_features(); }
  std::int64_t num_classes() const { return h_->out_features(); }

 private:
  Tensor<T> attributes_of(const std::vector<Tensor<T>>& hidden) {
    if constexpr (requires { phi_->forward(hidden); }) {
      return phi_->forward(hidden);
    } else {
      check(hidden.size() == 1, "Flint", "phi is a Layer and reads one hidden layer, but the predictor gave ",
            hidden.size());
      return phi_->forward(hidden.front());
    }
  }

  std::shared_ptr<F> f_;
  std::shared_ptr<Phi> phi_;
  std::shared_ptr<D> d_;
  std::shared_ptr<nn::Linear<T>> h_;
  nn::Dropout<T> h_dropout_;
};

// ---------------------------------------------------------------------------------------------
// The losses (each a function of tensors, so each can be checked on its own)
// ---------------------------------------------------------------------------------------------

namespace detail {

/// Logits or attributes [N, K] with N > 0.
template <Floating T>
void check_rows(const Tensor<T>& t, const char* what, const char* op) {
  check(t.defined() && t.dim() == 2 && t.size(0) > 0 && t.size(1) > 0, op, "needs ", what,
        " [N, K] with N, K > 0, got ", t.defined() ? t.shape() : Shape{});
}

/// E(v) = −Σ_j softmax(v)_j log softmax(v)_j for each row of v [N, J]: [N].
template <Floating T>
Tensor<T> row_entropy(const Tensor<T>& v) {
  return neg(sum(mul(softmax(v, 1), log_softmax(v, 1)), {1}));
}

}  // namespace detail

/// L_of = −mean_n Σ_c softmax(f_logits)_nc log softmax(g_logits)_nc, with f's logits detached: the
/// interpreter learns to predict what f predicts, and f is not pulled towards the interpreter.
template <Floating T>
Tensor<T> flint_output_fidelity_loss(const Tensor<T>& g_logits, const Tensor<T>& f_logits) {
  constexpr const char* op = "flint_output_fidelity_loss";
  detail::check_rows(g_logits, "interpreter logits", op);
  check(f_logits.defined() && f_logits.shape() == g_logits.shape(), op, "predictor logits ",
        f_logits.defined() ? f_logits.shape() : Shape{}, " must have the interpreter logits' shape ",
        g_logits.shape());
  return cross_entropy(g_logits, softmax(f_logits.detach(), 1));
}

/// L_if = mean (d(Φ(x)) − x)²: the attributes keep what is needed to rebuild the input.
template <Floating T>
Tensor<T> flint_input_fidelity_loss(const Tensor<T>& reconstruction, const Tensor<T>& x) {
  constexpr const char* op = "flint_input_fidelity_loss";
  check(x.defined() && x.dim() >= 1 && x.size(0) > 0, op, "needs a batch of inputs [N, ...], got ",
        x.defined() ? x.shape() : Shape{});
  check(reconstruction.defined() && reconstruction.shape() == x.shape(), op, "the decoder gives ",
        reconstruction.defined() ? reconstruction.shape() : Shape{}, " for inputs ", x.shape());
  return mse_loss(reconstruction, x);
}

/// L_ent = mean_x E(|Φ(x)|) − E(mean_batch |Φ(x)|): low when each point uses few attributes
/// (conciseness) while the batch as a whole uses many (diversity).
template <Floating T>
Tensor<T> flint_entropy_loss(const Tensor<T>& attributes) {
  detail::check_rows(attributes, "attributes", "flint_entropy_loss");
  const auto magnitude = abs(attributes);
  const auto per_point = mean(detail::row_entropy(magnitude));
  const auto of_batch = sum(detail::row_entropy(mean(magnitude, {0}, true)));
  return sub(per_point, of_batch);
}

/// L_spa = mean |Φ(x)| over every element (flint.py's L1Loss(embed, 0)).
template <Floating T>
Tensor<T> flint_sparsity_loss(const Tensor<T>& attributes) {
  detail::check_rows(attributes, "attributes", "flint_sparsity_loss");
  return mean(abs(attributes));
}

/// The paper's L_cd = L_ent + η·L_spa (one weight δ for both); FlintLoss weights them separately.
template <Floating T>
Tensor<T> flint_conciseness_diversity_loss(const Tensor<T>& attributes, double eta) {
  return add(flint_entropy_loss(attributes), mul(flint_sparsity_loss(attributes), T(eta)));
}

// ---------------------------------------------------------------------------------------------
// The schedule and the training loss
// ---------------------------------------------------------------------------------------------

/// The weight of each term of the loss at one epoch.
struct FlintWeights {
  double ce = 1;    ///< CE(f(x), y)
  double rec = 0;   ///< input fidelity L_if (γ)
  double expl = 0;  ///< output fidelity L_of (β)
  double ent = 0;   ///< entropy part of L_cd
  double spa = 0;   ///< L1 part of L_cd
};

/// Each weight w is on from the epoch after w_after, epochs counted from 1 as in flint.py
/// (`w·int(epoch > w_after)`). The defaults are the MNIST/FMNIST schedule.
struct FlintSchedule {
  double ce = 1;
  double rec = 0.8;
  int rec_after = 0;
  double expl = 0.5;
  int expl_after = 2;
  double spa = 0.1;
  int spa_after = 2;
  double ent = 0.2;
  int ent_after = 4;

  /// The weights at `epoch`, counted from 1.
  FlintWeights at(int epoch) const {
    check(epoch >= 1, "FlintSchedule", "epochs are counted from 1, got ", epoch);
    const auto on = [epoch](double w, int after) { return epoch > after ? w : 0.0; };
    return {ce, on(rec, rec_after), on(expl, expl_after), on(ent, ent_after), on(spa, spa_after)};
  }
};

struct FlintOptions {
  FlintSchedule schedule{};
  /// f is fixed (pretrained): no gradient reaches it and the CE term is off; only Φ, d, h learn.
  bool post_hoc = false;
};

/// Every term of the loss on one batch, and their weighted sum.
template <Floating T>
struct FlintTerms {
  Tensor<T> ce, input_fidelity, output_fidelity, entropy, sparsity;
  Tensor<T> total;
};

template <Floating T>
class FlintLoss {
 public:
  explicit FlintLoss(FlintOptions options = {}) : o_(options) {
    const auto& s = o_.schedule;
    for (const double w : {s.ce, s.rec, s.expl, s.spa, s.ent})
      check(std::isfinite(w) && w >= 0, "FlintLoss", "schedule weights must be finite and >= 0, got ", w);
    weights_ = weights_at(1);
  }

  /// The trainer counts epochs from 0, the schedule from 1.
  void on_epoch(int epoch, int /*epochs*/) {
    check(epoch >= 0, "FlintLoss::on_epoch", "epochs are counted from 0, got ", epoch);
    weights_ = weights_at(epoch + 1);
  }

  /// The weights after post-hoc mode is applied, at `epoch` counted from 1.
  FlintWeights weights_at(int epoch) const {
    FlintWeights w = o_.schedule.at(epoch);
    if (o_.post_hoc) w.ce = 0;
    return w;
  }
  const FlintWeights& weights() const { return weights_; }

  template <class F, class Phi, class D>
  FlintTerms<T> terms(Flint<T, F, Phi, D>& model, const Batch<T>& batch) const {
    constexpr const char* op = "FlintLoss";
    detail::check_batch(batch, op);
    const auto out = model.forward_all(batch.x, o_.post_hoc, true);
    detail::check_labels(out.f_logits, batch.y, op);
    FlintTerms<T> t;
    t.ce = cross_entropy(out.f_logits, batch.y);
    t.input_fidelity = flint_input_fidelity_loss(out.reconstruction, batch.x);
    t.output_fidelity = flint_output_fidelity_loss(out.g_logits, out.f_logits);
    t.entropy = flint_entropy_loss(out.attributes);
    t.sparsity = flint_sparsity_loss(out.attributes);
    const FlintWeights& w = weights_;
    // Every term is added, weight 0 included, so the graph does not change shape with the epoch.
    t.total = add(add(add(add(mul(t.ce, T(w.ce)), mul(t.input_fidelity, T(w.rec))), mul(t.output_fidelity, T(w.expl))),
                      mul(t.entropy, T(w.ent))),
                  mul(t.sparsity, T(w.spa)));
    return t;
  }

  template <class F, class Phi, class D>
  Tensor<T> operator()(Flint<T, F, Phi, D>& model, const Batch<T>& batch) const {
    return terms(model, batch).total;
  }

  std::string name() const { return o_.post_hoc ? "flint_post_hoc" : "flint"; }
  nlohmann::ordered_json setting() const {
    const auto& s = o_.schedule;
    return {{"post_hoc", o_.post_hoc},
            {"ce", s.ce},
            {"rec", s.rec},
            {"rec_after", s.rec_after},
            {"expl", s.expl},
            {"expl_after", s.expl_after},
            {"spa", s.spa},
            {"spa_after", s.spa_after},
            {"ent", s.ent},
            {"ent_after", s.ent_after}};
  }
  const FlintOptions& options() const { return o_; }

 private:
  FlintOptions o_;
  FlintWeights weights_;
};

// ---------------------------------------------------------------------------------------------
// Metrics (flint.py: analyze, sparse_sense; utils.extract_attr_class_max)
// ---------------------------------------------------------------------------------------------

/// The τ at which the paper reports conciseness.
inline std::vector<double> flint_taus() { return {1.5, 2, 2.5, 3, 4, 5}; }

namespace detail {
template <Floating T>
IndexTensor predicted_classes(const Tensor<T>& logits) {
  NoGradGuard no_grad;
  return argmax(logits.detach(), 1);
}
}  // namespace detail

/// The fraction of rows whose argmax is the label.
template <Floating T>
double flint_accuracy(const Tensor<T>& logits, const IndexTensor& labels) {
  constexpr const char* op = "flint_accuracy";
  detail::check_rows(logits, "logits", op);
  check(labels.defined() && labels.dim() == 1 && labels.size(0) == logits.size(0), op, "labels ",
        labels.defined() ? labels.shape() : Shape{}, " do not give one label per row of the logits ", logits.shape());
  const auto pred = detail::predicted_classes(logits);
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < pred.numel(); ++i) right += pred.data()[i] == labels.data()[i];
  return static_cast<double>(right) / static_cast<double>(pred.numel());
}

/// Fidelity: the fraction of rows where the interpreter's class (argmax g) is f's (argmax f).
template <Floating T>
double flint_fidelity(const Tensor<T>& g_logits, const Tensor<T>& f_logits) {
  constexpr const char* op = "flint_fidelity";
  detail::check_rows(g_logits, "interpreter logits", op);
  check(f_logits.defined() && f_logits.shape() == g_logits.shape(), op, "predictor logits ",
        f_logits.defined() ? f_logits.shape() : Shape{}, " must have the interpreter logits' shape ",
        g_logits.shape());
  const auto g = detail::predicted_classes(g_logits), f = detail::predicted_classes(f_logits);
  std::int64_t agree = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) agree += g.data()[i] == f.data()[i];
  return static_cast<double>(agree) / static_cast<double>(g.numel());
}

/// r_j(x) = |Φ_j(x) · W_h[ŷ, j]| [N, J] for attributes [N, J], h's weight [C, J] and the class ŷ
/// [N] the interpreter predicts: how much attribute j pushes the interpreter's decision (no graph).
template <Floating T>
Tensor<T> flint_relevance(const Tensor<T>& attributes, const Tensor<T>& h_weight, const IndexTensor& predicted) {
  constexpr const char* op = "flint_relevance";
  detail::check_rows(attributes, "attributes", op);
  check(h_weight.defined() && h_weight.dim() == 2 && h_weight.size(1) == attributes.size(1), op, "h's weight ",
        h_weight.defined() ? h_weight.shape() : Shape{}, " must be [classes, ", attributes.size(1),
        "] for attributes ", attributes.shape());
  check(predicted.defined() && predicted.dim() == 1 && predicted.size(0) == attributes.size(0), op, "predictions ",
        predicted.defined() ? predicted.shape() : Shape{}, " do not give one class per row of the attributes ",
        attributes.shape());
  for (std::int64_t i = 0; i < predicted.numel(); ++i)
    check(predicted.data()[i] >= 0 && predicted.data()[i] < h_weight.size(0), op, "class ", predicted.data()[i],
          " of row ", i, " is out of range for h's weight ", h_weight.shape());
  NoGradGuard no_grad;
  return abs(mul(attributes.detach(), index_select(h_weight.detach(), 0, predicted)));
}

/// CNS(τ) = mean over rows of #{j : r_j > max_j r_j / τ} for relevances r [N, J], τ > 1: how many
/// attributes an explanation needs. A row of zeros counts 0.
template <Floating T>
double flint_conciseness(const Tensor<T>& relevance, double tau) {
  constexpr const char* op = "flint_conciseness";
  detail::check_rows(relevance, "relevances", op);
  check(std::isfinite(tau) && tau > 1, op, "tau must be > 1, got ", tau, " (relevances ", relevance.shape(), ")");
  const auto r = relevance.detach();
  const std::int64_t n = r.size(0), j = r.size(1);
  const T* v = r.data();
  std::int64_t counted = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    double top = 0;
    for (std::int64_t k = 0; k < j; ++k) top = std::max(top, static_cast<double>(v[i * j + k]));
    const double threshold = top / tau;
    for (std::int64_t k = 0; k < j; ++k) counted += static_cast<double>(v[i * j + k]) > threshold;
  }
  return static_cast<double>(counted) / static_cast<double>(n);
}

/// The global class–attribute relevance: row c is the mean, over the points the interpreter
/// predicts as c, of r / max_j r (each point's relevances scaled to a maximum of 1; a row of
/// zeros stays zeros); attribute j is relevant to class c when that mean exceeds the threshold.
struct ClassAttributeRelevance {
  std::int64_t classes = 0;
  std::int64_t attributes = 0;
  double threshold = 0.1;
  std::vector<double> mean;         ///< [classes × attributes], row-major; NaN for a class never predicted
  std::vector<std::int64_t> count;  ///< [classes]: points predicted as each class

  double at(std::int64_t c, std::int64_t j) const {
    check(c >= 0 && c < classes && j >= 0 && j < attributes, "ClassAttributeRelevance", "(", c, ", ", j,
          ") is outside [", classes, ", ", attributes, "]");
    return mean[static_cast<std::size_t>(c * attributes + j)];
  }
  bool relevant(std::int64_t c, std::int64_t j) const { return at(c, j) > threshold; }
  /// The attributes relevant to class c, in increasing order.
  std::vector<std::int64_t> relevant_attributes(std::int64_t c) const {
    std::vector<std::int64_t> out;
    for (std::int64_t j = 0; j < attributes; ++j)
      if (relevant(c, j)) out.push_back(j);
    return out;
  }
};

/// From relevances r [N, J] and the interpreter's classes [N] in [0, classes).
template <Floating T>
ClassAttributeRelevance flint_class_attribute_relevance(const Tensor<T>& relevance, const IndexTensor& predicted,
                                                        std::int64_t classes, double threshold = 0.1) {
  constexpr const char* op = "flint_class_attribute_relevance";
  detail::check_rows(relevance, "relevances", op);
  check(classes > 0, op, "classes must be > 0, got ", classes);
  check(predicted.defined() && predicted.dim() == 1 && predicted.size(0) == relevance.size(0), op, "predictions ",
        predicted.defined() ? predicted.shape() : Shape{}, " do not give one class per row of the relevances ",
        relevance.shape());
  const auto r = relevance.detach();
  const std::int64_t n = r.size(0), j = r.size(1);
  ClassAttributeRelevance out;
  out.classes = classes;
  out.attributes = j;
  out.threshold = threshold;
  out.mean.assign(static_cast<std::size_t>(classes * j), 0.0);
  out.count.assign(static_cast<std::size_t>(classes), 0);
  const T* v = r.data();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = predicted.data()[i];
    check(c >= 0 && c < classes, op, "class ", c, " of row ", i, " is out of range [0, ", classes,
          ") for relevances ", relevance.shape());
    double top = 0;
    for (std::int64_t k = 0; k < j; ++k) top = std::max(top, static_cast<double>(v[i * j + k]));
    ++out.count[static_cast<std::size_t>(c)];
    if (top > 0)
      for (std::int64_t k = 0; k < j; ++k) out.mean[static_cast<std::size_t>(c * j + k)] += v[i * j + k] / top;
  }
  for (std::int64_t c = 0; c < classes; ++c)
    for (std::int64_t k = 0; k < j; ++k) {
      auto& m = out.mean[static_cast<std::size_t>(c * j + k)];
      const auto cnt = out.count[static_cast<std::size_t>(c)];
      m = cnt > 0 ? m / static_cast<double>(cnt) : std::numeric_limits<double>::quiet_NaN();
    }
  return out;
}

/// What evaluate_flint measures on a data set.
struct FlintEvaluation {
  std::int64_t n = 0;
  double acc_f = 0;     ///< accuracy of f
  double acc_g = 0;     ///< accuracy of the interpreter g = h∘Φ
  double fidelity = 0;  ///< fraction of points where argmax g = argmax f
  std::vector<double> taus;
  std::vector<double> cns;  ///< CNS(τ) for each of taus
  ClassAttributeRelevance relevance;

  /// acc (f's, so Trainer's select_on "valid_acc" keeps its meaning), acc_g, fidelity and
  /// cns_tau_<τ> ("cns_tau_1.5", "cns_tau_2": the names of ../shared/RESULTS.md), each with `prefix`.
  Metrics metrics(const std::string& prefix = "") const {
    Metrics m;
    m.set(prefix + "acc", acc_f);
    m.set(prefix + "acc_g", acc_g);
    m.set(prefix + "fidelity", fidelity);
    for (std::size_t i = 0; i < taus.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "cns_tau_%g", taus[i]);
      m.set(prefix + name, cns[i]);
    }
    return m;
  }
};

/// The FLINT metrics of `model` on `data`, in batches under no-grad and in eval mode (restored after).
template <Floating T, class F, class Phi, class D>
FlintEvaluation evaluate_flint(Flint<T, F, Phi, D>& model, const data::Dataset<T>& data, std::int64_t batch_size = 512,
                               const std::vector<double>& taus = flint_taus(), double relevance_threshold = 0.1) {
  constexpr const char* op = "evaluate_flint";
  data.validate(op);
  check(data.size() > 0, op, "the data set is empty (inputs ", data.inputs.shape(), ")");
  check(batch_size > 0, op, "batch_size must be > 0, got ", batch_size);
  for (const double tau : taus) check(std::isfinite(tau) && tau > 1, op, "tau must be > 1, got ", tau);
  std::vector<Tensor<T>> f_parts, g_parts, attribute_parts;
  {
    const detail::TrainingModeRestore<T> restore(model);
    model.eval();
    NoGradGuard no_grad;
    const std::int64_t n = data.size();
    for (std::int64_t s = 0; s < n; s += batch_size) {
      const std::int64_t e = std::min(s + batch_size, n);
      auto out = model.forward_all(slice(data.inputs, 0, s, e, 1), false, false);
      f_parts.push_back(std::move(out.f_logits));
      g_parts.push_back(std::move(out.g_logits));
      attribute_parts.push_back(std::move(out.attributes));
    }
  }
  const auto f_logits = concat(f_parts, 0), g_logits = concat(g_parts, 0), attributes = concat(attribute_parts, 0);
  check(f_logits.size(1) == model.num_classes(), op, "f gives ", f_logits.size(1), " classes but h ",
        model.num_classes());
  detail::check_labels(f_logits, data.labels, op);
  FlintEvaluation ev;
  ev.n = data.size();
  ev.acc_f = flint_accuracy(f_logits, data.labels);
  ev.acc_g = flint_accuracy(g_logits, data.labels);
  ev.fidelity = flint_fidelity(g_logits, f_logits);
  const auto predicted = detail::predicted_classes(g_logits);
  const auto r = flint_relevance(attributes, model.h().weight, predicted);
  ev.taus = taus;
  for (const double tau : taus) ev.cns.push_back(flint_conciseness(r, tau));
  ev.relevance = flint_class_attribute_relevance(r, predicted, model.num_classes(), relevance_threshold);
  return ev;
}

}  // namespace metagrad::learn
