"""Plain numpy references of the kernels' math, shared by the kernel and LayerStack tests."""
import zlib

import numpy as np

from ghostmlp._kernels import IDENTITY, MSE, RELU, SIGMOID, SOFTMAX, TANH


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


def loss_delta_ref(a, y, act, loss, axis=0):
    """Batch-mean loss and d(mean loss)/dz for outputs a = act(z) and targets y of one shape."""
    a, y = f64(a), f64(y)
    batch = a.shape[1 - axis]
    if loss == MSE:
        g = a - y
        value = 0.5 * np.sum(g * g) / batch
        if act == SOFTMAX:
            delta = a * (g - np.sum(g * a, axis=axis, keepdims=True))
        else:
            delta = g * deriv_ref(a, act)
    elif act == SOFTMAX:
        value = -np.sum(y * np.log(a)) / batch
        delta = a * np.sum(y, axis=axis, keepdims=True) - y
    else:
        assert act == SIGMOID
        value = -np.sum(y * np.log(a) + (1.0 - y) * np.log(1.0 - a)) / batch
        delta = a - y
    return value, delta / batch


def assert_finite_close(got, ref, dtype, rtol, scale):
    """`got` has `dtype`, is all finite, and assert_allclose(got, ref) holds with `rtol`
    and atol = rtol * max(scale)."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(got)), "non-finite values in the result"
    np.testing.assert_allclose(f64(got), ref, rtol=rtol, atol=rtol * float(np.max(scale)))
