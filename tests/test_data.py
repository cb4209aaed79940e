import csv
import gzip
from importlib.resources import files

import numpy as np
import pytest

from ghostmlp.data import load_digits, one_hot, train_test_split


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


def test_load_digits_class_counts():
    _, y = load_digits()
    counts = np.bincount(y)
    assert counts.shape == (10,)
    assert [int((y == c).sum()) for c in range(10)] == counts.tolist()
    assert counts.sum() == 1797
    assert np.all((counts >= 170) & (counts <= 190))
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_load_digits_matches_csv_reader():
    path = files("ghostmlp") / "datasets" / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", newline="") as text:
        first = next(csv.reader(text))
    assert len(first) == 65
    X, y = load_digits(scale=False)
    assert y[0] == int(first[-1])
    np.testing.assert_array_equal(X[0], [int(v) for v in first[:64]])


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex128", None, "not-a-dtype"])
def test_load_digits_rejects_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        load_digits(dtype=dtype)


def test_split_sizes_disjoint_and_covering():
    X, y = load_digits()
    idx = np.arange(1797)
    i_train, i_test, y_train, y_test = train_test_split(idx, y)
    assert i_test.shape == (449,)
    assert i_train.shape == (1348,)
    assert np.intersect1d(i_train, i_test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([i_train, i_test])), idx)
    np.testing.assert_array_equal(y_train, y[i_train])
    np.testing.assert_array_equal(y_test, y[i_test])
    X_train, X_test, _, _ = train_test_split(X, y)
    np.testing.assert_array_equal(X_train, X[i_train])
    np.testing.assert_array_equal(X_test, X[i_test])


def test_split_reproducible_by_seed():
    idx = np.arange(1797)
    a = train_test_split(idx, idx, seed=3)
    b = train_test_split(idx, idx, seed=3)
    c = train_test_split(idx, idx, seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    expected = np.random.default_rng(3).permutation(1797)[:449]
    np.testing.assert_array_equal(a[1], expected)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(np.zeros((10, 2)), np.zeros(10), test_fraction=fraction)


def test_split_rejects_row_mismatch():
    with pytest.raises(ValueError, match="X and y"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


def test_one_hot_round_trip():
    _, y = load_digits()
    Y = one_hot(y)
    assert Y.shape == (1797, 10)
    assert Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), np.ones(1797))
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    Y32 = one_hot(y[:5], n_classes=12, dtype="float32")
    assert Y32.shape == (5, 12)
    assert Y32.dtype == np.float32
    np.testing.assert_array_equal(Y32.argmax(axis=1), y[:5])


def test_one_hot_values():
    np.testing.assert_array_equal(one_hot([2, 0, 1]), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(one_hot(np.array([1.0, 0.0])), [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    "labels, n_classes, name",
    [
        ([0, -1, 2], None, "y"),
        ([0.5, 1.0], None, "y"),
        ([0.0, np.nan], None, "y"),
        ([0.0, np.inf], None, "y"),
        ([True, False], None, "y"),
        (["a", "b"], None, "y"),
        ([0, 3], 3, "n_classes"),
    ],
)
def test_one_hot_rejects(labels, n_classes, name):
    with pytest.raises(ValueError, match=name):
        one_hot(labels, n_classes=n_classes)
