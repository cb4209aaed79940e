"""GhostMLPRegressor: scikit-learn's MLPRegressor on a ghostmlp Network."""
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import validate_data

from ghostmlp import defaults
from ghostmlp.estimators.base import ACCEPT_SPARSE, FLOATS, GhostMLPBase, store
from ghostmlp.estimators.parameters import ATTRIBUTES_DOC, NOTES_DOC, PARAMETERS_DOC
from ghostmlp.validate import choice

# loss -> (the Network's loss, scikit-learn's output activation)
LOSSES = {"squared_error": ("mse", "identity"), "poisson": ("poisson", "exp")}


class GhostMLPRegressor(RegressorMixin, GhostMLPBase):
    __doc__ = f"""Multilayer perceptron regressor: scikit-learn's MLPRegressor on a ghostmlp Network.

    An identity output per target trained on half the squared error, or an exp output
    on half the Poisson deviance (loss='poisson', y >= 0); by SGD, Adam or L-BFGS,
    serially or model/data parallel over an MPI communicator.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        loss_ and loss_curve_ report scikit-learn's values: the squared error is
        averaged over the targets as well as the samples.{PARAMETERS_DOC}
    Attributes
    ----------{ATTRIBUTES_DOC}
    Notes
    -----{NOTES_DOC}"""

    def __init__(self, loss="squared_error", hidden_layer_sizes=defaults.HIDDEN,
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

    def _validate_input(self, X, y, incremental, reset):
        """(X, the network's targets [n, n_outputs])."""
        choice("loss", self.loss, tuple(LOSSES))
        X, y = validate_data(self, X, y, accept_sparse=ACCEPT_SPARSE, multi_output=True,
                             y_numeric=True, dtype=FLOATS, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y.reshape(len(y), -1)

    @available_if(GhostMLPBase._stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the previous training."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _out_activation(self, targets):
        return LOSSES[self.loss][1]

    def _network_loss_name(self):
        return LOSSES[self.loss][0]

    def _sklearn_loss(self, loss):
        """scikit-learn averages the squared error over the targets too."""
        return loss / self.n_outputs_ if self.loss == "squared_error" else loss

    def _stratify(self, targets):
        return None

    def _score_outputs(self, targets, outputs, sample_weight=None):
        return r2_score(targets, outputs, sample_weight=sample_weight)

    def predict(self, X):
        """Predictions [n_samples] (one target) or [n_samples, n_outputs]."""
        outputs = self._forward(X)
        return outputs[:, 0] if self.n_outputs_ == 1 else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
