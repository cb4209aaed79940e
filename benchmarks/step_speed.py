"""One training step before and after a change: `case` times Network.train_step in this interpreter, `compare` interleaves interpreters."""
import argparse
import datetime
import gc
import json
import math
import os
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

# Only the standard library at the top: `compare` runs other interpreters, and `case` runs by
# file path (`python benchmarks/step_speed.py case ...`) from a folder outside any checkout,
# so that each interpreter times the ghostmlp installed in its own environment.
SCRIPT = Path(__file__).resolve()
DEFAULT_RESULTS = SCRIPT.parent / "results" / "step_speed.jsonl"
ITERATION = "one forward + loss + backward + update over one minibatch of B samples"
LAYOUTS = ("serial", "dense", "ghost")
BLOCK_SECONDS = 0.02        # `case` alone: fast steps are timed in groups lasting about this long
MAX_GROUP = 10000
DEFAULT_ROUNDS = 5
CASE_TIMEOUT = 600          # seconds a `case` process may take to answer
WAIT_POLL_SECONDS = 0.005   # how often the ranks of a job waiting for its turn look for it
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Case(NamedTuple):
    layout: str             # "serial": comm=None; "dense" / "ghost": comm=COMM_WORLD
    model: str              # a ghostmlp.bench.MODELS name
    batch: int
    ranks: int              # mpiexec -n (serial: no mpiexec)
    warmup: int             # untimed steps first
    steps: int              # consecutive steps per timing: a timing of S lasts 10-40 ms
    timings: int            # timings per process, in turns with the other interpreters'
    blocks: int = None      # ghost K

    def arguments(self):
        """The `case` subcommand's arguments for this case."""
        blocks = ["--blocks", str(self.blocks)] if self.blocks else []
        return ["--layout", self.layout, "--model", self.model, "--batch", str(self.batch),
                "--warmup", str(self.warmup), "--steps", str(self.steps), *blocks]


# The acceptance cases of the step rewrite: serial S at batch 1 and M at batch 256 (LayerStack
# today), and the model-parallel step on 1 and 2 ranks. An M step takes 0.6-0.8 s on one core:
# 4 timings a process make 20 timed steps per interpreter over the 5 default rounds.
CASES = {
    "serial-S-b1": Case("serial", "S", 1, 1, 200, 1000, 20),
    "serial-M-b256": Case("serial", "M", 256, 1, 2, 1, 4),
    "dense-S-b1-n1": Case("dense", "S", 1, 1, 200, 300, 20),
    "ghost-S-b1-n1": Case("ghost", "S", 1, 1, 200, 150, 20, blocks=2),
    "dense-S-b1-n2": Case("dense", "S", 1, 2, 200, 100, 20),
    "ghost-S-b1-n2": Case("ghost", "S", 1, 2, 200, 100, 20, blocks=2),
    "dense-M-b256-n2": Case("dense", "M", 256, 2, 1, 1, 3),
}


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ case

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


# --------------------------------------------------------------------- compare

def interpreter(text):
    """`LABEL=PATH` of a Python interpreter -> (label, path); the path is kept as given (a
    venv's python is a symlink whose target is not the venv)."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    if not os.access(path, os.X_OK):
        raise argparse.ArgumentTypeError(f"{path} is not an executable interpreter")
    return label, path


def mpiexec_beside(python):
    """The mpiexec next to `python` (the mpich wheel's, in the same venv), else the one on PATH."""
    beside = Path(python).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit(f"no mpiexec beside {python} nor on PATH: install the 'mpich' extra")
    return found


def case_command(python, case):
    """The command that serves `case` under `python` (by file path, under mpiexec unless serial)."""
    arguments = ["case", "--serve", *case.arguments()]
    if case.layout == "serial":
        return [python, str(SCRIPT), *arguments]
    return [mpiexec_beside(python), "-n", str(case.ranks), python, "-m", "mpi4py", str(SCRIPT),
            *arguments]


class Server:
    """One interpreter's `case --serve` process: a timing per "time" order, its record at "stop"."""

    def __init__(self, command, folder):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own site-packages
        env.update(SINGLE_THREAD)
        self.command = command
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors)
        self.pending = b""
        if self.line() != "ready":
            self.fail("did not say ready")

    def line(self):
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.process.stdout], [], [], CASE_TIMEOUT)
            chunk = os.read(self.process.stdout.fileno(), 1 << 16) if ready else b""
            if not chunk:
                self.fail("timed out" if not ready else "ended")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode().strip()

    def ask(self, order):
        self.process.stdin.write(order.encode() + b"\n")
        self.process.stdin.flush()
        return self.line()

    def fail(self, what):
        self.close()
        self.errors.seek(0)
        raise SystemExit(f"{shlex.join(self.command)}: {what}\n"
                         + self.errors.read()[-3000:].decode(errors="replace"))

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()        # mpiexec passes it on to its ranks
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def rotated(items, shift):
    shift %= len(items)
    return items[shift:] + items[:shift]


