// Register-blocked single-precision GEMM (the portable fallback when no BLAS library is loaded).
//
// Structure after Goto/BLIS: C is walked in NC-column by KC-deep blocks; a KC×NC block of op(B) is
// packed into NR-wide column panels and an MC×KC block of op(A) into MR-tall row panels (zero-padded),
// and an MR×NR micro-kernel keeps its 6 × 2 vector accumulators in registers for the whole KC loop.
// KC 192, MC 120, NC 768 were the best of six settings tried on Zen 4 (2 threads: 127 / 178 / 171 GFLOP/s
// at 128×512×1024 / 512³ / 1024³); a KC×NC block of B (576 kB) stays in the 1 MB L2.
//
// Swift cannot compile one function for AVX2 or AVX-512 and choose at run time; clang can, with
// `__attribute__((target))`. The same kernel source is instantiated three times (128-bit generic
// vectors, 256-bit AVX2+FMA, 512-bit AVX-512F) and the widest the CPU supports is chosen once, so
// the package still builds and runs on any CPU (and on ARM, where the generic one maps to NEON).
#include "CFedRouteKernels.h"
#include <string.h>
#include <unistd.h>

#define MR 6
#ifndef KC
#define KC 192
#endif
#ifndef MC
#define MC 120
#endif
#ifndef NC
#define NC 768
#endif
#define MAX_NR 32
// A packed product's row blocks (`fr_sgemm_rows_packed`) on a CPU with a second-level cache of 1 MB or more: twice
// MC, so that B (or a column block of it) is streamed from the cache below half as often. 240 was 3–4 % faster than
// 120 and 480 at MiniLM's products of 960 and 16,384 rows on Zen 4 (`fedroute-bench --only linear-shapes`, before the
// column blocks below); the block of a transposed A it packs (240 × KC, 184 kB) still fits the second-level cache.
// It is also the most rows the workspace holds.
#ifndef PACKED_MC
#define PACKED_MC 240
#endif
// The row blocks where the second-level cache is smaller (Zen 3's 512 kB): a block of C over a column block
// (240 × 384 floats, 368 kB) and the rows of A it reads no longer fit beside the column block of B there. 120 rows
// ran MiniLM's four products of 960 rows 5.6 % and 6.9 % faster than 240 on one core of an EPYC Zen 3 (median
// ratios of two runs of 400 layers, both settings alternating in one process; 120 faster in 357 and 348 of them).
#ifndef PACKED_MC_SMALL_L2
#define PACKED_MC_SMALL_L2 120
#endif
// A packed product with A not transposed reads A where it lies (the direct micro-kernel) instead of packing
// blocks of it, and walks C in column blocks of this many columns, each over all its rows. Packing copies each
// block of A once per KC slice, and a column block of 384 reuses it over only 12 panels of B; reading A in place
// instead, the products of MiniLM's 960 rows ran 7–11 % over OpenBLAS on Zen 4, against 1–5 % with A packed, and
// at 16,384 rows the widest (1,536 columns) went from 0.93 to 1.01 (`fedroute-bench --only linear-shapes`). A
// column block of B (k × 384, 576 kB at k = 384) stays in the second-level cache while the rows go by.
#ifndef PACKED_NB
#define PACKED_NB 384
#endif

#if defined(__x86_64__) || defined(__i386__)
#define FR_X86 1
#endif

// Packing: op(A) rows [i0, i0+mc) × depth [p0, p0+kc) into MR-row panels, row panel-major, each
// panel stored depth-major (MR floats per depth step).
static void pack_a(int transA, const float *a, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t mc, ptrdiff_t p0, ptrdiff_t kc, float *dst) {
    for (ptrdiff_t ip = 0; ip < mc; ip += MR) {
        ptrdiff_t rows = mc - ip < MR ? mc - ip : MR;
        for (ptrdiff_t p = 0; p < kc; p++) {
            for (ptrdiff_t r = 0; r < rows; r++) {
                ptrdiff_t i = i0 + ip + r, q = p0 + p;
                dst[r] = transA ? a[q * lda + i] : a[i * lda + q];
            }
            for (ptrdiff_t r = rows; r < MR; r++) dst[r] = 0;
            dst += MR;
        }
    }
}

