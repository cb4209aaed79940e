"""Learning-rate schedules: the rate of each epoch as a pure function of the epoch."""

DECAYS = ("step", "none")
# Step decay, as (end of the phase as a fraction of the epochs, factor on the rate): the first
# half of the epochs at the given rate, the third quarter at 1/5 of it, the last at 1/25.
STEP_DECAY = ((0.5, 1.0), (0.75, 0.2), (1.0, 0.04))


def learning_rate_at(epoch, epochs, rate, decay):
    """The rate of epoch `epoch` (0-based) of `epochs`, for a base `rate` and a decay of DECAYS.

    "none": rate throughout; "step": rate while epoch < epochs / 2, rate / 5 while
    epoch < 3 epochs / 4, rate / 25 after.
    """
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    if decay == "none":
        return rate
    return next(rate * factor for end, factor in STEP_DECAY if epoch < end * epochs or end == 1.0)
