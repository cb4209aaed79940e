"""The scikit-learn estimators on grids, run on every rank under mpiexec by tests/test_mpi.py: equal to serial."""
import warnings

import numpy as np
import pytest
from mpi4py import MPI
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from ghostmlp.sklearn import GhostMLPClassifier, GhostMLPRegressor

comm = MPI.COMM_WORLD
P = comm.Get_size()
GRIDS = sorted({(P, 1), (1, P)})          # data parallel and model parallel at this size


def everywhere(ok, what):
    """Assert on every rank that `ok` held on every rank."""
    flags = comm.allgather(bool(ok))
    assert all(flags), f"{what}: failed on ranks {[r for r, f in enumerate(flags) if not f]}"


def data():
    X, y = load_digits(return_X_y=True)
    return X[:150] / 16, y[:150]


def fit(Estimator, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Estimator(hidden_layer_sizes=(13, 7), dtype="float64", **params).fit(X, y)


def same(a, b):
    return all(np.allclose(p, q, rtol=1e-9, atol=1e-11)
               for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("solver, params", [
    ("sgd", dict(batch_size=32, max_iter=4, momentum=0.9)),
    ("adam", dict(batch_size=40, max_iter=3, early_stopping=True, validation_fraction=0.2)),
    ("lbfgs", dict(max_iter=15)),
])
def test_classifier_on_a_grid_equals_serial(grid, solver, params):
    X, y = data()
    np.random.seed(0)
    serial = fit(GhostMLPClassifier, X, y, solver=solver, **params)
    # random_state=None: rank 0 draws from its global state, every rank trains alike
    np.random.seed(0 if comm.Get_rank() == 0 else 1 + comm.Get_rank())
    spread = fit(GhostMLPClassifier, X, y, solver=solver, comm=comm, grid=grid, **params)
    everywhere(same(serial, spread), "grid equals serial")
    everywhere(spread.n_iter_ == serial.n_iter_ and np.allclose(
        spread.loss_curve_ if solver != "lbfgs" else spread.loss_,
        serial.loss_curve_ if solver != "lbfgs" else serial.loss_, rtol=1e-9), "losses")
    proba = spread.predict_proba(X)
    everywhere(all(np.array_equal(p, proba) for p in comm.allgather(proba)),
               "the same outputs on every rank")


@pytest.mark.parametrize("grid", GRIDS)
def test_regressor_on_a_grid_equals_serial(grid):
    X, y = data()
    # P outputs (at least 2): one per model rank on grid (1, P)
    y = np.stack([(y % (k + 2)) / (k + 2) for k in range(max(P, 2))], axis=1)
    serial = fit(GhostMLPRegressor, X, y, solver="lbfgs", max_iter=10, random_state=3)
    spread = fit(GhostMLPRegressor, X, y, solver="lbfgs", max_iter=10, random_state=3,
                 comm=comm, grid=grid)
    everywhere(same(serial, spread), "regressor grid equals serial")
    everywhere(np.allclose(spread.loss_, serial.loss_, rtol=1e-10), "loss_")
