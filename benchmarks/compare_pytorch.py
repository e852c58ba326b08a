#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Times the same workloads in metagrad and in PyTorch on this machine, in one run, alternating,
and prints metagrad/PyTorch time ratios (below 1.0: metagrad is faster).

The peer is kept at its best: PyTorch must use an optimized BLAS (Debian: libopenblas0-openmp),
OPENBLAS_CORETYPE is removed from the environment, both sides get the same thread count and the
same glibc allocator settings (no trimming or mmap of large blocks, which otherwise make timings
swing), and the BLAS library PyTorch actually loaded is printed with the results.

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
    b, s, d = e.shape
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
        weights = F.softmax(q @ k.transpose(-1, -2) + bias, -1)
        context = (weights @ v).permute(0, 2, 1, 3).reshape(b, s, d)
        a = F.linear(context, L("attn.o.weight"), L("attn.o.bias"))
        h = F.layer_norm(h + a, (d,), L("ln1.weight"), L("ln1.bias"))
        ff = F.linear(F.gelu(F.linear(h, L("ff1.weight"), L("ff1.bias"))), L("ff2.weight"), L("ff2.bias"))
        h = F.layer_norm(h + ff, (d,), L("ln2.weight"), L("ln2.bias"))
    pooled = (h * mask.reshape(b, s, 1)).sum(1) / mask.sum(1, keepdim=True)
    return F.linear(pooled, P["head.weight"], P["head.bias"])


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


WORKLOADS = {
    "mlp_fwd_bwd": workload_mlp_fwd_bwd,
    "mlp_hvp_relu": make_mlp_hvp(F.relu),
    "mlp_hvp_softplus": make_mlp_hvp(F.softplus),
    "rrr_step": workload_rrr_step,
    "cnn_hvp": workload_cnn_hvp,
    "gemm_1024": workload_gemm_1024,
    "meta_step_k1": make_meta_step(1),
    "meta_step_k5": make_meta_step(5),
    "meta_step_k20": make_meta_step(20),
    "flint_step": workload_flint_step,
    "cnn_rrr_step": workload_cnn_rrr_step,
    "cnn_ibp_ex_step": workload_cnn_ibp_ex_step,
    "transformer_fwd_bwd": workload_transformer_fwd_bwd,
    "transformer_embedding_penalty": workload_transformer_embedding_penalty,
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


def check(runner, name, device, rtol):
    """Runs one metagrad step (--check), PyTorch's step on the same inputs, and compares every
    output: max |a - b| over max |b| per tensor (at least 1e-3 of the largest) must stay below rtol. Returns (the inputs, the worst
    error); exits on a mismatch, since timing different maths means nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "check.safetensors")
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
    # rounding noise on both sides: it is measured against 1e-3 of the largest output instead.
    floor = 1e-3 * max(want.abs().max().item() for want in expected.values() if want.numel() > 0)
    for n, want in expected.items():
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
    cmd = [runner, "--workload", name, "--threads", str(threads), "--iters", str(iters), "--warmup", str(warmup),
           "--device", device]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


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
    args = ap.parse_args()

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
    print(f"\n{'workload':<30} {'threads':>7} {'metagrad ms':>12} {'pytorch ms':>11} {'ratio':>7} {'check':>9}")
    for name in names:
        inputs, error = check(args.runner, name, args.device, args.rtol)
        for n in threads:
            torch.set_num_threads(n)
            step = WORKLOADS[name](inputs)  # fresh: a step may change state (Adam's moments, the parameters)
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(time_metagrad(args.runner, name, n, args.iters, args.warmup, args.device))
                theirs.append(time_torch(step, args.iters, args.warmup, args.device))
            m, p = statistics.median(ours), statistics.median(theirs)
            row = {"name": name, "threads": n, "metagrad_ms": round(m, 4), "pytorch_ms": round(p, 4),
                   "ratio": round(m / p, 3), "check_max_rel_error": float(f"{error:.3g}")}
            if name in FLOPS:
                row["metagrad_gflops"] = round(FLOPS[name] / m / 1e6, 1)
                row["pytorch_gflops"] = round(FLOPS[name] / p / 1e6, 1)
            rows.append(row)
            print(f"{name:<30} {n:>7} {m:>12.3f} {p:>11.3f} {m / p:>7.2f} {error:>9.1e}", flush=True)

    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"machine": info, "workloads": rows}, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
