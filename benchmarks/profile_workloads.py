#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where each benchmark workload's time goes, on each side, and the floor its GEMM FLOPs put under it.

For every workload of compare_pytorch.py, on one thread:

1. the check of compare_pytorch.py (metagrad's step and PyTorch's step on the same inputs agree);
2. `perf record -e cpu-clock` of the steps only, on each side: profile_step (metagrad) and a child
   of this script (PyTorch) build the workload, run the warm-up steps, print "ready" and wait; perf
   attaches to the process (`-p PID`), then the timed steps run, and perf stops before the process
   exits (an interpreter's teardown would otherwise be sampled too). The samples (user and, where perf
   may see it, kernel) are folded by symbol into categories (CATEGORIES below); the CPU time per
   step (getrusage) is kept beside them. oneDNN's generated code ("[JIT]") counts as convolution;
   libtorch_cpu's internal kernels have no symbols and get a category of their own, which
   torch.profiler's per-op self time (a second, perturbed view of the PyTorch side) splits up;
3. the GEMM and convolution FLOPs of one PyTorch step, counted per aten op from the operands'
   shapes (mm, addmm, bmm, baddbmm, convolution and convolution_backward, seen through a
   TorchDispatchMode, so that ops which call each other are counted once), beside what
   torch.profiler(with_flops=True) reports for the same step (PyTorch 1.13 counts only forward
   mm/addmm/bmm/conv2d there, not convolution_backward); with --blas-shim, the FLOPs of metagrad's
   own cblas_sgemm calls in one step (count_blas_flops.c under LD_PRELOAD);
4. the floor (analyse()): FLOPs / 216 GFLOP/s (the measured one-core float32 peak of
   docs/performance.md), the GFLOP/s each side reaches inside GEMM, and how much faster the GEMMs
   would have to run for 0.5 x PyTorch's committed time, with the rest kept or removed.

    cc -O2 -shared -fPIC -o build/roof/count_blas_flops.so benchmarks/count_blas_flops.c -ldl
    /usr/bin/python3 benchmarks/profile_workloads.py --runner build/roof/benchmarks/profile_step \
        --committed docs/results/compare_pytorch_2026-12-07.json --json profile.json --markdown profile.md \
        --blas-shim build/roof/count_blas_flops.so --keep /tmp/perf [--workloads a,b] [--seconds 4]
    # after changing CATEGORIES: --refold --json profile.json --markdown profile.md --keep /tmp/perf

