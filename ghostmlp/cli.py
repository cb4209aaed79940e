"""The `ghostmlp` command: train, evaluate, predict, convert, bench, info; serial or under mpiexec."""
import argparse
import csv
import json
import os
import shlex
import sys
import time
import traceback

import numpy as np

from ghostmlp import bench, data, optim
from ghostmlp.checkpoint import load, read_header, save
from ghostmlp.network import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, Network
from ghostmlp.schedule import DECAYS, learning_rate_at
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


# ------------------------------------------------------------------ arguments

def add_data_arguments(parser, labels=True):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=("digits",),
                        help="the bundled 8x8 handwritten digits (the default without --inputs)")
    source.add_argument("--inputs", help="input file: text, CSV, .npy/.npz or IDX (gzipped or not)")
    if labels:
        parser.add_argument("--labels", help="label file: one class per line, one-hot rows, ...")
        parser.add_argument("--label-column", help="the labels are this column (name or index) "
                                                   "of the CSV --inputs")
        parser.add_argument("--label-kind", choices=("auto", "index", "onehot", "rows"), default="auto")
        parser.add_argument("--test-fraction", type=float,
                            help="held-out share (default 0.25 for training; for evaluation, "
                                 "the split the checkpoint was trained with)")


def add_checkpoint_arguments(parser):
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--as-dense", action="store_true",
                        help="load a ghost checkpoint as the equivalent dense network, on any "
                             "number of ranks (ghost layouts need a rank count that divides K)")


def build_parser():
    parser = argparse.ArgumentParser(prog="ghostmlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a network (default: the bundled digits)",
        description="Options left out take their defaults, or with --resume the checkpoint's.")
    add_data_arguments(train)
    train.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (256)")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, help="(sigmoid)")
    train.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS, help="(softmax)")
    train.add_argument("--loss", choices=tuple(LOSSES), help="(cross_entropy)")
    train.add_argument("--optimizer", choices=tuple(optim.OPTIMIZERS), help="(sgd)")
    train.add_argument("--learning-rate", type=float,
                       help="base rate of the schedule (sgd 2.0, adam and adamw 0.001)")
    train.add_argument("--decay", choices=DECAYS,
                       help="step (default): 1/5 of the rate after half the epochs, 1/25 after "
                            "three quarters")
    train.add_argument("--momentum", type=float, help="sgd's momentum (0)")
    train.add_argument("--weight-decay", type=float, help="(1e-4)")
    train.add_argument("--epochs", type=int, help="total epochs, a resumed run's included (60)")
    train.add_argument("--batch-size", type=int, help="(16)")
    train.add_argument("--connectivity", choices=("dense", "ghost"), help="(dense)")
    train.add_argument("--blocks", type=int, help="ghost blocks K (default: the working ranks)")
    train.add_argument("--ghost-gradients", choices=("exact", "local"), help="(exact)")
    train.add_argument("--master", action="store_true", help="rank 0 only gathers outputs and loss")
    train.add_argument("--seed", type=int, help="initialisation, shuffling and splits (0)")
    train.add_argument("--dtype", choices=("float32", "float64"), help="(float32)")
    train.add_argument("--normalise", choices=("none", "standard", "minmax"),
                       help="input normalisation, fitted on the training split only (none)")
    train.add_argument("--validation-fraction", type=float,
                       help="share of the training split held out for validation each epoch (0)")
    train.add_argument("--history", help="write the per-epoch history here (.csv or .json)")
    train.add_argument("--plot", help="loss and accuracy curves as a PNG (needs matplotlib)")
    train.add_argument("--checkpoint", help="write a checkpoint here at the end")
    train.add_argument("--checkpoint-every", type=int, default=0, help="and every N epochs")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")

    evaluate = commands.add_parser("evaluate", help="loss and accuracy of a checkpoint")
    add_checkpoint_arguments(evaluate)
    add_data_arguments(evaluate)

    predict = commands.add_parser("predict", help="write a checkpoint's predictions to a file")
    add_checkpoint_arguments(predict)
    add_data_arguments(predict, labels=False)
    predict.add_argument("--output", required=True, help="one class per line (.txt) or .npy")
    predict.add_argument("--probabilities", action="store_true", help="write the output rows")

    convert = commands.add_parser("convert", help="images, IDX or text files to .npz or text")
    convert.add_argument("source", help="a folder of images (one subfolder per class), or a file")
    convert.add_argument("output", help="out.npz, or out.txt for the paper's text format")
    convert.add_argument("--labels", help="with a data file: its label file")
    convert.add_argument("--size", type=int, nargs=2, default=(8, 8), metavar=("W", "H"),
                         help="image size after resizing (default 8 8)")

    bench.add_arguments(commands.add_parser("bench", help="time training iterations (Table I models)"))
    commands.add_parser("info", help="version, MPI, BLAS and build facts")
    return parser


