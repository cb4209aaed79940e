"""Model-parallel cases, run on every rank under mpiexec by tests/test_mpi.py; verdicts are allreduced."""
import numpy as np
import pytest
from mpi4py import MPI

from ghostmlp import Network
from ghostmlp.optim import SGD, Adam, AdamW
from ghostmlp.partition import slice_bounds
from verdicts import close, everywhere, same_weights

comm = MPI.COMM_WORLD
P = comm.Get_size()
SIZES = [7, 13, 11, 5]              # no layer divides evenly by 2, 3 or 4
GHOST_SIZES = [6, 25, 29, 13]       # every layer holds 12 blocks
FIXED_BLOCKS = 12                   # divisible by 1, 2, 3 and 4 working ranks


def build(sizes=SIZES, loss="cross_entropy", hidden="sigmoid", output="softmax", **options):
    rate = {} if "optimizer" in options else {"learning_rate": 0.3}
    net = Network(seed=5, dtype="float64", loss=loss, **rate, **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, activation=hidden)
    net.add_layer("output", sizes[-1], activation=output)
    return net.initialize()


def data(sizes, batch=9, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_dense_equals_serial(momentum):
    X, y = data(SIZES)
    serial = build(momentum=momentum, weight_decay=1e-3)
    parallel = build(momentum=momentum, weight_decay=1e-3, comm=comm)
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), "initial weights")
    everywhere(close(serial.forward(X), parallel.forward(X)), "outputs")
    for _ in range(5):
        everywhere(close(serial.train_step(X, y), parallel.train_step(X, y)), "loss")
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), "weights after 5 steps")
    everywhere(np.array_equal(serial.predict(X), parallel.predict(X)), "predictions")


def test_dense_gradients_equal_serial():
    X, y = data(SIZES, seed=1)
    serial, parallel = build(loss="mse", hidden="tanh"), build(loss="mse", hidden="tanh", comm=comm)
    everywhere(same_weights(serial.gradients(X, y), parallel.gradients(X, y)), "gradients")


@pytest.mark.parametrize("gradients", ["exact", "local"])
def test_ghost_with_fixed_blocks_is_independent_of_the_rank_count(gradients):
    X, y = data(GHOST_SIZES)
    options = dict(connectivity="ghost", blocks=FIXED_BLOCKS, ghost_gradients=gradients)
    alone = build(GHOST_SIZES, comm=MPI.COMM_SELF, **options)
    spread = build(GHOST_SIZES, comm=comm, **options)
    everywhere(same_weights(alone.get_weights(), spread.get_weights()), "initial weights")
    for _ in range(4):
        everywhere(close(alone.train_step(X, y), spread.train_step(X, y)), "loss")
    everywhere(same_weights(alone.get_weights(), spread.get_weights()), "weights after 4 steps")
    everywhere(close(alone.predict_proba(X), spread.predict_proba(X)), "outputs")


def masked_reference_step(weights, masks, X, y, lr):
    """One SGD step of a sigmoid/softmax cross-entropy MLP whose weights are zero off the masks."""
    out, loss, grads = masked_reference_gradients(weights, masks, X, y)
    return out, loss, [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(weights, grads)]


def masked_reference_gradients(weights, masks, X, y, backprop_masks=None):
    """(outputs, loss, [(dL/dW, dL/db)]) of that MLP; the deltas travel back along the edges
    of backprop_masks (default: masks)."""
    backprop_masks = masks if backprop_masks is None else backprop_masks
    activations = [X]
    for l, (w, b) in enumerate(weights):
        z = activations[-1] @ (w * masks[l]) + b
        if l < len(weights) - 1:
            activations.append(1 / (1 + np.exp(-z)))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            activations.append(e / e.sum(axis=1, keepdims=True))
    out = activations[-1]
    onehot = np.eye(out.shape[1])[y]
    loss = -np.mean(np.sum(onehot * np.log(out), axis=1))
    delta = (out - onehot) / len(X)
    grads = []
    for l in range(len(weights) - 1, -1, -1):
        w, b = weights[l]
        grads.insert(0, (activations[l].T @ delta * masks[l], delta.sum(axis=0)))
        if l > 0:
            a = activations[l]
            delta = (delta @ (w * backprop_masks[l]).T) * a * (1 - a)
    return out, loss, grads


def own_block_mask(n_in, n_out, blocks):
    """Edges from block k of the previous layer to block k: the ghosts' edges left out."""
    mask = np.zeros((n_in, n_out), dtype=bool)
    for k in range(blocks):
        (a, b), (c, d) = slice_bounds(n_in, blocks, k), slice_bounds(n_out, blocks, k)
        mask[a:b, c:d] = True
    return mask


