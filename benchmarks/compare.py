"""ghostmlp's training step beside plain numpy, PyTorch (CPU) and the machine's own limits: one process, one thread."""
import argparse
import json
import numbers
import shlex
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import machine
from benchmarks.compare_measure import BLOCK_SECONDS, LIMIT_REPEATS, run_case
from benchmarks.compare_report import report
from benchmarks.compare_steps import TorchModel, import_torch, torch_summary
from ghostmlp.bench import MODELS, build_network, scaled_sizes

DEFAULT_BATCHES = {"S": [1, 32], "M": [1, 64, 256], "L": [1, 64]}
DEFAULT_ITERATIONS = 10
DEFAULT_WARMUP = 2


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


# ----------------------------------------------------------------------- run

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
                record = run_case(model_state, model, scale, batch, dtype, iterations, warmup,
                                  gemm_gflops, limits, facts, torch, torch_config, command)
                log(f"  ghostmlp {record['ghostmlp_s'] * 1e3:.4f} ms, numpy "
                    f"{record['numpy_s'] * 1e3:.4f} ms, torch "
                    + (f"{record['torch_s'] * 1e3:.4f} ms" if record["torch_s"] is not None
                       else "n/a"))
                records.append(record)
            model_state.clear()
        finally:
            if torch:
                torch.set_num_threads(old_torch_threads)
    report(records, gemm, limits, facts, torch_config, torch_missing, scale, dtype, command, out)
    return records


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
