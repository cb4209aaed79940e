"""Measures this machine for the planner: GEMM rates, memory bandwidth and the cost of each collective; writes a machine file."""
import datetime
import itertools
import json
import math
import os
import resource
import time

import numpy as np
from mpi4py import MPI
from scipy.optimize import nnls

from ghostmlp import _kernels
from ghostmlp.bench import CACHES, cpu0_caches, machine_facts
from ghostmlp.exchange import COMPILED_ENTRY_POINTS, CompiledRequests, Exchange
from ghostmlp.machine import (MACHINE_FORMAT, OPERATIONS, Machine, collective_seconds,
                              collective_terms)

# GEMMs C[m, n] = A[m, k] B[k, n] with one dimension small (m: forward and delta GEMMs at
# batch m; k: gradient GEMMs; n: thin slices) and the other two large, each size of
# LARGE: operands in the level-1 and level-2 caches (64, 256, 512), and ones that stream
# from memory as a big layer's weights do (4096). No size in between: a layer of 2048 x
# 2048 timed alone stays in a large last-level cache that a network's layers together
# would not fit in.
GEMM_SMALL = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GEMM_LARGE = (64, 256, 512, 4096)
CUBE_SMALLEST = 32      # the smallest cube timed (smaller ones: mostly the wrapper)
CUBE_REPEATS = 20
BANDWIDTH_BYTES = 64 * 2**20
# Working sets of sweep_rates: from 4 x the level-2 cache, doubling, up to twice a rank's
# share of the last-level cache as sysfs reports it, at most SWEEP_MAX_BYTES; a size
# belongs to the cache while a sweep over it runs CACHED_SPEEDUP x or more the rate of
# the largest (memory).
SWEEP_MAX_BYTES = 1 << 30
CACHED_SPEEDUP = 1.3
REDUCE_BYTES = 8 * 2**20
# float32 values per rank of each timed message: p2p sends this many to each neighbour,
# a collective among p ranks moves p times this many in all.
MESSAGE_VALUES = (1, 8, 64, 512, 4096, 32768, 262144, 2097152, 8388608)
TRIAL_SECONDS = 2e-3    # each trial repeats the call for about this long
ACTIVATION_SHAPE = (128, 256)   # neurons x batch of activation_rates: in the cache
OVERLAP_BYTES = 8 * 2**20  # the bucket of allreduce_overlap
OVERLAP_TESTS = 4           # its tests between GEMMs
OVERHEAD_LAYERS = (2, 6)    # weight layers of the small networks of step_overheads
OVERHEAD_WIDTH = 4          # their neurons per working rank and layer
OVERHEAD_STEPS = 200        # their timed steps
OVERHEAD_WARMUP = 5         # and untimed ones before them
MAX_LINES = 4           # fitted α-β lines per operation, by message size
QUICK = {"small": (1, 16, 256), "large": (256, 1024), "values": (1, 64, 4096, 262144), "trials": 2,
         "repeats": 1, "rounds": 1}
FULL = {"small": GEMM_SMALL, "large": GEMM_LARGE, "values": MESSAGE_VALUES, "trials": 5,
        "repeats": 3, "rounds": 3}


