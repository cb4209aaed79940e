"""Network: the paper's MLP API (add_layer, initialize, forward, compute_loss, backward) and training."""
import contextlib
import math
import numbers

import numpy as np

from ghostmlp import _kernels
from ghostmlp.partition import check_layout, connectivity_mask, edge_count

ACTIVATIONS = {
    "sigmoid": _kernels.SIGMOID,
    "tanh": _kernels.TANH,
    "relu": _kernels.RELU,
    "identity": _kernels.IDENTITY,
    "softmax": _kernels.SOFTMAX,
}
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "identity")
LOSSES = {"mse": _kernels.MSE, "cross_entropy": _kernels.CROSS_ENTROPY}
DTYPES = ("float32", "float64")

# SeedSequence spawn keys: (INIT_STREAM, layer, neuron) draws one neuron's incoming
# weights; (SHUFFLE_STREAM, epoch) orders one epoch. Neither depends on the rank count.
INIT_STREAM, SHUFFLE_STREAM = 1, 2
PREDICT_CHUNK = 1024


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _dtype_name(dtype):
    try:
        return None if dtype is None else np.dtype(dtype).name
    except TypeError:
        return None


def _check_positive(name, value, allow_zero=False, upper=math.inf):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero) or value >= upper):
        bound = ">= 0" if allow_zero else "> 0"
        limit = "" if upper == math.inf else f" and < {upper}"
        raise ValueError(f"{name} must be a finite number {bound}{limit}, got {value!r}")
    return float(value)


