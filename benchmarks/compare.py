"""ghostmlp's training step beside plain numpy, PyTorch (CPU) and the machine's own limits: one process, one thread."""
import argparse
import datetime
import gc
import json
import math
import numbers
import re
import shlex
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import machine
from ghostmlp.bench import LEARNING_RATE, MODELS, build_network, scaled_sizes, synthetic_data

ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
IMPLEMENTATIONS = ("ghostmlp", "numpy", "torch")
DEFAULT_BATCHES = {"S": [1, 32], "M": [1, 64, 256], "L": [1, 64]}
DEFAULT_ITERATIONS = 10
DEFAULT_WARMUP = 2
BLOCK_SECONDS = 0.02        # fast steps are timed in blocks of consecutive steps lasting this long
MAX_BLOCK = 10000
LIMIT_REPEATS = 3           # best-of-N for the gemm rate and the bandwidth
DISTINCT_BATCHES = 2        # the steps cycle over this many synthetic minibatches
# (model, batch): the largest ghostmlp / PyTorch step-time ratio aimed at (paper's sizes, float32)
TARGETS = {("M", 256): 0.86, ("S", 1): 0.1}


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ arguments

def add_arguments(parser):
    """The comparison's options (for this module's __main__ and benchmarks.harness)."""
    parser.add_argument("--model", choices=sorted(MODELS), nargs="+", action="extend",
                        help="Table I model(s) (default S)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every hidden layer size by this (rounded, at least 1; input "
                             "and output layers unchanged); always printed (default 1)")
    parser.add_argument("--batch", type=int, nargs="+", action="extend",
                        help="minibatch size(s), repeatable (default per model: "
                             + ", ".join(f"{m} {'/'.join(map(str, b))}"
                                         for m, b in DEFAULT_BATCHES.items()) + ")")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                        help="timings per implementation, interleaved in rounds; steps faster "
                             f"than {BLOCK_SECONDS * 1e3:g} ms are timed in blocks of consecutive "
                             f"steps lasting about that long (default {DEFAULT_ITERATIONS})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"untimed steps per implementation first (at least 1; default "
                             f"{DEFAULT_WARMUP})")
    return parser


def _as_list(value):
    if value is None:
        return None
    return [value] if isinstance(value, (str, int)) else list(value)


def _cases(args):
    models = _as_list(getattr(args, "model", None)) or ["S"]
    batches = _as_list(getattr(args, "batch", None))
    for model in models:
        if model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    for batch in batches or []:
        if not isinstance(batch, numbers.Integral) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
    return [(model, int(batch)) for model in models
            for batch in (batches or DEFAULT_BATCHES[model])]


# ------------------------------------------------------------ implementations

def numpy_step(X, T, params, lr):
    """One step as a user would write it in numpy; X[B, n] row-major, T one-hot, params [[W, b]].

    Loss as ghostmlp's "mse": batch mean of 1/2 sum_k (y'_k - t_k)^2; its gradient goes
    through the softmax Jacobian, then back through the sigmoid layers; plain SGD update.
    """
    activations = [X]
    a = X
    for W, b in params[:-1]:
        a = 1.0 / (1.0 + np.exp(-(a @ W + b)))
        activations.append(a)
    W, b = params[-1]
    z = a @ W + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    batch = len(X)
    diff = y - T
    loss = 0.5 * float(np.sum(diff * diff)) / batch
    g = diff / batch                                           # dL/dy'
    delta = y * (g - np.sum(g * y, axis=1, keepdims=True))     # dL/dz through the softmax
    for layer in range(len(params) - 1, -1, -1):
        W, b = params[layer]
        a = activations[layer]
        grad_W = a.T @ delta
        grad_b = delta.sum(axis=0)
        if layer:
            delta = (delta @ W.T) * a * (1.0 - a)              # sigmoid' = a (1 - a)
        W -= lr * grad_W
        b -= lr * grad_b
    return loss


def import_torch():
    """(torch, None) or (None, why it is not available)."""
    try:
        import torch
        return torch, None
    except Exception as error:      # ImportError, or a broken install (OSError, ...)
        return None, f"{type(error).__name__}: {error}"


