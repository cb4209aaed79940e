"""Learning-rate schedules: the rate of each epoch, from the epoch, the samples seen and the schedule's state."""
import math

from ghostmlp.validate import check_count, check_positive

# Step decay of the command line's `--schedule step`: the first half of the epochs at the
# rate, the third quarter at 1/5 of it, the last at 1/25.
STEP_FRACTIONS, STEP_GAMMA = (0.5, 0.75), 0.2


class Schedule:
    """Base class. rate(epoch, samples): the rate of epoch `epoch` (0-based, over all the
    network's epochs) after `samples` training samples; reduce(): lower the rate after a
    plateau (True) or refuse (False: training stops); config(): arguments and state."""

    name = None

    def rate(self, epoch, samples=0):
        raise NotImplementedError

    def reduce(self):
        return False

    def config(self):
        return {"name": self.name, **vars(self)}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()


class Constant(Schedule):
    """rate = lr."""

    name = "constant"

    def __init__(self, lr):
        self.lr = check_positive("lr", lr)

    def rate(self, epoch, samples=0):
        return self.lr


class Step(Schedule):
    """rate = lr * gamma^m, m the number of milestones (epochs) <= epoch."""

    name = "step"

    def __init__(self, lr, milestones, gamma=0.1):
        self.lr = check_positive("lr", lr)
        self.milestones = sorted(check_count("milestones", m, allow_zero=True) for m in milestones)
        self.gamma = check_positive("gamma", gamma, upper=1)

    def rate(self, epoch, samples=0):
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)


class Cosine(Schedule):
    """Linear warm-up lr (e + 1) / (warmup + 1) for e < warmup, then cosine annealing
    min_lr + (lr - min_lr) (1 + cos(pi (e - warmup) / (epochs - warmup))) / 2; min_lr after."""

    name = "cosine"

    def __init__(self, lr, epochs, warmup=0, min_lr=0.0):
        self.lr = check_positive("lr", lr)
        self.epochs = check_count("epochs", epochs)
        self.warmup = check_count("warmup", warmup, allow_zero=True)
        if self.warmup >= self.epochs:
            raise ValueError(f"warmup must be below epochs ({epochs}), got {warmup}")
        self.min_lr = check_positive("min_lr", min_lr, allow_zero=True)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr {min_lr} exceeds lr {lr}")

    def rate(self, epoch, samples=0):
        if epoch < self.warmup:
            return self.lr * (epoch + 1) / (self.warmup + 1)
        if epoch >= self.epochs:
            return self.min_lr
        phase = (epoch - self.warmup) / (self.epochs - self.warmup)
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * phase)) / 2


class InvScaling(Schedule):
    """rate = lr / (samples + 1)^power_t, samples the training samples seen before the
    epoch (scikit-learn's 'invscaling', which also changes the rate between epochs)."""

    name = "invscaling"

    def __init__(self, lr, power_t=0.5):
        self.lr = check_positive("lr", lr)
        self.power_t = check_positive("power_t", power_t, allow_zero=True)

    def rate(self, epoch, samples=0):
        return self.lr / (samples + 1) ** self.power_t


class Plateau(Schedule):
    """Reduce on plateau: the rate (from lr) times `factor` each time the monitored value
    (the validation loss or score, else the training loss) stops improving for the
    trainer's n_iter_no_change epochs; once the rate is at or below min_lr, training
    stops instead. factor 0.2, min_lr 1e-6: scikit-learn's 'adaptive'."""

    name = "plateau"

    def __init__(self, lr, factor=0.1, min_lr=1e-6, current=None):
        self.lr = check_positive("lr", lr)
        self.factor = check_positive("factor", factor, upper=1)
        self.min_lr = check_positive("min_lr", min_lr, allow_zero=True)
        self.current = self.lr if current is None else check_positive("current", current)

    def rate(self, epoch, samples=0):
        return self.current

    def reduce(self):
        if self.current <= self.min_lr:
            return False
        self.current *= self.factor
        return True


SCHEDULES = {cls.name: cls for cls in (Constant, Step, Cosine, InvScaling, Plateau)}


def from_config(config):
    """The schedule that Schedule.config() describes (its state included)."""
    if not isinstance(config, dict) or config.get("name") not in SCHEDULES:
        raise ValueError(f"schedule name must be one of {tuple(SCHEDULES)}, got {config!r}")
    options = {key: value for key, value in config.items() if key != "name"}
    try:
        return SCHEDULES[config["name"]](**options)
    except TypeError as error:
        raise ValueError(f"schedule {config['name']}: {error}") from None


def resolve(schedule, lr, epochs, warmup=0):
    """A Schedule from a Schedule, None (constant lr) or a name (defaults from lr and
    epochs: "step" at 1/2 and 3/4 of the epochs by 1/5, "cosine" over the epochs after
    `warmup` of them)."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule is None or schedule == "constant":
        return Constant(lr)
    if schedule == "step":
        return Step(lr, [math.ceil(f * epochs) for f in STEP_FRACTIONS], STEP_GAMMA)
    if schedule == "cosine":
        return Cosine(lr, epochs, warmup=warmup)
    if schedule in ("plateau", "invscaling"):
        return SCHEDULES[schedule](lr)
    raise ValueError(f"schedule must be a ghostmlp.schedule.Schedule or one of "
                     f"{tuple(SCHEDULES)}, got {schedule!r}")
