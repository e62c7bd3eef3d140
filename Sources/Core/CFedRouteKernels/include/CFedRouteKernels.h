#ifndef CFEDROUTE_KERNELS_H
#define CFEDROUTE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Which instruction set the portable GEMM's micro-kernel uses on this CPU:
/// 0 generic 128-bit vectors, 1 AVX2 + FMA, 2 AVX-512F. Decided once, at the first call.
int fr_gemm_isa(void);

/// The widest x86 kernel family this CPU runs, in OpenBLAS's terms: 2 when it has AVX-512 F, BW, DQ and VL
/// (what OpenBLAS's SkylakeX kernels use), 1 with AVX2 and FMA (its Haswell kernels), 0 otherwise.
int fr_cpu_blas_level(void);

/// Bytes of scratch memory `fr_sgemm_rows` needs for one caller (packed panels of A and B).
size_t fr_gemm_workspace_bytes(void);

/// Rows [m0, m1) of C += alpha · op(A) · op(B), row-major, with op(A) m×k and op(B) k×n.
/// C must already hold beta·C. `workspace` is `fr_gemm_workspace_bytes()` bytes aligned to 64.
/// Each element of C is summed in the same order whatever the row range, so splitting rows over
/// threads gives bit-identical results.
void fr_sgemm_rows(int transA, int transB, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n, ptrdiff_t k, float alpha,
                   const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                   float *c, ptrdiff_t ldc, void *workspace);

/// Columns per panel of the portable micro-kernel at instruction set `isa` (0 generic 128-bit, 1 AVX2 + FMA,
/// 2 AVX-512F; lowered to what the CPU runs): 8, 16 or 32.
int fr_gemm_panel_width(int isa);

/// Packs all of op(B) (k×n, row-major, B transposed when `transB`) into the panels `fr_sgemm_rows` packs per
/// call: ceil(n / w) panels of w = `fr_gemm_panel_width(isa)` columns, each k rows deep (w floats per row),
/// the columns past n zero. `dst` holds ceil(n / w)·w·k floats.
void fr_pack_b_panels(int isa, int transB, const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, float *dst);

/// Rows of A (and C) `fr_sgemm_rows_packed` should take over all of k at a time on this CPU: 240, or 120 where the
/// second-level cache is under 1 MB (where a block of C of 240 rows no longer stays in it). Asks the C library on
/// each call; callers keep the answer (`PackedMatrix.blockRows`).
ptrdiff_t fr_gemm_packed_block_rows(void);

/// Bytes of scratch memory `fr_sgemm_rows_packed` needs for one caller (one packed block of A; B is packed
/// already, so this is a fraction of `fr_gemm_workspace_bytes`).
size_t fr_gemm_packed_workspace_bytes(void);

/// Rows [m0, m1) of C += alpha · op(A) · B with B packed by `fr_pack_b_panels` at the same `isa`, or with
/// `overwrite` C = alpha · op(A) · B (C's rows need not hold numbers before; the portable kernel's beta-0 result,
/// except that a sum of exactly −0 stays −0 instead of becoming +0). At the `isa` `fr_sgemm_rows` uses
/// (`fr_gemm_isa()`), the same micro-kernel and the same order of every sum, so the same bits, without packing B
/// again; A as it is is read in place, and C is walked in column blocks and, within each, row blocks outermost,
/// so that a block of C stays in cache over all of k. `workspace` is `fr_gemm_packed_workspace_bytes()` bytes
/// aligned to 64 where A is transposed (its blocks are packed there), and may be NULL where it is not. Rows go in
/// blocks of `blockRows` (`fr_gemm_packed_block_rows()`; rounded down to whole micro-panels of 6, between 6 and 240):
/// the same bits for any block, so tests can check each size on any CPU.
void fr_sgemm_rows_packed(int isa, int transA, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n, ptrdiff_t k, float alpha,
                          const float *a, ptrdiff_t lda, const float *packedB, float *c, ptrdiff_t ldc, int overwrite,
                          ptrdiff_t blockRows, void *workspace);

