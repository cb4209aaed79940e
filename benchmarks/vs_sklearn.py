"""ghostmlp's defaults against scikit-learn's MLPClassifier(): `python -m benchmarks.vs_sklearn`.

For every data set (benchmarks.vs_sklearn_data), raw and standardised, and every seed: the
held-out accuracy and fit wall time of MLPClassifier(), GhostMLPClassifier() and `ghostmlp
train` with its defaults on 1 and 2 ranks, all on the same stratified 75/25 split, one BLAS
thread per process. One JSON line per fit is appended to RESULTS (default
benchmarks/results/vs_sklearn.jsonl); the report (benchmarks.vs_sklearn_report) is printed
and, with --markdown, written to a file.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import ghostmlp
from benchmarks.scaling import find_mpiexec, read_jsonl
from benchmarks.vs_sklearn_data import DATASETS, FEATURES, featurize, split
from benchmarks.vs_sklearn_report import ENTRIES, report
from ghostmlp.bench import machine_facts
from ghostmlp.sklearn import GhostMLPClassifier

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "vs_sklearn.jsonl"
DEFAULT_SEEDS = [0, 1, 2]
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")}


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ entry points

def fit_in_process(model, X_train, y_train, X_test):
    """Fit `model` (an estimator with its defaults) here; its test predictions and fit seconds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            model.fit(X_train, y_train)
        except Exception as error:          # a failed fit is a result to report, not a crash
            return {"fit_s": time.perf_counter() - start,
                    "error": f"{type(error).__name__}: {error}"}
        fit_s = time.perf_counter() - start
    return {"predictions": model.predict(X_test), "fit_s": fit_s,
            "n_iter": int(getattr(model, "n_iter_", 0)) or None,
            "warnings": sorted({w.category.__name__ for w in caught})}


def fit_command(ranks, X_train, y_train, X_test, seed, launcher, timeout):
    """`ghostmlp train` with its defaults on the training rows (an .npz of X and y, nothing
    held out: --test-fraction 0), on `ranks` ranks; then `ghostmlp predict` on the test rows.

    fit_s is the training loop's seconds from --history (the command's start-up, file
    reading and checkpoint writing excluded); command_s is the whole train command's.
    """
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / "train.npz", X=X_train, y=y_train)
        np.save(Path(folder) / "test_X.npy", X_test)
        train = ["ghostmlp", "train", "--inputs", "train.npz", "--test-fraction", "0",
                 "--seed", str(seed), "--checkpoint", "model.ckpt", "--history", "history.json"]
        predict = ["ghostmlp", "predict", "--checkpoint", "model.ckpt", "--inputs", "test_X.npy",
                   "--output", "predictions.txt"]
        mpi = [launcher, "-n", str(ranks)] if ranks > 1 else []
        shown = shlex.join((["mpiexec", "-n", str(ranks)] if ranks > 1 else []) + train)
        start = time.perf_counter()
        done = _ghostmlp(mpi, train[1:], folder, timeout)
        result = {"command_s": time.perf_counter() - start, "entry_command": shown}
        if done.returncode == 0:
            done = _ghostmlp([], predict[1:], folder, timeout)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {**result, "error": f"exit {done.returncode}: " + " / ".join(tail)}
        history = json.loads((Path(folder) / "history.json").read_text())
        losses = [row["loss"] for row in history]
        predictions = np.loadtxt(Path(folder) / "predictions.txt", dtype=np.int64, ndmin=1)
        return {**result, "predictions": predictions,
                "fit_s": history[-1].get("seconds") if history else None,
                "n_iter": len(history), "final_loss": losses[-1] if losses else None,
                "non_finite_loss": not all(np.isfinite(losses))}


def _ghostmlp(mpi, arguments, folder, timeout):
    """Run `[mpi] python -m ghostmlp arguments` in `folder`, with this process's ghostmlp."""
    package_root = str(Path(ghostmlp.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": path}
    command = mpi + [sys.executable, "-m", "ghostmlp", *arguments]
    try:
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"timed out after {timeout} s")


def fit(entry, X_train, y_train, X_test, y_test, seed, args):
    """One fit of `entry` (a key of ENTRIES) with its defaults and `seed`: a dict of results,
    its test accuracy (the share of test rows predicted right; None when the fit failed) in it."""
    if entry == "sklearn":
        result = fit_in_process(MLPClassifier(random_state=seed), X_train, y_train, X_test)
    elif entry == "estimator":
        result = fit_in_process(GhostMLPClassifier(random_state=seed), X_train, y_train, X_test)
    else:
        result = fit_command({"cli1": 1, "cli2": 2}[entry], X_train, y_train, X_test, seed,
                             args.mpiexec, args.timeout)
    predictions = result.pop("predictions", None)
    accuracy = float(np.mean(predictions == y_test)) if predictions is not None else None
    return {"accuracy": accuracy, **result}


# ----------------------------------------------------------------------- run

def warm_up():
    """One untimed fit of each estimator on a few rows: first-call costs stay out of the timings."""
    X_train, X_test, y_train, _ = split("iris", 0)
    for model in (MLPClassifier(max_iter=5), GhostMLPClassifier()):
        fit_in_process(model, X_train, y_train, X_test)


def run(args, command):
    """Every (data set, features, seed, entry point): one fit, its JSON line appended."""
    os.environ.update(ONE_THREAD)
    args.mpiexec = args.mpiexec or find_mpiexec()
    if "cli2" in args.entries and not args.mpiexec:
        raise SystemExit("vs_sklearn: mpiexec not found (give --mpiexec, or leave out cli2)")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(1):
        context = {"command": command, "started": datetime.datetime.now(
                       datetime.timezone.utc).isoformat(timespec="seconds"),
                   "sklearn": sklearn.__version__, "machine": machine_facts()}
        warm_up()
        for name in args.datasets:
            X_train, X_test, y_train, y_test = split(name, args.split_seed)
            for features in args.features:
                train, test = featurize(features, X_train, X_test)
                for seed in args.seeds:
                    for entry in args.entries:    # the entry points in turn: drifts hit all
                        log(f"vs_sklearn: {name} {features} seed {seed} {ENTRIES[entry]} ...")
                        result = fit(entry, train, y_train, test, y_test, seed, args)
                        log(f"  accuracy {result['accuracy']}, fit {result.get('fit_s')} s"
                            + (f", {result['error']}" if "error" in result else ""))
                        record = {"benchmark": "vs_sklearn", "dataset": name,
                                  "features": features, "entry": entry, "seed": seed,
                                  "split_seed": args.split_seed, **shape(y_train, test, y_test),
                                  **result, **context}
                        with open(args.results, "a") as out:
                            out.write(json.dumps(record) + "\n")


def shape(y_train, X_test, y_test):
    return {"n_train": len(y_train), "n_test": len(y_test), "n_features": X_test.shape[1],
            "n_classes": int(len(np.unique(y_train)))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vs_sklearn", description=__doc__)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--features", nargs="+", choices=FEATURES, default=list(FEATURES))
    parser.add_argument("--entries", nargs="+", choices=list(ENTRIES), default=list(ENTRIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS,
                        help="random_state / --seed of each fit (default 0 1 2)")
    parser.add_argument("--split-seed", type=int, default=0, help="of the 75/25 split (0)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    parser.add_argument("--mpiexec", help="for the 2-rank runs (default: beside python)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per command (600)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        run(args, shlex.join(["python", "-m", "benchmarks.vs_sklearn",
                              *(sys.argv[1:] if argv is None else argv)]))
    text = report(read_jsonl(args.results))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