def torch_summary(torch):
    """One line on PyTorch's CPU math: BLAS, MKL, oneDNN, OpenMP, CPU capability, threads."""
    text = torch.__config__.show()

    def find(pattern):
        match = re.search(pattern, text)
        return match.group(1) if match else None

    blas_info = find(r"BLAS_INFO=(\w+)") or "?"
    parts = [f"BLAS_INFO={blas_info}"]
    mkl = find(r"Math Kernel Library Version ([\d.]+)")
    if mkl:
        parts.append(f"Intel oneAPI MKL {mkl}")
    onednn = find(r"MKL-DNN (v[\d.]+)")
    if onednn:
        parts.append(f"oneDNN {onednn} (mkldnn "
                     f"{'available' if torch.backends.mkldnn.is_available() else 'unavailable'})")
    openmp = find(r"OpenMP (\d+)")
    if openmp:
        parts.append(f"OpenMP {openmp}")
    capability = find(r"CPU capability usage: (\w+)")
    if capability:
        parts.append(f"CPU capability {capability}")
    parts.append(f"{torch.get_num_threads()} intra-op thread(s)")
    return f"torch {torch.__version__}: " + ", ".join(parts)


class TorchModel:
    """nn.Linear + nn.Sigmoid layers, nn.Softmax(dim=1) output, nn.MSELoss, optim.SGD(lr=0.01)."""

    def __init__(self, torch, weights, dtype):
        nn = torch.nn
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        layers = []
        for index, (w, _) in enumerate(weights):
            layers.append(nn.Linear(w.shape[0], w.shape[1], dtype=self.dtype))
            layers.append(nn.Sigmoid() if index < len(weights) - 1 else nn.Softmax(dim=1))
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.loss_fn = nn.MSELoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.set_weights(weights)

    def set_weights(self, weights):
        with self.torch.no_grad():
            for linear, (w, b) in zip(self.linears, weights):
                linear.weight.copy_(self.torch.from_numpy(w.T))   # nn.Linear holds W^T
                linear.bias.copy_(self.torch.from_numpy(b))

    def tensors(self, X, T):
        return self.torch.from_numpy(X), self.torch.from_numpy(T)

    def step(self, x, t):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), t)
        loss.backward()
        self.optimizer.step()
        return loss


# --------------------------------------------------------------------- timing

def time_interleaved(steps, iterations, warmup):
    """Median-ready timings of each step function, interleaved in rounds.

    steps: {name: (step, [(x, t), ...])}. Each implementation first runs max(warmup, 1)
    untimed steps (the first one's return value is kept) which also size its block: the
    number of consecutive steps timed together, about BLOCK_SECONDS long. Then
    `iterations` rounds; in each, every implementation (in an order rotating from round to
    round) runs one untimed step when its block has several (its caches were the others'
    a moment ago) and one timed block. Returns ({name: [seconds per step]}, {name: block},
    {name: first return value}).
    """
    names = list(steps)
    first, block, counter = {}, {}, {}
    for name in names:
        step, data = steps[name]
        times = []
        for i in range(max(warmup, 1)):
            t0 = time.perf_counter()
            value = step(*data[i % len(data)])
            times.append(time.perf_counter() - t0)
            if i == 0:
                first[name] = value
        estimate = min(times)
        block[name] = (1 if estimate >= BLOCK_SECONDS else
                       max(1, min(MAX_BLOCK, math.ceil(BLOCK_SECONDS / max(estimate, 1e-9)))))
        counter[name] = len(times)
    timings = {name: [] for name in names}
    gc.disable()
    try:
        for r in range(iterations):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                step, data = steps[name]
                n = block[name]
                start = counter[name]
                sequence = [data[(start + j) % len(data)] for j in range(n + (n > 1))]
                counter[name] += len(sequence)
                if n > 1:
                    step(*sequence.pop())
                t0 = time.perf_counter()
                for args in sequence:
                    step(*args)
                timings[name].append((time.perf_counter() - t0) / n)
    finally:
        gc.enable()
    return timings, block, first


# ----------------------------------------------------------------------- run

