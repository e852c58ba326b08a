// SPDX-License-Identifier: MIT
// Simulation with explanations (SMaT, Fernandes et al. 2022): a fixed teacher T, a student S
// trained to reproduce T's predictions, and explanations as extra supervision. The roles hold any
// nn::Module; a Forward callable says how a module turns a batch into logits and explanation
// logits, so the same code serves the text Transformer and any other model (a ViT, a toy MLP).
//
// Explanations are carried as *logits* over positions with padding at -1e9: the distribution is
// their softmax, and the KL is taken from their log_softmax, which stays finite at padding where
// the log of the distribution itself is -inf (and its gradient NaN).
//
// The student loss: CE(S(x), argmax T(x)) + β · mean_b KL(E_T(x) ‖ E_S(x)), the entmax-jax
// softmax_loss of the authors' code. The student's explainer parameters are among its parameters
// and trained by the same step.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/autograd/grad_mode.hpp"
#include "metagrad/explain/attention.hpp"
#include "metagrad/explain/learned.hpp"
#include "metagrad/nn/functional_call.hpp"
#include "metagrad/nn/module.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/reduction.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/clip.hpp"
#include "metagrad/optim/sgd.hpp"

namespace metagrad::learn {

/// A model's answer on a batch: class logits [B, C] and explanation logits [B, S] (padding at -1e9).
template <Floating T>
struct Explained {
  Tensor<T> logits;
  Tensor<T> explanation;
};

/// mean_b Σ_t p_T[b, t] (log p_T[b, t] − log p_S[b, t]) with p = softmax of the explanation logits
/// [B, S]; differentiable in both.
template <Floating T>
Tensor<T> explanation_kl(const Tensor<T>& teacher_logits, const Tensor<T>& student_logits) {
  check(teacher_logits.dim() == 2 && teacher_logits.shape() == student_logits.shape(), "explanation_kl",
        "teacher explanation logits ", teacher_logits.shape(), " and student explanation logits ",
        student_logits.shape(), " must both be [B, S]");
  const auto log_teacher = log_softmax(teacher_logits, 1);
  const auto log_student = log_softmax(student_logits, 1);
  return div(sum(mul(exp(log_teacher), sub(log_teacher, log_student))), static_cast<T>(teacher_logits.size(0)));
}

/// CE(student logits, teacher_pred) + β · explanation_kl(teacher, student); with β = 0 the
/// explanations may be undefined.
template <Floating T>
Tensor<T> simulation_loss(const Explained<T>& student, const IndexTensor& teacher_pred,
                          const Tensor<T>& teacher_explanation, double beta) {
  const char* op = "simulation_loss";
  check(beta >= 0, op, "beta must be >= 0, got ", beta);
  check(student.logits.dim() == 2 && teacher_pred.dim() == 1 && teacher_pred.size(0) == student.logits.size(0), op,
        "student logits ", student.logits.shape(), " and teacher predictions ", teacher_pred.shape(),
        " must be [B, C] and [B]");
  const auto ce = cross_entropy(student.logits, teacher_pred);
  if (beta == 0) return ce;
  check(teacher_explanation.defined() && student.explanation.defined(), op,
        "beta = ", beta, " needs both the teacher's and the student's explanation");
  check(teacher_explanation.size(0) == student.logits.size(0), op, "teacher explanation ", teacher_explanation.shape(),
        " for student logits ", student.logits.shape());
  return add(ce, mul(explanation_kl(teacher_explanation, student.explanation), static_cast<T>(beta)));
}

/// The student: a model and its own explainer (both nn::Modules), run together by `forward`:
/// forward(model, explainer, batch) -> Explained<T>. parameters() lists the model's then the
/// explainer's, which is the order a functional call takes them in.
template <Floating T, class Model, class Explainer, class Forward>
class Student {
 public:
  Student(Model& model, Explainer& explainer, Forward forward)
      : model_(model), explainer_(explainer), forward_(std::move(forward)) {}

  std::vector<Tensor<T>> parameters() const {
    auto p = model_.parameters();
    const auto e = explainer_.parameters();
    p.insert(p.end(), e.begin(), e.end());
    return p;
  }

  /// With its own parameters.
  template <class Batch>
  Explained<T> operator()(const Batch& batch) {
    return forward_(model_, explainer_, batch);
  }
  /// With `params` (in parameters() order) in place of its own: the student after an unrolled step.
  template <class Batch>
  Explained<T> operator()(std::span<const Tensor<T>> params, const Batch& batch) {
    const std::size_t n_model = model_.parameters().size();
    check(params.size() == n_model + explainer_.parameters().size(), "Student", params.size(),
          " parameters given for a student with ", n_model, " model and ", explainer_.parameters().size(),
          " explainer parameters");
    ParameterOverride<T> model_params(model_, params.subspan(0, n_model));
    ParameterOverride<T> explainer_params(explainer_, params.subspan(n_model));
    return forward_(model_, explainer_, batch);
  }

