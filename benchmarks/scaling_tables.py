"""The paper's Tables II-IV as Markdown, from the records of scaling sweeps."""
import math

from benchmarks.scaling_records import (
    is_result, latest_by_layout, median_seconds, row_order, sweep_order, sweep_title, sweeps_of,
)
from ghostmlp.bench import blas_label


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
    parts.append(f"BLAS {blas_label(machine)}")
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
