"""`ghostmlp train`: its defaults, options resolved against a checkpoint, the network, the history file."""
import argparse
import csv
import json
import os

from ghostmlp import data, defaults, optim, schedule
from ghostmlp.checkpoint import load, read_header, save
from ghostmlp.cli_data import check_features, is_root, read_dataset, saved_normaliser
from ghostmlp.network import Network
from ghostmlp.splits import split_rows
from ghostmlp.train import Patience, Trainer, evaluate_rows
from ghostmlp.validate import check_count, check_fraction, check_positive

# train's defaults (ghostmlp.defaults, shared with the Network and the estimators). With
# --resume, the network's come from the checkpoint's "network" and the run's from its
# "extra"; network options given anyway must agree with the checkpoint.
NETWORK_DEFAULTS = {"hidden": list(defaults.COMMAND_HIDDEN), "activation": defaults.HIDDEN_ACTIVATION,
                    "output_activation": "softmax", "loss": defaults.LOSS, "optimizer": "adam",
                    "momentum": 0.0, "weight_decay": 0.0, "connectivity": "dense",
                    "blocks": None, "ghost_gradients": "exact", "seed": 0,
                    "dtype": defaults.DTYPE}
# The base learning rate of each optimizer, when --learning-rate is left out.
LEARNING_RATES = {"sgd": 0.1, "adam": defaults.LEARNING_RATE, "adamw": defaults.LEARNING_RATE}
RUN_DEFAULTS = {"learning_rate": None, "schedule": "constant", "warmup": 0,
                "max_epochs": defaults.MAX_EPOCHS, "batch_size": defaults.BATCH_SIZE,
                "normalise": defaults.NORMALISE, "test_fraction": 0.25,
                "validation_fraction": 0.0, "n_iter_no_change": defaults.N_ITER_NO_CHANGE,
                "tol": defaults.TOL, "restore_best": False}


