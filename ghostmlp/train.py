"""The policy above the step: epochs, their order and minibatches, the rate of each, validation, when to stop."""
import math
import time

import numpy as np
import scipy.sparse

from ghostmlp import defaults
from ghostmlp.errors import TrainingDiverged
from ghostmlp.schedule import Constant
from ghostmlp.validate import (
    check_count, check_flag, check_inputs, check_positive, check_sample_weight, check_targets)

# SeedSequence spawn keys: (SHUFFLE_STREAM, epoch) orders one epoch and (VALIDATION_STREAM,)
# draws the validation rows, whatever the rank count or grid.
SHUFFLE_STREAM, VALIDATION_STREAM = 2, 3
EVALUATE_ROWS = 1024        # rows that evaluate_rows reads and evaluates at once


class Patience:
    """scikit-learn's plateau rule on a monitored value, lower better (mode "min") or higher.

    An epoch improves when its value beats the best by tol (min: value <= best - tol; max:
    value >= best + tol); `exhausted` once more than n_iter_no_change epochs in a row did
    not (math.inf: never). The best follows every better value, however small the gain.
    """

    def __init__(self, n_iter_no_change=defaults.N_ITER_NO_CHANGE, tol=defaults.TOL, mode="min",
                 best=None, count=0):
        self.n_iter_no_change = (n_iter_no_change if n_iter_no_change == math.inf else
                                 check_count("n_iter_no_change", n_iter_no_change))
        self.tol = check_positive("tol", tol, allow_zero=True)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode, self.count = mode, int(count)
        self.best = (math.inf if mode == "min" else -math.inf) if best is None else float(best)

    def update(self, value):
        """Count epoch `value`; True when it is a new best."""
        sign = 1 if self.mode == "min" else -1
        self.count = self.count + 1 if sign * value > sign * self.best - self.tol else 0
        better = sign * value < sign * self.best
        if better:
            self.best = float(value)
        return better

    @property
    def exhausted(self):
        return self.count > self.n_iter_no_change

    def config(self):
        return dict(vars(self))


