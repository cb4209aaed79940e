"""The paper's Fig. 4 from the records of scaling sweeps: time per iteration vs ranks, log-log."""
import sys
from pathlib import Path

from benchmarks.scaling_records import (
    is_result, latest_by_layout, median_seconds, row_order, sweep_order, sweeps_of,
)


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
