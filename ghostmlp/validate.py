"""Checks of user-given parameters and arguments, each raising a ValueError that names it."""
import math
import numbers

import numpy as np

from ghostmlp._kernels import label_range


def is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def dtype_name(dtype):
    """numpy's name of `dtype` ("float32", ...), or None when it names no dtype."""
    try:
        return None if dtype is None else np.dtype(dtype).name
    except TypeError:
        return None


def float_dtype(dtype):
    """np.dtype of float32 or float64 in native byte order, from anything np.dtype reads."""
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt.newbyteorder("=")


def choice(name, value, options):
    """value, when it is one of options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_count(name, value, allow_zero=False):
    """int(value), when it is a positive (allow_zero: non-negative) integer, not a bool."""
    if not is_integer(value) or value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    return int(value)


def check_positive(name, value, allow_zero=False, upper=math.inf):
    """float(value) if it is a finite real > 0 (>= 0 with allow_zero) and < upper."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero) or value >= upper):
        bound = ">= 0" if allow_zero else "> 0"
        limit = "" if upper == math.inf else f" and < {upper}"
        raise ValueError(f"{name} must be a finite number {bound}{limit}, got {value!r}")
    return float(value)


def check_flag(name, value):
    """bool(value), when it is True or False (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_fraction(name, value):
    """float(value), when it is a number in [0, 1) (a share held out)."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not 0 <= value < 1):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


def check_layer(kind, size, activation, kinds, allowed, default):
    """The activation of a layer to add after layers of `kinds` (allowed: its kind's
    choices; default: the activation when None is given)."""
    if kind not in ("input", "hidden", "output"):
        raise ValueError(f"add_layer: kind must be 'input', 'hidden' or 'output', got {kind!r}")
    if not is_integer(size) or size < 1:
        raise ValueError(f"add_layer: size must be a positive integer, got {size!r}")
    if (kind == "input") != (not kinds):
        raise ValueError("add_layer: the first layer, and only the first, is 'input'")
    if "output" in kinds:
        raise ValueError("add_layer: no layer may follow the 'output' layer")
    if kind == "input":
        if activation is not None:
            raise ValueError("add_layer: the input layer takes no activation")
        return None
    activation = activation or default
    if activation not in allowed:
        raise ValueError(f"add_layer: a {kind} layer's activation must be one of "
                         f"{allowed}, got {activation!r}")
    return activation


def check_inputs(X, n_in, dtype, convert=True):
    """X as a C-contiguous dtype[B, n_in] with B >= 1 (convert=False: as it is, checked)."""
    X = np.asarray(X) if convert else X
    if X.ndim != 2 or X.shape[1] != n_in or len(X) == 0:
        raise ValueError(f"X must have shape [B, {n_in}] with B >= 1, got {X.shape}")
    return np.ascontiguousarray(X, dtype=dtype) if convert else X


def check_targets(Y, batch, n_out, dtype, convert=True, loss=None):
    """Class indices as int64[batch], or rows as dtype[batch, n_out], checked against n_out.

    convert=False: checked only, returned as they are (a memory map stays one). loss
    "poisson": rows must be >= 0 (the deviance's counts).
    """
    Y = np.asarray(Y) if convert else Y
    if Y.ndim == 0:
        raise ValueError(f"Y must be class indices [B] or rows [B, {n_out}], got {Y!r}")
    if len(Y) != batch:
        raise ValueError(f"Y must have {batch} rows (one per sample of X), got {len(Y)}")
    if Y.ndim == 1:
        if Y.dtype.kind not in "iu":
            raise ValueError(f"Y: class indices must be integers, got dtype {Y.dtype}")
        if convert and Y.dtype != np.uint64:    # uint64 beyond 2^63 would wrap in int64
            Y = np.ascontiguousarray(Y, dtype=np.int64)
        lo, hi = label_range(Y) if Y.dtype == np.int64 and Y.flags.c_contiguous else (
            Y.min(), Y.max())
        if lo < 0 or hi >= n_out:
            raise ValueError(f"Y: class indices must lie in [0, {n_out}), got [{lo}, {hi}]")
        return np.ascontiguousarray(Y, dtype=np.int64) if convert else Y
    if Y.ndim != 2 or Y.shape[1] != n_out:
        raise ValueError(f"Y must be class indices [B] or rows [B, {n_out}], got shape {Y.shape}")
    if loss == "poisson" and not np.all(Y >= 0):
        raise ValueError(f"Y: the Poisson loss needs targets >= 0, got a minimum of {np.min(Y)}")
    return np.ascontiguousarray(Y, dtype=dtype) if convert else Y