class Trainer:
    """Minibatch training of `net`, epoch after epoch.

    batch_size: samples per step, or "auto" (min(200, n)); schedule: a
    ghostmlp.schedule.Schedule (default: the optimizer's rate, constant; Network.fit
    resolves names).
    Epoch e (counted over all the network's epochs) visits the samples in the order of a
    permutation drawn from ``SeedSequence(seed, spawn_key=(2, e))``: it depends on the seed
    and the epoch only. Every replica of a grid computes its share of each minibatch. X
    and Y may be memory-mapped (numpy.load(path, mmap_mode="r")): each replica then reads
    only the rows of its shares, batch by batch; a scipy.sparse X is densified a minibatch
    at a time. transform(xb): the network's inputs for raw rows xb (e.g. a fitted
    Normaliser's transform), applied to each minibatch and to held-out rows as they are
    read, so that nothing transforms the whole of X. A non-finite loss (any step) or weight
    (checked after each epoch) raises ghostmlp.TrainingDiverged on every rank.
    `samples`: training samples seen (scikit-learn's t_), which InvScaling follows.
    """

    def __init__(self, net, batch_size=defaults.BATCH_SIZE, schedule=None, shuffle=True,
                 transform=None):
        self.net, self.transform = net, transform
        self.shuffle = check_flag("shuffle", shuffle)
        if batch_size != "auto":
            check_count("batch_size", batch_size)
        self.batch_size = batch_size
        self.schedule = Constant(net.optimizer.lr) if schedule is None else schedule
        self.samples = 0

    # ------------------------------------------------------------------ epochs

    def epoch(self, X, Y, rows=None, sample_weight=None):
        """One pass over (X, Y) (or over its `rows`) at the schedule's rate; the mean loss.

        sample_weight: w[n] (checked), each step's loss sum w_i loss_i / sum w_i over its
        minibatch (a minibatch of zero weights is skipped); the epoch's loss is then the
        weighted mean.
        """
        return self._pass(*self._checked(X, Y, sample_weight), rows)

    def _checked(self, X, Y, sample_weight):
        """(X, targets, weights) checked once for any number of passes (sparse X as CSR)."""
        net = self.net
        sparse = scipy.sparse.issparse(X)
        mapped = isinstance(X, np.memmap) or sparse
        X = X.tocsr() if sparse else check_inputs(X, net.sizes[0], net.dtype, convert=not mapped)
        if sparse and (X.ndim != 2 or X.shape[1] != net.sizes[0] or X.shape[0] == 0):
            raise ValueError(f"X must have shape [B, {net.sizes[0]}] with B >= 1, got {X.shape}")
        targets = check_targets(Y, X.shape[0], net.sizes[-1], net.dtype,
                                convert=not isinstance(Y, np.memmap), loss=net.loss)
        if not np.isfinite(X.data if sparse else X if not mapped else []).all():
            raise ValueError("fit: X holds NaN or infinite values")     # a memory map: by batch
        return X, targets, check_sample_weight(sample_weight, X.shape[0], net.dtype)

    def _pass(self, X, targets, weights, rows):
        net, engine = self.net, self.net.engine
        sparse = scipy.sparse.issparse(X)
        mapped = isinstance(X, np.memmap) or sparse
        n = X.shape[0]
        rows = np.arange(n) if rows is None else rows
        batch = min(defaults.batch_size(len(rows)) if self.batch_size == "auto"
                    else self.batch_size, len(rows))
        engine.bind_share(batch)
        x_batch = np.empty((batch, X.shape[1]), dtype=net.dtype)
        t_batch = np.empty((batch,) + targets.shape[1:],
                           dtype=np.int64 if targets.ndim == 1 else net.dtype)
        order = rows
        if self.shuffle:
            stream = np.random.SeedSequence(net.seed, spawn_key=(SHUFFLE_STREAM, net.epochs_trained))
            order = rows[np.random.default_rng(stream).permutation(len(rows))]
        lr = self.rate()
        take_x, take_t = _taker(X, x_batch.dtype), _taker(targets, t_batch.dtype)
        replicated, steps = engine.replicas > 1, net.steps_trained
        total = seen = 0.0
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            wb = weights[index] if weights is not None else None
            mass = len(index) if wb is None else float(np.sum(wb, dtype=np.float64))
            if mass == 0:
                continue
            lo, hi = engine.share(len(index)) if replicated else (0, len(index))
            xb, tb = x_batch[:hi - lo], t_batch[:hi - lo]
            take_x(index[lo:hi], xb)
            take_t(index[lo:hi], tb)
            if mapped and not sparse and not np.isfinite(xb).all():
                if engine.replicas == 1:
                    raise ValueError("fit: X holds NaN or infinite values (a row of the "
                                     f"minibatch of epoch {net.epochs_trained} at {start})")
                xb[:] = np.nan      # the whole batch's loss is NaN: every replica stops
            if self.transform is not None:
                xb[...] = self.transform(xb)
            steps += 1
            try:
                loss = engine.train(xb, tb, len(index), lr, wb)
            except TrainingDiverged:        # a grid's sum was not finite: no update applied
                loss = math.nan
            if not math.isfinite(loss):
                raise self._diverged(f"the loss is {loss}", steps)
            total += mass * loss
            seen += mass
            self.samples += len(index)
        if not engine.weights_finite():
            raise self._diverged("a weight is not finite")
        net.epochs_trained += 1
        return total / seen

    def _inputs(self, X, rows):
        """The network's inputs for X's `rows` (transformed), in memory."""
        raw = _rows_of(X, rows)
        return raw if self.transform is None else self.transform(raw)

    def rate(self):
        """The learning rate of the network's next epoch."""
        return self.schedule.rate(self.net.epochs_trained, self.samples)

    def _diverged(self, what, step=None):
        net, rate = self.net, self.rate()
        step = net.steps_trained if step is None else step
        return TrainingDiverged(
            f"training diverged in epoch {net.epochs_trained + 1}, step {step} (learning rate "
            f"{rate:.4g}): {what}; lower the learning rate or standardise the inputs",
            net.epochs_trained, step, rate)

    # -------------------------------------------------------------------- runs

    def run(self, X, Y, max_epochs=defaults.MAX_EPOCHS, validation=None, validation_fraction=0.0,
            patience=None, restore_best=False, score=None, monitor=None, on_epoch=None,
            sample_weight=None, rows=None):
        """Epochs until max_epochs or a plateau; the history.

        rows: the training rows of X (default all; X may be memory-mapped). validation:
        (X_val, Y_val), or validation_fraction of those rows held out (drawn from the seed;
        stratified when Y holds class indices) and evaluated by rows. The monitored value is
        score(net, X_val, Y_val) (higher better) when given, else the validation loss,
        else the training loss; sample_weight (w[n]) weighs the training and the held-out
        rows' losses and accuracies (score(net, X_val, Y_val, w_val) is then called with
        theirs); monitor(row), when given, computes the monitored value from the epoch's
        row instead (e.g. a loss with a penalty added); the row keeps it as "monitored".
        patience (a Patience, None: never stop early): stop once
        it is exhausted, unless the schedule lowers the rate instead
        (ghostmlp.schedule.Plateau); it keeps its count between runs. restore_best:
        end with the weights of the best epoch. on_epoch(row): called after each epoch.
        history: lists per epoch ("epoch", "learning_rate", "loss", "monitored", "seconds", and
        "val_loss", "val_accuracy", "val_score" with validation), "best_epoch", and
        "stopped": "max_epochs", "converged" (training loss) or "early_stopping".
        """
        max_epochs = check_count("max_epochs", max_epochs)
        evaluate = None
        if validation is None and validation_fraction:
            pool = np.arange(len(Y)) if rows is None else np.asarray(rows)
            train_at, held_at = validation_rows(_rows_of(Y, pool), validation_fraction,
                                                self.net.seed)
            rows, held = pool[train_at], pool[held_at]
            evaluate = lambda: evaluate_rows(self.net, X, Y, held, self.transform,  # noqa: E731
                                             sample_weight)
            if score is not None:
                validation = (self._inputs(X, held), _rows_of(Y, held))
                if sample_weight is not None:
                    validation += (_rows_of(np.asarray(sample_weight), held),)
        elif validation is not None:
            if len(validation) not in (2, 3):
                raise ValueError("fit: validation must be (X_val, Y_val) or (X_val, Y_val, w_val)")
            evaluate = lambda: self.net.evaluate(*validation)    # noqa: E731
        mode = "max" if score is not None else "min"
        if patience is not None and patience.mode != mode:
            raise ValueError(f"fit: a {'score' if score else 'loss'} is monitored: the "
                             f"patience's mode must be {mode!r}")
        watch = Patience(1, 0.0, mode)       # the best epoch, for restore_best and the history
        keep = None
        history = {"epoch": [], "learning_rate": [], "loss": [], "seconds": [],
                   "stopped": "max_epochs", "best_epoch": None}
        start = time.perf_counter()
        checked = self._checked(X, Y, sample_weight)
        for _ in range(max_epochs):
            row = {"epoch": self.net.epochs_trained + 1, "learning_rate": self.rate()}
            row["loss"] = self._pass(*checked, rows)
            monitored = row["loss"]
            if evaluate is not None:
                scores = evaluate()
                row.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
                monitored = row["val_loss"]
                if score is not None:
                    monitored = row["val_score"] = float(score(self.net, *validation))
            if monitor is not None:
                monitored = float(monitor(row))
            row["monitored"] = monitored
            row["seconds"] = time.perf_counter() - start
            for key, value in row.items():
                history.setdefault(key, []).append(value)
            if watch.update(monitored):
                history["best_epoch"] = row["epoch"]
                if restore_best:
                    keep = self.net.parameters.segment("weights").copy()
            stopped = None
            if patience is not None:
                patience.update(monitored)
                if patience.exhausted:
                    if self.schedule.reduce():
                        patience.count = 0
                    else:
                        stopped = "converged" if evaluate is None else "early_stopping"
            if on_epoch is not None:        # after the epoch's decisions: a checkpoint holds them
                on_epoch(row)
            if stopped:
                history["stopped"] = stopped
                break
        if keep is not None:
            with self.net.engine.writing() as writes:
                if writes:
                    self.net.parameters.segment("weights")[:] = keep
        return history


