"""The data sets that come with ghostmlp: the bundled 8x8 digits and the paper's seeded dummy data."""
import gzip
from importlib.resources import files

import numpy as np

from ghostmlp.validate import check_count, float_dtype


def load_digits(dtype="float64", scale=True):
    """X [1797, 64], y [1797] int64: 8x8 digit images (row-major) and labels 0..9.

    Pixels are counts 0..16; with scale=True they are divided by 16 into [0, 1].
    Source: test set of UCI "Optical Recognition of Handwritten Digits"
    (Alpaydin & Kaynak, DOI 10.24432/C50P49), CC BY 4.0, bundled from
    scikit-learn; see ghostmlp/datasets/DIGITS_LICENSE.txt.
    """
    dt = float_dtype(dtype)
    path = files(__name__) / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.float64)
    X = data[:, :64]
    if scale:
        X = X / 16.0
    return np.ascontiguousarray(X, dtype=dt), data[:, 64].astype(np.int64)


def synthetic(n_samples, n_inputs, n_classes, seed=0, dtype="float64"):
    """X[n_samples, n_inputs] uniform on [0, 1), y[n_samples] int64 uniform on 0..n_classes-1.

    Dummy data as in the paper's benchmarks, drawn (X, then y) from
    numpy.random.default_rng(seed) alone: the global random state is neither used nor changed.
    """
    dt = float_dtype(dtype)
    shape = (check_count("n_samples", n_samples), check_count("n_inputs", n_inputs))
    n_classes = check_count("n_classes", n_classes)
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=dt), rng.integers(0, n_classes, shape[0], dtype=np.int64)
