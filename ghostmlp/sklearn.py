"""The scikit-learn estimators' public path: GhostMLPClassifier and GhostMLPRegressor."""
from ghostmlp.estimators import GhostMLPClassifier, GhostMLPRegressor

__all__ = ["GhostMLPClassifier", "GhostMLPRegressor"]
