"""One training step before and after a change: `case` times Network.train_step in this interpreter, `compare` interleaves interpreters."""
import argparse
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

# Only the standard library at the top, here and in the step_speed_*.py beside this file:
# `compare` runs other interpreters, and `case` runs by file path (`python
# benchmarks/step_speed.py case ...`) from a folder outside any checkout, so that each
# interpreter times the ghostmlp installed in its own environment. Run by file path, this
# file's folder is first on sys.path and the modules beside it import by their own names.
if __package__:
    from benchmarks import step_speed_case, step_speed_report
else:
    import step_speed_case
    import step_speed_report

SCRIPT = Path(__file__).resolve()
DEFAULT_RESULTS = SCRIPT.parent / "results" / "step_speed.jsonl"
DEFAULT_ROUNDS = 5
CASE_TIMEOUT = 600          # seconds a `case` process may take to answer


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
        env.update(step_speed_case.SINGLE_THREAD)
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
    out(step_speed_report.report(records, [label for label, _ in args.python],
                                 {name: CASES[name] for name in names},
                                 step_speed_case.ITERATION, typed, time.perf_counter() - started,
                                 results))
    return records


# ------------------------------------------------------------------ arguments

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_speed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("case", help="time one layout in this interpreter (under "
                              "mpiexec for dense and ghost); prints one JSON line on rank 0")
    step_speed_case.add_arguments(one)
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
        record = step_speed_case.run_case(
            args, step_speed_case.stdin_orders if args.serve else None)
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
