#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Times the same workloads in metagrad and in PyTorch on this machine, in one run, alternating,
and prints metagrad/PyTorch time ratios (below 1.0: metagrad is faster).

The peer is kept at its best: PyTorch must use an optimized BLAS (Debian: libopenblas0-openmp),
OPENBLAS_CORETYPE is removed from the environment, both sides get the same thread count and the
same glibc allocator settings (no trimming or mmap of large blocks, which otherwise make timings
swing), and the BLAS library PyTorch actually loaded is printed with the results. Each row also
gives the memory the steps needed on each side: the growth of the peak resident set over the
warm-up and timed steps, measured in a fresh process per side (metagrad_workloads and a child
of this script), since a process keeps the pages an earlier workload touched.

    benchmarks/compare_pytorch.py --runner build/benchmarks/metagrad_workloads [--threads 1,2]
        [--rounds 5] [--json FILE] [--device cpu|cuda] [--workloads a,b,...]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ALLOCATOR_ENV = {"MALLOC_TRIM_THRESHOLD_": "17179869184", "MALLOC_MMAP_THRESHOLD_": "17179869184",
                 "MALLOC_TOP_PAD_": "268435456"}


def reexec_with_controlled_env():
    """Restarts this script once with the allocator settings and without OPENBLAS_CORETYPE."""
    if os.environ.get("METAGRAD_COMPARE_ENV") == "1":
        return
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.update(ALLOCATOR_ENV)
    env["METAGRAD_COMPARE_ENV"] = "1"
    os.execve(torch_interpreter(), [torch_interpreter()] + sys.argv, env)


def torch_interpreter():
    """This interpreter if it can import torch, else Debian's /usr/bin/python3 (python3-torch)."""
    import importlib.util
    if importlib.util.find_spec("torch") is not None or not os.path.exists("/usr/bin/python3"):
        return sys.executable
    return "/usr/bin/python3"


reexec_with_controlled_env()

import torch  # noqa: E402  (imported after the environment is fixed)
import torch.nn.functional as F  # noqa: E402


# ---------------------------------------------------------------- PyTorch workloads
# Each builder takes the inputs metagrad saved (`metagrad_workloads --check`: parameters and data by
# name) and returns a step function that returns the outputs by metagrad's names; the maths mirrors
# benchmarks/workloads.hpp, and check() compares the two before anything is timed.

def leaves(t, names):
    """The named inputs as fresh leaves that require grad (the parameters a step differentiates)."""
    return [t[n].detach().clone().requires_grad_() for n in names]


def numbered(prefix, tensors):
    return {f"{prefix}{i}": x for i, x in enumerate(tensors)}


def mlp_forward(params, x, act):
    h = x
    for i in range(0, 6, 2):
        h = F.linear(h, params[i], params[i + 1])
        if i < 4:
            h = act(h)
    return h


def workload_mlp_fwd_bwd(t):
    p = leaves(t, [f"p{i}" for i in range(6)])

    def step():
        loss = F.cross_entropy(mlp_forward(p, t["x"], F.relu), t["y"])
        return numbered("grad", torch.autograd.grad(loss, p))
    return step


def make_mlp_hvp(act):
    def build(t):
        p = leaves(t, [f"p{i}" for i in range(6)])
        vs = [t[f"v{i}"] for i in range(6)]

        def step():
            loss = F.cross_entropy(mlp_forward(p, t["x"], act), t["y"])
            grads = torch.autograd.grad(loss, p, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vs))
            return numbered("hvp", torch.autograd.grad(dot, p))
        return step
    return build


def workload_rrr_step(t):
    p = leaves(t, [f"p{i}" for i in range(6)])
    x, y, mask = t["x"], t["y"], t["mask"]

    def step():
        xg = x.detach().requires_grad_()
        logits = mlp_forward(p, xg, F.relu)
        (gx,) = torch.autograd.grad(F.log_softmax(logits, dim=1).sum(), xg, create_graph=True)
        loss = F.cross_entropy(logits, y) + 10.0 * ((mask * gx) ** 2).sum()
        return numbered("grad", torch.autograd.grad(loss, p))
    return step


