"""The estimators' parameters: their checks and what each maps to in ghostmlp (network, optimizer, batch)."""
import math
import numbers
import warnings

import numpy as np

from ghostmlp import defaults
from ghostmlp.optim import SGD, Adam
from ghostmlp.validate import check_positive, choice, dtype_name, is_integer

# scikit-learn's hidden activation -> the Network's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("sgd", "adam", "lbfgs")
STOCHASTIC = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


def hidden_sizes(value):
    """hidden_layer_sizes (an int or a sequence of ints) -> list of positive ints."""
    sizes = [value] if isinstance(value, numbers.Integral) else value
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(is_integer(s) and s >= 1 for s in sizes):
        raise ValueError("hidden_layer_sizes must be a positive integer or a sequence of "
                         f"positive integers, got {value!r}")
    return [int(s) for s in sizes]


def _check_fraction(name, value, closed_top=False):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value
            or value > 1 or (value == 1 and not closed_top)):
        raise ValueError(f"{name} must be a number in [0, {1 if closed_top else '1)'}"
                         f"{']' if closed_top else ''}, got {value!r}")


def check_parameters(est):
    """Raise a ValueError naming the first of est's parameters that scikit-learn would refuse."""
    hidden_sizes(est.hidden_layer_sizes)
    choice("activation", est.activation, tuple(ACTIVATIONS))
    choice("solver", est.solver, SOLVERS)
    choice("learning_rate", est.learning_rate, LEARNING_RATES)
    check_positive("alpha", est.alpha, allow_zero=True)
    if est.batch_size != "auto" and not (is_integer(est.batch_size) and est.batch_size >= 1):
        raise ValueError(f"batch_size must be 'auto' or a positive integer, got {est.batch_size!r}")
    check_positive("learning_rate_init", est.learning_rate_init)
    check_positive("power_t", est.power_t, allow_zero=True)
    check_positive("epsilon", est.epsilon)
    check_positive("tol", est.tol, allow_zero=True)
    for name in ("max_iter", "max_fun"):
        value = getattr(est, name)
        if not is_integer(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    no_change = est.n_iter_no_change
    if not ((is_integer(no_change) and no_change >= 1) or no_change == math.inf):
        raise ValueError(f"n_iter_no_change must be a positive integer or numpy.inf, "
                         f"got {no_change!r}")
    _check_fraction("momentum", est.momentum, closed_top=True)
    for name in ("validation_fraction", "beta_1", "beta_2"):
        _check_fraction(name, getattr(est, name))
    for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {getattr(est, name)!r}")
    if (not isinstance(est.verbose, (numbers.Integral, np.bool_))) or est.verbose < 0:
        raise ValueError(f"verbose must be a boolean or a non-negative integer, got {est.verbose!r}")


def batch_size(value, n_samples):
    """The minibatch of a stochastic solver: 'auto' is min(200, n); larger than n is clipped."""
    if value == "auto":
        return defaults.batch_size(n_samples)
    if value > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped", UserWarning)
    return min(int(value), n_samples)


def network_dtype(dtype, X, solver):
    """The Network's dtype. "auto": ghostmlp's float32 for the stochastic solvers, X's rule
    for 'lbfgs'; None (X's rule): float32 when X is float32, float64 otherwise."""
    if dtype == "auto":
        dtype = defaults.DTYPE if solver in STOCHASTIC else None
    if dtype is None:
        return np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
    if dtype_name(dtype) not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'auto', None, 'float32' or 'float64', got {dtype!r}")
    return np.dtype(dtype)


def optimizer(est, batch):
    """ghostmlp's optimizer for est's solver: alpha becomes weight_decay = alpha / batch.

    'sgd': SGD(learning_rate_init, momentum, nesterov); 'adam': Adam(learning_rate_init,
    (beta_1, beta_2), epsilon); 'lbfgs' trains without one (plain SGD, never stepped).
    """
    decay = est.alpha / batch
    if est.solver == "adam":
        return Adam(est.learning_rate_init, betas=(est.beta_1, est.beta_2), eps=est.epsilon,
                    weight_decay=decay)
    if est.solver == "sgd":
        momentum = float(est.momentum)
        return SGD(est.learning_rate_init, momentum=momentum,
                   nesterov=bool(est.nesterovs_momentum) and momentum > 0, weight_decay=decay)
    return SGD(est.learning_rate_init)


PARAMETERS_DOC = """
    hidden_layer_sizes : int or array-like of int, default=(100,)
        Neurons of each hidden layer, input side first; () gives no hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers ('logistic' is the sigmoid).
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'sgd' is ghostmlp.optim.SGD(learning_rate_init, momentum, nesterovs_momentum),
        'adam' is ghostmlp.optim.Adam(learning_rate_init, (beta_1, beta_2), epsilon),
        both in PyTorch's form (see Notes); 'lbfgs' is full-batch L-BFGS-B
        (scipy.optimize.minimize) on the network's loss and gradients.
    alpha : float, default=1e-4
        L2 penalty ``0.5 * alpha * ||W||^2 / B`` (weights only, not biases) added to the
        mean loss of a batch of B samples: ghostmlp's ``weight_decay = alpha / B`` for
        the batch size B. scikit-learn divides by the size of each batch, ghostmlp by
        the configured one: the last, smaller batch of an epoch is decayed less than
        scikit-learn decays it. With sample weights B is their sum.
    batch_size : int or 'auto', default='auto'
        Minibatch of the stochastic solvers: 'auto' is min(200, n_samples); larger than
        n_samples is clipped (with a warning). L-BFGS uses the whole data set.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        The rate schedule of solver='sgd': constant; learning_rate_init / (t + 1) **
        power_t with t the samples seen at the end of the previous epoch; or divided by
        5 each time n_iter_no_change epochs fail to improve by tol, stopping when it
        falls below 1e-6. Adam keeps learning_rate_init.
    learning_rate_init : float, default=1e-3
        Initial step size of 'sgd' and 'adam'.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Epochs of the stochastic solvers; iterations of L-BFGS.
    shuffle : bool, default=True
        Visit the samples in a new order every epoch (the order depends on random_state
        and the epoch only, never on the ranks; it is not scikit-learn's order).
    random_state : None, int or RandomState, default=None
        Draws the initial weights (the same numbers as scikit-learn's for the same
        random_state), the validation split and the seed of the epoch orders.
    tol : float, default=1e-4
        Training stops when the training loss (or, with early_stopping, the validation
        score) fails to improve by tol for more than n_iter_no_change epochs; gtol of
        L-BFGS.
    verbose : bool or int, default=False
        Print the loss of every epoch (and the validation score).
    warm_start : bool, default=False
        fit() continues from the previous fit's weights and optimizer state.
    momentum : float in [0, 1], default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for 'sgd' when momentum > 0.
    early_stopping : bool, default=False
        Hold out validation_fraction of the training data (stratified for single-label
        classification), stop on its score, and keep the weights of its best epoch.
    validation_fraction : float in [0, 1), default=0.1
        Share of the training data held out with early_stopping.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's denominator term (see Notes).
    n_iter_no_change : int or numpy.inf, default=10
        Epochs without an improvement of tol tolerated before stopping.
    max_fun : int, default=15000
        Most loss evaluations of L-BFGS.
    dtype : 'auto', None, 'float32' or 'float64', default='auto'
        Precision of the network and of coefs_ (outputs come in X's dtype). 'auto':
        float32 for 'sgd' and 'adam' (ghostmlp's shared default: about twice float64's
        speed, and minibatch noise dwarfs its rounding), X's rule for 'lbfgs' (a line
        search needs float64 gradients). None is scikit-learn's rule: float32 X stays
        float32, anything else is float64 — with it the stochastic solvers reproduce
        MLPClassifier's numbers (see Notes).
    comm : mpi4py communicator, default=None
        None runs on this process alone; with a communicator every rank must make the
        same calls with the same data and gets the full results.
    grid : (D, M), default=None
        D replicas of M model ranks over comm's ranks (see ghostmlp.Network); None is
        (1, size): model parallel.
    connectivity : {'dense', 'ghost'}, default='dense'
        'dense' computes exactly the serial network on any grid; 'ghost' is the block
        topology with ghost neurons (see ghostmlp.Network).
    blocks : int, default=None
        Blocks per layer for connectivity='ghost' (None: the working ranks).
    ghost_gradients : {'exact', 'local'}, default='exact'
    master : bool, default=False
        Keep each replica's first rank free of neurons.
"""

NOTES_DOC = """
    SGD and Adam follow PyTorch's formulas, which equal scikit-learn's at a constant
    rate: SGD keeps the velocity of the gradients (buf := m buf + g, W -= lr buf) where
    scikit-learn keeps that of the steps (v := m v - lr g, W += v), so the two differ
    once the rate changes ('invscaling', 'adaptive'). Adam divides by
    ``sqrt(v_hat) + epsilon`` where scikit-learn divides by ``sqrt(v) + epsilon``
    (``v_hat = v / (1 - beta_2^t)``): epsilon weighs ``1 / sqrt(1 - beta_2^t)`` times
    more in scikit-learn, noticeably only in the first steps.

    clone() shares the communicator rather than copying it. Pickling keeps the weights
    and restores a serial network; a communicator other than MPI.COMM_WORLD and
    MPI.COMM_SELF is restored as comm=None.
"""

ATTRIBUTES_DOC = """
    coefs_ : list of ndarray, shapes (fan_in, fan_out)
        Copies of the network's weights W of each layer, in its dtype; replacing them
        (or intercepts_) is seen by the next predict or partial_fit.
    intercepts_ : list of ndarray, shapes (fan_out,)
    loss_ : float
        The training loss (with the L2 term) of the last epoch, or L-BFGS's at its end.
    loss_curve_ : list of float
        loss_ of each epoch (stochastic solvers). The L2 term is that of the weights at
        the end of the epoch (scikit-learn's: before each batch).
    best_loss_ : float or None
        The least of loss_curve_ (None with early_stopping).
    validation_scores_ : list of float or None
        The held-out score of each epoch with early_stopping (accuracy or R2), else None.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs (iterations of L-BFGS) of the last fit.
    t_ : int
        Training samples seen, over every fit and partial_fit.
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
    out_activation_ : str
        'softmax', 'logistic', 'identity' or 'exp'.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
"""
