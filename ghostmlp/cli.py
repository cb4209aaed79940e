"""The `ghostmlp` command: train, evaluate, predict, convert, bench, plan, info; serial or under mpiexec."""
import argparse
import json
import os
import shlex
import sys
import traceback

import numpy as np

from ghostmlp import bench, data, defaults, optim, plan
from ghostmlp.checkpoint import load, read_header
from ghostmlp.engine import REPLICA_UPDATES
from ghostmlp.cli_agree import Agreement, fail
from ghostmlp.cli_data import check_features, is_root, read_dataset, saved_normaliser
from ghostmlp.cli_train import train
from ghostmlp.errors import TrainingDiverged
from ghostmlp.network import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from ghostmlp.schedule import SCHEDULES
from ghostmlp.splits import split_rows
from ghostmlp.train import evaluate_rows
from ghostmlp.validate import check_count, check_fraction, check_positive


# ------------------------------------------------------------------ arguments

def batch_option(text):
    """--batch-size: a positive integer or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or auto, got {text!r}")


def positive_int(text):
    """An option that must be a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


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


def add_threads_argument(parser):
    parser.add_argument("--threads", type=positive_int, help="BLAS threads per rank (serial: "
                        "the BLAS's own default; under MPI: 1, or what OPENBLAS_NUM_THREADS, "
                        "OMP_NUM_THREADS or MKL_NUM_THREADS say)")


def add_checkpoint_arguments(parser):
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--as-dense", action="store_true",
                        help="load a ghost checkpoint as the equivalent dense network, on any "
                             "number of ranks (ghost layouts need a rank count that divides K)")
    add_stall_argument(parser)


def add_stall_argument(parser):
    parser.add_argument("--stall-timeout", type=float, default=defaults.STALL_TIMEOUT,
                        help="end the job when a rank waits this many seconds in one "
                             f"communication call (0: never; {defaults.STALL_TIMEOUT:g})")


