"""Checks of user-given parameters, each raising a ValueError that names the parameter."""
import math
import numbers

import numpy as np


def is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def dtype_name(dtype):
    """numpy's name of `dtype` ("float32", ...), or None when it names no dtype."""
    try:
        return None if dtype is None else np.dtype(dtype).name
    except TypeError:
        return None


def check_positive(name, value, allow_zero=False, upper=math.inf):
    """float(value) if it is a finite real > 0 (>= 0 with allow_zero) and < upper."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero) or value >= upper):
        bound = ">= 0" if allow_zero else "> 0"
        limit = "" if upper == math.inf else f" and < {upper}"
        raise ValueError(f"{name} must be a finite number {bound}{limit}, got {value!r}")
    return float(value)
