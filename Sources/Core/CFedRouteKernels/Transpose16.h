// A 16 × 16 transpose of 32-bit words in AVX-512 registers, shared by the kernels that hash 16 messages at once
// (SHA256LanesKernels.c, BLAKE3Kernels.c), and the interleave stages every width's transpose starts with (BLAKE3's
// AVX2 8 × 8 uses them too). Not a public header: include it after defining FR_TRANSPOSE_TARGET (the function
// attribute that enables AVX-512 F) and the type fr_v16u (__m512i).
#ifndef FR_TRANSPOSE16_H
#define FR_TRANSPOSE16_H

// The first two stages of an N-lane transpose of N rows r: 32-bit interleaves of row pairs into a, then 64-bit
// interleaves of a's pairs into b, all within 128-bit blocks. LO32/HI32/LO64/HI64 are the width's unpack intrinsics.
#define FR_TRANSPOSE_INTERLEAVE(N, r, a, b, LO32, HI32, LO64, HI64)                                                    \
    do {                                                                                                               \
        for (int i = 0; i < (N); i += 2) {                                                                             \
            a[i] = LO32(r[i], r[i + 1]);                                                                               \
            a[i + 1] = HI32(r[i], r[i + 1]);                                                                           \
        }                                                                                                              \
        for (int i = 0; i < (N); i += 4) {                                                                             \
            b[i] = LO64(a[i], a[i + 2]);                                                                               \
            b[i + 1] = HI64(a[i], a[i + 2]);                                                                           \
            b[i + 2] = LO64(a[i + 1], a[i + 3]);                                                                       \
            b[i + 3] = HI64(a[i + 1], a[i + 3]);                                                                       \
        }                                                                                                              \
    } while (0)

// r[l] holds the 16 words of lane l; afterwards w[t] holds word t of lanes 0…15. Four stages: 32-bit and 64-bit
// interleaves within 128-bit blocks, then two 128-bit block shuffles.
FR_TRANSPOSE_TARGET static inline void transpose16(const fr_v16u r[16], fr_v16u w[16]) {
    fr_v16u a[16], b[16];
    FR_TRANSPOSE_INTERLEAVE(16, r, a, b, _mm512_unpacklo_epi32, _mm512_unpackhi_epi32, _mm512_unpacklo_epi64, _mm512_unpackhi_epi64);
    for (int i = 0; i < 8; i++) {
        int q = i / 4 * 8 + i % 4;
        a[i] = _mm512_shuffle_i32x4(b[q], b[q + 4], 0x88);
        a[i + 8] = _mm512_shuffle_i32x4(b[q], b[q + 4], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        w[i] = _mm512_shuffle_i32x4(a[i], a[i + 4], 0x88);
        w[i + 8] = _mm512_shuffle_i32x4(a[i], a[i + 4], 0xDD);
        w[i + 4] = _mm512_shuffle_i32x4(a[i + 8], a[i + 12], 0x88);
        w[i + 12] = _mm512_shuffle_i32x4(a[i + 8], a[i + 12], 0xDD);
    }
}

#endif