# ----------------------------------------------------------------------- data

def read_dataset(args, comm, dtype):
    """(X, y, source) on every rank: the bundled digits, or the files, read by rank 0 only.

    Labels come from --labels, from --label-column of a CSV, or from the y array of an
    .npz holding X and y (as `ghostmlp convert` writes).
    """
    if args.inputs is None:
        if args.labels is not None or args.label_column is not None:
            raise ValueError("--labels and --label-column need --inputs")
        X, y = data.load_digits(dtype=dtype)
        return X, y, "digits"
    X, y = data.read_on_root(lambda: read_files(args, dtype), comm)
    if len(X) != len(y):
        raise ValueError(f"{args.inputs} has {len(X)} samples but {args.labels} has {len(y)} labels")
    return X, y, os.path.abspath(args.inputs)


def read_files(args, dtype):
    if args.label_column is not None:
        column = int(args.label_column) if args.label_column.lstrip("-").isdigit() else args.label_column
        return data.load_csv(args.inputs, label_column=column, dtype=dtype)
    if args.labels is None:
        if args.inputs.endswith(".npz"):
            return (data.load(args.inputs, "inputs", key="X", dtype=dtype),
                    data.load(args.inputs, "labels", key="y", kind=args.label_kind, dtype=dtype))
        raise ValueError("--inputs needs --labels (or --label-column, or an .npz with X and y)")
    return (data.load(args.inputs, "inputs", dtype=dtype),
            data.load(args.labels, "labels", kind=args.label_kind, dtype=dtype))


def split(X, y, fraction, seed):
    """(X_train, y_train, X_held, y_held); nothing held out when fraction is 0."""
    if not fraction:
        return X, y, X[:0], y[:0]
    X_train, X_held, y_train, y_held = data.train_test_split(X, y, fraction, seed)
    return X_train, y_train, X_held, y_held


# ---------------------------------------------------------------------- train

def train(args, comm, say):
    if args.resume and (not args.checkpoint or not os.path.exists(args.checkpoint)):
        raise ValueError(f"--resume needs an existing --checkpoint, got {args.checkpoint!r}")
    header = read_header(args.checkpoint, comm) if args.resume else None
    opts = train_options(args, header)
    X, y, source = read_dataset(args, comm, opts.dtype)
    X_train, y_train, X_test, y_test = split(X, y, opts.test_fraction, opts.seed)
    X_train, y_train, X_val, y_val = split(X_train, y_train, opts.validation_fraction, opts.seed + 1)
    if args.resume:
        net = load(args.checkpoint, comm=comm, master=args.master)
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
    opts.master = args.master
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
                  blocks=args.blocks, ghost_gradients=args.ghost_gradients, master=args.master)
    net.add_layer("input", n_inputs)
    for size in args.hidden:
        net.add_layer("hidden", size, activation=args.activation)
    net.add_layer("output", n_outputs, activation=args.output_activation)
    return net.initialize()


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


# ------------------------------------------------- evaluate, predict, convert

def load_checkpoint(args, comm):
    return load(args.checkpoint, comm=comm, connectivity="dense" if args.as_dense else None)


def evaluate(args, comm, say):
    net = load_checkpoint(args, comm)
    X, y, source = read_dataset(args, comm, net.dtype.name)
    extra = _extra(args.checkpoint, comm)
    fraction = args.test_fraction
    if fraction is None:
        fraction = extra.get("test_fraction", 0.0) if extra.get("source") == source else 0.0
    _, _, X_held, y_held = split(X, y, fraction, extra.get("split_seed", 0))
    if fraction:
        X, y = X_held, y_held
    normaliser = saved_normaliser(extra)
    if normaliser is not None:
        X = normaliser.transform(X)
    scores = net.evaluate(X, y)
    part = f"held-out {fraction:g} of " if fraction else ""
    say(f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on {len(y)} samples "
        f"({part}{source})")
    return scores


def _extra(path, comm):
    return read_header(path, comm)["extra"]


