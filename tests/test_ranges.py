"""Every parameter with a range, given a value outside it: a ValueError naming the parameter and the value."""
import math
import re

import numpy as np
import pytest

from ghostmlp import Network
from ghostmlp.cli import main
from ghostmlp.optim import SGD, Adam, AdamW
from ghostmlp.schedule import Constant, Cosine, InvScaling, Plateau, Step
from ghostmlp.sklearn import GhostMLPClassifier, GhostMLPRegressor
from ghostmlp.train import Patience, Trainer


def net():
    return Network(seed=0).add_layer("input", 3).add_layer("output", 2).initialize()


X, Y = np.eye(3)[[0, 1, 2, 0]], np.array([0, 1, 0, 1])

API = {
    # Network(...)
    "Network seed": (lambda: Network(seed=-1), "seed must be a non-negative integer, got -1"),
    "Network dtype": (lambda: Network(dtype="float16"), "dtype must be one of ('float32', "
                                                         "'float64'), got 'float16'"),
    "Network loss": (lambda: Network(loss="hinge"), "loss must be one of ('mse', "
                                                    "'cross_entropy', 'poisson'), got 'hinge'"),
    "Network learning_rate": (lambda: Network(learning_rate=0),
                              "learning_rate must be a finite number > 0, got 0"),
    "Network momentum": (lambda: Network(momentum=1), "momentum must be a finite number >= 0 "
                                                      "and < 1, got 1"),
    "Network weight_decay": (lambda: Network(weight_decay=-0.5),
                             "weight_decay must be a finite number >= 0, got -0.5"),
    "Network comm": (lambda: Network(comm=3), "comm must be an mpi4py communicator or None, got 3"),
    "Network connectivity": (lambda: Network(connectivity="sparse"),
                             "connectivity must be 'dense' or 'ghost', got 'sparse'"),
    "Network blocks": (lambda: Network(connectivity="ghost", blocks=0),
                       "blocks must be a positive integer, got 0"),
    "Network ghost_gradients": (lambda: Network(ghost_gradients="none"),
                                "ghost_gradients must be 'exact' or 'local', got 'none'"),
    "Network master": (lambda: Network(master="yes"), "master must be True or False, got 'yes'"),
    "Network grid": (lambda: Network(grid=(1, 0)), "grid must be a pair (D, M) of positive "
                                                   "integers, got (1, 0)"),
    "Network bucket_bytes": (lambda: Network(bucket_bytes=0),
                             "bucket_bytes must be a positive integer, got 0"),
    "Network stall_timeout": (lambda: Network(stall_timeout=-1),
                              "stall_timeout must be a finite number >= 0, got -1"),
    "add_layer size": (lambda: Network().add_layer("input", 0),
                       "add_layer: size must be a positive integer, got 0"),
    "initialize batch_size": (lambda: Network().add_layer("input", 3).add_layer("output", 2)
                              .initialize(batch_size=0),
                              "batch_size must be a positive integer, got 0"),
    # fit(...)
    "fit max_epochs": (lambda: net().fit(X, Y, max_epochs=0),
                       "max_epochs must be a positive integer, got 0"),
    "fit batch_size": (lambda: net().fit(X, Y, batch_size=-2),
                       "batch_size must be a positive integer, got -2"),
    "fit learning_rate": (lambda: net().fit(X, Y, learning_rate=-1.0),
                          "learning_rate must be a finite number > 0, got -1.0"),
    "fit validation_fraction": (lambda: net().fit(X, Y, validation_fraction=1.0),
                                "validation_fraction must be a finite number > 0 and < 1, "
                                "got 1.0"),
    "fit n_iter_no_change": (lambda: net().fit(X, Y, n_iter_no_change=0),
                             "n_iter_no_change must be a positive integer, got 0"),
    "fit tol": (lambda: net().fit(X, Y, tol=-1e-3), "tol must be a finite number >= 0, got -0.001"),
    "fit shuffle": (lambda: net().fit(X, Y, shuffle="no"), "shuffle must be True or False, "
                                                            "got 'no'"),
    "fit restore_best": (lambda: net().fit(X, Y, restore_best=2),
                         "restore_best must be True or False, got 2"),
    "Trainer batch_size": (lambda: Trainer(net(), batch_size=0),
                           "batch_size must be a positive integer, got 0"),
    "Patience n_iter_no_change": (lambda: Patience(-1), "n_iter_no_change must be a positive "
                                                        "integer, got -1"),
    "Patience tol": (lambda: Patience(5, tol=math.nan), "tol must be a finite number >= 0, "
                                                        "got nan"),
    # optimizers
    "SGD lr": (lambda: SGD(0), "lr must be a finite number > 0, got 0"),
    "SGD momentum": (lambda: SGD(0.1, momentum=-0.1), "momentum must be a finite number >= 0 "
                                                      "and < 1, got -0.1"),
    "SGD weight_decay": (lambda: SGD(0.1, weight_decay=-1), "weight_decay must be a finite "
                                                            "number >= 0, got -1"),
    "SGD nesterov": (lambda: SGD(0.1, nesterov=1), "nesterov must be True or False, got 1"),
    "Adam lr": (lambda: Adam(lr=math.inf), "lr must be a finite number > 0, got inf"),
    "Adam betas[0]": (lambda: Adam(betas=(1.0, 0.9)), "betas[0] must be a finite number >= 0 "
                                                      "and < 1, got 1.0"),
    "Adam betas[1]": (lambda: Adam(betas=(0.9, -0.1)), "betas[1] must be a finite number >= 0 "
                                                       "and < 1, got -0.1"),
    "Adam eps": (lambda: Adam(eps=0), "eps must be a finite number > 0, got 0"),
    "Adam weight_decay": (lambda: Adam(weight_decay=-1), "weight_decay must be a finite number "
                                                         ">= 0, got -1"),
    "AdamW weight_decay": (lambda: AdamW(weight_decay=-0.01), "weight_decay must be a finite "
                                                              "number >= 0, got -0.01"),
    # schedules
    "Constant lr": (lambda: Constant(-0.1), "lr must be a finite number > 0, got -0.1"),
    "Step milestones": (lambda: Step(0.1, [2, -1]), "milestones must be a non-negative integer, "
                                                    "got -1"),
    "Step gamma": (lambda: Step(0.1, [2], gamma=1.5), "gamma must be a finite number > 0 and "
                                                      "< 1, got 1.5"),
    "Cosine epochs": (lambda: Cosine(0.1, 0), "epochs must be a positive integer, got 0"),
    "Cosine warmup": (lambda: Cosine(0.1, 5, warmup=-1), "warmup must be a non-negative "
                                                         "integer, got -1"),
    "Cosine warmup vs epochs": (lambda: Cosine(0.1, 5, warmup=5), "warmup must be below epochs "
                                                                  "(5), got 5"),
    "Cosine min_lr": (lambda: Cosine(0.1, 5, min_lr=-1), "min_lr must be a finite number >= 0, "
                                                         "got -1"),
    "InvScaling power_t": (lambda: InvScaling(0.1, power_t=-0.5), "power_t must be a finite "
                                                                  "number >= 0, got -0.5"),
    "Plateau factor": (lambda: Plateau(0.1, factor=0), "factor must be a finite number > 0 and "
                                                       "< 1, got 0"),
    "Plateau min_lr": (lambda: Plateau(0.1, min_lr=-1), "min_lr must be a finite number >= 0, "
                                                        "got -1"),
    "Plateau current": (lambda: Plateau(0.1, current=0), "current must be a finite number > 0, "
                                                         "got 0"),
}

