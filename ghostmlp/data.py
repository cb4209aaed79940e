"""Bundled 8x8 handwritten digits data set, train/test split and one-hot encoding."""

import gzip
from importlib.resources import files

import numpy as np


def _float_dtype(dtype):
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def load_digits(dtype="float64", scale=True):
    """X [1797, 64], y [1797] int64: 8x8 digit images (row-major) and labels 0..9.

    Pixels are counts 0..16; with scale=True they are divided by 16 into [0, 1].
    Source: test set of UCI "Optical Recognition of Handwritten Digits"
    (Alpaydin & Kaynak, DOI 10.24432/C50P49), CC BY 4.0, bundled from
    scikit-learn; see ghostmlp/datasets/DIGITS_LICENSE.txt.
    """
    dt = _float_dtype(dtype)
    path = files("ghostmlp") / "datasets" / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.float64)
    X = data[:, :64]
    if scale:
        X = X / 16.0
    return np.ascontiguousarray(X, dtype=dt), data[:, 64].astype(np.int64)


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """X [n, ...], y [n] -> (X_train, X_test, y_train, y_test).

    The first round(n * test_fraction) indices of a permutation drawn from
    numpy.random.default_rng(seed) form the test set, the rest the training set.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
        )
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


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