def calibrate(comm=None, dtypes=("float32", "float64"), quick=False, command=None, log=None):
    """The machine file (a dict, see README "Choosing a layout") measured on the ranks of comm.

    Every rank measures at once, one BLAS thread each (as training runs); a time is the
    median over several tries of the slowest rank's, as a step is the slowest rank's and
    the harness reports the median step: the planner predicts the step a run will see,
    not the machine's best moment. comm=None or one rank: compute and memory only,
    "comm": None. Collective.
    """
    from threadpoolctl import threadpool_limits
    say = log or (lambda *_: None)
    work = (comm if comm is not None else MPI.COMM_SELF).Dup()
    profile = QUICK if quick else FULL
    load = list(os.getloadavg())
    try:
        with threadpool_limits(1):
            baseline = _slowest(work, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
            node = work.Split_type(MPI.COMM_TYPE_SHARED)
            per_node = int(_slowest(work, node.Get_size()))
            node.Free()
            gemm = [entry for dtype in dtypes
                    for entry in gemm_rates(work, dtype, profile["small"], profile["large"],
                                            profile["repeats"], say, profile["rounds"])]
            # rounds, one after another: each figure is their median (load comes and goes)
            cache, reported_last_level = cache_bytes(), cache_bytes(level=None)
            sweeps = (sweep_rates(work, cache, reported_last_level // per_node,
                                  profile["repeats"] + 1) if cache and reported_last_level
                      else [])
            last_level = (effective_cache_bytes(sweeps, cache) * per_node if sweeps
                          else reported_last_level)
            rounds = [(stream_rates(work, profile["repeats"] + 1, cache),
                       communication_points(work, profile["values"], profile["trials"])
                       if work.Get_size() > 1 else None) for _ in range(profile["rounds"])]
            bandwidth = float(np.median([stream[0] for stream, _ in rounds]))
            gamma = float(np.median([stream[1] for stream, _ in rounds]))
            cached = float(np.median([stream[2] for stream, _ in rounds])) if cache else None
            say(f"  bandwidth: {bandwidth / 1e9:.1f} GB/s per rank (copy, read + write)"
                + (f", {cached / 1e9:.1f} GB/s within {cache // 1024} KiB" if cache else "")
                + f"; sum: {gamma * 1e9:.3f} ns per byte")
            if sweeps:
                say(f"  last-level cache: {last_level / 2**20:.0f} MiB in effect of "
                    f"{reported_last_level / 2**20:.0f} MiB reported; sweeps: " + ", ".join(
                        f"{size / 2**20:g} MiB {rate / 1e9:.1f} GB/s" for size, rate in sweeps))
            comms = (communication(work.Get_size(), [points for _, points in rounds], gamma, say)
                     if work.Get_size() > 1 else None)
            if comms:
                comms["overlap"] = allreduce_overlap(work, profile["repeats"], say)
            node_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            # what a prediction reads: the step overheads are measured against it
            rates = {
                "format": MACHINE_FORMAT, "kind": "measured", "ranks_per_node": per_node,
                "memory_bytes_per_node": node_bytes,
                "memory_bytes_per_rank": node_bytes / per_node,
                "baseline_bytes_per_rank": baseline, "bandwidth_bytes_per_s": bandwidth,
                "cache_bytes": cache, "cached_bandwidth_bytes_per_s": cached,
                "last_level_cache_bytes": last_level,
                "last_level_cache_reported_bytes": reported_last_level,
                "last_level_sweeps": sweeps, "gemm": gemm, "comm": comms,
                "activation_seconds_per_value": activation_rates(work, dtypes,
                                                                 profile["repeats"], say)}
            overheads = step_overheads(work, Machine(rates), say, per_node >= work.Get_size())
            facts = machine_facts()
    finally:
        work.Free()
    cores = facts.get("cores_usable") or facts.get("cores")
    notes = [f"load average before and after: {load} and {list(os.getloadavg())}"]
    if not comms:
        notes.append("measured on one rank: no communication parameters")
    if cores and per_node > cores:
        notes.append(f"{per_node} ranks on {cores} cores (oversubscribed): every rate is shared")
    return {
        "name": os.uname().nodename,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "ranks": (comm.Get_size() if comm is not None else 1),
        "oversubscribed": bool(cores and per_node > cores),
        **rates, "step_overheads": overheads, "facts": facts, "notes": notes,
    }


def step_overheads(comm, machine, say, one_node=False):
    """{kind: {step_s, layer_s}}: what ghostmlp's own step costs beyond what `machine`
    predicts for it (the Python and the calls around the arithmetic and the messages), per
    step and per weight layer, for each layout kind of plan.overhead_kinds on comm's ranks.

    Measured on small networks (OVERHEAD_WIDTH neurons a rank per layer, batch 1, float32,
    OVERHEAD_LAYERS weight layers), timed as the harness times steps (a barrier, then one
    step; the slowest rank's; the median of OVERHEAD_STEPS), less their prediction; the two
    depths give the share per layer. "one rank": every rank's own network at once;
    one_node: comm's ranks share a node (replicas that share memory are measured too).
    """
    from ghostmlp import plan
    p, found = comm.Get_size(), {}
    for kind, layout in plan.overhead_kinds(p, one_node).items():
        residual = []
        for depth in OVERHEAD_LAYERS:
            sizes = [OVERHEAD_WIDTH * layout.grid[1]] * (depth + 1)
            measured = _step_seconds(comm, sizes, layout)
            residual.append(measured - plan.predict(sizes, 1, layout, machine).total_s)
        (low, high), (short, deep) = OVERHEAD_LAYERS, residual
        layer = max(0.0, (deep - short) / (high - low))
        found[kind] = {"step_s": max(0.0, short - low * layer), "layer_s": layer}
        say(f"  step overhead, {kind}: {found[kind]['step_s'] * 1e6:.1f} us a step, "
            f"{layer * 1e6:.2f} us a layer")
    return found


def _step_seconds(comm, sizes, layout):
    """The median over OVERHEAD_STEPS of one train_step's seconds (its slowest rank's) of
    a network of `sizes` on `layout` (grid (1, 1): each rank's own, on MPI.COMM_SELF)."""
    from ghostmlp.bench import build_network, synthetic_data
    own = layout.grid == (1, 1)
    net = build_network(sizes, comm=MPI.COMM_SELF if own else comm, stall_timeout=0,
                        batch_size=1, **layout.options())
    X, y = synthetic_data(sizes, 1)
    _typical_seconds(comm, lambda: net.train_step(X, y), OVERHEAD_WARMUP)
    return _typical_seconds(comm, lambda: net.train_step(X, y), OVERHEAD_STEPS)


def write(machine, path):
    """Write a machine file (JSON, indented)."""
    with open(path, "w") as out:
        json.dump(machine, out, indent=1)
        out.write("\n")


def _slowest(comm, value):
    return comm.allreduce(float(value), op=MPI.MAX)


def _typical_seconds(comm, run, repeats):
    """The median over `repeats` of the slowest rank's time of run(), all ranks starting
    together each time."""
    times = []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    slowest = np.empty(len(times))
    comm.Allreduce(np.array(times), slowest, op=MPI.MAX)
    return float(np.median(slowest))


def _call_seconds(comm, run, repeats):
    """Seconds per call of run(), timed in loops of calls lasting about TRIAL_SECONDS
    (_typical_seconds of the loop; the same count of calls on every rank)."""
    start = time.perf_counter()
    run()
    once = _slowest(comm, time.perf_counter() - start)
    calls = int(comm.allreduce(max(1, min(10_000, int(TRIAL_SECONDS / max(once, 1e-7)))),
                               op=MPI.MIN))

    def loop():
        for _ in range(calls):
            run()
    return _typical_seconds(comm, loop, repeats) / calls


def gemm_rates(comm, dtype, small, large, repeats, say, rounds=1):
    """[{dtype, m, n, k, call, flops_per_s}]: the BLAS calls of the kernels, through their own binding.

    One of m, n, k small, the others each of `large`: gemm, but where the kernels call
    level 2 at batch 1: gemv (m = 1: forward and delta products) and ger (k = 1: plain
    SGD's update); k small accumulates into C (C += A B), as the gradient GEMM does.
    Cubes s x s x s give the rate of small GEMMs. Each time is a call's in a loop of calls,
    less the wrapper's time (a 1 x 1 x 1 call's: the step calls BLAS from compiled code),
    keeping a tenth or more of it; a cube left with less is not kept (too small to time).
    Every shape is timed once a round, the median of its rounds kept: a slow spell of the
    machine then falls on one round of some shapes, not on every repeat of one.
    """
    gemm = _kernels.gemm
    one = np.ones((1, 1), dtype=dtype, order="F")
    overhead = _call_seconds(comm, lambda: gemm(1.0, one, one, 0.0, one), CUBE_REPEATS)
    shapes = [(f, s, b) for f in "mnk" for s in small for b in large if s < b] + [
        ("cube", s, s) for s in small if s >= CUBE_SMALLEST]
    timed = {}
    for _ in range(rounds):
        for shape in shapes:
            call, seconds = _time_gemm(comm, dtype, *shape,
                                       CUBE_REPEATS if shape[0] == "cube" else repeats)
            timed.setdefault(shape, (call, []))[1].append(seconds)
    typical = {shape: (call, float(np.median(times))) for shape, (call, times) in timed.items()}
    entries = []
    for (family, size, big), (call, seconds) in typical.items():
        if family == "cube" and seconds - overhead < 0.1 * seconds:
            continue
        m, n, k = _dimensions(family, size, big)
        entries.append({"dtype": dtype, "m": m, "n": n, "k": k, "call": call,
                        "flops_per_s": 2.0 * m * n * k / max(seconds - overhead, 0.1 * seconds)})
    for family, big in ((f, b) for f in "mnk" for b in large):
        say(f"  {dtype}, small {family}, others {big}: " + ", ".join(
            f"{e[family]}: {e['flops_per_s'] / 1e9:.1f}" for e in entries
            if e[family] < big and max(e["m"], e["n"], e["k"]) == big) + " GFLOP/s")
    say(f"  {dtype}, cubes: " + ", ".join(f"{e['m']}: {e['flops_per_s'] / 1e9:.1f}"
                                        for e in entries if e["m"] == e["n"] == e["k"]))
    return entries


def _dimensions(family, size, big):
    """(m, n, k) of a shape of gemm_rates: a cube of `size`, or `size` in the family's
    dimension and `big` in the other two."""
    return (size,) * 3 if family == "cube" else tuple(size if family == d else big
                                                      for d in "mnk")


def _time_gemm(comm, dtype, family, size, big, repeats):
    """(call, seconds per call) of one shape of gemm_rates, on operands made for it."""
    gemm, gemv, ger = _kernels.gemm, _kernels.gemv, _kernels.ger
    m, n, k = _dimensions(family, size, big)
    if size == 1 and family in "mk":
        w = np.full((big, big), 0.5, dtype=dtype, order="F")
        x, y = np.full(big, 0.5, dtype=dtype), np.full(big, 0.5, dtype=dtype)
        call, run = ("gemv", lambda: gemv(1.0, w, x, 0.0, y)) if (
            family == "m") else ("ger", lambda: ger(1e-3, x, y, w))
    else:
        a = np.full((m, k), 0.5, dtype=dtype, order="F")
        b = np.full((k, n), 0.5, dtype=dtype, order="F")
        c = np.zeros((m, n), dtype=dtype, order="F")
        beta = 1.0 if family == "k" else 0.0
        call, run = "gemm", lambda: gemm(1e-3, a, b, beta, c)
    run()
    return call, _call_seconds(comm, run, repeats)


def stream_rates(comm, repeats, cache=None):
    """(copy bandwidth in bytes/s, reads and writes counted; γ: seconds per byte of a sum
    a += b; the copy bandwidth of a pass of cache bytes, or None), each rank streaming at
    once."""
    a = np.ones(BANDWIDTH_BYTES // 4, dtype=np.float32)
    b = np.zeros_like(a)
    np.copyto(b, a)                 # both touched: page faults stay out of the timing
    copy = _typical_seconds(comm, lambda: np.copyto(b, a), repeats)
    x = np.ones(REDUCE_BYTES // 4, dtype=np.float32)
    y = np.ones_like(x)
    np.add(x, y, out=x)
    total = _typical_seconds(comm, lambda: np.add(x, y, out=x), repeats)
    cached = None
    if cache:
        # Half the cache in all (source and target), so that other data keeps its room.
        c = np.ones(cache // 16, dtype=np.float32)
        d = np.zeros_like(c)
        cached = 2 * c.nbytes / _call_seconds(comm, lambda: np.copyto(d, c), repeats)
    return 2 * a.nbytes / copy, total / x.nbytes, cached


def sweep_rates(comm, cache, share, repeats):
    """[[bytes, read bytes per second]]: a sweep (sdot) over working sets from 4 x cache,
    doubling, to 2 x share (at most SWEEP_MAX_BYTES), every rank sweeping its own at once;
    the median of repeats of the slowest rank's. What the last-level cache holds for a rank as
    the step sweeps it: less than sysfs reports where other tenants or cores share it."""
    sizes, size = [], 4 * cache
    while size <= min(2 * max(share, cache), SWEEP_MAX_BYTES):
        sizes.append(size)
        size *= 2
    found = []
    for size in sizes:
        a = np.ones(size // 4, dtype=np.float32)
        np.dot(a, a)                # touched: page faults stay out of the timing
        found.append([size, size / _typical_seconds(comm, lambda: np.dot(a, a), repeats)])
    return found


def effective_cache_bytes(sweeps, floor):
    """The largest working set of sweep_rates' [[bytes, rate]] that runs at least
    CACHED_SPEEDUP x the rate of the largest (which streams from memory); `floor` (the
    level-2 cache) where none does."""
    memory = sweeps[-1][1]
    held = [size for size, rate in sweeps[:-1] if rate >= CACHED_SPEEDUP * memory]
    return max(held, default=floor)


def activation_rates(comm, dtypes, repeats, say):
    """{dtype: {name: seconds per value}} of every activation of ghostmlp.network.ACTIVATIONS:
    the kernels' bias and activation pass over ACTIVATION_SHAPE values in the cache, each
    from the same inputs (a copy in, less the copy's own time)."""
    from ghostmlp.network import ACTIVATIONS
    found = {}
    for dtype in dtypes:
        source = np.linspace(-4, 4, math.prod(ACTIVATION_SHAPE), dtype=dtype).reshape(
            ACTIVATION_SHAPE)
        z = np.empty_like(source)
        copy = _call_seconds(comm, lambda: np.copyto(z, source), repeats)
        found[dtype] = {}
        for name, code in ACTIVATIONS.items():
            def run(code=code):
                np.copyto(z, source)
                _kernels.bias_activation(z, None, code)
            seconds = max(_call_seconds(comm, run, repeats) - copy, 0.0)
            found[dtype][name] = seconds / source.size
        say(f"  {dtype} activations: " + ", ".join(
            f"{name} {t * 1e9:.2f}" for name, t in found[dtype].items()) + " ns per value")
    return found


def cache_bytes(root=CACHES, level=2):
    """Bytes of cpu0's data or unified cache of `level` (None: the last level), from
    sysfs (bench.cpu0_caches); None where unknown."""
    found = {}
    for number, kind, size in cpu0_caches(root):
        if kind in ("Data", "Unified") and size.rstrip("KM").isdigit():
            found[number] = int(size.rstrip("KM")) * {"K": 2**10, "M": 2**20}.get(size[-1], 1)
    return found.get(max(found) if level is None and found else level)


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
    median over the rounds of communication_points, fitted (see fit)."""
    result = {"ranks": _sub_sizes(size), "gamma_s_per_byte": gamma}
    for op in OPERATIONS:
        points = [[p, n, float(np.median([r[op][i][2] for r in rounds]))] for i, (p, n, _) in
                  enumerate(rounds[0][op])]
        result[op] = {**fit(op, points, gamma), "points": points}
        say(f"  {op}: " + "; ".join(
            f"from {line['from_bytes']} bytes alpha {line['alpha_s'] * 1e6:.2f} us, "
            f"beta {line['beta_s_per_byte'] * 1e9:.3f} ns/byte" for line in result[op]["lines"])
            + f" (within {100 * result[op]['max_relative_error']:.0f} %)")
    return result


def allreduce_overlap(comm, repeats, say):
    """The share (0 to 1) of a gradient bucket's all-reduce that travels while the rank
    computes: an Iallreduce of OVERLAP_BYTES over comm's ranks posted before GEMMs of about
    as long, tested OVERLAP_TESTS times between them (as the backward pass tests between
    layers), then waited for; against the two alone. An MPI library that moves messages
    only inside its calls (MPICH over shared memory, with no progress thread) is near 0."""
    vector = np.ones(OVERLAP_BYTES // 4, np.float32)
    a = np.full((256, 256), 0.5, np.float32, order="F")
    c = np.zeros_like(a, order="F")
    gemm = _kernels.gemm
    alone = _typical_seconds(comm, lambda: comm.Iallreduce(MPI.IN_PLACE, vector, op=MPI.SUM)
                          .Wait(), repeats)
    one = _call_seconds(comm, lambda: gemm(1.0, a, a, 0.0, c), repeats)
    calls = max(OVERLAP_TESTS, int(comm.allreduce(round(alone / one), op=MPI.MIN)))
    between = [calls * (t + 1) // OVERLAP_TESTS for t in range(OVERLAP_TESTS)]

    def compute(request=None):
        for call in range(calls):
            gemm(1.0, a, a, 0.0, c)
            if request is not None and call + 1 in between:
                request.Test()

    def both():
        request = comm.Iallreduce(MPI.IN_PLACE, vector, op=MPI.SUM)
        compute(request)
        request.Wait()

    computing = _typical_seconds(comm, compute, repeats)
    together = _typical_seconds(comm, both, repeats)
    share = min(1.0, max(0.0, (alone + computing - together) / min(alone, computing)))
    say(f"  overlap: an all-reduce of {OVERLAP_BYTES // 2**20} MiB takes {alone * 1e3:.2f} ms, "
        f"GEMMs {computing * 1e3:.2f} ms, both {together * 1e3:.2f} ms: {share:.2f} of it hidden")
    return share


def _sub_sizes(size):
    return sorted({2**i for i in range(1, size.bit_length())} | {size})


def _as_the_step_runs(ex, persistent):
    """run(times): start and wait a persistent exchange `times` times as the step does:
    from compiled code where the step's exchanges are (exchange.StepExchange.compiled),
    else through ex."""
    if COMPILED_ENTRY_POINTS is None or persistent.run is not None:
        def run(times):
            for _ in range(times):
                ex.start(persistent, finish=True)
        return run
    compiled = CompiledRequests(persistent, "allgather", np.zeros(3, np.int64),
                                COMPILED_ENTRY_POINTS)

    def run(times):
        error = _kernels.run_requests(compiled, times)
        if error:
            ex.failed(error)
    return run


def _time_operation(comm, op, values, trials):
    """(n bytes as collective_terms counts them, the median over trials of the slowest rank's
    seconds per call) of one operation as the step makes it: exchange.Exchange's
    persistent requests (the halo of a one-neuron layer, rows gathered and
    reduce-scattered) started and waited as the step does, and the grid's Iallreduce of
    a bucket."""
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
        nbytes = vector.nbytes

        def run(times):
            for _ in range(times):
                ex.comm.Iallreduce(MPI.IN_PLACE, vector, op=MPI.SUM).Wait()
    if persistent is not None:
        run = _as_the_step_runs(ex, persistent)
    run(3)
    comm.Barrier()
    start = MPI.Wtime()
    run(1)
    repeat = max(1, int(TRIAL_SECONDS / max(_slowest(comm, MPI.Wtime() - start), 1e-7)))
    repeat = int(comm.allreduce(repeat, op=MPI.MIN))
    seconds = _typical_seconds(comm, lambda: run(repeat), trials) / repeat
    if persistent is not None:
        persistent.free()
    return nbytes, seconds


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
                lines.append({"from_bytes": low, **_line(op, share, gamma, low > 0),
                              "to_bytes": max(point[1] for point in share)})
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