ESTIMATOR = {
    "hidden_layer_sizes": ((10, 0), "hidden_layer_sizes must be a positive integer or a "
                                    "sequence of positive integers, got (10, 0)"),
    "alpha": (-1.0, "alpha must be a finite number >= 0, got -1.0"),
    "batch_size": (0, "batch_size must be 'auto' or a positive integer, got 0"),
    "learning_rate_init": (0.0, "learning_rate_init must be a finite number > 0, got 0.0"),
    "power_t": (-1.0, "power_t must be a finite number >= 0, got -1.0"),
    "max_iter": (0, "max_iter must be a positive integer, got 0"),
    "tol": (-1.0, "tol must be a finite number >= 0, got -1.0"),
    "momentum": (1.5, "momentum must be a number in [0, 1], got 1.5"),
    "validation_fraction": (1.0, "validation_fraction must be a number in [0, 1), got 1.0"),
    "beta_1": (-0.1, "beta_1 must be a number in [0, 1), got -0.1"),
    "beta_2": (1.0, "beta_2 must be a number in [0, 1), got 1.0"),
    "epsilon": (0.0, "epsilon must be a finite number > 0, got 0.0"),
    "n_iter_no_change": (0, "n_iter_no_change must be a positive integer or numpy.inf, got 0"),
    "max_fun": (0, "max_fun must be a positive integer, got 0"),
    "verbose": (-1, "verbose must be a boolean or a non-negative integer, got -1"),
    "blocks": (0, "blocks must be a positive integer, got 0"),
    "grid": ((0, 1), "grid must be a pair (D, M) of positive integers, got (0, 1)"),
}


@pytest.mark.parametrize("name", API)
def test_python_api_parameters_out_of_range(name):
    make, message = API[name]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        make()


@pytest.mark.parametrize("estimator", [GhostMLPClassifier, GhostMLPRegressor])
@pytest.mark.parametrize("name", ESTIMATOR)
def test_estimator_parameters_out_of_range(estimator, name):
    value, message = ESTIMATOR[name]
    extra = {"connectivity": "ghost"} if name == "blocks" else {}
    with pytest.raises(ValueError, match=re.escape(message)):
        estimator(**{name: value}, **extra).fit(X, Y)


