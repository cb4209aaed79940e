"""The Markdown report of benchmarks.vs_sklearn: accuracy and fit time per entry point, and the targets."""
import statistics

from benchmarks.vs_sklearn_data import DATASETS, FEATURES, TEST_SIZE
from ghostmlp.bench import blas_label

ENTRIES = {"sklearn": "MLPClassifier()", "estimator": "GhostMLPClassifier()",
           "cli1": "ghostmlp train, 1 rank", "cli2": "ghostmlp train, 2 ranks"}
ACCURACY_POINTS = 1.0           # ghostmlp's mean accuracy at most this many points below
TIME_RATIO = 1 / 3              # and its fit at most this share of MLPClassifier's, one process
TIMED = ("estimator", "cli1")   # the one-process entry points the time target applies to


def latest(records):
    """The last record of each (data set, features, entry, seed), in the order of the tables."""
    last = {}
    for record in records:
        if record.get("benchmark") == "vs_sklearn":
            last[(record["dataset"], record["features"], record["entry"], record["seed"])] = record
    order = {name: i for i, name in enumerate([*DATASETS, *FEATURES, *ENTRIES])}

    def rank(key):          # unknown names (from an older run) last
        return (*(order.get(part, len(order)) for part in key[:3]), key[3])
    return [last[key] for key in sorted(last, key=rank)]


def summarise(records):
    """{(data set, features, entry): the seeds' mean and spread} of latest(records)."""
    groups = {}
    for record in latest(records):
        key = (record["dataset"], record["features"], record["entry"])
        groups.setdefault(key, []).append(record)
    return {key: _summary(group) for key, group in groups.items()}


def _summary(group):
    fitted = [r for r in group if r["accuracy"] is not None]
    accuracy = [100 * r["accuracy"] for r in fitted]
    fit_s = [r["fit_s"] for r in fitted if r.get("fit_s") is not None]
    command_s = [r["command_s"] for r in fitted if r.get("command_s") is not None]
    return {"seeds": len(group), "failed": [r["error"] for r in group if r["accuracy"] is None],
            "accuracy": _mean_sd(accuracy), "fit_s": _mean_sd(fit_s),
            "command_s": _mean_sd(command_s),
            "n_iter": _mean_sd([r["n_iter"] for r in fitted if r.get("n_iter")]),
            "non_finite": sum(bool(r.get("non_finite_loss")) for r in fitted),
            "max_iter_warnings": sum("ConvergenceWarning" in r.get("warnings", []) for r in fitted)}


def _mean_sd(values):
    if not values:
        return None
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def verdicts(summary, anchor):
    """(accuracy points vs anchor, fit-time ratio, accuracy verdict, time verdict) of a row."""
    if summary["failed"] or summary["accuracy"] is None or anchor["accuracy"] is None:
        failed = f"missed ({len(summary['failed'])} of {summary['seeds']} fits failed)"
        return None, None, failed, "—"
    points = summary["accuracy"][0] - anchor["accuracy"][0]
    accuracy_met = points >= -ACCURACY_POINTS
    ratio = (summary["fit_s"][0] / anchor["fit_s"][0]
             if summary["fit_s"] and anchor["fit_s"] else None)
    return points, ratio, "met" if accuracy_met else "missed", _time_verdict(ratio, accuracy_met)


def _time_verdict(ratio, accuracy_met):
    if ratio is None:
        return "—"
    if ratio > TIME_RATIO:
        return "missed"
    return "met" if accuracy_met else "missed (at a lower accuracy)"


def _cell(mean_sd, digits):
    return "—" if mean_sd is None else f"{mean_sd[0]:.{digits}f} ± {mean_sd[1]:.{digits}f}"