def _plain(value):
    """JSON-round-trip-safe: Python scalars, lists for tuples, None for NaN/inf."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ratio(a, b):
    return a / b if a is not None and b else None


def run(args, out=print):
    """Run every (model, batch) case; print a Markdown table via `out`; return one dict per case."""
    cases = _cases(args)
    scale = float(getattr(args, "scale", 1.0) or 1.0)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    dtype = np.dtype(getattr(args, "dtype", "float32") or "float32").name
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    iterations = int(getattr(args, "iterations", None) or DEFAULT_ITERATIONS)
    warmup = getattr(args, "warmup", None)
    warmup = DEFAULT_WARMUP if warmup is None else int(warmup)
    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations must be >= 1 and warmup >= 0, got {iterations}, {warmup}")
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    torch, torch_missing = import_torch()
    old_torch_threads = torch.get_num_threads() if torch else None
    records = []
    with threadpool_limits(1):
        if torch:
            torch.set_num_threads(1)
        try:
            facts = machine.facts()
            torch_config = torch_summary(torch) if torch else None
            log("compare: measuring the machine's limits ...")
            gemm = machine.gemm_rates(LIMIT_REPEATS, dtype, log=log)
            gemm_gflops = max(r["gflops"] for r in gemm)
            limits = (machine.bandwidth(LIMIT_REPEATS, log=log)
                      if any(batch == 1 for _, batch in cases) else None)
            model_state = {}
            for model, batch in cases:
                if model_state.get("model") != model:
                    model_state.clear()         # one model's copies at a time
                    sizes = scaled_sizes(model, scale)
                    log(f"compare: building {model} {'-'.join(map(str, sizes))} ...")
                    net = build_network(sizes, dtype)
                    initial = net.get_weights()
                    model_state.update(model=model, sizes=sizes, net=net, initial=initial,
                                       torch=TorchModel(torch, initial, dtype) if torch else None)
                log(f"compare: timing {model} at batch {batch} ...")
                records.append(_run_case(model_state, model, scale, batch, dtype, iterations,
                                         warmup, gemm_gflops, limits, facts, torch,
                                         torch_config, command))
            model_state.clear()
        finally:
            if torch:
                torch.set_num_threads(old_torch_threads)
    report(records, gemm, limits, facts, torch_config, torch_missing, scale, dtype, command, out)
    return records


def _run_case(state, model, scale, batch, dtype, iterations, warmup, gemm_gflops, limits,
              facts, torch, torch_config, command):
    sizes, net, initial = state["sizes"], state["net"], state["initial"]
    data = [synthetic_data(sizes, batch, dtype, seed=s) for s in range(DISTINCT_BATCHES)]
    onehot = [np.eye(sizes[-1], dtype=dtype)[y] for _, y in data]       # targets for numpy/torch
    net.set_weights(initial)                         # all three start from the same weights
    params = [[w.copy(), b.copy()] for w, b in initial]
    steps = {
        "ghostmlp": (net.train_step, data),
        "numpy": (lambda x, t: numpy_step(x, t, params, LEARNING_RATE),
                  [(x, t) for (x, _), t in zip(data, onehot)]),
    }
    if torch:
        tm = state["torch"]
        tm.set_weights(initial)
        steps["torch"] = (tm.step, [tm.tensors(x, t) for (x, _), t in zip(data, onehot)])
    timings, block, first = time_interleaved(steps, iterations, warmup)
    median = {name: statistics.median(t) for name, t in timings.items()}
    # First-step losses in ghostmlp's convention (torch's MSELoss is the mean over B x n_out
    # elements without the 1/2): they agree when the three compute the same step.
    first_loss = {"ghostmlp": float(first["ghostmlp"]), "numpy": float(first["numpy"])}
    if torch:
        first_loss["torch"] = first["torch"].detach().item() * sizes[-1] / 2
    reference = first_loss["ghostmlp"]
    agree = all(math.isclose(v, reference, rel_tol=1e-3 if dtype == "float32" else 1e-6,
                             abs_tol=1e-7) for v in first_loss.values())
    weights = net.n_weights
    itemsize = np.dtype(dtype).itemsize
    sgemm_s = 6 * weights * batch / (gemm_gflops * 1e9)
    floor_s = (3 * weights * itemsize / (limits["copy_gbs"] * 1e9)
               if batch == 1 and limits else None)
    ghost, torch_s = median["ghostmlp"], median.get("torch")
    ratio_torch = _ratio(ghost, torch_s)
    bound = TARGETS.get((model, batch)) if scale == 1.0 and dtype == "float32" else None
    target = None
    if bound is not None:
        target = {"description": f"{model} batch {batch}: ghostmlp step <= {bound:g} x PyTorch's",
                  "ratio_torch_max": bound,
                  "met": None if ratio_torch is None else ratio_torch <= bound}
    record = {
        "kind": "compare", "model": model, "scale": scale, "sizes": list(sizes), "batch": batch,
        "dtype": dtype, "threads": 1, "iteration": ITERATION,
        "ghostmlp_s": ghost, "numpy_s": median["numpy"], "torch_s": torch_s,
        "torch_version": torch.__version__ if torch else None,
        "sgemm_equivalent_s": sgemm_s, "memory_floor_s": floor_s,
        "ratio_numpy": ghost / median["numpy"], "ratio_torch": ratio_torch,
        "efficiency": sgemm_s / ghost, "ratio_memory_floor": _ratio(ghost, floor_s),
        "machine": facts,
        # details
        "weights": weights, "weight_bytes": weights * itemsize, "flops": 6 * weights * batch,
        "gemm_gflops": gemm_gflops, "copy_gbs": limits["copy_gbs"] if limits else None,
        "iterations": iterations, "warmup": max(warmup, 1), "steps_per_timing": block,
        "min_s": {name: min(t) for name, t in timings.items()},
        "max_s": {name: max(t) for name, t in timings.items()},
        "first_step_loss": first_loss, "losses_agree": agree,
        "torch_config": torch_config, "target": target, "command": command,
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    log(f"  ghostmlp {ghost * 1e3:.4f} ms, numpy {median['numpy'] * 1e3:.4f} ms, torch "
        + (f"{torch_s * 1e3:.4f} ms" if torch_s is not None else "n/a"))
    return _plain(record)


# --------------------------------------------------------------------- report

def _ms(seconds):
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def _x(ratio):
    if ratio is None:
        return "—"
    return f"{ratio:.3f}" if ratio < 1 else f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


def report(records, gemm, limits, facts, torch_config, torch_missing, scale, dtype, command,
           out=print):
    gemm_name = "sgemm" if dtype == "float32" else "dgemm"
    out("# ghostmlp vs numpy vs PyTorch: one training step, one thread\n")
    out(f"iteration = {ITERATION}; dtype {dtype}; sigmoid hidden layers, softmax output, loss "
        f"mse, SGD lr {LEARNING_RATE:g}; one thread (threadpoolctl limit 1, "
        f"torch.set_num_threads(1)); scale {scale:g} (hidden layer sizes multiplied by it).\n")
    out(f"Command: `{command}`\n")
    out("## Machine\n")
    out(f"- CPU: {facts['cpu']} (SIMD flags: {facts['cpu_simd']}); cores: {facts['cores']}; "
        f"caches (cpu0): {facts['caches_cpu0']}; memory: {facts['memory_gib']} GiB; load "
        f"average at start: {', '.join(map(str, facts['load_average']))}")
    for lib in facts["blas"]:
        out(f"- BLAS: {lib['library']} {lib['version']}, core type {lib['architecture']}, "
            f"{lib['threads']} thread(s) ({lib['threading_layer']}), {lib['file']}")
    out(f"- Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}, ghostmlp "
        f"{facts['ghostmlp']}; OPENBLAS_CORETYPE = {facts['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE = {facts['OPENBLAS_L2_SIZE']}")
    out(f"- PyTorch: {torch_config}" if torch_config else
        f"- PyTorch: not available ({torch_missing}); its columns are empty")
    mpi = facts.get("mpi")
    out(f"- MPI: {' '.join(mpi.splitlines()[0].split()) if mpi else 'mpi4py not importable'}\n")
    out("## Machine limits, measured in this run (one thread, best of "
        f"{LIMIT_REPEATS})\n")
    out(f"- {gemm_name}: " + "; ".join(f"{r['shape']} {r['gflops']:.1f}" for r in gemm)
        + f" GFLOP/s; reference rate (best) {max(r['gflops'] for r in gemm):.1f} GFLOP/s")
    if limits:
        out(f"- memory bandwidth ({limits['bytes'] / 2**20:.0f} MiB arrays): copy "
            f"{limits['copy_gbs']:.1f} GB/s, read {limits['read_gbs']:.1f} GB/s, in-place "
            f"{limits['inplace_gbs']:.1f} GB/s")
    out("")
    out("## Seconds per iteration (medians) and ratios\n")
    out(f"| model | sizes | batch | ghostmlp ms | numpy ms | torch ms | {gemm_name} time ms "
        "| memory floor ms | ghostmlp / numpy | ghostmlp / torch | ghostmlp / "
        f"{gemm_name} time | efficiency % | ghostmlp / memory floor |")
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in records:
        out(f"| {r['model']} | {'-'.join(map(str, r['sizes']))} | {r['batch']} | "
            f"{_ms(r['ghostmlp_s'])} | {_ms(r['numpy_s'])} | {_ms(r['torch_s'])} | "
            f"{_ms(r['sgemm_equivalent_s'])} | {_ms(r['memory_floor_s'])} | "
            f"{_x(r['ratio_numpy'])} | {_x(r['ratio_torch'])} | {_x(1 / r['efficiency'])} | "
            f"{100 * r['efficiency']:.1f} | {_x(r['ratio_memory_floor'])} |")
    out("")
    if records:
        out(f"- The three implementations run in the same process on the same model, "
            f"minibatches and initial weights; {records[0]['iterations']} timings each after "
            f"{records[0]['warmup']} warm-up step(s), interleaved in rounds (rotating order). "
            f"Steps shorter than {BLOCK_SECONDS * 1e3:g} ms are timed in blocks of consecutive "
            "steps (after one untimed step) and divided; steps per timing: "
            + "; ".join(f"{r['model']}/{r['batch']}: "
                        + ", ".join(f"{k} {v}" for k, v in r["steps_per_timing"].items())
                        for r in records) + ".")
        out(f"- {gemm_name} time = 6 x weights x batch flops at the reference rate; efficiency "
            f"= {gemm_name} time / ghostmlp step. Memory floor (batch 1) = 3 passes over the "
            "weight bytes at the copy bandwidth (a DRAM floor: weights that fit in the caches "
            "are not bound by it).")
        out("- numpy: straightforward `a = sigmoid(a @ W + b)` forward, softmax, MSE gradient "
            "through the softmax Jacobian, backprop, in-place SGD. PyTorch: nn.Linear + "
            "nn.Sigmoid, nn.Softmax(dim=1), nn.MSELoss on one-hot targets, optim.SGD; "
            "zero_grad, forward, loss, backward, step.")
        out("- First-step losses (ghostmlp's convention) "
            + ("agree" if all(r["losses_agree"] for r in records) else "DISAGREE")
            + ": " + "; ".join(f"{r['model']}/{r['batch']}: " + ", ".join(
                f"{k} {v:.6g}" for k, v in r["first_step_loss"].items()) for r in records) + ".")
        out("")
    targeted = [r for r in records if r["target"]]
    if targeted:
        out("## Targets\n")
        out("| target | ghostmlp / torch | status |")
        out("|---|---:|---|")
        for r in targeted:
            met = r["target"]["met"]
            out(f"| {r['target']['description']} | {_x(r['ratio_torch'])} | "
                f"{'no torch' if met is None else 'met' if met else 'MISSED'} |")
        out("")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--json", metavar="PATH",
                        help="append one JSON object per case to PATH (JSON Lines)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be > 0")
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be >= 1 and --warmup >= 0")
    if any(b < 1 for b in args.batch or []):
        parser.error("--batch sizes must be >= 1")
    records = run(args)
    if args.json:
        with open(args.json, "a") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