def test_ghost_with_blocks_per_rank_matches_masked_numpy():
    X, y = data(GHOST_SIZES, seed=2)
    net = build(GHOST_SIZES, connectivity="ghost", comm=comm)      # K = number of ranks
    assert net.blocks == P
    masks = [net.connectivity_mask(l) for l in range(3)]
    weights = net.get_weights()
    everywhere(all(not np.any(w[~m]) for (w, _), m in zip(weights, masks)), "zeros off the mask")
    everywhere(P == 1 or all(not m.all() for m in masks[1:]), "ghost layers are sparse")
    for _ in range(3):
        out, loss, weights = masked_reference_step(weights, masks, X, y, 0.3)
        everywhere(close(net.forward(X), out), "outputs")
        everywhere(close(net.compute_loss(y), loss), "loss")
        net.backward()
    everywhere(same_weights(net.get_weights(), weights), "weights after 3 steps")


@pytest.mark.parametrize("gradients", ["exact", "local"])
def test_ghost_gradients_against_central_differences(gradients):
    sizes = [3, 8, 10, 4]
    blocks = 4 if P in (1, 2, 4) else 3
    X, y = data(sizes, batch=5, seed=3)
    net = build(sizes, connectivity="ghost", blocks=blocks, ghost_gradients=gradients, comm=comm)
    analytic = net.gradients(X, y)
    params = net.get_weights()
    masks = [net.connectivity_mask(l) for l in range(3)]
    numeric = []
    for l, (w, b) in enumerate(params):
        gw = np.zeros_like(w)
        for i, j in zip(*np.nonzero(masks[l])):
            saved = w[i, j]
            losses = []
            for step in (1e-6, -1e-6):
                w[i, j] = saved + step
                net.set_weights(params)
                losses.append(net.evaluate(X, y)["loss"])
            w[i, j] = saved
            gw[i, j] = (losses[0] - losses[1]) / 2e-6
        numeric.append(gw)
    net.set_weights(params)
    error = max(np.max(np.abs(a - n)) / np.max(np.abs(n)) for (a, _), n in zip(analytic, numeric))
    if gradients == "exact":
        everywhere(error < 1e-6, f"exact ghost gradients (relative error {error:.2e})")
        return
    # Local gradients: the deltas reach a block only from its own block of the next layer.
    backprop = [masks[0]] + [own_block_mask(a, b, blocks) & m
                             for a, b, m in zip(sizes[1:-1], sizes[2:], masks[1:])]
    _, _, expected = masked_reference_gradients(params, masks, X, y, backprop)
    everywhere(same_weights(analytic, expected), "local ghost gradients = masked reference")
    everywhere(error > 1e-3, f"local ghost gradients differ from the true ones ({error:.2e})")


def test_communication_is_counted():
    X, y = data(GHOST_SIZES)
    ghost = build(GHOST_SIZES, connectivity="ghost", blocks=FIXED_BLOCKS, comm=comm)
    ghost.reset_stats()
    for _ in range(2):
        ghost.train_step(X, y)
    stats = ghost.stats()
    # Two blocked hidden layers: 2 sends each forward, and 2 each back (exact gradients);
    # a single rank's ring is itself: its ghosts are copied, not sent.
    messages = 8 if P > 1 else 0
    everywhere(stats["messages_per_rank"] == messages and stats["messages_max"] == messages,
               f"messages {stats}")
    # The output is gathered once per step; a single rank gathers nothing.
    expected = {"allgather": 1} if P > 1 else {}
    everywhere(stats["collectives"] == expected, f"ghost collectives {stats}")
    everywhere(stats["bytes_per_rank"] == messages * 9 * 8, f"bytes {stats}")
    everywhere(0 <= stats["comm_percent"] <= 100 and stats["iterations"] == 2, f"stats {stats}")
    dense = build(comm=comm)
    dense.reset_stats()
    dense.train_step(*data(SIZES))
    expected = {"allgather": 3, "reduce_scatter": 2} if P > 1 else {}
    everywhere(dense.stats()["collectives"] == expected, f"dense collectives {dense.stats()}")
    everywhere(dense.stats()["messages_per_rank"] == 0, "dense sends no halo")


COMPILED_LAYOUTS = [
    pytest.param({"connectivity": "dense"}, id="dense"),
    pytest.param({"connectivity": "dense", "master": True}, id="dense-master",
                 marks=pytest.mark.skipif(P < 2, reason="master mode needs 2 ranks")),
    pytest.param({"connectivity": "ghost", "blocks": FIXED_BLOCKS}, id="ghost")]


