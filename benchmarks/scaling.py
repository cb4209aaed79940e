"""Time per iteration vs MPI ranks for models S, M and scaled L: the paper's Tables II-IV and Fig. 4."""
import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
DEFAULT_MODELS = ("S", "M", "L")
# The harness's --scale multiplies every hidden layer (ghostmlp.bench.scaled_sizes): L x 0.5
# is [2048, 16384, 4096, 2048, 2048], 113 M weights (still above M's 50 M), 453 MB in float32.
DEFAULT_SCALE_L = 0.5
MEMORY_FRACTION = 0.8           # skip a model whose weights alone need more of the free memory
DEFAULT_BATCH = 1               # the paper's online training
DEFAULT_ITERATIONS = 20
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT = 600           # seconds per harness run
KILL_GRACE = 5                  # seconds between SIGTERM and SIGKILL of a timed-out run

DENSE = "dense"
GHOST_K_RANKS = "ghost K=ranks"
SWEEP_TITLES = {
    GHOST_K_RANKS: "ghost, K = working ranks (the paper's layout: the network shrinks as "
                   "ranks grow, so its speed-ups mix parallelism with a smaller network)",
    DENSE: "dense (fully connected, the same network at every rank count)",
}
FIXED_TITLE = ("ghost, fixed K = {k} (the same network at every rank count that divides K: "
               "honest strong scaling)")


def fixed_sweep(k):
    return f"ghost fixed K={k}"


def sweep_title(sweep):
    if sweep.startswith("ghost fixed K="):
        return FIXED_TITLE.format(k=sweep.split("=", 1)[1])
    return SWEEP_TITLES.get(sweep, sweep)


def sweep_order(sweep):
    """K=ranks first, then the fixed-K sweeps by K, then dense."""
    if sweep == GHOST_K_RANKS:
        return (0, 0)
    if sweep.startswith("ghost fixed K="):
        return (1, int(sweep.split("=", 1)[1]))
    return (2, 0) if sweep == DENSE else (3, sweep)


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
    """Why this layout cannot be built, or None. Mirrors ghostmlp.partition.check_layout.

    `sizes` may be None (not known yet): then only the divisibility of K is checked and
    the harness, which runs check_layout itself, has the last word.
    """
    if connectivity == "ghost" and (blocks < 1 or blocks % workers):
        return f"K={blocks} blocks is not a multiple of the {workers} working ranks"
    if sizes is None:
        return None
    parts, what = (workers, "working ranks") if connectivity == DENSE else (blocks, "blocks")
    for index, size in enumerate(sizes[1:], 1):
        if size < parts:
            return f"layer {index} has {size} neurons, fewer than its {parts} {what}"
        if connectivity == "ghost" and blocks == 2 and size // 2 < 2:
            return (f"layer {index} has {size} neurons: with K=2 each block needs 2 "
                    f"(distinct ghostTop and ghostBottom)")
    return None


def weight_bytes(sizes, dtype):
    """Bytes of the fully connected network's weights and biases (an upper bound for ghost)."""
    itemsize = 8 if dtype == "float64" else 4
    return itemsize * sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))


def memory_problem(sizes, dtype, available_bytes):
    """Why the model cannot fit in `available_bytes` (all ranks share one machine), or None."""
    if sizes is None or available_bytes is None:
        return None
    need = weight_bytes(sizes, dtype)
    if need > MEMORY_FRACTION * available_bytes:
        return (f"its weights alone need {need / 2**30:.1f} GiB, more than "
                f"{MEMORY_FRACTION:.0%} of the {available_bytes / 2**30:.1f} GiB available")
    return None


