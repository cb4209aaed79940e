"""scikit-learn estimators around Network: GhostMLPClassifier and GhostMLPRegressor."""
import numbers
import pickle

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ghostmlp.network import Network
from ghostmlp.optim import from_config

__all__ = ["GhostMLPClassifier", "GhostMLPRegressor"]

_FLOATS = (np.float64, np.float32)


def _hidden_sizes(hidden_layer_sizes):
    """hidden_layer_sizes (an int or a sequence of ints) -> list of positive ints."""
    if isinstance(hidden_layer_sizes, numbers.Integral):
        sizes = [hidden_layer_sizes]
    else:
        try:
            sizes = list(hidden_layer_sizes)
        except TypeError:
            sizes = None
    if sizes is None or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                            for s in sizes):
        raise ValueError("hidden_layer_sizes must be a positive integer or a sequence of "
                         f"positive integers, got {hidden_layer_sizes!r}")
    return [int(s) for s in sizes]


def _seed(random_state):
    """random_state -> the Network's non-negative integer seed (None means 0)."""
    if random_state is None:
        return 0
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max))
    raise ValueError("random_state must be None, a non-negative integer, a "
                     f"numpy.random.RandomState or a numpy.random.Generator, got {random_state!r}")


class _GhostMLPBase(BaseEstimator):
    """Shared parameters, network construction, training and pickling."""

    _default_loss = None
    _output_activation = None

    def __init__(self, hidden_layer_sizes=(100,), activation="sigmoid", loss=None,
                 learning_rate=0.1, momentum=0.9, weight_decay=1e-4, epochs=50,
                 batch_size=32, shuffle=True, random_state=None, dtype="float64",
                 comm=None, connectivity="dense", blocks=None, ghost_gradients="exact",
                 master=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.comm = comm
        self.connectivity = connectivity
        self.blocks = blocks
        self.ghost_gradients = ghost_gradients
        self.master = master

    def _fit_network(self, X, targets, n_outputs, **attributes):
        """Build a fresh Network for X and train it on targets; then set the fitted
        attributes (network_, loss_curve_, n_iter_ and `attributes`)."""
        sizes = _hidden_sizes(self.hidden_layer_sizes)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        loss = self._default_loss if self.loss is None else self.loss
        net = Network(seed=_seed(self.random_state), dtype=self.dtype, loss=loss,
                      learning_rate=self.learning_rate, momentum=self.momentum,
                      weight_decay=self.weight_decay, comm=self.comm,
                      connectivity=self.connectivity, blocks=self.blocks,
                      ghost_gradients=self.ghost_gradients, master=self.master)
        net.add_layer("input", X.shape[1])
        for size in sizes:
            net.add_layer("hidden", size, activation=self.activation)
        net.add_layer("output", n_outputs, activation=self._output_activation)
        try:
            net.initialize()
        except ValueError as error:
            if not net.parallel:
                raise
            raise ValueError(f"cannot lay out layers {net.sizes} (input first) over the "
                             f"ranks: {error}") from error
        history = net.fit(X, targets, max_epochs=int(self.epochs),
                          batch_size=int(self.batch_size), shuffle=bool(self.shuffle),
                          n_iter_no_change=None)
        if not np.isfinite(history["loss"][-1]):
            raise ValueError(f"training diverged: the loss of epoch {net.epochs_trained} is "
                             f"{history['loss'][-1]}; lower learning_rate or scale the data")
        for name, value in attributes.items():
            setattr(self, name, value)
        self.network_ = net
        self.loss_curve_ = [float(v) for v in history["loss"]]
        self.n_iter_ = int(self.epochs)
        return self

    def _outputs(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=_FLOATS)
        return self.network_.predict_proba(X).astype(np.float64, copy=False)

    def __sklearn_clone__(self):
        # clone() deep-copies parameters, but only the predefined communicators can be
        # copied: clone a twin without one, and share the communicator.
        if self.comm is None:
            return super().__sklearn_clone__()
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__, comm=None)
        new = BaseEstimator.__sklearn_clone__(twin)
        new.comm = self.comm
        return new

    # A Network holds compiled kernels that cannot be pickled: pickle its layers and
    # weights instead and rebuild a serial network from them. Communicators other than
    # the predefined ones cannot be pickled either: they become None.
    def __getstate__(self):
        state = dict(super().__getstate__())
        if state.get("comm") is not None:
            try:
                pickle.dumps(state["comm"])
            except (TypeError, ValueError, pickle.PicklingError):
                state["comm"] = None
        net = state.get("network_")
        if isinstance(net, Network):
            state["network_"] = {
                "layers": list(net.layers), "seed": net.seed, "dtype": net.dtype.name,
                "loss": net.loss, "optimizer": net.optimizer.config(),
                "epochs_trained": net.epochs_trained, "weights": net.get_weights(),
            }
        return state

    def __setstate__(self, state):
        spec = state.get("network_")
        if isinstance(spec, dict):
            net = Network(seed=spec["seed"], dtype=spec["dtype"], loss=spec["loss"],
                          optimizer=from_config(spec["optimizer"]))
            for kind, size, activation in spec["layers"]:
                net.add_layer(kind, size, activation=activation)
            net.initialize()
            net.set_weights(spec["weights"])
            net.epochs_trained = spec["epochs_trained"]
            state = dict(state, network_=net)
        super().__setstate__(state)


