"""Measures this machine for the planner: GEMM rates, memory bandwidth and the cost of each collective; writes a machine file."""
import datetime
import itertools
import json
import os
import resource
import time

import numpy as np
from mpi4py import MPI
from scipy.linalg import blas
from scipy.optimize import nnls

from ghostmlp.bench import machine_facts
from ghostmlp.plan import MACHINE_FORMAT, OPERATIONS, collective_seconds, collective_terms

# GEMMs C[m, n] = A[m, k] B[k, n] with one dimension small (m: forward and delta GEMMs at
# batch m; k: gradient GEMMs; n: thin slices) and the other two large: LARGE up to
# STREAMED (the large operand streams from memory, as a big layer's weights do), half of
# it above (compute-bound: the same rate, in a quarter of the time).
GEMM_SMALL = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GEMM_LARGE = 4096
GEMM_STREAMED = 32
BANDWIDTH_BYTES = 64 * 2**20
REDUCE_BYTES = 8 * 2**20
# float32 values per rank of each timed message: p2p sends this many to each neighbour,
# a collective among p ranks moves p times this many in all.
MESSAGE_VALUES = (1, 8, 64, 512, 4096, 32768, 262144, 2097152, 8388608)
TRIAL_SECONDS = 2e-3    # each trial repeats the call for about this long
MAX_LINES = 3           # fitted α-β lines per operation, by message size
QUICK = {"small": (1, 16, 256), "large": 1024, "values": (1, 64, 4096, 262144), "trials": 2,
         "repeats": 1}
FULL = {"small": GEMM_SMALL, "large": GEMM_LARGE, "values": MESSAGE_VALUES, "trials": 7,
        "repeats": 3}


