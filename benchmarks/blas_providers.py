"""Every installed BLAS provider side by side, one thread: sgemm rates, model M's step, S's step.

For each provider (ghostmlp.blas.available(), named ones only) in interleaved rounds: the
kernels' own sgemm at the three reference shapes (benchmarks.machine.SGEMM_SHAPES), the
float32 step of model M at batch 256 and of model S at batch 1 (Network.train_step). Beside
them, the same shapes through numpy's matmul and PyTorch's (when installed): the best of
all is the reference rate the step's efficiency is measured against.

    python -m benchmarks.blas_providers [--rounds 3] [--json FILE]
"""
import argparse
import datetime
import json
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import machine
from ghostmlp import blas
from benchmarks.kernels_step import make_pairs, time_steps
from ghostmlp.bench import MODELS, blas_label, build_network

CASES = (("M", 256, 3), ("S", 1, 3000))      # model, batch, timed steps per round


def matmul_rates(repeats):
    """{shape label: GFLOP/s} of numpy's and PyTorch's matmul (one thread) at SGEMM_SHAPES."""
    rates = {"numpy": {}, "torch": {}}
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(1)
    for label, m, n, k in machine.SGEMM_SHAPES:
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        flop = 2 * m * n * k
        rates["numpy"][label] = flop / machine.best_time(lambda: np.matmul(a, b, out=out),
                                                         repeats) / 1e9
        if torch is not None:
            ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
            rates["torch"][label] = flop / machine.best_time(
                lambda: torch.matmul(ta, tb, out=tout), repeats) / 1e9
    return rates if torch is not None else {"numpy": rates["numpy"]}


def step_seconds(model, batch, steps):
    """(median, min) per-step seconds of `steps` float32 train_steps after two warm-ups, and
    the step's flops (6 x weights x batch)."""
    net = build_network(MODELS[model], "float32")
    pairs = make_pairs(MODELS[model], batch, 2, 2, seed=1)
    time_steps(net.train_step, pairs, 2, 1)
    times = time_steps(net.train_step, pairs, steps, 1)
    return statistics.median(times), min(times), 6 * net.n_weights * batch


def measure(rounds, repeats):
    settings = blas.available(paths=False)
    results = {s: {"gemm": {}, "steps": {}} for s in settings}
    default = blas.active().setting
    with threadpool_limits(1):
        matmul = matmul_rates(repeats)
        for _ in range(rounds):
            for setting in settings:
                blas.use(setting)
                entry = results[setting]
                entry["provider"] = blas.active().describe()
                for rate in machine.gemm_rates(repeats):
                    entry["gemm"][rate["shape"]] = max(entry["gemm"].get(rate["shape"], 0),
                                                       rate["gflops"])
                for model, batch, steps in CASES:
                    median, least, flops = step_seconds(model, batch, steps)
                    runs = entry["steps"].setdefault(f"{model} b{batch}", {"medians": []})
                    runs["medians"].append(median)
                    runs["min"] = min(runs.get("min", least), least)
                    runs["flops"] = flops
        facts = machine.facts()
    blas.use(default)
    return results, matmul, facts


def report(results, matmul, facts, command):
    shapes = [label for label, *_ in machine.SGEMM_SHAPES]
    best = max([v for entry in results.values() for v in entry["gemm"].values()]
               + [v for lib in matmul.values() for v in lib.values()])
    lines = ["# The BLAS providers side by side\n", f"Command: `{command}`\n",
             f"- Machine: {facts['cpu']}, {facts['cores']} cores; one BLAS thread; "
             f"OPENBLAS_CORETYPE = {facts['OPENBLAS_CORETYPE']}; numpy {facts['numpy']}, "
             f"scipy {facts['scipy']}; measured {datetime.date.today()}",
             f"- Reference rate: the best sgemm below over every provider, numpy's matmul and "
             f"PyTorch's: {best:.1f} GFLOP/s", ""]
    for setting, entry in results.items():
        lines.append(f"- `{setting}`: {blas_label({'blas_provider': entry['provider']})}")
    lines += ["", "| sgemm GFLOP/s, best of N | " + " | ".join(shapes) + " |",
              "| --- |" + " ---: |" * len(shapes)]
    for setting, entry in results.items():
        lines.append(f"| ghostmlp, `{setting}` | " + " | ".join(
            f"{entry['gemm'][s]:.1f}" for s in shapes) + " |")
    for name, rates in matmul.items():
        lines.append(f"| {name}'s matmul | " + " | ".join(f"{rates[s]:.1f}" for s in shapes) + " |")
    cases = list(next(iter(results.values()))["steps"])
    lines += ["", "| step (median of rounds' medians) | " + " | ".join(cases) + " | "
              "M b256 as % of the reference rate |", "| --- |" + " ---: |" * (len(cases) + 1)]
    for setting, entry in results.items():
        cells = []
        for case in cases:
            median = statistics.median(entry["steps"][case]["medians"])
            cells.append(f"{median * 1e3:.1f} ms" if median > 1e-3 else f"{median * 1e6:.1f} µs")
        m = entry["steps"]["M b256"]
        efficiency = m["flops"] / statistics.median(m["medians"]) / 1e9 / best
        lines.append(f"| `{setting}` | " + " | ".join(cells) + f" | {100 * efficiency:.1f} % |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many per sgemm")
    parser.add_argument("--json", help="append one JSON line with every figure to this file")
    args = parser.parse_args(argv)
    command = f"python -m benchmarks.blas_providers --rounds {args.rounds} --repeats {args.repeats}"
    results, matmul, facts = measure(args.rounds, args.repeats)
    print(report(results, matmul, facts, command))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"command": command, "machine": facts, "providers": results,
                                "matmul": matmul, "cases": CASES}) + "\n")


if __name__ == "__main__":
    main()
