"""The fused batch-1 row pass against gemv + ger, one layer at a time through the kernel wrappers."""
import gc
import math
import statistics
import time

import numpy as np

from ghostmlp import _kernels
from ghostmlp.bench import LEARNING_RATE

# (fan_in, fan_out, where it occurs) for the fused-vs-unfused batch-1 layer comparison.
FUSED_LAYERS = [
    (4096, 4096, "M hidden"),
    (4096, 2048, "M output"),
    (64, 128, "S layer 2"),
    (128, 256, "S layer 3"),
    (256, 64, "S output"),
    (256, 32, "fan_out sweep"),
    (256, 128, "fan_out sweep"),
    (256, 256, "fan_out sweep"),
    (256, 512, "fan_out sweep"),
    (256, 1024, "fan_out sweep"),
]


def takes_fused_path(fan_in, fan_out):
    """Whether the serial Step's batch-1 backward uses the fused row pass on a float32 layer."""
    return fan_in * fan_out * 4 >= _kernels.FUSED_ROW_MIN_BYTES


class _Layer:
    def __init__(self, n_in, n_out, seed):
        rng = np.random.default_rng(seed)
        bound = math.sqrt(6.0 / (n_in + n_out))
        self.w = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
        self.bias = np.zeros(n_out, dtype=np.float32)
        self.h = rng.random(n_in, dtype=np.float32)               # sigmoid outputs
        self.delta = (rng.standard_normal(n_out) * 1e-3).astype(np.float32)
        self.delta_prev = np.zeros(n_in, dtype=np.float32)
        self.h2 = self.h.reshape(n_in, 1)
        self.delta2 = self.delta.reshape(n_out, 1)
        self.delta_prev2 = self.delta_prev.reshape(n_in, 1)

    def fused(self, calls):
        f, sig, lr = _kernels.fused_delta_update, _kernels.SIGMOID, LEARNING_RATE
        h, w, b, d, dp = self.h, self.w, self.bias, self.delta, self.delta_prev
        t0 = time.perf_counter()
        for _ in range(calls):
            f(h, w, b, d, dp, sig, lr)
        return (time.perf_counter() - t0) / calls

    def unfused(self, calls):
        hd, ou, sig, alpha = _kernels.hidden_delta, _kernels.outer_update, _kernels.SIGMOID, -LEARNING_RATE
        h, w, b, d, dp = self.h2, self.w, self.bias, self.delta2, self.delta_prev2
        t0 = time.perf_counter()
        for _ in range(calls):
            hd(d, w, h, dp, sig)
            ou(h, d, w, b, alpha, 1.0)
        return (time.perf_counter() - t0) / calls


def _check_same_result(n_in, n_out):
    """Both paths give the same delta_prev, W and b (up to rounding) from the same start."""
    one, two = _Layer(n_in, n_out, 7), _Layer(n_in, n_out, 7)
    one.fused(1)
    two.unfused(1)
    return bool(np.allclose(one.delta_prev, two.delta_prev, rtol=1e-4, atol=1e-7)
                and np.allclose(one.w, two.w, rtol=1e-5, atol=1e-7)
                and np.allclose(one.bias, two.bias, rtol=1e-5, atol=1e-9))


def _time_pair(layer, calls, rounds):
    fused, unfused = [], []
    layer.fused(calls)
    layer.unfused(calls)
    gc.disable()
    try:
        for _ in range(rounds):             # interleaved, so drifting load hits both alike
            fused.append(layer.fused(calls))
            unfused.append(layer.unfused(calls))
    finally:
        gc.enable()
    return statistics.median(fused), statistics.median(unfused)


