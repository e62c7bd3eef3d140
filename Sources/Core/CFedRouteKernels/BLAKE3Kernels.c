// BLAKE3 (the hash of the BLAKE3 specification, unkeyed, 32-byte output), written for the federation's body digest
// (`FedRouteFederationHTTP.BodyDigest.blake3`): a body of megabytes is hashed once by the client that signs it and
// once by the coordinator that checks the signature, so the hash's speed is part of every network round.
//
// BLAKE3 splits its input into 1,024-byte chunks, hashes each chunk to a chaining value on its own, and merges the
// chaining values pairwise in a binary tree. Sixteen chunks are independent, so the AVX-512 path hashes 16 of them at
// once (the AVX2 path 8), one chunk per 32-bit lane (each 64-byte block of the chunks loaded row by row and
// transposed, as the SHA-256 lanes kernel does), and merges the tree a level at a time, as many parent nodes per pass.
// Its compression function has 7 rounds of additions, XORs and rotations and no message expansion: about 1.6×
// tree16-sha256's speed on the EPYC (Zen 4) this was written on (`fedroute-bench --only digest`). The portable path
// computes the same tree one compression at a time and is the reference the vector paths are tested against; all are
// tested against the specification's published digests.
#include "CFedRouteKernels.h"
#include <stdint.h>
#include <string.h>

enum { FR_B3_CHUNK = 1024, FR_B3_BLOCK = 64 };
enum { FR_B3_CHUNK_START = 1, FR_B3_CHUNK_END = 2, FR_B3_PARENT = 4, FR_B3_ROOT = 8 };

static const uint32_t fr_b3_iv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

// Round r reads message word fr_b3_schedule[r][i] where round 0 reads word i: the specification's permutation
// applied r times.
static const uint8_t fr_b3_schedule[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},  {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},  {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},  {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t fr_b3_load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fr_b3_store_cv(uint8_t *out, const uint32_t cv[8]) {
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)cv[i];
        out[4 * i + 1] = (uint8_t)(cv[i] >> 8);
        out[4 * i + 2] = (uint8_t)(cv[i] >> 16);
        out[4 * i + 3] = (uint8_t)(cv[i] >> 24);
    }
}

static inline uint32_t fr_b3_ror(uint32_t x, int n) { return x >> n | x << (32 - n); }

#define FR_B3_G(a, b, c, d, x, y)                                                                                      \
    do {                                                                                                               \
        a = a + b + (x); d = fr_b3_ror(d ^ a, 16); c = c + d; b = fr_b3_ror(b ^ c, 12);                                \
        a = a + b + (y); d = fr_b3_ror(d ^ a, 8); c = c + d; b = fr_b3_ror(b ^ c, 7);                                  \
    } while (0)

