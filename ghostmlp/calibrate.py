"""Measures this machine for the planner: GEMM rates, memory bandwidth and the cost of each collective; writes a machine file."""
import datetime
import itertools
import json
import os
import resource
import time

import numpy as np
from mpi4py import MPI
from scipy.optimize import nnls

from ghostmlp import _kernels
from ghostmlp.bench import machine_facts
from ghostmlp.exchange import Exchange
from ghostmlp.machine import MACHINE_FORMAT, OPERATIONS, collective_seconds, collective_terms

# GEMMs C[m, n] = A[m, k] B[k, n] with one dimension small (m: forward and delta GEMMs at
# batch m; k: gradient GEMMs; n: thin slices) and the other two large, either size of
# LARGE: a large operand in the caches, and one that streams from memory as a big
# layer's weights do.
GEMM_SMALL = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GEMM_LARGE = (512, 4096)
CUBE_SMALLEST = 32      # the smallest cube timed (smaller ones: mostly the wrapper)
CUBE_REPEATS = 20
BANDWIDTH_BYTES = 64 * 2**20
REDUCE_BYTES = 8 * 2**20
# float32 values per rank of each timed message: p2p sends this many to each neighbour,
# a collective among p ranks moves p times this many in all.
MESSAGE_VALUES = (1, 8, 64, 512, 4096, 32768, 262144, 2097152, 8388608)
TRIAL_SECONDS = 2e-3    # each trial repeats the call for about this long
MAX_LINES = 4           # fitted α-β lines per operation, by message size
QUICK = {"small": (1, 16, 256), "large": (256, 1024), "values": (1, 64, 4096, 262144), "trials": 2,
         "repeats": 1, "rounds": 1}
