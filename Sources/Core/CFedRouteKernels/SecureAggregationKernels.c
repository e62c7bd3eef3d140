// Secure aggregation's per-parameter work on the client: the fixed-point encoding of a weighted update
// (`FedRouteFederation.FixedPoint.encode`), and whether the CPU has AES instructions (which decides the
// mask generator a client declares).
//
// The encoding is the Swift definition, operation for operation: x = w·v (float widened to double),
// refused unless |x| < limit (NaN and ±∞ included); y = x·scale; t = y without its fraction; f = y − t
// (exact); the word is t + [f ≥ 0.5] − [f ≤ −0.5], i.e. round(y) with halves away from zero. Products,
// the truncation and that subtraction are exact or correctly rounded at any width, so every instantiation
// gives the Swift encoding's words (tested). Rounding branches are data-dependent (an update's remainders
// are random), which made the scalar Swift loop mispredict on half the parameters.
#include "CFedRouteKernels.h"
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#if defined(__x86_64__) || defined(__i386__)
#define FR_X86 1
#endif

#if defined(__linux__) && defined(__aarch64__)
#include <sys/auxv.h>
#endif

int fr_cpu_has_aes(void) {
#ifdef FR_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") ? 1 : 0;
#elif defined(__APPLE__) && defined(__aarch64__)
    return 1;
#elif defined(__linux__) && defined(__aarch64__)
    return (getauxval(AT_HWCAP) & (1UL << 3)) ? 1 : 0; // HWCAP_AES
#else
    return 0;
#endif
}

// One element, the definition (also the generic build and every vector build's tail).
static inline int encode_one(float v, double w, double scale, double limit, uint64_t *out) {
    double x = w * (double)v;
    if (!(__builtin_fabs(x) < limit)) return 0;
    double y = x * scale;
    int64_t t = (int64_t)y;
    double f = y - (double)t;
    *out = (uint64_t)(t + (f >= 0.5) - (f <= -0.5));
    return 1;
}

static ptrdiff_t encode_generic(const float *v, ptrdiff_t n, double w, double scale, double limit, uint64_t *out) {
    for (ptrdiff_t i = 0; i < n; i++)
        if (!encode_one(v[i], w, scale, limit, out + i)) return i;
    return n;
}

// The 32-bit ring: the same word, reduced mod 2^32 (its low half). The caller's limit keeps |round(y)| < 2^31.
static inline int encode_one32(float v, double w, double scale, double limit, uint32_t *out) {
    uint64_t word;
    if (!encode_one(v, w, scale, limit, &word)) return 0;
    *out = (uint32_t)word;
    return 1;
}

static ptrdiff_t encode32_generic(const float *v, ptrdiff_t n, double w, double scale, double limit, uint32_t *out) {
    for (ptrdiff_t i = 0; i < n; i++)
        if (!encode_one32(v[i], w, scale, limit, out + i)) return i;
    return n;
}

#ifdef FR_X86
typedef double fr_d4 __attribute__((vector_size(32)));
typedef float fr_f4 __attribute__((vector_size(16)));
typedef long long fr_i4 __attribute__((vector_size(32)));
typedef unsigned int fr_u4 __attribute__((vector_size(16)));