def check_sample_weight(sample_weight, batch, dtype):
    """None, or sample_weight as a C-contiguous dtype[batch] of finite values >= 0, not all 0."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim != 1 or len(w) != batch or w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numbers [{batch}] (one per sample of X), "
                         f"got {w.dtype} of shape {w.shape}")
    with np.errstate(over="ignore"):        # too large for dtype: inf, refused below
        w = np.ascontiguousarray(w, dtype=dtype)
    if not np.isfinite(w).all() or w.min() < 0:
        raise ValueError("sample_weight must be finite and >= 0 (in the network's dtype), "
                         f"got a range of [{w.min()}, {w.max()}]")
    if not w.any():
        raise ValueError("sample_weight: at least one weight must be > 0, got all zeros")
    return w


def check_output(loss, activation, allowed):
    """Raise a ValueError naming both unless the loss takes the output activation (allowed: its choices)."""
    if activation not in allowed:
        raise ValueError(f"initialize: loss {loss!r} needs an output activation among {allowed}, "
                         f"got {activation!r}")


def check_network(seed, dtype, loss, comm, connectivity, blocks, ghost_gradients, master, dtypes,
                  losses):
    """Raise a ValueError naming the first of Network's arguments that is not valid."""
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if dtype_name(dtype) not in dtypes:
        raise ValueError(f"dtype must be one of {dtypes}, got {dtype!r}")
    if not isinstance(loss, str) or loss not in losses:
        raise ValueError(f"loss must be one of {losses}, got {loss!r}")
    if comm is not None and not hasattr(comm, "Get_size"):
        raise ValueError(f"comm must be an mpi4py communicator or None, got {comm!r}")
    if connectivity not in ("dense", "ghost"):
        raise ValueError(f"connectivity must be 'dense' or 'ghost', got {connectivity!r}")
    if ghost_gradients not in ("exact", "local"):
        raise ValueError(f"ghost_gradients must be 'exact' or 'local', got {ghost_gradients!r}")
    if blocks is not None and (not is_integer(blocks) or blocks < 1):
        raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
    if blocks is not None and connectivity == "dense":
        raise ValueError("blocks applies to connectivity='ghost' only")
    check_flag("master", master)


def check_weight_pairs(weights, sizes):
    """Raise a ValueError unless weights is [(W[a, b], b[b])] for the layers of `sizes`, finite."""
    shapes = [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])]
    if len(weights) != len(shapes):
        raise ValueError(f"set_weights: expected {len(shapes)} (W, b) pairs, got {len(weights)}")
    for index, ((w_shape, b_shape), (new_w, new_b)) in enumerate(zip(shapes, weights)):
        new_w, new_b = np.asarray(new_w), np.asarray(new_b)
        if new_w.shape != w_shape or new_b.shape != b_shape:
            raise ValueError(f"set_weights: pair {index} must have shapes {w_shape} and "
                             f"{b_shape}, got {new_w.shape} and {new_b.shape}")
        if not (np.isfinite(new_w).all() and np.isfinite(new_b).all()):
            raise ValueError(f"set_weights: pair {index} holds NaN or infinite values")


def check_grid(grid, size):
    """(D, M) with D * M == size: D replicas of M model ranks; None means (1, size); "auto"
    (the planner's choice, made later) stays "auto"."""
    if grid is None:
        return 1, size
    if grid == "auto":
        return grid
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(is_integer(n) and n >= 1 for n in grid)):
        raise ValueError(f"grid must be a pair (D, M) of positive integers, got {grid!r}")
    if grid[0] * grid[1] != size:
        raise ValueError(f"grid={tuple(grid)} holds {grid[0] * grid[1]} ranks, but the "
                         f"communicator has {size}")
    return int(grid[0]), int(grid[1])


def parse_grid(text):
    """A command line's grid: "DxM" as (D, M), or "auto"; ValueError names the option."""
    if text == "auto":
        return text
    try:
        replicas, model = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--grid must be DxM (D replicas of M model ranks, e.g. 2x1) or auto, "
                         f"got {text!r}") from None
    return replicas, model
