"""Data vs model vs hybrid layouts at one rank count: `python -m benchmarks.grids [--ranks 2 4]`.

Each layout is one `benchmarks.harness train` run under mpiexec (its JSON line appended to
RESULTS, default benchmarks/results/grids.jsonl), every layout once a round, `--rounds`
rounds (a machine's slow spells then fall on every layout alike); the report is a Markdown
table per model and batch of the latest sweep: time per step and communication share (the
medians over the rounds), speed-up over one rank, and the planner's prediction beside each
measurement when a machine file is given.
"""
import datetime
import statistics
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.scaling import find_mpiexec, harness_command, read_jsonl

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "grids.jsonl"
ITERATIONS = {1: 200, 16: 100, 256: 20}      # timed steps per batch size (model S)
M_ITERATIONS = {1: 10, 16: 5, 256: 4}        # model M


def layouts(ranks):
    """(label, grid, connectivity, blocks, replica update) of every layout compared at
    `ranks` ranks; the replicas of data and hybrid layouts update both ways."""
    if ranks == 1:
        return [("serial", (1, 1), "dense", None, None)]
    rows = [("data allreduce", (ranks, 1), "dense", None, "allreduce"),
            ("data shared", (ranks, 1), "dense", None, "shared"),
            ("model dense", (1, ranks), "dense", None, None),
            ("model ghost", (1, ranks), "ghost", ranks, None)]
    if ranks == 4:
        rows += [(f"hybrid {kind} {update}", (2, 2), kind, 2 if kind == "ghost" else None, update)
                 for kind in ("dense", "ghost") for update in ("allreduce", "shared")]
    return rows


def run(args):
    """Every (model, batch, rank count, layout) once a round: one harness run each, its
    record appended with the sweep (when it started) and the round."""
    mpiexec = args.mpiexec or find_mpiexec()
    sweep = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for round_ in range(args.rounds):
        for model, batch, ranks in ((m, b, r) for m in args.models for b in args.batches
                                    for r in [1] + args.ranks):
            for label, grid, connectivity, blocks, update in layouts(ranks):
                record = _measure(mpiexec, model, batch, grid, connectivity, blocks, update,
                                  args.timeout)
                record.update(layout=label, sweep=sweep, round=round_)
                with open(args.results, "a") as results:
                    results.write(json.dumps(record) + "\n")


def run_layout(model, grid, connectivity="dense", blocks=None, update=None):
    """The run of scaling.harness_command for a layout of `model` on `grid`."""
    return {"model": model, "scale": 1.0, "ranks": grid[0] * grid[1], "grid": list(grid),
            "connectivity": connectivity, "blocks": blocks or 1, "master": False,
            "replica_update": update}


def _measure(mpiexec, model, batch, grid, connectivity, blocks, update, timeout):
    """The record of one `benchmarks.harness train` run of a layout."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.jsonl"
        layout = run_layout(model, grid, connectivity, blocks, update)
        iterations = (M_ITERATIONS if model == "M" else ITERATIONS)[batch]
        command = harness_command(layout, mpiexec, batch, iterations, 2, "float32", out)
        print(shlex.join(command), file=sys.stderr, flush=True)
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text().splitlines()[-1])


def predictor(path):
    """The planner's step seconds for a grids record, from the machine file at `path`."""
    from ghostmlp import plan
    machine = plan.load_machine(path)

    def predict(record):
        layout = plan.Candidate(tuple(record["grid"]), record["connectivity"],
                                record["blocks"], record["master"],
                                record.get("replica_update") or "allreduce")
        return plan.predict(record["sizes"], record["batch"], layout, machine,
                            record["dtype"]).total_s
    return predict


def latest_sweep(records):
    """{(model, batch, ranks, layout): record} of each key's latest sweep (a record without
    one: a sweep of its own), its step and communication share the medians over the
    sweep's rounds."""
    runs = {}
    for record in records:
        key = (record["model"], record["batch"], record["ranks"], record["layout"])
        sweep = record.get("sweep") or record["when"]
        if key not in runs or sweep != runs[key][0]:
            runs[key] = (sweep, [])
        runs[key][1].append(record)
    latest = {}
    for key, (_, rounds) in runs.items():
        seconds = statistics.median(r["seconds_per_iteration"]["median"] for r in rounds)
        latest[key] = {**rounds[-1], "seconds_per_iteration": {"median": seconds},
                       "comm_percent": statistics.median(r["comm_percent"] for r in rounds),
                       "rounds": len(rounds)}
    return latest


def report(records, cores, predict=None):
    """Markdown tables of the latest sweep of each (model, batch, ranks, layout), with the
    planner's prediction and its error beside each measurement when `predict` is given,
    and whether the planner's pick among a rank count's rows is the measured fastest."""
    latest = latest_sweep(records)
    lines = []
    for model, batch in sorted({key[:2] for key in latest}):
        base = latest.get((model, batch, 1, "serial"))
        lines += [f"### Model {model}, batch {batch}", "",
                  "| ranks | layout | grid | ms per step | speed-up | communication |"
                  + (" predicted ms | error |" if predict else ""),
                  "|---:|---|---|---:|---:|---:|" + ("---:|---:|" if predict else "")]
        rows = sorted((key for key in latest if key[:2] == (model, batch)),
                      key=lambda key: (key[2], key[3] != "serial", key[3]))
        for key in rows:
            record = latest[key]
            seconds = record["seconds_per_iteration"]["median"]
            speedup = base["seconds_per_iteration"]["median"] / seconds if base else float("nan")
            ranks = f"{record['ranks']}" + (" (oversubscribed)" if record["ranks"] > cores else "")
            grid = "x".join(map(str, record["grid"]))
            layout = record["layout"] + (f" K={record['blocks']}" if record["blocks"] > 1 else "")
            cells = [ranks, layout, grid, f"{seconds * 1e3:.3f}", f"{speedup:.2f}",
                     f"{record['comm_percent']:.1f} %"]
            if predict:
                predicted = predict(record)
                cells += [f"{predicted * 1e3:.3f}", f"{predicted / seconds - 1:+.0%}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if predict:
            lines += [_verdict((latest[key] for key in rows if key[2] == ranks), predict)
                      for ranks in sorted({key[2] for key in rows}) if ranks > 1]
            lines.append("")
    return "\n".join(lines)


def _verdict(records, predict):
    """One line: the layout the planner predicts fastest, and how it ran against the fastest."""
    records = list(records)
    measured = min(records, key=lambda r: r["seconds_per_iteration"]["median"])
    picked = min(records, key=predict)
    ratio = (picked["seconds_per_iteration"]["median"]
             / measured["seconds_per_iteration"]["median"])
    return (f"- {picked['ranks']} ranks: the planner picks {picked['layout']}, measured "
            f"{ratio:.2f} x the fastest ({measured['layout']}).")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grids", description=__doc__)
    parser.add_argument("--models", nargs="+", default=["S", "M"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--mpiexec")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per run (600)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every layout (3)")
    parser.add_argument("--machine", help="a machine file: the planner's predictions beside")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        run(args)
    predict = predictor(args.machine) if args.machine else None
    print(report(read_jsonl(args.results), os.cpu_count() or 1, predict))


if __name__ == "__main__":
    main()
