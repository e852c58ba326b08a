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
# Each builder returns a zero-argument step function; shapes mirror benchmarks/workloads.hpp.

def mlp_params(act_hidden=256, device="cpu"):
    g = torch.Generator().manual_seed(0)
    sizes = [784, 256, 256, 10]
    params = []
    for i in range(3):
        bound = 1.0 / sizes[i] ** 0.5
        w = (torch.rand(sizes[i + 1], sizes[i], generator=g) * 2 - 1) * bound
        b = (torch.rand(sizes[i + 1], generator=g) * 2 - 1) * bound
        params += [w.to(device).requires_grad_(), b.to(device).requires_grad_()]
    return params


def mlp_forward(params, x, act):
    h = x
    for i in range(0, 6, 2):
        h = F.linear(h, params[i], params[i + 1])
        if i < 4:
            h = act(h)
    return h


def batch(n, features, classes, device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, *features, generator=g).to(device)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    return x, y


def workload_mlp_fwd_bwd(device):
    params = mlp_params(device=device)
    x, y = batch(128, (784,), 10, device)

    def step():
        loss = F.cross_entropy(mlp_forward(params, x, F.relu), y)
        return torch.autograd.grad(loss, params)
    return step


def make_mlp_hvp(act):
    def build(device):
        params = mlp_params(device=device)
        x, y = batch(128, (784,), 10, device)
        vs = [torch.randn_like(p) for p in params]

        def step():
            loss = F.cross_entropy(mlp_forward(params, x, act), y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vs))
            return torch.autograd.grad(dot, params)
        return step
    return build


def workload_rrr_step(device):
    params = mlp_params(device=device)
    x, y = batch(128, (784,), 10, device)
    mask = (torch.arange(784, device=device) % 28 < 5).float().expand(128, 784).contiguous()
    lam = 10.0

    def step():
        xg = x.detach().requires_grad_()
        logits = mlp_forward(params, xg, F.relu)
        logp = F.log_softmax(logits, dim=1)
        (gx,) = torch.autograd.grad(logp.sum(), xg, create_graph=True)
        loss = F.cross_entropy(logits, y) + lam * ((mask * gx) ** 2).sum()
        return torch.autograd.grad(loss, params)
    return step


def workload_cnn_hvp(device, n=64):
    g = torch.Generator().manual_seed(0)

    def u(*shape, fan_in):
        b = 1.0 / fan_in ** 0.5
        return ((torch.rand(*shape, generator=g) * 2 - 1) * b).to(device).requires_grad_()
    params = [u(16, 1, 5, 5, fan_in=25), u(16, fan_in=25), u(32, 16, 5, 5, fan_in=400), u(32, fan_in=400),
              u(10, 512, fan_in=512), u(10, fan_in=512)]
    x, y = batch(n, (1, 28, 28), 10, device)
    vs = [torch.randn_like(p) for p in params]

    def forward(p):
        h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3])), 2)
        return F.linear(h.flatten(1), p[4], p[5])

    def step():
        loss = F.cross_entropy(forward(params), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((gg * v).sum() for gg, v in zip(grads, vs))
        return torch.autograd.grad(dot, params)
    return step


def workload_gemm_1024(device):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1024, 1024, generator=g).to(device)
    b = torch.randn(1024, 1024, generator=g).to(device)
    return lambda: a @ b