def run_fused_layers(quick, log):
    overhead = _time_pair(_Layer(1, 1, 3), 2000 if not quick else 500, 15 if not quick else 5)
    log(f"  wrapper overhead (1x1 layer): fused {overhead[0] * 1e6:.2f} us, "
        f"unfused {overhead[1] * 1e6:.2f} us")
    rows = []
    layers = FUSED_LAYERS if not quick else [l for l in FUSED_LAYERS if l[2] != "fan_out sweep"]
    for n_in, n_out, where in layers:
        big = n_in * n_out >= 1 << 20
        calls = 1 if big else (1000 if not quick else 200)
        rounds = (10 if not quick else 3) if big else (15 if not quick else 5)
        same = _check_same_result(n_in, n_out)
        fused, unfused = _time_pair(_Layer(n_in, n_out, 5), calls, rounds)
        net_fused, net_unfused = fused - overhead[0], unfused - overhead[1]
        rows.append({
            "kind": "fused_row_layer", "fan_in": n_in, "fan_out": n_out, "where": where,
            "calls_per_timing": calls, "timings": rounds, "same_result": same,
            "fused_s": fused, "unfused_s": unfused,
            "fused_minus_overhead_s": net_fused, "unfused_minus_overhead_s": net_unfused,
            "wrapper_overhead_fused_s": overhead[0], "wrapper_overhead_unfused_s": overhead[1],
            "speedup": unfused / fused,
            "speedup_minus_overhead": net_unfused / net_fused if net_fused > 0 else None,
            "current_choice": "fused" if takes_fused_path(n_in, n_out) else "unfused",
        })
        log(f"  layer {n_in}x{n_out}: fused {fused * 1e6:.2f} us, unfused {unfused * 1e6:.2f} us")
    return rows


class _StepLayer(_Layer):
    """One layer's batch-1 products as the serial step makes them, through the kernel wrappers."""

    def __init__(self, n_in, n_out, seed, first):
        super().__init__(n_in, n_out, seed)
        self.first, self.out2 = first, np.zeros((n_out, 1), dtype=np.float32)
        self.scratch = np.zeros(2, dtype=np.float32)

    def forward(self, calls):
        f, sig = _kernels.forward_slice, _kernels.SIGMOID
        h, w, b, out, s = self.h2, self.w, self.bias, self.out2, self.scratch
        t0 = time.perf_counter()
        for _ in range(calls):
            f(h, w, b, out, sig, 0, None, s)
        return (time.perf_counter() - t0) / calls

    def update(self, calls):
        ou, alpha = _kernels.outer_update, -LEARNING_RATE
        h, w, b, d = self.h2, self.w, self.bias, self.delta2
        t0 = time.perf_counter()
        for _ in range(calls):
            ou(h, d, w, b, alpha, 1.0)
        return (time.perf_counter() - t0) / calls

    def backward(self, calls):
        """The first layer's update alone; else the fused row pass or gemv + ger, as the step picks."""
        if self.first:
            return self.update(calls)
        return (self.fused if takes_fused_path(*self.w.shape) else self.unfused)(calls)


def step_products_b1(sizes, rounds):
    """Seconds of the batch-1 step's own products (forward gemv + activation, backward gemv +
    ger or the fused row pass) per layer, medians of `rounds` timings, each less the same
    wrapper's median on a 1x1 layer, and the bytes of W they read and write:
    {"forward_s", "backward_s", "bytes", "layers"}."""
    def median_of(method, calls):
        method(calls)
        return statistics.median(method(calls) for _ in range(rounds))

    gc.disable()
    try:
        tiny = {first: _StepLayer(1, 1, 3, first) for first in (True, False)}
        overhead = {(first, kind): median_of(getattr(tiny[first], kind), 2000)
                    for first in (True, False) for kind in ("forward", "backward")}
        layers = []
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = _StepLayer(n_in, n_out, 5 + l, l == 0)
            calls = 1 if n_in * n_out >= 1 << 20 else 1000
            times = {kind: median_of(getattr(layer, kind), calls) - overhead[l == 0, kind]
                     for kind in ("forward", "backward")}
            # W's bytes read or written: forward 1 pass; update 2 (read + write); the hidden
            # delta 1 more unless the fused row pass makes it in the update's sweep.
            passes = 3 if l == 0 or takes_fused_path(n_in, n_out) else 4
            layers.append({**times, "bytes": passes * 4 * n_in * n_out})
    finally:
        gc.enable()
    return {"forward_s": sum(l["forward"] for l in layers),
            "backward_s": sum(l["backward"] for l in layers),
            "bytes": sum(l["bytes"] for l in layers), "layers": layers}
