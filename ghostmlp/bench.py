"""Timing of training iterations on the paper's Table I models, and the facts of the machine."""
import argparse
import datetime
import os
import platform
import resource

import numpy as np

import ghostmlp
from ghostmlp import _kernels, blas  # noqa: F401  (_kernels binds the BLAS the facts name)
from ghostmlp.engine import REPLICA_UPDATES
from ghostmlp.validate import check_count, check_positive, parse_grid

MODELS = {  # neurons per layer, input first (the paper's Table I)
    "S": [3, 64, 128, 256, 64],
    "M": [2048, 4096, 4096, 4096, 2048],
    "L": [2048, 32768, 8192, 4096, 2048],
}
LEARNING_RATE = 0.01


def scaled_sizes(name, scale=1.0):
    """MODELS[name] with every hidden layer multiplied by `scale` (rounded, at least 1).

    The input and output layers are kept, so the data and the loss stay the same.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    sizes = MODELS[name]
    return [sizes[0]] + [max(1, round(size * scale)) for size in sizes[1:-1]] + [sizes[-1]]


def build_network(sizes, dtype="float32", seed=0, batch_size=32, machine=None,
                  activation="sigmoid", **network_options):
    """An initialized ghostmlp.Network: `activation` hidden layers (sigmoid, the paper's),
    softmax output, loss mse, SGD lr 0.01.

    network_options go to ghostmlp.Network (comm, connectivity, blocks, grid, ...) and
    may override loss and learning_rate; batch_size, machine: what grid="auto" plans for
    and from (see Network.initialize).
    """
    options = {"loss": "mse", "learning_rate": LEARNING_RATE, **network_options}
    net = ghostmlp.Network(seed=seed, dtype=dtype, **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, activation)
    net.add_layer("output", sizes[-1], "softmax")
    return net.initialize(batch_size=batch_size, machine=machine)


def synthetic_data(sizes, batch, dtype="float32", seed=0):
    """Dummy data as the paper's: X[batch, n_in] uniform in [0, 1), y[batch] int64 class indices."""
    rng = np.random.default_rng(seed)
    X = rng.random((batch, sizes[0]), dtype=np.dtype(dtype).type)
    y = rng.integers(0, sizes[-1], batch, dtype=np.int64)
    return X, y


def _read_first(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


CACHES = "/sys/devices/system/cpu/cpu0/cache"


def cpu0_caches(root=CACHES):
    """[(level, type, size)] of cpu0's caches from sysfs, e.g. (2, "Unified", "1024K");
    those read before an unreadable one (none where sysfs has no caches)."""
    found = []
    try:
        for index in sorted(i for i in os.listdir(root) if i.startswith("index")):
            def read(name):
                with open(os.path.join(root, index, name)) as f:
                    return f.read().strip()
            found.append((int(read("level")), read("type"), read("size")))
    except (OSError, ValueError):
        pass
    return found


def _caches():
    """cpu0's caches from sysfs, e.g. "L1d 48K, L1i 32K, L2 1024K, L3 32768K"."""
    letters = {"Data": "d", "Instruction": "i"}
    return ", ".join(f"L{level}{letters.get(kind, '')} {size}"
                     for level, kind, size in cpu0_caches()) or None


def mpi_library_version():
    """MPI.Get_library_version() of mpi4py's MPI (stripped), or None when mpi4py does not import."""
    try:
        from mpi4py import MPI
        return MPI.Get_library_version().strip()
    except Exception:       # not installed, or no MPI library behind it
        return None


def machine_facts():
    """CPU, cores, memory, caches, BLAS (via threadpoolctl: version, core type, threads), versions, env, MPI.

    The BLAS thread counts are those in force when called: call it inside the
    benchmark's threadpool_limits to record what the measurement used.
    """
    flags = (_read_first("/proc/cpuinfo", "flags") or "").split()
    mem_kb = _read_first("/proc/meminfo", "MemTotal")
    try:
        from threadpoolctl import threadpool_info
        pools = threadpool_info()
    except ImportError:                 # threadpoolctl is optional (the `test` extra)
        pools = []
    blas_libs = [{
        "library": info.get("internal_api"),
        "version": info.get("version"),
        "architecture": info.get("architecture"),
        "threads": info.get("num_threads"),
        "threading_layer": info.get("threading_layer"),
        "file": os.path.basename(info.get("filepath", "")),
    } for info in pools if info.get("user_api") == "blas"]
    other_pools = [{
        "library": info.get("internal_api"),
        "version": info.get("version"),
        "threads": info.get("num_threads"),
        "file": os.path.basename(info.get("filepath", "")),
    } for info in pools if info.get("user_api") != "blas"]
    return {
        "cpu": _read_first("/proc/cpuinfo", "model name") or platform.processor(),
        "cpu_simd": " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "none",
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "caches_cpu0": _caches(),
        "memory_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "blas_provider": blas.active().describe(),      # the library the kernels call
        "blas": blas_libs,                              # every BLAS loaded in the process
        "other_threadpools": other_pools,       # e.g. the OpenMP runtime torch brings
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "ghostmlp": getattr(ghostmlp, "__version__", "?"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "mpi": mpi_library_version(),
    }




def blas_label(facts):
    """One line naming the BLAS the kernels called in a record's machine facts: setting,
    library, version, core type, integer width, threads, file."""
    p = facts.get("blas_provider")
    if p is None:       # recorded before the choice existed: scipy's cython_blas was the only one
        return "scipy's cython_blas (the only binding when this was recorded)"
    width = "ILP64" if p["ilp64"] else "LP64"
    return (f"{p['provider']}: {p['api'] or '?'} {p['version'] or '?'} ({p['architecture'] or '?'}, "
            f"{width}, {p['threads'] if p['threads'] is not None else '?'} thread(s)), "
            f"{os.path.basename(p['file'] or '?')}")


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
TRAIN_FIELDS = (
    "kind", "command", "ranks", "grid", "working_ranks", "master", "model", "scale", "sizes",
    "connectivity", "blocks", "connections", "batch", "dtype", "iterations", "warmup",
    "iteration", "seconds_per_iteration", "samples_per_second", "connection_updates_per_second",
    "compute_seconds", "comm_seconds", "comm_percent", "messages_per_rank", "bytes_per_rank",
    "collectives", "peak_rss_bytes", "weight_bytes", "machine", "mpi", "when")


def add_arguments(parser):
    """The options of a timing run (the harness's `train`, the command line's `bench`)."""
    parser.add_argument("--model", choices=sorted(MODELS), default="S")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every hidden layer by this (< 1 shrinks the model for small "
                             "machines); always printed")
    parser.add_argument("--connectivity", choices=("dense", "ghost"), default="ghost")
    parser.add_argument("--blocks", type=int, help="ghost blocks K (default: working ranks)")
    parser.add_argument("--master", action="store_true", help="rank 0 only gathers the outputs")
    parser.add_argument("--grid", type=grid_option,
                        help="DxM: D replicas of M model ranks (default 1xranks), or auto: "
                             "the planner's choice")
    parser.add_argument("--machine", help="with --grid auto: the machine file (default "
                                          "$GHOSTMLP_MACHINE)")
    parser.add_argument("--replica-update", choices=REPLICA_UPDATES, default="auto",
                        help="how replicas update: allreduce (sum the gradients), shared "
                             "(replicas on one node split the update), auto (shared where "
                             "it can be)")
    parser.add_argument("--ghost-gradients", choices=("exact", "local"), default="exact")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--activation", choices=("sigmoid", "tanh", "relu", "identity"),
                        default="sigmoid", help="of the hidden layers (sigmoid, as the paper)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--json", help="append one JSON line of results to this file (rank 0)")


def check_arguments(args):
    """Raise a ValueError naming the first option of add_arguments out of its range."""
    check_positive("--scale", args.scale)
    if args.blocks is not None:
        check_count("--blocks", args.blocks)
    for option in ("batch", "iterations", "threads"):
        check_count(f"--{option}", getattr(args, option))
    check_count("--warmup", args.warmup, allow_zero=True)


def grid_option(text):
    """argparse's reading of --grid DxM (see ghostmlp.validate.parse_grid)."""
    try:
        return parse_grid(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def time_training(args, comm, command):
    """Time `iterations` training steps after `warmup` on the ranks of `comm` (an mpi4py
    communicator); returns the JSON-serialisable record on rank 0, None elsewhere."""
    from mpi4py import MPI
    check_arguments(args)
    sizes = scaled_sizes(args.model, args.scale)
    net = build_network(sizes, args.dtype, comm=comm, connectivity=args.connectivity,
                        blocks=args.blocks, master=args.master,
                        ghost_gradients=args.ghost_gradients, grid=getattr(args, "grid", None),
                        replica_update=getattr(args, "replica_update", "auto"),
                        batch_size=args.batch, machine=getattr(args, "machine", None),
                        activation=getattr(args, "activation", "sigmoid"))
    X, y = synthetic_data(sizes, args.batch, args.dtype)
    times = []
    with _blas_threads(args.threads):
        for step in range(args.warmup + args.iterations):
            if step == args.warmup:
                net.reset_stats()
            comm.Barrier()
            start = MPI.Wtime()
            net.train_step(X, y)
            times.append(MPI.Wtime() - start)
        facts = machine_facts()         # inside the limit: records the threads measured with
    # An iteration lasts as long as its slowest rank.
    timed = np.empty(args.iterations)
    comm.Allreduce(np.array(times[args.warmup:]), timed, op=MPI.MAX)
    stats = net.stats()
    peak_rss = comm.gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    weight_bytes = comm.gather(net.local_nbytes())
    if comm.Get_rank() != 0:
        return None
    median = float(np.median(timed))
    record = {
        "kind": "train", "command": command,
        "ranks": comm.Get_size(), "grid": list(net.grid), "working_ranks": net.workers,
        "replica_update": net.replica_update_used,
        "master": net.master,
        "model": args.model, "scale": args.scale, "sizes": sizes,
        "connectivity": args.connectivity, "blocks": net.blocks, "connections": net.n_weights,
        "batch": args.batch, "dtype": args.dtype,
        "activation": getattr(args, "activation", "sigmoid"), "iterations": args.iterations,
        "warmup": args.warmup, "iteration": ITERATION, "threads_per_rank": args.threads,
        "seconds_per_iteration": {"median": median, "mean": float(timed.mean()),
                                  "min": float(timed.min()),
                                  "max": float(timed.max())},
        "samples_per_second": args.batch / median,
        "connection_updates_per_second": net.n_weights * args.batch / median,
        "compute_seconds": {"max": stats["compute_seconds_max"], "mean": stats["compute_seconds_mean"]},
        "comm_seconds": {"max": stats["comm_seconds_max"], "mean": stats["comm_seconds_mean"]},
        # Table IV: the busiest rank's mean communication per iteration over the mean iteration.
        "comm_percent": 100.0 * stats["comm_seconds_max"] / float(timed.mean()),
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
    replicas, model = record.get("grid", (1, record["ranks"]))
    layout += f", grid {replicas}x{model}" if replicas > 1 else ""
    return (f"{record['model']} x{record['scale']:g} {layout} on {record['ranks']} rank(s)"
            f"{' (+master)' if record['master'] else ''}, batch {record['batch']}: "
            f"{t['median'] * 1e3:.3f} ms/iteration (min {t['min'] * 1e3:.3f}, max "
            f"{t['max'] * 1e3:.3f}), comm {record['comm_percent']:.2f} %, "
            f"peak RSS {max(record['peak_rss_bytes']) / 2**20:.0f} MiB/rank")


def _blas_threads(threads):
    """threadpoolctl's limit on BLAS threads when it is installed, else nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(threads)
