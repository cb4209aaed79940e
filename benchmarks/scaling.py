"""Time per iteration vs MPI ranks for models S, M and scaled L: the paper's Tables II-IV and Fig. 4."""
import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.scaling_plot import plot_fig4
from benchmarks.scaling_records import (
    DENSE, GHOST_K_RANKS, fixed_sweep, is_result, median_seconds, replicated)
from benchmarks.scaling_tables import fmt_seconds, ranks_cell, render_markdown
# The installed ghostmlp, even from the checkout's root: benchmarks/__init__.py keeps the
# source folder, which has no compiled kernels, off sys.path.
from ghostmlp.bench import MODELS, scaled_sizes
from ghostmlp.partition import check_layout

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
# The harness's --scale multiplies every hidden layer (ghostmlp.bench.scaled_sizes): L x 0.5
# is [2048, 16384, 4096, 2048, 2048], 113 M weights (still above M's 50 M), 453 MB in float32.
DEFAULT_SCALE_L = 0.5
MEMORY_FRACTION = 0.8           # skip a model whose weights alone need more of the free memory
DEFAULT_BATCH = 1               # the paper's online training
DEFAULT_ITERATIONS = 20
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT = 600           # seconds per harness run
KILL_GRACE = 5                  # seconds between SIGTERM and SIGKILL of a timed-out run


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ planning (pure)

def default_ranks(cores):
    """1, 2, 4, ... up to `cores` working ranks."""
    ranks, p = [], 1
    while p <= max(1, cores):
        ranks.append(p)
        p *= 2
    return ranks


def layout_problem(sizes, workers, connectivity, blocks):
    """Why ghostmlp.partition.check_layout refuses this layout (the harness would too), or None."""
    try:
        check_layout(sizes, workers, connectivity, blocks)
    except ValueError as error:
        return str(error)
    return None


def weight_bytes(sizes, dtype):
    """Bytes of the fully connected network's weights and biases (an upper bound for ghost)."""
    itemsize = 8 if dtype == "float64" else 4
    return itemsize * sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))


def memory_problem(sizes, dtype, available_bytes):
    """Why the model cannot fit in `available_bytes` (all ranks share one machine), or None."""
    if available_bytes is None:
        return None
    need = weight_bytes(sizes, dtype)
    if need > MEMORY_FRACTION * available_bytes:
        return (f"its weights alone need {need / 2**30:.1f} GiB, more than "
                f"{MEMORY_FRACTION:.0%} of the {available_bytes / 2**30:.1f} GiB available")
    return None


def plan_runs(models, ranks, fixed_blocks, scale_l, master=True, replicas=1):
    """The harness runs of a sweep, each listing the sweeps it belongs to.

    One run serves two sweeps when ghost K = working ranks equals the fixed K. Order:
    per model, rank counts ascending, the plain layout before the +1-master one, dense
    first. replicas > 1 runs every layout on that many data-parallel replicas (grid
    (replicas, ranks of the layout)).
    """
    runs, index = [], {}
    for model in models:
        scale = scale_l if model == "L" else 1.0
        for workers in sorted(set(ranks)):
            for with_master in ((False, True) if master else (False,)):
                layouts = ((DENSE, DENSE, 1), (GHOST_K_RANKS, "ghost", workers),
                           (fixed_sweep(fixed_blocks), "ghost", fixed_blocks))
                for sweep, connectivity, blocks in layouts:
                    sweep = replicated(sweep, replicas)
                    key = (model, scale, workers, with_master, connectivity, blocks)
                    if key in index:
                        index[key]["sweeps"].append(sweep)
                        continue
                    model_ranks = workers + with_master
                    run = {"model": model, "scale": scale, "working_ranks": workers,
                           "master": with_master, "ranks": replicas * model_ranks,
                           "grid": [replicas, model_ranks], "connectivity": connectivity,
                           "blocks": blocks, "sweeps": [sweep]}
                    index[key] = run
                    runs.append(run)
    return runs


