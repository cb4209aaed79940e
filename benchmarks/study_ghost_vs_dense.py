"""Does the ghost topology over-fit as the number of blocks K grows? (the paper's section VI question)

Trains ghost networks with K = 1, 2, 4, 8 (and 16, see below) blocks, the dense network and
dense networks narrowed to the ghost networks' number of weights ("capacity-matched") on the
bundled 8x8 digits, over several initialisation seeds and train/test splits, with the
`ghostmlp train` recipe (cli_train.py). Writes one JSON line per run, then a markdown table
(stdout) and a plot from the JSON lines:

    python -m benchmarks.study_ghost_vs_dense [--seeds 5] [--splits 4] [--out docs/]
    python -m benchmarks.study_ghost_vs_dense --report-only [--out docs/]

Two output heads, because the library blocks the output layer too (every block needs a
neuron, so K <= n_out):
  head10  the task as is: 10 softmax outputs, one per class; K = 1, 2, 4, 8.
  head20  K = 16 needs >= 16 outputs: 20 softmax outputs, class c on neurons 2c and 2c+1
          (adjacent, so a class stays in one block or two neighbouring ones), target 1/2 on
          each, class probability = their sum. Run for K = 1, 2, 4, 8, 16 so that K = 16 is
          compared with the same head at every K, never with head10.
A ghost network with comm=None runs on one process (MPI.COMM_SELF); it depends on K only.
"""
import argparse
import json
import math
import multiprocessing
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ghostmlp.datasets import load_digits
from ghostmlp.network import Network
from ghostmlp.partition import connectivity_mask
from ghostmlp.schedule import learning_rate_at
from ghostmlp.splits import train_test_split

STEM = "ghost_vs_dense"
N_IN, N_CLASSES = 64, 10
HIDDEN = (256, 256)
RECIPE = {"activation": "sigmoid", "loss": "cross_entropy", "learning_rate": 2.0,
          "momentum": 0.0, "weight_decay": 1e-4, "batch_size": 16, "test_fraction": 0.25,
          "dtype": "float32", "decay": "step"}
HEADS = {"head10": {"n_out": 10, "blocks": (1, 2, 4, 8)},
         "head20": {"n_out": 20, "blocks": (1, 2, 4, 8, 16)}}
LOCAL_BLOCKS = (2, 4, 8, 16)    # ghost_gradients="local" runs (where the head allows the K)


# ------------------------------------------------------------------ the runs

def class_neurons(n_out):
    """Output neurons of each class: [c] for head10, [2c, 2c+1] for head20."""
    per = n_out // N_CLASSES
    return [list(range(per * c, per * (c + 1))) for c in range(N_CLASSES)]


def dense_weights(hidden, n_out):
    sizes = [N_IN, *hidden, n_out]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matched_width(target, n_out, depth=len(HIDDEN)):
    """Hidden width h (all hidden layers equal) whose dense network has the weight count closest to target."""
    return min(range(1, max(HIDDEN) + 1),
               key=lambda h: (abs(dense_weights([h] * depth, n_out) - target), h))