_DOC = """{SUMMARY}

    Runs serially by default and model parallel when given an MPI communicator.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Neurons of each hidden layer, input side first; () gives no hidden layer.
    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        Activation of the hidden layers.
    loss : {LOSSES}, default=None
        Training loss; None means "{DEFAULT_LOSS}".
    learning_rate : float, default=0.1
        SGD step size (constant over the epochs).
    momentum : float in [0, 1), default=0.9
    weight_decay : float >= 0, default=1e-4
        L2 penalty added to the gradient of every weight.
    epochs : int, default=50
        Passes over the training data; ``n_iter_`` reports it.
    batch_size : int, default=32
        Minibatch size (clipped to the number of samples).
    shuffle : bool, default=True
        Visit the samples in a new seeded order every epoch.
    random_state : None, int, RandomState or Generator, default=None
        Seed of the weight initialization and of the epoch orders. None means seed 0,
        so that fitting twice gives the same model; a RandomState or Generator draws a
        seed from itself at each fit.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the weights and the computation; outputs are returned as float64.
    comm : mpi4py communicator, default=None
        None runs on this process alone; a communicator spreads every layer over its
        ranks (model parallel). Every rank must call fit/predict with the same data; every
        rank gets the full results.
    connectivity : {"dense", "ghost"}, default="dense"
        "dense" computes exactly the serial network on any number of ranks; "ghost" is
        the block topology with ghost neurons (see ghostmlp.Network).
    blocks : int, default=None
        Blocks per layer for connectivity="ghost" (None: the number of working ranks).
    ghost_gradients : {"exact", "local"}, default="exact"
    master : bool, default=False
        Keep rank 0 free of neurons (needs at least 2 ranks).

    Attributes
    ----------
    network_ : ghostmlp.Network
        The trained network.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_iter_ : int
        Epochs trained (equal to ``epochs``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names (e.g. a pandas DataFrame).
{ATTRIBUTES}
    Notes
    -----
    With a communicator, every working rank must own at least one neuron of every layer,
    the output layer ({OUTPUTS} neurons) included; with connectivity="ghost", every
    block must.

    clone() shares the communicator rather than copying it. Pickling (and
    copy.deepcopy) of a fitted estimator stores the network's weights and restores a
    serial network computing the same function (zeros stand for the edges a ghost
    topology lacks); with a communicator this gathers the weights, a collective call:
    every rank must pickle. A communicator other than MPI.COMM_WORLD and MPI.COMM_SELF
    cannot be pickled and is restored as comm=None.
"""


def _doc(**fields):
    text = _DOC
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    return text


class GhostMLPClassifier(ClassifierMixin, _GhostMLPBase):
    __doc__ = _doc(
        SUMMARY="Multilayer perceptron classifier trained by minibatch SGD.\n\n    The "
                "output layer is a softmax with one neuron per class, 2 for 2 classes.",
        LOSSES='{"cross_entropy", "mse"}', DEFAULT_LOSS="cross_entropy", OUTPUTS="n_classes",
        ATTRIBUTES="    classes_ : ndarray of shape (n_classes,)\n"
                   "        The class labels; output neuron k stands for ``classes_[k]``.\n")

    _default_loss = "cross_entropy"
    _output_activation = "softmax"

    def fit(self, X, y):
        """Train a fresh network on X [n_samples, n_features] and class labels y [n_samples]."""
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        check_classification_targets(y)
        classes, indices = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("GhostMLPClassifier needs samples of at least 2 classes, but the "
                             f"data holds only one class: {classes[0]!r}")
        return self._fit_network(X, indices.astype(np.int64), len(classes), classes_=classes)

    def predict_proba(self, X):
        """Class probabilities [n_samples, n_classes], columns ordered as classes_."""
        return self._outputs(X)

    def predict_log_proba(self, X):
        """Logarithm of predict_proba(X)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class label of each sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class GhostMLPRegressor(RegressorMixin, _GhostMLPBase):
    __doc__ = _doc(
        SUMMARY="Multilayer perceptron regressor trained by minibatch SGD.\n\n    The "
                "output layer is linear (identity) with one neuron per target.",
        LOSSES='{"mse"}', DEFAULT_LOSS="mse", OUTPUTS="n_targets",
        ATTRIBUTES="    n_outputs_ : int\n        Number of targets.\n")

    _default_loss = "mse"
    _output_activation = "identity"

    def fit(self, X, y):
        """Train a fresh network on X [n_samples, n_features] and y [n_samples] or
        [n_samples, n_targets]."""
        X, y = validate_data(self, X, y, dtype=_FLOATS, multi_output=True, y_numeric=True)
        if self.loss is not None and self.loss != "mse":
            raise ValueError(f"GhostMLPRegressor supports loss 'mse' only, got {self.loss!r}")
        targets = y.reshape(len(y), -1)
        return self._fit_network(X, targets, targets.shape[1], n_outputs_=targets.shape[1],
                                 _y_1d=y.ndim == 1)

    def predict(self, X):
        """Predictions [n_samples] (y was 1-D) or [n_samples, n_targets]."""
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

