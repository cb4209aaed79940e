# The math of one layer slice, as inline nogil cores on raw pointers (see _kernels.pyx for the layout).
from cython cimport floating
from libc.math cimport exp, log, INFINITY

from ghostmlp._blas cimport gemm, gemv, ger, dot, axpy

cdef extern from "_activations.h":
    void ghostmlp_sigmoid_rowf(float* row, Py_ssize_t n, float bias) noexcept nogil
    void ghostmlp_tanh_rowf(float* row, Py_ssize_t n, float bias) noexcept nogil
    void ghostmlp_exp_bias_rowf(float* row, Py_ssize_t n, float bias) noexcept nogil
    void ghostmlp_exp_rowf(float* row, const float* shift, float* total, Py_ssize_t n) noexcept nogil
    void ghostmlp_sigmoid_row(double* row, Py_ssize_t n, double bias) noexcept nogil
    void ghostmlp_tanh_row(double* row, Py_ssize_t n, double bias) noexcept nogil
    void ghostmlp_exp_row(double* row, const double* shift, double* total, Py_ssize_t n) noexcept nogil

cdef enum:
    # Activation codes (hidden: SIGMOID, TANH, RELU, IDENTITY; output: SOFTMAX, SIGMOID,
    # IDENTITY, EXP). EXP is the Poisson loss's output alone: its delta a - y needs no act'.
    SIGMOID = 0
    TANH = 1
    RELU = 2
    IDENTITY = 3
    SOFTMAX = 4
    EXP = 5
    # Losses: squared loss 1/2 sum_k (y'_k - y_k)^2 (paper eq. 4), cross-entropy, half
    # Poisson deviance sum_k y_k log(y_k / y'_k) - y_k + y'_k.
    MSE = 0
    CROSS_ENTROPY = 1
    POISSON = 2
    # At batch 1 the fused row pass (one read and one write of W for delta and update)
    # beats gemv + ger (two reads and one write) when W streams from memory, not from a
    # core's L2 (1 MiB and more here); below that it is break-even or slower. Measured in
    # benchmarks/kernels.py.
    FUSED_ROW_MIN_BYTES = 1 << 20


cdef inline floating derivative(floating a, int act) noexcept nogil:
    """act'(z) written in terms of the activation's output a = act(z)."""
    if act == SIGMOID:
        return a * (1 - a)
    if act == TANH:
        return 1 - a * a
    if act == RELU:
        return 1 if a > 0 else 0
    return 1



cdef inline void exp_row(floating* row, Py_ssize_t n, floating bias) noexcept nogil:
    """row[i] := e^(row[i] + bias): float32 clamped at e^88 (float32's largest value is
    3.4e38 = e^88.7) and 0 below -87.3; float64 overflows to inf only above 709."""
    cdef Py_ssize_t i
    if floating is float:
        ghostmlp_exp_bias_rowf(row, n, bias)
    else:
        for i in range(n):
            row[i] = exp(row[i] + bias)