def table(summaries):
    """The Markdown table: one row per (data set, features, entry point), targets marked."""
    lines = ["| data set | features | entry point | accuracy % | vs MLPClassifier, points "
             "| fit s | fit / MLPClassifier's | epochs | within 1 point | fit ≤ 1/3 |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for (name, features, entry), summary in summaries.items():
        anchor = summaries.get((name, features, "sklearn"))
        points = ratio = None
        accuracy_verdict = time_verdict = "—"
        if entry != "sklearn" and anchor:
            points, ratio, accuracy_verdict, time_verdict = verdicts(summary, anchor)
            if entry not in TIMED:
                time_verdict = "—"
        fit = _cell(summary["fit_s"], 3)
        if summary["command_s"]:
            fit += f" (command {summary['command_s'][0]:.2f})"
        marks = "".join(["†" if summary["non_finite"] else "",
                         "‡" if summary["max_iter_warnings"] else ""])
        lines.append("| " + " | ".join([
            name, features, ENTRIES[entry], _cell(summary["accuracy"], 1) + marks,
            "—" if points is None else f"{points:+.1f}", fit,
            "—" if ratio is None else f"{ratio:.2f}",
            "—" if summary["n_iter"] is None else f"{summary['n_iter'][0]:.0f}",
            accuracy_verdict, time_verdict]) + " |")
    return lines


def report(records):
    """The whole report: provenance, the table, the targets' tally and how it was measured."""
    records = latest(records)
    if not records:
        return "vs_sklearn: no records"
    summaries = summarise(records)
    facts = records[-1]["machine"]
    seeds = sorted({r["seed"] for r in records})
    lines = ["## ghostmlp's defaults vs scikit-learn's MLPClassifier() (`benchmarks.vs_sklearn`)",
             "", f"Measured {_period(records)} UTC; seeds {', '.join(map(str, seeds))} "
             "(mean ± sample standard deviation over them); one BLAS thread per process.", "",
             "```sh", *sorted({r["command"] for r in records}), "```", "", *_machine(facts,
                                                                                   records), "",
             *table(summaries), "", *_tally(summaries), "", *_notes(records)]
    return "\n".join(lines)


def _period(records):
    first, last = (min(r["started"] for r in records)[:16].replace("T", " "),
                   max(r["started"] for r in records)[:16].replace("T", " "))
    return first if first == last else f"{first} to {last}"


def _machine(facts, records):
    blas = "; ".join(f"{b['library']} {b['version']} ({b['architecture']}, {b['threads']} "
                     f"thread(s), {b['file']})" for b in facts["blas"])
    mpi = facts.get("mpi")
    return [f"- Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB; "
            f"load average at the start {', '.join(map(str, facts['load_average']))}",
            f"- BLAS the kernels call: {blas_label(facts)}",
            f"- BLAS loaded: {blas or 'unknown (threadpoolctl saw none)'}; OPENBLAS_CORETYPE = "
            f"{facts['OPENBLAS_CORETYPE']}",
            f"- Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}, "
            f"scikit-learn {records[-1]['sklearn']}, ghostmlp {facts['ghostmlp']}; MPI: "
            + (" ".join(mpi.splitlines()[0].split()) if mpi else "mpi4py not importable")]


def _tally(summaries):
    """One line per target: how many rows met it, and which missed."""
    lines = []
    for name, index, entries in (("Accuracy within 1 point of MLPClassifier's", 2, ENTRIES),
                                 ("Fit time ≤ 1/3 of MLPClassifier's, one process", 3, TIMED)):
        rows = [(key, verdicts(s, summaries[(*key[:2], "sklearn")])[index])
                for key, s in summaries.items()
                if key[2] != "sklearn" and key[2] in entries and (*key[:2], "sklearn") in summaries]
        missed = [f"{k[0]} {k[1]} {ENTRIES[k[2]]}" for k, verdict in rows if verdict != "met"]
        lines.append(f"- {name}: met on {len(rows) - len(missed)} of {len(rows)} rows"
                     + (f"; missed on {', '.join(missed)}." if missed else "."))
    return lines


def _notes(records):
    n_test = {r["dataset"]: (r["n_train"], r["n_test"], r["n_features"]) for r in records}
    return ["- Data sets (train / test rows, features): " + "; ".join(
                f"{name}: {DATASETS[name][0]}, {n_test[name][0]} / {n_test[name][1]}, "
                f"{n_test[name][2]}" for name in DATASETS if name in n_test) + ".",
            f"- One stratified {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} split (sklearn "
            "train_test_split, split seed "
            f"{records[0]['split_seed']}) for every entry point; *standard* = a StandardScaler "
            "fitted on the training rows, applied to both.",
            "- Every entry point runs with its defaults and only its seed set (random_state, or "
            "`--seed`). `ghostmlp train` is given the training rows as an .npz of X and y with "
            "`--test-fraction 0` (nothing more held out; its own defaults do any normalising "
            "and validation within those rows), and the test rows are predicted by `ghostmlp "
            "predict` from its checkpoint (which applies the normalisation train stored). "
            "Accuracy is the share of test rows predicted right, computed the same way for all.",
            "- Fit s: the wall time of `fit` in this process for the estimators; for `ghostmlp "
            "train`, its training loop's seconds (the last `seconds` of `--history`: its per-epoch "
            "lines included; start-up, file reading and checkpoint writing not), and in brackets the whole command's. The time target applies to the "
            "one-process ghostmlp rows and counts only where the accuracy target is met.",
            "- Epochs: mean epochs (n_iter_) run. ‡: the estimator warned that max_iter ended "
            "training before tol was met (ConvergenceWarning) in at least one fit; †: a "
            "non-finite loss in `ghostmlp train`'s history in at least one fit."]