def plan_runs(models, ranks, fixed_blocks, scale_l, master=True):
    """The harness runs of a sweep, each listing the sweeps it belongs to.

    One run serves two sweeps when ghost K = working ranks equals the fixed K. Order:
    per model, rank counts ascending, the plain layout before the +1-master one, dense
    first (it is always possible, and its record tells the model's layer sizes).
    """
    runs, index = [], {}
    for model in models:
        scale = scale_l if model == "L" else 1.0
        for workers in sorted(set(ranks)):
            for with_master in ((False, True) if master else (False,)):
                layouts = ((DENSE, DENSE, 1), (GHOST_K_RANKS, "ghost", workers),
                           (fixed_sweep(fixed_blocks), "ghost", fixed_blocks))
                for sweep, connectivity, blocks in layouts:
                    key = (model, scale, workers, with_master, connectivity, blocks)
                    if key in index:
                        index[key]["sweeps"].append(sweep)
                        continue
                    run = {"model": model, "scale": scale, "working_ranks": workers,
                           "master": with_master, "ranks": workers + with_master,
                           "connectivity": connectivity, "blocks": blocks, "sweeps": [sweep]}
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
    command += ["--batch", str(batch), "--iterations", str(iterations), "--warmup", str(warmup),
                "--dtype", dtype, "--json", str(json_path)]
    return command


# ------------------------------------------------------------------ records (pure)

def is_result(record):
    return record.get("kind") == "train"


def sweeps_of(record):
    """The sweeps a record belongs to: its own tag, else what its layout says."""
    if record.get("sweeps"):
        return list(record["sweeps"])
    if record.get("connectivity") == DENSE:
        return [DENSE]
    if record.get("blocks") == record.get("working_ranks"):
        return [GHOST_K_RANKS]
    return [fixed_sweep(record.get("blocks"))]


def layout_key(record):
    return (record.get("model"), float(record.get("scale", 1.0)), record.get("connectivity"),
            record.get("blocks"), record.get("working_ranks"), bool(record.get("master")),
            record.get("batch"), record.get("dtype"))


def latest_by_layout(records):
    """The last line of each layout wins: a rerun replaces an older result or failure (the
    skip and failure lines carry no machine, so the machine is not part of the layout). It
    keeps the sweeps of the lines it replaces: the same layout measures the same thing."""
    latest = {}
    for record in records:
        key = layout_key(record)
        if key in latest:
            merged = sweeps_of(latest[key]) + [s for s in sweeps_of(record)
                                               if s not in sweeps_of(latest[key])]
            record = {**record, "sweeps": merged}
        latest[key] = record
    return list(latest.values())


def row_order(record):
    """Ascending total ranks; at equal ranks the one with fewer working ranks first."""
    return (record["ranks"], record["working_ranks"])


def median_seconds(record):
    return float(record["seconds_per_iteration"]["median"])


def speedups(records):
    """{id(record): speed-up} within one sweep and model, each against the smallest run of
    its own layout: 1 working rank for the plain rows, 1 worker + 1 master (the paper's
    "2 ranks = sequential") for the master rows."""
    out = {}
    for master in (False, True):
        family = sorted((r for r in records if bool(r["master"]) == master), key=row_order)
        if not family:
            continue
        base = median_seconds(family[0])
        for record in family:
            out[id(record)] = base / median_seconds(record)
    return out


def ranks_cell(record, cores=None):
    """"3 (2 + master)" for the paper's layout, "*" when there are more ranks than cores."""
    text = str(record["ranks"])
    if record["master"]:
        text += f" ({record['working_ranks']} + master)"
    if cores and record["ranks"] > cores:
        text += " *"
    return text


