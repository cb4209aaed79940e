# The BLAS the kernels call, one inline function per routine for both dtypes; the library
# behind them is bound at import (ghostmlp/blas.py, through bind below; see _blas.h).
from cython cimport floating

cdef extern from "_blas.h" nogil:
    ctypedef struct ghostmlp_blas_table:
        void* sgemm
        void* dgemm
        void* sgemv
        void* dgemv
        void* sger
        void* dger
        void* sdot
        void* ddot
        void* saxpy
        void* daxpy
        int ilp64
    ghostmlp_blas_table ghostmlp_blas
    void ghostmlp_sgemm(char, char, int, int, int, float, const float*, int, const float*, int,
                        float, float*, int) noexcept
    void ghostmlp_dgemm(char, char, int, int, int, double, const double*, int, const double*,
                        int, double, double*, int) noexcept
    void ghostmlp_sgemv(char, int, int, float, const float*, int, const float*, float,
                        float*) noexcept
    void ghostmlp_dgemv(char, int, int, double, const double*, int, const double*, double,
                        double*) noexcept
    void ghostmlp_sger(int, int, float, const float*, const float*, float*, int) noexcept
    void ghostmlp_dger(int, int, double, const double*, const double*, double*, int) noexcept
    float ghostmlp_sdot(int, const float*, const float*) noexcept
    double ghostmlp_ddot(int, const double*, const double*) noexcept
    void ghostmlp_saxpy(int, float, const float*, float*) noexcept
    void ghostmlp_daxpy(int, double, const double*, double*) noexcept


cdef inline bind(dict addresses, bint ilp64):
    """Points this module's table at one library: addresses maps routine names to entry points."""
    ghostmlp_blas.sgemm = <void*><size_t>addresses["sgemm"]
    ghostmlp_blas.dgemm = <void*><size_t>addresses["dgemm"]
    ghostmlp_blas.sgemv = <void*><size_t>addresses["sgemv"]
    ghostmlp_blas.dgemv = <void*><size_t>addresses["dgemv"]
    ghostmlp_blas.sger = <void*><size_t>addresses["sger"]
    ghostmlp_blas.dger = <void*><size_t>addresses["dger"]
    ghostmlp_blas.sdot = <void*><size_t>addresses["sdot"]
    ghostmlp_blas.ddot = <void*><size_t>addresses["ddot"]
    ghostmlp_blas.saxpy = <void*><size_t>addresses["saxpy"]
    ghostmlp_blas.daxpy = <void*><size_t>addresses["daxpy"]
    ghostmlp_blas.ilp64 = ilp64


cdef inline void gemm(char ta, char tb, int m, int n, int k, floating alpha,
                      floating* a, int lda, floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    if floating is float:
        ghostmlp_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    else:
        ghostmlp_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef inline void gemv(char t, int m, int n, floating alpha, floating* a, int lda,
                      floating* x, floating beta, floating* y) noexcept nogil:
    if floating is float:
        ghostmlp_sgemv(t, m, n, alpha, a, lda, x, beta, y)
    else:
        ghostmlp_dgemv(t, m, n, alpha, a, lda, x, beta, y)


cdef inline void ger(int m, int n, floating alpha, floating* x, floating* y,
                     floating* a, int lda) noexcept nogil:
    if floating is float:
        ghostmlp_sger(m, n, alpha, x, y, a, lda)
    else:
        ghostmlp_dger(m, n, alpha, x, y, a, lda)


cdef inline floating dot(int n, floating* x, floating* y) noexcept nogil:
    if floating is float:
        return ghostmlp_sdot(n, x, y)
    else:
        return ghostmlp_ddot(n, x, y)


cdef inline void axpy(int n, floating alpha, floating* x, floating* y) noexcept nogil:
    if floating is float:
        ghostmlp_saxpy(n, alpha, x, y)
    else:
        ghostmlp_daxpy(n, alpha, x, y)
