"""The policy above the step: epochs over the data, their order, minibatches and their shares."""
import numpy as np

from ghostmlp.validate import check_inputs, check_targets, is_integer

# SeedSequence spawn key (SHUFFLE_STREAM, epoch) orders one epoch, whatever the rank count.
SHUFFLE_STREAM = 2


def fit(net, X, Y, epochs, batch_size, lr, shuffle=True, validation=None):
    """Train for `epochs` passes over (X, Y) in minibatches; returns the history.

    lr: the rate of this call's steps (the optimizer's own is left as it is). The order
    of epoch e is a permutation drawn from ``SeedSequence(seed, spawn_key=(2, e))`` (e
    counts all epochs the network has trained), so it depends on the seed and the epoch
    only; every replica computes its share of each minibatch. X and Y may be memory-
    mapped (numpy.load(path, mmap_mode="r")): each replica then reads only the rows of
    its shares, batch by batch. history: {"loss": [mean training loss per epoch]},
    plus "val_loss" and "val_accuracy" when validation=(X_val, Y_val).
    """
    if not is_integer(epochs) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
    if not is_integer(batch_size) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
    if validation is not None and len(validation) != 2:
        raise ValueError("fit: validation must be a pair (X_val, Y_val)")
    mapped = isinstance(X, np.memmap)
    X = check_inputs(X, net.sizes[0], net.dtype, convert=not mapped)
    if not mapped and not np.isfinite(X).all():
        raise ValueError("fit: X holds NaN or infinite values")
    targets = check_targets(Y, len(X), net.sizes[-1], net.dtype,
                            convert=not isinstance(Y, np.memmap))
    batch_size = min(int(batch_size), len(X))
    engine = net.engine
    engine.bind_share(batch_size)
    x_batch = np.empty((batch_size, X.shape[1]), dtype=net.dtype)
    t_dtype = np.int64 if targets.ndim == 1 else net.dtype
    t_batch = np.empty((batch_size,) + targets.shape[1:], dtype=t_dtype)
    history = {"loss": []}
    for _ in range(epochs):
        order = np.arange(len(X))
        if shuffle:
            stream = np.random.SeedSequence(net.seed, spawn_key=(SHUFFLE_STREAM, net.epochs_trained))
            order = np.random.default_rng(stream).permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            lo, hi = engine.share(len(index))
            xb, tb = x_batch[:hi - lo], t_batch[:hi - lo]
            _take_rows(X, index[lo:hi], xb)
            _take_rows(targets, index[lo:hi], tb)
            if mapped and not np.isfinite(xb).all():
                if engine.replicas == 1:
                    raise ValueError("fit: X holds NaN or infinite values (a row of the "
                                     f"minibatch of epoch {net.epochs_trained} at {start})")
                xb[:] = np.nan      # the whole batch's loss is NaN: every replica stops
            total += len(index) * engine.train(xb, tb, len(index), lr)
        net.epochs_trained += 1
        history["loss"].append(total / len(X))
        if validation is not None:
            scores = net.evaluate(*validation)
            history.setdefault("val_loss", []).append(scores["loss"])
            history.setdefault("val_accuracy", []).append(scores["accuracy"])
    return history


def _take_rows(source, index, out):
    """out := source[index] (rows), cast to out's dtype; a memory map reads only those rows."""
    if source.dtype == out.dtype:
        np.take(source, index, axis=0, out=out)
    else:
        out[...] = source[index]
