"""The study's networks (ghost, dense, capacity-matched) and one training run of each on the digits."""
import time

import numpy as np

from ghostmlp.datasets import load_digits
from ghostmlp.network import Network
from ghostmlp.partition import connectivity_mask
from ghostmlp.splits import train_test_split

N_IN, N_CLASSES = 64, 10
HIDDEN = (256, 256)
RECIPE = {"activation": "sigmoid", "loss": "cross_entropy", "learning_rate": 2.0,
          "momentum": 0.0, "weight_decay": 1e-4, "batch_size": 16, "test_fraction": 0.25,
          "dtype": "float32", "decay": "step"}
HEADS = {"head10": {"n_out": 10, "blocks": (1, 2, 4, 8)},
         "head20": {"n_out": 20, "blocks": (1, 2, 4, 8, 16)}}
LOCAL_BLOCKS = (2, 4, 8, 16)    # ghost_gradients="local" runs (where the head allows the K)


def class_neurons(n_out):
    """Output neurons of each class: [c] for head10, [2c, 2c+1] for head20."""
    per = n_out // N_CLASSES
    return [list(range(per * c, per * (c + 1))) for c in range(N_CLASSES)]


def dense_weights(hidden, n_out):
    sizes = [N_IN, *hidden, n_out]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matched_width(target, n_out, depth=len(HIDDEN)):
    """Hidden width h (all hidden layers equal) whose dense network has the weight count closest to target."""
    return min(range(1, max(HIDDEN) + 1),
               key=lambda h: (abs(dense_weights([h] * depth, n_out) - target), h))


def receptive_fields(sizes, blocks):
    """Mean over classes of the fraction of (last, first) hidden layer a class's outputs depend on."""
    masks = [connectivity_mask(a, b, blocks, first_layer=i == 0)
             for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    last, first = [], []
    for neurons in class_neurons(sizes[-1]):
        seen = np.zeros(sizes[-1], dtype=bool)
        seen[neurons] = True
        reach = []
        for mask in reversed(masks[1:]):     # back from the output to the first hidden layer
            seen = mask[:, seen].any(axis=1)
            reach.append(seen.mean())
        last.append(reach[0])
        first.append(reach[-1])
    return float(np.mean(last)), float(np.mean(first))


def configs():
    """Every network of the study, in run order: dicts of head, variant, K, ghost_gradients, hidden."""
    out = []
    for head, spec in HEADS.items():
        n_out = spec["n_out"]
        out.append({"head": head, "variant": "dense", "K": 1, "ghost_gradients": None,
                    "hidden": list(HIDDEN)})
        for K in spec["blocks"]:
            out.append({"head": head, "variant": "ghost", "K": K, "ghost_gradients": "exact",
                        "hidden": list(HIDDEN)})
            if K > 1 and K in LOCAL_BLOCKS:
                out.append({"head": head, "variant": "ghost", "K": K, "ghost_gradients": "local",
                            "hidden": list(HIDDEN)})
            if K > 1:
                target = Network(connectivity="ghost", blocks=K)
                for kind, size in (("input", N_IN), *(("hidden", h) for h in HIDDEN), ("output", n_out)):
                    target.add_layer(kind, size)
                width = matched_width(target.n_weights, n_out)
                out.append({"head": head, "variant": "dense_matched", "K": K, "ghost_gradients": None,
                            "hidden": [width] * len(HIDDEN)})
    return out


def build(config, seed):
    n_out = HEADS[config["head"]]["n_out"]
    kwargs = {}
    if config["variant"] == "ghost":
        kwargs = {"connectivity": "ghost", "blocks": config["K"],
                  "ghost_gradients": config["ghost_gradients"]}
    net = Network(seed=seed, dtype=RECIPE["dtype"], loss=RECIPE["loss"],
                  learning_rate=RECIPE["learning_rate"], momentum=RECIPE["momentum"],
                  weight_decay=RECIPE["weight_decay"], **kwargs)
    net.add_layer("input", N_IN)
    for size in config["hidden"]:
        net.add_layer("hidden", size, activation=RECIPE["activation"])
    net.add_layer("output", n_out, activation="softmax")
    return net.initialize()


def scores(net, X, y):
    """Accuracy and class negative log-likelihood, classes scored by the summed outputs of their neurons."""
    proba = net.predict_proba(X).astype(np.float64)
    classes = np.stack([proba[:, n].sum(axis=1) for n in class_neurons(proba.shape[1])], axis=1)
    nll = -np.log(np.maximum(classes[np.arange(len(y)), y], 1e-300)).mean()
    return float(np.mean(classes.argmax(axis=1) == y)), float(nll)


def run_one(job):
    """Train one network with RECIPE (the paper's); returns its JSON record."""
    config, seed, split, epochs = job
    X, y = load_digits(dtype=RECIPE["dtype"])
    X_train, X_test, y_train, y_test = train_test_split(X, y, RECIPE["test_fraction"], split)
    n_out = HEADS[config["head"]]["n_out"]
    targets = np.zeros((len(y_train), n_out), dtype=RECIPE["dtype"])
    for c, neurons in enumerate(class_neurons(n_out)):
        targets[np.ix_(y_train == c, neurons)] = 1.0 / len(neurons)
    Y_train = targets if n_out != N_CLASSES else y_train
    net = build(config, seed)
    start = time.perf_counter()
    curve = net.fit(X_train, Y_train, max_epochs=epochs, batch_size=RECIPE["batch_size"],
                    schedule=RECIPE["decay"], learning_rate=RECIPE["learning_rate"],
                    n_iter_no_change=None)["loss"]
    seconds = time.perf_counter() - start
    train_acc, train_nll = scores(net, X_train, y_train)
    test_acc, test_nll = scores(net, X_test, y_test)
    sizes = net.sizes
    rf_last, rf_first = receptive_fields(sizes, net.blocks)
    return {"record": "run", **config, "sizes": sizes, "n_weights": net.n_weights,
            "seed": seed, "split": split, "epochs": net.epochs_trained,
            "n_train": len(y_train), "n_test": len(y_test),
            "train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
            "train_nll": train_nll, "test_nll": test_nll,
            "class_sees_last_hidden": rf_last, "class_reaches_first_hidden": rf_first,
            "train_seconds": round(seconds, 3),
            "train_loss_per_epoch": [round(v, 5) for v in curve]}
