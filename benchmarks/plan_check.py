"""The planner's predicted step beside the measured one, for every model-parallel layout on the ranks of this mpiexec (Markdown, rank 0)."""
import argparse
import shlex
import sys

from mpi4py import MPI

from benchmarks.scaling_tables import fmt_seconds
# The installed ghostmlp, even from the checkout's root (see benchmarks/__init__.py).
from ghostmlp import plan
from ghostmlp.bench import MODELS, time_training

CASES = (("S", 1), ("S", 64), ("M", 1), ("M", 64))      # (Table I model, batch)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_check", description=__doc__)
    parser.add_argument("--machine", required=True, help="machine file of this machine")
    parser.add_argument("--cases", nargs="+", default=[f"{m}:{b}" for m, b in CASES],
                        help="MODEL:BATCH ... (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    ranks, machine = comm.Get_size(), plan.load_machine(args.machine)
    say = print if comm.Get_rank() == 0 else (lambda *_: None)
    say(f"`mpiexec -n {ranks} python -m benchmarks.plan_check {shlex.join(sys.argv[1:])}`; "
        f"machine file {args.machine}; {args.dtype}, median of {args.iterations} iterations")
    say("")
    say("| model | batch | layout | measured ms | predicted ms | predicted / measured "
        "| measured comm ms (max) | predicted comm ms |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in args.cases:
        model, batch = case.split(":")
        sizes, batch = MODELS[model], int(batch)
        # one replica: the grids that ghostmlp.bench's Network runs here
        for layout in (c for c in plan.enumerate_layouts(sizes, batch, ranks) if c.grid[0] == 1):
            options = argparse.Namespace(
                model=model, scale=1.0, grid=layout.grid, connectivity=layout.connectivity,
                blocks=layout.blocks if layout.ghost else None, master=layout.master,
                ghost_gradients="exact", batch=batch, iterations=args.iterations,
                warmup=args.warmup, dtype=args.dtype, threads=1, json=None)
            record = time_training(options, comm, case)
            if record is None:
                continue
            p = plan.predict(sizes, batch, layout, machine, args.dtype)
            measured = record["seconds_per_iteration"]["median"]
            say(f"| {model} | {batch} | {layout} | {fmt_seconds(measured * 1e3)} | "
                f"{fmt_seconds(p.total_s * 1e3)} | {p.total_s / measured:.2f} | "
                f"{fmt_seconds(record['comm_seconds']['max'] * 1e3)} | "
                f"{fmt_seconds(p.comm_s * 1e3)} |")


if __name__ == "__main__":
    main()