def measure_round(case, pythons, timings, folder):
    """One process per interpreter, all alive, taking turns: timing t goes to each interpreter
    in an order rotating with t (A B, B A, A B, ... for two), so that noise hits them alike."""
    servers = {}
    try:
        for label, python in pythons:       # started one after another: no warm-up overlaps
            servers[label] = Server(case_command(python, case), folder)
        labels = [label for label, _ in pythons]
        for t in range(timings):
            for label in rotated(labels, t):
                servers[label].ask("time")
        records = {label: json.loads(server.ask("stop")) for label, server in servers.items()}
        for label, server in servers.items():
            record = records[label]
            record["case_command"] = shlex.join(server.command)
            server.process.wait(CASE_TIMEOUT)
        return records
    finally:
        for server in servers.values():
            server.close()


def compare(args, out=print):
    """Every case under every interpreter, `rounds` times: rounds outermost; within a round,
    one process per interpreter timing in turns (measure_round), the first started rotating
    from round to round. Fresh processes each round: memory layout differs from process to
    process, and a lucky one must not decide a ratio."""
    names = args.case or list(CASES)
    typed = shlex.join(sys.orig_argv)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    records, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="step_speed-") as folder:   # outside any checkout
        for round_ in range(args.rounds):
            for name in names:
                pythons = rotated(args.python, round_)
                measured = measure_round(CASES[name], pythons, CASES[name].timings, folder)
                for label, python in pythons:
                    record = measured[label]
                    record.update(label=label, python=python, case=name, round=round_,
                                  interleaved_with=[l for l, _ in pythons if l != label],
                                  command=typed)
                    with open(results, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    records.append(record)
                log(f"round {round_ + 1}/{args.rounds} {name}: " + ", ".join(
                    f"{label} {measured[label]['median_us']:.1f}" for label, _ in pythons)
                    + f" us/step (medians), {time.perf_counter() - started:.0f} s so far")
    out(report(records, [label for label, _ in args.python], names, typed,
               time.perf_counter() - started, results))
    return records


# ---------------------------------------------------------------------- report

def pooled(records, name, label, key="times_us"):
    """All per-step timings of one case under one interpreter, every round together."""
    return [t for r in records if r["case"] == name and r["label"] == label for t in r[key]]


def paired_ratios(records, name, label, base):
    """Timing by timing: `label`'s step / `base`'s step at the same turn of the same round.

    The two timings of a pair ran one right after the other, so load that comes and goes
    more slowly than a turn cancels in their ratio.
    """
    times = {(r["label"], r["round"]): r["times_us"] for r in records if r["case"] == name}
    return sorted(ours / theirs for (who, n), base_times in times.items()
                  if who == base and (label, n) in times
                  for theirs, ours in zip(base_times, times[(label, n)]))


def median_interval(values):
    """(low, median, high) of sorted `values`: the median and its distribution-free 95 %
    confidence interval, the order statistics of ranks (n - 1.96 sqrt n) / 2 and
    1 + (n + 1.96 sqrt n) / 2."""
    n = len(values)
    spread = 1.96 * math.sqrt(n)
    low = max(0, math.floor((n - spread) / 2) - 1)
    high = min(n - 1, math.ceil(1 + (n + spread) / 2) - 1)
    return values[low], statistics.median(values), values[high]


def _us(microseconds):
    return f"{microseconds:.1f}" if microseconds < 1e4 else f"{microseconds:,.0f}"


def report(records, labels, names, command, seconds, results):
    """Markdown: the machine, then per case each interpreter's median and min step over all
    its timings, and each one's ratio to the first interpreter's: the median of the paired
    ratios with its 95 % interval, then the ratios of the medians and of the minima."""
    base, others = labels[0], labels[1:]
    one = {r["label"]: r for r in records}   # a record of each interpreter, for its facts
    lines = ["# One training step, side by side\n", f"Command: `{command}`\n",
             f"- iteration: {ITERATION}; float32, one BLAS thread per rank; medians and minima "
             "per step in microseconds over every timing of every round (a model-parallel "
             "timing lasts as long as its slowest rank)",
             f"- CPU: {records[0]['machine']['cpu']}, {records[0]['machine']['cores']} cores"
             if records else "- no records"]
    for label in labels:
        facts = one[label]["machine"] if label in one else {}
        blas = ", ".join(f"{b['library']} {b['version']} ({b['architecture']}, {b['threads']} "
                         "thread)" for b in facts.get("blas", []))
        lines.append(f"- {label}: ghostmlp {one.get(label, {}).get('ghostmlp_file')}, "
                     f"BLAS {blas or '?'}, numpy {facts.get('numpy')}")
    rounds = max((r["round"] for r in records), default=-1) + 1
    loads = [r["machine"]["load_average"][0] for r in records]
    lines.append(f"- {rounds} round(s); in each, one process per interpreter, timing in turns; "
                 f"{seconds:.0f} s in all; load average (1 min) after the measurements "
                 f"{min(loads, default=0):.2f}-{max(loads, default=0):.2f}; JSON lines in "
                 f"{results}")
    lines.append("- paired: the median of the ratios of the timings taken in the same turn, "
                 "with its 95 % confidence interval\n")
    header = ["case", "ranks", "batch"] + [f"{label} median us" for label in labels]
    header += [f"{label} min us" for label in labels]
    for label in others:
        header += [f"{label} / {base} paired (95 % CI)", "of medians", "of mins"]
    header.append("first-step loss")
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 2) + "---|"]
    for name in names:
        case = CASES[name]
        timings = {label: pooled(records, name, label) or [math.nan] for label in labels}
        medians = {label: statistics.median(timings[label]) for label in labels}
        minima = {label: min(timings[label]) for label in labels}
        row = [name, str(case.ranks), str(case.batch)]
        row += [_us(medians[label]) for label in labels]
        row += [_us(minima[label]) for label in labels]
        for label in others:
            pairs = paired_ratios(records, name, label, base)
            paired = "{1:.3f} ({0:.3f}-{2:.3f})".format(*median_interval(pairs)) if pairs else "-"
            row += [paired, f"{medians[label] / medians[base]:.3f}",
                    f"{minima[label] / minima[base]:.3f}"]
        losses = {r["first_loss"] for r in records if r["case"] == name}
        row.append("same" if len(losses) == 1 else "differs: " + ", ".join(
            f"{r['label']} {r['first_loss']:.7g}" for r in records
            if r["case"] == name and r["round"] == 0))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ arguments

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_speed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("case", help="time one layout in this interpreter (under "
                              "mpiexec for dense and ghost); prints one JSON line on rank 0")
    one.add_argument("--layout", choices=LAYOUTS, default="serial")
    one.add_argument("--model", default="S", help="a ghostmlp.bench.MODELS name (default S)")
    one.add_argument("--sizes", type=int, nargs="+", help="neurons per layer instead of --model")
    one.add_argument("--batch", type=int, default=1)
    one.add_argument("--blocks", type=int, help="ghost blocks K (default: working ranks)")
    one.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    one.add_argument("--warmup", type=int, default=200, help="untimed steps first (default 200)")
    one.add_argument("--steps", type=int, default=0, help="consecutive steps per timing "
                     f"(default 0: as many as last about {BLOCK_SECONDS * 1e3:g} ms)")
    one.add_argument("--timings", type=int, default=30, help="timings (default 30)")
    one.add_argument("--serve", action="store_true", help="time on orders from stdin (how "
                     "compare runs it): 'ready', then one line per 'time', the record at 'stop'")
    both = commands.add_parser("compare", help="every case under every interpreter, interleaved")
    both.add_argument("--python", type=interpreter, action="append", required=True,
                      metavar="LABEL=PATH", help="an interpreter with ghostmlp installed, "
                      "repeated; ratios are to the first one (e.g. before=... after=...)")
    both.add_argument("--case", choices=list(CASES), action="append",
                      help="repeatable (default: all)")
    both.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                      help="fresh processes per case and interpreter, each timing in turns "
                           f"with the others (default {DEFAULT_ROUNDS})")
    both.add_argument("--results", default=str(DEFAULT_RESULTS),
                      help="append one JSON line per measurement (default "
                           "benchmarks/results/step_speed.jsonl)")
    args = parser.parse_args(argv)
    if args.command == "case":
        if args.warmup < 1 or args.timings < 1 or args.batch < 1 or args.steps < 0:
            parser.error("--warmup, --timings and --batch must be >= 1, --steps >= 0")
        record = run_case(args, stdin_orders if args.serve else None)
        if record is not None:
            print(json.dumps(record), flush=True)
    else:
        if len(args.python) < 2 or len({label for label, _ in args.python}) < len(args.python):
            parser.error("give --python LABEL=PATH at least twice, with distinct labels")
        if args.rounds < 1:
            parser.error("--rounds must be >= 1")
        compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