def build_parser():
    parser = argparse.ArgumentParser(prog="ghostmlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a network (default: the bundled digits)",
        description="Options left out take their defaults, or with --resume the checkpoint's.")
    add_data_arguments(train)
    train.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (256)")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, help="(relu)")
    train.add_argument("--output-activation", choices=OUTPUT_ACTIVATIONS, help="(softmax)")
    train.add_argument("--loss", choices=tuple(LOSSES), help="(cross_entropy)")
    train.add_argument("--optimizer", choices=tuple(optim.OPTIMIZERS), help="(adam)")
    train.add_argument("--learning-rate", type=float,
                       help="base rate of the schedule (adam and adamw 0.001, sgd 0.1)")
    train.add_argument("--schedule", choices=tuple(SCHEDULES),
                       help="constant (default); step: 1/5 of the rate after half the epochs, "
                            "1/25 after three quarters; cosine: annealed over --max-epochs "
                            "after --warmup epochs; plateau: 1/10 each time the monitored loss "
                            "stops improving (--tol, --n-iter-no-change); invscaling: "
                            "rate / (samples seen + 1)^0.5")
    train.add_argument("--warmup", type=int, help="cosine's linear warm-up epochs (0)")
    train.add_argument("--momentum", type=float, help="sgd's momentum (0)")
    train.add_argument("--weight-decay", type=float, help="(0)")
    train.add_argument("--max-epochs", "--epochs", type=int, dest="max_epochs",
                       help="at most this many epochs, a resumed run's included (200)")
    train.add_argument("--batch-size", type=batch_option, help="samples per step, or auto: "
                                                               "min(200, training samples) (auto)")
    train.add_argument("--tol", type=float, help="improvement in the monitored loss that "
                                                  "counts (1e-4)")
    train.add_argument("--n-iter-no-change", type=int,
                       help="stop after more than this many epochs without it (10; 0: never)")
    train.add_argument("--restore-best", action="store_const", const=True,
                       help="end with the weights of the epoch with the best monitored loss")
    train.add_argument("--connectivity", choices=("dense", "ghost"), help="(dense)")
    train.add_argument("--blocks", type=int, help="ghost blocks K (default: the working ranks)")
    train.add_argument("--ghost-gradients", choices=("exact", "local"), help="(exact)")
    train.add_argument("--master", action="store_true", help="rank 0 only gathers outputs and loss")
    train.add_argument("--grid", type=bench.grid_option,
                       help="DxM: D data-parallel replicas of M model ranks (default 1xranks), "
                            "or auto: the planner's choice for --batch-size")
    train.add_argument("--machine", help="with --grid auto: the machine file (default "
                                         "$GHOSTMLP_MACHINE)")
    train.add_argument("--replica-update", choices=REPLICA_UPDATES,
                       help="how replicas update: allreduce (sum the gradients), shared "
                            "(replicas on one node split the update), auto (shared where it "
                            "can be; the default)")
    train.add_argument("--seed", type=int, help="initialisation, shuffling and splits (0)")
    train.add_argument("--dtype", choices=("float32", "float64"), help="(float32)")
    train.add_argument("--normalise", choices=("none", "standard", "minmax"),
                       help="input normalisation, fitted on the training split only and "
                            "stored with the model (standard)")
    train.add_argument("--validation-fraction", type=float,
                       help="share of the training split held out each epoch; its loss is "
                            "then the monitored one (0)")
    train.add_argument("--history", help="write the per-epoch history here (.csv or .json)")
    train.add_argument("--plot", help="loss and accuracy curves as a PNG (needs matplotlib)")
    train.add_argument("--checkpoint", help="write a checkpoint here at the end")
    train.add_argument("--checkpoint-every", type=int, default=0, help="and every N epochs")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    add_stall_argument(train)

    add_threads_argument(train)

    evaluate = commands.add_parser("evaluate", help="loss and accuracy of a checkpoint")
    add_checkpoint_arguments(evaluate)
    add_data_arguments(evaluate)
    add_threads_argument(evaluate)

    predict = commands.add_parser("predict", help="write a checkpoint's predictions to a file")
    add_checkpoint_arguments(predict)
    add_data_arguments(predict, labels=False)
    predict.add_argument("--output", required=True, help="one class per line (.txt) or .npy")
    predict.add_argument("--probabilities", action="store_true", help="write the output rows")
    add_threads_argument(predict)

    convert = commands.add_parser("convert", help="images, IDX or text files to .npz or text")
    convert.add_argument("source", help="a folder of images (one subfolder per class), or a file")
    convert.add_argument("output", help="out.npz, or out.txt for the paper's text format")
    convert.add_argument("--labels", help="with a data file: its label file")
    convert.add_argument("--size", type=int, nargs=2, default=(8, 8), metavar=("W", "H"),
                         help="image size after resizing (default 8 8)")

    bench.add_arguments(commands.add_parser("bench", help="time training iterations (Table I models)"))
    plan.add_arguments(commands.add_parser(
        "plan", help="predict the step of every layout on P ranks and recommend one "
                     "(--calibrate: measure this machine)"))
    commands.add_parser("info", help="version, MPI, BLAS and build facts")
    return parser


# ------------------------------------------------- evaluate, predict, convert

def load_checkpoint(args, comm):
    return load(args.checkpoint, comm=comm, connectivity="dense" if args.as_dense else None,
                stall_timeout=args.stall_timeout)


def evaluate(args, comm, say, agreement):
    if args.test_fraction is not None:
        check_fraction("--test-fraction", args.test_fraction)
    net = load_checkpoint(args, comm)
    X, y, source = read_dataset(args, comm, net.dtype.name, agreement)
    check_features(X, net, args)
    extra = _extra(args.checkpoint, comm)
    fraction = args.test_fraction
    if fraction is None:
        fraction = extra.get("test_fraction", 0.0) if extra.get("source") == source else 0.0
    rows = split_rows(len(y), fraction, extra.get("split_seed", 0))[1] if fraction else None
    normaliser = saved_normaliser(extra)
    scores = evaluate_rows(net, X, y, rows, normaliser.transform if normaliser else None)
    part = f"held-out {fraction:g} of " if fraction else ""
    say(f"accuracy {scores['accuracy']:.4f}  loss {scores['loss']:.4f}  on "
        f"{len(y) if rows is None else len(rows)} samples "
        f"({part}{source})")
    return scores


