// SPDX-License-Identifier: MIT
// The benchmark workloads, defined once and used by both bench_workloads (Google Benchmark) and
// metagrad_workloads (the timing runner compare_pytorch.py calls). Each workload names the tensors
// its step reads (parameters and data) and returns the tensors its step computes (gradients, a
// product, updated parameters): `metagrad_workloads --check FILE` saves both, and compare_pytorch.py
// runs its PyTorch version on the very same inputs and compares the outputs before it times
// anything, so the two sides are known to do the same maths.
#pragma once
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metagrad/autograd/engine.hpp"
#include "metagrad/functional/transforms.hpp"
#include "metagrad/core/creation.hpp"
#include "metagrad/io/safetensors.hpp"
#include "metagrad/learn/cdep.hpp"
#include "metagrad/learn/cdep_networks.hpp"
#include "metagrad/learn/flint_networks.hpp"
#include "metagrad/learn/ibp_ex.hpp"
#include "metagrad/learn/rrr.hpp"
#include "metagrad/learn/simulation.hpp"
#include "metagrad/learn/smat.hpp"
#include "metagrad/nn/sequential.hpp"
#include "metagrad/nn/transformer.hpp"
#include "metagrad/ops/conv.hpp"
#include "metagrad/ops/indexing.hpp"
#include "metagrad/ops/linalg.hpp"
#include "metagrad/ops/loss.hpp"
#include "metagrad/ops/pool.hpp"
#include "metagrad/ops/shape.hpp"
#include "metagrad/ops/softmax.hpp"
#include "metagrad/ops/unary.hpp"
#include "metagrad/optim/adam.hpp"
#include "meta_step.hpp"

