"""The kernels' bias + activation pass, ns per value, and a training step by hidden activation: `python -m benchmarks.activations`.

    python -m benchmarks.activations [--rounds 7] [--json FILE]

Each activation of ghostmlp.network.ACTIVATIONS over Z[128, 256] (float32 and float64,
inputs drawn from N(0, 2)), through ghostmlp._kernels.bias_activation with a bias, one
thread; each round copies the inputs back before every call and takes the copy's own
time off; the best round is printed. Then one serial float32 training step (mse, SGD) of
each network of STEP_CASES with each hidden activation: the best round's ms per step.
"""
import argparse
import json
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

import ghostmlp
from benchmarks import machine
from ghostmlp import _kernels
from ghostmlp.network import ACTIVATIONS

SHAPE = (128, 256)
CALLS = 200
STEP_CASES = (([3, 64, 128, 256, 64], 256), ([784, 256, 256, 10], 64))   # sizes, batch
HIDDEN = ("sigmoid", "tanh", "relu")


def nanoseconds_per_value(dtype, code, rounds):
    """Best round's ns per value of bias_activation(Z, b, code), less the copy that restores Z."""
    source = np.random.default_rng(0).normal(0.0, 2.0, SHAPE).astype(dtype)
    z, bias = np.empty_like(source), np.full(SHAPE[0], 0.1, dtype=dtype)

    def copy():
        np.copyto(z, source)

    def both():
        np.copyto(z, source)
        _kernels.bias_activation(z, bias, code)

    alone = min(timeit.repeat(copy, number=CALLS, repeat=rounds))
    total = min(timeit.repeat(both, number=CALLS, repeat=rounds))
    return max(total - alone, 0.0) / CALLS / source.size * 1e9


def step_milliseconds(sizes, batch, activation, rounds):
    """Best round's ms per serial float32 train_step of sizes with `activation` hidden layers."""
    net = ghostmlp.Network(seed=0, dtype="float32", loss="mse", learning_rate=0.01)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, activation)
    net.add_layer("output", sizes[-1], "softmax").initialize()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = np.zeros((batch, sizes[-1]), np.float32)
    y[:, 1] = 1
    one = min(timeit.repeat(lambda: net.train_step(X, y), number=1, repeat=3))
    steps = max(3, int(0.2 / max(one, 1e-6)))
    return min(timeit.repeat(lambda: net.train_step(X, y), number=steps, repeat=rounds)) / steps * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="append one JSON line to this file")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        found = {dtype: {name: nanoseconds_per_value(dtype, code, args.rounds)
                         for name, code in ACTIVATIONS.items()}
                 for dtype in ("float32", "float64")}
        steps = [{"sizes": sizes, "batch": batch,
                  "ms_per_step": {a: step_milliseconds(sizes, batch, a, args.rounds)
                                  for a in HIDDEN}} for sizes, batch in STEP_CASES]
    for dtype, rates in found.items():
        print(f"{dtype}: " + ", ".join(f"{name} {ns:.2f}" for name, ns in rates.items())
              + " ns per value")
    for case in steps:
        print(f"step of {case['sizes']} at batch {case['batch']}: " + ", ".join(
            f"{a} {ms:.3f}" for a, ms in case["ms_per_step"].items()) + " ms")
    if args.json:
        record = {"benchmark": "benchmarks.activations", "shape": SHAPE, "rounds": args.rounds,
                  "ns_per_value": found, "steps": steps, "ghostmlp": _kernels.__file__,
                  "machine": machine.facts()}
        with open(args.json, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
