"""The mpirun benchmark harness: `mpiexec -n P python -m benchmarks.harness train|compare ...` or `--quick`."""
import argparse
import datetime
import json
import resource
import shlex
import sys

import numpy as np
from mpi4py import MPI
from threadpoolctl import threadpool_limits

from benchmarks import compare, machine
from benchmarks.models import MODELS, build_network, scaled_sizes, synthetic_data

ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
TRAIN_FIELDS = (
    "kind", "command", "ranks", "working_ranks", "master", "model", "scale", "sizes",
    "connectivity", "blocks", "connections", "batch", "dtype", "iterations", "warmup",
    "iteration", "seconds_per_iteration", "samples_per_second", "connection_updates_per_second",
    "compute_seconds", "comm_seconds", "comm_percent", "messages_per_rank", "bytes_per_rank",
    "collectives", "peak_rss_bytes", "weight_bytes", "machine", "mpi", "when")


def add_train_arguments(parser):
    parser.add_argument("--model", choices=sorted(MODELS), default="S")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every hidden layer by this (< 1 shrinks the model for small "
                             "machines); always printed")
    parser.add_argument("--connectivity", choices=("dense", "ghost"), default="ghost")
    parser.add_argument("--blocks", type=int, help="ghost blocks K (default: working ranks)")
    parser.add_argument("--master", action="store_true", help="rank 0 only gathers the outputs")
    parser.add_argument("--ghost-gradients", choices=("exact", "local"), default="exact")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--json", help="append one JSON line of results to this file (rank 0)")


def train(args, comm=MPI.COMM_WORLD, command=None):
    """Time `iterations` training steps after `warmup`; returns the JSON record on rank 0."""
    sizes = scaled_sizes(args.model, args.scale)
    net = build_network(sizes, args.dtype, comm=comm, connectivity=args.connectivity,
                        blocks=args.blocks, master=args.master,
                        ghost_gradients=args.ghost_gradients)
    X, y = synthetic_data(sizes, args.batch, args.dtype)
    times = []
    with threadpool_limits(args.threads):
        for step in range(args.warmup + args.iterations):
            if step == args.warmup:
                net.reset_stats()
            comm.Barrier()
            start = MPI.Wtime()
            net.train_step(X, y)
            times.append(MPI.Wtime() - start)
    # An iteration lasts as long as its slowest rank.
    timed = np.empty(args.iterations)
    comm.Allreduce(np.array(times[args.warmup:]), timed, op=MPI.MAX)
    stats = net.stats()
    peak_rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    weight_bytes = comm.gather(net.local_nbytes())
    if comm.Get_rank() != 0:
        return None
    median = float(np.median(timed))
    facts = machine.facts()
    record = {
        "kind": "train", "command": command or shlex.join(sys.argv),
        "ranks": comm.Get_size(), "working_ranks": net.workers, "master": net.master,
        "model": args.model, "scale": args.scale, "sizes": sizes,
        "connectivity": args.connectivity, "blocks": net.blocks, "connections": net.n_weights,
        "batch": args.batch, "dtype": args.dtype, "iterations": args.iterations,
        "warmup": args.warmup, "iteration": ITERATION, "threads_per_rank": args.threads,
        "seconds_per_iteration": {"median": median, "min": float(timed.min()),
                                  "max": float(timed.max())},
        "samples_per_second": args.batch / median,
        "connection_updates_per_second": net.n_weights * args.batch / median,
        "compute_seconds": {"max": stats["compute_seconds_max"], "mean": stats["compute_seconds_mean"]},
        "comm_seconds": {"max": stats["comm_seconds_max"], "mean": stats["comm_seconds_mean"]},
        "comm_percent": 100.0 * stats["comm_seconds_max"] / median,
        "messages_per_rank": stats["messages_per_rank"], "bytes_per_rank": stats["bytes_per_rank"],
        "collectives": stats["collectives"], "peak_rss_bytes": peak_rss,
        "weight_bytes": weight_bytes, "machine": facts, "mpi": facts.get("mpi"),
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return record


def describe(record):
    """One human line per train record."""
    t = record["seconds_per_iteration"]
    layout = record["connectivity"] + (f" K={record['blocks']}" if record["blocks"] > 1 else "")
    return (f"{record['model']} x{record['scale']:g} {layout} on {record['ranks']} rank(s)"
            f"{' (+master)' if record['master'] else ''}, batch {record['batch']}: "
            f"{t['median'] * 1e3:.3f} ms/iteration (min {t['min'] * 1e3:.3f}, max "
            f"{t['max'] * 1e3:.3f}), comm {record['comm_percent']:.2f} %, "
            f"peak RSS {max(record['peak_rss_bytes']) / 2**20:.0f} MiB/rank")


def emit(records, path):
    for record in records:
        line = json.dumps(record)
        print(describe(record) if record["kind"] == "train" else line, flush=True)
        if path:
            with open(path, "a") as out:
                out.write(line + "\n")


def quick(args, comm=MPI.COMM_WORLD):
    """Smoke profile (well under a minute): small train runs and one comparison; checks the JSON."""
    records = []
    for connectivity in ("dense", "ghost"):
        options = argparse.Namespace(model="S", scale=1.0, connectivity=connectivity, blocks=None,
                                     master=False, ghost_gradients="exact", batch=8,
                                     iterations=3, warmup=1, dtype="float32", threads=1, json=None)
        records.append(train(options, comm, command=shlex.join(sys.argv) + f" [{connectivity}]"))
    if comm.Get_rank() == 0:
        options = argparse.Namespace(model="S", scale=1.0, batch=[1], dtype="float32",
                                     iterations=20, warmup=5)
        records += compare.run(options, out=lambda *_: None)
        for record in records:
            missing = [f for f in TRAIN_FIELDS if f not in record] if record["kind"] == "train" else []
            if missing or json.loads(json.dumps(record)) != record:
                raise SystemExit(f"harness --quick: record lacks {missing}")
        emit(records, args.json)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke profile, under a minute")
    parser.add_argument("--json", help="with --quick: append the JSON lines to this file")
    commands = parser.add_subparsers(dest="command")
    add_train_arguments(commands.add_parser("train", help="time training steps of a Table I model"))
    compare_parser = commands.add_parser(
        "compare", help="ghostmlp vs numpy vs PyTorch vs the machine's limits (one process)")
    compare.add_arguments(compare_parser)
    compare_parser.add_argument("--json", help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.quick:
        quick(args)
    elif args.command == "train":
        record = train(args)
        if record is not None:
            emit([record], args.json)
    elif args.command == "compare":
        if MPI.COMM_WORLD.Get_rank() == 0:
            emit(compare.run(args), args.json)
    else:
        parser.error("give --quick or a command (train, compare)")


if __name__ == "__main__":
    main()