// Four at a time. An integer-valued double t with |t| < 2^51 converts to int64 exactly as the bits of
// t + 1.5·2^52 minus the bits of 1.5·2^52 (AVX2 has no double → int64 instruction); a block with a value
// outside that range, or one to refuse, goes through the scalar definition `ONE`. `STORE` writes a block's
// four int64 words to `out + i` (as they are, or their low halves for the 32-bit ring).
#define FR_ENCODE_AVX2(NAME, OUT_T, ONE, STORE)                                                                      \
    __attribute__((target("avx2"))) static ptrdiff_t NAME(const float *v, ptrdiff_t n, double w, double scale,         \
                                                          double limit, OUT_T *out) {                                  \
        const fr_d4 wv = {w, w, w, w}, sv = {scale, scale, scale, scale}, lim = {limit, limit, limit, limit};          \
        const fr_d4 half = {0.5, 0.5, 0.5, 0.5}, one = {1, 1, 1, 1}, big = {0x1p51, 0x1p51, 0x1p51, 0x1p51};           \
        const fr_d4 magic = {0x1.8p52, 0x1.8p52, 0x1.8p52, 0x1.8p52};                                                \
        ptrdiff_t i = 0;                                                                                               \
        for (; i + 4 <= n; i += 4) {                                                                                   \
            fr_f4 f4;                                                                                                  \
            memcpy(&f4, v + i, sizeof f4);                                                                             \
            fr_d4 x = wv * __builtin_convertvector(f4, fr_d4);                                                         \
            fr_d4 ax = __builtin_elementwise_abs(x);                                                                   \
            fr_d4 y = x * sv;                                                                                          \
            fr_i4 ok = (fr_i4)(ax < lim) & (fr_i4)(__builtin_elementwise_abs(y) < big);                                \
            if (!(ok[0] & ok[1] & ok[2] & ok[3])) {                                                                    \
                for (ptrdiff_t j = i; j < i + 4; j++)                                                                  \
                    if (!ONE(v[j], w, scale, limit, out + j)) return j;                                                \
                continue;                                                                                              \
            }                                                                                                          \
            fr_d4 t = __builtin_elementwise_trunc(y);                                                                  \
            fr_d4 f = y - t;                                                                                           \
            fr_i4 up = (fr_i4)(f >= half), down = (fr_i4)(f <= -half);                                                 \
            t = t + (fr_d4)((fr_i4)one & up) - (fr_d4)((fr_i4)one & down);                                             \
            fr_i4 words = (fr_i4)(t + magic) - (fr_i4)magic;                                                           \
            STORE(out + i, words);                                                                                     \
        }                                                                                                              \
        for (; i < n; i++)                                                                                             \
            if (!ONE(v[i], w, scale, limit, out + i)) return i;                                                        \
        return n;                                                                                                      \
    }

#define FR_STORE64(p, words) memcpy(p, &words, sizeof words)
#define FR_STORE32(p, words)                                                                                           \
    do {                                                                                                               \
        fr_u4 low = __builtin_convertvector(words, fr_u4);                                                             \
        memcpy(p, &low, sizeof low);                                                                                   \
    } while (0)

FR_ENCODE_AVX2(encode_avx2, uint64_t, encode_one, FR_STORE64)
FR_ENCODE_AVX2(encode32_avx2, uint32_t, encode_one32, FR_STORE32)

#undef FR_ENCODE_AVX2
#undef FR_STORE64
#undef FR_STORE32
#endif

#ifndef FR_X86
// No vector build here: `isa` is always 0 (`fr_gemm_isa`), and these names only complete the dispatch below.
#define encode_avx2 encode_generic
#define encode32_avx2 encode32_generic
#endif

// `NAME_isa` (a given width, lowered to what the CPU runs) and `NAME` (the CPU's width) over `AVX2` and `GENERIC`.
#define FR_ENCODE_ENTRIES(NAME, OUT_T, AVX2, GENERIC)                                                                 \
    ptrdiff_t NAME##_isa(int isa, const float *v, ptrdiff_t n, double w, double scale, double limit, OUT_T *out) {    \
        if (n <= 0) return 0;                                                                                          \
        if (isa > fr_gemm_isa()) isa = fr_gemm_isa();                                                                  \
        return isa >= 1 ? AVX2(v, n, w, scale, limit, out) : GENERIC(v, n, w, scale, limit, out);                     \
    }                                                                                                                  \
    ptrdiff_t NAME(const float *v, ptrdiff_t n, double w, double scale, double limit, OUT_T *out) {                    \
        return NAME##_isa(fr_gemm_isa(), v, n, w, scale, limit, out);                                                  \
    }

FR_ENCODE_ENTRIES(fr_fixed_point_encode, uint64_t, encode_avx2, encode_generic)
FR_ENCODE_ENTRIES(fr_fixed_point_encode32, uint32_t, encode32_avx2, encode32_generic)
