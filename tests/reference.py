"""Plain numpy references of the kernels' math, shared by the kernel and LayerStack tests."""
import zlib

import numpy as np

from ghostmlp._kernels import EXP, IDENTITY, MSE, POISSON, RELU, SIGMOID, SOFTMAX, TANH


def f64(x):
    return np.asarray(x, dtype=np.float64)


def rng_for(*key):
    """A Generator seeded by the test's own parameters: reproducible, distinct per case."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ``axis`` is the neuron axis of a 2-D array: 0 for neuron-major H[n, B] (the kernels'
# layout), 1 for row-major samples X[B, n]; the batch is the other axis.

def act_ref(z, code, axis=0):
    """act(z) in float64; softmax normalises along the neuron `axis`."""
    z = f64(z)
    if code == SIGMOID:
        return np.exp(-np.logaddexp(0.0, -z))        # 1 / (1 + e^-z), no overflow
    if code == TANH:
        return np.tanh(z)
    if code == RELU:
        return np.maximum(z, 0.0)
    if code == IDENTITY:
        return z.copy()
    if code == EXP:
        return np.exp(z)
    if code == SOFTMAX:
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    raise AssertionError(code)


def deriv_ref(a, code):
    """act'(z) written through the output a = act(z), elementwise (so for either layout)."""
    a = f64(a)
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == RELU:
        return (a > 0).astype(np.float64)
    if code == IDENTITY:
        return np.ones_like(a)
    raise AssertionError(code)


def per_sample_loss_delta(a, y, act, loss, axis=0):
    """Each sample's loss and its d(loss)/dz for outputs a = act(z) and targets y of one shape."""
    a, y = f64(a), f64(y)
    if loss == MSE:
        g = a - y
        value = 0.5 * g * g
        if act == SOFTMAX:
            delta = a * (g - np.sum(g * a, axis=axis, keepdims=True))
        else:
            delta = g * deriv_ref(a, act)
    elif loss == POISSON:
        assert act == EXP
        ratio = np.divide(y, a, out=np.ones_like(y), where=y > 0)
        value = y * np.log(ratio) - y + a
        delta = a - y
    elif act == SOFTMAX:
        value = -y * np.log(a)
        delta = a * np.sum(y, axis=axis, keepdims=True) - y
    else:
        assert act == SIGMOID
        value = -(y * np.log(a) + (1.0 - y) * np.log(1.0 - a))
        delta = a - y
    return np.sum(value, axis=axis), delta


def loss_delta_ref(a, y, act, loss, axis=0, weights=None):
    """sum_i w_i loss_i / sum_i w_i (w = 1: the batch mean) and its d/dz."""
    value, delta = per_sample_loss_delta(a, y, act, loss, axis)
    w = np.ones(len(value)) if weights is None else f64(weights)
    return np.sum(w * value) / np.sum(w), delta * np.expand_dims(w, axis) / np.sum(w)


def assert_finite_close(got, ref, dtype, rtol, scale):
    """`got` has `dtype`, is all finite, and assert_allclose(got, ref) holds with `rtol`
    and atol = rtol * max(scale)."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(got)), "non-finite values in the result"
    np.testing.assert_allclose(f64(got), ref, rtol=rtol, atol=rtol * float(np.max(scale)))
