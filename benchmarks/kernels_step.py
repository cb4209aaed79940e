"""The cases and repeats, one float32 Network.train_step timed, and the step's own sgemm calls alone."""
import gc
import statistics
import time

import numpy as np

from benchmarks import machine
from benchmarks.kernels_fused import step_products_b1
from ghostmlp import _kernels
from ghostmlp.bench import LEARNING_RATE, MODELS, build_network, synthetic_data

FULL_CASES = [("S", 1), ("S", 32), ("M", 1), ("M", 64), ("M", 256)]
QUICK_CASES = [("S", 1), ("S", 32), ("M", 1)]
M_REPEATS = {1: 10, 64: 5, 256: 3}          # timed single steps per M case
M_WARMUP = 3
S_WARMUP = 200
S_GROUP = 100                               # S steps are timed in groups of this many
S_GROUPS = 40
# weight_decay this small leaves the update unchanged (beta = 1 - lr * wd rounds to 1.0 in
# float32, so outer_update still takes the ger path) but is non-zero, which switches the
# fused batch-1 row path off in the serial Step's backward: a whole-step "fused disabled" run.
NO_FUSED_WEIGHT_DECAY = 1e-30
HEADER = ("iteration = one forward + loss + backward + update over B samples "
          "(Network.train_step(X, Y)); float32, loss mse, lr 0.01, sigmoid hidden, "
          "softmax output, one BLAS thread")


def measure_step_gemms(sizes, batch, repeats):
    """Best-of-N seconds of the step's own sgemm calls alone: same shapes, transposes, BLAS.

    The Step's C-ordered H[n, B] and W[fan_in, fan_out] are the column-major (B x n)
    and (fan_out x fan_in) matrices, i.e. Fortran-ordered arrays of those shapes. Per
    layer: forward gemm('N', 'T'), the hidden delta gemm('N', 'N') (not for the first
    layer) and the update gemm('T', 'N') with beta = 1 into W.
    """
    rng = np.random.default_rng(2)
    calls = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.asfortranarray(rng.uniform(-0.01, 0.01, (n_out, n_in)).astype(np.float32))
        h = np.asfortranarray(rng.random((batch, n_in), dtype=np.float32))
        out = np.zeros((batch, n_out), dtype=np.float32, order="F")
        delta = np.asfortranarray(rng.uniform(-1e-3, 1e-3, (batch, n_out)).astype(np.float32))
        delta_prev = np.zeros((batch, n_in), dtype=np.float32, order="F")
        calls.append(lambda h=h, w=w, out=out: _kernels.gemm(1.0, h, w, 0.0, out, trans_b=True))
        if layer > 0:
            calls.append(lambda d=delta, w=w, dp=delta_prev: _kernels.gemm(1.0, d, w, 0.0, dp))
        calls.append(lambda d=delta, h=h, w=w: _kernels.gemm(-LEARNING_RATE, d, h, 1.0, w,
                                                             trans_a=True))

    def run_all():
        for call in calls:
            call()
    run_all()
    return machine.best_time(run_all, repeats)


def build(sizes):
    return build_network(sizes, "float32")


def make_pairs(sizes, batch, n_distinct, length, seed):
    """`length` (X, Y) minibatches cycling over n_distinct synthetic ones."""
    distinct = [synthetic_data(sizes, batch, "float32", seed + 1000 * i) for i in range(n_distinct)]
    return [distinct[i % n_distinct] for i in range(length)]


def time_steps(step, pairs, count, group):
    """Per-step seconds of `count` timings: single steps (group 1) or all of `pairs` at once."""
    times = []
    for r in range(count):
        if group == 1:
            x, y = pairs[r % len(pairs)]
            t0 = time.perf_counter()
            step(x, y)
            times.append(time.perf_counter() - t0)
        else:
            t0 = time.perf_counter()
            for x, y in pairs:
                step(x, y)
            times.append((time.perf_counter() - t0) / len(pairs))
    return times


def run_case(net, model, batch, repeats, warmup, group, limits, ab_repeats):
    sizes = MODELS[model]
    weights = net.n_weights
    pairs = make_pairs(sizes, batch, 4 if group > 1 else 2, max(group, 2), seed=100 + batch)
    step = net.train_step
    for i in range(warmup):
        step(*pairs[i % len(pairs)])
    gc.disable()
    try:
        times = time_steps(step, pairs, repeats, group)
        ab = None
        if batch == 1 and ab_repeats:
            # Interleaved: fused batch-1 row path enabled (weight_decay 0) vs disabled.
            unfused = build_network(sizes, "float32", weight_decay=NO_FUSED_WEIGHT_DECAY)
            unfused.set_weights(net.get_weights())
            on, off = [], []
            for r in range(ab_repeats + 1):
                for other, out in ((net, on), (unfused, off)):
                    t = time_steps(other.train_step, pairs, 1, group)[0]
                    if r:                   # the first round is a warm-up
                        out.append(t)
            ab = {"enabled_median_s": statistics.median(on),
                  "disabled_median_s": statistics.median(off),
                  "timings": len(on), "group": group}
    finally:
        gc.enable()
    median = statistics.median(times)
    flops = 6 * weights * batch
    sgemm_s = flops / (limits["sgemm_gflops"] * 1e9)
    case = {
        "kind": "train_step", "model": model, "sizes": sizes, "batch": batch,
        "weights": weights, "timed": repeats, "steps_per_timing": group, "warmup_steps": warmup,
        "median_s": median, "min_s": min(times), "max_s": max(times),
        "samples_per_s": batch / median, "conn_updates_per_s": weights * batch / median,
        "flops": flops, "sgemm_gflops": limits["sgemm_gflops"],
        "sgemm_equivalent_s": sgemm_s, "efficiency": sgemm_s / median,
        "memory_floor_s": None, "ratio_to_floor": None, "fused_ab": ab, "step_gemms_s": None,
    }
    if batch > 1 and weights >= 1 << 20:
        case["step_gemms_s"] = measure_step_gemms(sizes, batch, max(2, min(repeats, 5)))
        case["step_gemms_share"] = case["step_gemms_s"] / median
        case["step_gemms_efficiency"] = sgemm_s / case["step_gemms_s"]
    if batch == 1:
        products = step_products_b1(sizes, 15 if weights < 1 << 20 else 3)
        case["step_products"] = products
        case["step_products_s"] = products["forward_s"] + products["backward_s"]
        case["step_products_share"] = case["step_products_s"] / median
        wbytes = 4 * weights
        case["weight_bytes"] = wbytes
        case["memory_floor_s"] = 3 * wbytes / (limits["copy_gbs"] * 1e9)
        case["ratio_to_floor"] = median / case["memory_floor_s"]
        case["memory_floor_read_rw_s"] = (wbytes / (limits["read_gbs"] * 1e9)
                                          + 2 * wbytes / (limits["inplace_gbs"] * 1e9))
        case["ratio_to_floor_read_rw"] = median / case["memory_floor_read_rw_s"]
        case["effective_gbs"] = 3 * wbytes / median / 1e9
    return case