Needs `perf` (linux-perf) allowed to attach to one's own processes (perf_event_paranoid <= 2).
The FLOPs are those of PyTorch's algorithm for the same maths; the cblas count shows metagrad
runs the same products (all of them through OpenBLAS but its direct narrow-GEMM kernel's).
"""
import argparse
import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_pytorch as cp  # noqa: E402  (re-executes this script under the controlled environment)
import torch  # noqa: E402

PEAK_GFLOPS_1T = 216.0  # docs/performance.md: 216-220 GFLOP/s measured on one core (zmm FMA loop)
QUIET_GEMM_1024_GFLOPS = 178.0  # docs/performance.md: OpenBLAS 1024^3 on one core, quiet host (2026-11-23)

# ---------------------------------------------------------------- categories of symbols
# (category, dso pattern or None, symbol pattern or None), first match wins; patterns are regexes
# searched in the demangled symbol / the DSO's file name. Order matters: the specific ones
# (softmax, reductions) come before the generic element-wise patterns that would also match them.
CATEGORIES = [
    ("kernel (page faults etc.)", r"kernel\.kallsyms|vmlinux", None),
    # oneDNN (PyTorch's convolutions): its generated code has no file ("[JIT] tid N"), its library no
    # symbols for the kernels; both are counted as convolution (they also hold oneDNN's reorders).
    ("convolution (im2col/col2im, conv kernels)", r"^\[JIT\]|libdnnl", None),
    ("libtorch_cpu, no symbol (internal kernels)", r"libtorch_cpu", r"^0x[0-9a-f]+$"),
    ("GEMM", r"libopenblas", r"gemm|GEMM|_kernel_|_oncopy|_otcopy|_incopy|_itcopy|_beta|dot_|gemv"),
    ("GEMM", None, r"cpu::gemm|narrow_gemm|direct_gemm|direct_tile|direct_rows|blocked_gemm|gemm_kernel|sgemm|dgemm|cblas_|gebp|gemm_pack|"
                   r"general_matrix_matrix|general_matrix_vector|GemmProduct|gemv"),
    ("GEMM", r"libdnnl|libmkldnn|libtorch_cpu", r"brgemm|jit_avx512_core_gemm|gemm_driver|sgemm|"
                                                 r"at::native::cpublas|addmm_impl|mkldnn_matmul"),
    ("memory (memset/memcpy, malloc/free, page faults)", None,
     r"memset|memcpy|memmove|__memcpy|__memset|malloc|^free|cfree|_int_free|_int_malloc|unlink_chunk|calloc|"
     r"realloc|operator new|operator delete|tcache|BufferPool|buffer_pool|blas_memory|c10::alloc_cpu|"
     r"c10::free_cpu|DefaultCPUAllocator|at::empty|at::native::empty|at::detail::empty|empty_strided|StorageImpl"),
    ("Python / dispatcher", r"python3|libpython|libtorch_python", None),
    ("Python / dispatcher", None, r"^_Py|^Py|at::_ops::|c10::impl::OperatorEntry|c10::Dispatcher|OperatorHandle|"
                                  r"KernelFunction|BoxedKernel|boxed_kernel|pybind|THPVariable|DispatchKeySet|"
                                  r"torch::autograd::python|c10::impl::|at::getStepCallbacks|RecordFunction|"
                                  r"sequence_number|c10::IValue|TensorIteratorBase::(?!.*loop)|TensorIteratorConfig|"
                                  r"TensorIterator::(?!.*loop)|at::meta::|structured_.*::meta\b"),
    ("convolution (im2col/col2im, conv kernels)", None,
     r"im2col|col2im|Im2Col|Col2Im|unfold|Unfold|conv2d|convolution|Convolution|jit_avx512_common_conv|"
     r"jit_uni_.*conv|conv_|_conv|max_pool|MaxPool|avg_pool|pool2d|Pool2d|adaptive_avg|pooling"),
    ("softmax / log-softmax", None, r"softmax|Softmax|log_softmax|logsumexp|LogSoftMax|shifted_exp_sum"),
    ("reductions", None, r"reduce|Reduce|redux|sum_kernel|mean_kernel|norm_kernel|\bsum<|::sum\b|sum_to|sum_dim|"
                         r"cascade_sum|binary_kernel_reduce|argmax|max_kernel|cumsum"),
    ("element-wise and broadcast", None,
     r"^metagrad::cpu::|vectorized_loop|VectorizedLoop|cpu_kernel|basic_loop|TensorIterator|binary_op|unary_op|"
     r"add_kernel|mul_kernel|relu|threshold|softplus|sigmoid|tanh|gelu|Sleef|__expf|__logf|__exp|__log|"
     r"clamp|broadcast|Broadcast|elementwise|Elementwise|map_unary|map_binary|for_each_row|layer_norm|LayerNorm|"
     r"embedding|gather|scatter|where|masked"),
    ("autograd bookkeeping (graph, engine, shared_ptr)", None,
     r"autograd|Engine|engine|Node|GraphTask|GraphEntry|grad_fn|shared_ptr|_Sp_counted|metagrad::grad<|"
     r"enable_shared_from_this|std::function|_Function_handler|InputBuffer|SavedVariable|RuleNode|"
     r"VariableHooks|TensorImpl|intrusive_ptr|_Hashtable<metagrad|_Map_base<metagrad|collect_|topo"),
    ("OpenMP / threads", r"libgomp|libomp", None),
    ("OpenMP / threads", None, r"GOMP|gomp_|omp_|__kmp|sched_yield|futex|pthread_"),
]
KERNEL = "kernel (page faults etc.)"
ORDER = ["GEMM", "convolution (im2col/col2im, conv kernels)", "element-wise and broadcast", "reductions",
         "softmax / log-softmax", "memory (memset/memcpy, malloc/free, page faults)",
         "autograd bookkeeping (graph, engine, shared_ptr)", "Python / dispatcher", "OpenMP / threads", KERNEL,
         "libtorch_cpu, no symbol (internal kernels)", "other"]
SHORT = {"GEMM": "GEMM", "convolution (im2col/col2im, conv kernels)": "conv", "element-wise and broadcast": "elementwise",
         "reductions": "reductions", "softmax / log-softmax": "softmax",
         "memory (memset/memcpy, malloc/free, page faults)": "memory",
         "autograd bookkeeping (graph, engine, shared_ptr)": "autograd", "Python / dispatcher": "python/dispatch",
         "OpenMP / threads": "openmp", KERNEL: "kernel",
         "libtorch_cpu, no symbol (internal kernels)": "torch-nosym", "other": "other"}
COMPILED = [(c, re.compile(d) if d else None, re.compile(s) if s else None) for c, d, s in CATEGORIES]


def categorize(dso, symbol):
    for category, dso_re, sym_re in COMPILED:
        if dso_re is not None and not dso_re.search(dso):
            continue
        if sym_re is not None and not sym_re.search(symbol):
            continue
        return category
    return "other"


# ---------------------------------------------------------------- perf

def perf_symbols(data):
    """[(samples, dso, symbol)] of a perf.data, self time, no call graph. Fields are split at tabs:
    a DSO name can hold spaces ("[JIT] tid 123", oneDNN's generated code)."""
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                          "-F", "overhead,sample,dso,sym", "-q", "--percent-limit", "0", "-g", "none", "-t", "\t"],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) != 4 or not fields[1].strip().isdigit():
            continue
        symbol = re.sub(r"^\[.\]\s*", "", fields[3].strip())
        rows.append((int(fields[1]), fields[2].strip(), symbol))
    return rows


