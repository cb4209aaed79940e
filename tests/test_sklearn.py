"""The scikit-learn estimators: the estimator-check suite, and the same numbers as MLPClassifier
and MLPRegressor wherever the math is the same.

The suite runs on a float64 classifier and regressor, a classifier on the model-parallel
code path (connectivity="ghost", blocks=1, on one rank), a float32 regressor and an
L-BFGS regressor.
Expected failures, declared through parametrize_with_checks(expected_failed_checks=...):

- every estimator that trains in float32 (dtype="float32", or "auto" with sgd and adam),
  check_methods_subset_invariance and
  check_methods_sample_order_invariance: a sample's float32 output can change in its
  last bit with the size of the batch it is computed in and its place there (BLAS
  takes other kernels at tile edges and for single samples); these checks compare at
  rtol=1e-7, below float32's resolution (1.2e-7). Either may pass (an XPASS).
- the stochastic solvers, check_sample_weight_equivalence_on_dense_data and _on_sparse_data:
  with minibatches a weight of k is not k copies of the sample, which fall into other
  minibatches (scikit-learn's own MLPs run these checks with solver='lbfgs' only, or sgd
  with tol=1e-2); the L-BFGS regressor passes them, and
  test_sample_weights_equal_repeated_samples checks whole-batch steps.

The estimators under MPI are tests/mpi/cases_estimators.py (run by tests/test_mpi.py).
"""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse

pytest.importorskip("sklearn")

from sklearn.base import clone                                    # noqa: E402
from sklearn.datasets import load_digits, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning                  # noqa: E402
from sklearn.model_selection import train_test_split               # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor     # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from ghostmlp.estimators.initial import glorot_uniform             # noqa: E402
from ghostmlp.estimators.parameters import network_dtype           # noqa: E402
from ghostmlp.sklearn import GhostMLPClassifier, GhostMLPRegressor  # noqa: E402

FLOAT32_BATCH_REASON = (
    "float32 outputs can change in the last bit with the batch a sample is computed in "
    "(BLAS kernels differ at tile edges and for one sample); the check's rtol=1e-7 is "
    "below float32 resolution")
MINIBATCH_WEIGHT_REASON = (
    "with minibatches, weight k is not k copies: the copies fall into other minibatches "
    "(scikit-learn runs these checks on its MLPs with solver='lbfgs' or a loose tol only)")
SMALL = dict(hidden_layer_sizes=(16,), max_iter=200)


def expected_failed_checks(estimator):
    failures = {}
    if estimator.solver != "lbfgs":
        failures = dict.fromkeys(("check_sample_weight_equivalence_on_dense_data",
                                  "check_sample_weight_equivalence_on_sparse_data"),
                                 MINIBATCH_WEIGHT_REASON)
    if network_dtype(estimator.dtype, np.empty(0), estimator.solver) == np.float32:
        failures.update(check_methods_subset_invariance=FLOAT32_BATCH_REASON,
                        check_methods_sample_order_invariance=FLOAT32_BATCH_REASON)
    return failures


