// Element-wise exp and exact-form GELU at the CPU's widest vector width.
//
// Swift compiles `FedRouteNumerics.VectorMath` for the baseline instruction set (SSE on x86-64), so its
// 8-lane `SIMD8<Float>` code runs as two 128-bit halves; on MiniLM that GELU and the softmax exp were
// a fifth of the time. These are the same algorithms, operation for operation (`VectorMath` documents
// them and their accuracy), instantiated for 128-bit generic, 256-bit AVX2 and 512-bit AVX-512F vectors
// and chosen once per process, as the GEMM kernels are. Every lane is computed independently by the
// same IEEE float operations in the same order and nothing is fused into an FMA (contraction is off
// below), so the results are bit-identical to `VectorMath`'s at every width: a vector tail, a scalar
// call and any split over threads give the same bits.
#include "CFedRouteKernels.h"
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#if defined(__x86_64__) || defined(__i386__)
#define FR_X86 1
#endif

#define DEFINE_ELEMENTWISE(SUFFIX, VF, VI, W, ATTR)                                                         \
    typedef float VF __attribute__((vector_size(4 * W)));                                                  \
    typedef int VI __attribute__((vector_size(4 * W)));                                                    \
                                                                                                           \
    ATTR static inline VF splat_##SUFFIX(float v) {                                                        \
        VF r;                                                                                              \
        for (int i = 0; i < W; i++) r[i] = v;                                                              \
        return r;                                                                                          \
    }                                                                                                      \
    /* mask ? a : b, with mask lanes all ones or all zeros */                                              \
    ATTR static inline VF select_##SUFFIX(VI mask, VF a, VF b) {                                           \
        return (VF)(((VI)a & mask) | ((VI)b & ~mask));                                                     \
    }                                                                                                      \
    ATTR static inline VF abs_##SUFFIX(VF x) { return (VF)((VI)x & 0x7fffffff); }                          \
                                                                                                           \
    /* VectorMath.exp: Cephes' reduction and degree-7 polynomial, 2^n in two exact halves. */              \
    ATTR static inline VF exp_##SUFFIX(VF x) {                                                             \
        VI low = x < -87.33f, high = x > 88.72f;                                                           \
        VF clamped = select_##SUFFIX(low, splat_##SUFFIX(-87.33f), x);                                     \
        clamped = select_##SUFFIX(high, splat_##SUFFIX(88.72f), clamped);                                  \
        VF shifted = clamped * 1.44269504088896341f + 12582912.0f;                                         \
        VF n = shifted - 12582912.0f;                                                                      \
        VF r = clamped - n * 0.693359375f;                                                                 \
        r = r + n * 2.12194440e-4f;                                                                        \
        VF r2 = r * r;                                                                                     \
        VF p = splat_##SUFFIX(1.9875691500e-4f);                                                           \
        p = p * r + 1.3981999507e-3f;                                                                      \
        p = p * r + 8.3334519073e-3f;                                                                      \
        p = p * r + 4.1665795894e-2f;                                                                      \
        p = p * r + 1.6666665459e-1f;                                                                      \
        p = p * r + 5.0000001201e-1f;                                                                      \
        p = p * r2 + r + 1.0f;                                                                             \
        VI ni = (VI)shifted - 0x4B400000;                                                                  \
        VI half = ni >> 1;                                                                                 \
        VF scale1 = (VF)((half + 127) << 23);                                                              \
        VF scale2 = (VF)((ni - half + 127) << 23);                                                         \
        VF result = p * scale1 * scale2;                                                                   \
        result = select_##SUFFIX(low, splat_##SUFFIX(0.0f), result);                                       \
        return select_##SUFFIX(high, splat_##SUFFIX(__builtin_inff()), result);                            \
    }                                                                                                      \
                                                                                                           \
    /* VectorMath.normalCDF → gelu: Φ(x) by Abramowitz & Stegun 7.1.26, times x. */                        \
    ATTR static inline VF gelu_##SUFFIX(VF x) {                                                            \
        VF u = abs_##SUFFIX(x) * 0.70710678118654752f;                                                     \
        VF e = exp_##SUFFIX(-(u * u));                                                                     \
        VF t = 1.0f / (1.0f + 0.3275911f * u);                                                             \
        VF p = splat_##SUFFIX(1.061405429f);                                                               \
        p = p * t - 1.453152027f;                                                                          \
        p = p * t + 1.421413741f;                                                                          \
        p = p * t - 0.284496736f;                                                                          \
        p = p * t + 0.254829592f;                                                                          \
        VF erfAbs = 1.0f - (p * t) * e;                                                                    \
        VF cdf = select_##SUFFIX(x < 0.0f, 0.5f * (1.0f - erfAbs), 0.5f * (1.0f + erfAbs));                \
        return x * cdf;                                                                                    \
    }                                                                                                      \
                                                                                                           \
    ATTR static void gelu_array_##SUFFIX(const float *in, float *out, ptrdiff_t n) {                       \
        ptrdiff_t i = 0;                                                                                   \
        for (; i + W <= n; i += W) {                                                                       \
            VF x;                                                                                          \
            memcpy(&x, in + i, sizeof x);                                                                  \
            x = gelu_##SUFFIX(x);                                                                          \
            memcpy(out + i, &x, sizeof x);                                                                 \
        }                                                                                                  \
        if (i < n) {                                                                                       \
            VF x = splat_##SUFFIX(0.0f);                                                                   \
            memcpy(&x, in + i, sizeof(float) * (size_t)(n - i));                                           \
            x = gelu_##SUFFIX(x);                                                                          \
            memcpy(out + i, &x, sizeof(float) * (size_t)(n - i));                                          \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    ATTR static void exp_affine_array_##SUFFIX(float *x, ptrdiff_t n, float scale, float shift) {          \
        ptrdiff_t i = 0;                                                                                   \
        for (; i + W <= n; i += W) {                                                                       \
            VF v;                                                                                          \
            memcpy(&v, x + i, sizeof v);                                                                   \
            v = exp_##SUFFIX(v * scale - shift);                                                           \
            memcpy(x + i, &v, sizeof v);                                                                   \
        }                                                                                                  \
        if (i < n) {                                                                                       \
            VF v = splat_##SUFFIX(0.0f);                                                                   \
            memcpy(&v, x + i, sizeof(float) * (size_t)(n - i));                                            \
            v = exp_##SUFFIX(v * scale - shift);                                                           \
            memcpy(x + i, &v, sizeof(float) * (size_t)(n - i));                                            \
        }                                                                                                  \
    }

