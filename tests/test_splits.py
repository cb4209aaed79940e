"""ghostmlp.splits: seeded train/test and validation splits, one-hot targets."""
import numpy as np
import pytest

from ghostmlp.datasets import load_digits
from ghostmlp.splits import one_hot, train_test_split, validation_split


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


def test_validation_split_is_train_test_split_with_its_own_name():
    X, y = np.arange(40).reshape(20, 2), np.arange(20)
    for got, want in zip(validation_split(X, y, 0.2, seed=9), train_test_split(X, y, 0.2, seed=9)):
        np.testing.assert_array_equal(got, want)
    assert validation_split(X, y, 0.2)[1].shape == (4, 2)
    with pytest.raises(ValueError, match="^fraction must lie in"):
        validation_split(X, y, 1.0)