namespace metagrad::bench {

using T = float;
using Outputs = NamedTensors<T>;

struct Workload {
  io::Checkpoint inputs;          ///< what one step reads, by the names compare_pytorch.py uses
  std::function<Outputs()> step;  ///< one step; returns what the check compares
};

/// PyTorch's default Linear init (uniform ±1/sqrt(fan_in)), as leaves that require grad.
inline Tensor<T> uniform_param(const Shape& shape, std::int64_t fan_in, Generator& gen) {
  const T bound = T(1) / std::sqrt(static_cast<T>(fan_in));
  return rand<T>(shape, gen, -bound, bound).requires_grad_();
}

inline std::vector<Tensor<T>> mlp_params() {
  Generator gen(0);
  const std::int64_t sizes[] = {784, 256, 256, 10};
  std::vector<Tensor<T>> params;
  for (int i = 0; i < 3; ++i) {
    params.push_back(uniform_param(Shape{sizes[i + 1], sizes[i]}, sizes[i], gen));
    params.push_back(uniform_param(Shape{sizes[i + 1]}, sizes[i], gen));
  }
  return params;
}

template <class Act>
Tensor<T> mlp_forward(const std::vector<Tensor<T>>& p, const Tensor<T>& x, Act act) {
  Tensor<T> h = x;
  for (std::size_t i = 0; i < 6; i += 2) {
    h = linear(h, p[i], p[i + 1]);
    if (i < 4) h = act(h);
  }
  return h;
}

/// sum_i <a_i, b_i>
inline Tensor<T> dot_all(const std::vector<Tensor<T>>& a, const std::vector<Tensor<T>>& b) {
  Tensor<T> acc = sum(mul(a[0], b[0]));
  for (std::size_t i = 1; i < a.size(); ++i) acc = add(acc, sum(mul(a[i], b[i])));
  return acc;
}

inline std::vector<Tensor<T>> random_like(const std::vector<Tensor<T>>& ps, Generator& gen) {
  std::vector<Tensor<T>> out;
  for (const auto& p : ps) out.push_back(randn<T>(p.shape(), gen));
  return out;
}

/// Inserts tensors as <prefix>0, <prefix>1, ...
inline void insert_numbered(io::Checkpoint& c, const std::string& prefix, const std::vector<Tensor<T>>& ts) {
  for (std::size_t i = 0; i < ts.size(); ++i) c.insert(prefix + std::to_string(i), ts[i]);
}
inline Outputs numbered(const std::string& prefix, const std::vector<Tensor<T>>& ts) {
  Outputs out;
  for (std::size_t i = 0; i < ts.size(); ++i) out.insert(prefix + std::to_string(i), ts[i]);
  return out;
}
/// Every parameter of a module under "p.<its name>": the PyTorch side looks them up by name.
inline void insert_parameters(io::Checkpoint& c, const nn::Module<T>& m) {
  for (const auto& [name, p] : m.named_parameters()) c.insert("p." + name, p);
}
inline Outputs parameter_grads(const nn::Module<T>& m, const std::vector<Tensor<T>>& grads) {
  Outputs out;
  std::size_t i = 0;
  for (const auto& [name, p] : m.named_parameters()) out.insert("grad." + name, grads[i++]);
  return out;
}

/// A batch of x ~ N(0, 1) [n, features...] and labels uniform in [0, classes), seed 1.
struct Data {
  Tensor<T> x;
  IndexTensor y;
};
inline Data random_batch(Shape shape, std::int64_t classes) {
  Generator gen(1);
  auto x = randn<T>(shape, gen);
  auto y = randint(0, classes, Shape{shape[0]}, gen);
  return {x, y};
}

inline Workload mlp_fwd_bwd() {
  auto params = mlp_params();
  const auto data = random_batch(Shape{128, 784}, 10);
  const auto x = data.x;
  const auto y = data.y;
  Workload w;
  insert_numbered(w.inputs, "p", params);
  w.inputs.insert("x", x);
  w.inputs.insert("y", y);
  w.step = [=] {
    auto loss = cross_entropy(mlp_forward(params, x, [](const Tensor<T>& h) { return relu(h); }), y);
    return numbered("grad", grad(loss, params));
  };
  return w;
}

/// H v forward-over-reverse (the hvp transform): the tangent the gradient at dual parameters
/// (p, v) carries. The same product as the reverse-over-reverse step of mlp_hvp / cnn_hvp (`loss`
/// is their loss), without recording the first backward pass or running a second.
template <class Loss>
Outputs hvp_forward_over_reverse(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& vs, Loss&& loss) {
  return numbered("hvp", hvp(loss, params, vs));
}

/// Hessian-vector product of the MLP's loss; forward_over_reverse picks hvp_forward_over_reverse.
template <class Act>
Workload mlp_hvp(Act act, bool forward_over_reverse = false) {
  auto params = mlp_params();
  const auto data = random_batch(Shape{128, 784}, 10);
  const auto x = data.x;
  const auto y = data.y;
  Generator gen(2);
  auto vs = random_like(params, gen);
  Workload w;
  insert_numbered(w.inputs, "p", params);
  insert_numbered(w.inputs, "v", vs);
  w.inputs.insert("x", x);
  w.inputs.insert("y", y);
  w.step = [=] {
    if (forward_over_reverse)
      return hvp_forward_over_reverse(params, vs, [&](const auto& ps) { return cross_entropy(mlp_forward(ps, x, act), y); });
    auto loss = cross_entropy(mlp_forward(params, x, act), y);
    auto grads = grad(loss, params, {.create_graph = true});
    return numbered("hvp", grad(dot_all(grads, vs), params));
  };
  return w;
}

/// One "right for the right reasons" step: CE + λ‖mask ⊙ ∂(Σ log softmax)/∂x‖², gradient to the parameters.
inline Workload rrr_step() {
  auto params = mlp_params();
  const auto data = random_batch(Shape{128, 784}, 10);
  const auto x = data.x;
  const auto y = data.y;
  auto mask = Tensor<T>::empty(Shape{128, 784});
  for (std::int64_t i = 0; i < mask.numel(); ++i) mask.fresh_data()[i] = (i % 784) % 28 < 5 ? T(1) : T(0);
  const T lambda = 10;
  Workload w;
  insert_numbered(w.inputs, "p", params);
  w.inputs.insert("x", x);
  w.inputs.insert("y", y);
  w.inputs.insert("mask", mask);
  w.step = [=] {
    auto xg = x.detach().requires_grad_();
    auto logits = mlp_forward(params, xg, [](const Tensor<T>& h) { return relu(h); });
    auto gx = grad(sum(log_softmax(logits, 1)), xg, {.create_graph = true});
    auto loss = add(cross_entropy(logits, y), mul(sum(square(mul(mask, gx))), lambda));
    return numbered("grad", grad(loss, params));
  };
  return w;
}

/// HVP of a small CNN: conv 5x5x16, pool, conv 5x5x32, pool, fc 10, on 1x28x28 inputs.
inline Workload cnn_hvp(std::int64_t batch = 64, bool forward_over_reverse = false) {
  Generator gen(0);
  std::vector<Tensor<T>> p = {uniform_param(Shape{16, 1, 5, 5}, 25, gen),  uniform_param(Shape{16}, 25, gen),
                              uniform_param(Shape{32, 16, 5, 5}, 400, gen), uniform_param(Shape{32}, 400, gen),
                              uniform_param(Shape{10, 512}, 512, gen),     uniform_param(Shape{10}, 512, gen)};
  const auto data = random_batch(Shape{batch, 1, 28, 28}, 10);
  const auto x = data.x;
  const auto y = data.y;
  Generator vgen(2);
  auto vs = random_like(p, vgen);
  Workload w;
  insert_numbered(w.inputs, "p", p);
  insert_numbered(w.inputs, "v", vs);
  w.inputs.insert("x", x);
  w.inputs.insert("y", y);
  auto loss_of = [=](const std::vector<Tensor<T>>& q) {
    auto h = max_pool2d(relu(conv2d(x, q[0], q[1])), 2);
    h = max_pool2d(relu(conv2d(h, q[2], q[3])), 2);
    return cross_entropy(linear(flatten(h, 1), q[4], q[5]), y);
  };
  w.step = [=] {
    if (forward_over_reverse) return hvp_forward_over_reverse(p, vs, loss_of);
    auto grads = grad(loss_of(p), p, {.create_graph = true});
    return numbered("hvp", grad(dot_all(grads, vs), p));
  };
  return w;
}

inline Workload gemm_1024() {
  Generator gen(0);
  auto a = randn<T>(Shape{1024, 1024}, gen), b = randn<T>(Shape{1024, 1024}, gen);
  Workload w;
  w.inputs.insert("a", a);
  w.inputs.insert("b", b);
  w.step = [=] { return Outputs{{"c", matmul(a, b)}}; };
  return w;
}

inline Workload meta_step(std::int64_t k) {
  auto problem = std::make_shared<MetaStep>(k);
  Workload w;
  insert_numbered(w.inputs, "student", problem->student);
  w.inputs.insert("phi", problem->phi);
  insert_numbered(w.inputs, "x", problem->xs);
  for (std::size_t i = 0; i < problem->ys.size(); ++i) w.inputs.insert("y" + std::to_string(i), problem->ys[i]);
  w.inputs.insert("x_val", problem->x_val);
  w.inputs.insert("y_val", problem->y_val);
  w.step = [problem] { return Outputs{{"grad_phi", problem->hypergradient()}}; };
  return w;
}

/// One FLINT training step as examples/06_flint runs it: the paper's batch of 16 MNIST-sized
/// images through f, Φ, d and h (learn/flint_networks.hpp), the four losses at their final-epoch
/// weights, backward and an Adam step (lr 1e-4) over every parameter. The modules are in eval
/// mode so both sides compute the same numbers (no dropout masks: ~2·10⁵ multiplies of a step's
/// ~10⁹ FLOP); the outputs are the gradients and the parameters after the step.
inline Workload flint_step() {
  Generator gen(0);
  auto model = learn::flint_mnist<T>(gen);
  model->eval();
  auto optimizer = std::make_shared<Adam<T>>(model->parameters(), AdamOptions{.lr = 1e-4});
  auto loss = std::make_shared<learn::FlintLoss<T>>();
  loss->on_epoch(11, 12);  // epoch 12 of 12: every term on
  Generator data(1);
  const learn::Batch<T> batch{rand<T>(Shape{16, 1, 28, 28}, data), randint(0, 10, Shape{16}, data), {}, {}};
  Workload w;
  insert_parameters(w.inputs, *model);
  w.inputs.insert("x", batch.x);
  w.inputs.insert("y", batch.y);
  w.step = [=] {
    optimizer->zero_grad();
    backward((*loss)(*model, batch));
    Outputs out;
    for (const auto& [name, p] : model->named_parameters()) out.insert("grad." + name, clone(p.grad()));
    optimizer->step();
    for (const auto& [name, p] : model->named_parameters()) out.insert("updated." + name, p);
    return out;
  };
  return w;
}

/// CDEP's MNIST LeNet (learn/cdep_networks.hpp; hidden 256): the CNN of the CDEP and robustness steps.
inline std::shared_ptr<nn::Sequential<T>> lenet(Generator& gen) { return learn::cdep_lenet<T>(gen); }

/// A batch of n digits-sized images with CDEP-DecoyMNIST's mask: the four 5×5 corners.
inline learn::Batch<T> cornered_batch(std::int64_t n = 64) {
  const auto data = random_batch(Shape{n, 1, 28, 28}, 10);
  auto mask = zeros<T>(Shape{n, 1, 28, 28});
  T* m = mask.fresh_data();
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t i = 0; i < 28; ++i)
      for (std::int64_t j = 0; j < 28; ++j)
        if ((i < 5 || i >= 23) && (j < 5 || j >= 23)) m[k * 784 + i * 28 + j] = T(1);
  return {data.x, data.y, mask, {}};
}

