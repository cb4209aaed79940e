"""Argument checks shared by the data modules: each returns the checked value or raises ValueError."""
import numbers

import numpy as np


def float_dtype(dtype):
    """np.dtype of float32 or float64, from anything np.dtype reads."""
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def choice(name, value, options):
    """value, when it is one of options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def count(name, value):
    """int(value), when it is a positive integer (not a bool)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
