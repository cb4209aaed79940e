"""ghostmlp.datasets: the bundled digits and the seeded dummy data."""
import csv
import gzip
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest

from ghostmlp.datasets import load_digits, synthetic


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64])
def test_load_digits_shape_and_dtype(dtype):
    X, y = load_digits(dtype=dtype)
    assert X.shape == (1797, 64)
    assert X.dtype == np.dtype(dtype)
    assert X.flags.c_contiguous
    assert y.shape == (1797,)
    assert y.dtype == np.int64


def test_load_digits_value_range():
    X, _ = load_digits()
    assert X.min() == 0.0
    assert X.max() == 1.0
    raw, _ = load_digits(scale=False)
    assert raw.min() == 0.0
    assert raw.max() == 16.0
    np.testing.assert_array_equal(raw, np.round(raw))
    np.testing.assert_allclose(X * 16.0, raw)


def digits_csv():
    """The bundled file read with gzip and csv alone: pixel counts [n, 64] and labels [n], int."""
    path = files("ghostmlp.datasets") / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", newline="") as text:
        rows = [[int(v) for v in row] for row in csv.reader(text)]
    assert {len(row) for row in rows} == {65}
    table = np.array(rows)
    return table[:, :64], table[:, 64]


def test_load_digits_class_counts():
    _, y = load_digits()
    _, labels = digits_csv()
    counts = Counter(labels.tolist())
    assert sorted(counts) == list(range(10))                  # every digit, nothing else
    assert np.bincount(y, minlength=10).tolist() == [counts[c] for c in range(10)]
    assert all(170 <= n <= 190 for n in counts.values())    # the UCI test set is balanced
    np.testing.assert_array_equal(y, labels)                  # and in the file's order


def test_load_digits_matches_csv_reader():
    pixels, labels = digits_csv()
    X, y = load_digits(scale=False)
    np.testing.assert_array_equal(X, pixels)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(load_digits()[0], pixels / 16.0)


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex128", None, "not-a-dtype"])
def test_load_digits_rejects_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        load_digits(dtype=dtype)


def test_synthetic_is_seeded_and_leaves_global_state_alone():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    X, y = synthetic(100, 7, 3, seed=5)
    assert np.array_equal(np.random.get_state()[1], state)
    assert X.shape == (100, 7) and X.dtype == np.float64 and y.shape == (100,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() < 1.0
    assert set(np.unique(y)) == {0, 1, 2}
    X2, y2 = synthetic(100, 7, 3, seed=5)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(X, rng.random((100, 7)))
    np.testing.assert_array_equal(y, rng.integers(0, 3, 100))
    assert not np.array_equal(X, synthetic(100, 7, 3, seed=6)[0])
    X32, _ = synthetic(10, 4, 2, dtype="float32")
    assert X32.dtype == np.float32 and X32.max() < 1.0


@pytest.mark.parametrize("args", [(0, 3, 2), (5, -1, 2), (5, 3, 0), (5.0, 3, 2), (True, 3, 2)])
def test_synthetic_rejects_sizes(args):
    with pytest.raises(ValueError, match="must be a positive integer"):
        synthetic(*args)
