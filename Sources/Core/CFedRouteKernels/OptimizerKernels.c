// AdamW's fused step (`FedRouteNumerics.AdamW.referenceStep`) at the CPU's widest useful vector width.
//
// The Swift step runs as two 128-bit halves per 8-lane vector (Swift builds for baseline x86-64), and its
// square root and division are what bound it: on MLP training AdamW was the largest item after the GEMM.
// This is the same step, operation for operation and block for block: 8-element blocks, the "moving"
// flag per block (a block whose moments are still zero and whose gradient is zero takes the decoupled
// decay alone), the same products, sums, square root and division in the same order, nothing fused into
// an FMA (contraction is off below), and the tail (under 8 elements) element by element with the same
// expression. Square root and division are correctly rounded in IEEE arithmetic at any width, so every
// instantiation gives the Swift step's bits (tested).
#include "CFedRouteKernels.h"
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#if defined(__x86_64__) || defined(__i386__)
#define FR_X86 1
#endif

typedef float fr_adamw_v8 __attribute__((vector_size(32)));
typedef unsigned fr_adamw_u8 __attribute__((vector_size(32)));
#define FR_ADAMW_SPLAT(x) ((fr_adamw_v8){(x), (x), (x), (x), (x), (x), (x), (x)})

#define DEFINE_ADAMW(SUFFIX, ATTR)                                                                             \
    ATTR static void adamw_step_##SUFFIX(ptrdiff_t count, float *p, float *m, float *v, const float *g,        \
                                         _Bool *moving, float beta1, float beta2, float inverseBias2,          \
                                         float epsilon, float stepSize, float decay) {                         \
        const float oneMinusBeta1 = 1 - beta1, oneMinusBeta2 = 1 - beta2;                                      \
        const fr_adamw_v8 b1 = FR_ADAMW_SPLAT(beta1), b2 = FR_ADAMW_SPLAT(beta2);                              \
        const fr_adamw_v8 c1 = FR_ADAMW_SPLAT(oneMinusBeta1), c2 = FR_ADAMW_SPLAT(oneMinusBeta2);              \
        const fr_adamw_v8 ib2 = FR_ADAMW_SPLAT(inverseBias2), eps = FR_ADAMW_SPLAT(epsilon);                   \
        const fr_adamw_v8 step = FR_ADAMW_SPLAT(stepSize), dec = FR_ADAMW_SPLAT(decay);                        \
        ptrdiff_t i = 0;                                                                                       \
        for (; i + 8 <= count; i += 8) {                                                                       \
            fr_adamw_v8 g0, p0, m0, v0;                                                                        \
            memcpy(&g0, g + i, sizeof g0);                                                                     \
            if (!moving[i / 8]) {                                                                              \
                fr_adamw_u8 bits = (fr_adamw_u8)g0 & 0x7fffffffu;                                              \
                unsigned any = 0;                                                                              \
                for (int l = 0; l < 8; l++) any |= bits[l];                                                    \
                if (any == 0) {                                                                                \
                    if (decay != 0) {                                                                          \
                        memcpy(&p0, p + i, sizeof p0);                                                         \
                        p0 = p0 - dec * p0;                                                                    \
                        memcpy(p + i, &p0, sizeof p0);                                                         \
                    }                                                                                          \
                    continue;                                                                                  \
                }                                                                                              \
                moving[i / 8] = 1;                                                                             \
            }                                                                                                  \
            memcpy(&p0, p + i, sizeof p0);                                                                     \
            memcpy(&m0, m + i, sizeof m0);                                                                     \
            memcpy(&v0, v + i, sizeof v0);                                                                     \
            fr_adamw_v8 m1 = b1 * m0 + c1 * g0;                                                                \
            fr_adamw_v8 v1 = b2 * v0 + c2 * g0 * g0;                                                           \
            fr_adamw_v8 denom = __builtin_elementwise_sqrt(v1 * ib2) + eps;                                    \
            fr_adamw_v8 p1 = p0 - dec * p0;                                                                    \
            p1 = p1 - step * m1 / denom;                                                                       \
            memcpy(p + i, &p1, sizeof p1);                                                                     \
            memcpy(m + i, &m1, sizeof m1);                                                                     \
            memcpy(v + i, &v1, sizeof v1);                                                                     \
        }                                                                                                      \
        if (i < count) {                                                                                       \
            moving[i / 8] = 1;                                                                                 \
            for (; i < count; i++) {                                                                           \
                float m1 = beta1 * m[i] + oneMinusBeta1 * g[i];                                                \
                float v1 = beta2 * v[i] + oneMinusBeta2 * g[i] * g[i];                                         \
                float denom = __builtin_sqrtf(v1 * inverseBias2) + epsilon;                                    \
                float p1 = p[i] - decay * p[i];                                                                \
                p[i] = p1 - stepSize * m1 / denom;                                                             \
                m[i] = m1;                                                                                     \
                v[i] = v1;                                                                                     \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_ADAMW(generic, )
#ifdef FR_X86
DEFINE_ADAMW(avx2, __attribute__((target("avx2"))))
#endif

void fr_adamw_step_isa(int isa, ptrdiff_t count, float *p, float *m, float *v, const float *g, _Bool *moving, float beta1,
                       float beta2, float inverseBias2, float epsilon, float stepSize, float decay) {
    if (count <= 0) return;
#ifdef FR_X86
    if (isa > fr_gemm_isa()) isa = fr_gemm_isa();
    if (isa >= 1) {
        adamw_step_avx2(count, p, m, v, g, moving, beta1, beta2, inverseBias2, epsilon, stepSize, decay);
        return;
    }
#endif
    (void)isa;
    adamw_step_generic(count, p, m, v, g, moving, beta1, beta2, inverseBias2, epsilon, stepSize, decay);
}

void fr_adamw_step(ptrdiff_t count, float *p, float *m, float *v, const float *g, _Bool *moving, float beta1, float beta2,
                   float inverseBias2, float epsilon, float stepSize, float decay) {
    fr_adamw_step_isa(fr_gemm_isa(), count, p, m, v, g, moving, beta1, beta2, inverseBias2, epsilon, stepSize, decay);
}