def workload_cnn_hvp(t):
    p = leaves(t, [f"p{i}" for i in range(6)])
    vs = [t[f"v{i}"] for i in range(6)]
    x, y = t["x"], t["y"]

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3])), 2)
        loss = F.cross_entropy(F.linear(h.flatten(1), p[4], p[5]), y)
        grads = torch.autograd.grad(loss, p, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(grads, vs))
        return numbered("hvp", torch.autograd.grad(dot, p))
    return step


def workload_gemm_1024(t):
    a, b = t["a"], t["b"]
    return lambda: {"c": a @ b}


def make_meta_step(k):
    """Mirrors benchmarks/meta_step.hpp: d outer / d phi through k inner SGD steps of a 784-128-10
    student whose inner loss sees the inputs weighted per feature by w = 784 * softmax(phi)."""
    def build(t):
        student = [t[f"student{i}"] for i in range(4)]
        (phi,) = leaves(t, ["phi"])
        xs = [t[f"x{i}"] for i in range(k)]
        ys = [t[f"y{i}"] for i in range(k)]

        def logits(p, x):
            return F.linear(F.relu(F.linear(x, p[0], p[1])), p[2], p[3])

        def step():
            w = F.softmax(phi, 0) * 784
            p = [s.detach().requires_grad_() for s in student]
            for i in range(k):
                grads = torch.autograd.grad(F.cross_entropy(logits(p, xs[i] * w), ys[i]), p, create_graph=True)
                p = [pi - 0.1 * gi for pi, gi in zip(p, grads)]
            (g,) = torch.autograd.grad(F.cross_entropy(logits(p, t["x_val"]), t["y_val"]), phi)
            return {"grad_phi": g}
        return step
    return build


def named_leaves(t):
    """The inputs "p.<name>" as a dict name -> leaf that requires grad, in metagrad's order."""
    return {n[2:]: x.detach().clone().requires_grad_() for n, x in t.items() if n.startswith("p.")}


def workload_flint_step(t):
    """flint_step of workloads.hpp: FLINT's networks.py f, Phi, d, h (eval mode: no dropout), the
    four losses at epoch 12 (CE + 0.8 L_if + 0.5 L_of + 0.2 L_ent + 0.1 L_spa), backward, Adam 1e-4."""
    P = named_leaves(t)
    opt = torch.optim.Adam(list(P.values()), lr=1e-4)
    x, y = t["x"], t["y"]
    up = dict(stride=2, padding=1, output_padding=1)

    def entropy(v):
        return -(F.softmax(v, 1) * F.log_softmax(v, 1)).sum(1)

    def step():
        h = F.relu(F.conv2d(x, P["f.body.0.weight"], P["f.body.0.bias"], padding=1))
        hidden = F.relu(F.max_pool2d(F.conv2d(h, P["f.body.2.weight"], P["f.body.2.bias"], padding=1), 2))
        f_logits = F.linear(F.relu(F.linear(hidden.flatten(1), P["f.head.1.weight"], P["f.head.1.bias"])),
                            P["f.head.4.weight"], P["f.head.4.bias"])
        a = F.leaky_relu(F.conv2d(hidden, P["phi.0.weight"], P["phi.0.bias"], padding=1))
        attributes = F.leaky_relu(F.linear(F.adaptive_avg_pool2d(a, 3).flatten(1), P["phi.4.weight"], P["phi.4.bias"]))
        r = F.linear(attributes, P["d.0.weight"], P["d.0.bias"]).reshape(-1, 2, 7, 7)
        r = F.relu(F.conv_transpose2d(r, P["d.2.weight"], P["d.2.bias"], **up))
        r = F.relu(F.conv_transpose2d(r, P["d.4.weight"], P["d.4.bias"], **up))
        g_logits = F.linear(attributes, P["h.weight"], P["h.bias"])
        magnitude = attributes.abs()
        loss = (F.cross_entropy(f_logits, y) + 0.8 * F.mse_loss(r, x)
                + 0.5 * F.cross_entropy(g_logits, F.softmax(f_logits.detach(), 1))
                + 0.2 * (entropy(magnitude).mean() - entropy(magnitude.mean(0, keepdim=True)).sum())
                + 0.1 * magnitude.mean())
        opt.zero_grad()
        loss.backward()
        out = {f"grad.{n}": p.grad.clone() for n, p in P.items()}
        opt.step()
        out.update({f"updated.{n}": p for n, p in P.items()})
        return out
    return step


