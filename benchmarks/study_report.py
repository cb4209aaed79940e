"""The study's report from its JSON lines: paired statistics, Markdown tables and the plot."""
import json
import math
import statistics
import sys

from benchmarks.study_networks import HEADS


def load(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return ([r for r in lines if r["record"] == "meta"], [r for r in lines if r["record"] == "run"],
            [r for r in lines if r["record"] == "end"])


def key(r):
    return (r["head"], r["variant"], r["K"], r["ghost_gradients"])


LABELS = {"dense": "dense", "dense_matched": "dense, capacity-matched",
          "ghost": "ghost"}


def label(k):
    head, variant, K, gg = k
    return LABELS[variant] + (f" ({gg})" if gg else "")


def mean_std(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def t95(n):
    from scipy.stats import t
    return float(t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def summarize(runs):
    """{key: stats} with paired differences against the same head's dense network (same seed and split)."""
    groups = {}
    for r in runs:
        groups.setdefault(key(r), []).append(r)
    dense = {(r["head"], r["seed"], r["split"]): r for r in runs if r["variant"] == "dense"}
    rows = {}
    for k, rs in groups.items():
        row = {"n": len(rs), "n_weights": rs[0]["n_weights"], "sizes": rs[0]["sizes"],
               "rf_last": rs[0]["class_sees_last_hidden"], "rf_first": rs[0]["class_reaches_first_hidden"],
               "seconds": statistics.fmean(r["train_seconds"] for r in rs)}
        for m in ("train_acc", "test_acc", "gap", "train_nll", "test_nll"):
            row[m] = mean_std([r[m] for r in rs])
        for m in ("test_acc", "gap"):
            diffs = [r[m] - dense[(r["head"], r["seed"], r["split"])][m] for r in rs
                     if (r["head"], r["seed"], r["split"]) in dense]
            mu, sd = mean_std(diffs)
            row["d_" + m] = (mu, t95(len(diffs)) * sd / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0)
        rows[k] = row
    return rows


def order(k):
    head, variant, K, gg = k
    return (head, K, {"dense": 0, "ghost": 1, "dense_matched": 2}[variant], gg or "")


def pct(ms, digits=2):
    return f"{100 * ms[0]:.{digits}f} ± {100 * ms[1]:.{digits}f}"


def signed(ms, digits=2):
    return f"{100 * ms[0]:+.{digits}f} ± {100 * ms[1]:.{digits}f}"


def table(rows):
    lines = []
    for head in HEADS:
        keys = sorted((k for k in rows if k[0] == head), key=order)
        if not keys:
            continue
        n = rows[keys[0]]["n"]
        lines += [f"**{head}** ({HEADS[head]['n_out']} outputs; n = {n} runs per row: seeds x splits)", "",
                  "| K | network | sizes | weights | class sees last hidden | train acc % | test acc % "
                  "| gap % (train - test) | test NLL | Δ test vs dense (pp, 95% CI) | Δ gap vs dense (pp, 95% CI) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for k in keys:
            r = rows[k]
            lines.append(
                f"| {k[2]} | {label(k)} | {'-'.join(map(str, r['sizes']))} | {r['n_weights']:,} | "
                f"{100 * r['rf_last']:.0f}% | {pct(r['train_acc'])} | {pct(r['test_acc'])} | "
                f"{pct(r['gap'])} | {r['test_nll'][0]:.3f} ± {r['test_nll'][1]:.3f} | "
                f"{signed(r['d_test_acc'])} | {signed(r['d_gap'])} |")
        lines.append("")
    return "\n".join(lines)


def supplementary(runs, rows):
    """Per-split paired differences (a split's seeds averaged: n = splits, the conservative unit),
    training-set fit, early training loss, receptive field into the first hidden layer, and
    exact - local ghost gradients (paired by seed and split)."""
    dense = {(r["head"], r["seed"], r["split"]): r for r in runs if r["variant"] == "dense"}
    lines = ["| head | K | network | train NLL | Δ test vs dense, per split (pp, mean ± 95% CI over splits) "
             "| splits with Δ test < 0 | training loss after epoch 5 | class reaches first hidden | s per run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k in sorted(rows, key=order):
        rs = [r for r in runs if key(r) == k]
        splits = sorted({r["split"] for r in rs})
        per_split = [statistics.fmean(r["test_acc"] - dense[(r["head"], r["seed"], r["split"])]["test_acc"]
                                      for r in rs if r["split"] == s) for s in splits]
        mu, sd = mean_std(per_split)
        ci = t95(len(per_split)) * sd / math.sqrt(len(per_split)) if len(per_split) > 1 else 0.0
        early = statistics.fmean(r["train_loss_per_epoch"][min(4, len(r["train_loss_per_epoch"]) - 1)] for r in rs)
        lines.append(f"| {k[0]} | {k[2]} | {label(k)} | {rows[k]['train_nll'][0]:.4f} | "
                     f"{100 * mu:+.2f} ± {100 * ci:.2f} | {sum(d < 0 for d in per_split)}/{len(per_split)} | "
                     f"{early:.3f} | {100 * rows[k]['rf_first']:.0f}% | {rows[k]['seconds']:.2f} |")
    exact = {(r["head"], r["K"], r["seed"], r["split"]): r for r in runs
             if r["variant"] == "ghost" and r["ghost_gradients"] == "exact"}
    lines += ["", "| head | K | test acc: exact - local (pp, paired, 95% CI) | runs with identical test acc |",
              "| --- | --- | --- | --- |"]
    for head, K in sorted({(r["head"], r["K"]) for r in runs if r["ghost_gradients"] == "local"}):
        diffs = [exact[(head, K, r["seed"], r["split"])]["test_acc"] - r["test_acc"] for r in runs
                 if r["ghost_gradients"] == "local" and r["head"] == head and r["K"] == K
                 and (head, K, r["seed"], r["split"]) in exact]
        if not diffs:
            continue
        mu, sd = mean_std(diffs)
        ci = t95(len(diffs)) * sd / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
        lines.append(f"| {head} | {K} | {100 * mu:+.2f} ± {100 * ci:.2f} | "
                     f"{sum(d == 0 for d in diffs)}/{len(diffs)} |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = (("test_acc", "held-out accuracy (%)"), ("gap", "generalisation gap, train - test (pp)"))
    fig, axes = plt.subplots(len(HEADS), len(metrics), figsize=(11, 8), squeeze=False)
    styles = {("ghost", "exact"): ("C0", "o", "ghost (exact ghost gradients)"),
              ("ghost", "local"): ("C1", "s", "ghost (local ghost gradients)"),
              ("dense_matched", None): ("C2", "^", "dense, narrowed to the ghost K's weight count")}
    for i, head in enumerate(HEADS):
        for j, (metric, ylabel) in enumerate(metrics):
            ax = axes[i][j]
            dense = rows.get((head, "dense", 1, None))
            if dense:
                mu, sd = dense[metric]
                ax.axhline(100 * mu, color="k", lw=1.2, label="dense, same sizes (band: ± std)")
                ax.axhspan(100 * (mu - sd), 100 * (mu + sd), color="k", alpha=0.08)
            for (variant, gg), (color, marker, name) in styles.items():
                ks = sorted(k for k in rows if k[0] == head and k[1] == variant and k[3] == gg)
                if variant == "ghost":
                    ks = [k for k in ks if k[2] > 1 or gg == "exact"]
                if not ks:
                    continue
                xs = [k[2] for k in ks]
                offset = {"exact": 0.97, "local": 1.03}.get(gg, 1.0)
                ax.errorbar([x * offset for x in xs], [100 * rows[k][metric][0] for k in ks],
                            yerr=[100 * rows[k][metric][1] for k in ks], color=color, marker=marker,
                            capsize=3, lw=1.2, label=name)
            ax.set_xscale("log", base=2)
            ticks = HEADS[head]["blocks"]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xlabel("K (blocks per layer)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{head}: {HEADS[head]['n_out']} outputs", fontsize=10)
            ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    n = next(iter(rows.values()))["n"]
    fig.suptitle(f"Ghost vs dense on 8x8 digits: mean ± std over {n} runs (seeds x splits)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(path, figure):
    """The tables of the JSON lines at `path` (stdout), and their plot written to `figure`."""
    metas, runs, ends = load(path)
    rows = summarize(runs)
    print(table(rows))
    print(supplementary(runs, rows))
    ghost1 = {(r["head"], r["seed"], r["split"]): r for r in runs
              if r["variant"] == "ghost" and r["K"] == 1}
    same = [r for r in runs if r["variant"] == "dense"
            and (r["head"], r["seed"], r["split"]) in ghost1
            and all(r[m] == ghost1[(r["head"], r["seed"], r["split"])][m]
                    for m in ("train_acc", "test_acc", "train_nll", "test_nll"))]
    print(f"ghost K=1 (MPI.COMM_SELF path) identical to serial dense in {len(same)} of "
          f"{len(ghost1)} (seed, split, head) pairs")
    total = sum(r["train_seconds"] for r in runs)
    print(f"{len(runs)} runs, {total:.0f} s of training summed over runs"
          + (f", {ends[-1]['wall_seconds']:.0f} s wall" if ends else ""))
    plot(rows, figure)
    print(f"wrote {figure}", file=sys.stderr)
