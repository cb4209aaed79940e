"""Network: the paper's MLP API (add_layer, initialize, forward, compute_loss, backward) and training."""
import numpy as np

from ghostmlp import _kernels, defaults, train
from ghostmlp.engine import BUCKET_BYTES, REPLICA_UPDATES, Engine, total_weight
from ghostmlp.layout import Layout
from ghostmlp.optim import resolve
from ghostmlp.params import DTYPES
from ghostmlp.schedule import Schedule, resolve as resolve_schedule
from ghostmlp.partition import check_layout, connectivity_mask, edge_count, slice_sizes
from ghostmlp.validate import (
    check_count, check_flag, check_grid, check_inputs, check_layer, check_network, check_output,
    check_positive, check_sample_weight, check_targets, check_weight_pairs, choice, float_dtype)

ACTIVATIONS = {
    "sigmoid": _kernels.SIGMOID,
    "tanh": _kernels.TANH,
    "relu": _kernels.RELU,
    "identity": _kernels.IDENTITY,
    "softmax": _kernels.SOFTMAX,
    "exp": _kernels.EXP,
}
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "identity", "exp")
LOSSES = {"mse": _kernels.MSE, "cross_entropy": _kernels.CROSS_ENTROPY,
          "poisson": _kernels.POISSON}

PREDICT_CHUNK = 1024
PLAN_BATCH = 32             # the minibatch grid="auto" plans for, unless told