def fmt_seconds(seconds):
    """4 significant digits, never an exponent: 0.01234, 1.235, 0.00001500."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds == 0:
        return "0"
    decimals = max(0, 3 - math.floor(math.log10(abs(seconds))))
    return f"{seconds:.{decimals}f}"


def fmt_int(n):
    return "—" if n is None else f"{int(n):,}"


def machine_label(machine):
    if not machine:
        return None
    parts = [str(machine.get("cpu") or "unknown CPU")]
    if machine.get("cores") is not None:
        parts.append(f"{machine['cores']} cores")
    if machine.get("memory_gib") is not None:
        parts.append(f"{machine['memory_gib']} GiB")
    return ", ".join(parts)


def sizes_text(record):
    sizes = "-".join(str(n) for n in record.get("sizes") or []) or "?"
    return f"{record['model']} = {sizes} (scale {float(record.get('scale', 1.0)):g})"


def table_header(meta, models):
    """The paragraph above every table: machine, model sizes and scale, batch, dtype, iteration."""
    batch = meta["batch"]
    sizes = "; ".join(meta["sizes"].get(m, f"{m}: no run") for m in models)
    lines = [f"Machine: {meta['machine']}" + (f"; MPI: {meta['mpi']}" if meta.get("mpi") else ""),
             f"Model sizes: {sizes}",
             f"Batch {batch}, {meta['dtype']}; median of {meta['iterations']} timed iterations "
             f"after {meta['warmup']} warm-up",
             f"iteration = one forward + loss + backward + update over one minibatch of "
             f"{batch} samples"]
    return "\n".join(f"> {line}  " if i < len(lines) - 1 else f"> {line}"
                     for i, line in enumerate(lines))


def markdown_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def table_ii(records, meta, cores=None):
    """Paper's Table II for model S: ranks, time per iteration, speed-up (within this sweep)."""
    records = sorted(records, key=row_order)
    if not records:
        return None
    up = speedups(records)
    rows = [[ranks_cell(r, cores), fmt_seconds(median_seconds(r)), f"{up[id(r)]:.2f}",
             fmt_int(r.get("connections"))] for r in records]
    return markdown_table(["ranks", "time per iteration S (s)", "speedup", "connections"], rows)


def table_iii(m_records, l_records, meta, cores=None):
    """Paper's Table III: nodes = 1, ranks, time per iteration of M and L."""
    by_layout = {}
    for column, records in ((0, m_records), (1, l_records)):
        for r in records:
            by_layout.setdefault((r["ranks"], r["working_ranks"], bool(r["master"])),
                                 [None, None])[column] = r
    if not by_layout:
        return None
    rows = []
    for key in sorted(by_layout, key=lambda k: (k[0], k[1])):
        m, l = by_layout[key]
        any_r = m or l
        rows.append(["1", ranks_cell(any_r, cores),
                     fmt_seconds(median_seconds(m)) if m else "—",
                     fmt_seconds(median_seconds(l)) if l else "—",
                     fmt_int(m.get("connections")) if m else "—",
                     fmt_int(l.get("connections")) if l else "—"])
    return markdown_table(["nodes", "ranks", "time per iteration M (s)", "time per iteration L (s)",
                           "M connections", "L connections"], rows)


def table_iv(records, meta, cores=None):
    """Paper's Table IV for model L: ranks, Max CPI, Avg CPI (communication seconds per
    iteration, max and mean over ranks), % of the median iteration in communication."""
    records = sorted(records, key=row_order)
    if not records:
        return None
    rows = [[ranks_cell(r, cores), fmt_seconds(r["comm_seconds"]["max"]),
             fmt_seconds(r["comm_seconds"]["mean"]), f"{float(r['comm_percent']):.1f}"]
            for r in records]
    return markdown_table(["ranks", "Max CPI (s)", "Avg CPI (s)", "% time in communication"], rows)


def not_run_notes(entries):
    """Bullet lines for the skipped and failed runs of one sweep."""
    lines = []
    for e in sorted(entries, key=lambda e: (e.get("model", ""), e.get("ranks", 0),
                                            e.get("working_ranks", 0))):
        where = f"{e.get('model')} at {ranks_cell(e)} ranks"
        if e.get("kind") == "train-skipped":
            lines.append(f"- skipped: {where}: {e.get('reason')}")
        elif e.get("timed_out"):
            lines.append(f"- FAILED: {where}: timed out after {e.get('timeout_s')} s "
                         f"(`{e.get('command')}`)")
        else:
            detail = (e.get("error") or "").strip().splitlines()
            lines.append(f"- FAILED: {where}: exit status {e.get('returncode')}"
                         + (f": {detail[-1]}" if detail else "") + f" (`{e.get('command')}`)")
    return lines