// The compression function; `cv` becomes the first 8 words of its output (the chaining value).
static void fr_b3_compress(uint32_t cv[8], const uint8_t block[FR_B3_BLOCK], uint32_t block_len, uint64_t counter, uint32_t flags) {
    uint32_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = fr_b3_load32(block + 4 * i);
    for (int i = 0; i < 8; i++) v[i] = cv[i];
    for (int i = 0; i < 4; i++) v[8 + i] = fr_b3_iv[i];
    v[12] = (uint32_t)counter;
    v[13] = (uint32_t)(counter >> 32);
    v[14] = block_len;
    v[15] = flags;
#pragma clang loop unroll(full)
    for (int r = 0; r < 7; r++) {
        const uint8_t *s = fr_b3_schedule[r];
        FR_B3_G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        FR_B3_G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        FR_B3_G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        FR_B3_G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        FR_B3_G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        FR_B3_G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        FR_B3_G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        FR_B3_G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

// The chaining value of one chunk of `len` bytes (1 … 1,024; 0 only for the empty input), chunk number `counter`;
// `root` adds ROOT to the last block's flags (a one-chunk input, whose chunk is the root).
static void fr_b3_chunk(const uint8_t *in, size_t len, uint64_t counter, int root, uint32_t cv[8]) {
    memcpy(cv, fr_b3_iv, sizeof fr_b3_iv);
    size_t blocks = len == 0 ? 1 : (len + FR_B3_BLOCK - 1) / FR_B3_BLOCK;
    for (size_t b = 0; b < blocks; b++) {
        uint8_t block[FR_B3_BLOCK] = {0};
        size_t n = b + 1 < blocks ? FR_B3_BLOCK : len - b * FR_B3_BLOCK;
        if (n > 0) memcpy(block, in + b * FR_B3_BLOCK, n);
        uint32_t flags = (b == 0 ? FR_B3_CHUNK_START : 0) | (b + 1 == blocks ? FR_B3_CHUNK_END | (root ? FR_B3_ROOT : 0) : 0);
        fr_b3_compress(cv, block, (uint32_t)n, counter, flags);
    }
}

// The root: the parent of the last two chaining values, stored back to back at `pair` (64 bytes).
static void fr_b3_root(const uint8_t pair[FR_B3_BLOCK], uint32_t cv[8]) {
    memcpy(cv, fr_b3_iv, sizeof fr_b3_iv);
    fr_b3_compress(cv, pair, FR_B3_BLOCK, 0, FR_B3_PARENT | FR_B3_ROOT);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define FR_B3_TARGET __attribute__((target("avx512f")))
typedef __m512i fr_v16u;
#define FR_TRANSPOSE_TARGET FR_B3_TARGET
#include "Transpose16.h"

// 2 with AVX-512 F, 1 with AVX2, else 0.
static int fr_b3_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

// One G function on vectors of the width that ADD, XOR and ROR (a rotation right by a constant) work on.
#define FR_B3_VG(ADD, XOR, ROR, a, b, c, d, x, y)                                                                     \
    do {                                                                                                               \
        a = ADD(ADD(a, b), x); d = ROR(XOR(d, a), 16); c = ADD(c, d); b = ROR(XOR(b, c), 12);                         \
        a = ADD(ADD(a, b), y); d = ROR(XOR(d, a), 8); c = ADD(c, d); b = ROR(XOR(b, c), 7);                           \
    } while (0)

// Defines NAME(inputs, blocks, counter, increment, flags, start, end, out): LANES inputs of `blocks` whole blocks each,
// input l at inputs[l], its chaining value (32 bytes) to out + 32·l. Input l's counter is counter + l when `increment`,
// else counter; its first block adds `start` to `flags`, its last `end` (chunks: CHUNK_START and CHUNK_END; parent
// nodes: one block with PARENT in `flags`). V is the vector type, LOAD_MESSAGE(inputs, offset, m) puts word t of the
// block at `offset` of every lane in m[t]; the other arguments are that width's intrinsics.
#define FR_B3_DEFINE_HASH(NAME, TARGET, V, LANES, SET1, LOADU, STOREU, ADD, XOR, ROR, LOAD_MESSAGE)                     \
    TARGET static void NAME(const uint8_t *const inputs[LANES], size_t blocks, uint64_t counter, int increment,          \
                            uint32_t flags, uint32_t start, uint32_t end, uint8_t *out) {                               \
        V h[8], m[16];                                                                                                 \
        for (int i = 0; i < 8; i++) h[i] = SET1((int)fr_b3_iv[i]);                                                      \
        uint32_t lo[LANES], hi[LANES];                                                                                 \
        for (int l = 0; l < LANES; l++) {                                                                              \
            uint64_t c = counter + (increment ? (uint64_t)l : 0);                                                      \
            lo[l] = (uint32_t)c;                                                                                       \
            hi[l] = (uint32_t)(c >> 32);                                                                               \
        }                                                                                                              \
        const V counter_lo = LOADU((const void *)lo), counter_hi = LOADU((const void *)hi);                             \
        for (size_t b = 0; b < blocks; b++) {                                                                          \
            uint32_t f = flags | (b == 0 ? start : 0) | (b + 1 == blocks ? end : 0);                                   \
            LOAD_MESSAGE(inputs, b * FR_B3_BLOCK, m);                                                                  \
            V v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];                  \
            V v8 = SET1((int)fr_b3_iv[0]), v9 = SET1((int)fr_b3_iv[1]), v10 = SET1((int)fr_b3_iv[2]);                  \
            V v11 = SET1((int)fr_b3_iv[3]), v12 = counter_lo, v13 = counter_hi, v14 = SET1(FR_B3_BLOCK), v15 = SET1((int)f); \
            /* Unrolled, so that every message index is a constant. */                                                 \
            _Pragma("clang loop unroll(full)")                                                                         \
            for (int r = 0; r < 7; r++) {                                                                              \
                const uint8_t *s = fr_b3_schedule[r];                                                                  \
                FR_B3_VG(ADD, XOR, ROR, v0, v4, v8, v12, m[s[0]], m[s[1]]);                                            \
                FR_B3_VG(ADD, XOR, ROR, v1, v5, v9, v13, m[s[2]], m[s[3]]);                                            \
                FR_B3_VG(ADD, XOR, ROR, v2, v6, v10, v14, m[s[4]], m[s[5]]);                                           \
                FR_B3_VG(ADD, XOR, ROR, v3, v7, v11, v15, m[s[6]], m[s[7]]);                                           \
                FR_B3_VG(ADD, XOR, ROR, v0, v5, v10, v15, m[s[8]], m[s[9]]);                                           \
                FR_B3_VG(ADD, XOR, ROR, v1, v6, v11, v12, m[s[10]], m[s[11]]);                                         \
                FR_B3_VG(ADD, XOR, ROR, v2, v7, v8, v13, m[s[12]], m[s[13]]);                                          \
                FR_B3_VG(ADD, XOR, ROR, v3, v4, v9, v14, m[s[14]], m[s[15]]);                                          \
            }                                                                                                          \
            h[0] = XOR(v0, v8); h[1] = XOR(v1, v9); h[2] = XOR(v2, v10); h[3] = XOR(v3, v11);                          \
            h[4] = XOR(v4, v12); h[5] = XOR(v5, v13); h[6] = XOR(v6, v14); h[7] = XOR(v7, v15);                        \
        }                                                                                                              \
        uint32_t words[8][LANES];                                                                                      \
        for (int i = 0; i < 8; i++) STOREU((void *)words[i], h[i]);                                                     \
        for (int l = 0; l < LANES; l++) {                                                                              \
            uint32_t cv[8];                                                                                            \
            for (int i = 0; i < 8; i++) cv[i] = words[i][l];                                                           \
            fr_b3_store_cv(out + 32 * l, cv);                                                                          \
        }                                                                                                              \
    }

// AVX-512: one 64-byte load per lane, then the 16 × 16 transpose.
FR_B3_TARGET static inline void fr_b3_load16(const uint8_t *const inputs[16], size_t offset, fr_v16u m[16]) {
    fr_v16u rows[16];
    for (int l = 0; l < 16; l++) rows[l] = _mm512_loadu_si512((const void *)(inputs[l] + offset));
    transpose16(rows, m);
}

FR_B3_DEFINE_HASH(fr_b3_hash16, FR_B3_TARGET, fr_v16u, 16, _mm512_set1_epi32, _mm512_loadu_si512, _mm512_storeu_si512,
                  _mm512_add_epi32, _mm512_xor_si512, _mm512_ror_epi32, fr_b3_load16)

#define FR_B3_TARGET2 __attribute__((target("avx2")))
typedef __m256i fr_v8u;

// AVX2 has no rotation: 16 and 8 bits are byte shuffles, the others two shifts.
FR_B3_TARGET2 static inline fr_v8u fr_b3_ror8(fr_v8u x, int n) {
    if (n == 16) return _mm256_shuffle_epi8(x, _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
    if (n == 8) return _mm256_shuffle_epi8(x, _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
    return _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - n));
}

// r[l] holds 8 words of lane l; afterwards w[t] holds word t of lanes 0…7 (Transpose16.h's interleave stages at
// half width, then one 128-bit block exchange).
FR_B3_TARGET2 static inline void fr_b3_transpose8(const fr_v8u r[8], fr_v8u w[8]) {
    fr_v8u a[8], b[8];
    FR_TRANSPOSE_INTERLEAVE(8, r, a, b, _mm256_unpacklo_epi32, _mm256_unpackhi_epi32, _mm256_unpacklo_epi64, _mm256_unpackhi_epi64);
    for (int i = 0; i < 4; i++) {
        w[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
        w[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
    }
}

// AVX2: each block as two 32-byte halves per lane, each transposed 8 × 8.
FR_B3_TARGET2 static inline void fr_b3_load8(const uint8_t *const inputs[8], size_t offset, fr_v8u m[16]) {
    fr_v8u rows[8];
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 8; l++) rows[l] = _mm256_loadu_si256((const void *)(inputs[l] + offset + 32 * half));
        fr_b3_transpose8(rows, m + 8 * half);
    }
}

FR_B3_DEFINE_HASH(fr_b3_hash8, FR_B3_TARGET2, fr_v8u, 8, _mm256_set1_epi32, _mm256_loadu_si256, _mm256_storeu_si256,
                  _mm256_add_epi32, _mm256_xor_si256, fr_b3_ror8, fr_b3_load8)

#else
static int fr_b3_cpu(void) { return 0; }
#endif

int fr_blake3_isa(void) { return fr_b3_cpu(); }

// The chaining values of `count` inputs of `blocks` whole blocks each, input i at base + i·stride, to out + 32·i
// (out may be base: input i is read before value i is written, and no later input lies below it). Input i's counter
// is counter + i when `increment`, else counter; its first block adds `start` to `flags`, its last `end`. Whole chunks
// (16 blocks, CHUNK_START and CHUNK_END, counted) and parent nodes (one block, PARENT, counter 0) both come here: a
// vector path takes its lanes' worth of inputs a pass (the missing lanes of the last pass point at its first input,
// and their values are dropped), the portable path one compression at a time.
static void fr_b3_many(int isa, const uint8_t *base, size_t stride, size_t count, size_t blocks, uint64_t counter, int increment,
                       uint32_t flags, uint32_t start, uint32_t end, uint8_t *out) {
#if defined(__x86_64__)
    if (isa > 0) {
        size_t lanes = isa == 2 ? 16 : 8;
        for (size_t i = 0; i < count; i += lanes) {
            size_t n = count - i < lanes ? count - i : lanes;
            const uint8_t *inputs[16];
            for (size_t l = 0; l < lanes; l++) inputs[l] = base + (i + (l < n ? l : 0)) * stride;
            uint8_t all[16 * 32];
            uint8_t *dst = n == lanes ? out + 32 * i : all;
            uint64_t first = counter + (increment ? (uint64_t)i : 0);
            if (isa == 2) fr_b3_hash16(inputs, blocks, first, increment, flags, start, end, dst);
            else fr_b3_hash8(inputs, blocks, first, increment, flags, start, end, dst);
            if (dst == all) memcpy(out + 32 * i, all, 32 * n);
        }
        return;
    }
#endif
    (void)isa;
    for (size_t i = 0; i < count; i++) {
        uint32_t cv[8];
        memcpy(cv, fr_b3_iv, sizeof fr_b3_iv);
        for (size_t b = 0; b < blocks; b++) {
            uint32_t f = flags | (b == 0 ? start : 0) | (b + 1 == blocks ? end : 0);
            fr_b3_compress(cv, base + i * stride + b * FR_B3_BLOCK, FR_B3_BLOCK, counter + (increment ? (uint64_t)i : 0), f);
        }
        fr_b3_store_cv(out + 32 * i, cv);
    }
}

int fr_blake3_isa_chunk_cvs(int isa, const uint8_t *in, size_t count, uint64_t first, uint8_t *cvs) {
    if (isa < 0 || isa > fr_blake3_isa()) return 0;
    fr_b3_many(isa, in, FR_B3_CHUNK, count, FR_B3_CHUNK / FR_B3_BLOCK, first, 1, 0, FR_B3_CHUNK_START, FR_B3_CHUNK_END, cvs + 32 * first);
    return 1;
}

int fr_blake3_isa_finish(int isa, const uint8_t *last, size_t last_len, size_t chunks, uint8_t *cvs, uint8_t out[32]) {
    if (isa < 0 || isa > fr_blake3_isa() || chunks == 0 || last_len > FR_B3_CHUNK || (chunks > 1 && last_len == 0)) return 0;
    uint32_t cv[8];
    if (chunks == 1) {
        fr_b3_chunk(last, last_len, 0, 1, cv);
        fr_b3_store_cv(out, cv);
        return 1;
    }
    fr_b3_chunk(last, last_len, chunks - 1, 0, cv);
    fr_b3_store_cv(cvs + 32 * (chunks - 1), cv);
    // A level at a time: adjacent pairs become parents, an odd last node moves up as it is. This is the
    // specification's tree (every left subtree a power of two chunks, as many as leave at least one for the right).
    size_t nodes = chunks;
    while (nodes > 2) {
        size_t pairs = nodes / 2;
        fr_b3_many(isa, cvs, 2 * 32, pairs, 1, 0, 0, FR_B3_PARENT, 0, 0, cvs);  // parent i overwrites cvs[32·i …], already read
        if (nodes % 2 == 1) memmove(cvs + 32 * pairs, cvs + 32 * (nodes - 1), 32);
        nodes = pairs + nodes % 2;
    }
    fr_b3_root(cvs, cv);
    fr_b3_store_cv(out, cv);
    return 1;
}

int fr_blake3_isa_hash(int isa, const uint8_t *in, size_t len, uint8_t *cvs, uint8_t out[32]) {
    if (isa < 0 || isa > fr_blake3_isa()) return 0;
    if (len <= FR_B3_CHUNK) return fr_blake3_isa_finish(isa, in, len, 1, cvs, out);
    // Every chunk but the last is whole; the last holds 1 … 1,024 bytes.
    size_t chunks = (len + FR_B3_CHUNK - 1) / FR_B3_CHUNK;
    fr_blake3_isa_chunk_cvs(isa, in, chunks - 1, 0, cvs);
    return fr_blake3_isa_finish(isa, in + (chunks - 1) * FR_B3_CHUNK, len - (chunks - 1) * FR_B3_CHUNK, chunks, cvs, out);
}
