"""Benchmark one float32 Network.train_step on one BLAS thread against this machine's own sgemm rate and memory bandwidth."""
import argparse
import datetime
import json
import math
import shlex
import sys
import time

from threadpoolctl import threadpool_limits

from benchmarks import machine
from benchmarks.kernels_fused import run_fused_layers
from benchmarks.kernels_report import print_report
from benchmarks.kernels_step import (
    FULL_CASES, HEADER, M_REPEATS, M_WARMUP, QUICK_CASES, S_GROUP, S_GROUPS, S_WARMUP, build,
    run_case,
)
from ghostmlp import _kernels
from ghostmlp.bench import MODELS


def log(message):
    print(message, file=sys.stderr, flush=True)


def machine_facts():
    """machine.facts() plus the kernels' fused-row threshold."""
    return {**machine.facts(), "FUSED_ROW_MIN_BYTES": _kernels.FUSED_ROW_MIN_BYTES}


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
        fused_rows = run_fused_layers(args.quick, log)
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