def lenet(P, x):
    """CDEP's MNIST LeNet of workloads.hpp (nn::Sequential: layers 0 and 3 conv, 7 and 9 fc)."""
    h = F.max_pool2d(F.relu(F.conv2d(x, P["0.weight"], P["0.bias"])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, P["3.weight"], P["3.bias"])), 2)
    return F.linear(F.relu(F.linear(h.flatten(1), P["7.weight"], P["7.bias"])), P["9.weight"], P["9.bias"])


def workload_cnn_rrr_step(t):
    """learn::Rrr, Ross form, lambda 10: CE + 10 * sum((mask * d(sum log p)/dx)^2)."""
    P = named_leaves(t)
    x, y, mask = t["x"], t["y"], t["mask"]

    def step():
        xg = x.detach().requires_grad_()
        logits = lenet(P, xg)
        (gx,) = torch.autograd.grad(F.log_softmax(logits, 1).sum(), xg, create_graph=True)
        loss = F.cross_entropy(logits, y) + 10.0 * ((gx * mask) ** 2).sum()
        grads = torch.autograd.grad(loss, list(P.values()))
        return {f"grad.{n}": g for n, g in zip(P, grads)}
    return step


def workload_cnn_ibp_ex_step(t):
    """learn::IbpEx at eps 1, alpha 0.5: 0.5 CE(f(x)) + 0.5 CE(worst-case logits over [x - m, x + m])."""
    P = named_leaves(t)
    x, y, mask = t["x"], t["y"], t["mask"]

    def affine(lo, hi, op, w, b):
        c, r = (hi + lo) / 2, (hi - lo) / 2
        c, r = op(c, w, b), op(r, w.abs(), None)
        return c - r, c + r

    def bounds(lo, hi):
        lo, hi = affine(lo, hi, F.conv2d, P["0.weight"], P["0.bias"])
        lo, hi = F.max_pool2d(F.relu(lo), 2), F.max_pool2d(F.relu(hi), 2)
        lo, hi = affine(lo, hi, F.conv2d, P["3.weight"], P["3.bias"])
        lo, hi = F.max_pool2d(F.relu(lo), 2).flatten(1), F.max_pool2d(F.relu(hi), 2).flatten(1)
        lo, hi = affine(lo, hi, F.linear, P["7.weight"], P["7.bias"])
        return affine(F.relu(lo), F.relu(hi), F.linear, P["9.weight"], P["9.bias"])

    def step():
        lo, hi = bounds(x - mask, x + mask)
        true = F.one_hot(y, 10).bool()
        worst = torch.where(true, lo, hi)
        loss = 0.5 * F.cross_entropy(lenet(P, x), y) + 0.5 * F.cross_entropy(worst, y)
        grads = torch.autograd.grad(loss, list(P.values()))
        return {f"grad.{n}": g for n, g in zip(P, grads)}
    return step


def transformer(P, e, mask):
    """nn::TransformerEncoder of workloads.hpp from the input embeddings e [B, S, 64]: learned
    positions, 2 post-LN layers (4 heads, GELU feed-forward 256), masked mean pool, linear head."""
    return transformer_with_attention(P, e, mask)[0]