class Network:
    """A multilayer perceptron: one input layer, hidden layers, one output layer.

    Conventions: the loss of a batch is the mean over its samples of the per-sample
    loss, sum_i w_i loss_i / sum_i w_i with sample weights w (scikit-learn's); the
    squared loss ("mse", the paper's eq. 4) of a sample is 1/2 sum_k (y'_k - y_k)^2, the
    cross-entropy -sum_k y_k log y'_k (softmax output) or
    -sum_k [y_k log y'_k + (1 - y_k) log(1 - y'_k)] (sigmoid output), the Poisson loss
    ("poisson", exp output y' = e^z, targets >= 0) the half deviance
    sum_k y_k log(y_k / y'_k) - y_k + y'_k (scikit-learn's poisson_loss). Targets are class
    indices ``y[B]`` or rows ``Y[B, n_out]`` (one-hot or soft). Weights are
    ``W[fan_in, fan_out]``, biases ``b[fan_out]``. The update is the optimizer's
    (``ghostmlp.optim``: SGD, Adam, AdamW; by default Adam at 1e-3, see ghostmlp.defaults);
    learning_rate, momentum and weight_decay are shorthand for
    ``optimizer=SGD(learning_rate, momentum, weight_decay=weight_decay)``.

    Model parallelism (MPI): with `comm`, every rank holds a slice of every layer.
    connectivity="dense" computes exactly the serial network on any number of ranks;
    "ghost" is the paper's topology: each layer cut into `blocks` blocks (default: the
    number of working ranks), block k seeing block k of the previous layer plus its two
    ghost neurons, the first hidden layer seeing the whole input. ghost_gradients="exact"
    returns the ghosts' gradients to their owners, "local" treats ghosts as constants.
    master=True keeps rank 0 free of neurons: it gathers the outputs and the loss.

    Data parallelism: grid=(D, M) makes D replicas of M model ranks each (D * M ranks;
    default (1, size)): the model-parallel layout above applies within each replica
    (master: each replica's first rank), every replica computes its contiguous share of
    each minibatch and the gradients are summed over the replicas before the update, so
    that training equals serial training on the same minibatches, whatever D.
    replica_update says how: "allreduce" sums every replica's gradients (Iallreduce, in
    buckets of about bucket_bytes, each as soon as the backward pass has written it, while
    the earlier layers compute) and each replica updates all its weights; "shared" needs
    the replicas of each model rank on one node and no master: they read each other's
    activations and deltas in shared memory, each updates its slice of every layer's
    weight rows from all their samples and copies it to the others (no gradient
    travels, and each replica does 1/D of the update's work); "auto" (default): "shared"
    where it can be, else "allreduce".
    Every rank must make the same calls with the same data.

    stall_timeout (seconds, default ghostmlp.defaults.STALL_TIMEOUT, 0: off): when a rank
    waits that long in one communication call without progress (a host unreachable, a
    rank frozen), it prints which rank, host, operation and layer and ends the whole job
    with MPI_Abort (exit status ghostmlp.watchdog.STALL_EXIT).
    """

    def __init__(self, seed=0, dtype=defaults.DTYPE, loss=defaults.LOSS, learning_rate=None, momentum=None,
                 weight_decay=None, optimizer=None, comm=None, connectivity="dense",
                 blocks=None, ghost_gradients="exact", master=False, grid=None,
                 bucket_bytes=BUCKET_BYTES, replica_update="auto",
                 stall_timeout=defaults.STALL_TIMEOUT):
        check_network(seed, dtype, loss, comm, connectivity, blocks, ghost_gradients, master,
                      DTYPES, tuple(LOSSES))
        size = comm.Get_size() if comm is not None else 1
        self.grid = check_grid(grid, size)
        self.bucket_bytes = check_count("bucket_bytes", bucket_bytes)
        self.replica_update = choice("replica_update", replica_update, REPLICA_UPDATES)
        self.stall_timeout = check_positive("stall_timeout", stall_timeout, allow_zero=True)
        ranks = self.grid[1] if self.grid != "auto" else size
        if master and ranks < 2:
            raise ValueError(f"master=True needs at least 2 ranks per replica, got {ranks}")
        self.optimizer = resolve(optimizer, learning_rate, momentum, weight_decay)
        self.comm, self.connectivity, self.master = comm, connectivity, bool(master)
        self.ghost_gradients = ghost_gradients
        self._blocks_given = blocks
        self._lay_out_ranks(ranks)
        self.seed = int(seed)
        self.dtype = float_dtype(dtype)     # ">f8" names a precision; kernels compute natively
        self.loss = loss
        self.layers = []            # (kind, size, activation); the input's activation is None
        self.epochs_trained = 0
        self.parameters = None      # a ghostmlp.params.Parameters once initialized
        self.layout = None          # a ghostmlp.layout.Layout once initialized
        self._exchange = None       # a ghostmlp.exchange.Exchange when the network uses MPI
        self._engine = None         # a ghostmlp.engine.Engine once initialized
        self._stage = None          # what the last Listing-1 call left: "forward" or "loss"
        self._batch = 0             # the global batch of the last forward()

    # ------------------------------------------------------------ architecture

    def add_layer(self, kind, size, activation=None):
        """Append a layer: "input" first, then any "hidden", then one "output"."""
        if self.parameters is not None:
            raise ValueError("add_layer: the network is already initialized")
        hidden = kind == "hidden"
        activation = check_layer(kind, size, activation, [k for k, _, _ in self.layers],
                                 HIDDEN_ACTIVATIONS if hidden else OUTPUT_ACTIVATIONS,
                                 defaults.HIDDEN_ACTIVATION if hidden else OUTPUT_ACTIVATIONS[0])
        self.layers.append((kind, int(size), activation))
        return self

    @property
    def parallel(self):
        """True when the network is spread over MPI ranks (comm given, ghost, or master)."""
        return self.comm is not None or self.connectivity == "ghost"

    @property
    def replica_update_used(self):
        """How the replicas update ("shared" or "allreduce"), None with one replica."""
        if self._engine is None or self._engine.replicas == 1:
            return None
        return "shared" if self._engine.memory is not None else "allreduce"

    @property
    def engine(self):
        """This rank's machinery (ghostmlp.engine.Engine): plan, parameters, step, exchanges."""
        return self._engine

    @property
    def replica(self):
        """This rank's replica of the grid (0 when serial)."""
        return self._exchange.replica if self._exchange is not None else 0

    @property
    def communicator(self):
        """The library's duplicate of comm that the network's messages use (None when serial)."""
        return self._exchange.comm if self._exchange is not None else None

    @property
    def sizes(self):
        """Neurons per layer, input first."""
        return [size for _, size, _ in self.layers]

    @property
    def steps_trained(self):
        """Training steps taken (the optimizer's step count, kept in the parameters)."""
        return self.parameters.step_count if self.parameters is not None else 0

    @property
    def n_weights(self):
        """Number of connection weights (biases not counted) present in the topology.

        Dense: the paper's Table I counts; ghost networks with K > 1 blocks have fewer.
        """
        sizes = self.sizes
        return sum(edge_count(a, b, self.blocks, first_layer=index == 0)
                   for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def initialize(self, draw=True, batch_size=PLAN_BATCH, machine=None):
        """Lay the network out on the ranks; Glorot-uniform weights, zero biases.

        See ghostmlp.params.Parameters.draw: each neuron's weights come from its own
        stream, so the network depends only on the seed. draw=False leaves every weight
        zero, for a checkpoint to fill. grid="auto": the grid that ghostmlp.plan predicts
        fastest for minibatches of batch_size on comm's ranks, with this network's
        connectivity, blocks and master, from `machine` (a machine file's path, or the one
        $GHOSTMLP_MACHINE names; `ghostmlp plan --calibrate` writes one). Collective.
        """
        batch_size = check_count("batch_size", batch_size)
        kinds = [k for k, _, _ in self.layers]
        if len(kinds) < 2 or kinds[-1] != "output":
            raise ValueError("initialize: the network needs an 'input' and an 'output' layer")
        check_output(self.loss, self.layers[-1][2], tuple(
            name for name in OUTPUT_ACTIVATIONS
            if ACTIVATIONS[name] in _kernels.LOSS_OUTPUTS[LOSSES[self.loss]]))
        if self.grid == "auto":
            self._choose_grid(batch_size, machine)
        check_layout(self.sizes, self.workers, self.connectivity, self.blocks)
        if self.parallel and self._exchange is None:
            from mpi4py import MPI
            from ghostmlp.exchange import Exchange
            self._exchange = Exchange(self.comm if self.comm is not None else MPI.COMM_SELF,
                                      self.master, self.grid, self.stall_timeout)
        ex = self._exchange
        ranks, rank = (ex.model_size, ex.model_rank) if ex is not None else (1, 0)
        codes = [ACTIVATIONS[act] for _, _, act in self.layers[1:]]
        self.layout = Layout(self.sizes, codes, self.connectivity, self.blocks, ranks, rank,
                             self.master, self.ghost_gradients)
        self._engine = Engine(self.layout, self.sizes[:-1], self.dtype, self.optimizer,
                              LOSSES[self.loss], codes[-1], ex, self.bucket_bytes,
                              self.replica_update)
        self.parameters = self._engine.parameters
        if draw:
            with self._engine.writing() as writes:
                if writes:
                    self.parameters.draw(self.seed)
        self.epochs_trained = 0
        self._stage = None
        return self

    def _choose_grid(self, batch, machine):
        from ghostmlp import plan
        size = self.comm.Get_size() if self.comm is not None else 1
        choice = plan.recommend(self.sizes, batch, size, machine, self.dtype.name, self.optimizer,
                                self._blocks_given, self.connectivity, self.master,
                                self.ghost_gradients).layout
        self.grid = tuple(choice.grid)
        self._lay_out_ranks(self.grid[1])

    def _lay_out_ranks(self, ranks):
        """Working ranks per replica and the ghost blocks, for replicas of `ranks` ranks."""
        self.workers = ranks - self.master
        self.blocks = (self._blocks_given or self.workers) if self.connectivity == "ghost" else 1

    # ------------------------------------------------------------------ weights

    def iter_weights(self, root=None):
        """(W[fan_in, fan_out], b[fan_out]) of each weight layer in turn, zeros where no edge.

        Model parallel: collective; each layer is assembled on every rank, or with
        root=r on rank r only (the others get None), one layer in memory at a time.
        """
        self._require_initialized()
        for l in range(len(self.layers) - 1):
            yield self._engine.full_layer(l, root=root)

    def get_weights(self):
        """Copies of [(W[fan_in, fan_out], b[fan_out])], one pair per non-input layer.

        Model parallel: the full matrices on every rank (collective); see iter_weights.
        """
        return list(self.iter_weights())

    def set_weights(self, weights):
        """Copy [(W, b)] into the network (same shapes as get_weights(); absent edges ignored)."""
        self._require_initialized()
        check_weight_pairs(weights, self.sizes)
        with self._engine.writing() as writes:
            if writes:
                for l, (w, b) in enumerate(weights):
                    self.parameters.set_full_layer(l, w, b)

    # -------------------------------------------------------- the paper's loop

    def forward(self, X):
        """Output Y'[B, n_out] of a batch X[B, n_in] (a copy); keeps what backward() needs.

        With replicas, each computes its share and the outputs are gathered (collective).
        """
        X = self._inputs(X)
        share = self._engine.bind_share(len(X))
        self._engine.forward(X[share])
        self._stage, self._batch = "forward", len(X)
        outputs = self._engine.outputs(share.stop - share.start).T
        if self._engine.replicas > 1:
            return self._exchange.allgather_samples(np.ascontiguousarray(outputs),
                                                    slice_sizes(len(X), self.grid[0]))
        return outputs.copy()

    def compute_loss(self, Y, sample_weight=None):
        """(Weighted) mean loss of the last forward()'s batch against Y; prepares backward()."""
        if self._stage is None:
            raise RuntimeError("compute_loss: call forward(X) first")
        targets = self._targets(Y, self._batch)
        weights = check_sample_weight(sample_weight, self._batch, self.dtype)
        lo, hi = self._engine.share(self._batch)
        loss = self._engine.loss(targets[lo:hi], self._batch, weights)
        self._stage = "loss"
        return loss

    def backward(self, learning_rate=None):
        """Back-propagate the last compute_loss() and apply one optimizer step to every layer.

        learning_rate: this step's rate instead of the optimizer's.
        """
        if self._stage != "loss":
            raise RuntimeError("backward: call forward(X) and compute_loss(Y) first")
        self._engine.backward(self._rate(learning_rate))
        self._stage = None

    def train_step(self, X, Y, learning_rate=None, sample_weight=None):
        """forward + loss + backward + update on one batch; returns the batch's mean loss.

        sample_weight: w[B] >= 0, not all 0: the loss sum_i w_i loss_i / sum_i w_i.
        """
        X = self._inputs(X)
        targets = self._targets(Y, len(X))
        weights = check_sample_weight(sample_weight, len(X), self.dtype)
        share = self._engine.bind_share(len(X))
        self._stage = None
        return self._engine.train(X[share], targets[share], len(X), self._rate(learning_rate),
                                  weights)

    def loss_and_gradients(self, X, Y, sample_weight=None):
        """(L, [(dL/dW, dL/db)]) at the current weights, L = sum_i w_i loss_i / sum_i w_i.

        w = 1 without sample_weight (L the batch mean); nothing changes. Model parallel
        and grids: L as a float and the full arrays, the same on every rank (collective),
        zeros where no edge.
        """
        X = self._inputs(X)
        targets = self._targets(Y, len(X))
        weights = check_sample_weight(sample_weight, len(X), self.dtype)
        lo, hi = self._engine.share(len(X))
        loss = self._engine.gradients(X[lo:hi], targets[lo:hi], len(X), weights)
        self.parameters = self._engine.parameters
        self._stage = None
        return loss, [self._engine.full_layer(l, "grads") for l in range(len(self.layers) - 1)]

    def gradients(self, X, Y, sample_weight=None):
        """[(dL/dW, dL/db)] of loss_and_gradients(X, Y, sample_weight)."""
        return self.loss_and_gradients(X, Y, sample_weight)[1]

    # ---------------------------------------------------------------- training

    def fit(self, X, Y, max_epochs=defaults.MAX_EPOCHS, batch_size=defaults.BATCH_SIZE,
            learning_rate=None, schedule=None, shuffle=True, validation=None,
            validation_fraction=0.0, n_iter_no_change=defaults.N_ITER_NO_CHANGE,
            tol=defaults.TOL, restore_best=False, on_epoch=None, sample_weight=None):
        """Train for at most max_epochs passes over (X, Y) in minibatches; the history.

        batch_size: samples per step, or "auto" (min(200, n)). learning_rate: this call's
        constant rate instead of the optimizer's; schedule: a ghostmlp.schedule.Schedule
        (it keeps its state between calls) or a name ("constant", "step", "cosine",
        "plateau", "invscaling") from that rate over this call's epochs. Stops once the
        validation loss (with validation=(X_val, Y_val) or validation_fraction > 0), else
        the training loss, has not improved by tol for more than n_iter_no_change epochs
        (None: never). See ghostmlp.train.Trainer for the order of the samples, memory-
        mapped data, restore_best, on_epoch, sample_weight, divergence and the history.
        """
        self._require_initialized()
        if learning_rate is not None and isinstance(schedule, Schedule):
            raise ValueError("fit: give learning_rate= or a Schedule, not both")
        schedule = resolve_schedule(schedule, self._rate(learning_rate),
                                    self.epochs_trained + check_count("max_epochs", max_epochs))
        trainer = train.Trainer(self, batch_size, schedule, shuffle)
        restore_best = check_flag("restore_best", restore_best)
        patience = (train.Patience(n_iter_no_change, tol) if n_iter_no_change is not None
                    else None)
        try:
            return trainer.run(X, Y, max_epochs, validation, validation_fraction, patience,
                               restore_best, on_epoch=on_epoch, sample_weight=sample_weight)
        finally:
            self._stage = None

    def predict_proba(self, X):
        """Outputs Y'[n, n_out] for any number of samples, computed in chunks."""
        X = self._inputs(X)
        engine = self._engine
        engine.bind(min(len(X), PREDICT_CHUNK))
        out = np.empty((len(X), self.sizes[-1]), dtype=self.dtype)
        capacity = engine.buffers.capacity
        with engine.inference():
            for start in range(0, len(X), capacity):
                chunk = X[start:start + capacity]
                engine.step.forward(chunk)
                out[start:start + len(chunk)] = engine.outputs(len(chunk)).T
        self._stage = None
        return out

    def predict(self, X):
        """Class indices [n]: the arg-max output neuron of each sample."""
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, Y, sample_weight=None):
        """{"loss": the batch's (weighted) mean loss, "accuracy": the (weighted) fraction of
        arg-max outputs equal to the class (of Y's arg-max for rows)}."""
        X = self._inputs(X)
        targets = self._targets(Y, len(X))
        weights = check_sample_weight(sample_weight, len(X), self.dtype)
        engine = self._engine
        engine.bind(min(len(X), PREDICT_CHUNK))
        loss, correct, capacity = 0.0, 0.0, engine.buffers.capacity
        total = total_weight(len(X), weights)
        classes = targets if targets.ndim == 1 else np.argmax(targets, axis=1)
        with engine.inference():
            for start in range(0, len(X), capacity):
                chunk = slice(start, min(start + capacity, len(X)))
                wb = None if weights is None else weights[chunk]
                engine.step.forward(X[chunk])
                loss += engine.step.loss_delta(targets[chunk], wb, total)
                hits = np.argmax(engine.outputs(chunk.stop - start), axis=0) == classes[chunk]
                correct += float(np.sum(hits if wb is None else wb * hits, dtype=np.float64))
        self._stage = None
        return {"loss": loss, "accuracy": correct / total}

    # ------------------------------------------------------------- description

    def config(self):
        """The constructor's arguments and the layers, as plain JSON-serialisable values."""
        return {"layers": [list(layer) for layer in self.layers], "seed": self.seed,
                "dtype": self.dtype.name, "loss": self.loss,
                "optimizer": self.optimizer.config(), "connectivity": self.connectivity,
                "blocks": self.blocks if self.connectivity == "ghost" else None,
                "ghost_gradients": self.ghost_gradients, "master": self.master}

    def local_nbytes(self):
        """Bytes of the weights and biases held by this rank (all of them when serial)."""
        self._require_initialized()
        return self.parameters.nbytes("weights")

    def connectivity_mask(self, layer_index):
        """Boolean [fan_in, fan_out] edges of weight layer `layer_index` (as in get_weights())."""
        if not 0 <= layer_index < len(self.layers) - 1:
            raise ValueError(f"layer_index must lie in [0, {len(self.layers) - 1}), got {layer_index}")
        return connectivity_mask(self.sizes[layer_index], self.sizes[layer_index + 1],
                                 self.blocks, first_layer=layer_index == 0)

    def stats(self):
        """Per-iteration compute/communication seconds (max, mean over ranks), % in
        communication, messages and bytes per rank, collectives by kind (collective call)."""
        if self._exchange is None:
            raise RuntimeError("stats() describes model-parallel training (comm=...)")
        return self._exchange.stats()

    def reset_stats(self):
        if self._exchange is not None:
            self._exchange.reset_counters()

    def __repr__(self):
        parts = [f"{size} {act}" if act else str(size) for _, size, act in self.layers]
        state = f"{self.n_weights:,} weights" if self.parameters is not None else "not initialized"
        layout = ""
        if self.parallel:
            layout = (f", {self.connectivity}" + (f" blocks={self.blocks}" if self.blocks > 1 else "")
                      + f" on {self.workers} working rank{'s' * (self.workers > 1)}"
                      + (" + master" if self.master else "")
                      + (f", x{self.grid[0]} replicas" if self.grid[0] > 1 else ""))
        return (f"Network({' -> '.join(parts)}; loss={self.loss}, dtype={self.dtype}, "
                f"{self.optimizer!r}{layout}, {state})")

    # --------------------------------------------------------------- internals

    def _rate(self, learning_rate):
        if learning_rate is None:
            return self.optimizer.lr
        return check_positive("learning_rate", learning_rate)

    def _require_initialized(self):
        if self.parameters is None:
            raise RuntimeError("call initialize() first")

    def _inputs(self, X):
        self._require_initialized()
        return check_inputs(X, self.layers[0][1], self.dtype)

    def _targets(self, Y, batch):
        return check_targets(Y, batch, self.layers[-1][1], self.dtype, loss=self.loss)

