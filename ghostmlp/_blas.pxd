# The BLAS the kernels call, one inline function per routine for both dtypes (scipy's cython_blas).
from cython cimport floating
from scipy.linalg.cython_blas cimport (
    sgemm, dgemm, sgemv, dgemv, sger, dger, sdot, ddot, saxpy, daxpy)


cdef inline void gemm(char ta, char tb, int m, int n, int k, floating alpha,
                      floating* a, int lda, floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef inline void gemv(char t, int m, int n, floating alpha, floating* a, int lda,
                      floating* x, floating beta, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sgemv(&t, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)
    else:
        dgemv(&t, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)


cdef inline void ger(int m, int n, floating alpha, floating* x, floating* y,
                     floating* a, int lda) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sger(&m, &n, &alpha, x, &one, y, &one, a, &lda)
    else:
        dger(&m, &n, &alpha, x, &one, y, &one, a, &lda)


cdef inline floating dot(int n, floating* x, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        return sdot(&n, x, &one, y, &one)
    else:
        return ddot(&n, x, &one, y, &one)


cdef inline void axpy(int n, floating alpha, floating* x, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        saxpy(&n, &alpha, x, &one, y, &one)
    else:
        daxpy(&n, &alpha, x, &one, y, &one)