def transformer_with_attention(P, e, mask):
    """transformer() and its attention logits per layer, [B, H, S, S] before the padding bias."""
    b, s, d = e.shape
    attention = []
    heads, dh = 4, d // 4
    bias = ((mask - 1) * 1e9).reshape(b, 1, 1, s)
    h = e + P["pos.weight"][:s]

    def split(z):
        return z.reshape(b, s, heads, dh).permute(0, 2, 1, 3)
    for i in range(2):
        L = lambda n: P[f"layers.{i}.{n}"]  # noqa: E731
        q = split(F.linear(h, L("attn.q.weight"), L("attn.q.bias")) * (1 / dh ** 0.5))
        k = split(F.linear(h, L("attn.k.weight"), L("attn.k.bias")))
        v = split(F.linear(h, L("attn.v.weight"), L("attn.v.bias")))
        logits = q @ k.transpose(-1, -2)
        attention.append(logits)
        weights = F.softmax(logits + bias, -1)
        context = (weights @ v).permute(0, 2, 1, 3).reshape(b, s, d)
        a = F.linear(context, L("attn.o.weight"), L("attn.o.bias"))
        h = F.layer_norm(h + a, (d,), L("ln1.weight"), L("ln1.bias"))
        ff = F.linear(F.gelu(F.linear(h, L("ff1.weight"), L("ff1.bias"))), L("ff2.weight"), L("ff2.bias"))
        h = F.layer_norm(h + ff, (d,), L("ln2.weight"), L("ln2.bias"))
    pooled = (h * mask.reshape(b, s, 1)).sum(1) / mask.sum(1, keepdim=True)
    return F.linear(pooled, P["head.weight"], P["head.bias"]), attention


def workload_transformer_fwd_bwd(t):
    P = named_leaves(t)

    def step():
        logits = transformer(P, F.embedding(t["tokens"], P["tok.weight"]), t["mask"])
        grads = torch.autograd.grad(F.cross_entropy(logits, t["y"]), list(P.values()))
        return {f"grad.{n}": g for n, g in zip(P, grads)}
    return step


def workload_transformer_embedding_penalty(t):
    """CE + 0.1 * ||d(sum log p_y)/de||^2 over the input embeddings e: a double backward."""
    P = named_leaves(t)
    y = t["y"]

    def step():
        e = F.embedding(t["tokens"], P["tok.weight"])
        logits = transformer(P, e, t["mask"])
        target = F.log_softmax(logits, 1).gather(1, y.reshape(-1, 1)).sum()
        (g,) = torch.autograd.grad(target, e, create_graph=True)
        loss = F.cross_entropy(logits, y) + 0.1 * (g ** 2).sum()
        grads = torch.autograd.grad(loss, list(P.values()))
        return {f"grad.{n}": g for n, g in zip(P, grads)}
    return step


def cd_lenet(P, rel, irrel):
    """Contextual decomposition (explain/cd.hpp) through lenet(): the bias of each affine layer split
    in the ratio |W rel| : |W irrel|, ReLU giving rel what it explains alone, max-pool following the
    winners of rel + irrel."""
    eps = 1e-20

    def affine(rel, irrel, op, name, bias_shape):
        r, i = op(rel, P[name + ".weight"]), op(irrel, P[name + ".weight"])
        b = P[name + ".bias"].reshape(bias_shape)
        rel_bias = b * (r.abs() + eps) / (r.abs() + i.abs() + 2 * eps)
        return r + rel_bias, i + (b - rel_bias)

    def relu(rel, irrel):
        r = F.relu(rel)
        return r, F.relu(rel + irrel) - r

    def pool(rel, irrel):
        _, idx = F.max_pool2d((rel + irrel).detach(), 2, return_indices=True)
        return tuple(z.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape) for z in (rel, irrel))

    rel, irrel = pool(*relu(*affine(rel, irrel, F.conv2d, "0", (-1, 1, 1))))
    rel, irrel = pool(*relu(*affine(rel, irrel, F.conv2d, "3", (-1, 1, 1))))
    rel, irrel = relu(*affine(rel.flatten(1), irrel.flatten(1), F.linear, "7", (-1,)))
    return affine(rel, irrel, F.linear, "9", (-1,))


