/* The BLAS the kernels call: a table of the Fortran-interface entry points of one library,
   filled at import by ghostmlp/blas.py (each extension module holds its own copy), and one
   inline wrapper per routine and dtype that passes sizes as the library's integer (32-bit
   for an LP64 library, 64-bit for an ILP64 one such as numpy's scipy_openblas64). */
#ifndef GHOSTMLP_BLAS_H
#define GHOSTMLP_BLAS_H
#include <stdint.h>

typedef struct {
    void *sgemm, *dgemm, *sgemv, *dgemv, *sger, *dger, *sdot, *ddot, *saxpy, *daxpy;
    int ilp64;
} ghostmlp_blas_table;

static ghostmlp_blas_table ghostmlp_blas;

/* One wrapper body for both integer widths: I is the library's integer type. */
#define GHOSTMLP_GEMM_CALL(T, P, I) { \
    I M = m, N = n, K = k, LA = lda, LB = ldb, LC = ldc; \
    ((void (*)(const char*, const char*, const I*, const I*, const I*, const T*, const T*, \
               const I*, const T*, const I*, const T*, T*, const I*))ghostmlp_blas.P##gemm)( \
        &ta, &tb, &M, &N, &K, &alpha, a, &LA, b, &LB, &beta, c, &LC); }
#define GHOSTMLP_GEMV_CALL(T, P, I) { \
    I M = m, N = n, LA = lda, ONE = 1; \
    ((void (*)(const char*, const I*, const I*, const T*, const T*, const I*, const T*, \
               const I*, const T*, T*, const I*))ghostmlp_blas.P##gemv)( \
        &t, &M, &N, &alpha, a, &LA, x, &ONE, &beta, y, &ONE); }
#define GHOSTMLP_GER_CALL(T, P, I) { \
    I M = m, N = n, LA = lda, ONE = 1; \
    ((void (*)(const I*, const I*, const T*, const T*, const I*, const T*, const I*, T*, \
               const I*))ghostmlp_blas.P##ger)(&M, &N, &alpha, x, &ONE, y, &ONE, a, &LA); }
#define GHOSTMLP_DOT_CALL(T, P, I) { \
    I N = n, ONE = 1; \
    return ((T (*)(const I*, const T*, const I*, const T*, const I*))ghostmlp_blas.P##dot)( \
        &N, x, &ONE, y, &ONE); }
#define GHOSTMLP_AXPY_CALL(T, P, I) { \
    I N = n, ONE = 1; \
    ((void (*)(const I*, const T*, const T*, const I*, T*, const I*))ghostmlp_blas.P##axpy)( \
        &N, &alpha, x, &ONE, y, &ONE); }
#define GHOSTMLP_BOTH(CALL, T, P) \
    if (ghostmlp_blas.ilp64) CALL(T, P, int64_t) else CALL(T, P, int)

#define GHOSTMLP_ROUTINES(T, P) \
static inline void ghostmlp_##P##gemm(char ta, char tb, int m, int n, int k, T alpha, \
        const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) { \
    GHOSTMLP_BOTH(GHOSTMLP_GEMM_CALL, T, P) } \
static inline void ghostmlp_##P##gemv(char t, int m, int n, T alpha, const T* a, int lda, \
        const T* x, T beta, T* y) { \
    GHOSTMLP_BOTH(GHOSTMLP_GEMV_CALL, T, P) } \
static inline void ghostmlp_##P##ger(int m, int n, T alpha, const T* x, const T* y, T* a, \
        int lda) { \
    GHOSTMLP_BOTH(GHOSTMLP_GER_CALL, T, P) } \
static inline T ghostmlp_##P##dot(int n, const T* x, const T* y) { \
    GHOSTMLP_BOTH(GHOSTMLP_DOT_CALL, T, P) } \
static inline void ghostmlp_##P##axpy(int n, T alpha, const T* x, T* y) { \
    GHOSTMLP_BOTH(GHOSTMLP_AXPY_CALL, T, P) }

GHOSTMLP_ROUTINES(float, s)
GHOSTMLP_ROUTINES(double, d)

#endif
