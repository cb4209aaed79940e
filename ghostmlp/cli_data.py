"""The command's data: digits or files read on rank 0, held-out splits, a checkpoint's normaliser."""
import os

from ghostmlp import data


def is_root(comm):
    """Whether this rank writes the command's files and prints: rank 0, or the serial run."""
    return comm is None or comm.Get_rank() == 0


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


def saved_normaliser(extra):
    """The input normalisation that train stored in a checkpoint's extra, or None."""
    state = extra.get("normaliser")
    return data.Normaliser.from_dict(state) if state is not None else None
