/* float32 row loops of e^x, sigmoid, an exp output and a softmax's middle pass for ghostmlp's kernels. */
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
#endif
