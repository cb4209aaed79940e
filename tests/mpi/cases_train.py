"""The trainer under mpiexec: schedules, validation rows, early stopping, restore_best and
divergence equal serial training on every grid and model-parallel layout of this job."""
import numpy as np
import pytest
from mpi4py import MPI

import ghostmlp
from ghostmlp import Network
from ghostmlp.optim import SGD, Adam

comm = MPI.COMM_WORLD
P = comm.Get_size()
SIZES = [7, 13, 11, 5]
LAYOUTS = ([{"grid": (d, P // d)} for d in range(1, P + 1) if P % d == 0]
           + [{"master": True}] * (P > 1))


def everywhere(ok, what):
    flags = comm.allgather(bool(ok))
    assert all(flags), f"{what}: failed on ranks {[r for r, f in enumerate(flags) if not f]}"


def build(optimizer, loss="cross_entropy", output="softmax", **options):
    net = Network(seed=3, dtype="float64", optimizer=optimizer, loss=loss, **options)
    net.add_layer("input", SIZES[0])
    for size in SIZES[1:-1]:
        net.add_layer("hidden", size, activation="tanh")
    net.add_layer("output", SIZES[-1], activation=output)
    return net.initialize()


def data(n=47, seed=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], n)


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_a_run_with_every_policy_equals_serial(layout):
    """Cosine schedule with warm-up, 20 % validation rows, early stopping (tol 0.02 makes it
    stop) and restore_best: the same history, stop and weights on every layout."""
    X, y = data()
    options = dict(max_epochs=30, batch_size=6, schedule="cosine", validation_fraction=0.2,
                   n_iter_no_change=2, tol=0.02, restore_best=True)
    serial = build(Adam(0.02)).fit(X, y, **options)
    net = build(Adam(0.02), comm=comm, **layout)
    spread = net.fit(X, y, **options)
    everywhere(serial["stopped"] == spread["stopped"] == "early_stopping", spread["stopped"])
    everywhere(serial["epoch"] == spread["epoch"] and serial["best_epoch"] == spread["best_epoch"],
               "epochs")
    for key in ("loss", "val_loss", "learning_rate"):
        everywhere(np.allclose(serial[key], spread[key], rtol=1e-10), key)
    twin = build(Adam(0.02))
    twin.fit(X, y, **options)
    for (w, b), (tw, tb) in zip(net.get_weights(), twin.get_weights()):
        everywhere(np.allclose(w, tw, rtol=1e-10, atol=1e-12) and np.allclose(b, tb, atol=1e-12),
                   "restored weights")


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_divergence_is_raised_on_every_rank_at_the_same_step(layout):
    """Squared loss, identity outputs, SGD at 1e6: the loss overflows in the second epoch, long
    before rounding differences between layouts (1e-16 relative) could change the step."""
    X, y = data()
    net = build(SGD(1e6), "mse", "identity", comm=comm, **layout)
    try:
        net.fit(X, y, max_epochs=6, batch_size=6)
        where = None
    except ghostmlp.TrainingDiverged as error:
        where = (error.epoch, error.step, error.learning_rate)
    everywhere(where is not None, "TrainingDiverged raised")
    everywhere(len(set(comm.allgather(where))) == 1, f"the same epoch, step and rate {where}")
    serial = build(SGD(1e6), "mse", "identity")
    with pytest.raises(ghostmlp.TrainingDiverged) as caught:
        serial.fit(X, y, max_epochs=6, batch_size=6)
    everywhere(caught.value.epoch == where[0], "the serial run's epoch")
