"""One case of the comparison measured: the three steps timed in interleaved rounds, one record."""
import datetime
import gc
import math
import statistics
import time

import numpy as np

from benchmarks.compare_steps import numpy_step
from ghostmlp.bench import LEARNING_RATE, synthetic_data

ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
BLOCK_SECONDS = 0.02        # fast steps are timed in blocks of consecutive steps lasting this long
MAX_BLOCK = 10000
LIMIT_REPEATS = 3           # best-of-N for the gemm rate and the bandwidth
DISTINCT_BATCHES = 2        # the steps cycle over this many synthetic minibatches
# (model, batch): the largest ghostmlp / PyTorch step-time ratio aimed at (paper's sizes, float32)
TARGETS = {("M", 256): 0.86, ("S", 1): 0.1}


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


def plain(value):
    """JSON-round-trip-safe: Python scalars, lists for tuples, None for NaN/inf."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def ratio(a, b):
    return a / b if a is not None and b else None


def run_case(state, model, scale, batch, dtype, iterations, warmup, gemm_gflops, limits,
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
    ratio_torch = ratio(ghost, torch_s)
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
        "efficiency": sgemm_s / ghost, "ratio_memory_floor": ratio(ghost, floor_s),
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
    return plain(record)
