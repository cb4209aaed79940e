"""Checked wrappers of the per-slice MLP kernels and the optimizers, for tests and benchmarks.

Layout. Activations and deltas are stored neuron-major: ``H[n, B]`` (row j holds neuron j
for the B samples of the batch), so that a rank's slice of neurons, a ghost neuron and a
gathered layer are contiguous rows. Weights are ``W[fan_in, fan_out]`` and biases
``b[fan_out]``, all C-contiguous. In BLAS's column-major terms ``H[n, B]`` is the matrix
``H.T`` of shape (B x n) with leading dimension B, and ``W`` is ``W.T`` with leading
dimension fan_out; every product is written in those terms.

Two levels (as in scikit-learn's ``_cython_blas``): ``noexcept nogil`` cores on raw
pointers and sizes (``_layer.pxd``, ``_optim.pxd``), and the thin ``def`` wrappers here
on typed memoryviews that check shapes before releasing the GIL. The training step that
strings the cores together is ``_step.Step``.
"""
from cython cimport floating

import numpy

from ghostmlp import blas
from ghostmlp cimport _layer
from ghostmlp._blas cimport bind, gemm as _blas_gemm, gemv as _blas_gemv, ger as _blas_ger
from ghostmlp._layer cimport (
    bias_activation_core, forward_core,
    output_delta_core, backprop_core, hidden_delta_core, derivative_core, outer_core,
    fused_delta_update_core)
from ghostmlp._optim cimport adam_core, sgd_core
from ghostmlp._mpi cimport Requests, bind_requests, start_requests, wait_requests

cdef extern from *:
    const char* GHOSTMLP_BUILD_INFO         # JSON, defined by setup.py

BUILD_INFO = GHOSTMLP_BUILD_INFO.decode()


def _bind_blas(addresses, ilp64):
    """Points this module's BLAS table at one library (called by ghostmlp.blas)."""
    bind(addresses, ilp64)


blas.register(_bind_blas)

# Activation codes (hidden: SIGMOID, TANH, RELU, IDENTITY; output: SOFTMAX, SIGMOID,
# IDENTITY, EXP) and loss codes (squared loss, paper eq. 4; cross-entropy; half Poisson
# deviance), as the cores read them.
SIGMOID, TANH, RELU, IDENTITY, SOFTMAX, EXP = (
    _layer.SIGMOID, _layer.TANH, _layer.RELU, _layer.IDENTITY, _layer.SOFTMAX, _layer.EXP)
MSE, CROSS_ENTROPY, POISSON = _layer.MSE, _layer.CROSS_ENTROPY, _layer.POISSON
# The output activations each loss's delta is written for (output_delta_core).
LOSS_OUTPUTS = {MSE: (SOFTMAX, SIGMOID, IDENTITY), CROSS_ENTROPY: (SOFTMAX, SIGMOID),
                POISSON: (EXP,)}
FUSED_ROW_MIN_BYTES = _layer.FUSED_ROW_MIN_BYTES


cdef void _check(bint ok, str what) except *:
    if not ok:
        raise ValueError(what)


cdef object _scratch_like(floating[:, ::1] like, Py_ssize_t size):
    return numpy.empty(max(size, 1), dtype=numpy.float32 if floating is float else numpy.float64)


def bias_activation(floating[:, ::1] z, floating[::1] bias, int activation, scratch=None):
    """H[n, B] := act(Z[n, B] + b[n]) in place (softmax over the n neurons of each sample).

    bias may be None (no bias); scratch: 2 B values of z's dtype, allocated if None.
    """
    cdef int n = z.shape[0], batch = z.shape[1]
    _check(bias is None or bias.shape[0] == n, "bias must have one entry per row of z")
    _check(0 <= activation <= _layer.EXP, "unknown activation code")
    cdef floating[::1] s = _scratch_like(z, 2 * batch) if scratch is None else scratch
    _check(s.shape[0] >= 2 * batch, "scratch must hold 2 B values")
    cdef floating* b = NULL if bias is None else &bias[0]
    with nogil:
        bias_activation_core(n, batch, &z[0, 0], b, activation, &s[0])


