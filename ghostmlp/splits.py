"""Labelled samples made ready for training: seeded train/test and validation splits, one-hot targets."""
import numpy as np


def split_rows(n, fraction, seed, name="test_fraction"):
    """(training rows, held-out rows) of n samples: the held-out rows are the first
    round(n * fraction) of a permutation drawn from numpy.random.default_rng(seed), the
    training rows the rest, in that permutation's order; fraction 0 holds out none."""
    if fraction == 0:
        return np.arange(n), np.arange(0)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {fraction!r}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * fraction)
    return perm[n_test:], perm[:n_test]


def _split(X, y, fraction, seed, name):
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {fraction!r}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
        )
    train, test = split_rows(X.shape[0], fraction, seed, name)
    return X[train], X[test], y[train], y[test]


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """X [n, ...], y [n] -> (X_train, X_test, y_train, y_test).

    The first round(n * test_fraction) indices of a permutation drawn from
    numpy.random.default_rng(seed) form the test set, the rest the training set.
    """
    return _split(X, y, test_fraction, seed, "test_fraction")


def validation_split(X, y, fraction, seed=0):
    """X [n, ...], y [n] -> (X_train, X_val, y_train, y_val), drawn as train_test_split draws X_test."""
    return _split(X, y, fraction, seed, "fraction")


def one_hot(y, n_classes=None, dtype="float64"):
    """y [n] integer labels -> [n, n_classes] with a 1 at each label, 0 elsewhere.

    n_classes defaults to max(y) + 1.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y) & (y == np.round(y)))
    )
    if not integral:
        raise ValueError(f"y must hold integer labels, got {y.dtype} values")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"y must not hold negative labels, got {y.min()}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= n_classes:
        raise ValueError(f"n_classes={n_classes} must exceed every label, got label {y.max()}")
    out = np.zeros((y.shape[0], n_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out
