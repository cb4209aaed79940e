"""What the trainer adds to the step: `python -m benchmarks.trainer_overhead [--models S M]`.

For each Table I model and batch, one process, one BLAS thread: the step alone (a loop of
Engine.train on prepared minibatches), one epoch of the same minibatches through
Trainer.epoch (order, copies, the per-step divergence check), and the per-epoch weight
check (Engine.weights_finite) on its own. Appends JSON lines to RESULTS (default
benchmarks/results/trainer_overhead.jsonl) and prints the Markdown table.
"""
import argparse
import json
import math
from pathlib import Path

from threadpoolctl import threadpool_limits

from benchmarks.machine import best_time
from ghostmlp.bench import MODELS, build_network, machine_facts, synthetic_data
from ghostmlp.train import Trainer

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "trainer_overhead.jsonl"
STEPS = {"S": 400, "M": 4}          # minibatches per timed epoch


def measure(model, batch, repeats):
    sizes = MODELS[model]
    steps = STEPS[model]
    net = build_network(sizes, batch_size=batch)
    X, y = synthetic_data(sizes, batch * steps)
    engine, lr = net.engine, 0.01
    engine.bind_share(batch)
    batches = [(X[i:i + batch], y[i:i + batch]) for i in range(0, len(X), batch)]
    trainer = Trainer(net, batch, shuffle=True)

    def bare():
        for xb, tb in batches:
            engine.train(xb, tb, len(xb), lr)

    trainer.epoch(X, y)                 # warm-up: binds, touches the buffers
    bare_s = best_time(bare, repeats)
    epoch_s = best_time(lambda: trainer.epoch(X, y), repeats)
    check_s = best_time(engine.weights_finite, repeats * 20)
    isfinite_s = best_time(lambda: [math.isfinite(0.5) for _ in range(steps)], repeats)
    step = bare_s / steps
    return {"benchmark": "trainer_overhead", "model": model, "batch": batch, "steps": steps,
            "step_s": step, "trainer_step_s": epoch_s / steps,
            "trainer_overhead": epoch_s / bare_s - 1,
            "weight_check_s": check_s, "loss_check_s": isfinite_s / steps,
            "checks_per_step": (check_s / steps + isfinite_s / steps) / step,
            "dtype": "float32", "machine": machine_facts()}


def table(records):
    lines = ["| model | batch | step | through Trainer.epoch | trainer's share | weight check "
             "(once an epoch) | checks per step, of a step |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['model']} | {r['batch']} | {r['step_s'] * 1e6:.1f} µs | "
                     f"{r['trainer_step_s'] * 1e6:.1f} µs | {r['trainer_overhead']:+.1%} | "
                     f"{r['weight_check_s'] * 1e6:.1f} µs | {r['checks_per_step']:.3%} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=("S", "M"), default=["S", "M"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    args = parser.parse_args(argv)
    records = []
    with threadpool_limits(1):
        for model in args.models:
            for batch in args.batches:
                if model == "M" and batch < 256:
                    continue            # M's small batches: minutes per epoch, nothing new
                records.append(measure(model, batch, args.repeats))
                with open(args.results, "a") as out:
                    out.write(json.dumps(records[-1]) + "\n")
    print(table(records))
    return records


if __name__ == "__main__":
    main()