DEFINE_ELEMENTWISE(generic, ew4f, ew4i, 4, )
#ifdef FR_X86
DEFINE_ELEMENTWISE(avx2, ew8f, ew8i, 8, __attribute__((target("avx2"))))
DEFINE_ELEMENTWISE(avx512, ew16f, ew16i, 16, __attribute__((target("avx512f"))))
#endif

void fr_gelu_isa(int isa, const float *in, float *out, ptrdiff_t n) {
    if (n <= 0) return;
#ifdef FR_X86
    if (isa > fr_gemm_isa()) isa = fr_gemm_isa();
    if (isa == 2) { gelu_array_avx512(in, out, n); return; }
    if (isa == 1) { gelu_array_avx2(in, out, n); return; }
#endif
    (void)isa;
    gelu_array_generic(in, out, n);
}

void fr_exp_affine_isa(int isa, float *x, ptrdiff_t n, float scale, float shift) {
    if (n <= 0) return;
#ifdef FR_X86
    if (isa > fr_gemm_isa()) isa = fr_gemm_isa();
    if (isa == 2) { exp_affine_array_avx512(x, n, scale, shift); return; }
    if (isa == 1) { exp_affine_array_avx2(x, n, scale, shift); return; }
#endif
    (void)isa;
    exp_affine_array_generic(x, n, scale, shift);
}

void fr_gelu(const float *in, float *out, ptrdiff_t n) { fr_gelu_isa(fr_gemm_isa(), in, out, n); }

void fr_exp_affine(float *x, ptrdiff_t n, float scale, float shift) { fr_exp_affine_isa(fr_gemm_isa(), x, n, scale, shift); }
