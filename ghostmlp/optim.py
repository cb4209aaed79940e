"""Optimizers: SGD (momentum, Nesterov), Adam and AdamW; their hyperparameters and state.

An optimizer owns only its hyperparameters; its state buffers (named as in PyTorch) and
its step count live in the network's parameters (``ghostmlp.params``) and its update is a
nogil pass of the extension (``_optim.pxd``), one pass over a weight matrix and its state.
Weight decay applies to weights only: biases are never decayed.
"""
from ghostmlp import defaults
from ghostmlp.validate import check_flag, check_positive

SGD_CODE, ADAM_CODE, ADAMW_CODE = 0, 1, 2      # as _optim.pxd numbers them
DEFAULT_LEARNING_RATE = 0.1     # of the SGD that learning_rate= and friends stand for


class Optimizer:
    """Base class: `lr`, `weight_decay`, the state buffers' names, the extension's arguments."""

    name = None
    state_names = ()

    @property
    def fuses_gradient(self):
        """True when the update goes straight into the gradient GEMM (no gradient buffer)."""
        return False

    def kernel_args(self):
        """(code, momentum, nesterov, weight_decay, beta1, beta2, eps) for ghostmlp._step.Step."""
        raise NotImplementedError

    def config(self):
        """The constructor's arguments and the class name, as JSON-serialisable values."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.config().items()
                         if key != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.config() == other.config()


class SGD(Optimizer):
    """torch.optim.SGD (dampening 0): d := g + wd W; buf := m buf + d;
    W -= lr (d + m buf) with Nesterov, W -= lr buf without, W -= lr d when m = 0."""

    name = "sgd"

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = check_positive("lr", lr)
        self.momentum = check_positive("momentum", momentum, allow_zero=True, upper=1)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        nesterov = check_flag("nesterov", nesterov)
        if nesterov and not self.momentum:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.nesterov = nesterov
        self.state_names = ("momentum_buffer",) if self.momentum else ()

    @property
    def fuses_gradient(self):
        return not self.nesterov

    def kernel_args(self):
        return (SGD_CODE, self.momentum, self.nesterov, self.weight_decay, 0.0, 0.0, 0.0)

    def config(self):
        return {"name": self.name, "lr": self.lr, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """torch.optim.Adam: d := g + wd W (L2); m := b1 m + (1 - b1) d; v := b2 v + (1 - b2) d^2;
    W -= lr m_hat / (sqrt(v_hat) + eps), m_hat and v_hat bias-corrected at step t."""

    name = "adam"
    state_names = ("exp_avg", "exp_avg_sq")
    code = ADAM_CODE

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = check_positive("lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(check_positive(f"betas[{i}]", beta, allow_zero=True, upper=1)
                           for i, beta in enumerate(betas))
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)

    def kernel_args(self):
        return (self.code, 0.0, False, self.weight_decay, *self.betas, self.eps)

    def config(self):
        return {"name": self.name, "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled decay W -= lr wd W instead of L2 in the gradient."""

    name = "adamw"
    code = ADAMW_CODE

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, betas, eps, weight_decay)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def from_config(config):
    """The optimizer that Optimizer.config() describes; ValueError names what is wrong."""
    if not isinstance(config, dict) or config.get("name") not in OPTIMIZERS:
        raise ValueError(f"optimizer name must be one of {tuple(OPTIMIZERS)}, got {config!r}")
    options = {key: value for key, value in config.items() if key != "name"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    try:
        return OPTIMIZERS[config["name"]](**options)
    except TypeError as error:
        raise ValueError(f"optimizer {config['name']}: {error}") from None


def resolve(optimizer, learning_rate, momentum, weight_decay):
    """The optimizer given, or the SGD that learning_rate, momentum and weight_decay
    describe, or with none of them the default (ghostmlp.defaults: Adam at 1e-3)."""
    shorthand = {name: value for name, value in (("learning_rate", learning_rate),
                 ("momentum", momentum), ("weight_decay", weight_decay)) if value is not None}
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer must be a ghostmlp.optim optimizer, got {optimizer!r}")
        if shorthand:
            raise ValueError(f"give optimizer= or {'/'.join(shorthand)}=, not both (set them "
                             "on the optimizer)")
        return optimizer
    if not shorthand:
        return defaults.optimizer()
    learning_rate = check_positive("learning_rate", shorthand.get("learning_rate",
                                                                  DEFAULT_LEARNING_RATE))
    momentum = check_positive("momentum", momentum or 0.0, allow_zero=True, upper=1)
    weight_decay = check_positive("weight_decay", weight_decay or 0.0, allow_zero=True)
    return SGD(learning_rate, momentum=momentum, weight_decay=weight_decay)