def calibrate(comm=None, dtypes=("float32", "float64"), quick=False, command=None, log=None):
    """The machine file (a dict, see README "Choosing a layout") measured on the ranks of comm.

    Every rank measures at once, one BLAS thread each (as training runs); a time is the
    slowest rank's best of several (a machine's limit is what it can do: other load only
    slows it). comm=None or one rank: compute and memory only, "comm": None. Collective.
    """
    from threadpoolctl import threadpool_limits
    say = log or (lambda *_: None)
    work = (comm if comm is not None else MPI.COMM_SELF).Dup()
    profile = QUICK if quick else FULL
    load = list(os.getloadavg())
    try:
        with threadpool_limits(1):
            baseline = _slowest(work, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
            gemm = [entry for dtype in dtypes
                    for entry in gemm_rates(work, dtype, profile["small"], profile["large"],
                                            profile["repeats"], say)]
            bandwidth, gamma = stream_rates(work, profile["repeats"] + 1)
            say(f"  bandwidth: {bandwidth / 1e9:.1f} GB/s per rank (copy, read + write); "
                f"sum: {gamma * 1e9:.3f} ns per byte")
            comms = (communication(work, gamma, profile["values"], profile["trials"], say)
                     if work.Get_size() > 1 else None)
            facts = machine_facts()
        node = work.Split_type(MPI.COMM_TYPE_SHARED)
        per_node = int(_slowest(work, node.Get_size()))
        node.Free()
    finally:
        work.Free()
    node_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = facts.get("cores_usable") or facts.get("cores")
    notes = [f"load average before and after: {load} and {list(os.getloadavg())}"]
    if not comms:
        notes.append("measured on one rank: no communication parameters")
    if cores and per_node > cores:
        notes.append(f"{per_node} ranks on {cores} cores (oversubscribed): every rate is shared")
    return {
        "format": MACHINE_FORMAT, "name": os.uname().nodename, "kind": "measured",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "ranks": (comm.Get_size() if comm is not None else 1),
        "ranks_per_node": per_node, "oversubscribed": bool(cores and per_node > cores),
        "memory_bytes_per_node": node_bytes, "memory_bytes_per_rank": node_bytes / per_node,
        "baseline_bytes_per_rank": baseline, "bandwidth_bytes_per_s": bandwidth,
        "gemm": gemm, "comm": comms, "facts": facts, "notes": notes,
    }


def write(machine, path):
    """Write a machine file (JSON, indented)."""
    with open(path, "w") as out:
        json.dump(machine, out, indent=1)
        out.write("\n")


def _slowest(comm, value):
    return comm.allreduce(float(value), op=MPI.MAX)


def _best_seconds(comm, run, repeats):
    """The slowest rank's best time of run() over `repeats`, all ranks starting together."""
    best = float("inf")
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return _slowest(comm, best)


def gemm_rates(comm, dtype, small, large, repeats, say):
    """[{dtype, m, n, k, flops_per_s}]: scipy's gemm (the kernels' BLAS) with m, n or k small."""
    gemm = blas.sgemm if np.dtype(dtype) == np.float32 else blas.dgemm
    rng = np.random.default_rng(comm.Get_rank())
    entries = []
    for family in "mnk":
        for size in small:
            big = large if size <= GEMM_STREAMED else large // 2
            m, n, k = (size if family == d else big for d in "mnk")
            a = np.asfortranarray(rng.random((m, k)).astype(dtype))
            b = np.asfortranarray(rng.random((k, n)).astype(dtype))
            c = np.zeros((m, n), dtype=dtype, order="F")
            run = lambda: gemm(1.0, a, b, beta=0.0, c=c, overwrite_c=1)
            run()
            seconds = _best_seconds(comm, run, repeats)
            entries.append({"dtype": dtype, "m": m, "n": n, "k": k,
                            "flops_per_s": 2.0 * m * n * k / seconds})
        say(f"  {dtype} gemm, small {family}: " + ", ".join(
            f"{e[family]}: {e['flops_per_s'] / 1e9:.1f}" for e in entries[-len(small):])
            + " GFLOP/s")
    return entries


def stream_rates(comm, repeats):
    """(copy bandwidth in bytes/s, reads and writes counted; γ: seconds per byte of a sum
    a += b), each rank streaming at once."""
    a = np.ones(BANDWIDTH_BYTES // 4, dtype=np.float32)
    b = np.zeros_like(a)
    np.copyto(b, a)                 # both touched: page faults stay out of the timing
    copy = _best_seconds(comm, lambda: np.copyto(b, a), repeats)
    x = np.ones(REDUCE_BYTES // 4, dtype=np.float32)
    y = np.ones_like(x)
    np.add(x, y, out=x)
    total = _best_seconds(comm, lambda: np.add(x, y, out=x), repeats)
    return 2 * a.nbytes / copy, total / x.nbytes


def communication(comm, gamma, values, trials, say):
    """{"ranks", "gamma_s_per_byte", op: {lines, max_relative_error, points: [[p, n bytes,
    seconds]]}} measured on the first p ranks, p = 2, 4, ... and size (see fit)."""
    size = comm.Get_size()
    counts = sorted({2**i for i in range(1, size.bit_length()) if 2**i <= size} | {size})
    points = {op: [] for op in OPERATIONS}
    for p in counts:
        sub = comm.Split(0 if comm.Get_rank() < p else MPI.UNDEFINED, comm.Get_rank())
        if sub != MPI.COMM_NULL:
            for op in OPERATIONS:
                for c in values:
                    nbytes, seconds = _time_operation(sub, op, c, trials)
                    points[op].append([p, nbytes, seconds])
            sub.Free()
        comm.Barrier()
    points = comm.bcast(points, root=0)
    result = {"ranks": counts, "gamma_s_per_byte": gamma}
    for op in OPERATIONS:
        result[op] = {**fit(op, points[op], gamma), "points": points[op]}
        say(f"  {op}: " + "; ".join(
            f"from {line['from_bytes']} bytes alpha {line['alpha_s'] * 1e6:.2f} us, "
            f"beta {line['beta_s_per_byte'] * 1e9:.3f} ns/byte" for line in result[op]["lines"])
            + f" (within {100 * result[op]['max_relative_error']:.0f} %)")
    return result


def _time_operation(comm, op, values, trials):
    """(n bytes as collective_terms counts them, the best over trials of the slowest rank's
    seconds per call) of one operation as the step calls it."""
    p, rank = comm.Get_size(), comm.Get_rank()
    if op == "p2p":
        send, recv = np.ones((2, values), np.float32), np.empty((2, values), np.float32)
        before, after = (rank - 1) % p, (rank + 1) % p

        def run():      # exchange.post_halo + wait: both neighbours at once
            MPI.Request.Waitall([comm.Irecv(recv[0], before, 11), comm.Irecv(recv[1], after, 12),
                                 comm.Isend(send[0], before, 12), comm.Isend(send[1], after, 11)])
        nbytes = send[0].nbytes
    elif op == "allgather":
        full = np.ones(values * p, np.float32)
        plan = ([values] * p, [values * r for r in range(p)])
        run = lambda: comm.Allgatherv(MPI.IN_PLACE, [full, plan])
        nbytes = full.nbytes
    elif op == "reduce_scatter":
        partial, own = np.ones(values * p, np.float32), np.empty(values, np.float32)
        run = lambda: comm.Reduce_scatter(partial, own, [values] * p, op=MPI.SUM)
        nbytes = partial.nbytes
    else:
        vector = np.ones(values * p, np.float32)
        run = lambda: comm.Iallreduce(MPI.IN_PLACE, vector, op=MPI.SUM).Wait()
        nbytes = vector.nbytes
    run()
    comm.Barrier()
    start = MPI.Wtime()
    run()
    repeat = max(1, int(TRIAL_SECONDS / max(_slowest(comm, MPI.Wtime() - start), 1e-7)))
    repeat = int(comm.allreduce(repeat, op=MPI.MIN))
    times = []
    for _ in range(trials):
        comm.Barrier()
        start = MPI.Wtime()
        for _ in range(repeat):
            run()
        times.append(_slowest(comm, (MPI.Wtime() - start) / repeat))
    return nbytes, min(times)


def fit(op, points, gamma):
    """{lines, max_relative_error}: collective_terms fitted to [[p, n bytes, seconds]] by
    non-negative least squares on relative residuals, γ given.

    MPI changes protocol and algorithm with the message size, and large messages leave
    the caches, so up to MAX_LINES lines [{from_bytes, alpha_s, beta_s_per_byte}] each
    cover the sizes from their from_bytes (a measured size) on, two sizes or more each;
    the fewest lines with the smallest largest relative error.
    """
    sizes = sorted({n for _, n, _ in points})
    best = None
    for count in range(1, MAX_LINES + 1):
        for starts in itertools.combinations(sizes[2:-1], count - 1):
            if any(sizes.index(b) - sizes.index(a) < 2 for a, b in zip(starts, starts[1:])):
                continue
            bounds = (0,) + starts + (float("inf"),)
            lines = []
            for low, high in zip(bounds, bounds[1:]):
                share = [point for point in points if low <= point[1] < high]
                lines.append({"from_bytes": low, **_line(op, share, gamma)})
            error = max(abs(collective_seconds(op, p, n, lines, gamma) - seconds) / seconds
                        for p, n, seconds in points)
            if best is None or error < best[1]:
                best = lines, error
    return {"lines": best[0], "max_relative_error": best[1]}


def _line(op, points, gamma):
    rows, targets = [], []
    for p, nbytes, seconds in points:
        a, b, c = collective_terms(op, p)
        rows.append([a / seconds, b * nbytes / seconds])
        targets.append((seconds - c * nbytes * gamma) / seconds)
    (alpha, beta), _ = nnls(np.array(rows), np.array(targets))
    return {"alpha_s": float(alpha), "beta_s_per_byte": float(beta)}