COMMAND = [
    (["train", "--hidden", "8", "0"], "--hidden must be a positive integer, got 0"),
    (["train", "--learning-rate", "-1"], "--learning-rate must be a finite number > 0, got -1.0"),
    (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
    (["train", "--optimizer", "sgd", "--momentum", "1"],
     "--momentum must be a finite number >= 0 and < 1, got 1.0"),
    (["train", "--weight-decay", "-0.1"], "--weight-decay must be a finite number >= 0, got -0.1"),
    (["train", "--schedule", "cosine", "--warmup", "-1"],
     "--warmup must be a non-negative integer, got -1"),
    (["train", "--schedule", "cosine", "--warmup", "5", "--max-epochs", "5"],
     "--warmup 5 must be below --max-epochs 5"),
    (["train", "--max-epochs", "-3"], "--max-epochs must be a positive integer, got -3"),
    (["train", "--batch-size", "-1"], "--batch-size must be a positive integer, got -1"),
    (["train", "--tol", "-1"], "--tol must be a finite number >= 0, got -1.0"),
    (["train", "--n-iter-no-change", "-1"], "--n-iter-no-change must be a non-negative "
                                            "integer, got -1"),
    (["train", "--connectivity", "ghost", "--blocks", "0"],
     "--blocks must be a positive integer, got 0"),
    (["train", "--grid", "0x1"], "grid must be a pair (D, M) of positive integers, got (0, 1)"),
    (["train", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["train", "--test-fraction", "1"], "--test-fraction must lie in [0, 1), got 1.0"),
    (["train", "--test-fraction", "-0.5"], "--test-fraction must lie in [0, 1), got -0.5"),
    (["train", "--validation-fraction", "-0.1"], "--validation-fraction must lie in [0, 1), "
                                                 "got -0.1"),
    (["train", "--checkpoint", "net.gmlp", "--checkpoint-every", "-1"],
     "--checkpoint-every must be a non-negative integer, got -1"),
    (["train", "--stall-timeout", "-5"], "--stall-timeout must be a finite number >= 0, "
                                         "got -5.0"),
    (["train", "--stall-timeout", "inf"], "--stall-timeout must be a finite number >= 0, "
                                          "got inf"),
    (["evaluate", "--checkpoint", "net.gmlp", "--test-fraction", "1.5"],
     "--test-fraction must lie in [0, 1), got 1.5"),
    (["evaluate", "--checkpoint", "net.gmlp", "--stall-timeout", "-1"],
     "--stall-timeout must be a finite number >= 0, got -1.0"),
    (["predict", "--checkpoint", "net.gmlp", "--output", "o.txt", "--stall-timeout", "nan"],
     "--stall-timeout must be a finite number >= 0, got nan"),
    (["bench", "--scale", "0"], "--scale must be a finite number > 0, got 0.0"),
    (["bench", "--blocks", "0"], "--blocks must be a positive integer, got 0"),
    (["bench", "--batch", "0"], "--batch must be a positive integer, got 0"),
    (["bench", "--iterations", "0"], "--iterations must be a positive integer, got 0"),
    (["bench", "--warmup", "-1"], "--warmup must be a non-negative integer, got -1"),
    (["bench", "--threads", "0"], "--threads must be a positive integer, got 0"),
    (["bench", "--grid", "1x0"], "grid must be a pair (D, M) of positive integers, got (1, 0)"),
    (["plan", "--model", "S", "--batch", "0"], "--batch must be a positive integer, got 0"),
    (["plan", "--model", "S", "--ranks", "0"], "--ranks must be a positive integer, got 0"),
    (["plan", "--model", "S", "--momentum", "-0.5"],
     "--momentum must be a finite number >= 0 and < 1, got -0.5"),
    (["plan", "--model", "S", "--blocks", "-2"], "--blocks must be a positive integer, got -2"),
    (["plan", "--model", "S", "--memory", "0"], "--memory must be a finite number > 0, got 0.0"),
    (["plan", "--sizes", "8", "0", "2"], "--sizes must be a positive integer, got 0"),
    (["convert", "images", "out.npz", "--size", "8", "0"],
     "--size must be a positive integer, got 0"),
]


@pytest.mark.parametrize("argv, message", COMMAND, ids=[" ".join(a) for a, _ in COMMAND])
def test_command_options_out_of_range(argv, message, capsys, tmp_path, monkeypatch):
    """In process: exit 1 and `ghostmlp COMMAND: error: MESSAGE`, before any work."""
    monkeypatch.chdir(tmp_path)
    if argv[0] in ("evaluate", "predict"):
        assert main(["train", "--epochs", "1", "--hidden", "4", "--checkpoint", "net.gmlp"]) == 0
    (tmp_path / "images").mkdir()
    capsys.readouterr()
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert f"ghostmlp {argv[0]}: error: {message}" in err, err
    assert "epoch 1" not in out


@pytest.mark.parametrize("argv", [["train", "--threads", "0"],
                                  ["evaluate", "--checkpoint", "net.gmlp", "--threads", "-1"],
                                  ["predict", "--checkpoint", "net.gmlp", "--output", "o.txt",
                                   "--threads", "0"]], ids=lambda argv: argv[0])
def test_threads_out_of_range_is_a_usage_error(argv, capsys):
    """--threads is read by argparse (it applies before any command runs): exit status 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert f"--threads: must be a positive integer, got '{argv[-1]}'" in capsys.readouterr().err