// op(B) depth [p0, p0+kc) × columns [j0, j0+nc) into nr-column panels, each stored depth-major.
static void pack_b(int transB, const float *b, ptrdiff_t ldb, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc, int nr, float *dst) {
    for (ptrdiff_t jp = 0; jp < nc; jp += nr) {
        ptrdiff_t cols = nc - jp < nr ? nc - jp : nr;
        for (ptrdiff_t p = 0; p < kc; p++) {
            ptrdiff_t q = p0 + p;
            if (!transB && cols == nr) {
                memcpy(dst, b + q * ldb + j0 + jp, sizeof(float) * (size_t)nr);
            } else {
                for (ptrdiff_t c = 0; c < cols; c++) {
                    ptrdiff_t j = j0 + jp + c;
                    dst[c] = transB ? b[j * ldb + q] : b[q * ldb + j];
                }
                for (ptrdiff_t c = cols; c < nr; c++) dst[c] = 0;
            }
            dst += nr;
        }
    }
}

typedef float v4f __attribute__((vector_size(16), aligned(4)));
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef float v16f __attribute__((vector_size(64), aligned(4)));

// The micro-kernel: acc(MR × 2·W) = Σ_p A[p][0..MR) ⊗ B[p][0..2W), then C += alpha·acc on the
// rows × cols that exist. Element (r, p) of the A block is `pa[r·RS + p·PS]`: a packed panel (RS 1, PS MR), or
// A where it lies (RS lda, PS 1), whose rows past `rows` read the last row again (their sums are discarded).
// The same loads, products and order of sums either way, so both give the same bits.
#define DEFINE_KERNEL(NAME, VT, W, ATTR, RS, PS)                                                           \
    ATTR static void NAME(ptrdiff_t kc, const float *restrict pa, ptrdiff_t lda, const float *restrict pb, \
                          float alpha, float *restrict c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols,    \
                          int store) {                                                                     \
        (void)lda;                                                                                         \
        const float *a0 = pa, *a1 = pa + (rows > 1 ? 1 : 0) * (RS), *a2 = pa + (rows > 2 ? 2 : rows - 1) * (RS); \
        const float *a3 = pa + (rows > 3 ? 3 : rows - 1) * (RS), *a4 = pa + (rows > 4 ? 4 : rows - 1) * (RS);  \
        const float *a5 = pa + (rows > 5 ? 5 : rows - 1) * (RS);                                           \
        VT c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};                               \
        VT c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};                               \
        for (ptrdiff_t p = 0; p < kc; p++) {                                                               \
            VT b0, b1;                                                                                     \
            memcpy(&b0, pb, sizeof(VT));                                                                   \
            memcpy(&b1, pb + W, sizeof(VT));                                                               \
            float x0 = a0[p * (PS)], x1 = a1[p * (PS)], x2 = a2[p * (PS)];                                 \
            float x3 = a3[p * (PS)], x4 = a4[p * (PS)], x5 = a5[p * (PS)];                                 \
            c00 += x0 * b0; c01 += x0 * b1;                                                                \
            c10 += x1 * b0; c11 += x1 * b1;                                                                \
            c20 += x2 * b0; c21 += x2 * b1;                                                                \
            c30 += x3 * b0; c31 += x3 * b1;                                                                \
            c40 += x4 * b0; c41 += x4 * b1;                                                                \
            c50 += x5 * b0; c51 += x5 * b1;                                                                \
            pb += 2 * W;                                                                                   \
        }                                                                                                  \
        VT acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};          \
        if (rows == MR && cols == 2 * W) {                                                                 \
            for (int r = 0; r < MR; r++) {                                                                 \
                VT x0 = {0}, x1 = {0};                                                                     \
                if (!store) {                                                                              \
                    memcpy(&x0, c + r * ldc, sizeof(VT));                                                  \
                    memcpy(&x1, c + r * ldc + W, sizeof(VT));                                              \
                    x0 += acc[r][0] * alpha;                                                               \
                    x1 += acc[r][1] * alpha;                                                               \
                } else {                                                                                   \
                    x0 = acc[r][0] * alpha;                                                                \
                    x1 = acc[r][1] * alpha;                                                                \
                }                                                                                          \
                memcpy(c + r * ldc, &x0, sizeof(VT));                                                      \
                memcpy(c + r * ldc + W, &x1, sizeof(VT));                                                  \
            }                                                                                              \
        } else {                                                                                           \
            float tile[MR][2 * W];                                                                         \
            memcpy(tile, acc, sizeof(tile));                                                               \
            for (ptrdiff_t r = 0; r < rows; r++)                                                           \
                for (ptrdiff_t j = 0; j < cols; j++)                                                       \
                    c[r * ldc + j] = store ? alpha * tile[r][j] : c[r * ldc + j] + alpha * tile[r][j];     \
        }                                                                                                  \
    }

