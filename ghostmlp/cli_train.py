"""`ghostmlp train`: its defaults, options resolved against a checkpoint, the network, the history file."""
import argparse
import csv
import json
import os
import time

from ghostmlp import data, optim
from ghostmlp.checkpoint import load, read_header, save
from ghostmlp.cli_data import is_root, read_dataset, saved_normaliser, split
from ghostmlp.network import Network
from ghostmlp.schedule import learning_rate_at
from ghostmlp.validate import check_positive

# train's defaults. With --resume, the network's come from the checkpoint's "network" and the
# schedule's and data's from its "extra"; options given anyway must agree with the network.
NETWORK_DEFAULTS = {"hidden": [256], "activation": "sigmoid", "output_activation": "softmax",
                    "loss": "cross_entropy", "optimizer": "sgd", "momentum": 0.0,
                    "weight_decay": 1e-4,
                    "connectivity": "dense", "blocks": None, "ghost_gradients": "exact",
                    "seed": 0, "dtype": "float32"}
# The base learning rate of each optimizer, when --learning-rate is left out.
LEARNING_RATES = {"sgd": 2.0, "adam": 1e-3, "adamw": 1e-3}
RUN_DEFAULTS = {"learning_rate": None, "decay": "step", "epochs": 60, "batch_size": 16,
                "normalise": "none", "test_fraction": 0.25, "validation_fraction": 0.0}


def train(args, comm, say):
    if args.resume and (not args.checkpoint or not os.path.exists(args.checkpoint)):
        raise ValueError(f"--resume needs an existing --checkpoint, got {args.checkpoint!r}")
    header = read_header(args.checkpoint, comm) if args.resume else None
    opts = train_options(args, header)
    X, y, source = read_dataset(args, comm, opts.dtype)
    X_train, y_train, X_test, y_test = split(X, y, opts.test_fraction, opts.seed)
    X_train, y_train, X_val, y_val = split(X_train, y_train, opts.validation_fraction, opts.seed + 1)
    if args.resume:
        net = load(args.checkpoint, comm=comm, master=args.master, grid=args.grid)
        normaliser = saved_normaliser(header["extra"])
        say(f"resumed {args.checkpoint} after epoch {net.epochs_trained}")
    else:
        net = new_network(opts, comm, X_train.shape[1], y)
        normaliser = (data.Normaliser(opts.normalise).fit(X_train)
                      if opts.normalise != "none" else None)
    if normaliser is not None:
        X_train, X_val, X_test = (normaliser.transform(A) for A in (X_train, X_val, X_test))
    say(repr(net))
    extra = {"source": source, "split_seed": opts.seed,
             "normaliser": normaliser.to_dict() if normaliser is not None else None,
             **{key: getattr(opts, key) for key in RUN_DEFAULTS}}
    history, start = [], time.perf_counter()
    for epoch in range(net.epochs_trained, opts.epochs):
        rate = learning_rate_at(epoch, opts.epochs, opts.learning_rate, opts.decay)
        loss = net.fit(X_train, y_train, epochs=1, batch_size=opts.batch_size,
                       learning_rate=rate)["loss"][-1]
        row = {"epoch": epoch + 1, "learning_rate": rate, "loss": loss,
               "accuracy": net.evaluate(X_train, y_train)["accuracy"]}
        if len(y_val):
            scores = net.evaluate(X_val, y_val)
            row.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        say("  ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                      for key, value in row.items()))
        if args.checkpoint and args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0:
            save(net, args.checkpoint, extra)
    if args.checkpoint:
        save(net, args.checkpoint, extra)
        say(f"checkpoint {args.checkpoint}")
    if len(y_test):
        scores = net.evaluate(X_test, y_test)
        say(f"held-out accuracy {scores['accuracy']:.4f} on {len(y_test)} samples "
            f"(loss {scores['loss']:.4f})")
    if is_root(comm):
        write_history(history, args.history, args.plot)
    return net


def train_options(args, header):
    """train's settings: the options given, else the checkpoint's when resuming, else defaults."""
    saved_network, saved_run = {}, {}
    if header is not None:
        config = header["network"]
        layers = config["layers"]
        optimizer = config["optimizer"]
        saved_network = {"hidden": [size for kind, size, _ in layers if kind == "hidden"],
                         "activation": layers[1][2] if len(layers) > 2 else "sigmoid",
                         "output_activation": layers[-1][2], "optimizer": optimizer["name"],
                         "momentum": optimizer.get("momentum", 0.0),
                         "weight_decay": optimizer["weight_decay"],
                         **{key: config[key] for key in NETWORK_DEFAULTS if key not in (
                             "hidden", "activation", "output_activation", "optimizer",
                             "momentum", "weight_decay")}}
        saved_run = {key: value for key, value in header["extra"].items() if key in RUN_DEFAULTS}
    opts = argparse.Namespace()
    for key, default in NETWORK_DEFAULTS.items():
        given, saved = getattr(args, key), saved_network.get(key, default)
        if header is not None and given is not None and given != saved:
            raise ValueError(f"--{key.replace('_', '-')} {given} differs from {saved} in the "
                             f"checkpoint {args.checkpoint}: leave it out to resume")
        setattr(opts, key, saved if given is None else given)
    for key, default in RUN_DEFAULTS.items():
        given = getattr(args, key)
        setattr(opts, key, saved_run.get(key, default) if given is None else given)
    opts.master, opts.grid, opts.machine = args.master, args.grid, args.machine
    if opts.learning_rate is None:
        opts.learning_rate = LEARNING_RATES[opts.optimizer]
    check_options(args, opts)
    return opts


def check_options(args, opts):
    """Refuse settings that would be ignored or fail late, naming the option."""
    if opts.epochs < 1 or opts.batch_size < 1:
        raise ValueError(f"--epochs and --batch-size must be >= 1, got {opts.epochs} and "
                         f"{opts.batch_size}")
    for name in ("test_fraction", "validation_fraction"):
        if not 0 <= getattr(opts, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 1), got "
                             f"{getattr(opts, name)}")
    check_positive("learning_rate", opts.learning_rate)
    if opts.optimizer != "sgd" and opts.momentum:
        raise ValueError(f"--momentum applies to --optimizer sgd, not {opts.optimizer}")
    if args.checkpoint_every and not args.checkpoint:
        raise ValueError("--checkpoint-every needs --checkpoint")
    for option in ("checkpoint", "history", "plot"):
        path = getattr(args, option)
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ValueError(f"--{option} {path}: no such folder")


