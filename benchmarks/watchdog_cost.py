"""What the stall watchdog costs a step: `mpiexec -n 2 python -m benchmarks.watchdog_cost`.

The step itself runs the same code with or without a watchdog (a watched call is only an
entry in watchdog's table); what remains is the thread's look at the stacks. This measures,
in one process per rank, one BLAS thread, on one network built with stall_timeout=0:

- the CPU time of one look (Watch.current over sys._current_frames(), what the thread does
  each period), taken on rank 0 by a side thread while the main thread trains;
- the step's time in blocks of steps with a watchdog thread running (a fresh Watchdog on
  the network's watch, looking every `--period` s, far more often than the default's once
  a second, so that its looks fall inside the blocks) and without one, alternating.

The cost at the default period follows from both: the look's CPU seconds per period
seconds, and the step's slowdown with the thread scaled from `--period` to that period
(the larger: the slowdown also holds what the look costs the other ranks, which wait).
Appends one JSON line to RESULTS (default benchmarks/results/watchdog_cost.jsonl) and
prints a Markdown summary on rank 0.
"""
import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from mpi4py import MPI
from threadpoolctl import threadpool_limits

from ghostmlp import defaults
from ghostmlp.bench import MODELS, build_network, machine_facts, synthetic_data
from ghostmlp.watchdog import Watchdog

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "watchdog_cost.jsonl"


def look_seconds(comm, watch, train, looks):
    """Mean CPU seconds of one look by a side thread of rank 0 while train() runs on every
    rank's main thread (collectively: the ranks agree on when it is done)."""
    done, spent = threading.Event(), [0.0]

    def look():
        me = threading.get_ident()
        start = time.thread_time()
        for _ in range(looks):
            watch.current(sys._current_frames(), me)
            time.sleep(0.0005)      # the sleep is off the thread's CPU clock
        spent[0] = time.thread_time() - start
        done.set()

    if comm.Get_rank() == 0:
        threading.Thread(target=look, daemon=True).start()
    while not comm.bcast(done.is_set()):
        train()
    return comm.bcast(spent[0] / looks)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.watchdog_cost", description=__doc__)
    parser.add_argument("--model", default="S", choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--layout", choices=("dense", "ghost"), default="dense")
    parser.add_argument("--steps", type=int, default=300, help="steps per block (default 300)")
    parser.add_argument("--blocks", type=int, default=40,
                        help="blocks with and without the thread, each (default 40)")
    parser.add_argument("--period", type=float, default=0.002,
                        help="the measured thread's seconds between looks (default 0.002)")
    parser.add_argument("--looks", type=int, default=2000, help="looks timed (default 2000)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    args = parser.parse_args(argv)

    comm = MPI.COMM_WORLD
    sizes = MODELS[args.model]
    net = build_network(sizes, comm=comm, connectivity=args.layout, stall_timeout=0)
    X, y = synthetic_data(sizes, args.batch)
    watch = net.engine.exchange.watch

    def block():
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            net.train_step(X, y)
        return comm.allreduce(time.perf_counter() - start, op=MPI.MAX) / args.steps

    with threadpool_limits(1):
        for _ in range(3):
            block()
        look = look_seconds(comm, watch, block, args.looks)
        ratios, on, off = [], [], []
        for b in range(args.blocks):
            times = {}
            for watched in ((True, False) if b % 2 else (False, True)):
                dog = (Watchdog(watch, defaults.STALL_TIMEOUT, "", comm.Abort,
                                period=args.period) if watched else None)
                times[watched] = block()
                if dog is not None:
                    dog.stop()
                    dog.thread.join()
            on.append(times[True])
            off.append(times[False])
            ratios.append(times[True] / times[False])
        facts = machine_facts()         # inside the limit: records the one BLAS thread
    if comm.Get_rank() != 0:
        return 0
    default_period = min(1.0, defaults.STALL_TIMEOUT / 10)
    record = {
        "benchmark": "watchdog_cost", "model": args.model, "sizes": sizes, "batch": args.batch,
        "layout": args.layout, "ranks": comm.Get_size(), "steps_per_block": args.steps,
        "blocks": args.blocks, "period_s": args.period, "look_us": look * 1e6,
        "step_us_without": statistics.median(off) * 1e6,
        "step_us_with": statistics.median(on) * 1e6,
        "paired_ratio_median": statistics.median(ratios),
        "default_period_s": default_period,
        "default_share_percent": 100 * max(look / default_period, (statistics.median(
            ratios) - 1) * args.period / default_period),
        "machine": facts, "command": "mpiexec -n %d " % comm.Get_size()
        + " ".join(sys.orig_argv),
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"| model {args.model}, batch {args.batch}, {args.layout}, {comm.Get_size()} ranks | "
          f"look {look * 1e6:.1f} us | step without {record['step_us_without']:.1f} us, with "
          f"a look every {args.period * 1e3:g} ms {record['step_us_with']:.1f} us (paired "
          f"median {record['paired_ratio_median']:.3f}) | at the default (a look every "
          f"{default_period:g} s): {record['default_share_percent']:.4f} % of the step |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