def forward_slice(floating[:, ::1] h, floating[:, ::1] w, floating[::1] bias,
                  floating[:, ::1] out, int activation, int start=0, stop=None, scratch=None):
    """OUT[j, :] := act(W[:, j].T @ H[n_in, B] + b[j]) for the neurons start <= j < stop.

    W is [n_in, n_out], out [n_out, B]; by default all n_out neurons. scratch: 2 B values
    (used by softmax, which needs the whole layer), allocated if None.
    """
    cdef int n_in = w.shape[0], n_out = w.shape[1], batch = h.shape[1]
    cdef int end = n_out if stop is None else stop
    _check(h.shape[0] == n_in, "h must have fan_in rows")
    _check(bias.shape[0] == n_out and out.shape[0] == n_out and out.shape[1] == batch,
           "bias and out must match W's fan_out and h's batch")
    _check(0 <= activation <= _layer.EXP, "unknown activation code")
    _check(0 <= start < end <= n_out, "need 0 <= start < stop <= fan_out")
    _check(activation != _layer.SOFTMAX or end - start == n_out, "softmax needs the whole layer")
    cdef floating[::1] s = _scratch_like(out, 2 * batch) if scratch is None else scratch
    _check(s.shape[0] >= 2 * batch, "scratch must hold 2 B values")
    with nogil:
        forward_core(n_in, end - start, batch, &h[0, 0], &w[0, start], n_out, &bias[start],
                     &out[start, 0], activation, &s[0])


cdef void _check_output(int activation, int loss) except *:
    _check(loss in LOSS_OUTPUTS, "unknown loss code")
    _check(activation in LOSS_OUTPUTS[loss],
           "cross-entropy needs a softmax or sigmoid output" if loss == _layer.CROSS_ENTROPY
           else "the Poisson loss needs an exp output" if loss == _layer.POISSON
           else "the squared loss needs a softmax, sigmoid or identity output")


cdef floating* _weights(floating[::1] weights, int batch, double* total) except? NULL:
    """Pointer to weights[B] (NULL for None); total 0 becomes B or sum_i w_i."""
    cdef Py_ssize_t i
    cdef double summed = 0
    if weights is None:
        if total[0] == 0:
            total[0] = batch
        return NULL
    _check(weights.shape[0] == batch, "weights must be [B]")
    if total[0] == 0:
        for i in range(batch):
            summed += weights[i]
        total[0] = summed
    return &weights[0]


def output_delta(floating[:, ::1] a, floating[:, ::1] y, floating[:, ::1] delta,
                 int activation, int loss, floating[::1] weights=None, double total=0):
    """sum_i w_i loss_i / total of A[n, B] against targets Y[n, B]; DELTA := its dLoss/dZ.

    weights: w[B] (None: all 1); total 0: sum_i w_i, the batch's (weighted) mean.
    """
    cdef int n = a.shape[0], batch = a.shape[1]
    cdef double result
    _check(y.shape[0] == n and y.shape[1] == batch and delta.shape[0] == n
           and delta.shape[1] == batch, "a, y and delta must have the same shape")
    _check_output(activation, loss)
    cdef floating* wp = _weights(weights, batch, &total)
    scratch = _scratch_like(a, 2 * batch)
    cdef floating[::1] s = scratch
    with nogil:
        result = output_delta_core(n, batch, &a[0, 0], &y[0, 0], batch, 1, NULL, wp, total,
                                   &delta[0, 0], activation, loss, &s[0])
    return result


def loss_delta(floating[:, ::1] a, target, floating[:, ::1] delta, int activation, int loss,
               floating[::1] scratch, floating[::1] weights=None, double total=0):
    """output_delta with target: labels int64[B] or rows Y[B, n]. scratch: 2 B values."""
    cdef int n = a.shape[0], batch = a.shape[1]
    cdef const long long[::1] labels
    cdef floating[:, ::1] rows
    cdef long long* lp = NULL
    cdef floating* yp = NULL
    cdef double result
    _check(delta.shape[0] == n and delta.shape[1] == batch and scratch.shape[0] >= 2 * batch,
           "delta must be [n, B] and scratch hold 2 B values")
    _check_output(activation, loss)
    cdef floating* wp = _weights(weights, batch, &total)
    if target.ndim == 1:
        labels = target
        _check(labels.shape[0] == batch, "labels must be [B]")
        lp = <long long*>&labels[0]
    else:
        rows = target
        _check(rows.shape[0] == batch and rows.shape[1] == n, "targets must be [B, n]")
        yp = &rows[0, 0]
    with nogil:
        result = output_delta_core(n, batch, &a[0, 0], yp, 1, n, lp, wp, total, &delta[0, 0],
                                   activation, loss, &scratch[0])
    return result


