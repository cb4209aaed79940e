"""ghostmlp.train: the plateau rule, early stopping on crafted curves, convergence, plateaus,
restore_best, validation rows, divergence (one rank; tests/mpi/cases_train.py for more)."""
import math

import numpy as np
import pytest

import ghostmlp
from ghostmlp import Network
from ghostmlp.schedule import Plateau
from ghostmlp.train import Patience, Trainer, validation_rows


def build(seed=0, **options):
    net = Network(seed=seed, dtype="float64", **options)
    net.add_layer("input", 4).add_layer("hidden", 6).add_layer("output", 3)
    return net.initialize()


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


def test_patience_counts_as_scikit_learn():
    """min: an epoch counts as no improvement when loss > best - tol; the best still follows
    any lower loss. Worked by hand for tol 0.1, n_iter_no_change 2."""
    p = Patience(2, 0.1, "min")
    trace = []
    for loss in [1.0, 0.95, 0.8, 0.75, 0.72, 0.71]:
        p.update(loss)
        trace.append((p.count, p.best, p.exhausted))
    assert trace == [(0, 1.0, False), (1, 0.95, False), (0, 0.8, False), (1, 0.75, False),
                     (2, 0.72, False), (3, 0.71, True)]
    q = Patience(1, 0.05, "max")
    assert [q.update(s) or q.count for s in [0.5, 0.52, 0.6]] == [True, 1, True]
    assert q.count == 0 and q.best == 0.6


def scripted(values):
    """A score(net, X_val, Y_val) that returns the given values, epoch after epoch."""
    values = iter(values)
    return lambda net, X, Y: next(values)


def test_early_stopping_on_a_crafted_validation_curve_restores_the_best_epoch():
    X, y = data()
    net = build()
    weights = {}
    trainer = Trainer(net, batch_size=8)
    curve = [0.40, 0.55, 0.70, 0.71, 0.69, 0.72, 0.65, 0.9]   # tol 0.05: no gain after epoch 3
    history = trainer.run(X, y, max_epochs=8, validation=(X[:10], y[:10]),
                          patience=Patience(2, 0.05, "max"), restore_best=True,
                          score=scripted(curve),
                          on_epoch=lambda row: weights.setdefault(row["epoch"], net.get_weights()))
    assert history["stopped"] == "early_stopping"
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]     # epochs 4, 5, 6 gain < 0.05: count 3 > 2
    assert history["val_score"] == curve[:6] and history["best_epoch"] == 6
    for (w, b), (bw, bb) in zip(net.get_weights(), weights[6]):
        np.testing.assert_array_equal(w, bw)
        np.testing.assert_array_equal(b, bb)


def test_restore_best_goes_back_to_an_earlier_epoch():
    X, y = data()
    net = build()
    kept = {}
    history = Trainer(net, batch_size=8).run(
        X, y, max_epochs=4, validation=(X[:10], y[:10]), restore_best=True,
        score=scripted([0.3, 0.8, 0.5, 0.6]),
        on_epoch=lambda row: kept.setdefault(row["epoch"], net.get_weights()))
    assert history["stopped"] == "max_epochs" and history["best_epoch"] == 2
    np.testing.assert_array_equal(net.get_weights()[0][0], kept[2][0][0])
    assert not np.array_equal(kept[4][0][0], kept[2][0][0])


def test_a_training_loss_that_stops_improving_converges():
    """tol 10 is never met after the first epoch: the count exceeds 3 in epoch 5."""
    X, y = data()
    history = build().fit(X, y, max_epochs=50, batch_size=8, n_iter_no_change=3, tol=10.0)
    assert history["stopped"] == "converged" and len(history["loss"]) == 5


def test_a_plateau_lowers_the_rate_and_then_stops():
    """Every epoch after the first is a plateau (tol 10, n_iter_no_change 1): the count
    exceeds 1 in epochs 3, 5 and 7; the rate halves after 3 and 5; at min_lr after 7,
    training stops."""
    X, y = data()
    history = build(learning_rate=0.04).fit(
        X, y, max_epochs=50, batch_size=8, schedule=Plateau(0.04, factor=0.5, min_lr=0.01),
        n_iter_no_change=1, tol=10.0)
    assert history["learning_rate"] == [0.04, 0.04, 0.04, 0.02, 0.02, 0.01, 0.01]
    assert history["stopped"] == "converged"