def profile_process(cmd, perf_data, freq):
    """Starts cmd, waits for its "ready", attaches perf record, lets it run, returns (its JSON, symbols)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        sys.exit(f"{cmd[0]}: expected 'ready', got {line!r}")
    perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-p", str(proc.pid),
                             "-o", perf_data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # perf needs a moment to attach; the process waits on stdin meanwhile
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = proc.stdout.readline()  # the steps are done; the process waits for the profiler to detach
    perf.send_signal(signal.SIGINT)
    _, err = perf.communicate(timeout=120)
    proc.stdin.close()
    proc.wait()
    # perf record writes its file on SIGINT, then re-raises the signal: -SIGINT is its normal end here.
    if proc.returncode != 0 or perf.returncode not in (0, -signal.SIGINT) or not out.strip():
        sys.exit(f"profiling failed: {cmd} rc {proc.returncode}, perf rc {perf.returncode}: {err}")
    return json.loads(out), perf_symbols(perf_data)


def fold(symbols):
    """category -> share of the samples (user and kernel: run as root, perf samples both; the
    getrusage user/system split of the same steps is kept beside it as a cross-check)."""
    total = sum(n for n, _, _ in symbols)
    shares = {c: 0.0 for c in ORDER}
    top = {}
    for n, dso, sym in symbols:
        c = categorize(dso, sym)
        shares[c] += n / total
        top.setdefault(c, []).append((n, f"{sym} [{os.path.basename(dso)}]"))
    tops = {c: [(round(n / total, 4), s) for n, s in sorted(v, reverse=True)[:8]] for c, v in top.items()}
    return {c: round(v, 4) for c, v in shares.items()}, tops, total


GEMM_PARTS = [("OpenBLAS packing", r"copy_|_oncopy|_otcopy|_incopy|_itcopy|_beta"), ("OpenBLAS kernels", r"libopenblas"),
              ("metagrad direct kernel", r"direct_tile|direct_rows|direct_gemm"), ("Eigen", r"Eigen|gebp|blocked_gemm")]


def gemm_split(symbols):
    """The GEMM category's samples by implementation: OpenBLAS's packing routines, its kernels,
    metagrad's direct narrow-GEMM kernel, Eigen's blocked GEMM (shares of all samples)."""
    total = sum(n for n, _, _ in symbols)
    parts = {name: 0.0 for name, _ in GEMM_PARTS}
    for n, dso, sym in symbols:
        if categorize(dso, sym) != "GEMM":
            continue
        text = f"{dso} {sym}"
        for name, pattern in GEMM_PARTS:
            if re.search(pattern, text):
                parts[name] += n / total
                break
    return {k: round(v, 4) for k, v in parts.items()}


# ---------------------------------------------------------------- the PyTorch side's steps, as a child

def torch_loop_child(args):
    """--torch-loop NAME: PyTorch's step of NAME on the saved inputs, under the same protocol as
    profile_step (warm-up, "ready", wait for a line, timed steps, one JSON line)."""
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    inputs = {n[3:]: x for n, x in cp.load_safetensors(args.inputs).items() if n.startswith("in.")}
    step = cp.WORKLOADS[args.torch_loop](inputs)
    for _ in range(args.warmup):
        step()
    print("ready", flush=True)
    sys.stdin.readline()
    before = resource.getrusage(resource.RUSAGE_SELF)
    ms = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"workload": args.torch_loop, "threads": args.threads, "iters": args.iters,
                      "median_ms": statistics.median(ms), "user_s": after.ru_utime - before.ru_utime,
                      "system_s": after.ru_stime - before.ru_stime}), flush=True)
    sys.stdin.readline()  # the profiler detaches before the interpreter's teardown


# ---------------------------------------------------------------- FLOPs of one PyTorch step

def numel(shape):
    return math.prod(shape)


def conv_forward_flops(x_shape, w_shape, out_shape, transposed):
    """2 x MACs of a convolution: every output (input, when transposed) element takes C_in/groups x
    kernel products (weight [C_out, C_in/g, k...]; transposed [C_in, C_out/g, k...])."""
    per = w_shape[1] * numel(w_shape[2:])
    return 2 * (numel(x_shape) if transposed else numel(out_shape)) * per


class GemmFlops(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the FLOPs of every GEMM and convolution aten op a step runs (forward and backward, any
    order), from the operands' shapes. Ops run inside an op's implementation are not seen by the
    mode, so nothing is counted twice."""

    def __init__(self):
        super().__init__()
        self.by_op = {}

    def add(self, op, flops):
        self.by_op[op] = self.by_op.get(op, 0) + flops

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "mm":
            (m, k), (_, n) = args[0].shape, args[1].shape
            self.add(name, 2 * m * k * n)
        elif name == "addmm":
            (m, k), (_, n) = args[1].shape, args[2].shape
            self.add(name, 2 * m * k * n)
        elif name in ("bmm", "baddbmm"):
            a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
            bs, m, k = a.shape
            self.add(name, 2 * bs * m * k * b.shape[2])
        elif name in ("convolution", "_convolution"):
            x, w, transposed = args[0], args[1], bool(args[6])
            self.add("convolution", conv_forward_flops(x.shape, w.shape, out.shape, transposed))
        elif name == "convolution_backward":
            grad_out, x, w, transposed, mask = args[0], args[1], args[2], bool(args[7]), args[10]
            f = conv_forward_flops(x.shape, w.shape, grad_out.shape, transposed)
            self.add("convolution_backward", f * (int(bool(mask[0])) + int(bool(mask[1]))))
        elif name in ("matmul", "linear", "einsum", "tensordot", "conv2d", "mkldnn_convolution", "slow_conv2d_forward",
                      "_mkldnn_convolution", "mv", "dot", "addmv", "addbmm", "conv_transpose2d"):
            self.add("UNCOUNTED:" + name, 0)  # should not be seen below autograd; flagged if it is
        return out