class Network:
    """A multilayer perceptron: one input layer, hidden layers, one output layer.

    Conventions: the loss of a batch is the mean over its samples of the per-sample
    loss; the squared loss ("mse", the paper's eq. 4) of a sample is
    1/2 sum_k (y'_k - y_k)^2, the cross-entropy -sum_k y_k log y'_k (softmax output) or
    -sum_k [y_k log y'_k + (1 - y_k) log(1 - y'_k)] (sigmoid output). Targets are class
    indices ``y[B]`` or rows ``Y[B, n_out]`` (one-hot or soft). Weights are
    ``W[fan_in, fan_out]``, biases ``b[fan_out]``. The update is SGD (paper eq. 9) with
    optional momentum and L2 weight decay: V := m V - lr (g + wd W), W := W + V.

    Model parallelism (MPI): with `comm`, every rank holds a slice of every layer.
    connectivity="dense" computes exactly the serial network on any number of ranks;
    "ghost" is the paper's topology: each layer cut into `blocks` blocks (default: the
    number of working ranks), block k seeing block k of the previous layer plus its two
    ghost neurons, the first hidden layer seeing the whole input. ghost_gradients="exact"
    returns the ghosts' gradients to their owners, "local" treats ghosts as constants.
    master=True keeps rank 0 free of neurons: it gathers the outputs and the loss.
    Every rank must make the same calls with the same data.
    """

    def __init__(self, seed=0, dtype="float32", loss="mse", learning_rate=0.1,
                 momentum=0.0, weight_decay=0.0, comm=None, connectivity="dense",
                 blocks=None, ghost_gradients="exact", master=False):
        if not _is_integer(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if _dtype_name(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
        if comm is not None and not hasattr(comm, "Get_size"):
            raise ValueError(f"comm must be an mpi4py communicator or None, got {comm!r}")
        if connectivity not in ("dense", "ghost"):
            raise ValueError(f"connectivity must be 'dense' or 'ghost', got {connectivity!r}")
        if ghost_gradients not in ("exact", "local"):
            raise ValueError(f"ghost_gradients must be 'exact' or 'local', got {ghost_gradients!r}")
        if blocks is not None and (not _is_integer(blocks) or blocks < 1):
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
        if blocks is not None and connectivity == "dense":
            raise ValueError("blocks applies to connectivity='ghost' only")
        ranks = comm.Get_size() if comm is not None else 1
        if master and ranks < 2:
            raise ValueError(f"master=True needs at least 2 ranks, got {ranks}")
        self.comm, self.connectivity, self.master = comm, connectivity, bool(master)
        self.ghost_gradients = ghost_gradients
        self.workers = ranks - self.master
        self.blocks = (blocks or self.workers) if connectivity == "ghost" else 1
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.loss = loss
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        self.momentum = _check_positive("momentum", momentum, allow_zero=True, upper=1)
        self.weight_decay = _check_positive("weight_decay", weight_decay, allow_zero=True)
        self.layers = []            # (kind, size, activation); the input's activation is None
        self.epochs_trained = 0
        self.steps_trained = 0
        # The input normalisation the network was trained with (a ghostmlp.data.Normaliser),
        # kept for checkpoints and the command line; the Network never applies it itself.
        self.normaliser = None
        self._weights = None        # serial: [(W[fan_in, fan_out], b[fan_out])]
        self._model = None          # model parallel: a ModelParallel
        self._velocities = None
        self._stack = None
        self._capacity = 0
        self._stage = None          # what the last Listing-1 call left: "forward" or "loss"

    # ------------------------------------------------------------ architecture

    def add_layer(self, kind, size, activation=None):
        """Append a layer: "input" first, then any "hidden", then one "output"."""
        if self._initialized:
            raise ValueError("add_layer: the network is already initialized")
        if kind not in ("input", "hidden", "output"):
            raise ValueError(f"add_layer: kind must be 'input', 'hidden' or 'output', got {kind!r}")
        if not _is_integer(size) or size < 1:
            raise ValueError(f"add_layer: size must be a positive integer, got {size!r}")
        kinds = [k for k, _, _ in self.layers]
        if (kind == "input") != (not kinds):
            raise ValueError("add_layer: the first layer, and only the first, is 'input'")
        if "output" in kinds:
            raise ValueError("add_layer: no layer may follow the 'output' layer")
        if kind == "input":
            if activation is not None:
                raise ValueError("add_layer: the input layer takes no activation")
        else:
            allowed = HIDDEN_ACTIVATIONS if kind == "hidden" else OUTPUT_ACTIVATIONS
            activation = activation or allowed[0]
            if activation not in allowed:
                raise ValueError(f"add_layer: a {kind} layer's activation must be one of "
                                 f"{allowed}, got {activation!r}")
        self.layers.append((kind, int(size), activation))
        return self

    @property
    def _initialized(self):
        return self._weights is not None or self._model is not None

    @property
    def parallel(self):
        """True when the network is spread over MPI ranks (comm given, ghost, or master)."""
        return self.comm is not None or self.connectivity == "ghost"

    @property
    def sizes(self):
        """Neurons per layer, input first."""
        return [size for _, size, _ in self.layers]

    @property
    def n_weights(self):
        """Number of connection weights (biases not counted) present in the topology.

        Dense: the paper's Table I counts; ghost networks with K > 1 blocks have fewer.
        """
        sizes = self.sizes
        return sum(edge_count(a, b, self.blocks, first_layer=index == 0)
                   for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def initialize(self):
        """Glorot-uniform weights, zero biases; each neuron's weights from its own stream.

        Neuron j of layer l (input = layer 0) draws its fan_in weights, in order, from
        U(-r, r) with r = sqrt(6 / (fan_in + fan_out)), using the generator seeded by
        ``SeedSequence(seed, spawn_key=(1, l, j))``: the network depends only on the seed.
        """
        return self._build(draw=True)

    def _build(self, draw):
        """Lay out the weights, drawn as initialize() says, or zeros for a checkpoint to fill."""
        kinds = [k for k, _, _ in self.layers]
        if len(kinds) < 2 or kinds[-1] != "output":
            raise ValueError("initialize: the network needs an 'input' and an 'output' layer")
        if self.loss == "cross_entropy" and self.layers[-1][2] == "identity":
            raise ValueError("initialize: loss 'cross_entropy' needs a softmax or sigmoid output")
        self._stack, self._capacity, self._stage = None, 0, None
        self.epochs_trained = self.steps_trained = 0
        if self.parallel:
            check_layout(self.sizes, self.workers, self.connectivity, self.blocks)
            from ghostmlp.parallel import ModelParallel   # imports mpi4py
            self._model = ModelParallel(
                self.comm if self.comm is not None else _comm_self(), self.sizes,
                [ACTIVATIONS[act] for _, _, act in self.layers[1:]], LOSSES[self.loss],
                self.dtype, self.seed, self.momentum, self.connectivity, self.blocks,
                self.ghost_gradients, self.master, draw)
            return self
        self._weights = []
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), 1):
            weights = np.zeros((fan_in, fan_out), dtype=self.dtype)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            for neuron in range(fan_out if draw else 0):
                stream = np.random.SeedSequence(self.seed, spawn_key=(INIT_STREAM, layer, neuron))
                weights[:, neuron] = np.random.default_rng(stream).uniform(-bound, bound, fan_in)
            self._weights.append((weights, np.zeros(fan_out, dtype=self.dtype)))
        self._velocities = ([(np.zeros_like(w), np.zeros_like(b)) for w, b in self._weights]
                            if self.momentum else None)
        return self

    def get_weights(self):
        """Copies of [(W[fan_in, fan_out], b[fan_out])], one pair per non-input layer.

        Model parallel: the full matrices on every rank (collective), zeros where the
        ghost topology has no edge.
        """
        self._require_initialized()
        if self._model is not None:
            return self._model.get_weights()
        return [(w.copy(), b.copy()) for w, b in self._weights]

    def set_weights(self, weights):
        """Copy [(W, b)] into the network (same shapes as get_weights())."""
        self._require_initialized()
        shapes = [((a, b), (b,)) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        if len(weights) != len(shapes):
            raise ValueError(f"set_weights: expected {len(shapes)} (W, b) pairs, got {len(weights)}")
        for index, ((w_shape, b_shape), (new_w, new_b)) in enumerate(zip(shapes, weights)):
            new_w, new_b = np.asarray(new_w), np.asarray(new_b)
            if new_w.shape != w_shape or new_b.shape != b_shape:
                raise ValueError(f"set_weights: pair {index} must have shapes {w_shape} and "
                                 f"{b_shape}, got {new_w.shape} and {new_b.shape}")
            if not (np.isfinite(new_w).all() and np.isfinite(new_b).all()):
                raise ValueError(f"set_weights: pair {index} holds NaN or infinite values")
        if self._model is not None:
            self._model.set_weights(weights)   # entries without an edge are ignored
            return
        for (w, b), (new_w, new_b) in zip(self._weights, weights):
            np.copyto(w, new_w)     # in place: the kernels hold pointers to these buffers
            np.copyto(b, new_b)

    # -------------------------------------------------------- the paper's loop

    def forward(self, X):
        """Output Y'[B, n_out] of a batch X[B, n_in] (a copy); keeps what backward() needs."""
        X = self._inputs(X)
        self._ensure_capacity(len(X))
        self._stack.forward(X)
        self._stage = "forward"
        return self._outputs(len(X)).T.copy()

    def compute_loss(self, Y):
        """Batch-mean loss of the last forward() against targets Y; prepares backward()."""
        if self._stage is None:
            raise RuntimeError("compute_loss: call forward(X) first")
        loss = self._stack.loss_delta(self._targets(Y, self._stack.batch))
        self._stage = "loss"
        return loss

    def backward(self):
        """Back-propagate the last compute_loss() and apply one SGD update to every layer."""
        if self._stage != "loss":
            raise RuntimeError("backward: call forward(X) and compute_loss(Y) first")
        self._stack.backward(self.learning_rate, self.momentum, self.weight_decay)
        self.steps_trained += 1
        self._stage = None

    def train_step(self, X, Y):
        """forward + loss + backward + update on one batch; returns the batch-mean loss."""
        X = self._inputs(X)
        self._ensure_capacity(len(X))
        targets = self._targets(Y, len(X))
        self._stage = None
        loss = self._stack.step(X, targets, self.learning_rate, self.momentum, self.weight_decay)
        self.steps_trained += 1
        return loss

    def gradients(self, X, Y):
        """[(dL/dW, dL/db)] of the batch-mean loss at the current weights; nothing changes."""
        X = self._inputs(X)
        self._ensure_capacity(len(X))
        self._stack.forward(X)
        self._stack.loss_delta(self._targets(Y, len(X)))
        grads = [(np.empty((a, b), self.dtype), np.empty(b, self.dtype))
                 for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self._stack.gradients([g for g, _ in grads], [g for _, g in grads])
        self._stage = None
        return grads

    # ---------------------------------------------------------------- training

    def fit(self, X, Y, epochs, batch_size, learning_rate=None, shuffle=True,
            validation=None):
        """Train for `epochs` passes over (X, Y) in minibatches; returns the history.

        The order of epoch e is a permutation drawn from ``SeedSequence(seed,
        spawn_key=(2, e))`` (e counts all epochs this network has trained), so it
        depends on the seed and the epoch only. history: {"loss": [mean training loss
        per epoch]}, plus "val_loss" and "val_accuracy" when validation=(X_val, Y_val).
        """
        self._require_initialized()
        if not _is_integer(epochs) or epochs < 1:
            raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
        if not _is_integer(batch_size) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if learning_rate is not None:
            self.learning_rate = _check_positive("learning_rate", learning_rate)
        if validation is not None and len(validation) != 2:
            raise ValueError("fit: validation must be a pair (X_val, Y_val)")
        X = self._inputs(X)
        if not np.isfinite(X).all():
            raise ValueError("fit: X holds NaN or infinite values")
        targets = self._targets(Y, len(X))
        batch_size = min(int(batch_size), len(X))
        self._ensure_capacity(batch_size)
        x_batch = np.empty((batch_size, X.shape[1]), dtype=self.dtype)
        t_batch = np.empty((batch_size,) + targets.shape[1:], dtype=targets.dtype)
        history = {"loss": []}
        for _ in range(epochs):
            order = np.arange(len(X))
            if shuffle:
                stream = np.random.SeedSequence(self.seed, spawn_key=(SHUFFLE_STREAM, self.epochs_trained))
                order = np.random.default_rng(stream).permutation(len(X))
            total = 0.0
            for start in range(0, len(X), batch_size):
                index = order[start:start + batch_size]
                xb, tb = x_batch[:len(index)], t_batch[:len(index)]
                np.take(X, index, axis=0, out=xb)
                np.take(targets, index, axis=0, out=tb)
                total += len(index) * self._stack.step(
                    xb, tb, self.learning_rate, self.momentum, self.weight_decay)
                self.steps_trained += 1
            self.epochs_trained += 1
            history["loss"].append(total / len(X))
            if validation is not None:
                scores = self.evaluate(*validation)
                history.setdefault("val_loss", []).append(scores["loss"])
                history.setdefault("val_accuracy", []).append(scores["accuracy"])
        self._stage = None
        return history

    def predict_proba(self, X):
        """Outputs Y'[n, n_out] for any number of samples, computed in chunks."""
        X = self._inputs(X)
        self._ensure_capacity(min(len(X), PREDICT_CHUNK))
        out = np.empty((len(X), self.sizes[-1]), dtype=self.dtype)
        with self._inference():
            for start in range(0, len(X), self._capacity):
                chunk = X[start:start + self._capacity]
                self._stack.forward(chunk)
                out[start:start + len(chunk)] = self._outputs(len(chunk)).T
        self._stage = None
        return out

    def predict(self, X):
        """Class indices [n]: the arg-max output neuron of each sample."""
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, Y):
        """{"loss": batch-mean loss, "accuracy": fraction of arg-max outputs equal to the class}."""
        X = self._inputs(X)
        targets = self._targets(Y, len(X))
        self._ensure_capacity(min(len(X), PREDICT_CHUNK))
        total, correct = 0.0, 0
        classes = targets if targets.ndim == 1 else np.argmax(targets, axis=1)
        with self._inference():
            for start in range(0, len(X), self._capacity):
                stop = min(start + self._capacity, len(X))
                self._stack.forward(X[start:stop])
                total += (stop - start) * self._stack.loss_delta(targets[start:stop])
                correct += int(np.sum(np.argmax(self._outputs(stop - start), axis=0)
                                      == classes[start:stop]))
        self._stage = None
        return {"loss": total / len(X), "accuracy": correct / len(X)}

    # --------------------------------------------------------------- internals

    # ------------------------------------------------- checkpoints (rows of W.T)

    def save(self, path, extra=None):
        """Write a checkpoint (see ghostmlp.checkpoint); collective over comm when parallel."""
        from ghostmlp import checkpoint
        checkpoint.save(self, path, extra)

    def own_neurons(self, layer):
        """[start, stop) of the neurons of weight layer `layer` (1 = first hidden) on this rank."""
        if not 1 <= layer < len(self.layers):
            raise ValueError(f"layer must lie in [1, {len(self.layers) - 1}], got {layer}")
        if self._model is not None:
            own = self._model.layers[layer - 1]
            return (own.start, own.stop) if self._model.exchange.is_worker else (0, 0)
        return 0, self.sizes[layer]

    def own_rows(self, layer, start, stop, velocity=False):
        """Rows [start, stop) of W.T [fan_out, fan_in] and of b, for neurons this rank owns."""
        if self._model is not None:
            return self._model.own_rows(layer, start, stop, velocity)
        w, b = (self._velocities if velocity else self._weights)[layer - 1]
        return np.ascontiguousarray(w[:, start:stop].T), b[start:stop].copy()

    def set_own_rows(self, layer, start, rows, bias, velocity=False):
        """Inverse of own_rows: W.T rows and biases for neurons start, start + 1, ..."""
        if self._model is not None:
            self._model.set_own_rows(layer, start, rows, bias, velocity)
            return
        w, b = (self._velocities if velocity else self._weights)[layer - 1]
        w[:, start:start + len(rows)] = rows.T
        b[start:start + len(rows)] = bias

    def config(self):
        """The constructor's arguments and the layers, as plain JSON-serialisable values."""
        return {"layers": [list(layer) for layer in self.layers], "seed": self.seed,
                "dtype": self.dtype.name, "loss": self.loss, "learning_rate": self.learning_rate,
                "momentum": self.momentum, "weight_decay": self.weight_decay,
                "connectivity": self.connectivity,
                "blocks": self.blocks if self.connectivity == "ghost" else None,
                "ghost_gradients": self.ghost_gradients, "master": self.master}

    def local_nbytes(self):
        """Bytes of the weights and biases held by this rank (all of them when serial)."""
        self._require_initialized()
        if self._model is not None:
            return self._model.nbytes()
        return sum(w.nbytes + b.nbytes for w, b in self._weights)

    def connectivity_mask(self, layer_index):
        """Boolean [fan_in, fan_out] edges of weight layer `layer_index` (as in get_weights())."""
        if not 0 <= layer_index < len(self.layers) - 1:
            raise ValueError(f"layer_index must lie in [0, {len(self.layers) - 1}), got {layer_index}")
        return connectivity_mask(self.sizes[layer_index], self.sizes[layer_index + 1],
                                 self.blocks, first_layer=layer_index == 0)

    def stats(self):
        """Per-iteration compute/communication seconds (max, mean over ranks), % in
        communication, messages and bytes per rank, collectives by kind (collective call)."""
        if self._model is None:
            raise RuntimeError("stats() describes model-parallel training (comm=...)")
        return self._model.stats()

    def reset_stats(self):
        if self._model is not None:
            self._model.reset_stats()

    def _inference(self):
        """Context in which forward passes are not training: stats() leaves them out."""
        return self._model.uncounted() if self._model is not None else contextlib.nullcontext()

    def _require_initialized(self):
        if not self._initialized:
            raise RuntimeError("call initialize() first")

    def _inputs(self, X):
        self._require_initialized()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.sizes[0] or len(X) == 0:
            raise ValueError(f"X must have shape [B, {self.sizes[0]}] with B >= 1, got {X.shape}")
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _targets(self, Y, batch):
        """Class indices as int64[B], or rows as dtype[B, n_out], checked against the output layer."""
        Y = np.asarray(Y)
        n_out = self.sizes[-1]
        if Y.ndim == 0:
            raise ValueError(f"Y must be class indices [B] or rows [B, {n_out}], got {Y!r}")
        if len(Y) != batch:
            raise ValueError(f"Y must have {batch} rows (one per sample of X), got {len(Y)}")
        if Y.ndim == 1:
            if not np.issubdtype(Y.dtype, np.integer):
                raise ValueError(f"Y: class indices must be integers, got dtype {Y.dtype}")
            if Y.min() < 0 or Y.max() >= n_out:
                raise ValueError(f"Y: class indices must lie in [0, {n_out}), "
                                 f"got [{Y.min()}, {Y.max()}]")
            return np.ascontiguousarray(Y, dtype=np.int64)
        if Y.ndim != 2 or Y.shape[1] != n_out:
            raise ValueError(f"Y must be class indices [B] or rows [B, {n_out}], got shape {Y.shape}")
        return np.ascontiguousarray(Y, dtype=self.dtype)

    def _ensure_capacity(self, batch):
        """(Re)allocate the neuron-major activation and delta buffers for batches up to `batch`."""
        if self._stack is not None and batch <= self._capacity:
            return
        self._capacity = batch
        if self._model is not None:
            self._model.ensure_capacity(batch)
            self._stack = self._model
            return
        sizes = self.sizes
        self._activations = [np.empty(n * batch, dtype=self.dtype) for n in sizes[1:]]
        self._deltas = [np.empty(n * batch, dtype=self.dtype) for n in sizes[1:]]
        self._inputs_t = np.empty(sizes[0] * batch, dtype=self.dtype)
        self._stack = _kernels.LayerStack(
            [w for w, _ in self._weights], [b for _, b in self._weights], self._velocities,
            self._activations, self._deltas, self._inputs_t,
            [ACTIVATIONS[act] for _, _, act in self.layers[1:]], LOSSES[self.loss])

    def _outputs(self, batch):
        """The output layer's activations of the last forward pass, as a view [n_out, B]."""
        if self._model is not None:
            return self._model.outputs(batch)
        n_out = self.sizes[-1]
        return self._activations[-1][:n_out * batch].reshape(n_out, batch)

    def __repr__(self):
        parts = [f"{size} {act}" if act else str(size) for _, size, act in self.layers]
        state = f"{self.n_weights:,} weights" if self._initialized else "not initialized"
        layout = ""
        if self.parallel:
            layout = (f", {self.connectivity}" + (f" blocks={self.blocks}" if self.blocks > 1 else "")
                      + f" on {self.workers} working rank{'s' * (self.workers > 1)}"
                      + (" + master" if self.master else ""))
        return (f"Network({' -> '.join(parts)}; loss={self.loss}, dtype={self.dtype}, "
                f"lr={self.learning_rate:g}{layout}, {state})")


def _comm_self():
    from mpi4py import MPI
    return MPI.COMM_SELF