def train(args, comm, say, agreement):
    """`ghostmlp train`; agreement: the command's ghostmlp.cli_agree.Agreement, on which the
    ranks agree on what each checks or writes alone (files, folders)."""
    agreement.run("the files", lambda: check_paths(args, is_root(comm)))
    header = read_header(args.checkpoint, comm) if args.resume else None
    opts = train_options(args, header)
    X, y, source = read_dataset(args, comm, opts.dtype, agreement)
    train_rows, test_rows = split_rows(len(y), opts.test_fraction, opts.seed, "--test-fraction")
    if args.resume:
        net = load(args.checkpoint, comm=comm, master=args.master, grid=args.grid,
                   stall_timeout=args.stall_timeout, replica_update=opts.replica_update)
        check_features(X, net, args)
        normaliser = saved_normaliser(header["extra"])
        run = header["extra"].get("run_state", {})
        say(f"resumed {args.checkpoint} after epoch {net.epochs_trained}")
    else:
        net = new_network(opts, comm, X.shape[1], y)
        normaliser = (data.Normaliser(opts.normalise).fit(X, train_rows)
                      if opts.normalise != "none" else None)
        run = {}
    say(repr(net))
    transform = normaliser.transform if normaliser is not None else None
    trainer = Trainer(net, opts.batch_size, _schedule(opts, run, args), transform=transform)
    trainer.samples = run.get("samples", 0)
    saved = run.get("patience", {})
    patience = (Patience(opts.n_iter_no_change, opts.tol, best=saved.get("best"),
                         count=saved.get("count", 0)) if opts.n_iter_no_change else None)

    def extra():
        state = {"schedule": trainer.schedule.config(), "samples": trainer.samples,
                 **({"patience": patience.config()} if patience is not None else {})}
        return {"source": source, "split_seed": opts.seed,
                "normaliser": normaliser.to_dict() if normaliser is not None else None,
                "run_state": state, **{key: getattr(opts, key) for key in RUN_DEFAULTS}}

    rows = []

    def after_epoch(row):
        rows.append(row)
        say("  ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                      for key, value in row.items() if key != "monitored"))
        if args.checkpoint and args.checkpoint_every and row["epoch"] % args.checkpoint_every == 0:
            save(net, args.checkpoint, extra())

    if net.epochs_trained < opts.max_epochs:
        history = trainer.run(X, y, opts.max_epochs - net.epochs_trained,
                              validation_fraction=opts.validation_fraction, patience=patience,
                              restore_best=opts.restore_best, on_epoch=after_epoch,
                              rows=train_rows)
        say(f"stopped after epoch {net.epochs_trained}: {STOPPED[history['stopped']]}")
    if args.checkpoint:
        save(net, args.checkpoint, extra())
        say(f"checkpoint {args.checkpoint}")
    if len(test_rows):
        scores = evaluate_rows(net, X, y, test_rows, transform)
        say(f"held-out accuracy {scores['accuracy']:.4f} on {len(test_rows)} samples "
            f"(loss {scores['loss']:.4f})")

    def write():
        if is_root(comm):
            write_history(rows, args.history, args.plot)

    agreement.run("writing the history", write)
    return net


STOPPED = {"max_epochs": "--max-epochs reached",
           "converged": "the training loss stopped improving (--tol, --n-iter-no-change)",
           "early_stopping": "the validation loss stopped improving (--tol, --n-iter-no-change)"}


def _schedule(opts, run, args):
    """The run's schedule: the checkpoint's, state and all, unless --schedule, --learning-rate
    or --warmup is given; else a new one from the options."""
    if "schedule" in run and all(getattr(args, key) is None
                                 for key in ("schedule", "learning_rate", "warmup")):
        return schedule.from_config(run["schedule"])
    return schedule.resolve(opts.schedule, opts.learning_rate, opts.max_epochs, opts.warmup)


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
    opts.replica_update = args.replica_update or "auto"
    opts.stall_timeout = args.stall_timeout
    if opts.learning_rate is None:
        opts.learning_rate = LEARNING_RATES[opts.optimizer]
    check_options(args, opts)
    return opts


def check_options(args, opts):
    """Refuse, naming the option and its value, settings out of range, ignored or bound to
    fail late."""
    for size in opts.hidden:
        check_count("--hidden", size)
    check_count("--max-epochs", opts.max_epochs)
    if opts.batch_size != "auto":
        check_count("--batch-size", opts.batch_size)
    check_count("--n-iter-no-change", opts.n_iter_no_change, allow_zero=True)
    check_positive("--tol", opts.tol, allow_zero=True)
    check_count("--warmup", opts.warmup, allow_zero=True)
    if opts.warmup and opts.schedule != "cosine":
        raise ValueError(f"--warmup applies to --schedule cosine, not {opts.schedule}")
    if opts.warmup >= opts.max_epochs:
        raise ValueError(f"--warmup {opts.warmup} must be below --max-epochs {opts.max_epochs}")
    check_fraction("--test-fraction", opts.test_fraction)
    check_fraction("--validation-fraction", opts.validation_fraction)
    check_positive("--learning-rate", opts.learning_rate)
    check_positive("--momentum", opts.momentum, allow_zero=True, upper=1)
    check_positive("--weight-decay", opts.weight_decay, allow_zero=True)
    if opts.blocks is not None:
        check_count("--blocks", opts.blocks)
    check_count("--seed", opts.seed, allow_zero=True)
    check_count("--checkpoint-every", args.checkpoint_every, allow_zero=True)
    if opts.optimizer != "sgd" and opts.momentum:
        raise ValueError(f"--momentum applies to --optimizer sgd, not {opts.optimizer}")
    if args.checkpoint_every and not args.checkpoint:
        raise ValueError("--checkpoint-every needs --checkpoint")


def check_paths(args, root):
    """Refuse, naming the option, a --resume without its checkpoint and an output file in a
    folder that is missing or not writable, as this rank sees them: the checkpoint (every
    rank reads and writes it), and on rank 0 (root) the history and the plot it writes."""
    if args.resume and (not args.checkpoint or not os.path.exists(args.checkpoint)):
        raise ValueError(f"--resume needs an existing --checkpoint, got {args.checkpoint!r}")
    for option in ("checkpoint", "history", "plot") if root else ("checkpoint",):
        path = getattr(args, option)
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if path and not os.path.isdir(folder):
            raise ValueError(f"--{option} {path}: no such folder")
        if path and not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"--{option} {path}: the folder {folder} is not writable")


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
                  grid=args.grid, replica_update=args.replica_update,
                  stall_timeout=args.stall_timeout)
    net.add_layer("input", n_inputs)
    for size in args.hidden:
        net.add_layer("hidden", size, activation=args.activation)
    net.add_layer("output", n_outputs, activation=args.output_activation)
    batch = (defaults.batch_size(len(y)) if args.batch_size == "auto" else args.batch_size)
    return net.initialize(batch_size=batch, machine=args.machine)


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