def workload_flint_step(device):
    """Mirrors flint_step in workloads.hpp (learn/flint_networks.hpp, FlintLoss at epoch 12): f, Phi,
    d and h of FLINT's networks.py in train mode, batch 16, the four losses, backward, Adam 1e-4."""
    nn = torch.nn
    torch.manual_seed(0)
    up = dict(stride=2, padding=1, output_padding=1)
    body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2),
                         nn.Dropout(0.5), nn.ReLU())
    head = nn.Sequential(nn.Flatten(), nn.Linear(6272, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    phi = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.LeakyReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
                        nn.Linear(576, 25), nn.LeakyReLU())
    dec = nn.Sequential(nn.Linear(25, 98), nn.Unflatten(1, (2, 7, 7)), nn.ConvTranspose2d(2, 8, 3, **up), nn.ReLU(),
                        nn.ConvTranspose2d(8, 1, 3, **up), nn.ReLU())
    h = nn.Sequential(nn.Dropout(0.01), nn.Linear(25, 10))
    model = nn.ModuleList([body, head, phi, dec, h]).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (16,), generator=g).to(device)

    def entropy(v):
        return -(F.softmax(v, 1) * F.log_softmax(v, 1)).sum(1)

    def step():
        hidden = body(x)
        f_logits = head(hidden)
        attributes = phi(hidden)
        magnitude = attributes.abs()
        loss = (F.cross_entropy(f_logits, y) + 0.8 * F.mse_loss(dec(attributes), x)
                + 0.5 * F.cross_entropy(h(attributes), F.softmax(f_logits.detach(), 1))
                + 0.2 * (entropy(magnitude).mean() - entropy(magnitude.mean(0, keepdim=True)).sum())
                + 0.1 * magnitude.mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def make_meta_step(k):
    """Mirrors benchmarks/meta_step.hpp: d outer / d phi through k inner SGD steps of a 784-128-10
    student whose inner loss sees the inputs weighted per feature by w = 784 * softmax(phi)."""
    def build(device):
        g = torch.Generator().manual_seed(0)

        def u(*shape, fan_in):
            b = 1.0 / fan_in ** 0.5
            return ((torch.rand(*shape, generator=g) * 2 - 1) * b).to(device)
        student = [u(128, 784, fan_in=784), u(128, fan_in=784), u(10, 128, fan_in=128), u(10, fan_in=128)]
        phi = (torch.randn(784, generator=torch.Generator().manual_seed(2)) * 0.1).to(device).requires_grad_()
        gd = torch.Generator().manual_seed(1)
        xs, ys = [], []
        for _ in range(k):
            xs.append(torch.randn(64, 784, generator=gd).to(device))
            ys.append(torch.randint(0, 10, (64,), generator=gd).to(device))
        x_val = torch.randn(64, 784, generator=gd).to(device)
        y_val = torch.randint(0, 10, (64,), generator=gd).to(device)

        def logits(p, x):
            return F.linear(F.relu(F.linear(x, p[0], p[1])), p[2], p[3])

        def step():
            w = F.softmax(phi, 0) * 784
            p = [t.detach().requires_grad_() for t in student]
            for i in range(k):
                loss = F.cross_entropy(logits(p, xs[i] * w), ys[i])
                grads = torch.autograd.grad(loss, p, create_graph=True)
                p = [pi - 0.1 * gi for pi, gi in zip(p, grads)]
            outer = F.cross_entropy(logits(p, x_val), y_val)
            return torch.autograd.grad(outer, phi)
        return step
    return build


WORKLOADS = {
    "mlp_fwd_bwd": workload_mlp_fwd_bwd,
    "mlp_hvp_relu": make_mlp_hvp(F.relu),
    "mlp_hvp_softplus": make_mlp_hvp(F.softplus),
    "rrr_step": workload_rrr_step,
    "cnn_hvp": workload_cnn_hvp,
    "gemm_1024": workload_gemm_1024,
    "flint_step": workload_flint_step,
    "meta_step_k1": make_meta_step(1),
    "meta_step_k5": make_meta_step(5),
    "meta_step_k20": make_meta_step(20),
}
FLOPS = {"gemm_1024": 2 * 1024 ** 3}


def time_torch(step, iters, warmup, device):
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
    print(f"\n{'workload':<18} {'threads':>7} {'metagrad ms':>12} {'pytorch ms':>11} {'ratio':>7}")
    for name in names:
        for n in threads:
            torch.set_num_threads(n)
            step = WORKLOADS[name](args.device)
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(time_metagrad(args.runner, name, n, args.iters, args.warmup, args.device))
                theirs.append(time_torch(step, args.iters, args.warmup, args.device))
            m, p = statistics.median(ours), statistics.median(theirs)
            row = {"name": name, "threads": n, "metagrad_ms": round(m, 4), "pytorch_ms": round(p, 4),
                   "ratio": round(m / p, 3)}
            if name in FLOPS:
                row["metagrad_gflops"] = round(FLOPS[name] / m / 1e6, 1)
                row["pytorch_gflops"] = round(FLOPS[name] / p / 1e6, 1)
            rows.append(row)
            print(f"{name:<18} {n:>7} {m:>12.3f} {p:>11.3f} {m / p:>7.2f}", flush=True)

    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"machine": info, "workloads": rows}, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
