/* Row loops of e^x, sigmoid, tanh, an exp output and a softmax's middle pass (float32, float64) for ghostmlp's kernels. */
#ifndef GHOSTMLP_ACTIVATIONS_H
#define GHOSTMLP_ACTIVATIONS_H
#include <math.h>
#include <stddef.h>
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
GHOSTMLP_CLONES static void ghostmlp_sigmoid_rowf(float *row, ptrdiff_t n, float bias) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float z = row[i] + bias;
        float e = ghostmlp_expf(-fabsf(z));
        float s = 1.0f / (1.0f + e);
        row[i] = z >= 0.0f ? s : e * s;
    }
}

/* row[i] := tanh(row[i] + bias), after Cephes' tanhf: for |z| < 0.625 its odd polynomial
   z + z^3 P(z^2), beyond 1 - 2 / (e^2|z| + 1) with z's sign (e^2|z| clamped at e^88 by
   ghostmlp_expf: tanh is 1 in float32 long before). libm's tanhf is a scalar call. */
static inline float ghostmlp_tanh_farf(float z) {
    return copysignf(1.0f - 2.0f / (ghostmlp_expf(2.0f * fabsf(z)) + 1.0f), z);
}

GHOSTMLP_CLONES static void ghostmlp_tanh_rowf(float *row, ptrdiff_t n, float bias) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float z = row[i] + bias, s = z * z;
        float near = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f)
                       * s + 1.33314422036e-1f) * s - 3.33332819422e-1f) * s * z + z;
        row[i] = fabsf(z) < 0.625f ? near : ghostmlp_tanh_farf(z);
    }
}

/* row[i] := e^(row[i] + bias), clamped as ghostmlp_expf: an exp output never overflows to inf. */
GHOSTMLP_CLONES static void ghostmlp_exp_bias_rowf(float *row, ptrdiff_t n, float bias) {
    for (ptrdiff_t i = 0; i < n; i++)
        row[i] = ghostmlp_expf(row[i] + bias);
}

/* row[i] := e^(row[i] - shift[i]); total[i] += row[i]: a softmax's middle pass. */
GHOSTMLP_CLONES static void ghostmlp_exp_rowf(float *row, const float *shift, float *total,
                                              ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        row[i] = ghostmlp_expf(row[i] - shift[i]);
        total[i] += row[i];
    }
}

/* e^x in float64 as 2^n e^r, n = round(x log2 e), r = x - n ln 2 in two parts, e^r from
   Cephes' exp rational form 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)): within 1 ulp of e^x on
   [-708.3, 709.7] (tests/test_kernels.py checks it against numpy). Below, 0 (e^x would
   be subnormal, under 2.2e-308); above, e^709.7. */
static inline double ghostmlp_exp(double x) {
    double low = x < -708.3 ? 0.0 : 1.0;
    x = x < -708.3 ? -708.3 : (x > 709.7 ? 709.7 : x);
    /* t = 1.5 2^52 + n: its low mantissa bits are n, which becomes the exponent of 2^n
       by integer arithmetic only (a bit cast, an add, a shift: all of them vectorise). */
    double t = x * 1.4426950408889634 + 6755399441055744.0;
    double n = t - 6755399441055744.0;
    double r = (x - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6;
    double rr = r * r;
    double p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                    + 9.99999999999999999910e-1);
    double q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
    double e = 1.0 + 2.0 * p / (q - p);
    int64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (int64_t)((uint64_t)(bits + 1023) << 52);
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale * low;
}

/* row[i] := 1 / (1 + e^-(row[i] + bias)) in float64, from e = e^-|z|, which never overflows. */
GHOSTMLP_CLONES static void ghostmlp_sigmoid_row(double *row, ptrdiff_t n, double bias) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double z = row[i] + bias;
        double e = ghostmlp_exp(-fabs(z));
        double s = 1.0 / (1.0 + e);
        row[i] = z >= 0.0 ? s : e * s;
    }
}

/* row[i] := tanh(row[i] + bias) in float64, after Cephes' tanh: for |z| < 0.625
   z + z^3 P(z^2) / Q(z^2), beyond 1 - 2 / (e^2|z| + 1) with z's sign (e^2|z| clamped at
   e^709.7 by ghostmlp_exp: tanh is 1 in float64 long before). */
static inline double ghostmlp_tanh_far(double z) {
    return copysign(1.0 - 2.0 / (ghostmlp_exp(2.0 * fabs(z)) + 1.0), z);
}

GHOSTMLP_CLONES static void ghostmlp_tanh_row(double *row, ptrdiff_t n, double bias) {
    for (ptrdiff_t i = 0; i < n; i++) {
        double z = row[i] + bias, s = z * z;
        double p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s
                   - 1.61468768441708447952e3;
        double q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s
                   + 4.84406305325125486048e3;
        row[i] = fabs(z) < 0.625 ? z + z * s * p / q : ghostmlp_tanh_far(z);
    }
}

/* row[i] := e^(row[i] - shift[i]); total[i] += row[i]: a float64 softmax's middle pass. */
GHOSTMLP_CLONES static void ghostmlp_exp_row(double *row, const double *shift, double *total,
                                             ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        row[i] = ghostmlp_exp(row[i] - shift[i]);
        total[i] += row[i];
    }
}
#endif