@parametrize_with_checks(
    [GhostMLPClassifier(**SMALL),
     GhostMLPRegressor(**SMALL),
     GhostMLPClassifier(hidden_layer_sizes=(16, 8), max_iter=200, connectivity="ghost",
                        blocks=1),
     GhostMLPRegressor(**SMALL, dtype="float32"),
     GhostMLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs")],
    expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16, y[:400]


def fit_both(ours, theirs, X, y, **params):
    """Ours in scikit-learn's precision (dtype=None: float64 for float64 X), and theirs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours(dtype=None, **params).fit(X, y), theirs(**params).fit(X, y)


def assert_same_weights(a, b, rtol=1e-10, atol=1e-12):
    assert len(a.coefs_) == len(b.coefs_)
    for mine, theirs in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol)


# -------------------------------------------------- the same numbers as scikit-learn

@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_initial_weights_are_scikit_learns_draws(activation):
    units = [5, 7, 3]
    ours = glorot_uniform(units, activation, np.random.RandomState(3), np.float64)
    rng = np.random.RandomState(3)
    for (w, b), (fan_in, fan_out) in zip(ours, zip(units[:-1], units[1:])):
        bound = np.sqrt((2.0 if activation == "logistic" else 6.0) / (fan_in + fan_out))
        np.testing.assert_array_equal(w, rng.uniform(-bound, bound, (fan_in, fan_out)))
        np.testing.assert_array_equal(b, rng.uniform(-bound, bound, fan_out))


@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression"])
def test_one_full_batch_sgd_epoch_equals_scikit_learn(digits, target):
    X, y = digits
    Estimators = (GhostMLPClassifier, MLPClassifier)
    if target == "binary":
        y = y % 2
    elif target == "multilabel":
        y = np.stack([y % 2, y > 4, y % 3 == 0], axis=1).astype(int)
    elif target == "regression":
        y, Estimators = y / 10.0, (GhostMLPRegressor, MLPRegressor)
    ours, theirs = fit_both(*Estimators, X, y, solver="sgd", momentum=0.0, shuffle=False,
                            batch_size=len(X), random_state=0, max_iter=1, alpha=1e-2,
                            learning_rate_init=0.1, hidden_layer_sizes=(12,),
                            activation="tanh")
    assert_same_weights(ours, theirs)
    assert ours.out_activation_ == theirs.out_activation_
    assert (ours.n_layers_, ours.n_outputs_, ours.n_iter_, ours.t_) == (
        theirs.n_layers_, theirs.n_outputs_, theirs.n_iter_, theirs.t_)
    # the L2 term of loss_ is taken after the epoch's step, scikit-learn's before it
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-3)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_minibatch_epochs_equal_scikit_learn(digits, momentum, nesterov):
    X, y = digits        # 400 samples: batches of 50 divide them (no smaller last batch)
    ours, theirs = fit_both(GhostMLPClassifier, MLPClassifier, X, y, solver="sgd",
                            momentum=momentum, nesterovs_momentum=nesterov, shuffle=False,
                            batch_size=50, random_state=1, max_iter=5,
                            learning_rate_init=0.05, hidden_layer_sizes=(20, 10))
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_lbfgs_equals_scikit_learn(digits):
    X, y = digits
    ours, theirs = fit_both(GhostMLPClassifier, MLPClassifier, X, y, solver="lbfgs",
                            random_state=0, max_iter=25, hidden_layer_sizes=(15,),
                            activation="logistic", alpha=1e-3)
    assert ours.n_iter_ == theirs.n_iter_ == 25
    assert_same_weights(ours, theirs, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-9)


def test_lbfgs_multi_target_regression_reports_scikit_learns_loss(digits):
    X, y = digits
    Y = np.stack([y / 10, (y % 3) / 3], axis=1)
    ours, theirs = fit_both(GhostMLPRegressor, MLPRegressor, X, Y, solver="lbfgs",
                            random_state=0, max_iter=1, hidden_layer_sizes=(10,))
    # one iteration from the same start: the same first line search (scikit-learn's
    # value is the error averaged over the targets, its gradient that of their sum)
    assert ours.n_iter_ == theirs.n_iter_ == 1
    assert ours.loss_ > 0 and np.isfinite(ours.loss_)


def test_early_stopping_holds_out_scikit_learns_samples_and_keeps_the_best_epoch(digits):
    X, y = digits
    ours, theirs = fit_both(GhostMLPClassifier, MLPClassifier, X, y % 2, solver="sgd",
                            momentum=0.0, shuffle=False, batch_size=40, random_state=2,
                            max_iter=15, early_stopping=True, validation_fraction=0.2,
                            learning_rate_init=0.05, hidden_layer_sizes=(10,))
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert ours.best_loss_ is None and ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-11)


def test_sparse_inputs_equal_dense(digits):
    X, y = digits
    params = dict(solver="sgd", random_state=0, max_iter=3, hidden_layer_sizes=(8,))
    dense = GhostMLPClassifier(**params).fit(X, y)
    for sparse in (scipy.sparse.csr_matrix(X), scipy.sparse.csc_array(X)):
        fitted = GhostMLPClassifier(**params).fit(sparse, y)
        assert_same_weights(fitted, dense, rtol=0, atol=0)
        np.testing.assert_array_equal(fitted.predict_proba(sparse), dense.predict_proba(X))


# ------------------------------------------------------------------- behaviour

def test_defaults_learn_raw_digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    clf = GhostMLPClassifier(random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    assert clf.n_iter_ < 200 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert [w.shape for w in clf.coefs_] == [(64, 100), (100, 10)]


def test_float32_data_trains_in_float32(digits):
    X, y = digits
    clf = GhostMLPClassifier(**SMALL, random_state=0).fit(X.astype(np.float32), y)
    assert all(w.dtype == np.float32 for w in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float64      # outputs in X's dtype
    assert GhostMLPClassifier(**SMALL, dtype="float64").fit(
        X.astype(np.float32), y).coefs_[0].dtype == np.float64


def test_multilabel_outputs_are_independent_logistics():
    X, Y = make_multilabel_classification(n_samples=80, random_state=0)
    clf = GhostMLPClassifier(solver="lbfgs", hidden_layer_sizes=(20,), random_state=0,
                             max_iter=300).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == Y.shape[1]
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9


def test_replaced_coefs_are_seen_by_predict(digits):
    X, y = digits
    clf = GhostMLPClassifier(**SMALL, random_state=0).fit(X, y)
    clf.coefs_ = [np.zeros_like(w) for w in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    np.testing.assert_allclose(clf.predict_proba(X[:3]), 0.1)


def test_adaptive_rate_falls_below_a_millionth_and_stops():
    clf = GhostMLPClassifier(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive")
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.n_iter_ < clf.max_iter
    assert clf._trainer.rate() < 1e-6


def test_invscaling_follows_the_samples_seen():
    X, y = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    clf = GhostMLPClassifier(solver="sgd", hidden_layer_sizes=4, learning_rate="invscaling",
                             power_t=0.25, max_iter=2)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.t_ == 8
    assert clf._trainer.rate() == pytest.approx(clf.learning_rate_init / 9 ** 0.25)


@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes"),
    (dict(activation="softmax"), "activation"),
    (dict(solver="rprop"), "solver"),
    (dict(learning_rate="cyclic"), "learning_rate"),
    (dict(alpha=-1.0), "alpha"),
    (dict(batch_size=0), "batch_size"),
    (dict(max_iter=0), "max_iter"),
    (dict(momentum=1.5), "momentum"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(beta_1=1.0), "beta_1"),
    (dict(n_iter_no_change=0), "n_iter_no_change"),
    (dict(dtype="float16"), "dtype"),
    (dict(connectivity="sparse"), "connectivity"),
])
def test_invalid_parameters_raise_at_fit(params, match):
    clf = GhostMLPClassifier(**params)        # __init__ only stores them
    with pytest.raises(ValueError, match=match):
        clf.fit(np.eye(4), [0, 1, 0, 1])


@pytest.mark.parametrize("options", [{}, dict(connectivity="ghost", blocks=1)])
def test_pickle_keeps_the_weights(digits, options):
    X, y = digits
    clf = GhostMLPClassifier(**SMALL, random_state=0, **options).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert_same_weights(restored, clf, rtol=0, atol=0)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    restored.partial_fit(X, y)                 # trains on from the weights
    assert restored.t_ == clf.t_ + len(X)


def test_communicators_are_shared_by_clone_and_dropped_by_pickle(digits):
    from mpi4py import MPI
    X, y = digits
    comm = MPI.COMM_SELF.Dup()      # neither predefined nor copyable
    try:
        clf = GhostMLPClassifier(**SMALL, comm=comm, random_state=0)
        copy = clone(clf)
        assert copy.comm is comm and copy.get_params() == clf.get_params()
        copy.fit(X, y)
        serial = GhostMLPClassifier(**SMALL, random_state=0).fit(X, y)
        assert_same_weights(copy, serial)
        restored = pickle.loads(pickle.dumps(copy))
        assert restored.comm is None
        np.testing.assert_allclose(restored.predict_proba(X), copy.predict_proba(X))
        world = GhostMLPClassifier(comm=MPI.COMM_WORLD)
        assert pickle.loads(pickle.dumps(world)).comm == MPI.COMM_WORLD
        assert clone(world).comm is MPI.COMM_WORLD
    finally:
        comm.Free()


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_objective_gradient_is_central_differences(activation, weighted):
    from ghostmlp.estimators.lbfgs import Objective
    rng = np.random.RandomState(42)
    X, y = rng.rand(5, 10), np.arange(5) % 3
    clf = GhostMLPClassifier(solver="lbfgs", activation=activation, hidden_layer_sizes=4,
                             alpha=1e-2, max_iter=1, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    objective = Objective(clf._current_network(), X, y.astype(np.int64), clf.alpha,
                          rng.rand(5) if weighted else None)
    theta = objective.pack(list(zip(clf.coefs_, clf.intercepts_)))
    _, grad = objective(theta)
    step, numeric = 1e-6, np.empty_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = step
        numeric[i] = (objective(theta + e)[0] - objective(theta - e)[0]) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_lbfgs_sample_weights_equal_repeated_samples(digits):
    X, y = digits[0][:60], digits[1][:60]
    counts = np.arange(60) % 3
    params = dict(solver="lbfgs", random_state=0, max_iter=15, hidden_layer_sizes=(8,))
    weighted, repeated = fit_both(GhostMLPClassifier, GhostMLPClassifier, X, y, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted.fit(X, y, sample_weight=counts)
        repeated.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    assert_same_weights(weighted, repeated, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sample_weights_equal_repeated_samples(digits, solver):
    """Whole-batch steps without shuffling (and no L2, which scales with the batch): a weight
    of k on a sample trains as k copies of it; each epoch's loss is the weighted mean."""
    X, y = digits[0][:60], digits[1][:60]
    counts = np.arange(60) % 3
    params = dict(solver=solver, random_state=0, max_iter=4, hidden_layer_sizes=(8,),
                  shuffle=False, alpha=0.0, batch_size=int(counts.sum()), dtype="float64")
    weighted, repeated = GhostMLPClassifier(**params), GhostMLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted.fit(X, y, sample_weight=counts)
        repeated.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    assert_same_weights(weighted, repeated, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-12)


def test_dtype_auto_is_float32_for_minibatches_and_xs_rule_for_lbfgs(digits):
    X, y = digits[0][:80], digits[1][:80]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver, want in (("adam", np.float32), ("sgd", np.float32), ("lbfgs", np.float64)):
            clf = GhostMLPClassifier(solver=solver, hidden_layer_sizes=(8,), max_iter=3).fit(X, y)
            assert clf.coefs_[0].dtype == want and clf.predict_proba(X).dtype == np.float64
        assert GhostMLPClassifier(solver="lbfgs", max_iter=3).fit(
            X.astype(np.float32), y).coefs_[0].dtype == np.float32
