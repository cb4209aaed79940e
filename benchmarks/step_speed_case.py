"""step_speed's `case`: Network.train_step timed in this interpreter, back to back or on orders from stdin."""
import datetime
import gc
import os
import shlex
import statistics
import sys
import time

# Only the standard library at the top, as in step_speed.py, which runs this by file path.
ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
LAYOUTS = ("serial", "dense", "ghost")
BLOCK_SECONDS = 0.02        # `case` alone: fast steps are timed in groups lasting about this long
MAX_GROUP = 10000
WAIT_POLL_SECONDS = 0.005   # how often the ranks of a job waiting for its turn look for it
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def add_arguments(parser):
    """The `case` subcommand's options."""
    parser.add_argument("--layout", choices=LAYOUTS, default="serial")
    parser.add_argument("--model", default="S", help="a ghostmlp.bench.MODELS name (default S)")
    parser.add_argument("--sizes", type=int, nargs="+", help="neurons per layer instead of --model")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--blocks", type=int, help="ghost blocks K (default: working ranks)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first (default 200)")
    parser.add_argument("--steps", type=int, default=0, help="consecutive steps per timing "
                        f"(default 0: as many as last about {BLOCK_SECONDS * 1e3:g} ms)")
    parser.add_argument("--timings", type=int, default=30, help="timings (default 30)")
    parser.add_argument("--serve", action="store_true", help="time on orders from stdin (how "
                        "compare runs it): 'ready', then one line per 'time', the record at 'stop'")


def run_case(args, orders=None):
    """Time groups of `steps` train_step calls after `warmup` steps; the record on rank 0, else None.

    Without `orders`, `timings` timings back to back. With `orders` (serve mode: one line
    per timing from `compare`, on rank 0's stdin), "ready" is printed after the warm-up, then
    each "time" order gets one timing, printed as seconds per step, and "stop" ends with the
    record. Every timing starts after a Barrier (model-parallel layouts) and lasts as long
    as its slowest rank: the per-timing maximum over ranks. A group of several steps follows
    one untimed step, which brings the network back into the caches another process may
    have used; steps=0 sizes the groups to last about BLOCK_SECONDS from the warm-up.
    """
    for name, value in SINGLE_THREAD.items():   # for a BLAS not yet loaded; the limit below
        os.environ.setdefault(name, value)      # holds for one already loaded
    import numpy as np
    from threadpoolctl import threadpool_limits

    import ghostmlp
    from ghostmlp.bench import MODELS, build_network, machine_facts, synthetic_data

    comm, options = None, {}
    if args.layout != "serial":
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        options = {"comm": comm, "connectivity": args.layout, "blocks": args.blocks}
    root = comm is None or comm.Get_rank() == 0
    sizes = args.sizes or MODELS[args.model]
    net = build_network(sizes, args.dtype, **options)
    batches = [synthetic_data(sizes, args.batch, args.dtype, seed) for seed in (0, 1)]

    def slowest(seconds):
        if comm is None:
            return seconds
        return comm.allreduce(seconds, op=MPI.MAX)

    def timed(steps, start=0):
        if comm is not None:
            comm.Barrier()
        t0 = time.perf_counter()
        for i in range(start, start + steps):
            net.train_step(*batches[i % 2])
        return slowest(time.perf_counter() - t0)

    with threadpool_limits(1):
        first_loss = float(net.train_step(*batches[0]))
        warm = [timed(1, i) for i in range(1, args.warmup)]
        group = args.steps or (min(MAX_GROUP, max(1, round(BLOCK_SECONDS / statistics.median(
            warm[len(warm) // 2:])))) if warm else 1)
        ticks = range(args.timings) if orders is None else orders(comm)
        if orders is not None and root:
            print("ready", flush=True)
        times = []
        gc.disable()
        try:
            for _ in ticks:
                if group > 1:
                    net.train_step(*batches[1])
                times.append(timed(group) / group)
                if orders is not None and root:
                    print(repr(times[-1]), flush=True)
        finally:
            gc.enable()
        facts = machine_facts()         # inside the limit: records the one BLAS thread
    if not times:
        raise SystemExit("case: stopped before any timing")
    if not root:
        return None
    ranks = 1 if comm is None else comm.Get_size()
    launcher = f"mpiexec -n {ranks} " if ranks > 1 else ""
    return {
        "benchmark": "step_speed", "iteration": ITERATION, "layout": args.layout,
        "model": None if args.sizes else args.model, "sizes": sizes, "batch": args.batch,
        "ranks": ranks, "blocks": net.blocks, "connections": net.n_weights, "dtype": args.dtype,
        "warmup": args.warmup, "timings": len(times), "steps_per_timing": group,
        "median_us": statistics.median(times) * 1e6, "min_us": min(times) * 1e6,
        "max_us": max(times) * 1e6, "times_us": [t * 1e6 for t in times],
        "first_loss": first_loss, "ghostmlp_file": ghostmlp.__file__,
        "machine": facts, "case_command": launcher + shlex.join(sys.orig_argv),
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def stdin_orders(comm):
    """Yield once per "time" line on rank 0's stdin, on every rank, until "stop" or the end.

    The other ranks learn each order from a non-blocking broadcast that they poll with a
    short sleep: MPI's blocking calls spin, and a waiting job must leave the cores to the
    interpreter being timed.
    """
    if comm is None:
        for line in sys.stdin:
            if line.strip() != "time":
                return
            yield
        return
    import numpy as np
    order = np.zeros(1, dtype=np.int64)
    while True:
        if comm.Get_rank() == 0:
            order[0] = sys.stdin.readline().strip() == "time"
        request = comm.Ibcast(order, root=0)
        while not request.Test():
            time.sleep(WAIT_POLL_SECONDS)
        if not order[0]:
            return
        yield
