# Optimizer updates as inline nogil cores: one pass over a parameter array and its state.
from cython cimport floating
from libc.math cimport sqrt, sqrtf

cdef enum:
    # Optimizer codes (ghostmlp.optim names them).
    SGD = 0
    ADAM = 1
    ADAMW = 2


cdef inline void sgd_core(Py_ssize_t n, floating* w, floating* g, floating* buf, floating lr,
                          floating momentum, floating weight_decay, bint nesterov) noexcept nogil:
    """torch.optim.SGD on n values: d := g + wd w; buf := m buf + d; w -= lr (d + m buf or buf).

    buf may be NULL (momentum 0): w -= lr d. A zero buf is PyTorch's first step (buf := d).
    """
    cdef Py_ssize_t i
    cdef floating d
    for i in range(n):
        d = g[i] + weight_decay * w[i] if weight_decay != 0 else g[i]
        if buf != NULL:
            buf[i] = momentum * buf[i] + d
            d = d + momentum * buf[i] if nesterov else buf[i]
        w[i] = w[i] - lr * d


cdef inline void momentum_apply_core(Py_ssize_t n, floating* w, floating* buf, floating lr,
                                     floating weight_decay) noexcept nogil:
    """The rest of sgd_core when buf already holds m buf + g (the gradient GEMM wrote it there):
    buf += wd w; w -= lr buf."""
    cdef Py_ssize_t i
    for i in range(n):
        if weight_decay != 0:
            buf[i] = buf[i] + weight_decay * w[i]
        w[i] = w[i] - lr * buf[i]


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void adam_core(Py_ssize_t n, floating* w, floating* g, floating* m, floating* v,
                           floating lr, double beta1, double beta2, floating eps,
                           floating weight_decay, bint decoupled, double correction1,
                           double correction2) noexcept nogil:
    """torch.optim.Adam (decoupled: AdamW) on n values at step t, correction_k = 1 - beta_k^t.

    Adam: d := g + wd w; AdamW: w *= 1 - lr wd, d := g. Then m := b1 m + (1 - b1) d,
    v := b2 v + (1 - b2) d^2, w -= (lr / correction1) m / (sqrt(v) / sqrt(correction2) + eps).
    1 - b_k is rounded to the dtype from double: 1 - 0.999 computed in float32 is 1.3e-5 off.
    """
    cdef Py_ssize_t i
    cdef floating d, step = lr / correction1, root2 = sqrt(correction2)
    cdef floating shrink = 1 - lr * weight_decay
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating rest1 = <floating>(1 - beta1), rest2 = <floating>(1 - beta2)
    for i in range(n):
        d = g[i]
        if decoupled:
            w[i] = w[i] * shrink
        elif weight_decay != 0:
            d = d + weight_decay * w[i]
        m[i] = b1 * m[i] + rest1 * d
        v[i] = b2 * v[i] + rest2 * d * d
        w[i] = w[i] - step * m[i] / (_sqrt(v[i]) / root2 + eps)