def train_and_count(options, steps=3):
    """(losses, weights, stats) of `steps` steps of GHOST_SIZES at batches 9 and 4 (the
    requests of two batch sizes)."""
    X, y = data(GHOST_SIZES, seed=6)
    net = build(GHOST_SIZES, comm=comm, **options)
    net.reset_stats()
    losses = [net.train_step(X[:9 if i % 2 == 0 else 4], y[:9 if i % 2 == 0 else 4])
              for i in range(steps)]
    return losses, net.get_weights(), net.stats()


@pytest.mark.parametrize("options", COMPILED_LAYOUTS)
def test_the_step_starts_and_waits_its_exchanges_in_compiled_code(monkeypatch, options):
    """With MPI's entry points found, the step calls none of the exchange's Python methods
    (the collectives' where the library has persistent ones), and still equals
    serial training; what it sends is counted as before."""
    from ghostmlp import exchange
    everywhere(exchange.COMPILED_ENTRY_POINTS is not None, "MPI_Startall and MPI_Waitall found")
    methods = ["post_halo", "wait_halo", "reverse_halo"]
    if exchange.PERSISTENT_COLLECTIVES:
        methods += ["gather", "reduce_scatter"]
    for method in methods:
        monkeypatch.setattr(exchange.StepExchange, method, None)   # a call would fail
    X, y = data(GHOST_SIZES, seed=6)
    serial = build(GHOST_SIZES, **{k: v for k, v in options.items() if k != "master"})
    losses, weights, stats = train_and_count(options)
    alone = [serial.train_step(X[:9 if i % 2 == 0 else 4], y[:9 if i % 2 == 0 else 4])
             for i in range(3)]
    everywhere(close(np.array(losses), np.array(alone)), f"losses {losses} {alone}")
    everywhere(same_weights(serial.get_weights(), weights), "weights after 3 steps")
    everywhere(stats["iterations"] == 3 and bool(stats["collectives"]) == (P > 1),
               f"collectives counted {stats}")


@pytest.mark.parametrize("options", COMPILED_LAYOUTS)
def test_without_entry_points_the_step_calls_mpi_through_mpi4py(monkeypatch, options):
    """An MPI whose library exports no MPI_Startall (none found): the same training through
    the exchange's Python methods, counted the same."""
    from ghostmlp import exchange
    compiled = train_and_count(options)
    monkeypatch.setattr(exchange, "COMPILED_ENTRY_POINTS", None)
    called = []
    for method in ("post_halo", "gather", "reduce_scatter"):
        original = getattr(exchange.StepExchange, method)
        monkeypatch.setattr(exchange.StepExchange, method,
                            lambda self, *args, _original=original, _name=method: (
                                called.append(_name), _original(self, *args))[1])
    python = train_and_count(options)
    everywhere(close(np.array(compiled[0]), np.array(python[0])), "losses")
    everywhere(same_weights(compiled[1], python[1]), "weights")
    counted = ("messages_per_rank", "bytes_per_rank", "collectives", "iterations")
    everywhere(all(compiled[2][key] == python[2][key] for key in counted),
               f"counts {compiled[2]} {python[2]}")
    everywhere(bool(called) == (P > 1), "the Python methods called")


@pytest.mark.skipif(P < 2, reason="master mode needs 2 ranks")
@pytest.mark.parametrize("connectivity", ["dense", "ghost"])
def test_master_equals_no_master_on_the_working_ranks(connectivity):
    X, y = data(GHOST_SIZES, seed=4)
    extra = {"connectivity": connectivity}
    with_master = build(GHOST_SIZES, comm=comm, master=True, **extra)
    reference = build(GHOST_SIZES, comm=MPI.COMM_SELF,
                      **dict(extra, blocks=P - 1) if connectivity == "ghost" else extra)
    for _ in range(3):
        everywhere(close(with_master.train_step(X, y), reference.train_step(X, y)), "loss")
    everywhere(same_weights(with_master.get_weights(), reference.get_weights()), "weights")
    everywhere(close(with_master.predict_proba(X), reference.predict_proba(X)), "outputs")


@pytest.mark.skipif(P < 2, reason="master mode needs 2 ranks")
@pytest.mark.parametrize("gradients", ["exact", "local"])
def test_master_with_fixed_ghost_blocks_equals_one_process(gradients):
    # 2 ranks leave one working rank, whose ring is itself (its halos are copies, no
    # message); 3 and 4 ranks exchange real halos between the workers
    X, y = data(GHOST_SIZES, seed=6)
    options = dict(connectivity="ghost", blocks=FIXED_BLOCKS, ghost_gradients=gradients)
    with_master = build(GHOST_SIZES, comm=comm, master=True, **options)
    alone = build(GHOST_SIZES, comm=MPI.COMM_SELF, **options)
    for _ in range(3):
        everywhere(close(with_master.train_step(X, y), alone.train_step(X, y)), "loss")
    everywhere(same_weights(with_master.get_weights(), alone.get_weights()), "weights")
    messages = with_master.stats()["messages_per_rank"]
    everywhere((messages == 0) == (P == 2), f"halo messages {messages}")


