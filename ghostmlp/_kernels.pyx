"""Per-slice MLP kernels: BLAS products, fused bias/activation, loss deltas and SGD, without the GIL.

Layout. Activations and deltas are stored neuron-major: ``H[n, B]`` (row j holds neuron j
for the B samples of the batch), so that a rank's slice of neurons, a ghost neuron and a
gathered layer are contiguous rows. Weights are ``W[fan_in, fan_out]`` and biases
``b[fan_out]``, all C-contiguous. In BLAS's column-major terms ``H[n, B]`` is the matrix
``H.T`` of shape (B x n) with leading dimension B, and ``W`` is ``W.T`` with leading
dimension fan_out; every product below is written in those terms.

Two levels (as in scikit-learn's ``_cython_blas``): ``cdef ... noexcept nogil`` cores on
raw pointers and sizes, and thin ``def`` wrappers on typed memoryviews that check shapes
before releasing the GIL. ``LayerStack`` runs a whole serial training step in one call.
"""
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cython cimport floating
from libc.math cimport exp, fabs, log, tanh, tanhf, INFINITY
from scipy.linalg.cython_blas cimport (
    sgemm, dgemm, sgemv, dgemv, sger, dger, sdot, ddot, saxpy, daxpy, sscal, dscal)

cimport numpy as cnp
import numpy

cdef extern from *:
    const char* GHOSTMLP_BUILD_INFO         # JSON, defined by setup.py

BUILD_INFO = GHOSTMLP_BUILD_INFO.decode()

cnp.import_array()

# Activation codes (hidden: SIGMOID, TANH, RELU; output: SOFTMAX, SIGMOID, IDENTITY).
SIGMOID, TANH, RELU, IDENTITY, SOFTMAX = 0, 1, 2, 3, 4
# Loss codes: squared loss 1/2 sum_k (y'_k - y_k)^2 (paper eq. 4), cross-entropy.
MSE, CROSS_ENTROPY = 0, 1
FUSED_ROW_MIN_BYTES = _FUSED_ROW_MIN_BYTES

cdef enum:
    # At batch 1 the fused row pass (one read and one write of W for delta and update)
    # beats gemv + ger (two reads and one write) when W streams from memory, not from a
    # core's L2 (1 MiB and more here); below that it is break-even or slower. Measured in
    # benchmarks/kernels.py.
    _FUSED_ROW_MIN_BYTES = 1 << 20
    _SIGMOID = 0
    _TANH = 1
    _RELU = 2
    _IDENTITY = 3
    _SOFTMAX = 4
    _MSE = 0
    _CROSS_ENTROPY = 1


# ---------------------------------------------------------------- BLAS, by dtype

