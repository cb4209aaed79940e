"""The def wrappers of ghostmlp._kernels against literal float64 numpy formulas.

Every kernel runs on float32 and float64 inputs; the reference is recomputed in float64
from the very same (already rounded) inputs, so the only differences left are the
kernel's own rounding errors. Layout as in the module docstring: activations and deltas
neuron-major H[n, B], weights W[fan_in, fan_out], biases b[fan_out], all C-contiguous.

Tolerances: ``rtol = RTOL[dtype]``; where a result is a sum of terms that can cancel (a
matrix product, z + b, a - y) the absolute tolerance is ``rtol`` times the magnitude of
those terms (e.g. ``|W|.T @ |H| + |b|``), the scale the rounding error is relative to.
"""
import warnings

import numpy as np
import pytest

from ghostmlp import _kernels as K
from ghostmlp._kernels import (
    CROSS_ENTROPY, EXP, IDENTITY, MSE, POISSON, RELU, SIGMOID, SOFTMAX, TANH,
    bias_activation, forward_slice, fused_delta_update, hidden_delta, outer_update,
    output_delta)
from reference import act_ref, assert_finite_close, deriv_ref, f64, loss_delta_ref, rng_for

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}

ACTS = {SIGMOID: "sigmoid", TANH: "tanh", RELU: "relu", IDENTITY: "identity",
        SOFTMAX: "softmax", EXP: "exp"}
ALL_ACTS = [SIGMOID, TANH, RELU, IDENTITY, SOFTMAX, EXP]
# Outputs whose error is relative to the value (an error e in z is a relative e in act(z)).
RELATIVE_ACTS = (SOFTMAX, EXP)
HIDDEN_ACTS = [SIGMOID, TANH, RELU, IDENTITY]

# (n_in, n_out, batch): 1, primes and sizes that are not multiples of any block size;
# batch 1 takes the gemv/ger paths, batch > 1 the gemm paths.
SHAPES = [(1, 1, 1), (3, 7, 1), (13, 31, 5), (127, 65, 17), (257, 300, 3), (65, 257, 1),
          (7, 3, 2)]


def _id_act(code):
    return ACTS[code]


def _id_shape(shape):
    return "x".join(map(str, shape))


def _id_dtype(dtype):
    return np.dtype(dtype).name


dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=_id_dtype)
shapes = pytest.mark.parametrize("n_in,n_out,batch", SHAPES, ids=[_id_shape(s) for s in SHAPES])


# ------------------------------------------------------------ float64 references

def assert_close(got, ref, dtype, scale=0.0, rtol=None):
    """assert_allclose(got, ref) with rtol = RTOL[dtype] and atol = rtol * scale, all finite."""
    assert_finite_close(got, ref, dtype, RTOL[dtype] if rtol is None else rtol, scale)


def random_hidden(rng, n, batch, dtype, act):
    """A valid output of `act`: act applied to random z (relu gives exact zeros)."""
    return act_ref(rng.normal(0.0, 1.5, (n, batch)), act).astype(dtype)


# ------------------------------------------------------------------ the codes

def test_activation_names_reach_their_functions():
    """Network's names -> the kernels' codes -> the math of that name, written out here."""
    from ghostmlp.network import ACTIVATIONS
    z = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
    literal = {"sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z), "relu": np.maximum(z, 0),
               "identity": z, "softmax": np.exp(z) / np.exp(z).sum(axis=0), "exp": np.exp(z)}
    assert len(set(ACTIVATIONS.values())) == len(ACTIVATIONS)
    for name, code in ACTIVATIONS.items():
        out = z.copy()
        bias_activation(out, None, code)
        np.testing.assert_allclose(out, literal[name], rtol=1e-12, err_msg=name)


def test_loss_names_reach_their_formulas():
    from ghostmlp.network import LOSSES
    a = np.array([[0.7, 0.2], [0.3, 0.8]])          # softmax (or exp) outputs [n, B]
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    delta = np.empty_like(a)
    literal = {"mse": (SOFTMAX, 0.5 * np.sum((a - y) ** 2) / 2),
               "cross_entropy": (SOFTMAX, -np.sum(y * np.log(a)) / 2),
               "poisson": (EXP, (np.log(1 / 0.7) - 1 + 0.7 + 0.2 + 0.3 + np.log(1 / 0.8) - 1 + 0.8) / 2)}
    assert set(literal) == set(LOSSES)
    for name, code in LOSSES.items():
        act, value = literal[name]
        assert output_delta(a, y, delta, act, code) == pytest.approx(value, rel=1e-14)