def workload_cdep_step(t):
    """learn::Cdep at lambda 1000: CE + 1000 * sum over blobs of mean_{n,c} sigmoid(rel - irrel)."""
    P = named_leaves(t)
    x, y, blobs = t["x"], t["y"], t["blobs"]
    n_blobs, n = blobs.shape[0], x.shape[0]
    xs = x.unsqueeze(0).expand(n_blobs, *x.shape).reshape(n_blobs * n, *x.shape[1:])
    ms = blobs.expand(n_blobs, n, *blobs.shape[2:]).reshape(n_blobs * n, *blobs.shape[2:])

    def step():
        rel, irrel = cd_lenet(P, xs * ms, xs * (1 - ms))
        penalty = torch.sigmoid(rel - irrel).sum() / (n * rel.shape[1])
        loss = F.cross_entropy(lenet(P, x), y) + 1000.0 * penalty
        grads = torch.autograd.grad(loss, list(P.values()))
        return {f"grad.{n}": g for n, g in zip(P, grads)}
    return step


def sparsemax(z):
    """Euclidean projection of a vector onto the simplex (Martins & Astudillo 2016)."""
    zs, _ = torch.sort(z, descending=True)
    k = torch.arange(1, z.numel() + 1, dtype=z.dtype)
    cumulative = zs.cumsum(0)
    support = int((1 + k * zs > cumulative).sum())
    tau = (cumulative[support - 1] - 1) / support
    return torch.clamp(z - tau, min=0)


def workload_smat_meta_step(t):
    """smat_meta_step of workloads.hpp: the student's clipped, weight-decayed SGD step on
    CE + 5 KL(E_T || E_S) kept on the graph, then d CE(student', valid) / d phi_T."""
    theta = {n[2:]: x for n, x in t.items() if n.startswith("p.")}
    theta["student_phi"] = t["student_phi"]
    phi_t = t["teacher_phi"].detach().clone().requires_grad_()
    mask, scores = t["mask"], t["teacher_scores"]
    b, s = mask.shape

    def explanation_logits(head_scores, phi):
        z = (head_scores * sparsemax(phi).reshape(1, -1, 1)).sum(1)
        return z + (mask - 1) * 1e9

    def student(P, tokens):
        logits, attention = transformer_with_attention(P, F.embedding(tokens, P["tok.weight"]), mask)
        m = mask.reshape(b, 1, s, 1)
        head_scores = torch.cat([(a * m).sum(2) / m.sum(2) for a in attention], 1)
        return logits, explanation_logits(head_scores, P["student_phi"])

    def step():
        P = {n: x.detach().requires_grad_() for n, x in theta.items()}
        logits, student_explanation = student(P, t["tokens"])
        log_t = F.log_softmax(explanation_logits(scores, phi_t), 1)
        log_s = F.log_softmax(student_explanation, 1)
        loss = F.cross_entropy(logits, t["y"]) + 5.0 * (log_t.exp() * (log_t - log_s)).sum() / b
        grads = torch.autograd.grad(loss, list(P.values()), create_graph=True)
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        if 5.0 / (norm.item() + 1e-6) < 1.0:  # clip_grad_norm: scale only when the norm is over 5
            grads = [g * (5.0 / (norm + 1e-6)) for g in grads]
        stepped = {n: p - 5e-3 * (g + 0.01 * p) for (n, p), g in zip(P.items(), grads)}
        outer = F.cross_entropy(student(stepped, t["valid_tokens"])[0], t["valid_y"])
        (meta_grad,) = torch.autograd.grad(outer, phi_t)
        out = {"meta_grad": meta_grad}
        out.update({f"update.{n}": (stepped[n] - P[n]).detach() for n in P})
        return out
    return step


WORKLOADS = {
    "mlp_fwd_bwd": workload_mlp_fwd_bwd,
    "mlp_hvp_relu": make_mlp_hvp(F.relu),
    "mlp_hvp_softplus": make_mlp_hvp(F.softplus),
    "rrr_step": workload_rrr_step,
    "cnn_hvp": workload_cnn_hvp,
    # metagrad's hvp transform (forward-over-reverse) against PyTorch's usual double backward.
    "mlp_hvp_relu_fwd": make_mlp_hvp(F.relu),
    "mlp_hvp_softplus_fwd": make_mlp_hvp(F.softplus),
    "cnn_hvp_fwd": workload_cnn_hvp,
    "gemm_1024": workload_gemm_1024,
    "meta_step_k1": make_meta_step(1),
    "meta_step_k5": make_meta_step(5),
    "meta_step_k20": make_meta_step(20),
    "flint_step": workload_flint_step,
    "cnn_rrr_step": workload_cnn_rrr_step,
    "cnn_ibp_ex_step": workload_cnn_ibp_ex_step,
    "transformer_fwd_bwd": workload_transformer_fwd_bwd,
    "transformer_embedding_penalty": workload_transformer_embedding_penalty,
    "cdep_step": workload_cdep_step,
    "smat_meta_step": workload_smat_meta_step,
}
FLOPS = {"gemm_1024": 2 * 1024 ** 3}