def hidden_delta(floating[:, ::1] delta_next, floating[:, ::1] w_next,
                 floating[:, ::1] a, floating[:, ::1] delta, int activation):
    """DELTA[n, B] := (W_next[n, n_next] @ DELTA_next[n_next, B]) * act'(A[n, B])."""
    cdef int n = w_next.shape[0], n_next = w_next.shape[1], batch = a.shape[1]
    _check(delta_next.shape[0] == n_next and delta_next.shape[1] == batch,
           "delta_next must be [fan_out, B]")
    _check(a.shape[0] == n and delta.shape[0] == n and delta.shape[1] == batch,
           "a and delta must be [fan_in, B]")
    with nogil:
        hidden_delta_core(n, n_next, batch, &delta_next[0, 0], &w_next[0, 0], &a[0, 0],
                          &delta[0, 0], activation)


def backprop(floating[:, ::1] delta_next, floating[:, ::1] w_next, floating[:, ::1] out,
             bint accumulate=False):
    """OUT[n, B] := W_next[n, n_next] @ DELTA_next[n_next, B], added to OUT when accumulate."""
    cdef int n = w_next.shape[0], n_next = w_next.shape[1], batch = out.shape[1]
    _check(delta_next.shape[0] == n_next and delta_next.shape[1] == batch,
           "delta_next must be [fan_out, B]")
    _check(out.shape[0] == n, "out must be [fan_in, B]")
    with nogil:
        backprop_core(n, n_next, batch, &delta_next[0, 0], &w_next[0, 0], &out[0, 0],
                      <floating>(1 if accumulate else 0))


def apply_derivative(floating[:, ::1] delta, floating[:, ::1] a, int activation):
    """DELTA[n, B] *= act'(A[n, B]), act' written in terms of the activation's output."""
    _check(delta.shape[0] == a.shape[0] and delta.shape[1] == a.shape[1],
           "delta and a must have the same shape")
    with nogil:
        derivative_core(delta.shape[0], delta.shape[1], &delta[0, 0], &a[0, 0], activation)


def outer_update(floating[:, ::1] h, floating[:, ::1] delta, floating[:, ::1] target,
                 floating[::1] target_bias, double alpha, double beta, bias_beta=None):
    """T[n_in, n_out] := beta T + alpha H @ DELTA.T, t_b := bias_beta t_b + alpha sum_i DELTA[:, i].

    bias_beta defaults to beta.
    """
    cdef floating b_beta = beta if bias_beta is None else bias_beta
    cdef int n_in = h.shape[0], n_out = delta.shape[0], batch = h.shape[1]
    _check(delta.shape[1] == batch, "h and delta must have the same batch")
    _check(target.shape[0] == n_in and target.shape[1] == n_out
           and target_bias.shape[0] == n_out, "target must be [fan_in, fan_out]")
    with nogil:
        outer_core(n_in, n_out, batch, &h[0, 0], &delta[0, 0], &target[0, 0],
                          &target_bias[0], <floating>alpha, <floating>beta, b_beta)


def fused_delta_update(floating[::1] h, floating[:, ::1] w, floating[::1] bias,
                       floating[::1] delta, floating[::1] delta_prev, int activation_prev,
                       double learning_rate):
    """Batch 1, one pass over W: delta_prev := (W @ delta) * act'(h); W -= lr h delta.T; b -= lr delta."""
    cdef int n_in = w.shape[0], n_out = w.shape[1]
    _check(h.shape[0] == n_in and delta_prev.shape[0] == n_in, "h, delta_prev must be [fan_in]")
    _check(delta.shape[0] == n_out and bias.shape[0] == n_out, "delta, bias must be [fan_out]")
    with nogil:
        fused_delta_update_core(n_in, n_out, &h[0], &w[0, 0], &bias[0], &delta[0],
                                &delta_prev[0], activation_prev, <floating>learning_rate)


