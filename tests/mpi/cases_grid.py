"""Process grids (D replicas x M model ranks) under mpiexec: every grid of this job equals serial."""
import os
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

import ghostmlp
from ghostmlp import Network, exchange
from ghostmlp.optim import SGD, Adam, AdamW
from verdicts import close, everywhere, same_weights

comm = MPI.COMM_WORLD
P = comm.Get_size()
SIZES = [7, 13, 11, 5]              # no layer divides evenly by 2, 3 or 4
GHOST_SIZES = [6, 25, 29, 13]       # every layer holds 12 blocks
GRIDS = [(d, P // d) for d in range(1, P + 1) if P % d == 0]
OPTIMIZERS = {"sgd": lambda: SGD(0.3), "momentum": lambda: SGD(0.2, momentum=0.9, weight_decay=1e-3),
              "nesterov": lambda: SGD(0.2, momentum=0.8, nesterov=True, weight_decay=1e-3),
              "adam": lambda: Adam(0.01, weight_decay=1e-3),
              "adamw": lambda: AdamW(0.01, weight_decay=0.1)}
grids = pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
# Both ways of updating replicas: this job's run on one node, where "auto" shares memory.
updates = pytest.mark.parametrize("update", ["allreduce", "shared"])


def build(sizes=SIZES, optimizer=None, **options):
    net = Network(seed=5, dtype="float64", loss="cross_entropy",
                  optimizer=optimizer or SGD(0.3), **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size)
    net.add_layer("output", sizes[-1])
    return net.initialize()


def data(sizes, batch=9, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)


@grids
@updates
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("batch", [9, 2], ids=["B9", "B2"])   # B2: some replicas get no sample
def test_grid_equals_serial(grid, update, name, batch):
    X, y = data(SIZES, batch)
    serial = build(optimizer=OPTIMIZERS[name]())
    spread = build(optimizer=OPTIMIZERS[name](), comm=comm, grid=grid, replica_update=update)
    everywhere((spread.engine.memory is not None) == (update == "shared" and grid[0] > 1),
               f"{grid} {update}: shared memory")
    for _ in range(4):
        everywhere(close(serial.train_step(X, y), spread.train_step(X, y)), f"{grid} {name}: loss")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), f"{grid} {name}: weights")


@grids
@updates
def test_ghost_inside_replicas_equals_ghost_alone(grid, update):
    X, y = data(GHOST_SIZES, seed=1)
    options = dict(connectivity="ghost", blocks=12)
    alone = build(GHOST_SIZES, comm=MPI.COMM_SELF, **options)
    spread = build(GHOST_SIZES, comm=comm, grid=grid, replica_update=update, **options)
    for _ in range(3):
        everywhere(close(alone.train_step(X, y), spread.train_step(X, y)), f"{grid}: loss")
    everywhere(same_weights(alone.get_weights(), spread.get_weights()), f"{grid}: weights")


@grids
@updates
def test_fit_gradients_and_listing_equal_serial(grid, update):
    X, y = data(SIZES, batch=23, seed=2)
    serial, spread = build(), build(comm=comm, grid=grid, replica_update=update)
    everywhere(same_weights(serial.gradients(X[:7], y[:7]), spread.gradients(X[:7], y[:7])),
               "gradients")
    history = serial.fit(X, y, max_epochs=2, batch_size=5)
    everywhere(np.allclose(history["loss"], spread.fit(X, y, max_epochs=2, batch_size=5)["loss"],
                           rtol=1e-10), "fit losses")
    everywhere(close(serial.forward(X[:6]), spread.forward(X[:6])), "forward outputs")
    everywhere(close(serial.compute_loss(y[:6]), spread.compute_loss(y[:6])), "compute_loss")
    serial.backward()
    spread.backward()
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), "weights")


@pytest.mark.skipif(P < 4, reason="a master in each of 2 replicas needs 4 ranks")
def test_master_in_every_replica():
    X, y = data(SIZES, seed=3)
    serial, spread = build(), build(comm=comm, grid=(2, 2), master=True)
    for _ in range(3):
        everywhere(close(serial.train_step(X, y), spread.train_step(X, y)), "loss")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), "weights")


@pytest.mark.skipif(P < 4, reason="a master in each of 2 replicas needs 4 ranks")
def test_shared_replicas_with_a_master_are_refused_on_every_rank():
    try:
        build(comm=comm, grid=(2, 2), master=True, replica_update="shared")
        message = None
    except ValueError as error:
        message = str(error)
    everywhere(message and "no master" in message, message)


@grids
def test_one_allreduce_per_bucket_per_step(grid):
    X, y = data(SIZES)
    for bucket_bytes, buckets in ((25 * 2**20, 1), (1, 3)):    # 1 byte: one bucket a layer
        net = build(comm=comm, grid=grid, optimizer=Adam(), bucket_bytes=bucket_bytes,
                    replica_update="allreduce")
        net.reset_stats()
        for _ in range(2):
            net.train_step(X, y)
        got = net.stats()["collectives"].get("allreduce", 0)
        expected = buckets if grid[0] > 1 else 0
        everywhere(got == expected, f"{grid}, buckets of {bucket_bytes} B: {got} all-reduces a step")


