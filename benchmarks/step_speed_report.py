"""step_speed compare's Markdown report: medians, minima and paired ratios with their intervals."""
import math
import statistics


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


def report(records, labels, cases, iteration, command, seconds, results):
    """Markdown: the machine, then per case ({name: Case}) each interpreter's median and min
    step over all its timings, and each one's ratio to the first interpreter's: the median of
    the paired ratios with its 95 % interval, then the ratios of the medians and of the minima."""
    base, others = labels[0], labels[1:]
    from ghostmlp.bench import blas_label     # here, not at the top: see step_speed.py
    one = {r["label"]: r for r in records}   # a record of each interpreter, for its facts
    lines = ["# One training step, side by side\n", f"Command: `{command}`\n",
             f"- iteration: {iteration}; float32, one BLAS thread per rank; medians and minima "
             "per step in microseconds over every timing of every round (a model-parallel "
             "timing lasts as long as its slowest rank)",
             f"- CPU: {records[0]['machine']['cpu']}, {records[0]['machine']['cores']} cores"
             if records else "- no records"]
    for label in labels:
        facts = one[label]["machine"] if label in one else {}
        blas = ", ".join(f"{b['library']} {b['version']} ({b['architecture']}, {b['threads']} "
                         "thread)" for b in facts.get("blas", []))
        lines.append(f"- {label}: ghostmlp {one.get(label, {}).get('ghostmlp_file')}, "
                     f"the kernels' BLAS {blas_label(facts)}; BLAS loaded {blas or '?'}, "
                     f"numpy {facts.get('numpy')}")
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
    for name, case in cases.items():
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