/// A loss of learn/ (Rrr, IbpEx) on the LeNet: its value's gradient w.r.t. every parameter.
template <class Loss>
Workload lenet_loss_step(Loss loss) {
  Generator gen(0);
  auto net = lenet(gen);
  const auto batch = cornered_batch();
  Workload w;
  insert_parameters(w.inputs, *net);
  w.inputs.insert("x", batch.x);
  w.inputs.insert("y", batch.y);
  w.inputs.insert("mask", batch.mask);
  w.step = [=] { return parameter_grads(*net, grad(loss(*net, batch), net->parameters())); };
  return w;
}

/// The SMaT-sized Transformer: 2 layers, 4 heads, d = 64, d_ff = 256, 256 tokens (vocabulary
/// 5,000), post-LN, GELU, masked mean pool, 2 classes; a batch of 32 sequences whose lengths run
/// from 64 to 256 (the rest is padding).
struct TransformerBatch {
  std::shared_ptr<nn::TransformerEncoder<T>> model;
  IndexTensor tokens;
  Tensor<T> mask;
  IndexTensor y;
};
inline TransformerBatch transformer_batch() {
  Generator gen(0);
  nn::TransformerConfig config{.vocab_size = 5000, .max_len = 256, .d_model = 64, .num_heads = 4, .d_ff = 256,
                               .num_layers = 2, .num_classes = 2};
  TransformerBatch b{std::make_shared<nn::TransformerEncoder<T>>(config, gen), {}, {}, {}};
  Generator data(1);
  b.tokens = randint(1, 5000, Shape{32, 256}, data);
  b.y = randint(0, 2, Shape{32}, data);
  b.mask = zeros<T>(Shape{32, 256});
  T* m = b.mask.fresh_data();
  for (std::int64_t i = 0; i < 32; ++i) {
    const std::int64_t length = 64 + (i * 192) / 31;
    for (std::int64_t j = 0; j < length; ++j) m[i * 256 + j] = T(1);
  }
  return b;
}
inline void insert_transformer_batch(io::Checkpoint& c, const TransformerBatch& b) {
  insert_parameters(c, *b.model);
  c.insert("tokens", b.tokens);
  c.insert("mask", b.mask);
  c.insert("y", b.y);
}