@grids
@pytest.mark.parametrize("batch", [9, 2], ids=["B9", "B2"])
def test_shared_replicas_sum_one_loss_and_wait_once_a_step(grid, batch):
    X, y = data(SIZES, batch)
    net = build(comm=comm, grid=grid, optimizer=Adam(), replica_update="shared")
    net.reset_stats()
    for _ in range(2):
        net.train_step(X, y)
    got = net.stats()["collectives"]
    # The loss sum once every layer's deltas are written, a barrier after the update.
    expected = ({"allreduce": 1, "barrier": 1} if grid[0] > 1 else {})
    everywhere({k: got.get(k, 0) for k in ("allreduce", "barrier")}
               == {k: expected.get(k, 0) for k in ("allreduce", "barrier")},
               f"{grid}: {got} a step")


@pytest.mark.skipif(P == 1, reason="one replica shares no memory")
def test_shared_replicas_hold_one_copy_of_the_weights_and_state():
    net = build(comm=comm, grid=(P, 1), optimizer=Adam(0.01), replica_update="shared")
    net.train_step(*data(SIZES))
    values = net.parameters.values          # weights, then Adam's two moments
    with net.engine.writing() as writes:
        if writes:
            values[:] = np.arange(len(values))
    everywhere(np.array_equal(values, np.arange(len(values))), "replica 0's values")


@grids
@updates
def test_set_weights_and_restore_best_equal_serial(grid, update):
    X, y = data(SIZES, batch=17, seed=7)
    serial, spread = build(), build(comm=comm, grid=grid, replica_update=update)
    start = [(w + 0.1, b - 0.1) for w, b in serial.get_weights()]
    serial.set_weights(start)
    spread.set_weights(start)
    validation = data(SIZES, batch=6, seed=8)
    options = dict(max_epochs=4, batch_size=4, learning_rate=2.0, validation=validation,
                   restore_best=True)
    history = serial.fit(X, y, **options)
    everywhere(np.allclose(history["val_loss"], spread.fit(X, y, **options)["val_loss"],
                           rtol=1e-10), "validation losses")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), "restored weights")


@pytest.mark.skipif(P == 1, reason="one replica shares no memory")
def test_shared_replicas_wait_through_mpi4py_without_the_compiled_entry_points(monkeypatch):
    monkeypatch.setattr(exchange, "COMPILED_ENTRY_POINTS", None)
    X, y = data(SIZES, seed=6)
    serial = build(optimizer=Adam(0.01))
    spread = build(optimizer=Adam(0.01), comm=comm, grid=(P, 1), replica_update="shared")
    for _ in range(3):
        everywhere(close(serial.train_step(X, y), spread.train_step(X, y)), "loss")
    everywhere(same_weights(serial.get_weights(), spread.get_weights()), "weights")


@pytest.mark.skipif(P == 1, reason="one replica shares no memory")
@pytest.mark.parametrize("refusing", ["first", "last"])   # parameters' values; buffers
def test_shared_memory_refused_on_one_rank_is_named_on_every_rank(monkeypatch, refusing):
    if comm.Get_rank() == (0 if refusing == "first" else P - 1):
        monkeypatch.setattr(exchange, "SHARED_FOLDER", "/nonexistent/ghostmlp")
    try:
        net = build(comm=comm, grid=(P, 1), replica_update="shared")
        net.train_step(*data(SIZES))
        message = None
    except MemoryError as error:
        message = str(error)
    everywhere(message and "shared memory in /nonexistent/ghostmlp" in message
               and "replica_update='allreduce'" in message, message)


def test_a_wrong_grid_is_named_on_every_rank():
    try:
        Network(comm=comm, grid=(P + 1, 1))
    except ValueError as error:
        message = str(error)
    everywhere(f"grid=({P + 1}, 1) holds {P + 1} ranks, but the communicator has {P}" in message,
               message)


@pytest.fixture
def folder():
    path = comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None)
    yield path
    comm.Barrier()


@grids
@updates
def test_checkpoints_cross_grids(folder, grid, update):
    X, y = data(SIZES, seed=4)
    net = build(comm=comm, grid=grid, optimizer=Adam(0.01), replica_update=update)
    net.fit(X, y, max_epochs=2, batch_size=4)
    path = os.path.join(folder, "grid.gmlp")
    ghostmlp.save(net, path)
    expected = net.predict_proba(X)
    net.fit(X, y, max_epochs=1, batch_size=4)
    later = net.predict_proba(X)
    for other in GRIDS[::-1]:
        loaded = ghostmlp.load(path, comm=comm, grid=other, replica_update=update)
        everywhere(loaded.replica_update_used == (update if other[0] > 1 else None),
                   f"{grid} -> {other}: {loaded.replica_update_used} replicas")
        everywhere(close(loaded.predict_proba(X), expected), f"{grid} -> {other}: outputs")
        loaded.fit(X, y, max_epochs=1, batch_size=4)
        everywhere(close(loaded.predict_proba(X), later), f"{grid} -> {other}: one more epoch")
    alone = ghostmlp.load(path)
    everywhere(close(alone.predict_proba(X), expected), f"{grid} -> one rank")


@pytest.mark.skipif(P == 1, reason="one replica: no other replica to stop")
@pytest.mark.parametrize("grid", [g for g in GRIDS if g[0] > 1] or [(1, 1)],
                         ids=lambda g: f"{g[0]}x{g[1]}")
@updates
def test_a_non_finite_share_stops_every_replica(grid, update):
    X, y = data(SIZES)
    X[-1, 0] = np.nan                   # in the last replica's share only
    net = build(comm=comm, grid=grid, replica_update=update)
    before = net.get_weights()
    try:
        net.train_step(X, y)
        message = None
    except FloatingPointError as error:
        message = str(error)
    everywhere(message and "no update was applied" in message, message)
    everywhere(same_weights(before, net.get_weights()), "weights unchanged")
