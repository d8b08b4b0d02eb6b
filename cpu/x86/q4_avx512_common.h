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

#endif