def receptive_fields(sizes, blocks):
    """Mean over classes of the fraction of (last, first) hidden layer a class's outputs depend on."""
    masks = [connectivity_mask(a, b, blocks, first_layer=i == 0)
             for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    last, first = [], []
    for neurons in class_neurons(sizes[-1]):
        seen = np.zeros(sizes[-1], dtype=bool)
        seen[neurons] = True
        reach = []
        for mask in reversed(masks[1:]):     # back from the output to the first hidden layer
            seen = mask[:, seen].any(axis=1)
            reach.append(seen.mean())
        last.append(reach[0])
        first.append(reach[-1])
    return float(np.mean(last)), float(np.mean(first))


def configs():
    """Every network of the study, in run order: dicts of head, variant, K, ghost_gradients, hidden."""
    out = []
    for head, spec in HEADS.items():
        n_out = spec["n_out"]
        out.append({"head": head, "variant": "dense", "K": 1, "ghost_gradients": None,
                    "hidden": list(HIDDEN)})
        for K in spec["blocks"]:
            out.append({"head": head, "variant": "ghost", "K": K, "ghost_gradients": "exact",
                        "hidden": list(HIDDEN)})
            if K > 1 and K in LOCAL_BLOCKS:
                out.append({"head": head, "variant": "ghost", "K": K, "ghost_gradients": "local",
                            "hidden": list(HIDDEN)})
            if K > 1:
                target = Network(connectivity="ghost", blocks=K)
                for kind, size in (("input", N_IN), *(("hidden", h) for h in HIDDEN), ("output", n_out)):
                    target.add_layer(kind, size)
                width = matched_width(target.n_weights, n_out)
                out.append({"head": head, "variant": "dense_matched", "K": K, "ghost_gradients": None,
                            "hidden": [width] * len(HIDDEN)})
    return out


def build(config, seed):
    n_out = HEADS[config["head"]]["n_out"]
    kwargs = {}
    if config["variant"] == "ghost":
        kwargs = {"connectivity": "ghost", "blocks": config["K"],
                  "ghost_gradients": config["ghost_gradients"]}
    net = Network(seed=seed, dtype=RECIPE["dtype"], loss=RECIPE["loss"],
                  learning_rate=RECIPE["learning_rate"], momentum=RECIPE["momentum"],
                  weight_decay=RECIPE["weight_decay"], **kwargs)
    net.add_layer("input", N_IN)
    for size in config["hidden"]:
        net.add_layer("hidden", size, activation=RECIPE["activation"])
    net.add_layer("output", n_out, activation="softmax")
    return net.initialize()


def scores(net, X, y):
    """Accuracy and class negative log-likelihood, classes scored by the summed outputs of their neurons."""
    proba = net.predict_proba(X).astype(np.float64)
    classes = np.stack([proba[:, n].sum(axis=1) for n in class_neurons(proba.shape[1])], axis=1)
    nll = -np.log(np.maximum(classes[np.arange(len(y)), y], 1e-300)).mean()
    return float(np.mean(classes.argmax(axis=1) == y)), float(nll)


def run_one(job):
    """Train one network with the cli_train.py recipe; returns its JSON record."""
    config, seed, split, epochs = job
    X, y = load_digits(dtype=RECIPE["dtype"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, RECIPE["test_fraction"], split)
    n_out = HEADS[config["head"]]["n_out"]
    targets = np.zeros((len(y_train), n_out), dtype=RECIPE["dtype"])
    for c, neurons in enumerate(class_neurons(n_out)):
        targets[np.ix_(y_train == c, neurons)] = 1.0 / len(neurons)
    Y_train = targets if n_out != N_CLASSES else y_train
    net = build(config, seed)
    start = time.perf_counter()
    curve = []
    for epoch in range(epochs):
        rate = learning_rate_at(epoch, epochs, RECIPE["learning_rate"], RECIPE["decay"])
        curve += net.fit(X_train, Y_train, epochs=1, batch_size=RECIPE["batch_size"],
                         learning_rate=rate)["loss"]
    seconds = time.perf_counter() - start
    train_acc, train_nll = scores(net, X_train, y_train)
    test_acc, test_nll = scores(net, X_test, y_test)
    sizes = net.sizes
    rf_last, rf_first = receptive_fields(sizes, net.blocks)
    return {"record": "run", **config, "sizes": sizes, "n_weights": net.n_weights,
            "seed": seed, "split": split, "epochs": net.epochs_trained,
            "n_train": len(y_train), "n_test": len(y_test),
            "train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
            "train_nll": train_nll, "test_nll": test_nll,
            "class_sees_last_hidden": rf_last, "class_reaches_first_hidden": rf_first,
            "train_seconds": round(seconds, 3),
            "train_loss_per_epoch": [round(v, 5) for v in curve]}


def _init_worker():
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)        # one BLAS thread per worker process: the workers share the cores


def code_state():
    """Which ghostmlp ran: its folder, the git commit and modified files there, the kernels' sha256."""
    import hashlib
    import subprocess
    import ghostmlp
    from ghostmlp import _kernels
    root = Path(ghostmlp.__file__).resolve().parents[1]

    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    return {"ghostmlp_dir": str(root), "git_commit": git("rev-parse", "HEAD"),
            "git_modified": git("status", "--porcelain", "--untracked-files=no"),
            "kernels_sha256": hashlib.sha256(Path(_kernels.__file__).read_bytes()).hexdigest()}


def run_study(seeds, splits, epochs, jobs, path, command):
    todo = [(c, seed, split, epochs) for split in range(splits) for seed in range(seeds)
            for c in configs()]
    from benchmarks import machine
    meta = {"record": "meta", "command": command, "seeds": seeds, "splits": splits,
            "epochs": epochs, "jobs": jobs, "recipe": RECIPE, "hidden": list(HIDDEN),
            "runs": len(todo), "code": code_state(), "machine": machine.facts(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"{len(todo)} runs ({len(configs())} networks x {seeds} seeds x {splits} splits), "
          f"{jobs} process(es)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with open(path, "w") as out:
        out.write(json.dumps(meta) + "\n")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(jobs, initializer=_init_worker) as pool:
            for done, record in enumerate(pool.imap(run_one, todo), 1):
                out.write(json.dumps(record) + "\n")
                out.flush()
                if done % 20 == 0 or done == len(todo):
                    print(f"  {done}/{len(todo)} runs, {time.perf_counter() - start:.0f} s",
                          file=sys.stderr, flush=True)
        wall = time.perf_counter() - start
        out.write(json.dumps({"record": "end", "wall_seconds": round(wall, 1)}) + "\n")
    print(f"study wall time {wall:.0f} s", file=sys.stderr)


# ------------------------------------------------------------------ the report

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


def report(out_dir):
    path = Path(out_dir) / f"{STEM}.jsonl"
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
    plot(rows, Path(out_dir) / f"{STEM}.png")
    print(f"wrote {Path(out_dir) / (STEM + '.png')}", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="initialisation/shuffle seeds 0..N-1 (default 5)")
    parser.add_argument("--splits", type=int, default=4, help="train/test splits 0..M-1 (default 4)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs, step-decayed as by ghostmlp train (default 60)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the core count)")
    parser.add_argument("--out", default="docs/", help="folder for the .jsonl and .png (default docs/)")
    parser.add_argument("--report-only", action="store_true",
                        help="skip training: table and plot from the existing JSONL")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if args.seeds < 1 or args.splits < 1 or args.epochs < 1 or args.jobs < 1:
            parser.error("--seeds, --splits, --epochs and --jobs must be >= 1")
        command = "python -m benchmarks.study_ghost_vs_dense " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
        run_study(args.seeds, args.splits, args.epochs, args.jobs, Path(args.out) / f"{STEM}.jsonl",
                  command.strip())
    report(args.out)


if __name__ == "__main__":
    main()