def _extra(path, comm):
    return read_header(path, comm)["extra"]


def predict(args, comm, say, agreement):
    net = load_checkpoint(args, comm)
    if args.inputs is None:
        X, _ = data.load_digits(dtype=net.dtype.name)
    else:
        X = data.read_on_root(lambda: data.load(args.inputs, "inputs", dtype=net.dtype.name), comm)
    check_features(X, net, args)
    normaliser = saved_normaliser(_extra(args.checkpoint, comm))
    if normaliser is not None:
        X = normaliser.transform(X)
    result = net.predict_proba(X) if args.probabilities else net.predict(X)

    def write():
        if not is_root(comm):
            return
        if args.output.endswith(".npy"):
            np.save(args.output, result)
        else:
            np.savetxt(args.output, result, fmt="%.9g" if args.probabilities else "%d")

    agreement.run("writing the predictions", write)
    say(f"wrote {len(result)} predictions to {args.output}")


def convert(args, say):
    for size in args.size:
        check_count("--size", size)
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
    say(f"BLAS the kernels call: {bench.blas_label(facts)} (GHOSTMLP_BLAS="
        f"{os.environ.get('GHOSTMLP_BLAS', 'auto')})")
    for blas in facts["blas"]:
        say(f"BLAS loaded: {blas['library']} {blas['version']} ({blas['architecture']}), "
            f"{blas['threads']} thread(s), {blas['file']}")
    say(f"machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB; "
        f"python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}")


# ----------------------------------------------------------------------- main

def world():
    """MPI.COMM_WORLD when running on several ranks, else None (the serial fast path)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(args, comm):
    """--threads for the BLAS the kernels call (and every other BLAS in the process); under
    MPI, where ranks share the cores, one thread each unless the user said otherwise."""
    threads = getattr(args, "threads", None)
    if threads is None and comm is not None and not any(
            name in os.environ for name in THREAD_VARIABLES):
        threads = 1
    if threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")


def main(argv=None):
    args = build_parser().parse_args(argv)
    comm = world()
    limit_threads(args, comm)
    say = print if is_root(comm) else (lambda *_, **__: None)
    agreement = Agreement(comm)
    try:
        if hasattr(args, "stall_timeout"):
            agreement.watch_stalls(check_positive("--stall-timeout", args.stall_timeout,
                                                  allow_zero=True))
        if args.command == "train":
            train(args, comm, say, agreement)
        elif args.command == "evaluate":
            evaluate(args, comm, say, agreement)
        elif args.command == "predict":
            predict(args, comm, say, agreement)
        elif args.command == "convert":
            convert(args, say)
        elif args.command == "bench":
            run_bench(args, comm, say, agreement)
        elif args.command == "plan":
            plan.run(args, comm, say, agreement.run)
        else:
            info(comm, say)
    except (TrainingDiverged, ValueError, OSError, RuntimeError, ImportError) as error:
        return fail(f"ghostmlp {args.command}: error: {error}", agreement.comm)
    except Exception:
        return fail(traceback.format_exc(), agreement.comm)
    return 0


def run_bench(args, comm, say, agreement):
    from mpi4py import MPI
    size = comm.Get_size() if comm is not None else 1
    command = (f"mpiexec -n {size} " if size > 1 else "") + "ghostmlp " + shlex.join(sys.argv[1:])
    record = bench.time_training(args, comm if comm is not None else MPI.COMM_WORLD, command)

    def write():
        if record is not None and args.json:         # rank 0's record
            with open(args.json, "a") as out:
                out.write(json.dumps(record) + "\n")

    agreement.run("writing the results", write)
    if record is not None:
        say(bench.describe(record))
