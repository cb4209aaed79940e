"""ghostmlp.schedule: every schedule's rates against values computed by hand, their state round trip."""
import math

import pytest

from ghostmlp import schedule
from ghostmlp.schedule import Constant, Cosine, InvScaling, Plateau, Step


def rates(s, epochs, samples_per_epoch=0):
    return [s.rate(e, e * samples_per_epoch) for e in range(epochs)]


def test_constant():
    assert set(rates(Constant(0.3), 9)) == {0.3}


def test_step_milestones():
    assert rates(Step(1.0, [3, 5], gamma=0.5), 7) == [1, 1, 1, .5, .5, .25, .25]


@pytest.mark.parametrize("epochs", range(1, 42))
def test_named_step_decay_phases(epochs):
    """ceil(epochs / 2) epochs at the rate, up to epoch ceil(3 epochs / 4) at 1/5, then 1/25."""
    half, three_quarters = math.ceil(epochs / 2), math.ceil(3 * epochs / 4)
    want = [2.0] * half + [0.4] * (three_quarters - half) + [0.08] * (epochs - three_quarters)
    assert rates(schedule.resolve("step", 2.0, epochs), epochs) == pytest.approx(want, rel=1e-15)


def test_cosine_without_and_with_warmup():
    assert rates(Cosine(1.0, 4), 6) == pytest.approx([1, (1 + math.cos(math.pi / 4)) / 2, 0.5,
                                                     (1 + math.cos(3 * math.pi / 4)) / 2, 0, 0])
    warm = Cosine(0.9, 5, warmup=2, min_lr=0.1)
    assert rates(warm, 6) == pytest.approx([0.3, 0.6, 0.9, 0.1 + 0.8 * 0.75, 0.1 + 0.8 * 0.25, 0.1])


def test_invscaling_follows_the_samples_seen():
    """scikit-learn's rule: lr / (t + 1)^power_t, t the samples seen before the epoch."""
    assert rates(InvScaling(0.5, power_t=0.5), 3, samples_per_epoch=8) == pytest.approx(
        [0.5, 0.5 / 3, 0.5 / math.sqrt(17)])


def test_plateau_reduces_until_min_lr_then_refuses():
    s = Plateau(1e-3, factor=0.2, min_lr=1e-6)
    seen = [s.rate(0)]
    while s.reduce():
        seen.append(s.rate(0))
    # 1e-3 / 5^k until at or below 1e-6: k = 5 gives 3.2e-7 (scikit-learn's 'adaptive').
    assert seen == pytest.approx([1e-3 / 5 ** k for k in range(6)], rel=1e-12)


@pytest.mark.parametrize("made", [Constant(0.1), Step(0.1, [2, 4]), Cosine(0.1, 10, warmup=3),
                                  InvScaling(0.1, 0.25), Plateau(0.1, current=0.01)])
def test_config_round_trip_keeps_the_state(made):
    again = schedule.from_config(made.config())
    assert again == made and rates(again, 12, 5) == rates(made, 12, 5)


@pytest.mark.parametrize("build,message", [
    (lambda: Constant(0), "lr must be a finite number > 0"),
    (lambda: Step(0.1, [-1]), "milestones must be a non-negative integer"),
    (lambda: Cosine(0.1, 5, warmup=5), "warmup must be below epochs"),
    (lambda: Cosine(0.1, 5, min_lr=0.2), "min_lr 0.2 exceeds lr 0.1"),
    (lambda: Plateau(0.1, factor=1.0), "factor must be a finite number > 0 and < 1"),
    (lambda: schedule.resolve("linear", 0.1, 5), "schedule must be a ghostmlp.schedule.Schedule"),
    (lambda: schedule.from_config({"name": "step", "lr": 0.1}), "schedule step:"),
])
def test_bad_settings_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