OP_CATEGORIES = [
    ("GEMM", r"^aten::(mm|addmm|bmm|baddbmm|addbmm|mv|addmv|dot|matmul|linear)$"),
    ("convolution (im2col/col2im, conv kernels)", r"conv|im2col|col2im|pool|unfold"),
    ("softmax / log-softmax", r"softmax|logsumexp"),
    ("reductions", r"^aten::(sum|mean|amax|amin|max|min|norm|linalg_vector_norm|cumsum|sort|argmax|prod|var|std)$"),
    ("memory (memset/memcpy, malloc/free, page faults)",
     r"^aten::(empty|empty_like|empty_strided|zeros|zeros_like|ones|ones_like|full|full_like|new_empty|new_zeros|"
     r"new_empty_strided|copy_|clone|contiguous|fill_|zero_|resize_|to|_to_copy|lift_fresh|scalar_tensor)$"),
    ("autograd bookkeeping (graph, engine, shared_ptr)", r"^autograd::|Backward|AccumulateGrad|^aten::(detach|detach_|"
                                                        r"requires_grad_|alias)$"),
    ("Python / dispatcher", r"^aten::(view|reshape|_reshape_alias|_unsafe_view|permute|transpose|t|expand|expand_as|"
                            r"select|slice|unsqueeze|squeeze|flatten|as_strided|unbind|split|chunk|narrow|"
                            r"numpy_T|item|_local_scalar_dense|is_nonzero|result_type|size|stride)$"),
]
OP_COMPILED = [(c, re.compile(r)) for c, r in OP_CATEGORIES]


def op_category(name):
    for category, pattern in OP_COMPILED:
        if pattern.search(name):
            return category
    return "element-wise and broadcast"