// Each width twice: A packed into panels, and A read where it lies (row-major, not transposed).
DEFINE_KERNEL(kernel_generic, v4f, 4, , 1, MR)
DEFINE_KERNEL(kernel_generic_direct, v4f, 4, , lda, 1)
#ifdef FR_X86
DEFINE_KERNEL(kernel_avx2, v8f, 8, __attribute__((target("avx2,fma"))), 1, MR)
DEFINE_KERNEL(kernel_avx2_direct, v8f, 8, __attribute__((target("avx2,fma"))), lda, 1)
DEFINE_KERNEL(kernel_avx512, v16f, 16, __attribute__((target("avx512f"))), 1, MR)
DEFINE_KERNEL(kernel_avx512_direct, v16f, 16, __attribute__((target("avx512f"))), lda, 1)
#endif

typedef void (*kernel_fn)(ptrdiff_t, const float *, ptrdiff_t, const float *, float, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);

// Few-row products (a router asked about one query: m = 1): op(B) is read once, straight from where it
// lies, instead of being packed into panels first. Packing copies all of B (the 2 MB first layer of a
// 1024-wide MLP) to read it once more, which for one row is two of the three passes over memory.
// Rows go in pairs with 4·W columns of accumulators each, a last single row alone (below); each element of C
// is its own sum over p in order from p = 0 (an FMA where the target has it), added to C times alpha at
// the end, so a row's result does not depend on the other rows of the call or on the column blocking.
// A zero of op(A) is skipped with its row of B: adding 0·b leaves a sum as it was (for finite b), so a
// hashed TF-IDF query (about 12 % of its 1,024 features non-zero) reads a tenth of the first layer.
// A single row (a router's one query) instead streams each such row of B whole, its sums in an array in
// the first-level cache, and prefetches the next non-zero's row when it is not the adjacent one (the
// hardware streams adjacent rows itself; prefetching them too cost up to a third with the layers in cache).
// In a gateway the layers are mostly out of cache between requests. A 1024 × 512 and a 512 × 512 layer on
// the Zen 3, the two kernels alternating, medians of 400 (stop 52): with the last-level cache flushed, a dense
// query took 184–197 µs streamed against 242–274 µs in 8 strided passes of 8·W columns, and one with 12 % of
// the first layer's inputs non-zero 85–95 against 123–132 µs; in cache, 58 against 69–72 µs and 29–40
// against 31–42 µs. The same bits: the same sums in the same order.
#define FEW_ROW_CHUNK 1024
#define DEFINE_FEW_ROWS(NAME, VT, W, ATTR)                                                                 \
    ATTR static void NAME##_pair(int transA, ptrdiff_t cols, ptrdiff_t k, float alpha,                  \
                                 const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,             \
                                 float *c, ptrdiff_t ldc) {                                                 \
        /* Two rows, cols ≤ 4·W: the accumulators stay in registers. */                                    \
        enum { V = 4 };                                                                                    \
        VT acc[2][V];                                                                                      \
        memset(acc, 0, sizeof(acc));                                                                       \
        ptrdiff_t vectors = cols / W;                                                                      \
        if (vectors == V) {                                                                                \
            for (ptrdiff_t p = 0; p < k; p++) {                                                            \
                float a0 = transA ? a[p * lda] : a[p], a1 = transA ? a[p * lda + 1] : a[lda + p];         \
                if (a0 == 0 && a1 == 0) continue;                                                          \
                const float *bp = b + p * ldb;                                                             \
                for (int v = 0; v < V; v++) {                                                              \
                    VT x;                                                                                  \
                    memcpy(&x, bp + v * W, sizeof(VT));                                                    \
                    acc[0][v] += a0 * x;                                                                   \
                    acc[1][v] += a1 * x;                                                                   \
                }                                                                                          \
            }                                                                                              \
        } else {                                                                                           \
            /* A narrower last block: whole vectors, then single columns, the same sums. */                \
            float tail[2][V * W];                                                                          \
            memset(tail, 0, sizeof(tail));                                                                 \
            for (ptrdiff_t r = 0; r < 2; r++) {                                                            \
                for (ptrdiff_t p = 0; p < k; p++) {                                                        \
                    float ar = transA ? a[p * lda + r] : a[r * lda + p];                                   \
                    if (ar == 0) continue;                                                                 \
                    const float *bp = b + p * ldb;                                                         \
                    for (ptrdiff_t v = 0; v < vectors; v++) {                                              \
                        VT x;                                                                              \
                        memcpy(&x, bp + v * W, sizeof(VT));                                                \
                        acc[r][v] += ar * x;                                                               \
                    }                                                                                      \
                    for (ptrdiff_t j = vectors * W; j < cols; j++) tail[r][j] += ar * bp[j];               \
                }                                                                                          \
            }                                                                                              \
            for (ptrdiff_t r = 0; r < 2; r++) {                                                            \
                memcpy(tail[r], acc[r], sizeof(VT) * (size_t)vectors);                                     \
                for (ptrdiff_t j = 0; j < cols; j++) c[r * ldc + j] += alpha * tail[r][j];                 \
            }                                                                                              \
            return;                                                                                        \
        }                                                                                                  \
        for (ptrdiff_t r = 0; r < 2; r++) {                                                                \
            for (ptrdiff_t v = 0; v < V; v++) {                                                            \
                VT x;                                                                                      \
                memcpy(&x, c + r * ldc + v * W, sizeof(VT));                                               \
                x += acc[r][v] * alpha;                                                                    \
                memcpy(c + r * ldc + v * W, &x, sizeof(VT));                                               \
            }                                                                                              \
        }                                                                                                  \
    }                                                                                                      \
    /* A single row: each row of B under a non-zero of A is read once, whole (up to FEW_ROW_CHUNK columns), the  \
       sums kept in the first-level cache, and the next such row, when not adjacent, prefetched meanwhile. */   \
    ATTR static void NAME##_row(int transA, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda, \
                                const float *b, ptrdiff_t ldb, float *c) {                                 \
        VT acc[FEW_ROW_CHUNK / W];                                                                         \
        float tail[W];                                                                                     \
        for (ptrdiff_t j0 = 0; j0 < n; j0 += FEW_ROW_CHUNK) {                                              \
            ptrdiff_t cols = n - j0 < FEW_ROW_CHUNK ? n - j0 : FEW_ROW_CHUNK, vectors = cols / W;          \
            memset(acc, 0, sizeof(VT) * (size_t)vectors);                                                  \
            memset(tail, 0, sizeof(tail));                                                                 \
            ptrdiff_t p = 0;                                                                               \
            while (p < k && (transA ? a[p * lda] : a[p]) == 0) p++;                                        \
            while (p < k) {                                                                                \
                float ap = transA ? a[p * lda] : a[p];                                                     \
                ptrdiff_t q = p + 1;                                                                       \
                while (q < k && (transA ? a[q * lda] : a[q]) == 0) q++;                                    \
                if (q < k && q > p + 1) {                                                                  \
                    const char *next = (const char *)(b + q * ldb + j0);                                   \
                    for (ptrdiff_t o = 0; o < cols * (ptrdiff_t)sizeof(float); o += 64) __builtin_prefetch(next + o, 0, 1); \
                }                                                                                          \
                const float *bp = b + p * ldb + j0;                                                        \
                for (ptrdiff_t v = 0; v < vectors; v++) {                                                  \
                    VT x;                                                                                  \
                    memcpy(&x, bp + v * W, sizeof(VT));                                                    \
                    acc[v] += ap * x;                                                                      \
                }                                                                                          \
                for (ptrdiff_t j = vectors * W; j < cols; j++) tail[j - vectors * W] += ap * bp[j];        \
                p = q;                                                                                     \
            }                                                                                              \
            for (ptrdiff_t v = 0; v < vectors; v++) {                                                      \
                VT x;                                                                                      \
                memcpy(&x, c + j0 + v * W, sizeof(VT));                                                    \
                x += acc[v] * alpha;                                                                       \
                memcpy(c + j0 + v * W, &x, sizeof(VT));                                                    \
            }                                                                                              \
            for (ptrdiff_t j = vectors * W; j < cols; j++) c[j0 + j] += alpha * tail[j - vectors * W];     \
        }                                                                                                  \
    }                                                                                                      \
    ATTR static void NAME(int transA, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,  \
                          ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {          \
        for (ptrdiff_t i = 0; i < m;) {                                                                    \
            const float *ai = transA ? a + i : a + i * lda;                                                \
            if (m - i == 1) {                                                                              \
                NAME##_row(transA, n, k, alpha, ai, lda, b, ldb, c + i * ldc);                             \
                return;                                                                                    \
            }                                                                                              \
            for (ptrdiff_t j = 0; j < n; j += 4 * W)                                                       \
                NAME##_pair(transA, n - j < 4 * W ? n - j : 4 * W, k, alpha, ai, lda, b + j, ldb,          \
                            c + i * ldc + j, ldc);                                                         \
            i += 2;                                                                                        \
        }                                                                                                  \
    }

