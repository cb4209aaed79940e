"""One exchange of the model-parallel step, started and waited from compiled code (as the
step does) and through mpi4py from Python (as it did), interleaved in one run.

    mpiexec -n 2 python -m benchmarks.step_exchange [--values 128] [--calls 20000]
                                                    [--rounds 7] [--json FILE]

The exchanges are exchange.Exchange's persistent requests over rows of --values float32
(a batch-1 layer's rows, as model S's): the halo of one own neuron (2 messages out, 2
in), and the allgather and reduce-scatter of one row per rank (where the library has
persistent collectives). Each round times --calls back-to-back calls of each way after a
barrier; rank 0 prints the best round's µs per call (the slowest rank's) and the ratio.
"""
import argparse
import datetime
import json

import numpy as np
from mpi4py import MPI

from benchmarks import machine
from ghostmlp import _kernels
from ghostmlp.exchange import COMPILED_ENTRY_POINTS, CompiledRequests, Exchange


def persistents(ex, values):
    """{name: a persistent exchange} over rows of `values` float32."""
    p = ex.size
    halo = np.ones((3, values), np.float32)
    full, own = np.ones((p, values), np.float32), np.empty((1, values), np.float32)
    return {"halo": ex.halo(halo), "allgather": ex.allgather_rows(full, [1] * p),
            "reduce_scatter": ex.reduce_scatter_rows(full, own, [1] * p)}


def seconds_per_call(comm, run, calls):
    """The slowest rank's seconds per call of `calls` calls run(calls) makes, after a barrier."""
    comm.Barrier()
    start = MPI.Wtime()
    run(calls)
    return comm.allreduce((MPI.Wtime() - start) / calls, op=MPI.MAX)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=128, help="float32 values per row")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="append one JSON line to this file (rank 0)")
    args = parser.parse_args(argv)
    if COMPILED_ENTRY_POINTS is None:
        raise SystemExit("this MPI library exports no MPI_Startall/MPI_Waitall to compiled code")
    comm = MPI.COMM_WORLD
    ex = Exchange(comm)
    ways = {}
    for name, persistent in persistents(ex, args.values).items():
        if persistent.run is not None:      # a blocking collective: no requests
            continue
        compiled = CompiledRequests(persistent, "allgather", np.zeros(3, np.int64),
                                    COMPILED_ENTRY_POINTS)

        def from_python(calls, persistent=persistent):
            for _ in range(calls):
                ex.start(persistent, finish=True)

        ways[name] = {"compiled": lambda calls, c=compiled: _kernels.run_requests(c, calls),
                      "python": from_python}
    best = {name: {way: float("inf") for way in runs} for name, runs in ways.items()}
    for _ in range(args.rounds):
        for name, runs in ways.items():
            for way, run in runs.items():
                best[name][way] = min(best[name][way], seconds_per_call(comm, run, args.calls))
    if comm.rank:
        return
    print(f"{comm.size} ranks, rows of {args.values} float32, best of {args.rounds} rounds "
          f"of {args.calls} calls, µs per call:")
    for name, times in best.items():
        print(f"  {name:15s} compiled {times['compiled'] * 1e6:6.2f}   python "
              f"{times['python'] * 1e6:6.2f}   ratio {times['python'] / times['compiled']:.2f}")
    if args.json:
        record = {"benchmark": "benchmarks.step_exchange", "ranks": comm.size,
                  "values": args.values, "calls": args.calls, "rounds": args.rounds,
                  "microseconds_per_call": {name: {way: t * 1e6 for way, t in times.items()}
                                            for name, times in best.items()},
                  "mpi": MPI.Get_library_version().splitlines()[0],
                  "machine": machine.facts(),
                  "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        with open(args.json, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
