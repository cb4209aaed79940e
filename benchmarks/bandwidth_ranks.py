"""Memory bandwidth per rank while every rank of the job streams at once: what a memory-bound
step (batch 1) can gain from more ranks on one node.

    python -m benchmarks.bandwidth_ranks [--mib 512] [--repeats 5] [--json FILE]
    mpiexec -n 2 python -m benchmarks.bandwidth_ranks ...

Each rank streams its own float32 array of --mib MiB; every timing starts on a barrier, so
that the ranks' passes overlap. A read-only pass (`np.dot(a, a)`, sdot) and an in-place
read + write pass (`np.add(a, 0, out=a)`), best of --repeats per rank; reads and writes
both count. Rank 0 prints each rank's GB/s and their sum.
"""
import argparse
import json
import time

import numpy as np
from mpi4py import MPI
from threadpoolctl import threadpool_limits

from benchmarks import machine

PASSES = {
    "read": (1, lambda a: np.dot(a, a)),
    "inplace": (2, lambda a: np.add(a, 0, out=a)),
}


def measure(comm, nbytes, repeats):
    """{pass: best GB/s of this rank} with every rank's timing started on a barrier."""
    a = np.ones(nbytes // 4, dtype=np.float32)
    rates = {}
    for name, (passes, run) in PASSES.items():
        run(a)                                  # pages touched, out of the timing
        best = float("inf")
        for _ in range(repeats):
            comm.Barrier()
            t0 = time.perf_counter()
            run(a)
            best = min(best, time.perf_counter() - t0)
        rates[name] = passes * a.nbytes / best / 1e9
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="array size per rank, MiB")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="append one JSON line to this file (rank 0)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    with threadpool_limits(1):
        rates = comm.gather(measure(comm, args.mib << 20, args.repeats), root=0)
    if comm.rank:
        return
    total = {name: sum(r[name] for r in rates) for name in PASSES}
    print(f"{comm.size} rank(s), {args.mib} MiB each, best of {args.repeats}:")
    for rank, r in enumerate(rates):
        print(f"  rank {rank}: read {r['read']:.1f} GB/s, in-place {r['inplace']:.1f} GB/s")
    print(f"  sum: read {total['read']:.1f} GB/s, in-place {total['inplace']:.1f} GB/s")
    if args.json:
        record = {"benchmark": "benchmarks.bandwidth_ranks", "ranks": comm.size,
                  "mib_per_rank": args.mib, "repeats": args.repeats, "per_rank": rates,
                  "sum": total, "machine": machine.facts()}
        with open(args.json, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