# ---------------------------------------------------------------- the check before timing

SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    """name -> tensor of a safetensors file (the format is an 8-byte header size, a JSON header of
    dtype/shape/data_offsets per tensor, then the data)."""
    with open(path, "rb") as f:
        data = f.read()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        flat = torch.frombuffer(bytearray(data[base + begin:base + end]), dtype=dtype) if end > begin \
            else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"])
    return out


def check(runner, name, device, rtol, path):
    """Runs one metagrad step (--check), PyTorch's step on the same inputs, and compares every
    output: max |a - b| over max |b| per tensor (at least 1e-3 of the largest of its kind) must stay
    below rtol. The inputs stay in `path` (for the memory measurement). Returns (the inputs, the
    worst error); exits on a mismatch, since timing different maths means nothing."""
    subprocess.run([runner, "--workload", name, "--check", path, "--device", device], check=True)
    saved = load_safetensors(path)
    inputs = {n[3:]: x.to(device) for n, x in saved.items() if n.startswith("in.")}
    expected = {n[4:]: x for n, x in saved.items() if n.startswith("out.")}
    step = WORKLOADS[name](inputs)
    ours = step()
    if set(ours) != set(expected):
        sys.exit(f"{name}: outputs differ in names: metagrad {sorted(expected)}, PyTorch {sorted(ours)}")
    worst = 0.0
    # An output whose exact value is 0 (the gradient of a key bias, which softmax cannot see) holds
    # rounding noise on both sides: it is measured against 1e-3 of the largest output of its kind
    # instead (the kind is the name up to the first "."; a meta-gradient is not held to the scale of
    # the parameter updates beside it).
    def kind(n):
        return n.split(".", 1)[0]
    largest = {}
    for n, want in expected.items():
        if want.numel() > 0:
            largest[kind(n)] = max(largest.get(kind(n), 0.0), want.abs().max().item())
    for n, want in expected.items():
        floor = 1e-3 * largest.get(kind(n), 0.0)
        got = ours[n].detach().cpu()
        if got.shape != want.shape:
            sys.exit(f"{name}: output {n} is {tuple(want.shape)} in metagrad, {tuple(got.shape)} in PyTorch")
        scale = max(want.abs().max().item(), floor, 1e-30)
        err = (got - want).abs().max().item() / scale
        worst = max(worst, err)
        if not err <= rtol:
            sys.exit(f"{name}: output {n} differs: max |metagrad - PyTorch| / max |metagrad| = {err:.3g} > {rtol}")
    return inputs, worst


def time_torch(step, iters, warmup, device):
    """Median ms of step() over iters calls after warmup calls."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def time_metagrad(runner, name, threads, iters, warmup, device):
    """(median ms, growth of the peak resident set over the steps in MB or None)."""
    cmd = [runner, "--workload", name, "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup),
           "--device", device]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    return out["median_ms"], out.get("peak_rss_growth_mb")


# ---------------------------------------------------------------- peak memory

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return None


def peak_rss_growth_mb(run):
    """Growth of the peak resident set while run() runs, in MB, measured as metagrad_workloads does
    (reset the peak with "5" to /proc/self/clear_refs, then VmHWM - VmRSS); None without /proc."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status_kb("VmRSS")
    except OSError:
        return None
    run()
    return (status_kb("VmHWM") - before) / 1024


