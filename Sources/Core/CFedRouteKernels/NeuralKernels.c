// Element-wise exp and exact-form GELU, and short-sequence attention, at the CPU's widest vector width.
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

// Scaled dot-product attention of one head of one short sequence (len ≤ FR_SHORT_ATTENTION_MAX_LEN,
// d ≤ FR_SHORT_ATTENTION_MAX_D). K is transposed into a d × LP block (LP = len rounded up to the vector
// width, padding 0), so a query's scores against every key are d vector multiply-adds with no
// horizontal sums. Every sum runs in a fixed order whatever the width — a score over t, the softmax
// total and each output over j sequentially — and nothing is fused, so all widths give the same bits.
#define DEFINE_ATTENTION(SUFFIX, VF, W, ATTR)                                                                    \
    ATTR static void short_attention_##SUFFIX(const float *q, const float *k, const float *v, ptrdiff_t stride,  \
                                              ptrdiff_t len, ptrdiff_t d, float scale, float *out,               \
                                              ptrdiff_t outStride) {                                             \
        enum { LPMAX = FR_SHORT_ATTENTION_MAX_LEN };                                                             \
        ptrdiff_t lp = (len + W - 1) / W * W;                                                                    \
        float kt[FR_SHORT_ATTENTION_MAX_D][LPMAX];                                                               \
        float block[4][LPMAX];                                                                                   \
        for (ptrdiff_t t = 0; t < d; t++) {                                                                      \
            for (ptrdiff_t j = 0; j < len; j++) kt[t][j] = k[j * stride + t];                                    \
            for (ptrdiff_t j = len; j < lp; j++) kt[t][j] = 0;                                                   \
        }                                                                                                        \
        /* Scores of four query rows at a time: four independent chains, each still summed over t in  */         \
        /* order (rows past len read row 0 and are discarded).                                         */        \
        for (ptrdiff_t i0 = 0; i0 < len; i0 += 4) {                                                              \
            const float *q0 = q + i0 * stride;                                                                   \
            const float *q1 = q + (i0 + 1 < len ? i0 + 1 : 0) * stride;                                          \
            const float *q2 = q + (i0 + 2 < len ? i0 + 2 : 0) * stride;                                          \
            const float *q3 = q + (i0 + 3 < len ? i0 + 3 : 0) * stride;                                          \
            for (ptrdiff_t j0 = 0; j0 < lp; j0 += W) {                                                           \
                VF a0 = splat_##SUFFIX(0.0f), a1 = a0, a2 = a0, a3 = a0;                                         \
                for (ptrdiff_t t = 0; t < d; t++) {                                                              \
                    VF kv;                                                                                       \
                    memcpy(&kv, &kt[t][j0], sizeof kv);                                                          \
                    a0 = a0 + q0[t] * kv;                                                                        \
                    a1 = a1 + q1[t] * kv;                                                                        \
                    a2 = a2 + q2[t] * kv;                                                                        \
                    a3 = a3 + q3[t] * kv;                                                                        \
                }                                                                                                \
                a0 = a0 * scale; a1 = a1 * scale; a2 = a2 * scale; a3 = a3 * scale;                              \
                memcpy(&block[0][j0], &a0, sizeof a0);                                                           \
                memcpy(&block[1][j0], &a1, sizeof a1);                                                           \
                memcpy(&block[2][j0], &a2, sizeof a2);                                                           \
                memcpy(&block[3][j0], &a3, sizeof a3);                                                           \
            }                                                                                                    \
            for (ptrdiff_t i = i0; i < i0 + 4 && i < len; i++) {                                                 \
                float *s = block[i - i0];                                                                        \
                float m = s[0];                                                                                  \
                for (ptrdiff_t j = 1; j < len; j++) m = s[j] > m ? s[j] : m;                                     \
                for (ptrdiff_t j0 = 0; j0 < lp; j0 += W) {                                                       \
                    VF e;                                                                                        \
                    memcpy(&e, &s[j0], sizeof e);                                                                \
                    e = exp_##SUFFIX(e - m);                                                                     \
                    memcpy(&s[j0], &e, sizeof e);                                                                \
                }                                                                                                \
                float total = 0;                                                                                 \
                for (ptrdiff_t j = 0; j < len; j++) total += s[j];                                               \
                float inv = 1.0f / total;                                                                        \
                float *oi = out + i * outStride;                                                                 \
                ptrdiff_t c = 0;                                                                                 \
                for (; c + W <= d; c += W) {                                                                     \
                    VF acc = splat_##SUFFIX(0.0f);                                                               \
                    for (ptrdiff_t j = 0; j < len; j++) {                                                        \
                        VF vv;                                                                                   \
                        memcpy(&vv, v + j * stride + c, sizeof vv);                                              \
                        acc = acc + (s[j] * inv) * vv;                                                           \
                    }                                                                                            \
                    memcpy(oi + c, &acc, sizeof acc);                                                            \
                }                                                                                                \
                for (; c < d; c++) {                                                                             \
                    float acc = 0;                                                                               \
                    for (ptrdiff_t j = 0; j < len; j++) acc = acc + (s[j] * inv) * v[j * stride + c];            \
                    oi[c] = acc;                                                                                 \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
    }

DEFINE_ATTENTION(generic, ew4f, 4, )
#ifdef FR_X86
DEFINE_ATTENTION(avx2, ew8f, 8, __attribute__((target("avx2"))))
DEFINE_ATTENTION(avx512, ew16f, 16, __attribute__((target("avx512f"))))
#endif

int fr_short_attention_head_isa(int isa, const float *q, const float *k, const float *v, ptrdiff_t stride, ptrdiff_t len,
                                ptrdiff_t d, float scale, float *out, ptrdiff_t outStride) {
    if (len < 1 || len > FR_SHORT_ATTENTION_MAX_LEN || d < 1 || d > FR_SHORT_ATTENTION_MAX_D) return 0;
#ifdef FR_X86
    if (isa > fr_gemm_isa()) isa = fr_gemm_isa();
    if (isa == 2) { short_attention_avx512(q, k, v, stride, len, d, scale, out, outStride); return 1; }
    if (isa == 1) { short_attention_avx2(q, k, v, stride, len, d, scale, out, outStride); return 1; }
#endif
    (void)isa;
    short_attention_generic(q, k, v, stride, len, d, scale, out, outStride);
    return 1;
}

int fr_short_attention_head(const float *q, const float *k, const float *v, ptrdiff_t stride, ptrdiff_t len, ptrdiff_t d,
                            float scale, float *out, ptrdiff_t outStride) {
    return fr_short_attention_head_isa(fr_gemm_isa(), q, k, v, stride, len, d, scale, out, outStride);
}
