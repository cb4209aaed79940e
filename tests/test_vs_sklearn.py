"""benchmarks/vs_sklearn*.py: one tiny run of every entry point, its records and report; the data sets."""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from test_mpi import mpiexec

# After site-packages: the repo root's ghostmlp/ source folder must not shadow the installed one.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import vs_sklearn, vs_sklearn_data, vs_sklearn_report  # noqa: E402

FIELDS = {"benchmark", "dataset", "features", "entry", "seed", "split_seed", "n_train", "n_test",
          "n_features", "n_classes", "accuracy", "fit_s", "n_iter", "command", "started",
          "sklearn", "machine"}


def test_tiny_run_records_and_report(tmp_path):
    results, markdown = tmp_path / "vs.jsonl", tmp_path / "vs.md"
    launcher = mpiexec()
    assert launcher, "mpiexec not found: install the 'mpich' extra or a system MPI"
    vs_sklearn.main(["--datasets", "iris", "--features", "raw", "--seeds", "0", "--results",
                     str(results), "--markdown", str(markdown), "--mpiexec", launcher,
                     "--timeout", "120"])
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["entry"] for r in records] == list(vs_sklearn_report.ENTRIES)
    for record in records:
        assert FIELDS <= set(record), FIELDS - set(record)
        assert "error" not in record, record["error"]
        assert (record["dataset"], record["features"], record["seed"]) == ("iris", "raw", 0)
        assert (record["n_train"], record["n_test"], record["n_features"], record["n_classes"]) \
            == (112, 38, 4, 3)
        assert 0 <= record["accuracy"] <= 1 and record["n_iter"] >= 1
        assert record["machine"]["cpu"] and record["machine"]["blas"]
    for record in records[2:]:
        assert record["entry_command"].startswith("mpiexec -n 2 " if record["entry"] == "cli2"
                                                  else "ghostmlp train --inputs train.npz")
        assert record["command_s"] > 0 and record["non_finite_loss"] is False

    # The anchor's accuracy is MLPClassifier()'s on an independently made stratified split.
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anchor = MLPClassifier(random_state=0).fit(X_train, y_train)
    assert records[0]["accuracy"] == np.mean(anchor.predict(X_test) == y_test)
    assert records[0]["n_iter"] == anchor.n_iter_

    text = markdown.read_text()
    for name in vs_sklearn_report.ENTRIES.values():
        assert f"| iris | raw | {name} |" in text
    assert "- Accuracy within 1 point of MLPClassifier's: met on" in text
    assert "- Fit time ≤ 1/3 of MLPClassifier's, one process: met on" in text


def test_standard_features_are_fitted_on_the_training_rows():
    X_train, X_test, _, _ = vs_sklearn_data.split("wine", 0)
    train, test = vs_sklearn_data.featurize("standard", X_train, X_test)
    mean, sd = X_train.mean(axis=0), X_train.std(axis=0)
    np.testing.assert_allclose(train, (X_train - mean) / sd, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(test, (X_test - mean) / sd, rtol=1e-12, atol=1e-12)
    raw_train, raw_test = vs_sklearn_data.featurize("raw", X_train, X_test)
    assert raw_train is X_train and raw_test is X_test


def test_digits28_is_the_8x8_digits_upscaled_to_raw_0_255():
    X, y = vs_sklearn_data.digits28()
    X8, y8 = load_digits(return_X_y=True)
    assert X.shape == (1797, 784) and np.array_equal(y, y8)
    assert X.min() == 0 and X.max() == 255 and np.array_equal(X, np.rint(X))
    # Source pixel k covers output pixels [3.5 k, 3.5 k + 3.5): int(3.5 k + 1.75) lies inside.
    inside = (3.5 * np.arange(8) + 1.75).astype(int)
    centres = X.reshape(-1, 28, 28)[:, inside][:, :, inside].reshape(-1, 64)
    np.testing.assert_array_equal(centres, np.rint(X8 * 255 / 16))


def test_verdicts_follow_the_targets():
    anchor = {"accuracy": (90.0, 0.0), "fit_s": (4.0, 0.0), "failed": [], "seeds": 1}
    row = dict(anchor, accuracy=(89.5, 0.0), fit_s=(1.0, 0.0))
    assert vs_sklearn_report.verdicts(row, anchor) == (-0.5, 0.25, "met", "met")
    slow = dict(anchor, fit_s=(2.0, 0.0))
    assert vs_sklearn_report.verdicts(slow, anchor)[2:] == ("met", "missed")
    fast_but_wrong = dict(anchor, accuracy=(88.5, 0.0), fit_s=(1.0, 0.0))
    assert vs_sklearn_report.verdicts(fast_but_wrong, anchor)[2:] == (
        "missed", "missed (at a lower accuracy)")
    failed = dict(anchor, failed=["TrainingDiverged: ..."], accuracy=None)
    assert vs_sklearn_report.verdicts(failed, anchor)[2] == "missed (1 of 1 fits failed)"