# ------------------------------------------------------------ bias_activation

@dtypes
@pytest.mark.parametrize("act", ALL_ACTS, ids=_id_act)
@pytest.mark.parametrize("n,batch", [(1, 1), (7, 1), (31, 5), (65, 17), (300, 3), (1, 4)],
                         ids=lambda v: str(v))
def test_bias_activation(dtype, act, n, batch):
    rng = rng_for("bias_activation", act, n, batch, _id_dtype(dtype))
    z = rng.normal(0.0, 3.0, (n, batch)).astype(dtype)
    bias = rng.normal(0.0, 1.0, n).astype(dtype)
    z0 = z.copy()
    ref = act_ref(f64(z0) + f64(bias)[:, None], act)
    out = bias_activation(z, bias, act)
    assert out is None
    assert_close(z, ref, dtype,
                 scale=0.0 if act in RELATIVE_ACTS else np.abs(z0) + np.abs(bias)[:, None])
    if act == SOFTMAX:
        np.testing.assert_allclose(f64(z).sum(axis=0), 1.0, rtol=10 * n * EPS[dtype])
    if act == RELU:
        assert np.all(z[f64(z0) + f64(bias)[:, None] < 0] == 0)


@dtypes
@pytest.mark.parametrize("act", [SIGMOID, TANH, RELU, IDENTITY, SOFTMAX], ids=_id_act)
def test_bias_activation_large_arguments(dtype, act):
    """Huge |z| must neither overflow nor lose the saturated values."""
    big = 800.0 if dtype == np.float64 else 100.0
    column = np.array([-big, -big / 2, -30.0, -1.0, 0.0, 1.0, 30.0, big / 2, big])
    z = np.stack([column, -column, column[::-1] * 0.5, np.full(9, big), np.full(9, -big)],
                 axis=1).astype(dtype)                                      # [9 neurons, 5]
    z[4, 3] = -big                                                          # mixed column
    bias = np.zeros(9, dtype=dtype)
    bias[2] = 0.25
    ref = act_ref(f64(z) + f64(bias)[:, None], act)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        bias_activation(z, bias, act)
    assert np.all(np.isfinite(z))
    # outputs of sigmoid/tanh/softmax are bounded by 1; that is the scale of their error
    assert_close(z, ref, dtype, scale=1.0)
    if act == SIGMOID:
        assert z[0, 0] == 0.0 or (dtype == np.float32 and 0.0 <= z[0, 0] < 1e-40)
        assert z[8, 0] == 1.0
        assert 0.0 <= z.min() and z.max() <= 1.0
        if dtype == np.float64:
            assert z[0, 0] == 0.0                          # sigmoid(-800) underflows to 0
            np.testing.assert_allclose(z[1, 0], np.exp(-400.0), rtol=1e-12)
    if act == TANH:
        assert z[0, 0] == -1.0 and z[8, 0] == 1.0
        assert -1.0 <= z.min() and z.max() <= 1.0
    if act == SOFTMAX:
        np.testing.assert_allclose(f64(z).sum(axis=0), 1.0, rtol=20 * EPS[dtype])
        assert z[8, 0] == 1.0 and z[0, 0] == 0.0           # one dominant neuron
        # column 3: eight neurons tie at +big (one of them biased), one sits at -big
        e = np.exp(f64(bias)) * (np.arange(9) != 4)
        np.testing.assert_allclose(z[:, 3], e / e.sum(), rtol=RTOL[dtype])


@dtypes
@pytest.mark.parametrize("act", ALL_ACTS, ids=_id_act)
def test_bias_activation_keeps_nan(dtype, act):
    """A NaN input stays NaN, as in numpy (relu included: numpy.maximum(nan, 0) is nan), so
    that the loss shows a bad input instead of hiding it."""
    z = np.array([[np.nan, 1.0], [2.0, -1.0]], dtype=dtype)
    bias_activation(z, np.zeros(2, dtype=dtype), act)
    with np.errstate(invalid="ignore"):
        ref = act_ref(np.array([[np.nan, 1.0], [2.0, -1.0]]), act)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(ref))
    assert np.isnan(z[0, 0])


