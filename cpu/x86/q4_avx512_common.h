/* AVX-512 helpers shared by q4_avx512.c and q4_amx.c: per-group scales and
 * zero points of 16 columns of a GPTQ linear. */
#ifndef R1_Q4_AVX512_COMMON_H
#define R1_Q4_AVX512_COMMON_H

#include <immintrin.h>

#include "q4_layout.h"

/* Zero points z of 16 columns starting at n (n % 8 == 0) in group g. */
static inline __attribute__((always_inline)) __m512i zeros16(const q4p *p, int g, int n,
                                                             __mmask16 m) {
    const uint32_t *zr = p->qz + (size_t)g * (p->N / 8) + n / 8;
    __m512i w = _mm512_set1_epi32((int)zr[0]);
    if (m & 0xFF00) w = _mm512_mask_set1_epi32(w, 0xFF00, (int)zr[1]);
    const __m512i sh = _mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0);
    const __m512i f = _mm512_set1_epi32(15);
    __m512i z = _mm512_and_si512(_mm512_srlv_epi32(w, sh), f);
    if (!p->v2) z = _mm512_and_si512(_mm512_add_epi32(z, _mm512_set1_epi32(1)), f);
    return z;
}

static inline __attribute__((always_inline)) __m512 scales16(const q4p *p, int g, int n,
                                                             __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p->sc + (size_t)g * p->N + n));
}

/* The low and high nibbles of 16 words: inputs k0 k2 k4 k6 and k1 k3 k5 k7 of
 * each column, the slot order of the int8 activations. */
static inline __attribute__((always_inline)) void nibbles16(__m512i w, __m512i *lo, __m512i *hi) {
    const __m512i lo4 = _mm512_set1_epi32(0x0f0f0f0f);
    *lo = _mm512_and_si512(w, lo4);
    *hi = _mm512_and_si512(_mm512_srli_epi32(w, 4), lo4);
}

/* A group's I8X3 sums of 16 columns as floats, before the scale:
 * (2^14 a + 2^7 b + c - z * sv) * dx (kernels.h: the I8X3 layout). */
static inline __attribute__((always_inline)) __m512 x3_value(__m512i a, __m512i b, __m512i c,
                                                             __m512 z, float sv, float dx) {
    __m512 f = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(a), _mm512_set1_ps(16384.0f),
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(b), _mm512_set1_ps(128.0f), _mm512_cvtepi32_ps(c)));
    return _mm512_mul_ps(_mm512_fnmadd_ps(z, _mm512_set1_ps(sv), f), _mm512_set1_ps(dx));
}

#endif