/// C += alpha · op(A) · op(B) for a few rows (row-major, op(A) m×k, op(B) k×n), reading B once in place,
/// without packing: the product of one query with a layer's weights (B as it is) or with a set of reference
/// rows (B transposed, each element a dot product). Each element of C is summed in an order that depends only
/// on k and then added times alpha, so a row's result is the same whatever the other rows of the call. Any m
/// works; it pays for m ≤ `FR_FEW_ROWS_MAX` (above, packed panels reuse B across rows). With transB, A must
/// not be transposed (nothing is computed otherwise).
void fr_sgemm_few_rows(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                       const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc);
/// `fr_sgemm_few_rows` at a given width (0 generic 128-bit, 1 AVX2 + FMA, 2 AVX-512F; lowered to what the CPU runs).
void fr_sgemm_few_rows_isa(int isa, int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                           const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc);
/// A spin-wait hint to the CPU (`pause` on x86, `yield` on ARM, nothing elsewhere): what `SpinningTeam`'s threads
/// run between looks at a shared word, so the spinning core yields its pipeline to its sibling and saves power.
static inline void fr_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/// Rows up to which `GEMM.multiply` takes `fr_sgemm_few_rows`.
#define FR_FEW_ROWS_MAX 4

/// out[i] = GELU(in[i]) = in[i]·Φ(in[i]) for i < n (`in` may equal `out`), bit-identical to
/// `VectorMath.gelu` (same algorithm and operation order, no FMA contraction) at the widest vector width
/// the CPU supports (the one `fr_gemm_isa` reports).
void fr_gelu(const float *in, float *out, ptrdiff_t n);

/// x[i] = exp(x[i]·scale − shift) for i < n, bit-identical to `VectorMath.exp(x·scale − shift)`.
void fr_exp_affine(float *x, ptrdiff_t n, float scale, float shift);

/// `fr_gelu` and `fr_exp_affine` at a given width (0 generic 128-bit, 1 AVX2, 2 AVX-512F; lowered to
/// what the CPU runs), so tests can check every instantiation against the Swift code on one machine.
void fr_gelu_isa(int isa, const float *in, float *out, ptrdiff_t n);
void fr_exp_affine_isa(int isa, float *x, ptrdiff_t n, float scale, float shift);

/// Longest sequence and widest head `fr_short_attention_head` takes.
#define FR_SHORT_ATTENTION_MAX_LEN 32
#define FR_SHORT_ATTENTION_MAX_D 128

/// One attention head of one short sequence: out[i] = Σ_j softmax_j(scale·q_i·k_j)·v_j, rows of q, k, v
/// `stride` floats apart and of out `outStride` apart, `d` values each. Returns 0 (and writes nothing)
/// when len or d exceed the limits above. The same bits at every vector width.
int fr_short_attention_head(const float *q, const float *k, const float *v, ptrdiff_t stride, ptrdiff_t len, ptrdiff_t d,
                            float scale, float *out, ptrdiff_t outStride);
int fr_short_attention_head_isa(int isa, const float *q, const float *k, const float *v, ptrdiff_t stride, ptrdiff_t len,
                                ptrdiff_t d, float scale, float *out, ptrdiff_t outStride);

/// One AdamW step over `count` elements, bit-identical to `AdamW.referenceStep` (8-element blocks; `moving` has
/// one flag per block, set once a block's gradient was non-zero; a block still at rest with a zero gradient takes
/// the decay alone): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g·g, p ← (p − decay·p) − stepSize·m / (√(v·inverseBias2) + ε).
void fr_adamw_step(ptrdiff_t count, float *p, float *m, float *v, const float *g, _Bool *moving, float beta1, float beta2,
                   float inverseBias2, float epsilon, float stepSize, float decay);
/// `fr_adamw_step` at a given width (0 generic, 1 or more AVX2; lowered to what the CPU runs), for tests.
void fr_adamw_step_isa(int isa, ptrdiff_t count, float *p, float *m, float *v, const float *g, _Bool *moving, float beta1,
                       float beta2, float inverseBias2, float epsilon, float stepSize, float decay);

/// Secure aggregation's fixed point: out[i] = round(w·v[i]·scale) (halves away from zero) as a two's-complement
/// word, for |w·v[i]| < limit. Returns n, or the index of the first value that is not finite or not under the
/// limit (words before it are written). The same words at every vector width.
ptrdiff_t fr_fixed_point_encode(const float *v, ptrdiff_t n, double w, double scale, double limit, uint64_t *out);
/// `fr_fixed_point_encode` at a given width (0 generic, 1 or more AVX2; lowered to what the CPU runs), for tests.
ptrdiff_t fr_fixed_point_encode_isa(int isa, const float *v, ptrdiff_t n, double w, double scale, double limit,
                                    uint64_t *out);
