"""What data parallelism on D ranks of one node can reach, beside what it reaches: `python -m benchmarks.data_parallel_bound --model M --batch 256`.

Each round runs, one after another: one rank on the whole batch (serial); D independent
one-rank runs at once, each on its 1/D of the batch, sharing nothing (the bound: a
replica's step with no communication, no waiting and no shared update, on a node whose D
cores are all busy); and the grid (D, 1) with replicas that share memory. Each is a
`benchmarks.harness train` run (the bound's time a round is its slowest run's median
step); the report gives the medians over the rounds and the speed-ups over serial: the
bound's speed-up is the most any data-parallel layout can show on this node, whatever
its exchanges. Records are appended to RESULTS (default
benchmarks/results/data_parallel_bound.jsonl).
"""
import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.grids import run_layout
from benchmarks.scaling import find_mpiexec, harness_command, read_jsonl

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "data_parallel_bound.jsonl"
KINDS = ("serial", "bound", "shared")


def _commands(mpiexec, model, batch, replicas, iterations, folder):
    """{kind: [(command, JSON path)]} of one round; the bound's D commands run at once."""
    def one(name, grid, update, rows):
        path = Path(folder) / f"{name}.jsonl"
        return harness_command(run_layout(model, grid, update=update), mpiexec, rows,
                               iterations, 2, "float32", path), path
    share = -(-batch // replicas)           # the largest share: the slowest replica's
    return {"serial": [one("serial", (1, 1), None, batch)],
            "bound": [one(f"bound{d}", (1, 1), None, share) for d in range(replicas)],
            "shared": [one("shared", (replicas, 1), "shared", batch)]}


def run_round(mpiexec, model, batch, replicas, iterations, timeout):
    """{kind: the median step's seconds} of one round (the bound's: its slowest run's)."""
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind, runs in _commands(mpiexec, model, batch, replicas, iterations, folder).items():
            for command, _ in runs:
                print(shlex.join(command), file=sys.stderr, flush=True)
            started = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for command, _ in runs]
            for process in started:
                if process.wait(timeout=timeout):
                    raise SystemExit(f"{kind}: a run failed (exit {process.returncode})")
            found[kind] = max(json.loads(path.read_text().splitlines()[-1])
                              ["seconds_per_iteration"]["median"] for _, path in runs)
    return found


def report(records):
    """Markdown: the medians over the latest sweep's rounds and the speed-ups over serial."""
    sweep = records[-1]["sweep"]
    rounds = [r for r in records if r["sweep"] == sweep]
    first = rounds[0]
    median = {kind: statistics.median(r["seconds"][kind] for r in rounds) for kind in KINDS}
    lines = [f"Model {first['model']}, batch {first['batch']}, {first['replicas']} ranks, "
             f"{len(rounds)} rounds (sweep {sweep}); ms per step, median over the rounds "
             "(each round's speed-ups in brackets)", "",
             "| layout | ms per step | speed-up over serial |", "|---|---:|---:|"]
    for kind, label in (("serial", "serial, whole batch"),
                        ("bound", f"bound: {first['replicas']} independent ranks at once, "
                                  "one share each"),
                        ("shared", f"grid ({first['replicas']}, 1), shared replicas")):
        each = ", ".join(f"{r['seconds']['serial'] / r['seconds'][kind]:.2f}" for r in rounds)
        lines.append(f"| {label} | {median[kind] * 1e3:.2f} | "
                     f"{median['serial'] / median[kind]:.2f} ({each}) |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_parallel_bound",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("S", "M"), default="M")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--replicas", type=int, default=2, help="D: ranks of the node (2)")
    parser.add_argument("--iterations", type=int, default=6, help="timed steps a run (6)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per run (600)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--mpiexec")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        mpiexec = args.mpiexec or find_mpiexec()
        sweep = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        for round_ in range(args.rounds):
            seconds = run_round(mpiexec, args.model, args.batch, args.replicas,
                                args.iterations, args.timeout)
            with open(args.results, "a") as results:
                results.write(json.dumps({"sweep": sweep, "round": round_, "model": args.model,
                                          "batch": args.batch, "replicas": args.replicas,
                                          "iterations": args.iterations,
                                          "seconds": seconds}) + "\n")
    print(report(read_jsonl(args.results)))


if __name__ == "__main__":
    main()