  Model& model() { return model_; }
  Explainer& explainer() { return explainer_; }

 private:
  Model& model_;
  Explainer& explainer_;
  Forward forward_;
};

/// The teacher: a fixed model whose predictions the student simulates. forward(model, batch)
/// returns its logits.
template <Floating T, class Model, class Forward>
class Teacher {
 public:
  Teacher(Model& model, Forward forward) : model_(model), forward_(std::move(forward)) {}

  /// argmax of the logits, under no-grad in eval mode.
  template <class Batch>
  IndexTensor predict(const Batch& batch) {
    NoGradGuard no_grad;
    const bool was_training = model_.is_training();
    model_.eval();
    const Tensor<T> logits = forward_(model_, batch);
    model_.train(was_training);
    check(logits.dim() == 2, "Teacher", "the teacher must return logits [B, C], got ", logits.shape());
    return argmax(logits, 1);
  }

  Model& model() { return model_; }

 private:
  Model& model_;
  Forward forward_;
};

/// The usual SMaT pair for text: a TransformerEncoder and a LearnedAttentionExplainer over all its
/// heads, on a batch with `ids` [B, S] and `mask` [B, S] (data::TextDataset).
struct TransformerAttentionForward {
  template <Floating T, class Batch>
  Explained<T> operator()(nn::TransformerEncoder<T>& model, LearnedAttentionExplainer<T>& explainer,
                          const Batch& batch) const {
    auto out = model.forward(batch.ids, batch.mask);
    return {out.logits, explainer.explanation_logits(head_scores(out.attention_logits, batch.mask), batch.mask)};
  }
  template <Floating T, class Batch>
  Tensor<T> operator()(nn::TransformerEncoder<T>& model, const Batch& batch) const {
    return model.forward(batch.ids, batch.mask).logits;
  }
};

/// The student's real update: gradients of `loss` w.r.t. `params`, clipped to global norm
/// max_grad_norm (0: no clipping), then SGD with coupled weight decay — optax's
/// chain(clip_by_global_norm, add_decayed_weights, sgd) in the authors' code.
template <Floating T>
struct StudentSGD {
  StudentSGD(std::vector<Tensor<T>> params, double lr = 5e-3, double max_grad_norm = 5.0, double weight_decay = 0.01)
      : params_(params), max_grad_norm_(max_grad_norm), sgd_(std::move(params), {.lr = lr, .weight_decay = weight_decay}) {}

  void step(const Tensor<T>& loss) {
    sgd_.zero_grad();
    backward(loss);
    if (max_grad_norm_ > 0) clip_grad_norm_(params_, max_grad_norm_);
    sgd_.step();
    sgd_.zero_grad();
  }

 private:
  std::vector<Tensor<T>> params_;
  double max_grad_norm_;
  SGD<T> sgd_;
};

/// Fraction of `pred` equal to `reference` (the teacher's predictions): simulability.
inline double agreement(std::span<const std::int64_t> pred, std::span<const std::int64_t> reference) {
  check(pred.size() == reference.size() && !pred.empty(), "agreement", pred.size(), " predictions for ",
        reference.size(), " reference predictions (need the same, non-zero, number)");
  std::size_t same = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) same += pred[i] == reference[i] ? 1 : 0;
  return static_cast<double>(same) / static_cast<double>(pred.size());
}

/// argmax of `logits_of(batch)` over `data` (anything with size() and subset(rows)) in batches,
/// under no-grad.
template <class D, class LogitsOf>
std::vector<std::int64_t> predict_in_batches(const D& data, LogitsOf&& logits_of, std::int64_t batch_size = 256) {
  check(batch_size > 0, "predict_in_batches", "batch_size must be > 0, got ", batch_size);
  NoGradGuard no_grad;
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(data.size()));
  std::vector<std::int64_t> rows;
  for (std::int64_t s = 0; s < data.size(); s += batch_size) {
    rows.clear();
    for (std::int64_t i = s; i < std::min(s + batch_size, data.size()); ++i) rows.push_back(i);
    const auto p = argmax(logits_of(data.subset(rows)), 1);
    out.insert(out.end(), p.data(), p.data() + p.numel());
  }
  return out;
}

}  // namespace metagrad::learn
