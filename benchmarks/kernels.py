"""Benchmark one float32 Network.train_step on one BLAS thread against this machine's own sgemm rate and memory bandwidth."""
import argparse
import datetime
import gc
import json
import math
import shlex
import statistics
import sys
import time

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

from benchmarks import machine
from ghostmlp.bench import LEARNING_RATE, MODELS, build_network, synthetic_data
from ghostmlp import _kernels

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
TARGETS = [  # (model, batch, metric, comparison, bound, description)
    ("M", 256, "efficiency", ">=", 0.95, "M batch 256: efficiency >= 95 %"),
    ("M", 1, "ratio_to_floor", "<=", 1.3, "M batch 1: step time <= 1.3 x memory floor"),
    ("S", 1, "median_s", "<=", 20e-6, "S batch 1: median step <= 20 us"),
]
HEADER = ("iteration = one forward + loss + backward + update over B samples "
          "(Network.train_step(X, Y)); float32, loss mse, lr 0.01, sigmoid hidden, "
          "softmax output, one BLAS thread")


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ machine facts

def machine_facts():
    """machine.facts() plus the kernels' fused-row threshold."""
    return {**machine.facts(), "FUSED_ROW_MIN_BYTES": _kernels.FUSED_ROW_MIN_BYTES}


def takes_fused_path(fan_in, fan_out):
    """Whether the serial Step's batch-1 backward uses the fused row pass on a float32 layer."""
    return fan_in * fan_out * 4 >= _kernels.FUSED_ROW_MIN_BYTES


# ------------------------------------------------------------- machine limits

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
        calls.append(lambda h=h, w=w, out=out: blas.sgemm(1.0, h, w, 0.0, out, trans_b=1,
                                                          overwrite_c=1))
        if layer > 0:
            calls.append(lambda d=delta, w=w, dp=delta_prev: blas.sgemm(1.0, d, w, 0.0, dp,
                                                                        overwrite_c=1))
        calls.append(lambda d=delta, h=h, w=w: blas.sgemm(-LEARNING_RATE, d, h, 1.0, w,
                                                          trans_a=1, overwrite_c=1))

    def run_all():
        for call in calls:
            call()
    run_all()
    return machine.best_time(run_all, repeats)


# ------------------------------------------------------------------- train step

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
        wbytes = 4 * weights
        case["weight_bytes"] = wbytes
        case["memory_floor_s"] = 3 * wbytes / (limits["copy_gbs"] * 1e9)
        case["ratio_to_floor"] = median / case["memory_floor_s"]
        case["memory_floor_read_rw_s"] = (wbytes / (limits["read_gbs"] * 1e9)
                                          + 2 * wbytes / (limits["inplace_gbs"] * 1e9))
        case["ratio_to_floor_read_rw"] = median / case["memory_floor_read_rw_s"]
        case["effective_gbs"] = 3 * wbytes / median / 1e9
    return case


# ------------------------------------------------- fused batch-1 row path vs not

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


def run_fused_layers(quick):
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


# ------------------------------------------------------------------------ report

def _fmt(x, spec, none="—"):
    return none if x is None else format(x, spec)


def _ms(seconds):
    """Milliseconds with enough significant digits for both 10 us and 1 s."""
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def _us(seconds):
    return f"{seconds * 1e6:.2f}" if seconds < 1e-3 else f"{seconds * 1e6:,.0f}"