def group_meta(results):
    """What every table's header states, from the results of one group."""
    first = results[0]
    sizes = {}
    for r in results:
        sizes.setdefault(r["model"], sizes_text(r))
    def values(name):
        return ", ".join(str(v) for v in sorted({r.get(name) for r in results}, key=str))
    mpi = " ".join(str(first.get("mpi") or "").strip().split("\n")[0].split()) or None
    return {"machine": machine_label(first.get("machine")) or "unknown", "mpi": mpi,
            "batch": first.get("batch"), "dtype": first.get("dtype"),
            "iterations": values("iterations"), "warmup": values("warmup"), "sizes": sizes,
            "cores": (first.get("machine") or {}).get("cores")}


def latest_scale_only(results):
    """Per model, only the records at the scale of its last record (and the scales left out)."""
    last = {}
    for r in results:
        last[r["model"]] = float(r.get("scale", 1.0))
    kept = [r for r in results if float(r.get("scale", 1.0)) == last[r["model"]]]
    dropped = sorted({(r["model"], float(r.get("scale", 1.0))) for r in results} -
                     {(m, s) for m, s in last.items()})
    return kept, dropped


def render_markdown(records, source=None, commands=()):
    """The whole scaling.md from the lines of scaling.jsonl (results, skips, failures)."""
    records = latest_by_layout(records)
    results = [r for r in records if is_result(r)]
    others = [r for r in records if not is_result(r)]
    out = ["# Scaling: time per iteration vs MPI ranks", ""]
    if source:
        out.append(f"Generated from `{source}` by `python -m benchmarks.scaling`.")
    for command in commands:
        out.append(f"Sweep command: `{command}`")
    out += ["",
            "Tables laid out like the paper's Tables II-IV, one set per sweep; speed-ups are "
            "computed within a sweep only, against the smallest run of the same layout (1 rank; "
            "1 worker + 1 master for the master rows — the paper's \"2 ranks = sequential\"). "
            "\"N (P + master)\" is the paper's layout: P working ranks and a rank 0 that only "
            "gathers the outputs and the loss. \"*\": more MPI ranks than cores. Max/Avg CPI: "
            "communication seconds per iteration, max and mean over ranks. Each run's own "
            "command is in the JSONL file.", ""]
    groups = {}
    for r in results:
        groups.setdefault((machine_label(r.get("machine")), r.get("batch"), r.get("dtype")),
                          []).append(r)
    if not groups:
        out += ["No successful runs.", ""]
    for (machine, batch, dtype), group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        group, dropped = latest_scale_only(group)
        meta = group_meta(group)
        cores = meta["cores"]
        if len(groups) > 1:
            out += [f"## {machine}; batch {batch}, {dtype}", ""]
        if dropped:
            out += ["Older runs at other scales, not shown: "
                    + ", ".join(f"{m} at scale {s:g}" for m, s in dropped) + ".", ""]
        others_here = [e for e in others if e.get("batch") == batch and e.get("dtype") == dtype]
        sweeps = sorted({s for r in group + others_here for s in sweeps_of(r)}, key=sweep_order)
        for sweep in sweeps:
            in_sweep = [r for r in group if sweep in sweeps_of(r)]
            by_model = {}
            for r in in_sweep:
                by_model.setdefault(r["model"], []).append(r)
            out += [f"### Sweep: {sweep_title(sweep)}", ""]
            for title, models, table in (
                    ("Table II: model S", ["S"], table_ii(by_model.get("S", []), meta, cores)),
                    ("Table III: models M and L", ["M", "L"],
                     table_iii(by_model.get("M", []), by_model.get("L", []), meta, cores)),
                    ("Table IV: model L, communication", ["L"],
                     table_iv(by_model.get("L", []), meta, cores))):
                out += [f"**{title}**", ""]
                if table is None:
                    out += ["No runs.", ""]
                    continue
                out += [table_header(meta, models), "", table, ""]
            notes = not_run_notes([e for e in others_here if sweep in sweeps_of(e)])
            if notes:
                out += ["Not in the tables:", ""] + notes + [""]
    orphans = [e for e in others
               if not any(e.get("batch") == b and e.get("dtype") == d for _, b, d in groups)]
    if orphans:
        out += ["## Runs without any result", ""] + not_run_notes(orphans) + [""]
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------ Fig. 4