def harness_command(run, mpiexec, batch, iterations, warmup, dtype, json_path,
                    python=None, module="benchmarks.harness"):
    command = [mpiexec, "-n", str(run["ranks"]), python or sys.executable, "-m", module, "train",
               "--model", run["model"]]
    if run["scale"] != 1.0:
        command += ["--scale", repr(run["scale"])]
    command += ["--connectivity", run["connectivity"]]
    if run["connectivity"] == "ghost":
        command += ["--blocks", str(run["blocks"])]
    if run["master"]:
        command.append("--master")
    if run["grid"][0] > 1:
        command += ["--grid", "{}x{}".format(*run["grid"])]
    if run.get("replica_update"):
        command += ["--replica-update", run["replica_update"]]
    command += ["--batch", str(batch), "--iterations", str(iterations), "--warmup", str(warmup),
                "--dtype", dtype, "--json", str(json_path)]
    return command


# ------------------------------------------------------------------ running

def find_mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_jsonl(path):
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                log(f"warning: {path}:{number} is not JSON ({error}); ignored")
    return records


def append_jsonl(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def run_with_limit(command, timeout, cwd, env):
    """(returncode, stdout, stderr, timed_out). mpiexec runs in its own process group so
    that a timed-out run's ranks are ended with it, not left spinning on the cores."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return process.returncode, stdout, stderr, False
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                stdout, stderr = process.communicate(timeout=KILL_GRACE)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            stdout, stderr = process.communicate()
        return process.returncode, stdout or "", stderr or "", True


def sweep(args, out_dir, session, command_line):
    """Run the planned layouts, append results, skips and failures to scaling.jsonl."""
    jsonl = out_dir / "scaling.jsonl"
    ranks = args.ranks or default_ranks(os.cpu_count() or 1)
    fixed = args.fixed_blocks or max(ranks)
    plan = plan_runs(args.models, ranks, fixed, args.scale_l, master=not args.no_master,
                     replicas=args.replicas)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    sizes = {(r["model"], r["scale"]): scaled_sizes(r["model"], r["scale"]) for r in plan}
    available = mem_available_bytes()
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    log(f"{len(plan)} runs planned: models {' '.join(args.models)}, working ranks "
        f"{' '.join(map(str, sorted(set(ranks))))}"
        f"{'' if args.no_master else ' (each also + master)'}, fixed K = {fixed}; "
        f"results to {jsonl}")
    for number, run in enumerate(plan, 1):
        base = {**run, "batch": args.batch, "dtype": args.dtype, "iterations": args.iterations,
                "warmup": args.warmup, "scaling_session": session,
                "scaling_command": command_line}
        label = (f"[{number}/{len(plan)}] {run['model']} {run['connectivity']} K={run['blocks']} "
                 f"ranks={ranks_cell(run)}")
        model_sizes = sizes[(run["model"], run["scale"])]
        problem = (memory_problem(model_sizes, args.dtype, available)
                   or layout_problem(model_sizes, run["working_ranks"], run["connectivity"],
                                     run["blocks"]))
        if problem:
            log(f"{label}: skipped: {problem}")
            append_jsonl(jsonl, {"kind": "train-skipped", **base, "reason": problem,
                                 "when": time.strftime("%Y-%m-%d %H:%M:%S")})
            counts["skipped"] += 1
            continue
        with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
            json_path = Path(tmp) / "run.jsonl"
            command = harness_command(run, args.mpiexec, args.batch, args.iterations, args.warmup,
                                      args.dtype, json_path, module=args.harness)
            shown = shlex.join(command).replace(str(json_path), "RUN.jsonl")
            if args.dry_run:
                log(f"{label}: {shown}")
                continue
            log(f"{label}: running")
            start = time.monotonic()
            rc, stdout, stderr, timed_out = run_with_limit(command, args.timeout, REPO_ROOT, env)
            seconds = time.monotonic() - start
            lines = read_jsonl(json_path) if json_path.exists() else []
            results = [r for r in lines if is_result(r)]
        if rc == 0 and not timed_out and results:
            record = {**results[-1], "sweeps": run["sweeps"], "scaling_session": session,
                      "scaling_command": command_line}
            append_jsonl(jsonl, record)
            counts["ok"] += 1
            log(f"{label}: {fmt_seconds(median_seconds(record))} s per iteration "
                f"({seconds:.1f} s wall)")
            continue
        error = (stderr or "")[-4000:]
        if rc == 0 and not results:
            error += "\n(the harness exited 0 but wrote no 'train' record)"
        append_jsonl(jsonl, {"kind": "train-failed", **base, "command": shown, "returncode": rc,
                             "timed_out": timed_out, "timeout_s": args.timeout,
                             "seconds": round(seconds, 1), "error": error,
                             "stdout_tail": (stdout or "")[-2000:],
                             "when": time.strftime("%Y-%m-%d %H:%M:%S")})
        counts["failed"] += 1
        tail = "\n    ".join(error.strip().splitlines()[-6:])
        why = f"timed out after {args.timeout} s" if timed_out else f"exit {rc}"
        log(f"{label}: FAILED ({why})" + (f"\n    {tail}" if tail else ""))
    return counts


def write_outputs(jsonl, out_dir, fig_path, commands=()):
    records = read_jsonl(jsonl)
    md_path = out_dir / "scaling.md"
    source = Path(jsonl).resolve()
    if source.is_relative_to(REPO_ROOT):
        source = source.relative_to(REPO_ROOT)
    md_path.write_text(render_markdown(records, source=str(source), commands=commands))
    log(f"wrote {md_path}")
    written = plot_fig4(records, fig_path)
    if written:
        log(f"wrote {written}")
    return md_path, written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--scale-l", type=float, default=DEFAULT_SCALE_L,
                        help="the harness's --scale for model L, which multiplies its hidden layers "
                             "(default %(default)g, to fit one small machine)")
    parser.add_argument("--ranks", type=int, nargs="+",
                        help="working-rank counts (default 1, 2, 4, ... up to os.cpu_count()); "
                             "each also runs with +1 master rank unless --no-master")
    parser.add_argument("--no-master", action="store_true", help="leave out the +1-master layout")
    parser.add_argument("--replicas", type=int, default=1,
                        help="run every layout on this many data-parallel replicas: grid "
                             "(replicas, ranks of the layout), replicas x as many ranks (1)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--fixed-blocks", type=int,
                        help="K of the fixed-K ghost sweep "
                             "(default: the largest working-rank count)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of scaling.jsonl, scaling.md and fig4.png "
                             "(default %(default)s)")
    parser.add_argument("--fig", type=Path, help="path of the plot (default OUT/fig4.png)")
    parser.add_argument("--mpiexec", default=None, help="default: beside python, else on PATH")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                        help="seconds allowed per harness run (default %(default)s)")
    parser.add_argument("--harness", default="benchmarks.harness",
                        help="module run under mpiexec (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the planned commands only")
    parser.add_argument("--tables-only", type=Path, metavar="JSONL",
                        help="only regenerate scaling.md and the plot from this results file")
    args = parser.parse_args(argv)
    for name in ("batch", "iterations", "timeout", "replicas"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.scale_l <= 0 or any(p < 1 for p in args.ranks or ()) \
            or (args.fixed_blocks is not None and args.fixed_blocks < 1):
        parser.error("--warmup must be >= 0; --scale-l, --ranks and --fixed-blocks "
                     "must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    out_dir = args.out
    fig_path = args.fig or out_dir / "fig4.png"
    if args.tables_only:
        if not args.tables_only.exists():
            log(f"error: {args.tables_only} does not exist")
            return 2
        out_dir.mkdir(parents=True, exist_ok=True)
        records = read_jsonl(args.tables_only)
        commands = sorted({r["scaling_command"] for r in records if r.get("scaling_command")})
        write_outputs(args.tables_only, out_dir, fig_path, commands)
        return 0
    args.mpiexec = args.mpiexec or find_mpiexec()
    if not args.mpiexec:
        log("error: mpiexec not found: install the 'mpich' extra or pass --mpiexec")
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    session = datetime.datetime.now().isoformat(timespec="seconds")
    command = shlex.join(["python", "-m", "benchmarks.scaling",
                          *(sys.argv[1:] if argv is None else argv)])
    counts = sweep(args, out_dir, session, command)
    if args.dry_run:
        return 0
    jsonl = out_dir / "scaling.jsonl"
    records = read_jsonl(jsonl)
    commands = sorted({r["scaling_command"] for r in records if r.get("scaling_command")})
    write_outputs(jsonl, out_dir, fig_path, commands)
    log(f"{counts['ok']} runs ok, {counts['skipped']} skipped, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
