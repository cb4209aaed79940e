"""GhostMLPClassifier: scikit-learn's MLPClassifier on a ghostmlp Network."""
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ghostmlp.estimators.base import ACCEPT_SPARSE, FLOATS, GhostMLPBase
from ghostmlp.estimators.parameters import ATTRIBUTES_DOC, NOTES_DOC, PARAMETERS_DOC


class GhostMLPClassifier(ClassifierMixin, GhostMLPBase):
    __doc__ = f"""Multilayer perceptron classifier: scikit-learn's MLPClassifier on a ghostmlp Network.

    The log-loss of a softmax output (multiclass), of one logistic output (binary) or of
    one logistic output per label (multilabel: y an indicator matrix), trained by SGD,
    Adam or L-BFGS; serially, or model/data parallel over an MPI communicator.

    Parameters
    ----------{PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel, the label indices).{ATTRIBUTES_DOC}
    Notes
    -----{NOTES_DOC}"""

    def _validate_input(self, X, y, incremental, reset):
        """(X, the network's targets): class indices (multiclass) or 0/1 rows [n, n_outputs]."""
        X, y = validate_data(self, X, y, accept_sparse=ACCEPT_SPARSE, multi_output=True,
                             dtype=FLOATS, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or not (self.warm_start or incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        indicator = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return X, np.argmax(indicator, axis=1).astype(np.int64)
        return X, indicator.astype(np.float64)

    @available_if(GhostMLPBase._stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); classes (all the labels) is needed on the first call."""
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer().fit(
                y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True)

    def _out_activation(self, targets):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _network_loss_name(self):
        return "cross_entropy"

    def _sklearn_loss(self, loss):
        return loss

    def _stratify(self, targets):
        """scikit-learn stratifies the validation split of single-output (binary) data only."""
        return targets.astype(bool) if self.n_outputs_ == 1 else None

    def _indicator(self, outputs):
        """Outputs [n, n_outputs_] -> what LabelBinarizer.inverse_transform reads."""
        return outputs[:, 0] if self.n_outputs_ == 1 else outputs

    def _score_outputs(self, targets, outputs, sample_weight=None):
        predicted = self._label_binarizer.inverse_transform(self._indicator(outputs))
        if self._label_binarizer.y_type_ == "multiclass":
            truth = self.classes_[targets]
        else:
            truth = self._label_binarizer.inverse_transform(self._indicator(targets))
        return accuracy_score(truth, predicted, sample_weight=sample_weight)

    def predict(self, X):
        """The label of each sample [n_samples] (indicator rows for multilabel)."""
        check_is_fitted(self, "coefs_")
        return self._label_binarizer.inverse_transform(self._indicator(self._forward(X)))

    def predict_proba(self, X):
        """Probabilities [n_samples, n_classes], columns ordered as classes_."""
        outputs = self._forward(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