def evaluate_rows(net, X, Y, rows=None, transform=None, sample_weight=None):
    """net.evaluate over X's `rows` (default all), read EVALUATE_ROWS at a time (a memory
    map stays on disk) and transformed as read: {"loss", "accuracy"}, (weighted) means."""
    rows = np.arange(len(Y)) if rows is None else np.asarray(rows)
    if len(rows) == 0:
        raise ValueError("evaluate: no rows to evaluate")
    weights = None if sample_weight is None else np.asarray(sample_weight)
    loss = accuracy = mass = 0.0
    for start in range(0, len(rows), EVALUATE_ROWS):
        chunk = np.sort(rows[start:start + EVALUATE_ROWS])
        xb = _rows_of(X, chunk)
        xb = xb if transform is None else transform(xb)
        wb = None if weights is None else weights[chunk]
        share = len(chunk) if wb is None else float(np.sum(wb, dtype=np.float64))
        if share == 0:
            continue
        scores = net.evaluate(xb, _rows_of(Y, chunk), sample_weight=wb)
        loss, accuracy = loss + share * scores["loss"], accuracy + share * scores["accuracy"]
        mass += share
    return {"loss": loss / mass, "accuracy": accuracy / mass}


def validation_rows(Y, fraction, seed):
    """(training rows, validation rows) of Y's samples, each sorted: round(fraction n) rows
    drawn from SeedSequence(seed, spawn_key=(3,)), per class when Y holds class indices."""
    check_positive("validation_fraction", fraction, upper=1)
    labels = np.asarray(Y) if np.ndim(Y) == 1 else None
    n = len(Y)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(VALIDATION_STREAM,))
                                  ).permutation(n)
    if labels is None:
        held = order[:round(fraction * n)]
    else:
        held = np.concatenate([
            members[:round(fraction * len(members))]
            for members in (order[labels[order] == c] for c in np.unique(labels))])
    if len(held) == 0 or len(held) == n:
        raise ValueError(f"validation_fraction={fraction} of {n} samples leaves no "
                         "validation or no training rows")
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _rows_of(A, rows):
    """Rows of A (a sparse A: densified, as the held-out rows are evaluated whole)."""
    return A[rows].toarray() if scipy.sparse.issparse(A) else np.take(A, rows, axis=0)


def _taker(source, dtype):
    """take(index, out): out := source[index] (rows) cast to dtype, chosen once per pass; a
    memory map reads only those rows, a sparse (CSR) source is densified only there."""
    if scipy.sparse.issparse(source):
        def take(index, out):
            out[...] = source[index].toarray()
    elif source.dtype == dtype:
        def take(index, out):
            source.take(index, axis=0, out=out)
    else:
        def take(index, out):
            out[...] = source[index]
    return take