def raised(function, **options):
    """The ValueError message that function(**options) raises on this rank, or None."""
    try:
        function(**options)
    except ValueError as error:
        return str(error)
    return None


def test_impossible_layouts_fail_on_every_rank():
    if P == 1:
        message = raised(Network, comm=comm, master=True)
        everywhere(message and "master=True needs at least 2 ranks" in message, message)
        return
    message = raised(build, sizes=[3, P - 1, 4], comm=comm)
    everywhere(message and f"layer 1 has {P - 1} neurons, fewer than its {P} working ranks"
               in message, message)
    message = raised(build, sizes=[3, 30, 4], comm=comm, connectivity="ghost", blocks=P + 1)
    everywhere(message and f"blocks={P + 1} must be a positive multiple of the {P} working "
               "ranks" in message, message)


OPTIMIZERS = {
    "sgd": lambda: SGD(0.3, weight_decay=1e-3),
    "momentum": lambda: SGD(0.3, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda: SGD(0.2, momentum=0.8, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(0.01, weight_decay=1e-3),
    "adamw": lambda: AdamW(0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_dense_equals_serial(name):
    X, y = data(SIZES, seed=6)
    serial = build(optimizer=OPTIMIZERS[name]())
    parallel = build(optimizer=OPTIMIZERS[name](), comm=comm)
    for _ in range(4):
        everywhere(close(serial.train_step(X, y), parallel.train_step(X, y)), f"{name}: loss")
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), f"{name}: weights")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_ghost_is_independent_of_the_rank_count(name):
    X, y = data(GHOST_SIZES, seed=7)
    options = dict(connectivity="ghost", blocks=FIXED_BLOCKS)
    alone = build(GHOST_SIZES, comm=MPI.COMM_SELF, optimizer=OPTIMIZERS[name](), **options)
    spread = build(GHOST_SIZES, comm=comm, optimizer=OPTIMIZERS[name](), **options)
    for _ in range(4):
        everywhere(close(alone.train_step(X, y), spread.train_step(X, y)), f"{name}: loss")
    everywhere(same_weights(alone.get_weights(), spread.get_weights()), f"{name}: weights")


def test_dense_batch_1_fused_rows_equal_serial():
    # Layer 2 holds 4 MiB of float64 weights, at least 1 MiB on each of up to 4 ranks: at
    # batch 1 plain SGD takes the fused row pass, here into partial sums reduced over ranks.
    sizes = [5, 512, 1024, 5]
    X, y = data(sizes, batch=1, seed=8)
    serial, parallel = build(sizes), build(sizes, comm=comm)
    for _ in range(2):
        everywhere(close(serial.train_step(X, y), parallel.train_step(X, y)), "loss")
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), "weights")


@pytest.mark.parametrize("connectivity", ["dense", "ghost"])
def test_weights_stream_one_layer_at_a_time(connectivity):
    options = {"connectivity": connectivity, "blocks": FIXED_BLOCKS} if connectivity == "ghost" else {}
    net = build(GHOST_SIZES, comm=comm, **options)
    whole = net.get_weights()
    root = P - 1
    for index, (pair, layer) in enumerate(zip(net.iter_weights(root=root), whole)):
        if comm.Get_rank() == root:
            everywhere(same_weights([pair], [layer]), f"layer {index} on the root")
        else:
            everywhere(pair == (None, None), f"layer {index} off the root")


@pytest.mark.parametrize("master", [False, True] if P > 1 else [False])
def test_blocking_collectives_in_place_of_persistent_ones_equal_serial(monkeypatch, master):
    """An MPI library older than MPI 4 (no persistent collectives) runs the step's gathers
    and reduce-scatters as blocking calls: the same training, and the calls really made."""
    from ghostmlp import exchange
    monkeypatch.setattr(exchange, "PERSISTENT_COLLECTIVES", False)
    X, y = data(SIZES, seed=2)
    serial, parallel = build(), build(comm=comm, master=master)
    for _ in range(3):
        everywhere(close(serial.train_step(X, y), parallel.train_step(X, y)), "loss")
    everywhere(same_weights(serial.get_weights(), parallel.get_weights()), "weights after 3 steps")
    made = parallel._engine.step_exchange._persistent.values()
    everywhere(P == 1 or any(p.run is not None and not p.requests for p in made),
               "blocking collectives made")