cdef inline void softmax_core(int n, int batch, floating* z, floating* bias,
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
            ghostmlp_exp_row(row, col_max, col_sum, B)
    for i in range(B):
        col_sum[i] = 1 / col_sum[i]
    for j in range(n):
        row = z + j * B
        for i in range(B):
            row[i] = row[i] * col_sum[i]


cdef inline void bias_activation_core(int n, int batch, floating* z, floating* bias, int act,
                               floating* scratch) noexcept nogil:
    """H[n, B] := act(Z[n, B] + b[n]) in place; bias may be NULL; softmax runs over n.

    scratch: 2 * B values, used by softmax only. EXP: see exp_row. At B = 1, H is one row
    of n values: the biases are added first and the activation is one row call (not n).
    """
    cdef Py_ssize_t j, i, B = batch, rows = n
    cdef floating bj
    cdef floating* row
    if act == SOFTMAX:
        softmax_core(n, batch, z, bias, scratch)
        return
    if batch == 1:
        if bias != NULL:
            for j in range(n):
                z[j] = z[j] + bias[j]
        bias, rows, B = NULL, 1, n
    for j in range(rows):
        row = z + j * B
        bj = bias[j] if bias != NULL else 0
        if act == SIGMOID:
            if floating is float:
                ghostmlp_sigmoid_rowf(row, B, bj)
            else:
                ghostmlp_sigmoid_row(row, B, bj)
        elif act == TANH:
            if floating is float:
                ghostmlp_tanh_rowf(row, B, bj)
            else:
                ghostmlp_tanh_row(row, B, bj)
        elif act == RELU:       # NaN stays NaN (as numpy.maximum): a bad input is not hidden
            for i in range(B):
                row[i] = 0 if row[i] + bj <= 0 else row[i] + bj
        elif act == EXP:
            exp_row(row, B, bj)
        else:
            for i in range(B):
                row[i] = row[i] + bj


cdef inline void forward_core(int n_in, int n_out, int batch, floating* h, floating* w, int ldw,
                       floating* bias, floating* out, int act, floating* scratch) noexcept nogil:
    """OUT[n_out, B] := act(W[n_in, n_out].T @ H[n_in, B] + b): one GEMM, then one fused pass.

    W's rows are ldw apart, so that W may be a range of columns of a wider matrix.
    """
    if batch == 1:
        gemv(c'N', n_out, n_in, <floating>1, w, ldw, h, <floating>0, out)
    else:
        gemm(c'N', c'T', batch, n_out, n_in, <floating>1, h, batch, w, ldw,
              <floating>0, out, batch)
    bias_activation_core(n_out, batch, out, bias, act, scratch)


cdef inline floating sample_scale(floating* weights, Py_ssize_t i, floating c) noexcept nogil:
    """w_i c, the factor of sample i's delta (w_i = 1 where weights is NULL)."""
    return c * weights[i] if weights != NULL else c


cdef inline double output_delta_core(int n, int batch, floating* a, floating* y,
                              Py_ssize_t y_neuron_stride, Py_ssize_t y_sample_stride,
                              long long* labels, floating* weights, double total,
                              floating* delta, int act, int loss,
                              floating* scratch) noexcept nogil:
    """sum_i w_i loss_i / total over A[n, B]; DELTA[k, i] := w_i dloss_i/dZ[k, i] / total.

    w_i = weights[i], or 1 where weights is NULL; total = B (or sum_i w_i) makes these the
    batch's (weighted) mean and its gradient, a larger total this batch's part of a larger
    batch's. Targets are either dense, y[k, i] at ``y[k * y_neuron_stride + i *
    y_sample_stride]``, or class indices ``labels[B]`` (y = one-hot). Returns a double.
    Squared loss per sample: 1/2 sum_k (a_k - y_k)^2, its delta taken through act'
    (through the full softmax Jacobian for softmax). Cross-entropy per sample:
    -sum_k y_k log a_k (softmax) or the binary form (sigmoid); delta a sum(y) - y, a - y.
    Poisson (exp output, a = e^z): sum_k y_k log(y_k / a_k) - y_k + a_k, 0 log 0 = 0
    (scikit-learn's poisson_loss); delta a - y.
    """
    cdef Py_ssize_t k, i, B = batch
    cdef double summed = 0, tiny = 1e-300  # keeps log finite where a rounds to 0 or 1
    cdef double wi = 1
    cdef floating c = (<floating>1) / <floating>total
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
            if weights != NULL:
                wi = weights[i]
            if loss == MSE:
                g = ak - yk
                summed += wi * (0.5 * g * g)
                if act == SOFTMAX:
                    col[i] += g * ak         # sum_j g_j a_j, for the Jacobian below
                    drow[i] = g
                else:
                    drow[i] = g * derivative(ak, act) * sample_scale(weights, i, c)
            elif loss == POISSON:
                summed += wi * ((yk * log(yk / max(<double>ak, tiny)) if yk != 0 else 0)
                                - yk + ak)
                drow[i] = (ak - yk) * sample_scale(weights, i, c)
            elif act == SOFTMAX:
                summed -= wi * (yk * log(max(<double>ak, tiny)) if yk != 0 else 0)
                col[i] += yk                 # sum_j y_j, 1 for one-hot rows
                drow[i] = yk
            else:
                summed -= wi * ((yk * log(max(<double>ak, tiny)) if yk != 0 else 0) + (
                    (1 - yk) * log(max(<double>(1 - ak), tiny)) if yk != 1 else 0))
                drow[i] = (ak - yk) * sample_scale(weights, i, c)
    if act == SOFTMAX:
        for k in range(n):
            row = a + k * B
            drow = delta + k * B
            for i in range(B):
                if loss == MSE:
                    drow[i] = row[i] * (drow[i] - col[i]) * sample_scale(weights, i, c)
                else:
                    drow[i] = (row[i] * col[i] - drow[i]) * sample_scale(weights, i, c)
    return summed / total


cdef inline void backprop_core(int n, int n_next, int batch, floating* delta_next, floating* w_next,
                        floating* out, floating beta) noexcept nogil:
    """OUT[n, B] := beta OUT + W_next[n, n_next] @ DELTA_next[n_next, B] (beta 0 or 1)."""
    if batch == 1:
        gemv(c'T', n_next, n, <floating>1, w_next, n_next, delta_next, beta, out)
    else:
        gemm(c'N', c'N', batch, n, n_next, <floating>1, delta_next, batch, w_next, n_next,
              beta, out, batch)


cdef inline void derivative_core(int n, int batch, floating* delta, floating* a, int act) noexcept nogil:
    """DELTA[n, B] *= act'(A[n, B]): one loop over the n B values per activation, each
    with its derivative inlined as a constant (so that the loop vectorises)."""
    cdef Py_ssize_t i, size = n * <Py_ssize_t>batch
    if act == SIGMOID:
        for i in range(size):
            delta[i] = delta[i] * derivative(a[i], SIGMOID)
    elif act == TANH:
        for i in range(size):
            delta[i] = delta[i] * derivative(a[i], TANH)
    elif act == RELU:
        for i in range(size):
            delta[i] = delta[i] * derivative(a[i], RELU)


cdef inline void hidden_delta_core(int n, int n_next, int batch, floating* delta_next,
                            floating* w_next, floating* a, floating* delta,
                            int act) noexcept nogil:
    """DELTA[n, B] := (W_next[n, n_next] @ DELTA_next[n_next, B]) * act'(A[n, B])."""
    backprop_core(n, n_next, batch, delta_next, w_next, delta, 0)
    derivative_core(n, batch, delta, a, act)


cdef inline floating bias_term(floating t, floating beta, floating alpha, floating s) noexcept nogil:
    """beta t + alpha s, with beta 0 ignoring t (which may be uninitialised)."""
    return (beta * t if beta != 0 else 0) + alpha * s


cdef inline void weights_outer_core(int n_in, int n_out, int batch, floating* h,
                                    floating* delta, floating* target, floating alpha,
                                    floating beta) noexcept nogil:
    """T[n_in, n_out] := beta T + alpha H[n_in, B] @ DELTA[n_out, B].T (H, DELTA rows of stride B)."""
    if batch == 1 and beta == 1:
        ger(n_out, n_in, alpha, delta, h, target, n_out)
    else:
        gemm(c'T', c'N', n_out, n_in, batch, alpha, delta, batch, h, batch,
              beta, target, n_out)


cdef inline void bias_sum_core(int n_out, int batch, floating* delta, floating* target_bias,
                               floating alpha, floating beta) noexcept nogil:
    """t_b[n_out] := beta t_b + alpha DELTA[n_out, B] @ 1."""
    cdef Py_ssize_t j, i, B = batch
    cdef floating s
    cdef floating* row
    if batch == 1:      # DELTA @ 1 is DELTA's one column: a loop that vectorises
        for j in range(n_out):
            target_bias[j] = bias_term(target_bias[j], beta, alpha, delta[j])
        return
    for j in range(n_out):
        row = delta + j * B
        s = 0
        for i in range(B):
            s += row[i]
        target_bias[j] = bias_term(target_bias[j], beta, alpha, s)


cdef inline void outer_core(int n_in, int n_out, int batch, floating* h, floating* delta,
                            floating* target, floating* target_bias, floating alpha,
                            floating beta, floating bias_beta) noexcept nogil:
    """T[n_in, n_out] := beta T + alpha H[n_in, B] @ DELTA[n_out, B].T; t_b := bias_beta t_b + alpha DELTA @ 1.

    alpha = -lr, beta = 1 is the SGD step straight into W (no gradient buffer; beta =
    1 - lr wd adds weight decay); alpha = 1, beta = 0 writes the gradient; beta =
    momentum updates a velocity.
    """
    weights_outer_core(n_in, n_out, batch, h, delta, target, alpha, beta)
    bias_sum_core(n_out, batch, delta, target_bias, alpha, bias_beta)


cdef inline void fused_delta_update_core(int n_in, int n_out, floating* h, floating* w,
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
        delta_prev[i] = dot(n_out, row, delta) * derivative(h[i], act_prev)
        axpy(n_out, -lr * h[i], delta, row)
    axpy(n_out, -lr, delta, bias)
