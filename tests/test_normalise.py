"""ghostmlp.normalise: the Normaliser's statistics, dtypes, saved state and errors."""
import json

import numpy as np
import pytest

from ghostmlp.datasets import synthetic
from ghostmlp.normalise import Normaliser


KNOWN = np.array([[1.0, 10.0, 5.0], [3.0, 10.0, 7.0], [5.0, 10.0, 12.0]])


def test_normaliser_standard_statistics():
    norm = Normaliser().fit(KNOWN)
    np.testing.assert_allclose(norm.shift, [3.0, 10.0, 8.0])
    np.testing.assert_allclose(norm.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(26 / 3)])
    Z = norm.transform(KNOWN)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Z.std(axis=0), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(Z[:, 1], 0.0)                    # constant column: exactly 0
    np.testing.assert_allclose(norm.transform([[3.0, 11.0, 8.0]]), [[0.0, 1.0, 0.0]])


def test_normaliser_minmax_uses_the_training_split_only():
    norm = Normaliser("minmax")
    np.testing.assert_allclose(norm.fit_transform(KNOWN), [[0, 0, 0], [0.5, 0, 2 / 7], [1, 0, 1]])
    np.testing.assert_allclose(norm.transform([[9.0, 10.0, -2.0]]), [[2.0, 0.0, -1.0]])


def test_normaliser_preserves_dtype():
    norm = Normaliser().fit(KNOWN.astype(np.float32))
    assert norm.transform(KNOWN.astype(np.float32)).dtype == np.float32
    assert norm.transform(KNOWN).dtype == np.float64
    assert norm.transform(KNOWN.astype(np.int32)).dtype == np.float64


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_normaliser_round_trips_through_json(kind):
    X, _ = synthetic(30, 5, 2, seed=1)
    norm = Normaliser(kind).fit(X)
    state = json.loads(json.dumps(norm.to_dict()))
    assert state["kind"] == kind and len(state["shift"]) == 5
    again = Normaliser.from_dict(state)
    np.testing.assert_array_equal(again.transform(X), norm.transform(X))
    assert repr(again) == f"Normaliser({kind!r}, fitted on 5 columns)"


def test_normaliser_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        Normaliser("robust")
    with pytest.raises(ValueError, match="call fit"):
        Normaliser().transform(KNOWN)
    with pytest.raises(ValueError, match="nothing to save"):
        Normaliser().to_dict()
    norm = Normaliser().fit(KNOWN)
    for X in (KNOWN[:, :2], KNOWN[0]):
        with pytest.raises(ValueError, match="fitted on 3 columns"):
            norm.transform(X)
    for X in (np.zeros((0, 3)), np.zeros(3), [["a"]], [[1.0, np.nan]]):
        with pytest.raises(ValueError, match="Normaliser.fit"):
            Normaliser().fit(X)
    for state in ({"kind": "standard", "shift": [0.0]}, {"kind": "x", "shift": [0], "scale": [1]},
                  {"kind": "minmax", "shift": [0, 1], "scale": [1]},
                  {"kind": "minmax", "shift": [0], "scale": [0]}):
        with pytest.raises(ValueError, match="not a Normaliser state"):
            Normaliser.from_dict(state)