/// Forward and backward of the Transformer's cross entropy.
inline Workload transformer_fwd_bwd() {
  const auto b = transformer_batch();
  Workload w;
  insert_transformer_batch(w.inputs, b);
  w.step = [=] {
    const auto loss = cross_entropy(b.model->forward(b.tokens, b.mask).logits, b.y);
    return parameter_grads(*b.model, grad(loss, b.model->parameters()));
  };
  return w;
}

/// CE + 0.1·‖∂(Σ log p_y)/∂e‖² over the input embeddings e (the gradient explainers' quantity, as
/// a penalty): a double backward through the whole Transformer; gradient w.r.t. every parameter.
inline Workload transformer_embedding_penalty() {
  const auto b = transformer_batch();
  Workload w;
  insert_transformer_batch(w.inputs, b);
  w.step = [=] {
    const auto embeddings = b.model->tok->forward(b.tokens);
    const auto logits = b.model->forward_embeddings(embeddings, b.mask).logits;
    const auto log_p = log_softmax(logits, 1);
    const auto target = sum(gather(log_p, 1, reshape(b.y, Shape{32, 1})));
    const auto g = grad(target, embeddings, {.create_graph = true});
    const auto loss = add(cross_entropy(logits, b.y), mul(sum(square(g)), T(0.1)));
    return parameter_grads(*b.model, grad(loss, b.model->parameters()));
  };
  return w;
}

