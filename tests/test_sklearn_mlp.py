"""scikit-learn's own test module for its MLPs, sklearn/neural_network/tests/test_mlp.py, run
against GhostMLPClassifier and GhostMLPRegressor (its source, with MLPClassifier and
MLPRegressor bound to them).

Excluded, each for reaching into scikit-learn's private internals:

"""
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
OURS = ("from ghostmlp.sklearn import GhostMLPClassifier as MLPClassifier, "
        "GhostMLPRegressor as MLPRegressor")

EXCLUDED = {}


def _load():
    text = SOURCE.read_text()
    assert IMPORT in text, f"{SOURCE} no longer imports {IMPORT!r}"
    namespace = {"__name__": "sklearn_test_mlp", "__file__": str(SOURCE)}
    exec(compile(text.replace(IMPORT, OURS), str(SOURCE), "exec"), namespace)
    return {name: value for name, value in namespace.items()
            if name.startswith("test_") and name not in EXCLUDED}


globals().update(_load())


@pytest.fixture
def global_random_seed():
    """scikit-learn's conftest fixture, at its default seed."""
    return 42