def saved_normaliser(extra):
    """The input normalisation that train stored in a checkpoint's extra, or None."""
    state = extra.get("normaliser")
    return data.Normaliser.from_dict(state) if state is not None else None


def predict(args, comm, say):
    net = load_checkpoint(args, comm)
    if args.inputs is None:
        X, _ = data.load_digits(dtype=net.dtype.name)
    else:
        X = data.read_on_root(lambda: data.load(args.inputs, "inputs", dtype=net.dtype.name), comm)
    normaliser = saved_normaliser(_extra(args.checkpoint, comm))
    if normaliser is not None:
        X = normaliser.transform(X)
    result = net.predict_proba(X) if args.probabilities else net.predict(X)
    if is_root(comm):
        if args.output.endswith(".npy"):
            np.save(args.output, result)
        else:
            np.savetxt(args.output, result, fmt="%.9g" if args.probabilities else "%d")
        say(f"wrote {len(result)} predictions to {args.output}")


def convert(args, say):
    if os.path.isdir(args.source):
        X, y, classes = data.convert_images(args.source, size=tuple(args.size), out=args.output)
        say(f"{len(X)} images of {len(classes)} classes ({', '.join(map(str, classes))}) "
            f"-> {written(args.output, True)}")
        return
    X = data.load(args.source, "inputs", dtype="float32")
    y = data.load(args.labels, "labels") if args.labels else None
    data.save_dataset(args.output, X, y)
    say(f"{len(X)} samples of {X.shape[1]} values -> {written(args.output, y is not None)}")


def written(output, labels):
    """The file(s) save_dataset wrote for `output`."""
    if not output.endswith(".txt"):
        return output
    stem = output[:-len(".txt")]
    return f"{stem}_inputs.txt" + (f" and {stem}_labels.txt" if labels else "")


def info(comm, say):
    from ghostmlp import __version__, _kernels
    facts = bench.machine_facts()
    say(f"ghostmlp {__version__}")
    say(f"build: {_kernels.BUILD_INFO}")
    say(f"MPI: {(facts['mpi'] or 'not available').splitlines()[0]}; ranks: "
        f"{comm.Get_size() if comm is not None else 1}")
    for blas in facts["blas"]:
        say(f"BLAS: {blas['library']} {blas['version']} ({blas['architecture']}), "
            f"{blas['threads']} thread(s), {blas['file']}")
    if not facts["blas"]:
        say("BLAS: (install threadpoolctl to see the BLAS libraries and threads)")
    say(f"machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB; "
        f"python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}")


# ----------------------------------------------------------------------- main

def is_root(comm):
    return comm is None or comm.Get_rank() == 0


def world():
    """MPI.COMM_WORLD when running on several ranks, else None (the serial fast path)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv=None):
    args = build_parser().parse_args(argv)
    comm = world()
    if comm is not None and not any(name in os.environ for name in THREAD_VARIABLES):
        # Several ranks share the cores: one BLAS thread each, unless the user said otherwise.
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    say = print if is_root(comm) else (lambda *_, **__: None)
    try:
        if args.command == "train":
            train(args, comm, say)
        elif args.command == "evaluate":
            evaluate(args, comm, say)
        elif args.command == "predict":
            predict(args, comm, say)
        elif args.command == "convert":
            convert(args, say)
        elif args.command == "bench":
            run_bench(args, comm, say)
        else:
            info(comm, say)
    except (ValueError, OSError, RuntimeError, ImportError) as error:
        return fail(f"ghostmlp {args.command}: error: {error}", comm)
    except Exception:
        return fail(traceback.format_exc(), comm)
    return 0


def run_bench(args, comm, say):
    from mpi4py import MPI
    size = comm.Get_size() if comm is not None else 1
    command = (f"mpiexec -n {size} " if size > 1 else "") + "ghostmlp " + shlex.join(sys.argv[1:])
    record = bench.time_training(args, comm if comm is not None else MPI.COMM_WORLD, command)
    if record is not None:
        say(bench.describe(record))
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(record) + "\n")


def fail(message, comm):
    """Print the error; on several ranks end the whole job (no rank is left waiting)."""
    where = f" (rank {comm.Get_rank()} of {comm.Get_size()})" if comm is not None else ""
    print(message.rstrip() + where, file=sys.stderr, flush=True)
    if comm is not None:
        comm.Abort(1)
    return 1
