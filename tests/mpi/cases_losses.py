"""Losses, identity hidden layers and sample weights on every grid of this job: each equals serial."""
import numpy as np
import pytest
from mpi4py import MPI

from ghostmlp import Network
from ghostmlp.optim import SGD, Adam
from verdicts import close, everywhere, same_weights

comm = MPI.COMM_WORLD
P = comm.Get_size()
SIZES = [7, 13, 11, 5]              # no layer divides evenly by 2, 3 or 4
GHOST_SIZES = [6, 25, 29, 13]       # every layer holds 12 blocks
GRIDS = [(d, P // d) for d in range(1, P + 1) if P % d == 0]
OUTPUT_LOSSES = [("exp", "poisson"), ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"),
                 ("identity", "mse")]
grids = pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
output_losses = pytest.mark.parametrize("output,loss", OUTPUT_LOSSES,
                                        ids=[f"{o}-{l}" for o, l in OUTPUT_LOSSES])


def build(sizes=SIZES, hidden="tanh", output="softmax", loss="cross_entropy", optimizer=None,
          **options):
    net = Network(seed=5, dtype="float64", loss=loss, optimizer=optimizer or SGD(0.1), **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, activation=hidden)
    net.add_layer("output", sizes[-1], activation=output)
    return net.initialize()


def data(sizes, output, batch=9, seed=0):
    """X, targets that suit the output, and weights with zeros among them (the same on every rank)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, sizes[0]))
    if output == "softmax":
        Y = rng.integers(0, sizes[-1], batch)
    elif output == "exp":
        Y = rng.poisson(1.5, (batch, sizes[-1])).astype(float)
    elif output == "sigmoid":
        Y = rng.uniform(0.05, 0.95, (batch, sizes[-1]))
    else:
        Y = rng.normal(size=(batch, sizes[-1]))
    w = rng.uniform(0.0, 3.0, batch)
    w[1::4] = 0.0
    return X, Y, w


def same_on_every_rank(value):
    return len(set(comm.allgather(value))) == 1


@grids
@pytest.mark.parametrize("hidden", ["identity", "tanh"])
@output_losses
def test_weighted_steps_equal_serial(grid, hidden, output, loss):
    X, Y, w = data(SIZES, output)
    serial = build(hidden=hidden, output=output, loss=loss)
    spread = build(hidden=hidden, output=output, loss=loss, comm=comm, grid=grid)
    for weights in (w, None, w):
        got = spread.train_step(X, Y, sample_weight=weights)
        everywhere(close(serial.train_step(X, Y, sample_weight=weights), got)
                   and same_on_every_rank(got), f"{grid}: loss")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), f"{grid}: weights")


@grids
@output_losses
def test_weighted_loss_and_gradients_equal_serial(grid, output, loss):
    X, Y, w = data(SIZES, output, batch=11, seed=1)
    serial = build(hidden="identity", output=output, loss=loss)
    spread = build(hidden="identity", output=output, loss=loss, comm=comm, grid=grid)
    for weights in (w, None):
        value, grads = serial.loss_and_gradients(X, Y, weights)
        got, got_grads = spread.loss_and_gradients(X, Y, weights)
        everywhere(isinstance(got, float) and close(value, got) and same_on_every_rank(got),
                   f"{grid}: loss {got} against {value}")
        everywhere(same_weights(grads, got_grads), f"{grid}: gradients")
    everywhere(close(serial.evaluate(X, Y, w)["loss"], spread.evaluate(X, Y, w)["loss"]),
               f"{grid}: evaluate")


@grids
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.2, momentum=0.9), lambda: Adam(0.01)],
                         ids=["momentum", "adam"])
@pytest.mark.parametrize("batch", [9, 2], ids=["B9", "B2"])   # B2: some replicas get no sample
def test_weighted_optimizers_and_empty_shares_equal_serial(grid, optimizer, batch):
    X, Y, w = data(SIZES, "softmax", batch, seed=2)
    w[:batch // 2], w[-1] = 0.0, 1.5   # the first replicas' shares weigh nothing
    serial = build(optimizer=optimizer())
    spread = build(optimizer=optimizer(), comm=comm, grid=grid)
    for _ in range(3):
        everywhere(close(serial.train_step(X, Y, sample_weight=w),
                         spread.train_step(X, Y, sample_weight=w)), f"{grid}: loss")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), f"{grid}: weights")


@grids
def test_weighted_listing1_equals_serial(grid):
    X, Y, w = data(SIZES, "exp", seed=3)
    serial = build(hidden="identity", output="exp", loss="poisson")
    spread = build(hidden="identity", output="exp", loss="poisson", comm=comm, grid=grid)
    for net in (serial, spread):
        net.forward(X)
    everywhere(close(serial.compute_loss(Y, w), spread.compute_loss(Y, w)), f"{grid}: compute_loss")
    serial.backward()
    spread.backward()
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), f"{grid}: weights")


@grids
@pytest.mark.parametrize("gradients", ["exact", "local"])
def test_ghost_identity_poisson_weighted_equals_ghost_alone(grid, gradients):
    X, Y, w = data(GHOST_SIZES, "exp", seed=4)
    options = dict(connectivity="ghost", blocks=12, ghost_gradients=gradients, hidden="identity",
                   output="exp", loss="poisson")
    alone = build(GHOST_SIZES, comm=MPI.COMM_SELF, **options)
    spread = build(GHOST_SIZES, comm=comm, grid=grid, **options)
    for _ in range(3):
        everywhere(close(alone.train_step(X, Y, sample_weight=w),
                         spread.train_step(X, Y, sample_weight=w)), f"{grid}: loss")
    everywhere(same_weights(alone.get_weights(), spread.get_weights()), f"{grid}: weights")
    everywhere(same_weights(alone.gradients(X, Y, w), spread.gradients(X, Y, w)),
               f"{grid}: gradients")


@pytest.mark.skipif(P < 2, reason="master mode needs 2 ranks")
def test_master_with_weights_equals_serial():
    X, Y, w = data(SIZES, "exp", seed=5)
    serial = build(hidden="identity", output="exp", loss="poisson")
    spread = build(hidden="identity", output="exp", loss="poisson", comm=comm, master=True)
    for _ in range(3):
        everywhere(close(serial.train_step(X, Y, sample_weight=w),
                         spread.train_step(X, Y, sample_weight=w)), "loss")
    value, grads = spread.loss_and_gradients(X, Y, w)
    everywhere(same_on_every_rank(value), "loss_and_gradients: one loss on every rank")
    everywhere(same_weights(serial.gradients(X, Y, w), grads), "gradients")


def test_dense_batch_1_fused_rows_after_identity_equal_serial():
    # Layer 2 holds 4 MiB of float64 weights, at least 1 MiB on each of up to 4 ranks: at
    # batch 1 plain SGD takes the fused row pass, its previous layer an identity one.
    sizes = [5, 512, 1024, 5]
    X, Y, _ = data(sizes, "softmax", batch=1, seed=6)
    serial, parallel = build(sizes, hidden="identity"), build(sizes, hidden="identity", comm=comm)
    for _ in range(2):
        everywhere(close(serial.train_step(X, Y), parallel.train_step(X, Y)), "loss")
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), "weights")