def torch_op_shares(name, inputs, steps):
    """PyTorch's own view of one step: torch.profiler's self CPU time per aten op, folded into the
    same categories, and the time outside any op (Python, autograd engine between nodes) as
    "Python / dispatcher". The profiler adds a few microseconds per op, so small-op workloads
    lean towards the bookkeeping categories here; the perf profile is the unperturbed one."""
    step = cp.WORKLOADS[name](inputs)
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        wall_us = (time.perf_counter() - t0) * 1e6
    shares = {c: 0.0 for c in ORDER}
    for e in prof.key_averages():
        shares[op_category(e.key)] += e.self_cpu_time_total
    covered = sum(shares.values())
    shares["Python / dispatcher"] += max(wall_us - covered, 0.0)
    total = max(wall_us, covered)
    return {c: round(v / total, 4) for c, v in shares.items()}, round(wall_us / steps / 1e3, 3)


def op_steps(pytorch_ms):
    """Steps for the torch.profiler view: about a second of them, at least 3, at most 200."""
    return max(3, min(200, math.ceil(1000 / pytorch_ms)))


def torch_flops(name, inputs):
    """(GEMM/conv FLOPs by op via GemmFlops, torch.profiler with_flops total by op) of one step."""
    step = cp.WORKLOADS[name](inputs)
    step()  # a warm-up, like the timed runs (also builds lazily created state)
    step = cp.WORKLOADS[name](inputs)  # fresh (Adam's moments, parameters changed in place)
    counter = GemmFlops()
    with counter:
        step()
    step = cp.WORKLOADS[name](inputs)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as prof:
        step()
    profiler = {}
    for e in prof.events():
        if e.flops:
            profiler[e.name] = profiler.get(e.name, 0) + e.flops
    return counter.by_op, profiler


def metagrad_blas_flops(runner, name, shim):
    """FLOPs of the cblas_sgemm calls of one metagrad step (count_blas_flops.so under LD_PRELOAD):
    the count over two steps minus that over one, so that products made while building the
    workload do not count."""
    counts = []
    for iters in (1, 2):
        env = dict(os.environ, LD_PRELOAD=os.path.abspath(shim))
        r = subprocess.run([runner, "--workload", name, "--threads", "1", "--warmup", "0", "--iters", str(iters)],
                           input="go\n", capture_output=True, text=True, env=env, check=True)
        counts.append(json.loads([l for l in r.stderr.splitlines() if l.startswith("{")][-1]))
    return {k: counts[1][k] - counts[0][k] for k in counts[0]}


# ---------------------------------------------------------------- driver

def committed_ms(path):
    rows = json.load(open(path))["workloads"]
    return {r["name"]: (r["metagrad_ms"], r["pytorch_ms"]) for r in rows if r["threads"] == 1}


CONV = "convolution (im2col/col2im, conv kernels)"