def test_the_schedule_sets_each_epochs_rate():
    X, y = data()
    net = build(learning_rate=0.1)
    history = net.fit(X, y, max_epochs=4, batch_size=8, schedule="step", n_iter_no_change=None)
    assert history["learning_rate"] == pytest.approx([0.1, 0.1, 0.02, 0.004])


def test_validation_rows_depend_on_the_seed_only_and_are_stratified():
    y = np.repeat([0, 1, 2], [20, 10, 30])
    train, held = validation_rows(y, 0.1, seed=3)
    assert np.bincount(y[held]).tolist() == [2, 1, 3]
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(60))
    again = validation_rows(y, 0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, held)))
    assert not np.array_equal(validation_rows(y, 0.1, seed=4)[1], held)
    rows = validation_rows(np.zeros((50, 2)), 0.2, seed=0)[1]
    assert len(rows) == 10
    with pytest.raises(ValueError, match="leaves no validation or no training rows"):
        validation_rows(y, 0.001, seed=0)


def test_validation_fraction_holds_the_rows_out_of_training():
    X, y = data(60)
    net = build()
    history = net.fit(X, y, max_epochs=2, batch_size=8, validation_fraction=0.25)
    train, held = validation_rows(y, 0.25, net.seed)
    twin = build()
    expected = twin.fit(X[train], y[train], max_epochs=2, batch_size=8,
                        validation=(X[held], y[held]))
    assert history["loss"] == expected["loss"] and history["val_loss"] == expected["val_loss"]


def test_divergence_names_the_epoch_step_and_rate():
    X, y = data()
    X[:, 0] *= 1e3
    net = build(learning_rate=1e6)
    with pytest.raises(ghostmlp.TrainingDiverged) as caught:
        net.fit(X, y, max_epochs=5, batch_size=8)
    error = caught.value
    assert isinstance(error, FloatingPointError)
    assert error.learning_rate == 1e6 and error.epoch is not None and error.step >= 1
    assert (f"training diverged in epoch {error.epoch + 1}, step {error.step} "
            "(learning rate 1e+06)") in str(error)


def poison_first_weight(net):
    """W[0, 0] of the first layer := inf, in the network's own parameters (set_weights refuses it)."""
    net.parameters.segment("weights")[0] = math.inf
    assert np.isinf(net.get_weights()[0][0]).sum() == 1


def test_a_non_finite_weight_is_caught_by_the_loss_or_after_the_epoch():
    X, y = data()
    net = build()
    poison_first_weight(net)            # a relu passes inf on: the outputs are NaN at once
    with pytest.raises(ghostmlp.TrainingDiverged, match="step 1 .*the loss is nan"):
        net.fit(np.abs(X), y, max_epochs=1, batch_size=40)
    sigmoid_net = Network(seed=0, dtype="float64", learning_rate=0.1)
    sigmoid_net.add_layer("input", 4).add_layer("hidden", 6, activation="sigmoid")
    sigmoid_net.add_layer("output", 3).initialize()
    poison_first_weight(sigmoid_net)    # a saturated sigmoid: every loss stays finite
    with pytest.raises(ghostmlp.TrainingDiverged, match="a weight is not finite"):
        sigmoid_net.fit(np.abs(X), y, max_epochs=1, batch_size=40)


def test_sample_weights_weigh_every_step_and_integer_weights_repeat_samples():
    """Whole-batch steps (no shuffling): weights 2 on a sample = that sample twice."""
    X, y = data(12)
    w = np.array([2.0, 1.0, 0.0] * 4)
    weighted, repeated = build(), build()
    a = weighted.fit(X, y, max_epochs=3, batch_size=12, shuffle=False, sample_weight=w)
    rows = np.repeat(np.arange(12), w.astype(int))
    b = repeated.fit(X[rows], y[rows], max_epochs=3, batch_size=len(rows), shuffle=False)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-12)
    for (wa, ba), (wb, bb) in zip(weighted.get_weights(), repeated.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="sample_weight must be numbers \\[12\\]"):
        build().fit(X, y, max_epochs=1, sample_weight=w[:5])
