"""What the classifier and the regressor share: fit, partial_fit and the network behind them."""
import math
import pickle
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ghostmlp import defaults
from ghostmlp.errors import TrainingDiverged
from ghostmlp.estimators import lbfgs
from ghostmlp.estimators.initial import draw
from ghostmlp.estimators.parameters import (
    ACTIVATIONS, STOCHASTIC, batch_size, check_parameters, hidden_sizes, network_dtype, optimizer)
from ghostmlp.estimators.rows import block, blocks, row_major
from ghostmlp.network import Network
from ghostmlp.schedule import Constant, InvScaling, Plateau
from ghostmlp.train import Patience, Trainer

ACCEPT_SPARSE = ("csr", "csc")
FLOATS = (np.float64, np.float32)
# scikit-learn's output activation -> the Network's.
OUTPUT_ACTIVATIONS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity",
                      "exp": "exp"}
ADAPTIVE_FACTOR, ADAPTIVE_MIN = 0.2, 1e-6       # 'adaptive': the rate / 5 down to 1e-6
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
              "large values and need to be preprocessed.")


class SolverDiverged(TrainingDiverged, ValueError):
    """Training diverged: a ghostmlp.TrainingDiverged that is also scikit-learn's ValueError."""


class GhostMLPBase(BaseEstimator):
    """Shared parameters and training; subclasses give the targets, outputs and scores."""

    _network_loss = None        # the Network's loss for the estimator's loss

    def __init__(self, hidden_layer_sizes=defaults.HIDDEN,
                 activation=defaults.HIDDEN_ACTIVATION, *, solver="adam", alpha=1e-4,
                 batch_size=defaults.BATCH_SIZE, learning_rate="constant",
                 learning_rate_init=defaults.LEARNING_RATE, power_t=0.5,
                 max_iter=defaults.MAX_EPOCHS, shuffle=True, random_state=None,
                 tol=defaults.TOL, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=defaults.N_ITER_NO_CHANGE, max_fun=15000, dtype="auto",
                 comm=None, grid=None, connectivity="dense", blocks=None,
                 ghost_gradients="exact", master=False):
        store(self, locals())

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, sample_weight=None):
        """Train on X [n_samples, n_features] (dense or sparse) and y; returns self.

        A fresh network each call (warm_start: from the previous weights, with a fresh
        optimizer state, as scikit-learn's).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _stochastic(self):
        """True, or AttributeError: partial_fit exists for the stochastic solvers only."""
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X, y, sample_weight, incremental):
        check_parameters(self)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "coefs_") or not (self.warm_start or incremental)
        X, targets = self._validate_input(X, y, incremental, reset=first)
        X = row_major(X)
        self.n_outputs_ = targets.shape[1] if targets.ndim == 2 else len(self.classes_)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X.shape[0])
        if first:
            self._initialize(targets)
        stochastic = self.solver in STOCHASTIC
        split = None
        if stochastic and self.early_stopping:
            split = (X.shape[0], self.validation_fraction, self._stratify(targets))
        units = [X.shape[1]] + hidden_sizes(self.hidden_layer_sizes) + [self.n_outputs_]
        dtype = network_dtype(self.dtype, X, self.solver)
        weights, parts, seed = draw(check_random_state(self.random_state), self.comm,
                                    units if first else None, self.activation, dtype, split)
        if weights is None:
            weights = list(zip(self.coefs_, self.intercepts_))
        try:
            if stochastic:
                self._fit_stochastic(X, targets, weights, seed, dtype, parts, incremental,
                                     sample_weight)
            else:
                self._fit_lbfgs(X, targets, weights, seed, dtype, sample_weight)
        except TrainingDiverged as error:
            raise SolverDiverged(f"{NON_FINITE} ({error})", error.epoch, error.step,
                                 error.learning_rate) from error
        pairs = self._network.get_weights()
        if not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in pairs):
            raise SolverDiverged(NON_FINITE)
        self.coefs_ = [w for w, _ in pairs]
        self.intercepts_ = [b for _, b in pairs]
        self._weights_seen = (self.coefs_, self.intercepts_)
        return self

    def _initialize(self, targets):
        """scikit-learn's fitted attributes of a first fit, before training."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(hidden_sizes(self.hidden_layer_sizes)) + 2
        self.out_activation_ = self._out_activation(targets)
        if self.solver in STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -math.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = math.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        for name in ("_network", "_trainer", "_patience"):
            self.__dict__.pop(name, None)

    def _build(self, n_features, weights, seed, dtype, batch):
        """A Network of the estimator's layers holding `weights`, its optimizer's L2
        decay alpha / batch; it becomes self._network (collective)."""
        net = Network(seed=seed, dtype=dtype, loss=self._network_loss_name(),
                      optimizer=optimizer(self, batch), comm=self.comm, grid=self.grid,
                      connectivity=self.connectivity, blocks=self.blocks,
                      ghost_gradients=self.ghost_gradients, master=self.master)
        net.add_layer("input", n_features)
        for size in hidden_sizes(self.hidden_layer_sizes):
            net.add_layer("hidden", size, activation=ACTIVATIONS[self.activation])
        net.add_layer("output", self.n_outputs_,
                      activation=OUTPUT_ACTIVATIONS[self.out_activation_])
        try:
            net.initialize(draw=False)
        except ValueError as error:
            if not net.parallel:
                raise
            raise ValueError(f"cannot lay out layers {net.sizes} (input first) over the "
                             f"ranks: {error}") from error
        net.set_weights(weights)
        self._network = net
        return net

    def _fit_lbfgs(self, X, targets, weights, seed, dtype, sample_weight):
        net = self._build(X.shape[1], weights, seed, dtype, 1)
        objective = lbfgs.Objective(net, X, targets, self.alpha, sample_weight)
        self.n_iter_, theta = lbfgs.minimize(objective, self.max_iter, self.max_fun, self.tol,
                                             self.verbose)
        data_loss, _ = objective.data_loss(theta)
        self.loss_ = self._sklearn_loss(data_loss) + objective.penalty(theta)

    def _fit_stochastic(self, X, targets, weights, seed, dtype, parts, incremental,
                        sample_weight):
        """Epochs through the project's Trainer (partial_fit: one, continuing its state)."""
        y_val = X_val = w_val = None
        if parts is not None:
            train, held = parts
            if len(held) < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_val, y_val = X[held], targets[held]
            X, targets = X[train], targets[train]
            if sample_weight is not None:
                w_val, sample_weight = sample_weight[held], sample_weight[train]
        trainer = getattr(self, "_trainer", None) if incremental else None
        if trainer is None:
            batch = batch_size(self.batch_size, X.shape[0])
            net = self._build(X.shape[1], weights, seed, dtype, batch)
            trainer = self._trainer = Trainer(net, batch, self._schedule(), self.shuffle)
        else:
            trainer.net.set_weights(weights)
        trainer.samples = self.t_
        early = y_val is not None
        patience = self.__dict__.get("_patience")
        if patience is None:
            patience = self._patience = Patience(1, self.tol, "max" if early else "min")
        patience.n_iter_no_change = self.n_iter_no_change
        patience.tol, patience.count = self.tol, self._no_improvement_count
        score = ((lambda net, _X, _Y, _w=None: self._validation_score(net, X_val, y_val, w_val))
                 if early else None)
        history = trainer.run(
            X, targets, 1 if incremental else self.max_iter,
            validation=(_dense(X_val, dtype), y_val) if early else None,
            patience=patience, restore_best=early, score=score,
            monitor=None if early else self._training_loss, on_epoch=self._report,
            sample_weight=sample_weight)
        self.n_iter_ = len(history["loss"])
        self.t_ = trainer.samples
        self.loss_ = self.loss_curve_[-1]
        self._no_improvement_count = patience.count
        if early:
            self.best_validation_score_ = patience.best
        else:
            self.best_loss_ = min(self.best_loss_, *self.loss_curve_[-self.n_iter_:])
        if history["stopped"] != "max_epochs":
            if self.verbose:
                print(f"{'Validation score' if early else 'Training loss'} did not improve "
                      f"more than tol={self.tol:f} for {self.n_iter_no_change} consecutive "
                      "epochs. Stopping.")
        elif not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)

    def _schedule(self):
        """The Trainer's schedule for learning_rate (solver='sgd'; Adam's rate is constant)."""
        rate = self.learning_rate_init
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            return InvScaling(rate, self.power_t)
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            return Plateau(rate, factor=ADAPTIVE_FACTOR, min_lr=ADAPTIVE_MIN)
        return Constant(rate)

    def _training_loss(self, row):
        """scikit-learn's loss of the epoch: its own scaling of the mean loss, plus the L2
        penalty (of the weights at the epoch's end, where scikit-learn adds each batch's)."""
        return self._sklearn_loss(row["loss"]) + self._penalty()

    def _report(self, row):
        """After each epoch: the loss curve, validation scores and verbose lines."""
        loss = row["monitored"] if "val_score" not in row else self._training_loss(row)
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {len(self.loss_curve_)}, loss = {loss:.8f}")
        if "val_score" in row:
            self.validation_scores_.append(row["val_score"])
            if self.verbose:
                print(f"Validation score: {row['val_score']:f}")

    def _penalty(self):
        """0.5 alpha ||W||^2 / batch of the network's weights now (collective)."""
        trainer = self._trainer
        batch = trainer.batch_size
        return 0.5 * self.alpha * sum(float(np.vdot(w, w)) for w, _ in
                                      trainer.net.get_weights()) / batch

    def _validation_score(self, net, X_val, y_val, w_val):
        """scikit-learn's score on the held-out samples, weighted by w_val (NaN for
        non-finite outputs)."""
        outputs = _outputs(net, X_val)
        if not np.isfinite(outputs).all():
            return math.nan
        return float(self._score_outputs(y_val, outputs, w_val))

    # --------------------------------------------------------------- predicting

    def _forward(self, X):
        """The network's outputs [n_samples, n_outputs_] for X (dense or sparse), in X's
        dtype (float32 or float64) as scikit-learn's."""
        check_is_fitted(self, "coefs_")
        X = row_major(validate_data(self, X, accept_sparse=ACCEPT_SPARSE, dtype=FLOATS,
                                    reset=False))
        return _outputs(self._current_network(), X).astype(X.dtype, copy=False)

    def _current_network(self):
        """The network holding coefs_ and intercepts_ (rebuilt when they were replaced)."""
        seen = getattr(self, "_weights_seen", None)
        net = getattr(self, "_network", None)
        if net is None or seen is None or seen[0] is not self.coefs_ or seen[1] is not self.intercepts_:
            weights = list(zip(self.coefs_, self.intercepts_))
            net = self._build(self.coefs_[0].shape[0], weights, 0, self.coefs_[0].dtype, 1)
            self.__dict__.pop("_trainer", None)
            self._weights_seen = (self.coefs_, self.intercepts_)
        return net

    # ------------------------------------------------------------ copies, tags

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

    def __getstate__(self):
        # The network (compiled kernels, a communicator) is rebuilt from coefs_ when
        # needed; a communicator other than the predefined ones cannot be pickled.
        state = {key: value for key, value in super().__getstate__().items()
                 if key not in ("_network", "_trainer", "_patience", "_weights_seen")}
        if state.get("comm") is not None:
            try:
                pickle.dumps(state["comm"])
            except (TypeError, ValueError, pickle.PicklingError):
                state["comm"] = None
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def store(est, arguments):
    """Set the constructor's arguments as attributes, as scikit-learn's estimators do."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def _check_sample_weight(sample_weight, n):
    """sample_weight as float64[n] (scikit-learn's check: numbers, one per sample)."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if not w.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return w


def _outputs(net, X):
    """net's outputs for the rows of X (sparse: densified a block at a time)."""
    if not hasattr(X, "toarray"):
        return net.predict_proba(X)
    out = np.empty((X.shape[0], net.sizes[-1]), dtype=net.dtype)
    for start, stop in blocks(X.shape[0]):
        out[start:stop] = net.predict_proba(block(X, start, stop, net.dtype))
    return out


def _dense(X, dtype):
    """X for the Trainer."""
    return block(X, 0, X.shape[0], dtype)