def analyse(ms, gemm_flops, shares, runs):
    """The floor and the question of issue #16 for one workload, in the committed run's times (ms:
    metagrad, PyTorch, 1 thread) with the shares of the profile. Each side's GEMM rate is FLOPs /
    (its GEMM share x the CPU time per step of the profiled run itself), so share and time come from
    the same run and other processes' time does not count (their cache and core sharing still
    does). PyTorch's rate counts its convolution category too (oneDNN runs its convolutions), so
    for the CNN workloads it is a lower bound (that category also holds oneDNN's layout reorders)."""
    m_ms, p_ms = ms
    gflop = gemm_flops / 1e9
    target = 0.5 * p_ms
    s_m = shares["metagrad"]["GEMM"]
    s_p = shares["pytorch"]["GEMM"] + shares["pytorch"][CONV]
    cpu = {side: (runs[side]["user_s"] + runs[side]["system_s"]) / runs[side]["iters"] * 1e3 for side in runs}
    rate = {"metagrad": gflop / (s_m * cpu["metagrad"]) * 1e3 if s_m > 0 and gflop > 0 else None,
            "pytorch": gflop / (s_p * cpu["pytorch"]) * 1e3 if s_p > 0 and gflop > 0 else None}
    gemm_ms, rest_ms = s_m * m_ms, (1 - s_m) * m_ms
    out = {"metagrad_ms": m_ms, "pytorch_ms": p_ms, "ratio": round(m_ms / p_ms, 3), "target_ms": round(target, 3),
           "gemm_gflop": round(gflop, 4), "floor_ms_at_peak": round(gflop / PEAK_GFLOPS_1T * 1e3, 3),
           "metagrad_profiled_cpu_ms_per_step": round(cpu["metagrad"], 3),
           "pytorch_profiled_cpu_ms_per_step": round(cpu["pytorch"], 3),
           "metagrad_gemm_share": round(s_m, 3), "pytorch_gemm_conv_share": round(s_p, 3),
           "metagrad_gemm_gflops": round(rate["metagrad"], 1) if rate["metagrad"] else None,
           "pytorch_gemm_conv_gflops": round(rate["pytorch"], 1) if rate["pytorch"] else None,
           "metagrad_gemm_ms": round(gemm_ms, 3), "metagrad_rest_ms": round(rest_ms, 3),
           "pytorch_gemm_conv_ms": round(s_p * p_ms, 3)}
    # What it takes: with everything else unchanged, the GEMMs must get this much faster; with
    # everything else removed, this much. None: the rest alone is over the target.
    out["gemm_speedup_needed_rest_kept"] = round(gemm_ms / (target - rest_ms), 2) if target > rest_ms else None
    out["gemm_speedup_needed_rest_removed"] = round(gemm_ms / target, 2) if gemm_ms > 0 else None
    needed = out["gemm_speedup_needed_rest_kept"]
    out["gemm_gflops_needed_rest_kept"] = round(rate["metagrad"] * needed, 1) if needed and rate["metagrad"] else None
    non_gemm = {c: v for c, v in shares["metagrad"].items() if c != "GEMM"}
    ranked = sorted(non_gemm, key=non_gemm.get, reverse=True)
    out["metagrad_top_non_gemm"] = [[c, round(non_gemm[c], 3)] for c in ranked[:3]]
    if out["floor_ms_at_peak"] > target:
        out["verdict"] = "out of reach: the GEMM FLOPs alone need longer than 0.5x PyTorch even at peak"
    elif needed is None:
        out["verdict"] = "out of reach by GEMM alone: the non-GEMM time alone exceeds 0.5x PyTorch"
    elif out["gemm_gflops_needed_rest_kept"] and out["gemm_gflops_needed_rest_kept"] > PEAK_GFLOPS_1T:
        out["verdict"] = ("needs both: with the rest unchanged the GEMMs would have to run above peak; "
                          "the non-GEMM time has to shrink as well")
    elif needed > 1:
        out["verdict"] = "needs faster GEMMs for these shapes (below peak), or less non-GEMM time"
    else:
        out["verdict"] = "within reach on GEMM; the rest is non-GEMM time"
    return out


def peak_fractions(results):
    """The GEMM speed-ups needed, as fractions of peak on a quiet host: the speed-up x this
    workload's GEMM rate / gemm_1024's rate in the same profile run (how its shapes fare against
    the big square product under the same host conditions) x the quiet host's 1024^3 efficiency
    (178 of 216 GFLOP/s). Assumes the host's slowness scales every GEMM alike: an estimate."""
    ref = results.get("gemm_1024", {}).get("analysis", {}).get("metagrad_gemm_gflops")
    for r in results.values():
        a = r["analysis"]
        if not ref or not a["metagrad_gemm_gflops"]:
            continue
        rel = a["metagrad_gemm_gflops"] / ref
        a["gemm_rate_vs_gemm_1024_same_run"] = round(rel, 3)
        for key in ("rest_kept", "rest_removed"):
            need = a[f"gemm_speedup_needed_{key}"]
            a[f"needed_fraction_of_peak_{key}"] = round(need * rel * QUIET_GEMM_1024_GFLOPS / PEAK_GFLOPS_1T, 2) \
                if need else None