/// `fr_fixed_point_encode` in the 32-bit ring: each word reduced mod 2^32. The caller's `limit` must keep
/// |w·v[i]·scale| + 1/2 < 2^31, so that the word is the two's complement of the rounded value.
ptrdiff_t fr_fixed_point_encode32(const float *v, ptrdiff_t n, double w, double scale, double limit, uint32_t *out);
/// `fr_fixed_point_encode32` at a given width (0 generic, 1 or more AVX2), for tests.
ptrdiff_t fr_fixed_point_encode32_isa(int isa, const float *v, ptrdiff_t n, double w, double scale, double limit,
                                      uint32_t *out);

/// 1 when the CPU has AES instructions (x86 AES-NI, ARMv8 AES), 0 otherwise.
int fr_cpu_has_aes(void);

/// 1 when `fr_aes256_ctr_add` runs on this CPU (x86-64 with AES-NI, AVX2 and VAES), 0 otherwise.
int fr_aes256_ctr_add_available(void);
/// values[i] += (or −= with `subtract`) the little-endian 64-bit word i of the AES-256-CTR keystream of the 32-byte
/// `key` that starts at counter block 0^96 ‖ BE32(first_block), mod 2^64 (values[0] is the first word of that
/// block). The caller keeps first_block + ⌈count / 2⌉ ≤ 2^32. Returns 1, or 0 (nothing touched) where the CPU
/// lacks the instructions (`fr_aes256_ctr_add_available`).
int fr_aes256_ctr_add(const uint8_t *key, uint32_t first_block, uint64_t *values, ptrdiff_t count, int subtract);
/// `fr_aes256_ctr_add` in the 32-bit ring: values[i] ± the little-endian 32-bit word i of the same keystream,
/// mod 2^32 (four words a block). The caller keeps first_block + ⌈count / 4⌉ ≤ 2^32.
int fr_aes256_ctr_add32(const uint8_t *key, uint32_t first_block, uint32_t *values, ptrdiff_t count, int subtract);

/// 1 when `fr_sha256_x16` runs on this CPU (x86-64 with AVX-512 F and BW), 0 otherwise.
int fr_sha256_x16_available(void);
/// The SHA-256 digests of 16 messages of `len` bytes each (a multiple of 64), message l at base + l·stride, written
/// to out[32·l …]. Returns 1, or 0 (nothing written) where `len` is not a multiple of 64 or the CPU lacks the
/// instructions (`fr_sha256_x16_available`).
int fr_sha256_x16(const uint8_t *base, size_t stride, size_t len, uint8_t *out);

/// The fastest BLAKE3 path this CPU runs: 2 (AVX-512 F, 16 chunks at once), 1 (AVX2, 8 chunks at once) or 0
/// (portable, one compression at a time).
int fr_blake3_isa(void);
/// The BLAKE3 digest (unkeyed, 32 bytes) of `len` bytes at `in`, to `out`, by the path `isa` (0 portable, 1 AVX2,
/// 2 AVX-512); `cvs` is scratch of 32 bytes per 1,024-byte chunk (32·⌈len / 1024⌉, at least 32). Returns 1, or 0
/// (nothing written) where `isa` is above what `fr_blake3_isa` reports (or negative).
int fr_blake3_isa_hash(int isa, const uint8_t *in, size_t len, uint8_t *cvs, uint8_t out[32]);
/// The same digest taken as the input arrives: the chaining values of `count` whole 1,024-byte chunks at `in`, chunk
/// numbers `first` …, to cvs + 32·first. Returns 1, or 0 (nothing written) for an `isa` this CPU does not run.
int fr_blake3_isa_chunk_cvs(int isa, const uint8_t *in, size_t count, uint64_t first, uint8_t *cvs);
/// The digest of an input of `chunks` chunks whose first chunks − 1 chaining values are at `cvs` (from
/// `fr_blake3_isa_chunk_cvs`), given its last chunk (`last_len` bytes: 1 … 1,024, or 0 … 1,024 when it is the only
/// one); `cvs` holds 32·chunks bytes and is overwritten. Returns 1, or 0 for an `isa` this CPU does not run or
/// lengths outside those.
int fr_blake3_isa_finish(int isa, const uint8_t *last, size_t last_len, size_t chunks, uint8_t *cvs, uint8_t out[32]);

/// glibc's mallopt: M_MMAP_THRESHOLD, M_TRIM_THRESHOLD and M_TOP_PAD in bytes. Returns 1 when glibc accepted all
/// three, 0 when it refused one or the C library is not glibc.
int fr_malloc_tune(int mmap_threshold, int trim_threshold, int top_pad);

#endif