def memory_child(args):
    """--memory-of NAME: in a fresh process (so earlier workloads' pages do not count), the
    growth of PyTorch's peak resident set over the same warm-up and timed steps as metagrad's."""
    torch.set_num_threads(int(args.threads.split(",")[0]))
    inputs = {n[3:]: x for n, x in load_safetensors(args.inputs).items() if n.startswith("in.")}
    step = WORKLOADS[args.memory_of](inputs)
    print(json.dumps({"peak_rss_growth_mb": peak_rss_growth_mb(
        lambda: [step() for _ in range(args.warmup + args.iters)])}))


def time_torch_memory(name, path, threads, iters, warmup):
    cmd = [sys.executable, os.path.abspath(__file__), "--runner", "-", "--memory-of", name, "--inputs", path,
           "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_growth_mb"]


# ---------------------------------------------------------------- machine description

def loaded_blas():
    """The BLAS/LAPACK shared objects this process actually mapped (after a matmul)."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if any(k in path for k in ("blas", "lapack", "mkl")):
                libs.add(path)
    return sorted(libs)


def machine(threads, device):
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_blas_loaded": loaded_blas(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "allocator_env": {k: os.environ.get(k) for k in ALLOCATOR_ENV},
        "threads": threads,
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", required=True, help="path to the metagrad_workloads program")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--rtol", type=float, default=2e-3,
                    help="largest max|metagrad - PyTorch| / max|metagrad| per output the check accepts")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child process of time_torch_memory
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        memory_child(args)
        return

    threads = [int(t) for t in args.threads.split(",")]
    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        sys.exit(f"unknown workloads: {unknown}; known: {list(WORKLOADS)}")
    torch.set_num_interop_threads(1)
    info = machine(threads, args.device)
    print("machine:", json.dumps(info, indent=1))
    if not any("openblas" in lib or "mkl" in lib for lib in info["torch_blas_loaded"]):
        print("WARNING: PyTorch is not using an optimized BLAS; install libopenblas0-openmp", file=sys.stderr)

    rows = []
    print(f"\n{'workload':<30} {'threads':>7} {'metagrad ms':>12} {'pytorch ms':>11} {'ratio':>7} {'check':>9}"
          f" {'metagrad MB':>12} {'pytorch MB':>11}")
    tmp = tempfile.TemporaryDirectory()
    for name in names:
        path = os.path.join(tmp.name, name + ".safetensors")
        inputs, error = check(args.runner, name, args.device, args.rtol, path)
        for n in threads:
            torch.set_num_threads(n)
            step = WORKLOADS[name](inputs)  # fresh: a step may change state (Adam's moments, the parameters)
            ours, theirs, our_mb = [], [], []
            for _ in range(args.rounds):
                ms, mb = time_metagrad(args.runner, name, n, args.iters, args.warmup, args.device)
                ours.append(ms)
                our_mb.append(mb)
                theirs.append(time_torch(step, args.iters, args.warmup, args.device))
            m, p = statistics.median(ours), statistics.median(theirs)
            row = {"name": name, "threads": n, "metagrad_ms": round(m, 4), "pytorch_ms": round(p, 4),
                   "ratio": round(m / p, 3), "check_max_rel_error": float(f"{error:.3g}"),
                   "metagrad_ms_rounds": [round(x, 4) for x in ours], "pytorch_ms_rounds": [round(x, 4) for x in theirs]}
            if args.device == "cpu" and None not in our_mb:
                row["metagrad_peak_rss_growth_mb"] = round(statistics.median(our_mb), 1)
                theirs_mb = time_torch_memory(name, path, n, args.iters, args.warmup)
                if theirs_mb is not None:
                    row["pytorch_peak_rss_growth_mb"] = round(theirs_mb, 1)
            if name in FLOPS:
                row["metagrad_gflops"] = round(FLOPS[name] / m / 1e6, 1)
                row["pytorch_gflops"] = round(FLOPS[name] / p / 1e6, 1)
            rows.append(row)
            print(f"{name:<30} {n:>7} {m:>12.3f} {p:>11.3f} {m / p:>7.2f} {error:>9.1e}"
                  f" {row.get('metagrad_peak_rss_growth_mb', float('nan')):>12.1f}"
                  f" {row.get('pytorch_peak_rss_growth_mb', float('nan')):>11.1f}", flush=True)
    tmp.cleanup()

    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"machine": info, "workloads": rows}, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