def plot_fig4(records, path):
    """Time per iteration vs ranks, log-log, one line per model x sweep (dashed: + master).

    Returns the path written, or None (with a note) when matplotlib does not import.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as error:
        print(f"note: matplotlib is not available ({error}); Fig. 4 not drawn", file=sys.stderr)
        return None
    results = [r for r in latest_by_layout(records) if is_result(r)]
    series = {}
    for r in results:
        for sweep in sweeps_of(r):
            series.setdefault((r["model"], sweep, bool(r["master"])), []).append(r)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    sweeps = sorted({key[1] for key in series}, key=sweep_order)
    colors = {sweep: f"C{i % 10}" for i, sweep in enumerate(sweeps)}
    markers = {"S": "o", "M": "s", "L": "^"}
    def line_order(item):
        (model, sweep, master), _ = item
        return model, sweep_order(sweep), master
    for (model, sweep, master), rs in sorted(series.items(), key=line_order):
        rs = sorted(rs, key=row_order)
        ax.plot([r["ranks"] for r in rs], [median_seconds(r) for r in rs],
                marker=markers.get(model, "x"), linestyle="--" if master else "-",
                color=colors[sweep], label=None if master else f"{model}, {sweep}")
    if any(master for _, _, master in series):
        ax.plot([], [], linestyle="--", color="gray", label="dashed: P working ranks + 1 master")
    ranks = sorted({r["ranks"] for r in results})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if ranks:
        ax.set_xticks(ranks)
        ax.set_xticklabels([str(n) for n in ranks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("MPI ranks (including the master rank, if any)")
    ax.set_ylabel("time per iteration (s)")
    batches = sorted({r.get("batch") for r in results})
    ax.set_title("Fig. 4: time per iteration vs ranks"
                 + (f" (batch {', '.join(map(str, batches))})" if batches else ""))
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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


def query_sizes(models_scales, env, python=None):
    """{(model, scale): sizes} as the harness will build them (ghostmlp.bench.scaled_sizes,
    asked in a child process so that this one never imports ghostmlp); {} if that fails."""
    code = ("import json, sys; from ghostmlp.bench import scaled_sizes; "
            "print(json.dumps([scaled_sizes(m, s) for m, s in json.loads(sys.argv[1])]))")
    pairs = sorted(set(models_scales))
    try:
        done = subprocess.run([python or sys.executable, "-c", code, json.dumps(pairs)],
                              cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True,
                              timeout=120)     # outside the checkout: its ghostmlp/ has no kernels
        sizes = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        sizes = None
    if not sizes:
        log("note: could not ask ghostmlp.bench for the layer sizes; they are taken from "
            "the first result of each model")
        return {}
    return {pair: list(s) for pair, s in zip(pairs, sizes)}


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
    plan = plan_runs(args.models, ranks, fixed, args.scale_l, master=not args.no_master)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    # (model, scale) -> layer sizes: from the harness's own model table, else learned from
    # earlier results of the same model (the skip checks need them)
    sizes = {}
    if jsonl.exists():
        for r in read_jsonl(jsonl):
            if is_result(r) and r.get("sizes"):
                sizes[(r.get("model"), float(r.get("scale", 1.0)))] = r["sizes"]
    sizes.update(query_sizes([(r["model"], r["scale"]) for r in plan], env))
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
        model_sizes = sizes.get((run["model"], run["scale"]))
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
            sizes[(run["model"], run["scale"])] = record.get("sizes")
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
    parser.add_argument("--models", nargs="+", choices=DEFAULT_MODELS, default=list(DEFAULT_MODELS))
    parser.add_argument("--scale-l", type=float, default=DEFAULT_SCALE_L,
                        help="the harness's --scale for model L, which multiplies its hidden layers "
                             "(default %(default)g, to fit one small machine)")
    parser.add_argument("--ranks", type=int, nargs="+",
                        help="working-rank counts (default 1, 2, 4, ... up to os.cpu_count()); "
                             "each also runs with +1 master rank unless --no-master")
    parser.add_argument("--no-master", action="store_true", help="leave out the +1-master layout")
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
    for name in ("batch", "iterations", "timeout"):
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
