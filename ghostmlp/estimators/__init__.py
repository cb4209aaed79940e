"""scikit-learn drop-ins for MLPClassifier and MLPRegressor, trained by ghostmlp."""
from ghostmlp.estimators.classifier import GhostMLPClassifier
from ghostmlp.estimators.regressor import GhostMLPRegressor

__all__ = ["GhostMLPClassifier", "GhostMLPRegressor"]