@dtypes
def test_exp_output_saturates_in_float32_only_far_out(dtype):
    """float32: e^z clamped at e^88 (below, exact to rounding), 0 below -87.3; float64: libm's."""
    z = np.array([[-800.0, -100.0, -87.0, -1.0, 0.0, 1.0, 50.0, 88.0, 100.0, 700.0]])
    if dtype == np.float32:
        z = z[:, 1:-1].astype(dtype)
        ref = np.exp(np.minimum(f64(z), 88.0)) * (f64(z) >= -87.3)
    else:
        ref = np.exp(z)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        bias_activation(z, None, EXP)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(f64(z), ref, rtol=RTOL[dtype], atol=0)


def test_float64_sigmoid_and_softmax_are_within_a_few_ulp_everywhere():
    """float64 sigmoid and softmax run on ghostmlp's vectorised e^x: against numpy's (libm)
    within 4 ulp from -708 to 708; below e^-708.3 the exponential is flushed to 0, so the
    sigmoid's tail is 0 where libm's is subnormal (under 2.3e-308)."""
    z = np.concatenate([np.linspace(-708.0, 708.0, 200_001), [-1e-300, 0.0, 1e-300]])[None, :]
    got = z.copy()
    bias_activation(got, np.zeros(1), SIGMOID)
    want = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    np.testing.assert_allclose(got, want, rtol=4 * EPS[np.float64], atol=0)
    tail = np.array([[-708.5, -720.0, -1e4, -np.inf]])
    bias_activation(tail, np.zeros(1), SIGMOID)
    assert np.all((tail >= 0) & (tail < 2.3e-308))
    logits = np.random.default_rng(3).uniform(-700, 0, (50, 400))
    soft = logits.copy()
    bias_activation(soft, np.zeros(50), SOFTMAX)
    e = np.exp(logits - logits.max(axis=0))
    np.testing.assert_allclose(soft, e / e.sum(axis=0), rtol=8 * EPS[np.float64], atol=1e-300)


@dtypes
def test_tanh_is_within_a_few_ulp_everywhere(dtype):
    """tanh runs on ghostmlp's vectorised e^x and Cephes' polynomial near 0 (libm's is a
    scalar call): against numpy's float64 tanh within 3 ulp of the dtype, relative, from
    tiny arguments (where tanh z = z) through the branch at |z| = 0.625 to saturation."""
    branch = np.float64(np.float32(0.625)) if dtype == np.float32 else 0.625
    z = np.concatenate([np.linspace(-30.0, 30.0, 300_001), np.geomspace(1e-30, 1.0, 2001),
                        -np.geomspace(1e-30, 1.0, 2001), [0.0, 1e4, -1e4, np.inf, -np.inf],
                        [np.nextafter(branch, 0), branch, -branch]]).astype(dtype)[None, :]
    got = z.copy()
    bias_activation(got, np.zeros(1, dtype=dtype), TANH)
    want = np.tanh(f64(z))
    np.testing.assert_allclose(f64(got), want, rtol=3 * EPS[dtype], atol=0)
    assert np.all(np.abs(got) <= 1)


def test_bias_activation_softmax_is_per_column():
    """Softmax normalises over the neurons (axis 0) of each sample, not over the batch."""
    z = np.array([[0.0, 1.0, 2.0], [np.log(3.0), 1.0, 2.0]])
    bias_activation(z, np.zeros(2), SOFTMAX)
    np.testing.assert_allclose(z, [[0.25, 0.5, 0.5], [0.75, 0.5, 0.5]], rtol=1e-15)


# --------------------------------------------------------------- forward_slice