FULL = {"small": GEMM_SMALL, "large": GEMM_LARGE, "values": MESSAGE_VALUES, "trials": 5,
        "repeats": 3, "rounds": 3}


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
            # rounds, one after another: each figure is its best round's (load comes and goes)
            rounds = [(stream_rates(work, profile["repeats"] + 1),
                       communication_points(work, profile["values"], profile["trials"])
                       if work.Get_size() > 1 else None) for _ in range(profile["rounds"])]
            bandwidth = max(stream[0] for stream, _ in rounds)
            gamma = min(stream[1] for stream, _ in rounds)
            say(f"  bandwidth: {bandwidth / 1e9:.1f} GB/s per rank (copy, read + write); "
                f"sum: {gamma * 1e9:.3f} ns per byte")
            comms = (communication(work.Get_size(), [points for _, points in rounds], gamma, say)
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
    """[{dtype, m, n, k, call, flops_per_s}]: the BLAS calls of the kernels, through their own binding.

    One of m, n, k small, the others each of `large`: gemm, but where the kernels call
    level 2 at batch 1: gemv (m = 1: forward and delta products) and ger (k = 1: plain
    SGD's update).
    Cubes s x s x s give the rate of small GEMMs, less the wrapper's time (a 1 x 1 x 1
    call's), where that leaves a tenth or more of the time measured.
    """
    gemm, gemv, ger = _kernels.gemm, _kernels.gemv, _kernels.ger
    rng = np.random.default_rng(comm.Get_rank())
    one = np.ones((1, 1), dtype=dtype, order="F")
    overhead = _best_seconds(comm, lambda: gemm(1.0, one, one, 0.0, one),
                             CUBE_REPEATS)
    entries = []
    for family, size, big in [(f, s, b) for f in "mnk" for s in small for b in large
                              if s < b] + [
            ("cube", s, s) for s in small if s >= CUBE_SMALLEST]:
        m, n, k = (size,) * 3 if family == "cube" else (size if family == d else big
                                                         for d in "mnk")
        if size == 1 and family in "mk":
            w = np.asfortranarray(rng.random((big, big)).astype(dtype))
            x, y = (rng.random(big).astype(dtype) for _ in range(2))
            call, run = ("gemv", lambda: gemv(1.0, w, x, 0.0, y)) if (
                family == "m") else ("ger", lambda: ger(1.0, x, y, w))
        else:
            a = np.asfortranarray(rng.random((m, k)).astype(dtype))
            b = np.asfortranarray(rng.random((k, n)).astype(dtype))
            c = np.zeros((m, n), dtype=dtype, order="F")
            call, run = "gemm", lambda: gemm(1.0, a, b, 0.0, c)
        run()
        seconds = _best_seconds(comm, run, CUBE_REPEATS if family == "cube" else repeats)
        if family == "cube":
            if seconds - overhead < 0.1 * seconds:
                continue                # too small to time from Python
            seconds -= overhead
        entries.append({"dtype": dtype, "m": m, "n": n, "k": k, "call": call,
                        "flops_per_s": 2.0 * m * n * k / seconds})
    for family, big in ((f, b) for f in "mnk" for b in large):
        say(f"  {dtype}, small {family}, others {big}: " + ", ".join(
            f"{e[family]}: {e['flops_per_s'] / 1e9:.1f}" for e in entries
            if e[family] < big and max(e["m"], e["n"], e["k"]) == big) + " GFLOP/s")
    say(f"  {dtype}, cubes: " + ", ".join(f"{e['m']}: {e['flops_per_s'] / 1e9:.1f}"
                                        for e in entries if e["m"] == e["n"] == e["k"]))
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


def communication_points(comm, values, trials):
    """{op: [[p, n bytes, seconds]]}: each operation among the first p ranks, p = 2, 4, ...
    and size, for every count of values per rank (on every rank)."""
    points = {op: [] for op in OPERATIONS}
    for p in _sub_sizes(comm.Get_size()):
        sub = comm.Split(0 if comm.Get_rank() < p else MPI.UNDEFINED, comm.Get_rank())
        if sub != MPI.COMM_NULL:
            for op in OPERATIONS:
                for c in values:
                    points[op].append([p, *_time_operation(sub, op, c, trials)])
            sub.Free()
        comm.Barrier()
    return comm.bcast(points, root=0)


def communication(size, rounds, gamma, say):
    """{"ranks", "gamma_s_per_byte", op: {lines, max_relative_error, points}}: each point's
    best over the rounds of communication_points, fitted (see fit)."""
    result = {"ranks": _sub_sizes(size), "gamma_s_per_byte": gamma}
    for op in OPERATIONS:
        points = [[p, n, min(r[op][i][2] for r in rounds)] for i, (p, n, _) in
                  enumerate(rounds[0][op])]
        result[op] = {**fit(op, points, gamma), "points": points}
        say(f"  {op}: " + "; ".join(
            f"from {line['from_bytes']} bytes alpha {line['alpha_s'] * 1e6:.2f} us, "
            f"beta {line['beta_s_per_byte'] * 1e9:.3f} ns/byte" for line in result[op]["lines"])
            + f" (within {100 * result[op]['max_relative_error']:.0f} %)")
    return result


def _sub_sizes(size):
    return sorted({2**i for i in range(1, size.bit_length())} | {size})


def _time_operation(comm, op, values, trials):
    """(n bytes as collective_terms counts them, the best over trials of the slowest rank's
    seconds per call) of one operation as the step makes it: through exchange.Exchange
    (the halo of a one-neuron layer, rows gathered and reduce-scattered), and the grid's
    Iallreduce of a bucket."""
    p = comm.Get_size()
    ex = Exchange(comm)
    if op == "p2p":
        rows = np.ones((3, values), np.float32)         # ghostTop, the own neuron, ghostBottom
        persistent = ex.halo(rows)
        nbytes = rows[1].nbytes
    elif op in ("allgather", "reduce_scatter"):
        full, own = np.ones((p, values), np.float32), np.empty((1, values), np.float32)
        persistent = (ex.allgather_rows(full, [1] * p) if op == "allgather" else
                      ex.reduce_scatter_rows(full, own, [1] * p))
        nbytes = full.nbytes
    else:
        vector = np.ones(values * p, np.float32)
        persistent = None
        run = lambda: ex.comm.Iallreduce(MPI.IN_PLACE, vector, op=MPI.SUM).Wait()
        nbytes = vector.nbytes
    if persistent is not None:
        run = lambda: (ex.start(persistent), ex.wait(persistent))
    for _ in range(3):
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
    if persistent is not None:
        persistent.free()
    return nbytes, min(times)


def fit(op, points, gamma):
    """{lines, max_relative_error}: collective_terms fitted to [[p, n bytes, seconds]] by
    non-negative least squares on relative residuals, γ given.

    MPI changes protocol and algorithm with the message size, and large messages leave
    the caches, so up to MAX_LINES lines [{from_bytes, alpha_s, beta_s_per_byte}] each
    cover the sizes from their from_bytes (a measured size) on, two sizes or more each;
    the fewest lines with the smallest largest relative error. α of a later line is its
    intercept: negative where the cost per byte grows (out of the caches), as long as the
    line is positive over its range.
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
                lines.append({"from_bytes": low, **_line(op, share, gamma, low > 0)})
            error = max(abs(collective_seconds(op, p, n, lines, gamma) - seconds) / seconds
                        for p, n, seconds in points)
            if best is None or error < best[1]:
                best = lines, error
    return {"lines": best[0], "max_relative_error": best[1]}


def _line(op, points, gamma, intercept=False):
    """{alpha_s, beta_s_per_byte} >= 0 of the points; with intercept, any α that keeps
    the line positive at the smallest point."""
    rows, targets = [], []
    for p, nbytes, seconds in points:
        a, b, c = collective_terms(op, p)
        rows.append([a / seconds, b * nbytes / seconds])
        targets.append((seconds - c * nbytes * gamma) / seconds)
    rows, targets = np.array(rows), np.array(targets)
    (alpha, beta), _ = nnls(rows, targets)
    if intercept:
        free = np.linalg.lstsq(rows, targets, rcond=None)[0]
        p, nbytes, seconds = min(points, key=lambda point: point[1])
        line = {"alpha_s": float(free[0]), "beta_s_per_byte": float(free[1])}
        if free[1] >= 0 and collective_seconds(op, p, nbytes, [{"from_bytes": 0, **line}],
                                               gamma) > 0:
            return line
    return {"alpha_s": float(alpha), "beta_s_per_byte": float(beta)}
