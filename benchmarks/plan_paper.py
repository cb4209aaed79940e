"""The paper's Tables II-IV as the planner predicts them from a machine file, beside the paper's measurements (Markdown)."""
import argparse
import copy
from pathlib import Path

from benchmarks.scaling_tables import fmt_seconds
# The installed ghostmlp, even from the checkout's root (see benchmarks/__init__.py).
from ghostmlp import plan
from ghostmlp.machine import OPERATIONS, Machine
from ghostmlp.bench import MODELS

BLUEGENE = Path(__file__).resolve().parent / "machines" / "bluegene_q.json"
# The paper's measurements, seconds per iteration (Surajiwale et al., Tables II-IV).
TABLE_II = [(1, 2, 17.452), (1, 5, 0.4905), (1, 9, 0.0928), (1, 17, 0.0651), (1, 33, 0.0354)]
TABLE_III = [(1, 33, 67.499, 2107.96), (2, 65, 22.276, 593.228), (4, 129, 7.167, 172.071),
             (8, 257, 2.52, 55.43), (16, 513, 0.802, 16.97), (32, 1025, 0.255, 6.44)]
TABLE_IV = {33: (21.415, 7.930, 1.015), 65: (6.305, 1.398, 1.062), 129: (2.371, 0.634, 1.378),
            257: (1.047, 0.238, 1.890), 513: (0.482, 0.100, 2.844), 1025: (0.468, 0.090, 7.272)}
ALPHAS = (1e-6, 10e-6)          # the latency assumption's range, beside the file's own


def paper_layout(ranks):
    """The paper's layout: a master and ranks - 1 working ranks, K = the working ranks."""
    return plan.Candidate((1, ranks), "ghost", ranks - 1, True)


def paper_step(model, ranks, machine, dtype):
    """The paper's iteration: batch 1, ghost values as constants in the backward pass, SGD."""
    return plan.predict(MODELS[model], 1, paper_layout(ranks), machine, dtype,
                        ghost_gradients="local")


def with_alpha(machine, alpha):
    data = copy.deepcopy(machine.data)
    for op in OPERATIONS:
        for line in data["comm"][op]["lines"]:
            line["alpha_s"] = alpha
    return Machine(data, machine.path)


def ratio(paper, predicted):
    return f"{paper / predicted:,.0f}"


def tables(machine, dtype):
    """The Markdown lines."""
    out = [f"Model output from `{machine.name}` ({dtype}, batch 1, the paper's layout: ghost, "
           "K = working ranks, a master, ghost values as constants backward); paper: its "
           "measurements on AMOS.", "", "**Table II: model S (one node)**", "",
           "| nodes | ranks | paper (s) | predicted (s) | paper / predicted | predicted comm (s) |",
           "| --- | --- | --- | --- | --- | --- |"]
    for nodes, ranks, paper in TABLE_II:
        p = paper_step("S", ranks, machine, dtype)
        out.append(f"| {nodes} | {ranks} | {paper} | {fmt_seconds(p.total_s)} | "
                   f"{ratio(paper, p.total_s)} | {fmt_seconds(p.comm_s)} |")
    out += ["", "**Table III: models M and L**", "",
            "| nodes | ranks | paper M (s) | predicted M (s) | paper / predicted | paper L (s) "
            "| predicted L (s) | paper / predicted |", "|" + " --- |" * 8]
    for nodes, ranks, paper_m, paper_l in TABLE_III:
        m, l = (paper_step(name, ranks, machine, dtype).total_s for name in "ML")
        out.append(f"| {nodes} | {ranks} | {paper_m} | {fmt_seconds(m)} | {ratio(paper_m, m)} | "
                   f"{paper_l} | {fmt_seconds(l)} | {ratio(paper_l, l)} |")
    out += ["", "**Table IV: model L, communication per iteration**", "",
            "| ranks | paper Max CPI (s) | predicted comm (s) | paper % time | predicted % time "
            "| predicted messages per rank |", "| --- | --- | --- | --- | --- | --- |"]
    for ranks, (max_cpi, _, percent) in TABLE_IV.items():
        p = paper_step("L", ranks, machine, dtype)
        out.append(f"| {ranks} | {max_cpi} | {fmt_seconds(p.comm_s)} | {percent} | "
                   f"{100 * p.comm_s / p.total_s:.2f} | {p.counts['messages']} |")
    out += ["", "**Where the predicted time goes: model L (ms per iteration)**", "",
            "| ranks | GEMMs | elementwise | halo (exposed) | output gather | total | MiB/rank |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for ranks in TABLE_IV:
        p = paper_step("L", ranks, machine, dtype)
        ms = {key: 1e3 * value for key, value in p.seconds.items()}
        out.append(f"| {ranks} | {ms['gemm']:.3f} | {ms['elementwise']:.3f} | "
                   f"{ms['halo_exposed']:.4f} | {ms['gather']:.4f} | {1e3 * p.total_s:.3f} | "
                   f"{p.memory_bytes / 2**20:,.1f} |")
    out += ["", "**The paper's time per parameter of a working rank**", "",
            "| model | ranks | weights and biases on a working rank | paper µs per parameter "
            "| predicted ns per parameter |", "| --- | --- | --- | --- | --- |"]
    runs = [("S", ranks, paper) for _, ranks, paper in TABLE_II] + [
        (model, ranks, paper) for _, ranks, *times in TABLE_III
        for model, paper in zip("ML", times)]
    for model, ranks, paper in runs:
        p = paper_step(model, ranks, machine, dtype)
        out.append(f"| {model} | {ranks} | {p.parameters:,} | {1e6 * paper / p.parameters:,.0f} | "
                   f"{1e9 * p.total_s / p.parameters:,.0f} |")
    alphas = [with_alpha(machine, alpha) for alpha in ALPHAS]
    out += ["", "**The latency assumption: predicted seconds per iteration at other α**", "",
            "| model | ranks | " + " | ".join(f"α = {a * 1e6:g} µs" for a in ALPHAS)
            + " | the file's α |", "|" + " --- |" * (len(ALPHAS) + 3)]
    for model, ranks in (("S", 33), ("M", 1025), ("L", 1025)):
        cells = [fmt_seconds(paper_step(model, ranks, m, dtype).total_s)
                 for m in alphas + [machine]]
        out.append(f"| {model} | {ranks} | " + " | ".join(cells) + " |")
    out += ["", "**The planner's choice for the fully connected network (batch 1)**", "",
            "| model | ranks | recommended | predicted (s) | MiB/rank | paper's layout, dense "
            "(s) |", "| --- | --- | --- | --- | --- | --- |"]
    for model, ranks in (("S", 33), ("M", 33), ("M", 1025), ("L", 33), ("L", 1025)):
        result = plan.recommend(MODELS[model], 1, ranks, machine, dtype, connectivity="dense")
        best = result.table[[p.layout for p in result.table].index(result.layout)]
        dense = plan.predict(MODELS[model], 1, plan.Candidate((1, ranks), "dense", 1, True),
                             machine, dtype)
        out.append(f"| {model} | {ranks} | {result.layout} | {fmt_seconds(best.total_s)} | "
                   f"{best.memory_bytes / 2**20:,.2f} | {fmt_seconds(dense.total_s)} |")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_paper", description=__doc__)
    parser.add_argument("--machine", default=str(BLUEGENE), help="(the Blue Gene/Q file)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    args = parser.parse_args(argv)
    print("\n".join(tables(plan.load_machine(args.machine), args.dtype)))


if __name__ == "__main__":
    main()
