// Sixteen SHA-256 digests at once (FIPS 180-4), one message per 32-bit lane of AVX-512 registers: the federation's
// tree body digest (`FedRouteFederationHTTP.BodyDigest`) hashes a large body as 16 equal leaves plus a short tail,
// and this kernel computes the 16 leaf digests in one pass.
//
// One SHA-NI stream on the EPYC (Zen 4) this was written on runs at about 1.8 GB/s, bound by the latency of
// SHA256RNDS2; sixteen independent lanes keep the vector units busy instead (about 3.3 GB/s on the same core,
// `fedroute-bench --only digest`). Each block of the 16 messages is loaded row by row and transposed so that
// register t holds word t of every lane. Every lane is an ordinary SHA-256 of its `len` bytes, so the kernel is
// tested digest for digest against swift-crypto's `SHA256`, which computes the leaves where this kernel does
// not run.
#include "CFedRouteKernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int fr_sha256_x16_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
}

#define FR_SHA_TARGET __attribute__((target("avx512f,avx512bw")))
typedef __m512i fr_v16u;
#define FR_TRANSPOSE_TARGET FR_SHA_TARGET
#include "Transpose16.h"

static const uint32_t fr_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
static const uint32_t fr_sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define FR_ROR(x, n) _mm512_ror_epi32(x, n)
// x ^ y ^ z in one instruction (truth table 0x96).
#define FR_XOR3(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0x96)

// One compression of 16 lanes: state s (word i of every lane in s[i]), message schedule w (word t in w[t],
// overwritten by the expanded schedule).
FR_SHA_TARGET static inline void compress16(fr_v16u s[8], fr_v16u w[16]) {
    fr_v16u a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int t = 0; t < 64; t++) {
        fr_v16u wt;
        if (t < 16) {
            wt = w[t];
        } else {
            fr_v16u w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            fr_v16u s0 = FR_XOR3(FR_ROR(w15, 7), FR_ROR(w15, 18), _mm512_srli_epi32(w15, 3));
            fr_v16u s1 = FR_XOR3(FR_ROR(w2, 17), FR_ROR(w2, 19), _mm512_srli_epi32(w2, 10));
            wt = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0), _mm512_add_epi32(w[(t - 7) & 15], s1));
            w[t & 15] = wt;
        }
        fr_v16u sum1 = FR_XOR3(FR_ROR(e, 6), FR_ROR(e, 11), FR_ROR(e, 25));
        fr_v16u ch = _mm512_ternarylogic_epi32(e, f, g, 0xCA);   // (e & f) | (~e & g)
        fr_v16u t1 = _mm512_add_epi32(_mm512_add_epi32(h, sum1), _mm512_add_epi32(ch, _mm512_add_epi32(wt, _mm512_set1_epi32((int)fr_sha256_k[t]))));
        fr_v16u sum0 = FR_XOR3(FR_ROR(a, 2), FR_ROR(a, 13), FR_ROR(a, 22));
        fr_v16u maj = _mm512_ternarylogic_epi32(a, b, c, 0xE8);  // majority of a, b, c
        h = g; g = f; f = e; e = _mm512_add_epi32(d, t1);
        d = c; c = b; b = a; a = _mm512_add_epi32(t1, _mm512_add_epi32(sum0, maj));
    }
    s[0] = _mm512_add_epi32(s[0], a); s[1] = _mm512_add_epi32(s[1], b); s[2] = _mm512_add_epi32(s[2], c); s[3] = _mm512_add_epi32(s[3], d);
    s[4] = _mm512_add_epi32(s[4], e); s[5] = _mm512_add_epi32(s[5], f); s[6] = _mm512_add_epi32(s[6], g); s[7] = _mm512_add_epi32(s[7], h);
}

FR_SHA_TARGET static void sha256_x16(const uint8_t *base, size_t stride, size_t len, uint8_t *out) {
    fr_v16u s[8], w[16], rows[16];
    for (int i = 0; i < 8; i++) s[i] = _mm512_set1_epi32((int)fr_sha256_iv[i]);
    // Big-endian words: reverse the bytes of every 32-bit word.
    const fr_v16u bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    for (size_t offset = 0; offset < len; offset += 64) {
        for (int l = 0; l < 16; l++) rows[l] = _mm512_loadu_si512((const void *)(base + (size_t)l * stride + offset));
        transpose16(rows, w);
        for (int t = 0; t < 16; t++) w[t] = _mm512_shuffle_epi8(w[t], bswap);
        compress16(s, w);
    }
    // Every lane is `len` bytes, a whole number of blocks, so all end with the same padding block:
    // 0x80, zeros, the length in bits as a big-endian 64-bit number.
    uint64_t bits = (uint64_t)len * 8;
    for (int t = 0; t < 16; t++) w[t] = _mm512_setzero_si512();
    w[0] = _mm512_set1_epi32((int)0x80000000u);
    w[14] = _mm512_set1_epi32((int)(uint32_t)(bits >> 32));
    w[15] = _mm512_set1_epi32((int)(uint32_t)bits);
    compress16(s, w);
    uint32_t words[8][16];
    for (int i = 0; i < 8; i++) _mm512_storeu_si512((void *)words[i], s[i]);
    for (int l = 0; l < 16; l++) {
        for (int i = 0; i < 8; i++) {
            uint32_t v = words[i][l];
            out[l * 32 + 4 * i] = (uint8_t)(v >> 24);
            out[l * 32 + 4 * i + 1] = (uint8_t)(v >> 16);
            out[l * 32 + 4 * i + 2] = (uint8_t)(v >> 8);
            out[l * 32 + 4 * i + 3] = (uint8_t)v;
        }
    }
}

int fr_sha256_x16(const uint8_t *base, size_t stride, size_t len, uint8_t *out) {
    if (len % 64 != 0 || !fr_sha256_x16_available()) return 0;
    sha256_x16(base, stride, len, out);
    return 1;
}

#else

int fr_sha256_x16_available(void) { return 0; }
int fr_sha256_x16(const uint8_t *base, size_t stride, size_t len, uint8_t *out) {
    (void)base; (void)stride; (void)len; (void)out;
    return 0;
}

#endif