def markdown(results):
    peak_fractions(results)
    lines = ["| workload | ms metagrad / PyTorch (committed, 1 thread) | ratio | GEMM+conv GFLOP / step | "
             "floor ms at 216 GFLOP/s | 0.5 x PyTorch ms | metagrad GEMM share (direct kernel) / PyTorch GEMM+conv share | "
             "GEMM GFLOP/s metagrad / PyTorch (vs 1024^3 same run) | metagrad ms GEMM + rest | "
             "GEMM speed-up needed, rest kept / rest removed | as fraction of peak (quiet host, est.) | "
             "top non-GEMM (metagrad) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        a = r["analysis"]
        top = ", ".join(f"{SHORT[c]} {v:.0%}" for c, v in a["metagrad_top_non_gemm"][:2])
        direct = r.get("gemm_split", {}).get("metagrad", {}).get("metagrad direct kernel", 0)
        rates = " / ".join(f"{a[k]:.0f}" if a[k] else "-" for k in ("metagrad_gemm_gflops", "pytorch_gemm_conv_gflops"))
        kept = f"{a['gemm_speedup_needed_rest_kept']:.2f}x" if a["gemm_speedup_needed_rest_kept"] else "rest > target"
        frac = " / ".join(f"{a[k]:.0%}" if a.get(k) else "-" for k in
                          ("needed_fraction_of_peak_rest_kept", "needed_fraction_of_peak_rest_removed"))
        lines.append(
            f"| {name} | {a['metagrad_ms']:.3g} / {a['pytorch_ms']:.3g} | {a['ratio']:.2f} | {a['gemm_gflop']:.3g} | "
            f"{a['floor_ms_at_peak']:.3g} | {a['target_ms']:.3g} | {a['metagrad_gemm_share']:.0%} ({direct:.0%}) / "
            f"{a['pytorch_gemm_conv_share']:.0%} | {rates} ({a.get('gemm_rate_vs_gemm_1024_same_run', 0):.2f}) | "
            f"{a['metagrad_gemm_ms']:.3g} + {a['metagrad_rest_ms']:.3g} | "
            f"{kept} / {a['gemm_speedup_needed_rest_removed']:.2f}x | {frac} | {top} |")
    lines += ["", "perf samples per category, metagrad / PyTorch (1 thread, the profiled steps only):", "",
              "| workload | " + " | ".join(SHORT[c] for c in ORDER) + " |", "|---|" + "---|" * len(ORDER)]
    for name, r in results.items():
        m, p = r["shares"]["metagrad"], r["shares"]["pytorch"]
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.0%} / {p[c]:.0%}" for c in ORDER) + " |")
    lines += ["", "PyTorch's own view (torch.profiler self CPU time per aten op, folded the same way; time outside "
              "ops counted as Python / dispatcher; the profiler's own cost per op inflates the small-op workloads):", "",
              "| workload | " + " | ".join(SHORT[c] for c in ORDER[:8]) + " |", "|---|" + "---|" * 8]
    for name, r in results.items():
        p = r["pytorch_op_shares"]
        lines.append(f"| {name} | " + " | ".join(f"{p[c]:.0%}" for c in ORDER[:8]) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", help="path to the profile_step program")
    ap.add_argument("--committed", default="docs/results/compare_pytorch_2026-12-07.json",
                    help="compare_pytorch.py JSON whose 1-thread times the analysis uses")
    ap.add_argument("--workloads", default=",".join(cp.WORKLOADS))
    ap.add_argument("--seconds", type=float, default=4.0, help="profiled CPU seconds per side (sets the steps)")
    ap.add_argument("--freq", type=int, default=2000, help="perf sampling frequency, Hz")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--keep", help="keep the perf.data files in this directory")
    ap.add_argument("--no-perf", action="store_true", help="FLOPs only")
    ap.add_argument("--blas-shim", help="count_blas_flops.so: also count the FLOPs of metagrad's cblas_sgemm calls")
    ap.add_argument("--blas-only", action="store_true", help="with --blas-shim and --json: add only that count "
                                                               "to the workloads already in the JSON")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--op-only", action="store_true", help="with --json: redo only torch.profiler's per-op view")
    ap.add_argument("--refold", action="store_true", help="with --json and --keep: fold the kept perf.data again "
                                                            "(after a change to CATEGORIES) and redo the analysis")
    ap.add_argument("--torch-loop", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_loop:
        torch_loop_child(args)
        return
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    ms_of = committed_ms(args.committed)
    results = {}
    if args.json and os.path.exists(args.json):
        results = json.load(open(args.json))["workloads"]  # resume: a workload already done is kept
    if args.refold:
        for name, row in results.items():
            for side in ("metagrad", "pytorch"):
                symbols = perf_symbols(os.path.join(args.keep, f"{name}.{side}.perf.data"))
                shares, tops, samples = fold(symbols)
                row["shares"][side], row["top_symbols"][side] = shares, tops
                row.setdefault("gemm_split", {})[side] = gemm_split(symbols)
                row["runs"][side]["samples"] = samples
            row["analysis"] = analyse(ms_of[name], row["gemm_flops"], row["shares"], row["runs"])
        peak_fractions(results)
        with open(args.json, "w") as f:
            json.dump({"peak_gflops_1_thread": PEAK_GFLOPS_1T, "committed": args.committed, "workloads": results}, f, indent=1)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(markdown(results))
        return
    tmp = tempfile.TemporaryDirectory()
    keep = args.keep or tmp.name
    os.makedirs(keep, exist_ok=True)
    for name in [w for w in args.workloads.split(",") if w]:
        if args.op_only:
            inputs = cp.check(args.runner, name, "cpu", 2e-3, os.path.join(tempfile.gettempdir(), "op_only.st"))[0]
            results[name]["pytorch_op_shares"], results[name]["pytorch_ms_under_torch_profiler"] = \
                torch_op_shares(name, inputs, op_steps(ms_of[name][1]))
            print(name, results[name]["pytorch_op_shares"], flush=True)
            with open(args.json + ".tmp", "w") as f:
                json.dump({"peak_gflops_1_thread": PEAK_GFLOPS_1T, "committed": args.committed, "workloads": results}, f, indent=1)
            os.replace(args.json + ".tmp", args.json)
            continue
        if args.blas_only:
            results[name]["metagrad_cblas"] = metagrad_blas_flops(args.runner, name, args.blas_shim)
            print(name, results[name]["metagrad_cblas"], "PyTorch GEMM+conv", results[name]["gemm_flops"], flush=True)
            with open(args.json + ".tmp", "w") as f:
                json.dump({"peak_gflops_1_thread": PEAK_GFLOPS_1T, "committed": args.committed, "workloads": results}, f, indent=1)
            os.replace(args.json + ".tmp", args.json)
            continue
        if name in results and "analysis" in results[name]:
            print(f"{name}: kept from {args.json}")
            continue
        path = os.path.join(tmp.name, name + ".safetensors")
        inputs, error = cp.check(args.runner, name, "cpu", 2e-3, path)
        by_op, profiler = torch_flops(name, inputs)
        op_shares, profiled_ms = torch_op_shares(name, inputs, op_steps(ms_of[name][1]))
        if args.blas_shim:
            row_blas = metagrad_blas_flops(args.runner, name, args.blas_shim)
        row = {"check_max_rel_error": float(f"{error:.3g}"), "gemm_flops_by_op": by_op,
               "gemm_flops": sum(by_op.values()), "torch_profiler_flops_by_op": profiler,
               "pytorch_op_shares": op_shares, "pytorch_ms_under_torch_profiler": profiled_ms}
        if args.blas_shim:
            row["metagrad_cblas"] = row_blas
        if not args.no_perf:
            m_ms, p_ms = ms_of[name]
            row["shares"], row["top_symbols"], row["runs"] = {}, {}, {}
            for side, ms in (("metagrad", m_ms), ("pytorch", p_ms)):
                iters = max(3, math.ceil(args.seconds * 1e3 / ms))
                if side == "metagrad":
                    cmd = [args.runner, "--workload", name, "--threads", str(args.threads), "--iters", str(iters),
                           "--warmup", str(args.warmup)]
                else:
                    cmd = [sys.executable, os.path.abspath(__file__), "--torch-loop", name, "--inputs", path,
                           "--threads", str(args.threads), "--iters", str(iters), "--warmup", str(args.warmup)]
                run, symbols = profile_process(cmd, os.path.join(keep, f"{name}.{side}.perf.data"), args.freq)
                shares, tops, samples = fold(symbols)
                row.setdefault("gemm_split", {})[side] = gemm_split(symbols)
                run["samples"] = samples
                row["shares"][side], row["top_symbols"][side], row["runs"][side] = shares, tops, run
                print(f"{name} {side}: {iters} steps, median {run['median_ms']:.3g} ms, {samples} samples, "
                      + ", ".join(f"{SHORT[c]} {v:.0%}" for c, v in shares.items() if v >= 0.01), flush=True)
            row["analysis"] = analyse(ms_of[name], row["gemm_flops"], row["shares"], row["runs"])
        print(f"{name}: GEMM+conv {row['gemm_flops'] / 1e9:.4g} GFLOP/step {by_op}; profiler {profiler}", flush=True)
        results[name] = row
        if args.json:
            with open(args.json + ".tmp", "w") as f:
                json.dump({"peak_gflops_1_thread": PEAK_GFLOPS_1T, "committed": args.committed, "workloads": results}, f, indent=1)
            os.replace(args.json + ".tmp", args.json)
    if args.markdown and all("analysis" in r for r in results.values()):
        with open(args.markdown, "w") as f:
            f.write(markdown(results))
    tmp.cleanup()


if __name__ == "__main__":
    main()