@dtypes
@pytest.mark.parametrize("act", ALL_ACTS, ids=_id_act)
@shapes
def test_forward_slice(dtype, act, n_in, n_out, batch):
    rng = rng_for("forward_slice", act, n_in, n_out, batch, _id_dtype(dtype))
    h = rng.normal(0.0, 1.0, (n_in, batch)).astype(dtype)
    w = (rng.normal(0.0, 1.0, (n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    bias = rng.normal(0.0, 0.5, n_out).astype(dtype)
    out = np.full((n_out, batch), np.nan, dtype=dtype)     # beta = 0: never read
    h0, w0, b0 = h.copy(), w.copy(), bias.copy()
    zref = f64(w).T @ f64(h) + f64(bias)[:, None]
    ref = act_ref(zref, act)
    forward_slice(h, w, bias, out, act)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(bias, b0)
    scale = np.abs(f64(w)).T @ np.abs(f64(h)) + np.abs(f64(bias))[:, None]
    # softmax, exp: an absolute error e in z is a relative error ~e in the output, no atol
    assert_close(out, ref, dtype, scale=0.0 if act in RELATIVE_ACTS else scale)


# ---------------------------------------------------------------- output_delta

OUTPUT_CASES = [(MSE, IDENTITY), (MSE, SIGMOID), (MSE, SOFTMAX), (CROSS_ENTROPY, SOFTMAX),
                (CROSS_ENTROPY, SIGMOID), (POISSON, EXP)]
OUTPUT_IDS = ["mse-identity", "mse-sigmoid", "mse-softmax", "ce-softmax", "ce-sigmoid",
              "poisson-exp"]
TARGETS = ["onehot", "soft-normalised", "soft-unnormalised"]
output_cases = pytest.mark.parametrize("loss,act", OUTPUT_CASES, ids=OUTPUT_IDS)
targets = pytest.mark.parametrize("target", TARGETS)


def make_targets(rng, kind, n, batch):
    if kind == "onehot":
        y = np.zeros((n, batch))
        y[rng.integers(0, n, batch), np.arange(batch)] = 1.0
        return y
    r = rng.uniform(0.05, 1.0, (n, batch))
    if kind == "soft-normalised":
        return r / r.sum(axis=0, keepdims=True)
    r[0, 0] = 0.5                          # never normalised, even for n == 1
    return r


@dtypes
@output_cases
@targets
@pytest.mark.parametrize("n,batch", [(1, 1), (3, 1), (7, 5), (13, 17), (65, 3)],
                         ids=lambda v: str(v))
def test_output_delta(dtype, loss, act, target, n, batch):
    rng = rng_for("output_delta", loss, act, target, n, batch, _id_dtype(dtype))
    a = act_ref(rng.normal(0.0, 2.0, (n, batch)), act).astype(dtype)
    y = make_targets(rng, target, n, batch).astype(dtype)
    delta = np.full((n, batch), np.nan, dtype=dtype)
    a0, y0 = a.copy(), y.copy()
    ref_loss, ref_delta = loss_delta_ref(a, y, act, loss)
    got = output_delta(a, y, delta, act, loss)
    assert isinstance(got, float)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_allclose(got, ref_loss, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    m = float(np.max(np.abs(f64(a))) + np.max(np.abs(f64(y))))
    assert_close(delta, ref_delta, dtype, scale=(m + m * m) / batch)


@output_cases
@targets
@pytest.mark.parametrize("n,batch", [(1, 1), (3, 1), (7, 5), (13, 4)], ids=lambda v: str(v))
def test_output_delta_finite_difference(loss, act, target, n, batch):
    """delta == d(batch-mean loss)/dz by central differences, the loss taken from the kernel."""
    rng = rng_for("output_delta_fd", loss, act, target, n, batch)
    z = rng.normal(0.0, 1.5, (n, batch))
    y = make_targets(rng, target, n, batch)
    scratch = np.empty((n, batch))

    def loss_at(zz):
        return output_delta(act_ref(zz, act), y, scratch, act, loss)

    delta = np.empty((n, batch))
    output_delta(act_ref(z, act), y, delta, act, loss)
    eps = 1e-6
    fd = np.empty((n, batch))
    for k in range(n):
        for i in range(batch):
            zp, zm = z.copy(), z.copy()
            zp[k, i] += eps
            zm[k, i] -= eps
            fd[k, i] = (loss_at(zp) - loss_at(zm)) / (2 * eps)
    np.testing.assert_allclose(delta, fd, rtol=1e-6, atol=1e-8)
    if not (act == SOFTMAX and n == 1):
        assert np.max(np.abs(fd)) > 1e-3          # the check is not vacuous


@dtypes
def test_output_delta_rejects_bad_codes(dtype):
    a = np.full((3, 2), 0.5, dtype=dtype)
    y = np.zeros((3, 2), dtype=dtype)
    d = np.empty((3, 2), dtype=dtype)
    with pytest.raises(ValueError, match="cross-entropy"):
        output_delta(a, y, d, IDENTITY, CROSS_ENTROPY)
    with pytest.raises(ValueError, match="cross-entropy"):
        output_delta(a, y, d, EXP, CROSS_ENTROPY)
    with pytest.raises(ValueError, match="Poisson loss needs an exp output"):
        output_delta(a, y, d, SIGMOID, POISSON)
    with pytest.raises(ValueError, match="squared loss"):
        output_delta(a, y, d, EXP, MSE)
    with pytest.raises(ValueError):
        output_delta(a, y, d, TANH, MSE)
    with pytest.raises(ValueError):
        output_delta(a, y, d, SIGMOID, 3)
    with pytest.raises(ValueError, match="weights"):
        output_delta(a, y, d, SIGMOID, MSE, np.ones(3, dtype=dtype))


@dtypes
@output_cases
@pytest.mark.parametrize("n,batch", [(1, 1), (3, 4), (13, 17)], ids=lambda v: str(v))
def test_output_delta_weighted(dtype, loss, act, n, batch):
    """sum_i w_i loss_i / sum_i w_i and w_i dloss_i/dz / sum_i w_i, zero weights included;
    a given total divides instead (a share of a larger batch)."""
    rng = rng_for("output_delta_weighted", loss, act, n, batch, _id_dtype(dtype))
    a = act_ref(rng.normal(0.0, 1.5, (n, batch)), act).astype(dtype)
    y = make_targets(rng, "soft-unnormalised", n, batch).astype(dtype)
    w = rng.uniform(0.0, 3.0, batch).astype(dtype)
    w[::3] = 0.0
    w[-1] = 1.5
    delta = np.full((n, batch), np.nan, dtype=dtype)
    ref_loss, ref_delta = loss_delta_ref(a, y, act, loss, weights=w)
    got = output_delta(a, y, delta, act, loss, w)
    np.testing.assert_allclose(got, ref_loss, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    m = float(np.max(np.abs(f64(a))) + np.max(np.abs(f64(y))))
    scale = (m + m * m) * float(np.max(w)) / float(np.sum(f64(w)))
    assert_close(delta, ref_delta, dtype, scale=scale)
    assert np.all(delta[:, w == 0] == 0)
    total = 4.0 * float(np.sum(f64(w)))
    part = output_delta(a, y, delta, act, loss, w, total)
    np.testing.assert_allclose(part, ref_loss / 4, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    assert_close(delta, ref_delta / 4, dtype, scale=scale / 4)


@dtypes
@output_cases
def test_output_delta_unit_weights_equal_no_weights_exactly(dtype, loss, act):
    rng = rng_for("output_delta_unit", loss, act, _id_dtype(dtype))
    a = act_ref(rng.normal(0.0, 1.5, (5, 7)), act).astype(dtype)
    y = make_targets(rng, "soft-normalised", 5, 7).astype(dtype)
    plain, weighted = np.empty_like(a), np.empty_like(a)
    value = output_delta(a, y, plain, act, loss)
    assert output_delta(a, y, weighted, act, loss, np.ones(7, dtype=dtype)) == value
    np.testing.assert_array_equal(weighted, plain)


@output_cases
def test_output_delta_weighted_finite_difference(loss, act):
    """The weighted deltas are d(weighted mean loss)/dz, by central differences."""
    rng = rng_for("output_delta_weighted_fd", loss, act)
    n, batch = 4, 5
    z = rng.normal(0.0, 1.5, (n, batch))
    y = make_targets(rng, "soft-unnormalised", n, batch)
    w = np.array([0.5, 0.0, 2.0, 1.0, 3.0])
    scratch = np.empty((n, batch))
    delta = np.empty((n, batch))
    output_delta(act_ref(z, act), y, delta, act, loss, w)
    fd, eps = np.empty((n, batch)), 1e-6
    for k, i in np.ndindex(n, batch):
        zp, zm = z.copy(), z.copy()
        zp[k, i] += eps
        zm[k, i] -= eps
        fd[k, i] = (output_delta(act_ref(zp, act), y, scratch, act, loss, w)
                    - output_delta(act_ref(zm, act), y, scratch, act, loss, w)) / (2 * eps)
    np.testing.assert_allclose(delta, fd, rtol=1e-6, atol=1e-8)
    assert np.max(np.abs(fd)) > 1e-3


# ---------------------------------------------------------------- hidden_delta

@dtypes
@pytest.mark.parametrize("act", HIDDEN_ACTS, ids=_id_act)
@shapes
def test_hidden_delta(dtype, act, n_in, n_out, batch):
    # layer of fan_in n (= n_in) feeding n_next (= n_out) neurons
    rng = rng_for("hidden_delta", act, n_in, n_out, batch, _id_dtype(dtype))
    delta_next = rng.normal(0.0, 1.0, (n_out, batch)).astype(dtype)
    w_next = (rng.normal(0.0, 1.0, (n_in, n_out)) / np.sqrt(n_out)).astype(dtype)
    a = random_hidden(rng, n_in, batch, dtype, act)
    delta = np.full((n_in, batch), np.nan, dtype=dtype)
    ref = (f64(w_next) @ f64(delta_next)) * deriv_ref(a, act)
    hidden_delta(delta_next, w_next, a, delta, act)
    scale = (np.abs(f64(w_next)) @ np.abs(f64(delta_next))) * np.abs(deriv_ref(a, act))
    assert_close(delta, ref, dtype, scale=scale)
    if act == RELU:
        assert np.all(delta[a == 0] == 0)


# ---------------------------------------------------------------- outer_update

UPDATES = [(-0.05, 1.0), (1.0, 0.0), (-0.05, 0.9)]


@dtypes
@pytest.mark.parametrize("alpha,beta", UPDATES, ids=["sgd", "gradient", "momentum"])
@shapes
def test_outer_update(dtype, alpha, beta, n_in, n_out, batch):
    rng = rng_for("outer_update", alpha, beta, n_in, n_out, batch, _id_dtype(dtype))
    h = rng.normal(0.0, 1.0, (n_in, batch)).astype(dtype)
    delta = rng.normal(0.0, 1.0, (n_out, batch)).astype(dtype)
    if beta == 0:       # beta = 0 overwrites: whatever is there (NaN) must not leak through
        target = np.full((n_in, n_out), np.nan, dtype=dtype)
        target_bias = np.full(n_out, np.nan, dtype=dtype)
    else:
        target = rng.normal(0.0, 1.0, (n_in, n_out)).astype(dtype)
        target_bias = rng.normal(0.0, 1.0, n_out).astype(dtype)
    al, be = float(dtype(alpha)), float(dtype(beta))       # the kernel rounds them to dtype
    prod = f64(h) @ f64(delta).T
    ref_w = al * prod if beta == 0 else be * f64(target) + al * prod
    ref_b = al * f64(delta).sum(axis=1)
    if beta != 0:
        ref_b = be * f64(target_bias) + ref_b
    scale_w = abs(al) * (np.abs(f64(h)) @ np.abs(f64(delta)).T)
    scale_b = abs(al) * np.abs(f64(delta)).sum(axis=1)
    if beta != 0:
        scale_w = scale_w + abs(be) * np.abs(f64(target))
        scale_b = scale_b + abs(be) * np.abs(f64(target_bias))
    outer_update(h, delta, target, target_bias, alpha, beta)
    assert_close(target, ref_w, dtype, scale=scale_w)          # also: no NaN left (beta 0)
    assert_close(target_bias, ref_b, dtype, scale=scale_b)


# ----------------------------------------------------------- fused_delta_update

FUSED_SHAPES = [(1, 1), (3, 7), (13, 31), (127, 65), (257, 300), (5, 260)]
fused_shapes = pytest.mark.parametrize("n_in,n_out", FUSED_SHAPES,
                                       ids=[_id_shape(s) for s in FUSED_SHAPES])


def fused_inputs(rng, n_in, n_out, dtype, act):
    h = random_hidden(rng, n_in, 1, dtype, act)[:, 0].copy()
    w = (rng.normal(0.0, 1.0, (n_in, n_out)) / np.sqrt(n_out)).astype(dtype)
    bias = rng.normal(0.0, 0.5, n_out).astype(dtype)
    delta = rng.normal(0.0, 1.0, n_out).astype(dtype)
    return h, w, bias, delta


@dtypes
@pytest.mark.parametrize("act", HIDDEN_ACTS, ids=_id_act)
@fused_shapes
def test_fused_delta_update(dtype, act, n_in, n_out):
    rng = rng_for("fused", act, n_in, n_out, _id_dtype(dtype))
    h, w, bias, delta = fused_inputs(rng, n_in, n_out, dtype, act)
    delta_prev = np.full(n_in, np.nan, dtype=dtype)
    lr = 0.05
    lr_ = float(dtype(lr))
    h0, d0 = h.copy(), delta.copy()
    # delta_prev from the OLD weights, then the SGD step
    ref_dp = (f64(w) @ f64(delta)) * deriv_ref(h, act)
    ref_w = f64(w) - lr_ * np.outer(f64(h), f64(delta))
    ref_b = f64(bias) - lr_ * f64(delta)
    scale_dp = (np.abs(f64(w)) @ np.abs(f64(delta))) * np.abs(deriv_ref(h, act))
    scale_w = np.abs(f64(w)) + lr_ * np.abs(np.outer(f64(h), f64(delta)))
    scale_b = np.abs(f64(bias)) + lr_ * np.abs(f64(delta))
    fused_delta_update(h, w, bias, delta, delta_prev, act, lr)
    assert_close(delta_prev, ref_dp, dtype, scale=scale_dp)
    assert_close(w, ref_w, dtype, scale=scale_w)
    assert_close(bias, ref_b, dtype, scale=scale_b)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(delta, d0)


@dtypes
@pytest.mark.parametrize("act", HIDDEN_ACTS, ids=_id_act)
@fused_shapes
def test_fused_equals_hidden_delta_then_outer_update(dtype, act, n_in, n_out):
    """At batch 1 the fused pass is hidden_delta (old W) + outer_update(-lr, 1), to rounding."""
    rng = rng_for("fused_equiv", act, n_in, n_out, _id_dtype(dtype))
    h, w, bias, delta = fused_inputs(rng, n_in, n_out, dtype, act)
    lr = 0.05
    w2, b2 = w.copy(), bias.copy()
    dp = np.empty(n_in, dtype=dtype)
    dp2 = np.empty((n_in, 1), dtype=dtype)
    scale_dp = (np.abs(f64(w)) @ np.abs(f64(delta))) * np.abs(deriv_ref(h, act))
    fused_delta_update(h, w, bias, delta, dp, act, lr)
    hidden_delta(delta.reshape(n_out, 1), w2, h.reshape(n_in, 1), dp2, act)
    outer_update(h.reshape(n_in, 1), delta.reshape(n_out, 1), w2, b2, -lr, 1.0)
    eps = EPS[dtype]
    # only the summation order of the dot products may differ
    np.testing.assert_allclose(f64(dp), f64(dp2[:, 0]), rtol=4 * eps,
                               atol=2 * n_out * eps * float(np.max(scale_dp)))
    np.testing.assert_allclose(f64(w), f64(w2), rtol=2 * eps, atol=2 * eps * float(np.max(np.abs(w2))))
    np.testing.assert_allclose(f64(bias), f64(b2), rtol=2 * eps, atol=2 * eps * float(np.max(np.abs(b2))))


# ---------------------------------------------------------------- shape checks

@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000])
def test_label_range_is_numpys_min_and_max(n):
    labels = rng_for("label_range", n).integers(-5, 50, n)
    assert K.label_range(labels) == (labels.min(), labels.max())
    with pytest.raises(ValueError, match="no labels"):
        K.label_range(labels[:0])


@dtypes
def test_shape_errors(dtype):
    def z(*shape):
        return np.zeros(shape, dtype=dtype)

    with pytest.raises(ValueError, match="bias"):
        bias_activation(z(4, 3), z(5), SIGMOID)
    with pytest.raises(ValueError, match="activation"):
        bias_activation(z(4, 3), z(4), EXP + 1)
    with pytest.raises(ValueError, match="fan_in"):
        forward_slice(z(6, 3), z(5, 4), z(4), z(4, 3), TANH)        # h rows != fan_in
    with pytest.raises(ValueError, match="out"):
        forward_slice(z(5, 3), z(5, 4), z(4), z(4, 2), TANH)        # out batch != h batch
    with pytest.raises(ValueError, match="bias"):
        forward_slice(z(5, 3), z(5, 4), z(3), z(4, 3), TANH)        # bias != fan_out
    with pytest.raises(ValueError, match="same shape"):
        output_delta(z(4, 3), z(4, 2), z(4, 3), SIGMOID, MSE)
    with pytest.raises(ValueError, match="same shape"):
        output_delta(z(4, 3), z(4, 3), z(3, 3), SIGMOID, MSE)
    with pytest.raises(ValueError, match="delta_next"):
        hidden_delta(z(3, 2), z(5, 4), z(5, 2), z(5, 2), SIGMOID)  # delta_next rows != n_next
    with pytest.raises(ValueError, match="fan_in"):
        hidden_delta(z(4, 2), z(5, 4), z(5, 2), z(6, 2), SIGMOID)  # delta rows != n
    with pytest.raises(ValueError, match="target"):
        outer_update(z(5, 2), z(4, 2), z(4, 5), z(4), -0.1, 1.0)    # target transposed
    with pytest.raises(ValueError, match="batch"):
        outer_update(z(5, 2), z(4, 3), z(5, 4), z(4), -0.1, 1.0)
    with pytest.raises(ValueError, match="fan_out"):
        fused_delta_update(z(5), z(5, 4), z(4), z(3), z(5), SIGMOID, 0.1)
    with pytest.raises(ValueError, match="fan_in"):
        fused_delta_update(z(5), z(5, 4), z(4), z(4), z(6), SIGMOID, 0.1)


def test_non_contiguous_input_is_rejected():
    h = np.zeros((6, 3)).T                                       # [3, 6], Fortran order
    assert not h.flags.c_contiguous
    with pytest.raises(ValueError):
        bias_activation(h, np.zeros(3), SIGMOID)


# -------------------------------------------------------------- optimizers

SGD_CASES = [(0.0, False, 0.0), (0.0, False, 0.1), (0.9, False, 0.0), (0.9, False, 0.1),
             (0.5, True, 0.0), (0.9, True, 0.1)]


@dtypes
@pytest.mark.parametrize("momentum,nesterov,wd", SGD_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("n", [1, 7, 300])
def test_sgd_update(dtype, momentum, nesterov, wd, n):
    rng = rng_for("sgd", _id_dtype(dtype), momentum, nesterov, wd, n)
    w, g, buf = (rng.normal(size=n).astype(dtype) for _ in range(3))
    lr = 0.3
    d = f64(g) + wd * f64(w)
    if momentum:
        new_buf = momentum * f64(buf) + d
        step = d + momentum * new_buf if nesterov else new_buf
    else:
        new_buf, step = f64(buf), d
    expected = f64(w) - lr * step
    K.sgd_update(w, g, buf if momentum else None, lr, momentum, wd, nesterov)
    assert_close(w, expected, dtype, scale=1.0)
    assert_close(buf, new_buf, dtype, scale=1.0)


@dtypes
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("step", [1, 2, 50])
def test_adam_update(dtype, decoupled, wd, step):
    rng = rng_for("adam", _id_dtype(dtype), decoupled, wd, step)
    n, lr, b1, b2, eps = 257, 1e-2, 0.9, 0.999, 1e-8
    w, g = rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype)
    m = rng.normal(scale=0.1, size=n).astype(dtype)
    v = rng.uniform(0.01, 0.1, size=n).astype(dtype)
    W = f64(w) * (1 - lr * wd) if decoupled else f64(w)
    d = f64(g) if decoupled else f64(g) + wd * f64(w)
    M = b1 * f64(m) + (1 - b1) * d
    V = b2 * f64(v) + (1 - b2) * d * d
    expected = W - lr * (M / (1 - b1 ** step)) / (np.sqrt(V / (1 - b2 ** step)) + eps)
    K.adam_update(w, g, m, v, lr, b1, b2, eps, wd, decoupled, step)
    assert_close(m, M, dtype, scale=1.0)
    assert_close(v, V, dtype, scale=1.0)
    assert_close(w, expected, dtype, scale=1.0, rtol=1e-4 if dtype == np.float32 else 1e-12)


def test_optimizer_wrappers_check_lengths():
    w = np.zeros(3)
    with pytest.raises(ValueError, match="same length"):
        K.sgd_update(w, np.zeros(4), None, 0.1)
    with pytest.raises(ValueError, match="step counts from 1"):
        K.adam_update(w, w.copy(), w.copy(), w.copy(), 0.1, 0.9, 0.999, 1e-8, 0.0, False, 0)