DEFINE_FEW_ROWS(few_rows_generic, v4f, 4, )
#ifdef FR_X86
DEFINE_FEW_ROWS(few_rows_avx2, v8f, 8, __attribute__((target("avx2,fma"))))
DEFINE_FEW_ROWS(few_rows_avx512, v16f, 16, __attribute__((target("avx512f"))))
#endif

// Few rows against a transposed B (a query's similarity to every reference row, kNN): each element of C is
// the dot product of a row of A with a row of B, both contiguous, so B is again read once in place. Up to four
// rows of A share each load of B. A row's sum runs over p in two vector accumulators and a scalar tail, in an
// order that depends only on k, so it is the same bits whatever the other rows of the call.
#define DEFINE_FEW_DOTS(NAME, VT, W, ATTR)                                                                 \
    ATTR static void NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda, \
                          const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {                        \
        for (ptrdiff_t i0 = 0; i0 < m; i0 += 4) {                                                          \
            ptrdiff_t rows = m - i0 < 4 ? m - i0 : 4;                                                      \
            for (ptrdiff_t j = 0; j < n; j++) {                                                            \
                const float *bj = b + j * ldb;                                                             \
                VT acc[4][2];                                                                              \
                float tail[4] = {0, 0, 0, 0};                                                              \
                memset(acc, 0, sizeof(acc));                                                               \
                ptrdiff_t p = 0;                                                                           \
                for (; p + 2 * W <= k; p += 2 * W) {                                                       \
                    VT x0, x1;                                                                             \
                    memcpy(&x0, bj + p, sizeof(VT));                                                       \
                    memcpy(&x1, bj + p + W, sizeof(VT));                                                   \
                    for (ptrdiff_t r = 0; r < rows; r++) {                                                 \
                        VT y0, y1;                                                                         \
                        memcpy(&y0, a + (i0 + r) * lda + p, sizeof(VT));                                   \
                        memcpy(&y1, a + (i0 + r) * lda + p + W, sizeof(VT));                               \
                        acc[r][0] += y0 * x0;                                                              \
                        acc[r][1] += y1 * x1;                                                              \
                    }                                                                                      \
                }                                                                                          \
                for (; p < k; p++)                                                                         \
                    for (ptrdiff_t r = 0; r < rows; r++) tail[r] += a[(i0 + r) * lda + p] * bj[p];         \
                for (ptrdiff_t r = 0; r < rows; r++) {                                                     \
                    VT v = acc[r][0] + acc[r][1];                                                          \
                    float lanes[W], sum = 0;                                                               \
                    memcpy(lanes, &v, sizeof(VT));                                                         \
                    for (int l = 0; l < W; l++) sum += lanes[l];                                           \
                    c[(i0 + r) * ldc + j] += alpha * (sum + tail[r]);                                      \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

DEFINE_FEW_DOTS(few_dots_generic, v4f, 4, )
#ifdef FR_X86
DEFINE_FEW_DOTS(few_dots_avx2, v8f, 8, __attribute__((target("avx2,fma"))))
DEFINE_FEW_DOTS(few_dots_avx512, v16f, 16, __attribute__((target("avx512f"))))
#endif

void fr_sgemm_few_rows_isa(int isa, int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                           const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0 || k <= 0 || alpha == 0) return;
    int level = fr_gemm_isa();
    if (isa > level) isa = level;
    if (transB) {
        // The dot form reads rows of A; a transposed A is not taken here (the caller packs or uses another path).
        if (transA) return;
#ifdef FR_X86
        if (isa == 2) { few_dots_avx512(m, n, k, alpha, a, lda, b, ldb, c, ldc); return; }
        if (isa == 1) { few_dots_avx2(m, n, k, alpha, a, lda, b, ldb, c, ldc); return; }
#endif
        few_dots_generic(m, n, k, alpha, a, lda, b, ldb, c, ldc);
        return;
    }
#ifdef FR_X86
    if (isa == 2) { few_rows_avx512(transA, m, n, k, alpha, a, lda, b, ldb, c, ldc); return; }
    if (isa == 1) { few_rows_avx2(transA, m, n, k, alpha, a, lda, b, ldb, c, ldc); return; }
#endif
    few_rows_generic(transA, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}

void fr_sgemm_few_rows(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                       const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    fr_sgemm_few_rows_isa(fr_gemm_isa(), transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}


static int detect_isa(void) {
#ifdef FR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int fr_cpu_blas_level(void) {
#ifdef FR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int fr_gemm_isa(void) {
    // Idempotent and race-benign: every thread computes the same value.
    static int isa = -1;
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = detect_isa();
        __atomic_store_n(&isa, v, __ATOMIC_RELAXED);
    }
    return v;
}

size_t fr_gemm_workspace_bytes(void) {
    return sizeof(float) * ((size_t)MC * KC + (size_t)KC * (NC + MAX_NR));
}

// The loops over one KC-deep slice of B's columns [j0, j0+nc): MC-row blocks of A packed in turn (or, with
// `direct`, A not transposed and read where it lies by the direct micro-kernel, no block packed), and every
// MR × nr tile of C that the block covers. `pb` is the slice's first panel; consecutive panels lie `panelStride`
// floats apart (kc·nr when packed per call, k·nr in a matrix packed once).
typedef struct {
    kernel_fn kernel;
    int nr, direct, transA;
    ptrdiff_t blockRows;
} block_plan;

static void macro_block(const block_plan *plan, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t kc, ptrdiff_t p0, ptrdiff_t j0, ptrdiff_t nc,
                        float alpha, const float *a, ptrdiff_t lda, const float *pb, ptrdiff_t panelStride, float *c, ptrdiff_t ldc,
                        float *packedA, int store) {
    int nr = plan->nr;
    for (ptrdiff_t i0 = m0; i0 < m1; i0 += plan->blockRows) {
        ptrdiff_t mc = m1 - i0 < plan->blockRows ? m1 - i0 : plan->blockRows;
        if (!plan->direct) pack_a(plan->transA, a, lda, i0, mc, p0, kc, packedA);
        for (ptrdiff_t jp = 0; jp < nc; jp += nr) {
            ptrdiff_t cols = nc - jp < nr ? nc - jp : nr;
            const float *panel = pb + (jp / nr) * panelStride;
            for (ptrdiff_t ip = 0; ip < mc; ip += MR) {
                ptrdiff_t rows = mc - ip < MR ? mc - ip : MR;
                float *tile = c + (i0 + ip) * ldc + j0 + jp;
                if (plan->direct)
                    plan->kernel(kc, a + (i0 + ip) * lda + p0, lda, panel, alpha, tile, ldc, rows, cols, store);
                else
                    plan->kernel(kc, packedA + (ip / MR) * kc * MR, MR, panel, alpha, tile, ldc, rows, cols, store);
            }
        }
    }
}

static kernel_fn kernel_for(int isa, int *nr) {
#ifdef FR_X86
    if (isa >= 2 && fr_gemm_isa() >= 2) { *nr = 32; return kernel_avx512; }
    if (isa >= 1 && fr_gemm_isa() >= 1) { *nr = 16; return kernel_avx2; }
#else
    (void)isa;
#endif
    *nr = 8;
    return kernel_generic;
}

// The direct-A micro-kernel of the width `kernel_for` chooses.
static kernel_fn direct_kernel_for(int isa) {
#ifdef FR_X86
    if (isa >= 2 && fr_gemm_isa() >= 2) return kernel_avx512_direct;
    if (isa >= 1 && fr_gemm_isa() >= 1) return kernel_avx2_direct;
#else
    (void)isa;
#endif
    return kernel_generic_direct;
}

void fr_sgemm_rows(int transA, int transB, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n, ptrdiff_t k, float alpha,
                   const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                   float *c, ptrdiff_t ldc, void *workspace) {
    if (m1 <= m0 || n <= 0 || k <= 0 || alpha == 0) return;
    int nr;
    kernel_fn kernel = kernel_for(fr_gemm_isa(), &nr);
    block_plan plan = {kernel, nr, 0, transA, MC};
    float *packedA = (float *)workspace;
    float *packedB = packedA + (size_t)MC * KC;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += NC) {
        ptrdiff_t nc = n - j0 < NC ? n - j0 : NC;
        for (ptrdiff_t p0 = 0; p0 < k; p0 += KC) {
            ptrdiff_t kc = k - p0 < KC ? k - p0 : KC;
            pack_b(transB, b, ldb, p0, kc, j0, nc, nr, packedB);
            macro_block(&plan, m0, m1, kc, p0, j0, nc, alpha, a, lda, packedB, kc * nr, c, ldc, packedA, 0);
        }
    }
}

ptrdiff_t fr_gemm_packed_block_rows(void) {
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE)
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 > 0 && l2 < (1L << 20)) return PACKED_MC_SMALL_L2;
#endif
    return PACKED_MC;
}

size_t fr_gemm_packed_workspace_bytes(void) {
    return sizeof(float) * (size_t)PACKED_MC * KC;
}

int fr_gemm_panel_width(int isa) {
    int nr;
    (void)kernel_for(isa, &nr);
    return nr;
}

void fr_pack_b_panels(int isa, int transB, const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, float *dst) {
    int nr = fr_gemm_panel_width(isa);
    pack_b(transB, b, ldb, 0, k, 0, n, nr, dst);
}

void fr_sgemm_rows_packed(int isa, int transA, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n, ptrdiff_t k, float alpha,
                          const float *a, ptrdiff_t lda, const float *packedB, float *c, ptrdiff_t ldc, int overwrite,
                          ptrdiff_t blockRows, void *workspace) {
    // Whole micro-panels, at most what the workspace holds.
    blockRows = blockRows < MR ? MR : blockRows > PACKED_MC ? PACKED_MC : blockRows / MR * MR;
    if (m1 <= m0 || n <= 0) return;
    if (k <= 0 || alpha == 0) {
        if (overwrite)
            for (ptrdiff_t i = m0; i < m1; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
        return;
    }
    int nr;
    kernel_fn kernel = kernel_for(isa, &nr);
    // A as it is: read in place, C in column blocks (PACKED_NB). A transposed: packed per block, all columns at once.
    int direct = !transA;
    block_plan plan = {direct ? direct_kernel_for(isa) : kernel, nr, direct, transA, blockRows};
    ptrdiff_t width = direct ? PACKED_NB / nr * nr : n;
    float *packedA = (float *)workspace;
    // Within a column block, rows outermost: a block of C (blockRows × width) takes all its KC slices while it is
    // in cache, instead of being read and written once per slice across the whole of C. Each slice's partial sums
    // are added to C in the order fr_sgemm_rows adds them, so the bits are its bits; with `overwrite` the first
    // slice stores its sums instead of adding them to C (0 + x is x, except that a sum of exactly −0 stays −0).
    for (ptrdiff_t j0 = 0; j0 < n; j0 += width) {
        ptrdiff_t nc = n - j0 < width ? n - j0 : width;
        for (ptrdiff_t i0 = m0; i0 < m1; i0 += blockRows) {
            ptrdiff_t rows = m1 - i0 < blockRows ? m1 - i0 : blockRows;
            for (ptrdiff_t p0 = 0; p0 < k; p0 += KC) {
                ptrdiff_t kc = k - p0 < KC ? k - p0 : KC;
                macro_block(&plan, i0, i0 + rows, kc, p0, j0, nc, alpha, a, lda, packedB + (j0 / nr) * k * nr + p0 * nr, k * nr, c, ldc,
                            packedA, overwrite && p0 == 0);
            }
        }
    }
}