def new_network(args, comm, n_inputs, y):
    n_outputs = int(y.max()) + 1 if y.ndim == 1 else y.shape[1]
    if args.optimizer == "sgd":
        optimizer = optim.SGD(args.learning_rate, momentum=args.momentum,
                              weight_decay=args.weight_decay)
    else:
        optimizer = optim.OPTIMIZERS[args.optimizer](args.learning_rate,
                                                     weight_decay=args.weight_decay)
    net = Network(seed=args.seed, dtype=args.dtype, loss=args.loss, optimizer=optimizer,
                  comm=comm, connectivity=args.connectivity,
                  blocks=args.blocks, ghost_gradients=args.ghost_gradients, master=args.master,
                  grid=args.grid)
    net.add_layer("input", n_inputs)
    for size in args.hidden:
        net.add_layer("hidden", size, activation=args.activation)
    net.add_layer("output", n_outputs, activation=args.output_activation)
    return net.initialize(batch_size=args.batch_size, machine=args.machine)


def write_history(history, path, plot):
    if path:
        with open(path, "w", newline="") as out:
            if path.endswith(".json"):
                json.dump(history, out, indent=1)
            else:
                writer = csv.DictWriter(out, fieldnames=list(history[0]) if history else ["epoch"])
                writer.writeheader()
                writer.writerows(history)
    if plot and history:
        try:
            import matplotlib
            matplotlib.use("Agg")
            from matplotlib import pyplot
        except ImportError:
            print(f"note: --plot {plot} skipped: matplotlib is not installed "
                  "(pip install 'ghostmlp[plot]')")
            return
        figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
        epochs = [row["epoch"] for row in history]
        for key, axes in (("loss", left), ("val_loss", left), ("accuracy", right),
                          ("val_accuracy", right)):
            if key in history[0]:
                axes.plot(epochs, [row[key] for row in history], label=key)
        for axes, name in ((left, "loss"), (right, "accuracy")):
            axes.set_xlabel("epoch")
            axes.set_ylabel(name)
            axes.legend()
            axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(plot, dpi=100)