def sgd_update(floating[::1] w, floating[::1] g, buffer, double lr, double momentum=0,
               double weight_decay=0, bint nesterov=False):
    """torch.optim.SGD on flat w[n] in place: d := g + wd w; buf := m buf + d;
    w -= lr (d + m buf if nesterov else buf); buffer None: w -= lr d."""
    cdef floating[::1] buf
    cdef floating* bp = NULL
    _check(g.shape[0] == w.shape[0], "w and g must have the same length")
    if buffer is not None:
        buf = buffer
        _check(buf.shape[0] == w.shape[0], "the buffer must have w's length")
        bp = &buf[0]
    with nogil:
        sgd_core(w.shape[0], &w[0], &g[0], bp, <floating>lr, <floating>momentum,
                 <floating>weight_decay, nesterov)


def adam_update(floating[::1] w, floating[::1] g, floating[::1] m, floating[::1] v, double lr,
                double beta1, double beta2, double eps, double weight_decay, bint decoupled,
                long step):
    """torch.optim.Adam (decoupled=True: AdamW) on flat w[n] in place at step t = step (from 1)."""
    _check(g.shape[0] == w.shape[0] and m.shape[0] == w.shape[0] and v.shape[0] == w.shape[0],
           "w, g, m and v must have the same length")
    _check(step >= 1, "step counts from 1")
    with nogil:
        adam_core(w.shape[0], &w[0], &g[0], &m[0], &v[0], <floating>lr, beta1,
                  beta2, <floating>eps, <floating>weight_decay, decoupled,
                  1 - beta1 ** step, 1 - beta2 ** step)


# The bound BLAS itself (ghostmlp.blas), on Fortran-ordered arrays as scipy.linalg.blas
# takes them: what benchmarks and calibration time is what the kernels call.

def gemm(double alpha, floating[::1, :] a, floating[::1, :] b, double beta,
         floating[::1, :] c, bint trans_a=False, bint trans_b=False):
    """C[m, n] := alpha op(A) op(B) + beta C in place; op transposes where asked.

    a, b and c share one dtype (float32: sgemm, float64: dgemm).
    """
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    _check((a.shape[1] if trans_a else a.shape[0]) == m
           and (b.shape[1] if trans_b else b.shape[0]) == k
           and (b.shape[0] if trans_b else b.shape[1]) == n, "gemm: shapes do not conform")
    cdef char ta = b"T" if trans_a else b"N", tb = b"T" if trans_b else b"N"
    with nogil:
        _blas_gemm(ta, tb, m, n, k, <floating>alpha, &a[0, 0], a.shape[0], &b[0, 0], b.shape[0],
                   <floating>beta, &c[0, 0], m)


def gemv(double alpha, floating[::1, :] a, floating[::1] x, double beta, floating[::1] y,
         bint trans=False):
    """y := alpha op(A) x + beta y in place."""
    _check(x.shape[0] == (a.shape[0] if trans else a.shape[1])
           and y.shape[0] == (a.shape[1] if trans else a.shape[0]), "gemv: shapes do not conform")
    cdef char t = b"T" if trans else b"N"
    with nogil:
        _blas_gemv(t, a.shape[0], a.shape[1], <floating>alpha, &a[0, 0], a.shape[0], &x[0],
                   <floating>beta, &y[0])


def ger(double alpha, floating[::1] x, floating[::1] y, floating[::1, :] a):
    """A[m, n] += alpha x y^T in place."""
    _check(x.shape[0] == a.shape[0] and y.shape[0] == a.shape[1], "ger: shapes do not conform")
    with nogil:
        _blas_ger(a.shape[0], a.shape[1], <floating>alpha, &x[0], &y[0], &a[0, 0], a.shape[0])


def label_range(const long long[::1] labels):
    """(min, max) of class indices int64[n], n >= 1: one loop, without numpy's per-call cost."""
    cdef Py_ssize_t i, n = labels.shape[0]
    _check(n >= 1, "label_range: no labels")
    cdef long long lo = labels[0], hi = labels[0]
    with nogil:
        for i in range(1, n):
            lo = min(lo, labels[i])
            hi = max(hi, labels[i])
    return lo, hi


def run_requests(spec, int times=1):
    """Start and wait exchange.CompiledRequests `spec` `times` times from compiled code, as
    the step does (for the calibration); MPI's error code, 0 on success."""
    cdef Requests r
    cdef int error = 0, i
    _check(spec is not None, "run_requests needs requests")
    bind_requests(&r, spec)
    with nogil:
        for i in range(times):
            error = start_requests(&r)
            if error == 0:
                error = wait_requests(&r, -1)
            if error:
                break
    return error
