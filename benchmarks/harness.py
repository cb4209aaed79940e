"""The mpirun benchmark harness: `mpiexec -n P python -m benchmarks.harness train|compare ...` or `--quick`."""
import argparse
import json
import shlex
import sys

from mpi4py import MPI

from benchmarks import compare
from ghostmlp.bench import TRAIN_FIELDS, add_arguments, describe, time_training

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
        records.append(time_training(options, comm, command("--quick") + f" [{connectivity}]"))
    if comm.Get_rank() == 0:
        options = argparse.Namespace(model="S", scale=1.0, batch=[1], dtype="float32",
                                     iterations=20, warmup=5)
        records += compare.run(options, out=lambda *_: None)
        for record in records:
            missing = [f for f in TRAIN_FIELDS if f not in record] if record["kind"] == "train" else []
            if missing or json.loads(json.dumps(record)) != record:
                raise SystemExit(f"harness --quick: record lacks {missing}")
        emit(records, args.json)


def command(subcommand):
    """How this run was started, as a user would type it."""
    size = MPI.COMM_WORLD.Get_size()
    launcher = f"mpiexec -n {size} " if size > 1 else ""
    arguments = sys.argv[sys.argv.index(subcommand):]
    return f"{launcher}python -m benchmarks.harness {shlex.join(arguments)}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke profile, under a minute")
    parser.add_argument("--json", help="with --quick: append the JSON lines to this file")
    commands = parser.add_subparsers(dest="command")
    add_arguments(commands.add_parser("train", help="time training steps of a Table I model"))
    compare_parser = commands.add_parser(
        "compare", help="ghostmlp vs numpy vs PyTorch vs the machine's limits (one process)")
    compare.add_arguments(compare_parser)
    compare_parser.add_argument("--json", help="append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.quick:
        quick(args)
    elif args.command == "train":
        record = time_training(args, MPI.COMM_WORLD, command("train"))
        if record is not None:
            emit([record], args.json)
    elif args.command == "compare":
        if MPI.COMM_WORLD.Get_rank() == 0:
            emit(compare.run(args), args.json)
    else:
        parser.error("give --quick or a command (train, compare)")


if __name__ == "__main__":
    main()
