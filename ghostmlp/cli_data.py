"""The command's data: digits, files read on rank 0 or memory-mapped, a checkpoint's normaliser."""
import os

import numpy as np

from ghostmlp import data
from ghostmlp.formats import map_npy


def is_root(comm):
    """Whether this rank writes the command's files and prints: rank 0, or the serial run."""
    return comm is None or comm.Get_rank() == 0


def read_dataset(args, comm, dtype, agreement):
    """(X, y, source) on every rank: the bundled digits, or the files, read by rank 0 only
    and broadcast -- except .npy inputs and labels, which every rank memory-maps (the
    files must be visible to every rank), so that no rank holds the data in memory; a
    rank that cannot map them fails every rank, naming itself (agreement: the command's
    ghostmlp.cli_agree.Agreement).

    Labels come from --labels, from --label-column of a CSV, or from the y array of an
    .npz holding X and y (as `ghostmlp convert` writes).
    """
    if args.inputs is None:
        if args.labels is not None or args.label_column is not None:
            raise ValueError("--labels and --label-column need --inputs")
        X, y = data.load_digits(dtype=dtype)
        return X, y, "digits"
    if mapped(args):
        X, y = agreement.run("mapping the data", lambda: map_files(args))
        data.read_on_root(lambda: check_mapped(X, y, args), comm)   # one clear error, every rank
        return X, y, os.path.abspath(args.inputs)
    X, y = data.read_on_root(lambda: read_files(args, dtype), comm)
    if len(X) != len(y):
        raise ValueError(f"{args.inputs} has {len(X)} samples but {args.labels} has {len(y)} labels")
    return X, y, os.path.abspath(args.inputs)


def mapped(args):
    """Whether the inputs and labels are .npy files that train may memory-map."""
    return (getattr(args, "command", None) == "train" and args.labels is not None
            and args.label_kind == "auto"
            and all(str(p).endswith(".npy") for p in (args.inputs, args.labels)))


def map_files(args):
    """(X[n, d], labels) memory-mapped read-only (inputs of more dimensions: a row a sample)."""
    X, y = map_npy(args.inputs), map_npy(args.labels)
    return (X.reshape(len(X), -1) if X.ndim > 2 else X), y


def check_mapped(X, y, args):
    """Raise a ValueError naming the file unless the mapped .npy pair (map_files) is a data
    set train can map: numbers X[n, ...], and class indices y[n] >= 0 or rows Y[n, k].
    Returns an empty array, for read_on_root to relay (it broadcasts arrays or an error)."""
    if X.ndim < 2 or len(X) == 0 or X.dtype.kind not in "biuf":
        raise ValueError(f"{args.inputs}: expected numbers, one row per sample, got "
                         f"{X.dtype} of shape {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"{args.inputs} has {len(X)} samples but {args.labels} has {len(y)} labels")
    if not ((y.ndim == 1 and y.dtype.kind in "iu" and y.min() >= 0)
            or (y.ndim == 2 and y.dtype.kind in "biuf")):
        raise ValueError(f"{args.labels}: expected class indices y[n] >= 0 (integers) or rows "
                         f"Y[n, k], got {y.dtype} of shape {y.shape}")
    return np.zeros(0)


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


def check_features(X, net, args):
    """Raise a ValueError naming the inputs and the checkpoint unless X[n, d] has the d
    inputs of the checkpoint's network."""
    if X.shape[1] != net.sizes[0]:
        source = args.inputs or "the digits data set"
        raise ValueError(f"{source}: {X.shape[1]} features per sample, but the checkpoint "
                         f"{args.checkpoint} takes {net.sizes[0]} inputs")


def saved_normaliser(extra):
    """The input normalisation that train stored in a checkpoint's extra, or None."""
    state = extra.get("normaliser")
    return data.Normaliser.from_dict(state) if state is not None else None