def print_report(facts, command, limits, sgemm, cases, fused_rows, quick):
    p = print
    p("# ghostmlp kernel benchmark: one training step\n")
    p(f"{HEADER}.\n")
    p(f"Command: `{command}`\n")
    p("## Machine\n")
    p(f"- CPU: {facts['cpu']} (SIMD flags: {facts['cpu_simd']}); cores (os.cpu_count): "
      f"{facts['cores']}; caches (cpu0): {facts['caches_cpu0']}; memory: "
      f"{facts['memory_gib']} GiB; load average at start: "
      f"{', '.join(map(str, facts['load_average']))}")
    for lib in facts["blas"]:
        p(f"- BLAS: {lib['library']} {lib['version']}, core type {lib['architecture']}, "
          f"{lib['threads']} thread(s) ({lib['threading_layer']}), {lib['file']}")
    p(f"- Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']} "
      f"(the kernels and the sgemm reference use scipy's BLAS), ghostmlp {facts['ghostmlp']}, "
      f"FUSED_ROW_MIN_BYTES = {facts['FUSED_ROW_MIN_BYTES']}")
    p(f"- OPENBLAS_CORETYPE = {facts['OPENBLAS_CORETYPE']}, "
      f"OPENBLAS_L2_SIZE = {facts['OPENBLAS_L2_SIZE']}\n")
    p("## Machine limits, measured in this run (one thread, best of N)\n")
    for r in sgemm:
        p(f"- sgemm {r['shape']} ({r['gflop']:.1f} GFLOP): {r['gflops']:.1f} GFLOP/s")
    p(f"- reference sgemm rate (best of the above): {limits['sgemm_gflops']:.1f} GFLOP/s")
    p(f"- memory bandwidth on {limits['bytes'] / 2**20:.0f} MiB float32 arrays: copy "
      f"`np.copyto(b, a)` {limits['copy_gbs']:.1f} GB/s (read + write bytes counted), read-only "
      f"`sdot(a, a)` {limits['read_gbs']:.1f} GB/s, in-place `np.add(a, 0, out=a)` "
      f"{limits['inplace_gbs']:.1f} GB/s (read + write)\n")
    p("## Training step\n")
    p("| model | batch | median ms/step | min | max | samples/s | conn. updates/s (G) "
      "| sgemm-equivalent ms | efficiency % | memory floor ms | ratio to floor |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        p(f"| {c['model']} | {c['batch']} | {_ms(c['median_s'])} | {_ms(c['min_s'])} | "
          f"{_ms(c['max_s'])} | {c['samples_per_s']:,.0f} | {c['conn_updates_per_s'] / 1e9:.2f} | "
          f"{_ms(c['sgemm_equivalent_s'])} | {100 * c['efficiency']:.1f} | "
          f"{_fmt(c['memory_floor_s'] and c['memory_floor_s'] * 1e3, '.3f')} | "
          f"{_fmt(c['ratio_to_floor'], '.2f')} |")
    p("")
    p(f"- M = {'-'.join(map(str, MODELS['M']))} ({cases_weights('M'):,} weights), "
      f"S = {'-'.join(map(str, MODELS['S']))} ({cases_weights('S'):,} weights).")
    p("- M: warm-up steps, then single steps timed one by one (min/max over those); "
      f"S: {S_WARMUP} warm-up steps, then groups of {S_GROUP} steps timed together "
      "(min/max over the groups' per-step means). Timed counts: "
      + ", ".join(f"{c['model']}/{c['batch']}: {c['timed']} x {c['steps_per_timing']}" for c in cases)
      + ".")
    p("- sgemm-equivalent time = 6 x weights x batch flops / reference sgemm rate; "
      "efficiency = sgemm-equivalent time / median step time.")
    p("- memory floor (batch 1) = 3 passes over the weight bytes (read forward, read + write "
      "in backward/update) / copy bandwidth; ratio to floor = median step / floor. The same "
      "floor from the read-only and in-place bandwidths (W/read + 2W/in-place): "
      + ", ".join(f"{c['model']}: {c['memory_floor_read_rw_s'] * 1e3:.3f} ms, ratio "
                  f"{c['ratio_to_floor_read_rw']:.2f}, effective {c['effective_gbs']:.1f} GB/s"
                  for c in cases if c["batch"] == 1) + ". These are DRAM floors: weights "
      "that fit in the caches (S: "
      f"{4 * cases_weights('S') / 2**10:.0f} KiB) are not bound by them.")
    for c in cases:
        if c.get("step_gemms_s"):
            p(f"- {c['model']} batch {c['batch']}: the step's own sgemm calls alone (same shapes "
              f"and transposes, same BLAS, best of N) take {_ms(c['step_gemms_s'])} ms = "
              f"{100 * c['step_gemms_share']:.1f} % of the median step (their efficiency vs "
              f"the reference rate: {100 * c['step_gemms_efficiency']:.1f} %); the other "
              f"{_ms(c['median_s'] - c['step_gemms_s'])} ms is everything else (activations, "
              "softmax, loss, act', bias sums, input transpose, Python).")
    p("")
    p("## Targets\n")
    p("| target | measured | status |")
    p("|---|---:|---|")
    for model, batch, metric, op, bound, text in TARGETS:
        case = next((c for c in cases if c["model"] == model and c["batch"] == batch), None)
        if case is None:
            p(f"| {text} | — | not run{' (--quick)' if quick else ''} |")
            continue
        value = case[metric]
        met = value >= bound if op == ">=" else value <= bound
        shown = (f"{100 * value:.1f} %" if metric == "efficiency" else
                 f"{value:.2f} x" if metric == "ratio_to_floor" else f"{value * 1e6:.2f} us")
        p(f"| {text} | {shown} | {'met' if met else 'MISSED'} |")
    p("")
    p("## Fused batch-1 row path vs gemv + ger\n")
    p("Whole training step at batch 1, interleaved; the fused path is switched off with "
      f"weight_decay = {NO_FUSED_WEIGHT_DECAY:g} (non-zero, so the Step skips the fused "
      "path; beta = 1 - lr x wd rounds to 1.0 in float32, so the update is the same SGD step "
      "via gemv + ger).\n")
    p("| model | batch | fused layers (float32 weights >= %d bytes) | enabled ms/step "
      "| disabled ms/step | disabled / enabled |" % _kernels.FUSED_ROW_MIN_BYTES)
    p("|---|---:|---|---:|---:|---:|")
    for c in cases:
        ab = c["fused_ab"]
        if not ab:
            continue
        sizes = c["sizes"]
        fused = [f"{a}x{b}" for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
                 if l > 0 and takes_fused_path(a, b)]
        p(f"| {c['model']} | 1 | {', '.join(fused) or 'none'} | {_ms(ab['enabled_median_s'])} | "
          f"{_ms(ab['disabled_median_s'])} | "
          f"{ab['disabled_median_s'] / ab['enabled_median_s']:.3f} |")
    p("")
    if fused_rows:
        over = fused_rows[0]
        p("One layer, kernel wrappers at batch 1: `fused_delta_update(h, w, bias, delta, "
          "delta_prev, SIGMOID, lr)` vs `hidden_delta(...)` + `outer_update(..., alpha=-lr, "
          "beta=1)`. Times are medians per call pair in microseconds; 'net' subtracts the "
          f"Python wrapper overhead measured on a 1x1 layer (fused {_us(over['wrapper_overhead_fused_s'])} "
          f"us, unfused {_us(over['wrapper_overhead_unfused_s'])} us), which the Step does not pay.\n")
        p("| fan_in x fan_out | where | fused us | unfused us | unfused / fused | net fused us "
          "| net unfused us | net unfused / fused | current choice | same result |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
        for r in fused_rows:
            p(f"| {r['fan_in']}x{r['fan_out']} | {r['where']} | {_us(r['fused_s'])} | "
              f"{_us(r['unfused_s'])} | {r['speedup']:.2f} | {_us(r['fused_minus_overhead_s'])} | "
              f"{_us(r['unfused_minus_overhead_s'])} | {_fmt(r['speedup_minus_overhead'], '.2f')} | "
              f"{r['current_choice']} | {'yes' if r['same_result'] else 'NO'} |")
        p("")


def cases_weights(model):
    sizes = MODELS[model]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="S cases and M at batch 1 only, few repeats (smoke test)")
    parser.add_argument("--json", metavar="PATH",
                        help="append one JSON object per case to PATH (JSON Lines)")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help=f"timed repeats per case: single steps for M (default "
                             f"{M_REPEATS[1]}/{M_REPEATS[64]}/{M_REPEATS[256]} at batch "
                             f"1/64/256), groups of {S_GROUP} steps for S (default {S_GROUPS})")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    started = time.perf_counter()
    with threadpool_limits(1):
        facts = machine_facts()
        log("measuring the machine's limits ...")
        sgemm = machine.gemm_rates(2 if args.quick else 5, log=log)
        limits = machine.bandwidth(3 if args.quick else 5, log=log)
        limits["sgemm_gflops"] = max(r["gflops"] for r in sgemm)
        cases = []
        nets = {}
        for model, batch in (QUICK_CASES if args.quick else FULL_CASES):
            if model not in nets:
                nets.clear()        # one M at a time: 200 MB of weights
                log(f"building model {model} ...")
                nets[model] = build(MODELS[model])
            if model == "M":
                repeats = args.repeats or (3 if args.quick else M_REPEATS[batch])
                warmup, group = (1 if args.quick else M_WARMUP), 1
                ab = repeats if batch == 1 else 0
            else:
                repeats = args.repeats or (10 if args.quick else S_GROUPS)
                warmup, group = S_WARMUP, S_GROUP
                ab = max(repeats // 2, 3) if batch == 1 else 0
            log(f"timing {model} at batch {batch} ...")
            case = run_case(nets[model], model, batch, repeats, warmup, group, limits, ab)
            log(f"  median {case['median_s'] * 1e3:.4f} ms/step")
            cases.append(case)
        nets.clear()
        log("fused row path vs gemv + ger, per layer ...")
        fused_rows = run_fused_layers(args.quick)
    log(f"done in {time.perf_counter() - started:.1f} s")
    print_report(facts, command, limits, sgemm, cases, fused_rows, args.quick)
    if args.json:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        common = {"benchmark": "benchmarks.kernels", "time_utc": stamp, "command": command,
                  "header": HEADER, "machine": facts, "sgemm": sgemm, "limits": limits}
        with open(args.json, "a") as f:
            for record in cases + fused_rows:
                f.write(json.dumps(_json_safe({**common, **record})) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
