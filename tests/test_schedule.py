"""ghostmlp.schedule: the step decay against its phases counted by hand, and the constant rate."""
import math

import pytest

from ghostmlp.schedule import learning_rate_at


def test_step_decay_eight_epochs():
    assert [learning_rate_at(e, 8, 1.0, "step") for e in range(8)] == [1, 1, 1, 1, .2, .2, .04, .04]


@pytest.mark.parametrize("epochs", range(1, 42))
def test_step_decay_phases(epochs):
    """ceil(epochs / 2) epochs at the rate, up to epoch ceil(3 epochs / 4) at 1/5, then 1/25."""
    half, three_quarters = math.ceil(epochs / 2), math.ceil(3 * epochs / 4)
    want = [2.0] * half + [0.4] * (three_quarters - half) + [0.08] * (epochs - three_quarters)
    assert [learning_rate_at(e, epochs, 2.0, "step") for e in range(epochs)] == want


def test_none_is_constant():
    assert {learning_rate_at(e, 9, 0.3, "none") for e in range(9)} == {0.3}


def test_rejects_unknown_decay():
    with pytest.raises(ValueError, match="decay must be one of"):
        learning_rate_at(0, 10, 1.0, "cosine")
