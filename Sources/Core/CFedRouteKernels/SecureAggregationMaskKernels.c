// Secure aggregation's AES-256-CTR masks (`FedRouteFederation.SecureAggregation.applyMasks`), generated and
// added to the masked vector in one pass with VAES: two AES blocks per instruction on 256-bit registers.
//
// The keystream is the one swift-crypto's `AES._CTR` produces from the counter block 0^96 ‖ b (b a 32-bit
// big-endian block index): block b is AES-256-Encrypt(key, 0^96 ‖ BE32(b)), and word i of the mask is the
// little-endian 64-bit word at byte 8·i of the stream (in the 32-bit ring, the 32-bit word at byte 4·i). With VAES the keystream never goes to memory: each
// register of two blocks is four mask words, added to (or subtracted from) four words of the vector. The
// swift-crypto path (BoringSSL's AES-NI, one block per instruction, the stream written out, then added)
// stays where VAES is missing, and is the reference the kernel is tested against.
#include "CFedRouteKernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int fr_aes256_ctr_add_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vaes") ? 1 : 0;
}

#define FR_AES_TARGET __attribute__((target("aes,avx2,vaes")))

// AES-256 key expansion with AESKEYGENASSIST (FIPS-197 §5.2): each round key is the one two before it,
// prefix-XORed word by word, XOR the broadcast of one word of the assist: RotWord(SubWord(·)) ⊕ Rcon of
// the previous key's last word for even round keys (shuffle 0xff), SubWord alone for odd ones (0xaa).
FR_AES_TARGET static inline __m128i expand(__m128i twoBefore, __m128i broadcast) {
    twoBefore = _mm_xor_si128(twoBefore, _mm_slli_si128(twoBefore, 4));
    twoBefore = _mm_xor_si128(twoBefore, _mm_slli_si128(twoBefore, 4));
    twoBefore = _mm_xor_si128(twoBefore, _mm_slli_si128(twoBefore, 4));
    return _mm_xor_si128(twoBefore, broadcast);
}

#define FR_EVEN(r, rcon) rk[r] = expand(rk[r - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[r - 1], rcon), 0xff))
#define FR_ODD(r) rk[r] = expand(rk[r - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[r - 1], 0x00), 0xaa))

FR_AES_TARGET static void expand_key(const uint8_t *key, __m128i rk[15]) {
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
    FR_EVEN(2, 0x01); FR_ODD(3); FR_EVEN(4, 0x02); FR_ODD(5); FR_EVEN(6, 0x04); FR_ODD(7);
    FR_EVEN(8, 0x08); FR_ODD(9); FR_EVEN(10, 0x10); FR_ODD(11); FR_EVEN(12, 0x20); FR_ODD(13); FR_EVEN(14, 0x40);
}

#undef FR_EVEN
#undef FR_ODD

// Counter blocks 0^96 ‖ BE32(b): the block index sits in the last 32-bit word of each 128-bit lane, and this
// shuffle turns it big-endian (the other bytes are zero).
FR_AES_TARGET static inline __m256i big_endian_counters(__m256i indices) {
    const __m256i swap = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12,
                                          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12);
    return _mm256_shuffle_epi8(indices, swap);
}

// Blocks b and b + 1 as two lanes of indices (native byte order, before `big_endian_counters`).
FR_AES_TARGET static inline __m256i index_pair(uint32_t b) {
    return _mm256_setr_epi32(0, 0, 0, (int)b, 0, 0, 0, (int)(b + 1));
}

// Eight registers (16 blocks, 32 mask words) per step keep both AES units busy through the instruction's
// latency.
#define FR_AES_LANES 8