cdef inline void _gemm(char ta, char tb, int m, int n, int k, floating alpha,
                       floating* a, int lda, floating* b, int ldb,
                       floating beta, floating* c, int ldc) noexcept nogil:
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef inline void _gemv(char t, int m, int n, floating alpha, floating* a, int lda,
                       floating* x, floating beta, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sgemv(&t, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)
    else:
        dgemv(&t, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)


cdef inline void _ger(int m, int n, floating alpha, floating* x, floating* y,
                      floating* a, int lda) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sger(&m, &n, &alpha, x, &one, y, &one, a, &lda)
    else:
        dger(&m, &n, &alpha, x, &one, y, &one, a, &lda)


cdef inline floating _dot(int n, floating* x, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        return sdot(&n, x, &one, y, &one)
    else:
        return ddot(&n, x, &one, y, &one)


cdef inline void _axpy(int n, floating alpha, floating* x, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, x, &one, y, &one)
    else:
        daxpy(&n, &alpha, x, &one, y, &one)


cdef inline void _scal(int n, floating alpha, floating* x) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sscal(&n, &alpha, x, &one)
    else:
        dscal(&n, &alpha, x, &one)


# ------------------------------------------------------------- scalar functions

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* Row loops of float32 e^x and sigmoid that vectorise: glibc's expf is a scalar call.
       On x86-64 Linux each is compiled for AVX-512, AVX2 and the baseline, and the loader
       picks the one the CPU runs (GCC's target_clones); elsewhere, the baseline alone.
       Their selects vectorise only under -fno-trapping-math (setup.py's default flags). */
    #if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__)
    #define GHOSTMLP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define GHOSTMLP_CLONES
    #endif

    /* e^x as 2^n e^r with n = round(x log2 e), r = x - n ln 2 in two parts (Cody and
       Waite), e^r from Cephes' expf polynomial: within 2 ulp of e^x on [-87.3, 88]. Below,
       0 (e^x would be subnormal, under 1.2e-38); above, e^88. */
    static inline float ghostmlp_expf(float x) {
        float low = x < -87.3f ? 0.0f : 1.0f;
        x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
        float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
        float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = (p * r) * r + r + 1.0f;
        int32_t bits = ((int32_t)n + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        return p * scale * low;
    }

    /* row[i] := 1 / (1 + e^-(row[i] + bias)), from e = e^-|z|, which never overflows. */
    GHOSTMLP_CLONES static void ghostmlp_sigmoid_rowf(float *row, Py_ssize_t n, float bias) {
        for (Py_ssize_t i = 0; i < n; i++) {
            float z = row[i] + bias;
            float e = ghostmlp_expf(-fabsf(z));
            float s = 1.0f / (1.0f + e);
            row[i] = z >= 0.0f ? s : e * s;
        }
    }

    /* row[i] := e^(row[i] - shift[i]); total[i] += row[i]: a softmax's middle pass. */
    GHOSTMLP_CLONES static void ghostmlp_exp_rowf(float *row, const float *shift, float *total,
                                                  Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) {
            row[i] = ghostmlp_expf(row[i] - shift[i]);
            total[i] += row[i];
        }
    }
    """
    void ghostmlp_sigmoid_rowf(float* row, Py_ssize_t n, float bias) noexcept nogil
    void ghostmlp_exp_rowf(float* row, const float* shift, float* total, Py_ssize_t n) noexcept nogil


cdef inline double _sigmoid(double z) noexcept nogil:
    """1 / (1 + e^-z) from e = e^-|z|, which never overflows (float64; float32 has its row loop)."""
    cdef double e = exp(-fabs(z))
    return 1 / (1 + e) if z >= 0 else e / (1 + e)


cdef inline floating _tanh(floating z) noexcept nogil:
    if floating is float:
        return tanhf(z)
    else:
        return tanh(z)


cdef inline floating _derivative(floating a, int act) noexcept nogil:
    """act'(z) written in terms of the activation's output a = act(z)."""
    if act == _SIGMOID:
        return a * (1 - a)
    if act == _TANH:
        return 1 - a * a
    if act == _RELU:
        return 1 if a > 0 else 0
    return 1


# --------------------------------------------------------------------- cores

cdef void bias_activation_core(int n, int batch, floating* z, floating* bias, int act,
                               floating* scratch) noexcept nogil:
    """H[n, B] := act(Z[n, B] + b[n]) in place; bias may be NULL; softmax runs over n.

    scratch: 2 * B values, used by softmax only.
    """
    cdef Py_ssize_t j, i, B = batch
    cdef floating bj
    cdef floating* row
    if act == _SOFTMAX:
        softmax_core(n, batch, z, bias, scratch)
        return
    for j in range(n):
        row = z + j * B
        bj = bias[j] if bias != NULL else 0
        if act == _SIGMOID:
            if floating is float:
                ghostmlp_sigmoid_rowf(row, B, bj)
            else:
                for i in range(B):
                    row[i] = _sigmoid(row[i] + bj)
        elif act == _TANH:
            for i in range(B):
                row[i] = _tanh(row[i] + bj)
        elif act == _RELU:
            for i in range(B):
                row[i] = row[i] + bj if row[i] + bj > 0 else 0
        else:
            for i in range(B):
                row[i] = row[i] + bj


cdef void softmax_core(int n, int batch, floating* z, floating* bias,
                       floating* scratch) noexcept nogil:
    """P[k, i] := exp(z[k, i] + b_k - m_i) / sum_j exp(z[j, i] + b_j - m_i), m_i the column max."""
    cdef Py_ssize_t j, i, B = batch
    cdef floating* row
    cdef floating* col_max = scratch
    cdef floating* col_sum = scratch + B
    cdef floating bj
    for i in range(B):
        col_max[i] = -INFINITY
        col_sum[i] = 0
    for j in range(n):
        row = z + j * B
        bj = bias[j] if bias != NULL else 0
        for i in range(B):
            row[i] = row[i] + bj
            if row[i] > col_max[i]:
                col_max[i] = row[i]
    for j in range(n):
        row = z + j * B
        if floating is float:
            ghostmlp_exp_rowf(row, col_max, col_sum, B)
        else:
            for i in range(B):
                row[i] = exp(row[i] - col_max[i])
                col_sum[i] += row[i]
    for i in range(B):
        col_sum[i] = 1 / col_sum[i]
    for j in range(n):
        row = z + j * B
        for i in range(B):
            row[i] = row[i] * col_sum[i]


cdef void forward_core(int n_in, int n_out, int batch, floating* h, floating* w, int ldw,
                       floating* bias, floating* out, int act, floating* scratch) noexcept nogil:
    """OUT[n_out, B] := act(W[n_in, n_out].T @ H[n_in, B] + b): one GEMM, then one fused pass.

    W's rows are ldw apart, so that W may be a range of columns of a wider matrix.
    """
    if batch == 1:
        _gemv(c'N', n_out, n_in, <floating>1, w, ldw, h, <floating>0, out)
    else:
        _gemm(c'N', c'T', batch, n_out, n_in, <floating>1, h, batch, w, ldw,
              <floating>0, out, batch)
    bias_activation_core(n_out, batch, out, bias, act, scratch)


cdef double output_delta_core(int n, int batch, floating* a, floating* y,
                              Py_ssize_t y_neuron_stride, Py_ssize_t y_sample_stride,
                              long long* labels, floating* delta, int act, int loss,
                              floating* scratch) noexcept nogil:
    """Batch-mean loss of A[n, B] against targets; DELTA[n, B] := d(mean loss)/dZ.

    Targets are either dense, y[k, i] at ``y[k * y_neuron_stride + i * y_sample_stride]``,
    or class indices ``labels[B]`` (y = one-hot). Returns the loss as a double.
    Squared loss per sample: 1/2 sum_k (a_k - y_k)^2, its delta taken through act'
    (through the full softmax Jacobian for softmax). Cross-entropy per sample:
    -sum_k y_k log a_k (softmax) or the binary form (sigmoid); delta a sum(y) - y, a - y.
    """
    cdef Py_ssize_t k, i, B = batch
    cdef double total = 0, tiny = 1e-300    # keeps log finite where a rounds to 0 or 1
    cdef floating scale = (<floating>1) / batch
    cdef floating ak, yk, g
    cdef floating* row
    cdef floating* drow
    cdef floating* col = scratch
    for i in range(B):
        col[i] = 0
    for k in range(n):
        row = a + k * B
        drow = delta + k * B
        for i in range(B):
            ak = row[i]
            if labels != NULL:
                yk = 1 if labels[i] == k else 0
            else:
                yk = y[k * y_neuron_stride + i * y_sample_stride]
            if loss == _MSE:
                g = ak - yk
                total += 0.5 * g * g
                if act == _SOFTMAX:
                    col[i] += g * ak         # sum_j g_j a_j, for the Jacobian below
                    drow[i] = g
                else:
                    drow[i] = g * _derivative(ak, act) * scale
            elif act == _SOFTMAX:
                total -= yk * log(max(<double>ak, tiny)) if yk != 0 else 0
                col[i] += yk                 # sum_j y_j, 1 for one-hot rows
                drow[i] = yk
            else:
                total -= (yk * log(max(<double>ak, tiny)) if yk != 0 else 0) + (
                    (1 - yk) * log(max(<double>(1 - ak), tiny)) if yk != 1 else 0)
                drow[i] = (ak - yk) * scale
    if act == _SOFTMAX:
        for k in range(n):
            row = a + k * B
            drow = delta + k * B
            for i in range(B):
                if loss == _MSE:
                    drow[i] = row[i] * (drow[i] - col[i]) * scale
                else:
                    drow[i] = (row[i] * col[i] - drow[i]) * scale
    return total / batch


cdef void backprop_core(int n, int n_next, int batch, floating* delta_next, floating* w_next,
                        floating* out, floating beta) noexcept nogil:
    """OUT[n, B] := beta OUT + W_next[n, n_next] @ DELTA_next[n_next, B] (beta 0 or 1)."""
    if batch == 1:
        _gemv(c'T', n_next, n, <floating>1, w_next, n_next, delta_next, beta, out)
    else:
        _gemm(c'N', c'N', batch, n, n_next, <floating>1, delta_next, batch, w_next, n_next,
              beta, out, batch)


cdef void hidden_delta_core(int n, int n_next, int batch, floating* delta_next,
                            floating* w_next, floating* a, floating* delta,
                            int act) noexcept nogil:
    """DELTA[n, B] := (W_next[n, n_next] @ DELTA_next[n_next, B]) * act'(A[n, B])."""
    backprop_core(n, n_next, batch, delta_next, w_next, delta, 0)
    derivative_core(n, batch, delta, a, act)


cdef void derivative_core(int n, int batch, floating* delta, floating* a, int act) noexcept nogil:
    """DELTA[n, B] *= act'(A[n, B])."""
    cdef Py_ssize_t j, i, B = batch
    cdef floating* row
    cdef floating* arow
    if act == _IDENTITY:
        return
    for j in range(n):
        row = delta + j * B
        arow = a + j * B
        for i in range(B):
            row[i] = row[i] * _derivative(arow[i], act)


cdef void outer_update_core(int n_in, int n_out, int batch, floating* h, floating* delta,
                            floating* target, floating* target_bias, floating alpha,
                            floating beta, floating bias_beta) noexcept nogil:
    """T[n_in, n_out] := beta T + alpha H[n_in, B] @ DELTA[n_out, B].T; t_b := bias_beta t_b + alpha DELTA @ 1.

    alpha = -lr, beta = 1 is the SGD step straight into W (no gradient buffer; beta =
    1 - lr wd adds weight decay); alpha = 1, beta = 0 writes the gradient; beta =
    momentum updates a velocity.
    """
    cdef Py_ssize_t j, i, B = batch
    cdef floating s
    cdef floating* row
    if batch == 1 and beta == 1:
        _ger(n_out, n_in, alpha, delta, h, target, n_out)
    else:
        _gemm(c'T', c'N', n_out, n_in, batch, alpha, delta, batch, h, batch,
              beta, target, n_out)
    for j in range(n_out):
        row = delta + j * B
        s = 0
        for i in range(B):
            s += row[i]
        target_bias[j] = (bias_beta * target_bias[j] if bias_beta != 0 else 0) + alpha * s


cdef void fused_delta_update_core(int n_in, int n_out, floating* h, floating* w,
                                  floating* bias, floating* delta, floating* delta_prev,
                                  int act_prev, floating lr) noexcept nogil:
    """Batch 1: delta_prev[i] := act'(h_i) W[i, :] . delta, then W[i, :] -= lr h_i delta.

    One pass over the rows of W: each row is read once from memory for the dot product
    and is still in L1 for the axpy that writes it back. The bias step b -= lr delta follows.
    """
    cdef Py_ssize_t i
    cdef floating* row
    for i in range(n_in):
        row = w + i * n_out
        delta_prev[i] = _dot(n_out, row, delta) * _derivative(h[i], act_prev)
        _axpy(n_out, -lr * h[i], delta, row)
    _axpy(n_out, -lr, delta, bias)


# --------------------------------------------------------- checked wrappers

cdef void _check(bint ok, str what) except *:
    if not ok:
        raise ValueError(what)


def bias_activation(floating[:, ::1] z, floating[::1] bias, int activation, scratch=None):
    """H[n, B] := act(Z[n, B] + b[n]) in place (softmax over the n neurons of each sample).

    bias may be None (no bias); scratch: 2 B values of z's dtype, allocated if None.
    """
    cdef int n = z.shape[0], batch = z.shape[1]
    _check(bias is None or bias.shape[0] == n, "bias must have one entry per row of z")
    _check(0 <= activation <= _SOFTMAX, "unknown activation code")
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
    _check(0 <= activation <= _SOFTMAX, "unknown activation code")
    _check(0 <= start < end <= n_out, "need 0 <= start < stop <= fan_out")
    _check(activation != _SOFTMAX or end - start == n_out, "softmax needs the whole layer")
    cdef floating[::1] s = _scratch_like(out, 2 * batch) if scratch is None else scratch
    _check(s.shape[0] >= 2 * batch, "scratch must hold 2 B values")
    with nogil:
        forward_core(n_in, end - start, batch, &h[0, 0], &w[0, start], n_out, &bias[start],
                     &out[start, 0], activation, &s[0])


def output_delta(floating[:, ::1] a, floating[:, ::1] y, floating[:, ::1] delta,
                 int activation, int loss):
    """Batch-mean loss of A[n, B] against one-hot or soft targets Y[n, B]; DELTA := dLoss/dZ."""
    cdef int n = a.shape[0], batch = a.shape[1]
    cdef double result
    _check(y.shape[0] == n and y.shape[1] == batch and delta.shape[0] == n
           and delta.shape[1] == batch, "a, y and delta must have the same shape")
    _check(activation in (_SIGMOID, _IDENTITY, _SOFTMAX), "unknown output activation code")
    _check(loss in (_MSE, _CROSS_ENTROPY), "unknown loss code")
    _check(not (loss == _CROSS_ENTROPY and activation == _IDENTITY),
           "cross-entropy needs a softmax or sigmoid output")
    scratch = _scratch_like(a, 2 * batch)
    cdef floating[::1] s = scratch
    with nogil:
        result = output_delta_core(n, batch, &a[0, 0], &y[0, 0], batch, 1, NULL,
                                   &delta[0, 0], activation, loss, &s[0])
    return result


def loss_delta(floating[:, ::1] a, target, floating[:, ::1] delta, int activation, int loss,
               floating[::1] scratch):
    """Batch-mean loss of A[n, B]; DELTA := dLoss/dZ. target: labels int64[B] or rows Y[B, n].

    scratch: 2 B values of a's dtype.
    """
    cdef int n = a.shape[0], batch = a.shape[1]
    cdef const long long[::1] labels
    cdef floating[:, ::1] rows
    cdef long long* lp = NULL
    cdef floating* yp = NULL
    cdef double result
    _check(delta.shape[0] == n and delta.shape[1] == batch and scratch.shape[0] >= 2 * batch,
           "delta must be [n, B] and scratch hold 2 B values")
    if target.ndim == 1:
        labels = target
        _check(labels.shape[0] == batch, "labels must be [B]")
        lp = <long long*>&labels[0]
    else:
        rows = target
        _check(rows.shape[0] == batch and rows.shape[1] == n, "targets must be [B, n]")
        yp = &rows[0, 0]
    with nogil:
        result = output_delta_core(n, batch, &a[0, 0], yp, 1, n, lp, &delta[0, 0],
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
        outer_update_core(n_in, n_out, batch, &h[0, 0], &delta[0, 0], &target[0, 0],
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


cdef object _scratch_like(floating[:, ::1] like, Py_ssize_t size):
    return numpy.empty(max(size, 1), dtype=numpy.float32 if floating is float else numpy.float64)


# ------------------------------------------------------------ whole serial step

cdef void forward_all(int n_layers, int* sizes, int* acts, int batch, floating* x,
                      floating* xt, floating** w, floating** b, floating** a,
                      floating* scratch) noexcept nogil:
    """XT[n_0, B] := X[B, n_0].T, then A_l := act_l(W_l.T @ A_{l-1} + b_l) for every layer."""
    cdef Py_ssize_t i, j, l, B = batch, n0 = sizes[0]
    for i in range(B):
        for j in range(n0):
            xt[j * B + i] = x[i * n0 + j]
    for l in range(n_layers):
        forward_core(sizes[l], sizes[l + 1], batch, xt if l == 0 else a[l - 1], w[l],
                     sizes[l + 1], b[l], a[l], acts[l], scratch)


cdef void backward_all(int n_layers, int* sizes, int* acts, int batch, floating* xt,
                       floating** w, floating** b, floating** v, floating** vb,
                       floating** a, floating** d, floating lr, floating momentum,
                       floating weight_decay, floating** grad_w,
                       floating** grad_b) noexcept nogil:
    """Back-propagate DELTA_L through every layer and update it (or write its gradient).

    Layer l's delta below is formed from W_l before W_l changes. Update rules, g the
    gradient of the batch-mean loss: SGD W := (1 - lr wd) W - lr g, one GEMM into W;
    momentum V := m V - lr (g + wd W), W := W + V. With grad_w set, g is written there
    and nothing is updated.
    """
    cdef Py_ssize_t l, n_in, n_out
    cdef floating* h
    cdef bint fused
    for l in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[l], sizes[l + 1]
        h = xt if l == 0 else a[l - 1]
        fused = (l > 0 and batch == 1 and grad_w == NULL and momentum == 0
                 and weight_decay == 0
                 and n_in * n_out * sizeof(floating) >= _FUSED_ROW_MIN_BYTES)
        if fused:
            fused_delta_update_core(n_in, n_out, h, w[l], b[l], d[l], d[l - 1], acts[l - 1], lr)
            continue
        if l > 0:
            hidden_delta_core(n_in, n_out, batch, d[l], w[l], a[l - 1], d[l - 1], acts[l - 1])
        if grad_w != NULL:
            outer_update_core(n_in, n_out, batch, h, d[l], grad_w[l], grad_b[l], 1, 0, 0)
        elif momentum == 0:
            outer_update_core(n_in, n_out, batch, h, d[l], w[l], b[l], -lr,
                              1 - lr * weight_decay, 1)
        else:
            outer_update_core(n_in, n_out, batch, h, d[l], v[l], vb[l], -lr, momentum, momentum)
            if weight_decay != 0:
                _axpy(n_in * n_out, -lr * weight_decay, w[l], v[l])
            _axpy(n_in * n_out, <floating>1, v[l], w[l])
            _axpy(n_out, <floating>1, vb[l], b[l])


cdef char* _array_data(object array, int typenum, Py_ssize_t rows, Py_ssize_t cols,
                       str name) except NULL:
    """Pointer to a C-contiguous array of the given type and shape (cols < 0: 1-D)."""
    cdef cnp.ndarray arr
    shape = (rows, cols)[:1 if cols < 0 else 2]
    if not isinstance(array, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy array")
    arr = <cnp.ndarray>array
    if (cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or cnp.PyArray_NDIM(arr) != (1 if cols < 0 else 2)
            or cnp.PyArray_DIM(arr, 0) != rows
            or (cols >= 0 and cnp.PyArray_DIM(arr, 1) != cols)):
        raise ValueError(f"{name} must be a C-contiguous {cnp.PyArray_DescrFromType(typenum)} "
                         f"array of shape {shape}, "
                         f"got {array.dtype} {array.shape}")
    return <char*>cnp.PyArray_DATA(arr)


cdef class LayerStack:
    """A serial stack of dense layers over caller-owned buffers; one call per training step.

    weights[l] W_l[n_l, n_{l+1}], biases[l] b_l[n_{l+1}], velocities (same shapes, or
    None without momentum); activations[l] and deltas[l] are flat buffers of
    n_{l+1} * capacity values, viewed as [n_{l+1}, B] for a batch of B <= capacity;
    inputs_t holds n_0 * capacity values. The arrays are kept alive, never reallocated.
    """
    cdef int n_layers, capacity, batch, typenum, loss
    cdef int* sizes
    cdef int* acts
    cdef void** w
    cdef void** b
    cdef void** v
    cdef void** vb
    cdef void** a
    cdef void** d
    cdef void* xt
    cdef void* scratch
    cdef object arrays

    def __cinit__(self, weights, biases, velocities, activations, deltas, inputs_t,
                  activation_codes, int loss):
        cdef Py_ssize_t l, n = len(weights)
        self.n_layers = n
        self.sizes = <int*>PyMem_Malloc((n + 1) * sizeof(int))
        self.acts = <int*>PyMem_Malloc(n * sizeof(int))
        self.w = <void**>PyMem_Malloc(6 * n * sizeof(void*))
        if self.sizes == NULL or self.acts == NULL or self.w == NULL:
            raise MemoryError()
        self.b, self.v, self.vb = self.w + n, self.w + 2 * n, self.w + 3 * n
        self.a, self.d = self.w + 4 * n, self.w + 5 * n
        dtype = weights[0].dtype
        self.typenum = cnp.NPY_FLOAT64 if dtype == numpy.float64 else cnp.NPY_FLOAT32
        self.sizes[0] = weights[0].shape[0]
        self.capacity = inputs_t.shape[0] // self.sizes[0]
        self.loss = loss
        for l in range(n):
            self.sizes[l + 1] = weights[l].shape[1]
            self.acts[l] = activation_codes[l]
            self.w[l] = _array_data(weights[l], self.typenum, self.sizes[l], self.sizes[l + 1], "weights")
            self.b[l] = _array_data(biases[l], self.typenum, self.sizes[l + 1], -1, "biases")
            self.v[l] = self.vb[l] = NULL
            if velocities is not None:
                self.v[l] = _array_data(velocities[l][0], self.typenum, self.sizes[l], self.sizes[l + 1], "velocities")
                self.vb[l] = _array_data(velocities[l][1], self.typenum, self.sizes[l + 1], -1, "velocities")
            self.a[l] = _array_data(activations[l], self.typenum, self.sizes[l + 1] * self.capacity, -1, "activations")
            self.d[l] = _array_data(deltas[l], self.typenum, self.sizes[l + 1] * self.capacity, -1, "deltas")
        self.xt = _array_data(inputs_t, self.typenum, self.sizes[0] * self.capacity, -1, "inputs_t")
        scratch = numpy.empty(2 * self.capacity, dtype=dtype)
        self.scratch = cnp.PyArray_DATA(scratch)
        self.arrays = (weights, biases, velocities, activations, deltas, inputs_t, scratch)
        self.batch = 0

    def __dealloc__(self):
        PyMem_Free(self.sizes)
        PyMem_Free(self.acts)
        PyMem_Free(self.w)

    @property
    def batch(self):
        """B of the last forward pass (0 before the first)."""
        return self.batch

    def forward(self, x):
        """Forward pass of X[B, n_0] (C-contiguous, B <= capacity); outputs land in activations[-1]."""
        cdef Py_ssize_t batch = x.shape[0] if isinstance(x, numpy.ndarray) and x.ndim == 2 else -1
        if not 1 <= batch <= self.capacity:
            raise ValueError(f"x must be [B, {self.sizes[0]}] with 1 <= B <= {self.capacity}")
        cdef char* xp = _array_data(x, self.typenum, batch, self.sizes[0], "x")
        self.batch = batch
        with nogil:
            if self.typenum == cnp.NPY_FLOAT64:
                forward_all(self.n_layers, self.sizes, self.acts, self.batch, <double*>xp,
                            <double*>self.xt, <double**>self.w, <double**>self.b,
                            <double**>self.a, <double*>self.scratch)
            else:
                forward_all(self.n_layers, self.sizes, self.acts, self.batch, <float*>xp,
                            <float*>self.xt, <float**>self.w, <float**>self.b,
                            <float**>self.a, <float*>self.scratch)

    def loss_delta(self, target):
        """Batch-mean loss of the last forward pass; writes the output delta.

        target: class indices int64[B], or dense targets Y[B, n_out] of the network's dtype.
        """
        cdef int n = self.sizes[self.n_layers], last = self.n_layers - 1
        cdef char* yp = NULL
        cdef long long* labels = NULL
        cdef double result
        if self.batch == 0:
            raise RuntimeError("loss_delta() needs a forward() first")
        if isinstance(target, numpy.ndarray) and target.ndim == 1:
            labels = <long long*>_array_data(target, cnp.NPY_INT64, self.batch, -1, "labels")
        else:
            yp = _array_data(target, self.typenum, self.batch, n, "targets")
        with nogil:
            if self.typenum == cnp.NPY_FLOAT64:
                result = output_delta_core(n, self.batch, <double*>self.a[last], <double*>yp,
                                           1, n, labels, <double*>self.d[last],
                                           self.acts[last], self.loss, <double*>self.scratch)
            else:
                result = output_delta_core(n, self.batch, <float*>self.a[last], <float*>yp,
                                           1, n, labels, <float*>self.d[last],
                                           self.acts[last], self.loss, <float*>self.scratch)
        return result

    def backward(self, double learning_rate, double momentum=0, double weight_decay=0):
        """Back-propagate the output delta and apply the update to every layer."""
        if momentum != 0 and self.v[0] == NULL:
            raise ValueError("momentum needs velocity buffers")
        self._backward(learning_rate, momentum, weight_decay, NULL, NULL)

    def gradients(self, grad_weights, grad_biases):
        """Write d(mean loss)/dW_l and d/db_l of the last batch into the given arrays; no update."""
        cdef Py_ssize_t l, n = self.n_layers
        cdef void** g = <void**>PyMem_Malloc(2 * n * sizeof(void*))
        if g == NULL:
            raise MemoryError()
        try:
            for l in range(n):
                g[l] = _array_data(grad_weights[l], self.typenum, self.sizes[l], self.sizes[l + 1], "grad_weights")
                g[n + l] = _array_data(grad_biases[l], self.typenum, self.sizes[l + 1], -1, "grad_biases")
            self._backward(0, 0, 0, g, g + n)
        finally:
            PyMem_Free(g)

    def step(self, x, target, double learning_rate, double momentum=0, double weight_decay=0):
        """forward(x), loss_delta(target), backward(...) in one call; returns the loss."""
        self.forward(x)
        result = self.loss_delta(target)
        self.backward(learning_rate, momentum, weight_decay)
        return result

    cdef void _backward(self, double lr, double momentum, double weight_decay,
                        void** grad_w, void** grad_b) except *:
        if self.batch == 0:
            raise RuntimeError("backward() needs a forward() and loss_delta() first")
        with nogil:
            if self.typenum == cnp.NPY_FLOAT64:
                backward_all(self.n_layers, self.sizes, self.acts, self.batch, <double*>self.xt,
                             <double**>self.w, <double**>self.b, <double**>self.v,
                             <double**>self.vb, <double**>self.a, <double**>self.d, lr,
                             momentum, weight_decay, <double**>grad_w, <double**>grad_b)
            else:
                backward_all(self.n_layers, self.sizes, self.acts, self.batch, <float*>self.xt,
                             <float**>self.w, <float**>self.b, <float**>self.v,
                             <float**>self.vb, <float**>self.a, <float**>self.d, <float>lr,
                             <float>momentum, <float>weight_decay, <float**>grad_w,
                             <float**>grad_b)