/// CDEP (learn::Cdep, λ = 1000) on the LeNet: CE + λ·the CD share of 8 single-pixel blobs
/// (ColorMNIST's blobs per batch), all 8 × 32 rows through CD in one batch; gradient w.r.t. every
/// parameter. 32 images, not CDEP's 256, to keep a timed round short.
inline Workload cdep_step() {
  Generator gen(0);
  auto net = lenet(gen);
  const auto batch = cornered_batch(32);
  auto blobs = zeros<T>(Shape{8, 1, 1, 28, 28});
  Generator pick(2);
  const auto pixels = randint(0, 784, Shape{8}, pick);
  T* blob = blobs.fresh_data();
  for (std::int64_t b = 0; b < 8; ++b) blob[b * 784 + pixels.data()[b]] = T(1);
  const learn::Cdep<T> loss({.lambda = 1000}, [blobs](const learn::Batch<T>&) { return blobs; });
  Workload w;
  insert_parameters(w.inputs, *net);
  w.inputs.insert("x", batch.x);
  w.inputs.insert("y", batch.y);
  w.inputs.insert("blobs", blobs);
  w.step = [=] { return parameter_grads(*net, grad(loss(*net, batch), net->parameters())); };
  return w;
}

/// One SMaT meta step (learn::smat_meta_gradient, K = 1, the paper's settings: β = 5, SGD 5e-3,
/// clip 5, weight decay 0.01) on the Transformer student of transformer_batch with its own
/// learned attention explainer: the student's clipped SGD step on a training batch with the
/// teacher's explanation λ_T = sparsemax(φ_T) over fixed teacher head scores, then the simulation
/// CE on a validation batch, differentiated w.r.t. φ_T (through ∇_θ of the student loss: second
/// order). Returns d outer / d φ_T and the student's update.
struct SmatBatch {
  IndexTensor ids;
  Tensor<T> mask;
  IndexTensor labels;
};
inline Workload smat_meta_step() {
  auto student = transformer_batch();
  auto explainer = std::make_shared<LearnedAttentionExplainer<T>>(2, 4);
  auto teacher_explainer = std::make_shared<LearnedAttentionExplainer<T>>(2, 4);
  Generator gen(3);
  {  // φ off the uniform start, so sparsemax has a non-trivial support on both sides
    NoGradGuard no_grad;
    std::copy_n(rand<T>(Shape{8}, gen, T(0), T(0.3)).data(), 8, explainer->head_logits.mutable_data());
    std::copy_n(rand<T>(Shape{8}, gen, T(0), T(0.3)).data(), 8, teacher_explainer->head_logits.mutable_data());
  }
  const SmatBatch train{student.tokens, student.mask, student.y};
  Generator data(4);
  const SmatBatch valid{randint(1, 5000, Shape{32, 256}, data), student.mask, randint(0, 2, Shape{32}, data)};
  const auto teacher_scores = randn<T>(Shape{32, 8, 256}, gen);
  using Pair = learn::Student<T, nn::TransformerEncoder<T>, LearnedAttentionExplainer<T>, learn::TransformerAttentionForward>;
  auto pair = std::make_shared<Pair>(*student.model, *explainer, learn::TransformerAttentionForward{});
  Workload w;
  insert_parameters(w.inputs, *student.model);
  w.inputs.insert("student_phi", explainer->head_logits);
  w.inputs.insert("teacher_phi", teacher_explainer->head_logits);
  w.inputs.insert("teacher_scores", teacher_scores);
  w.inputs.insert("tokens", train.ids);
  w.inputs.insert("mask", train.mask);
  w.inputs.insert("y", train.labels);
  w.inputs.insert("valid_tokens", valid.ids);
  w.inputs.insert("valid_y", valid.labels);
  w.step = [=, model = student.model, explainer = explainer] {  // the pair refers to both
    const std::vector<SmatBatch> batches{train};
    const auto step = learn::smat_meta_gradient<T>(
        *pair, std::span<const SmatBatch>(batches),
        [&](std::int64_t) { return teacher_explainer->explanation_logits(teacher_scores, train.mask); }, valid,
        {teacher_explainer->head_logits}, learn::SmatOptions{});
    Outputs out;
    out.insert("meta_grad", step.meta_grads[0]);
    // The student's parameters in Student::parameters() order: the model's, then its explainer's.
    std::size_t i = 0;
    for (const auto& [name, p] : model->named_parameters()) out.insert("update." + name, sub(step.first_step[i++], p));
    out.insert("update.student_phi", sub(step.first_step[i], explainer->head_logits));
    return out;
  };
  return w;
}