// `NAME` adds the keystream to `values` of type `WORD_T`, `PER_REG` words to a register of two blocks, with the
// lane-wise `ADD` / `SUB` of that width (64-bit words for the 64-bit ring, 32-bit for the 32-bit ring).
#define FR_CTR_ADD(NAME, WORD_T, PER_REG, ADD, SUB)                                                                    \
    FR_AES_TARGET static void NAME(const uint8_t *key, uint32_t first_block, WORD_T *values, ptrdiff_t count,          \
                                   int subtract) {                                                                     \
        __m128i rk128[15];                                                                                             \
        expand_key(key, rk128);                                                                                        \
        __m256i rk[15];                                                                                                \
        for (int r = 0; r < 15; r++) rk[r] = _mm256_broadcastsi128_si256(rk128[r]);                                    \
        uint32_t block = first_block;                                                                                  \
        ptrdiff_t i = 0;                                                                                               \
        /* Each register's pair of block indices is the previous one's plus two. */                                    \
        const __m256i two = _mm256_setr_epi32(0, 0, 0, 2, 0, 0, 0, 2);                                                 \
        __m256i pair = index_pair(block);                                                                              \
        for (; i + PER_REG * FR_AES_LANES <= count; i += PER_REG * FR_AES_LANES, block += 2 * FR_AES_LANES) {          \
            __m256i x0, x1, x2, x3, x4, x5, x6, x7;                                                                    \
            /* Round by round over the eight registers, so that eight independent instructions are in flight. */       \
            __m256i k = rk[0];                                                                                         \
            FR_NEXT(x0) FR_NEXT(x1) FR_NEXT(x2) FR_NEXT(x3) FR_NEXT(x4) FR_NEXT(x5) FR_NEXT(x6) FR_NEXT(x7)            \
            for (int r = 1; r < 14; r++) {                                                                             \
                k = rk[r];                                                                                             \
                FR_ALL(FR_ROUND)                                                                                       \
            }                                                                                                          \
            k = rk[14];                                                                                                \
            FR_ALL(FR_LAST)                                                                                            \
            __m256i *p = (__m256i *)(values + i);                                                                      \
            FR_ADD(0, x0, ADD, SUB) FR_ADD(1, x1, ADD, SUB) FR_ADD(2, x2, ADD, SUB) FR_ADD(3, x3, ADD, SUB)            \
            FR_ADD(4, x4, ADD, SUB) FR_ADD(5, x5, ADD, SUB) FR_ADD(6, x6, ADD, SUB) FR_ADD(7, x7, ADD, SUB)            \
        }                                                                                                              \
        /* The tail, two blocks at a time; the last register's words past `count` are dropped. */                      \
        for (; i < count; i += PER_REG, block += 2) {                                                                  \
            __m256i x = _mm256_xor_si256(big_endian_counters(index_pair(block)), rk[0]);                               \
            for (int r = 1; r < 14; r++) x = _mm256_aesenc_epi128(x, rk[r]);                                           \
            x = _mm256_aesenclast_epi128(x, rk[14]);                                                                   \
            WORD_T m[PER_REG];                                                                                         \
            _mm256_storeu_si256((__m256i *)m, x);                                                                      \
            for (ptrdiff_t k = 0; k < PER_REG && i + k < count; k++)                                                   \
                values[i + k] = subtract ? values[i + k] - m[k] : values[i + k] + m[k];                                \
        }                                                                                                              \
    }

#define FR_ALL(op) x0 = op(x0); x1 = op(x1); x2 = op(x2); x3 = op(x3); x4 = op(x4); x5 = op(x5); x6 = op(x6); x7 = op(x7);
#define FR_NEXT(x) x = _mm256_xor_si256(big_endian_counters(pair), k); pair = _mm256_add_epi32(pair, two);
#define FR_ROUND(x) _mm256_aesenc_epi128(x, k)
#define FR_LAST(x) _mm256_aesenclast_epi128(x, k)
#define FR_ADD(l, x, ADD, SUB) _mm256_storeu_si256(p + l, subtract ? SUB(_mm256_loadu_si256(p + l), x) : ADD(_mm256_loadu_si256(p + l), x));

FR_CTR_ADD(ctr_add_vaes, uint64_t, 4, _mm256_add_epi64, _mm256_sub_epi64)
FR_CTR_ADD(ctr_add32_vaes, uint32_t, 8, _mm256_add_epi32, _mm256_sub_epi32)

#undef FR_CTR_ADD
#undef FR_ALL
#undef FR_NEXT
#undef FR_ROUND
#undef FR_LAST
#undef FR_ADD

int fr_aes256_ctr_add(const uint8_t *key, uint32_t first_block, uint64_t *values, ptrdiff_t count, int subtract) {
    if (!fr_aes256_ctr_add_available()) return 0;
    if (count > 0) ctr_add_vaes(key, first_block, values, count, subtract);
    return 1;
}

int fr_aes256_ctr_add32(const uint8_t *key, uint32_t first_block, uint32_t *values, ptrdiff_t count, int subtract) {
    if (!fr_aes256_ctr_add_available()) return 0;
    if (count > 0) ctr_add32_vaes(key, first_block, values, count, subtract);
    return 1;
}

#else

int fr_aes256_ctr_add_available(void) { return 0; }

int fr_aes256_ctr_add(const uint8_t *key, uint32_t first_block, uint64_t *values, ptrdiff_t count, int subtract) {
    (void)key; (void)first_block; (void)values; (void)count; (void)subtract;
    return 0;
}

int fr_aes256_ctr_add32(const uint8_t *key, uint32_t first_block, uint32_t *values, ptrdiff_t count, int subtract) {
    (void)key; (void)first_block; (void)values; (void)count; (void)subtract;
    return 0;
}

#endif