/// Every workload by name.
inline std::map<std::string, std::function<Workload()>> workloads() {
  return {
      {"mlp_fwd_bwd", [] { return mlp_fwd_bwd(); }},
      {"mlp_hvp_relu", [] { return mlp_hvp([](const Tensor<T>& h) { return relu(h); }); }},
      {"mlp_hvp_softplus", [] { return mlp_hvp([](const Tensor<T>& h) { return softplus(h); }); }},
      {"rrr_step", [] { return rrr_step(); }},
      {"cnn_hvp", [] { return cnn_hvp(); }},
      // The same products forward-over-reverse (compare_pytorch.py: PyTorch's double backward).
      {"mlp_hvp_relu_fwd", [] { return mlp_hvp([](const Tensor<T>& h) { return relu(h); }, true); }},
      {"mlp_hvp_softplus_fwd", [] { return mlp_hvp([](const Tensor<T>& h) { return softplus(h); }, true); }},
      {"cnn_hvp_fwd", [] { return cnn_hvp(64, true); }},
      {"gemm_1024", [] { return gemm_1024(); }},
      {"meta_step_k1", [] { return meta_step(1); }},
      {"meta_step_k5", [] { return meta_step(5); }},
      {"meta_step_k20", [] { return meta_step(20); }},
      {"flint_step", [] { return flint_step(); }},
      {"cnn_rrr_step", [] { return lenet_loss_step(learn::Rrr<T>({.lambda = 10, .form = learn::RrrForm::Ross})); }},
      {"cnn_ibp_ex_step",
       [] { return lenet_loss_step(learn::IbpEx<T>({.eps_start = 1, .eps_max = 1, .alpha0 = 0.5})); }},
      {"transformer_fwd_bwd", [] { return transformer_fwd_bwd(); }},
      {"transformer_embedding_penalty", [] { return transformer_embedding_penalty(); }},
      {"cdep_step", [] { return cdep_step(); }},
      {"smat_meta_step", [] { return smat_meta_step(); }},
  };
}

inline double flops(const std::string& name) { return name == "gemm_1024" ? 2.0 * 1024 * 1024 * 1024 : 0.0; }

}  // namespace metagrad::bench
