/* AVX-512 kernels (F, BW, VL, DQ, VNNI): GPTQ int4 matmuls, dense F16/BF16/F32
 * heads and the 8-bit head.
 *
 * Layouts: the checkpoint's qweight is [K/8][N] words, word (r, n) holding inputs
 * 8r..8r+7 of column n, one nibble each; the prepared layout (kernels.h) stores
 * 64-column panels [K/8][64] one after the other. Either way a 512-bit load of
 * 16 words of a row is 16 columns x 8 inputs, so kernels vectorize over columns
 * and walk rows; a "block" is up to 64 columns of one panel with a fixed row
 * stride (N in the checkpoint layout, the panel width when prepared).
 *
 * Decode is bound by memory bandwidth, so instructions per weight byte decide:
 *  - I8X3 (the default when activations are prepared): a word's low nibbles
 *    (w & 0x0f0f0f0f: inputs 0,2,4,6) and high nibbles are unsigned bytes for
 *    vpdpbusd against three int8 digits of 22-bit activations: 8 instructions
 *    per 64 bytes of weights instead of 24 for float FMAs.
 *  - F32 (exact, no preparation): nibble j is shifted to mantissa bits 19..22 and
 *    OR-ed into 1.0's exponent (one shift, one vpternlogd) giving 1 + q/16, so
 *      sum_k x_k (q_k - z) = 16 sum_k x_k (1 + q_k/16) - (16 + z) sum_k x_k
 *    and the scale is applied once per group. Batched F32 dequantizes each row
 *    exactly instead: s*(16+q) - s*(16+z) is exact in float32.
 *  - I8: one digit, the batched (prompt) path; weights are unpacked once per
 *    row and reused by up to 8 tokens.
 * Software prefetch runs 8 KiB ahead in a panel (32 rows) into L2 (T1): hardware
 * prefetchers alone leave too few misses in flight while the loop is busy
 * computing, and prefetches into L1 hold its few fill buffers (on this 2-core
 * Xeon, 14b decode: T1 ~10% faster than T0 over 12 interleaved runs). */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "q4_avx512_common.h"
#include "q4_layout.h"

/* Horizontal int32 sum with wrapping adds: GCC's _mm512_reduce_add_epi32 adds as
 * signed ints, which is undefined (and flagged by UBSan) when garbage inputs such
 * as NaN activations make it overflow. */
static inline int32_t hsum_epi32(__m512i v) {
    __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
    return _mm_cvtsi128_si32(b);
}

#define AI static inline __attribute__((always_inline))
#ifndef PF_PANEL_WORDS
#define PF_PANEL_WORDS 2048 /* prefetch distance in a panel: 8 KiB (0: none) */
#endif
#define PF_ROWS 10 /* ... in the checkpoint layout, where rows are N words apart */

AI __mmask16 lanes(int cols) {
    return cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
}

/* End of the block that starts at n: at most `width` columns, never across a panel. */
AI int block_end(const q4p *p, int n, int n1, int width) {
    int e = q4p_panel_end(p, n);
    if (e > n + width) e = n + width;
    return e < n1 ? e : n1;
}

AI void prefetch_row(const q4p *p, const uint32_t *row, size_t stride, int cv) {
    if (PF_PANEL_WORDS == 0 && p->panel) return;
    const uint32_t *a = row + (p->panel ? (size_t)PF_PANEL_WORDS : PF_ROWS * stride);
    for (int c = 0; c < cv; c++) _mm_prefetch((const char *)(a + 16 * c), _MM_HINT_T1);
}

/* 1 + q/16 for nibble j of every word (j is a constant after unrolling). */
AI __m512 nib(__m512i w, int j) {
    const __m512i m = _mm512_set1_epi32(0x00780000), one = _mm512_set1_epi32(0x3f800000);
    __m512i s = j <= 4 ? _mm512_slli_epi32(w, 19 - 4 * j) : _mm512_srli_epi32(w, 4 * j - 19);
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(s, m, one, 0xEA)); /* (s & m) | one */
}

AI float group_sum(const float *x, int G) {
    __m256 s = _mm256_setzero_ps();
    for (int i = 0; i < G; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

AI __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

AI __mmask16 vec_mask(int c, int cv, __mmask16 mlast) {
    return c == cv - 1 ? mlast : (__mmask16)0xFFFF;
}

/* Runs CALL(cv, mlast) with cv a constant for each block of up to 64 (FOR_BLOCKS)
 * or 32 (FOR_BLOCKS32) columns in [n0, n1) of the layout *P; mlast masks the last
 * vector. */
#define BLOCK_HEAD(P, n0, n1, width)                                                               \
    for (int n = (n0), e_; n < (n1); n = e_) {                                                     \
        e_ = block_end((P), n, (n1), (width));                                                     \
        int cv_ = (e_ - n + 15) / 16;                                                              \
        __mmask16 ml_ = lanes(e_ - n - 16 * (cv_ - 1));
#define FOR_BLOCKS(P, n0, n1, CALL)                                                                \
    BLOCK_HEAD(P, n0, n1, 64)                                                                      \
    switch (cv_) {                                                                                 \
    case 4:                                                                                        \
        CALL(4, ml_);                                                                              \
        break;                                                                                     \
    case 3:                                                                                        \
        CALL(3, ml_);                                                                              \
        break;                                                                                     \
    case 2:                                                                                        \
        CALL(2, ml_);                                                                              \
        break;                                                                                     \
    default:                                                                                       \
        CALL(1, ml_);                                                                              \
        break;                                                                                     \
    }                                                                                              \
    }
#define FOR_BLOCKS32(P, n0, n1, CALL)                                                              \
    BLOCK_HEAD(P, n0, n1, 32)                                                                      \
    if (cv_ == 2)                                                                                  \
        CALL(2, ml_);                                                                              \
    else                                                                                           \
        CALL(1, ml_);                                                                              \
    }

/* ---- F32 decode, natural groups: 1 + q/16 floats, scale per group ---- */

AI void gemv_f32(const q4p *p, const float *x, float *y, int n, int cv, __mmask16 mlast) {
    __m512 yv[4], a0[4], a1[4];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int rpg = p->G / 8;
    for (int c = 0; c < cv; c++) yv[c] = _mm512_setzero_ps();
    for (int g = 0; g < p->ng; g++) {
        for (int c = 0; c < cv; c++) a0[c] = a1[c] = _mm512_setzero_ps();
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            const float *xk = x + 8 * r;
            prefetch_row(p, row, st, cv);
            for (int c = 0; c < cv; c++) {
                __m512i w = _mm512_maskz_loadu_epi32(vec_mask(c, cv, mlast), row + 16 * c);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j += 2) {
                    a0[c] = _mm512_fmadd_ps(_mm512_set1_ps(xk[j]), nib(w, j), a0[c]);
                    a1[c] = _mm512_fmadd_ps(_mm512_set1_ps(xk[j + 1]), nib(w, j + 1), a1[c]);
                }
            }
        }
        __m512 sx = _mm512_set1_ps(group_sum(x + (size_t)g * p->G, p->G));
        for (int c = 0; c < cv; c++) {
            __mmask16 m = vec_mask(c, cv, mlast);
            __m512 z16 = _mm512_add_ps(_mm512_cvtepi32_ps(zeros16(p, g, n + 16 * c, m)),
                                       _mm512_set1_ps(16.0f));
            __m512 d = _mm512_fmsub_ps(_mm512_add_ps(a0[c], a1[c]), _mm512_set1_ps(16.0f),
                                       _mm512_mul_ps(z16, sx));
            yv[c] = _mm512_fmadd_ps(scales16(p, g, n + 16 * c, m), d, yv[c]);
        }
    }
    for (int c = 0; c < cv; c++)
        _mm512_mask_storeu_ps(y + n + 16 * c, vec_mask(c, cv, mlast), yv[c]);
}

/* ---- F32 batched / act-order: exact per-row dequantization ---- */

/* Per group and column of a 32-column block: 16*s and -(16+z)*s, so w = (1 + q/16)*s16 + zs. */
typedef struct rowtab {
    float *s16, *zs; /* [ng][32] */
} rowtab;

static void rowtab_fill(const q4p *p, rowtab *t, int n, int cv, __mmask16 mlast) {
    for (int g = 0; g < p->ng; g++)
        for (int c = 0; c < cv; c++) {
            __mmask16 m = vec_mask(c, cv, mlast);
            __m512 s = scales16(p, g, n + 16 * c, m);
            __m512 z16 = _mm512_add_ps(_mm512_cvtepi32_ps(zeros16(p, g, n + 16 * c, m)),
                                       _mm512_set1_ps(16.0f));
            _mm512_storeu_ps(t->s16 + g * 32 + 16 * c, _mm512_mul_ps(s, _mm512_set1_ps(16.0f)));
            _mm512_storeu_ps(t->zs + g * 32 + 16 * c,
                             _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), z16), s));
        }
}

AI int group_of(const q4p *p, int k) {
    return p->gi ? p->gi[k] : k / p->G;
}

/* y rows t0..t0+tb x columns [n, n+16cv) over all K, accumulators in registers. */
AI void rows_block(const q4p *p, const rowtab *tab, const float *x, float *y, int t0, int tb, int n,
                   int cv, __mmask16 mlast) {
    __m512 acc[8][2];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int K = p->K;
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++) acc[t][c] = _mm512_setzero_ps();
    const float *xt = x + (size_t)t0 * K;
    for (int r = 0; r < K / 8; r++) {
        const uint32_t *row = base + (size_t)r * st;
        __m512i wv[2];
        prefetch_row(p, row, st, cv);
        for (int c = 0; c < cv; c++)
            wv[c] = _mm512_maskz_loadu_epi32(vec_mask(c, cv, mlast), row + 16 * c);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            int k = 8 * r + j, g = group_of(p, k);
            for (int c = 0; c < cv; c++) {
                __m512 w =
                    _mm512_fmadd_ps(nib(wv[c], j), _mm512_loadu_ps(tab->s16 + g * 32 + 16 * c),
                                    _mm512_loadu_ps(tab->zs + g * 32 + 16 * c));
                for (int t = 0; t < tb; t++)
                    acc[t][c] =
                        _mm512_fmadd_ps(_mm512_set1_ps(xt[(size_t)t * K + k]), w, acc[t][c]);
            }
        }
    }
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++)
            _mm512_mask_storeu_ps(y + (size_t)(t0 + t) * p->N + n + 16 * c, vec_mask(c, cv, mlast),
                                  acc[t][c]);
}

AI void rows_tblocks(const q4p *p, const rowtab *tab, const float *x, float *y, int T, int n,
                     int cv, __mmask16 ml) {
    int t = 0;
    for (; t + 8 <= T; t += 8) rows_block(p, tab, x, y, t, 8, n, cv, ml);
    if (t + 4 <= T) rows_block(p, tab, x, y, t, 4, n, cv, ml), t += 4;
    if (t + 2 <= T) rows_block(p, tab, x, y, t, 2, n, cv, ml), t += 2;
    if (t < T) rows_block(p, tab, x, y, t, 1, n, cv, ml);
}

static void rows_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    float stack[2 * 32 * 64];
    size_t need = (size_t)2 * 32 * p->ng;
    float *buf = need <= sizeof stack / sizeof *stack ? stack : malloc(need * sizeof(float));
    if (!buf) return q4p_range_portable(p, x, T, y, n0, n1); /* exhausted heap: slow, exact */
    rowtab tab = {buf, buf + 32 * p->ng};
#define ROWS_CALL(cv, ml)                                                                          \
    (rowtab_fill(p, &tab, n, cv, ml), rows_tblocks(p, &tab, x, y, T, n, cv, ml))
    FOR_BLOCKS32(p, n0, n1, ROWS_CALL)
#undef ROWS_CALL
    if (buf != stack) free(buf);
}

static void f32_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    if (T == 1 && !p->gi && p->G % 8 == 0) {
#define GEMV_CALL(cv, ml) gemv_f32(p, x, y, n, cv, ml)
        FOR_BLOCKS(p, n0, n1, GEMV_CALL)
#undef GEMV_CALL
    } else {
        rows_range(p, x, T, y, n0, n1);
    }
}

static void q4_matmul_avx512(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1) {
    q4p p = q4p_of(q);
    q4p_matmul(&p, x, T, y, n0, n1, f32_range);
}

/* ---- prepared activations ---- */

/* |x| max of a group's (gathered) inputs, and the gathered copy. */
AI float load_group(const q4p *p, const float *xt, int g, float *xs) {
    __m512 mx = _mm512_setzero_ps();
    const float *src = xt + (size_t)g * p->G;
    for (int i = 0; i < p->G; i += 16) {
        __mmask16 m = lanes(p->G - i);
        __m512 v;
        if (p->perm)
            v = _mm512_mask_i32gather_ps(
                _mm512_setzero_ps(), m, _mm512_maskz_loadu_epi32(m, p->perm + g * p->G + i), xt, 4);
        else
            v = _mm512_maskz_loadu_ps(m, src + i);
        _mm512_mask_storeu_ps(xs + i, m, v);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(v));
    }
    return _mm512_reduce_max_ps(mx);
}

/* v = a*2^14 + b*2^7 + c digit split of 16 int32 lanes (b, c in [-64, 63]). */
AI void split3(__m512i v, __m512i *a, __m512i *b, __m512i *c) {
    const __m512i k64 = _mm512_set1_epi32(64), k127 = _mm512_set1_epi32(127);
    __m512i lo = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(v, k64), k127), k64);
    __m512i v1 = _mm512_srai_epi32(_mm512_sub_epi32(v, lo), 7);
    __m512i mid = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(v1, k64), k127), k64);
    *c = lo, *b = mid, *a = _mm512_srai_epi32(_mm512_sub_epi32(v1, mid), 7);
}

static void act_prep_unit(const q4p *p, const float *x, int T, r1_q4_act mode, int t, int g,
                          void *xa, size_t tail_off) {
    const int K = p->K, G = p->G, ng = p->ng;
    const __m512i perm = _mm512_set_epi32(15, 13, 11, 9, 14, 12, 10, 8, 7, 5, 3, 1, 6, 4, 2, 0);
    float xs[G];
    float amax = load_group(p, x + (size_t)t * K, g, xs);
    if (mode == R1_Q4_F32) {
        memcpy((float *)xa + (size_t)t * K + (size_t)g * G, xs, (size_t)G * sizeof(float));
        return;
    }
    float lim = mode == R1_Q4_I8 ? 127.0f : 127.0f * 16384.0f, id = amax > 0 ? lim / amax : 0.0f;
    __m512i sum = _mm512_setzero_si512();
    for (int i = 0; i < G; i += 16) {
        __mmask16 m = lanes(G - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xs + i), _mm512_set1_ps(id));
        __m512i qv = _mm512_permutexvar_epi32(perm, _mm512_cvtps_epi32(v)); /* slot order */
        sum = _mm512_add_epi32(sum, qv);
        int kk = g * G + i;
        if (mode == R1_Q4_I8) {
            _mm_mask_storeu_epi8((int8_t *)xa + (size_t)t * K + kk, m, _mm512_cvtepi32_epi8(qv));
        } else {
            __m512i a, b, c;
            split3(qv, &a, &b, &c);
            int8_t *blk = (int8_t *)xa + ((size_t)t * (K / 8) + kk / 8) * 24;
            __m128i a8 = _mm512_cvtepi32_epi8(a), b8 = _mm512_cvtepi32_epi8(b),
                    c8 = _mm512_cvtepi32_epi8(c);
            _mm_storel_epi64((__m128i *)blk, a8), _mm_storel_epi64((__m128i *)(blk + 8), b8);
            _mm_storel_epi64((__m128i *)(blk + 16), c8);
            if (m & 0xFF00) {
                _mm_storel_epi64((__m128i *)(blk + 24), _mm_unpackhi_epi64(a8, a8));
                _mm_storel_epi64((__m128i *)(blk + 32), _mm_unpackhi_epi64(b8, b8));
                _mm_storel_epi64((__m128i *)(blk + 40), _mm_unpackhi_epi64(c8, c8));
            }
        }
    }
    float *tail = (float *)((char *)xa + tail_off);
    int s = hsum_epi32(sum);
    tail[(size_t)t * ng + g] = amax / lim;
    tail[(size_t)(T + t) * ng + g] = mode == R1_Q4_I8 ? amax / lim * (float)s : (float)s;
}

static void act_prep_avx512(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0,
                            int u1, void *xa) {
    q4p p = q4p_of(q);
    if (mode == R1_Q4_F32 && !p.perm) return;
    size_t off = r1__q4_act_tail_offset(q, T, mode);
    for (int u = u0; u < u1; u++) act_prep_unit(&p, x, T, mode, u / p.ng, u % p.ng, xa, off);
}

/* I8X3 decode of one token: three int32 sums per column vector and group. */
AI void x3_block(const q4p *p, const int8_t *xd, const float *dx, const float *sv, float *y, int n,
                 int cv, __mmask16 mlast) {
    const int rpg = p->G / 8;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    __m512 yv[4];
    for (int c = 0; c < cv; c++) yv[c] = _mm512_setzero_ps();
    for (int g = 0; g < p->ng; g++) {
        __m512i aa[4], ab[4], ac[4];
        for (int c = 0; c < cv; c++) aa[c] = ab[c] = ac[c] = _mm512_setzero_si512();
        if (g + 1 < p->ng) { /* the next group's scales and zeros, a group ahead */
            _mm_prefetch((const char *)(p->sc + (size_t)(g + 1) * p->N + n), _MM_HINT_T0);
            _mm_prefetch((const char *)(p->sc + (size_t)(g + 1) * p->N + n + 32), _MM_HINT_T0);
            _mm_prefetch((const char *)(p->qz + (size_t)(g + 1) * (p->N / 8) + n / 8), _MM_HINT_T0);
        }
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            const int8_t *d = xd + (size_t)r * 24;
            prefetch_row(p, row, st, cv);
            __m512i al = bcast4(d), ah = bcast4(d + 4), bl = bcast4(d + 8), bh = bcast4(d + 12);
            __m512i cl = bcast4(d + 16), ch = bcast4(d + 20);
            for (int c = 0; c < cv; c++) {
                __m512i lo, hi;
                nibbles16(_mm512_maskz_loadu_epi32(vec_mask(c, cv, mlast), row + 16 * c), &lo, &hi);
                aa[c] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(aa[c], lo, al), hi, ah);
                ab[c] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ab[c], lo, bl), hi, bh);
                ac[c] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ac[c], lo, cl), hi, ch);
            }
        }
        for (int c = 0; c < cv; c++) {
            __mmask16 m = vec_mask(c, cv, mlast);
            __m512 f = x3_value(aa[c], ab[c], ac[c],
                                _mm512_cvtepi32_ps(zeros16(p, g, n + 16 * c, m)), sv[g], dx[g]);
            yv[c] = _mm512_fmadd_ps(scales16(p, g, n + 16 * c, m), f, yv[c]);
        }
    }
    for (int c = 0; c < cv; c++)
        _mm512_mask_storeu_ps(y + n + 16 * c, vec_mask(c, cv, mlast), yv[c]);
}

/* I8X3 for tb tokens x cv column vectors (batches): each row's nibbles are
 * unpacked once for all tokens; the group's sums are scaled into y. */
AI void x3_tblock(const q4p *p, const int8_t *xa, const float *dx, const float *sv, float *y,
                  int t0, int tb, int n, int cv, __mmask16 mlast) {
    const int K = p->K, rpg = p->G / 8, ng = p->ng;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    for (int g = 0; g < ng; g++) {
        __m512i aa[2][2], ab[2][2], ac[2][2];
        for (int t = 0; t < tb; t++)
            for (int c = 0; c < cv; c++) aa[t][c] = ab[t][c] = ac[t][c] = _mm512_setzero_si512();
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            __m512i lo[2], hi[2];
            prefetch_row(p, row, st, cv);
            for (int c = 0; c < cv; c++)
                nibbles16(_mm512_maskz_loadu_epi32(vec_mask(c, cv, mlast), row + 16 * c), &lo[c],
                          &hi[c]);
            for (int t = 0; t < tb; t++) {
                const int8_t *d = xa + ((size_t)(t0 + t) * (K / 8) + r) * 24;
                for (int c = 0; c < cv; c++) {
                    aa[t][c] = _mm512_dpbusd_epi32(aa[t][c], lo[c], bcast4(d));
                    aa[t][c] = _mm512_dpbusd_epi32(aa[t][c], hi[c], bcast4(d + 4));
                    ab[t][c] = _mm512_dpbusd_epi32(ab[t][c], lo[c], bcast4(d + 8));
                    ab[t][c] = _mm512_dpbusd_epi32(ab[t][c], hi[c], bcast4(d + 12));
                    ac[t][c] = _mm512_dpbusd_epi32(ac[t][c], lo[c], bcast4(d + 16));
                    ac[t][c] = _mm512_dpbusd_epi32(ac[t][c], hi[c], bcast4(d + 20));
                }
            }
        }
        for (int c = 0; c < cv; c++) {
            __mmask16 m = vec_mask(c, cv, mlast);
            __m512 s = scales16(p, g, n + 16 * c, m);
            __m512 z = _mm512_cvtepi32_ps(zeros16(p, g, n + 16 * c, m));
            for (int t = 0; t < tb; t++) {
                size_t i = (size_t)(t0 + t) * ng + g;
                float *yp = y + (size_t)(t0 + t) * p->N + n + 16 * c;
                __m512 f = x3_value(aa[t][c], ab[t][c], ac[t][c], z, sv[i], dx[i]);
                __m512 yv = g ? _mm512_maskz_loadu_ps(m, yp) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(yp, m, _mm512_fmadd_ps(s, f, yv));
            }
        }
    }
}

/* Token pairs: four tokens' 24 accumulators spill (measured 1.6x faster than
 * one token at a time with pairs, 1.3x with fours). */
AI void x3_tblocks(const q4p *p, const int8_t *xa, const float *dx, const float *sv, int T,
                   float *y, int n, int cv, __mmask16 ml) {
    int t = 0;
    for (; t + 2 <= T; t += 2) x3_tblock(p, xa, dx, sv, y, t, 2, n, cv, ml);
    if (t < T) x3_tblock(p, xa, dx, sv, y, t, 1, n, cv, ml);
}

/* I8 for tb tokens x cv column vectors, one group at a time; weights unpacked
 * once per row for all tokens, the group's int32 sums scaled into y. */
AI void i8_block(const q4p *p, const int8_t *xq, const float *dx, const float *dxs, float *y,
                 int t0, int tb, int n, int cv, __mmask16 mlast) {
    const int K = p->K, rpg = p->G / 8, ng = p->ng;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    for (int g = 0; g < ng; g++) {
        __m512i acc[8][2];
        for (int t = 0; t < tb; t++)
            for (int c = 0; c < cv; c++) acc[t][c] = _mm512_setzero_si512();
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            __m512i lo[2], hi[2];
            prefetch_row(p, row, st, cv);
            for (int c = 0; c < cv; c++)
                nibbles16(_mm512_maskz_loadu_epi32(vec_mask(c, cv, mlast), row + 16 * c), &lo[c],
                          &hi[c]);
            for (int t = 0; t < tb; t++) {
                const int8_t *xr = xq + (size_t)(t0 + t) * K + 8 * r;
                __m512i xl = bcast4(xr), xh = bcast4(xr + 4);
                for (int c = 0; c < cv; c++)
                    acc[t][c] =
                        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[t][c], lo[c], xl), hi[c], xh);
            }
        }
        for (int c = 0; c < cv; c++) {
            __mmask16 m = vec_mask(c, cv, mlast);
            __m512 s = scales16(p, g, n + 16 * c, m),
                   z = _mm512_cvtepi32_ps(zeros16(p, g, n + 16 * c, m));
            for (int t = 0; t < tb; t++) {
                size_t i = (size_t)(t0 + t) * ng + g;
                float *yp = y + (size_t)(t0 + t) * p->N + n + 16 * c;
                __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[t][c]), _mm512_set1_ps(dx[i]));
                f = _mm512_fnmadd_ps(z, _mm512_set1_ps(dxs[i]), f);
                __m512 yv = g ? _mm512_maskz_loadu_ps(m, yp) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(yp, m, _mm512_fmadd_ps(s, f, yv));
            }
        }
    }
}

AI void i8_tblocks(const q4p *p, const int8_t *xq, const float *dx, const float *dxs, int T,
                   float *y, int n, int cv, __mmask16 ml) {
    int t = 0;
    for (; t + 8 <= T; t += 8) i8_block(p, xq, dx, dxs, y, t, 8, n, cv, ml);
    if (t + 4 <= T) i8_block(p, xq, dx, dxs, y, t, 4, n, cv, ml), t += 4;
    if (t + 2 <= T) i8_block(p, xq, dx, dxs, y, t, 2, n, cv, ml), t += 2;
    if (t < T) i8_block(p, xq, dx, dxs, y, t, 1, n, cv, ml);
}

static void matmul_act_avx512(const r1_qlinear *q, const float *x, const void *xa, int T,
                              r1_q4_act mode, float *y, int n0, int n1) {
    q4p p = q4p_of(q);
    if (mode == R1_Q4_F32) {
        const float *xin = p.perm ? xa : x;
        p.perm = NULL;
        f32_range(&p, xin, T, y, n0, n1);
        return;
    }
    const float *tail = (const float *)((const char *)xa + r1__q4_act_tail_offset(q, T, mode));
    const float *dx = tail, *second = tail + (size_t)T * p.ng;
    if (mode == R1_Q4_I8) {
#define I8_CALL(cv, ml) i8_tblocks(&p, xa, dx, second, T, y, n, cv, ml)
        FOR_BLOCKS32(&p, n0, n1, I8_CALL)
#undef I8_CALL
        return;
    }
    if (T > 1) {
#define X3T_CALL(cv, ml) x3_tblocks(&p, xa, dx, second, T, y, n, cv, ml)
        FOR_BLOCKS32(&p, n0, n1, X3T_CALL)
#undef X3T_CALL
        return;
    }
    for (int t = 0; t < T; t++) {
        const int8_t *xd = (const int8_t *)xa + (size_t)t * (p.K / 8) * 24;
        float *yt = y + (size_t)t * p.N;
        const float *dxt = dx + (size_t)t * p.ng, *svt = second + (size_t)t * p.ng;
#define X3_CALL(cv, ml) x3_block(&p, xd, dxt, svt, yt, n, cv, ml)
        FOR_BLOCKS(&p, n0, n1, X3_CALL)
#undef X3_CALL
    }
}

/* ---- dense rows: F16 / BF16 / F32 / int8 ---- */

enum { D_F32, D_F16, D_BF16, D_I8 };

AI __m512 load_w(const void *w, int type, size_t i, __mmask16 m) {
    switch (type) {
    case D_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i));
    case D_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i)), 16));
    case D_I8:
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t *)w + i)));
    default:
        return _mm512_maskz_loadu_ps(m, (const float *)w + i);
    }
}

/* rb weight rows x tb tokens; sums reduced per (token, row) at the end. */
AI void dense_block(const void *w, int type, const float *x, float *y, int64_t N, int64_t K, int t0,
                    int tb, int64_t n, int rb, const float *rs) {
    __m512 acc[4][4];
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) acc[t][i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
        __mmask16 m = lanes((int)(K - k < 16 ? K - k : 16));
        __m512 wv[4];
        for (int i = 0; i < rb; i++) wv[i] = load_w(w, type, (size_t)(n + i) * K + k, m);
        for (int t = 0; t < tb; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + (size_t)(t0 + t) * K + k);
            for (int i = 0; i < rb; i++) acc[t][i] = _mm512_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) {
            float v = _mm512_reduce_add_ps(acc[t][i]);
            y[(size_t)(t0 + t) * N + n + i] = rs ? v * rs[n + i] : v;
        }
}

AI void dense_range(const void *w, int type, const float *x, int T, float *y, int64_t N, int64_t K,
                    int n0, int n1, const float *rs) {
    for (int t = 0; t < T; t += 4) {
        int tb = T - t < 4 ? T - t : 4;
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) {
            switch (tb) {
            case 4:
                dense_block(w, type, x, y, N, K, t, 4, n, 4, rs);
                break;
            case 3:
                dense_block(w, type, x, y, N, K, t, 3, n, 4, rs);
                break;
            case 2:
                dense_block(w, type, x, y, N, K, t, 2, n, 4, rs);
                break;
            default:
                dense_block(w, type, x, y, N, K, t, 1, n, 4, rs);
                break;
            }
        }
        for (; n < n1; n++)
            for (int i = 0; i < tb; i++) dense_block(w, type, x, y, N, K, t + i, 1, n, 1, rs);
    }
}

static void dense_matmul_avx512(const r1_tensor *w, const float *x, int T, float *y, int n0,
                                int n1) {
    int64_t N = w->ne[0], K = w->ne[1];
    switch (w->type) {
    case R1_F16:
        dense_range(w->data, D_F16, x, T, y, N, K, n0, n1, NULL);
        break;
    case R1_BF16:
        dense_range(w->data, D_BF16, x, T, y, N, K, n0, n1, NULL);
        break;
    default:
        dense_range(w->data, D_F32, x, T, y, N, K, n0, n1, NULL);
        break;
    }
}

/* ---- 8-bit rows with VNNI: the activation row as three int8 digits (22 bits,
 * one scale per row), weights flipped to unsigned (q + 128) for vpdpbusd; the
 * 128 * sum(v) that the flip adds is subtracted at the end. ---- */

typedef struct q8x {
    int8_t *d;     /* [3][K] digits a, b, c of v = a*2^14 + b*2^7 + c */
    double dx, sv; /* x ~= dx * v; sum of v */
} q8x;

static void q8x_prep(const float *x, int64_t K, q8x *o) {
    __m512 mx = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16)
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes((int)(K - k)), x + k)));
    float amax = _mm512_reduce_max_ps(mx), lim = 127.0f * 16384.0f,
          id = amax > 0 ? lim / amax : 0.0f;
    __m512i sum = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 16) {
        __mmask16 m = lanes((int)(K - k));
        __m512i v = _mm512_cvtps_epi32(
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), _mm512_set1_ps(id))),
                a, b, c;
        sum = _mm512_add_epi32(sum, v);
        split3(v, &a, &b, &c);
        _mm_mask_storeu_epi8(o->d + k, m, _mm512_cvtepi32_epi8(a));
        _mm_mask_storeu_epi8(o->d + K + k, m, _mm512_cvtepi32_epi8(b));
        _mm_mask_storeu_epi8(o->d + 2 * K + k, m, _mm512_cvtepi32_epi8(c));
    }
    o->dx = amax / lim, o->sv = (double)hsum_epi32(sum);
}

/* rb rows starting at n against one prepared activation row. */
AI void q8_rows(const r1_q8_rows *w, const q8x *xd, float *y, int64_t n, int rb) {
    const int64_t K = w->K;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i aa[4], ab[4], ac[4];
    for (int i = 0; i < rb; i++) aa[i] = ab[i] = ac[i] = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 64) {
        __mmask64 m = K - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (K - k)) - 1);
        __m512i da = _mm512_maskz_loadu_epi8(m, xd->d + k),
                db = _mm512_maskz_loadu_epi8(m, xd->d + K + k);
        __m512i dc = _mm512_maskz_loadu_epi8(m, xd->d + 2 * K + k);
        for (int i = 0; i < rb; i++) {
            const int8_t *row = w->q + (n + i) * K + k;
            /* the next 4-row block, same offset, into L2: 4 KiB ahead in the row
             * (T0) mostly fetched the next row's already-read start */
            _mm_prefetch((const char *)(row + 4 * K), _MM_HINT_T1);
            __m512i u = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, row),
                                         flip); /* masked lanes: digits 0 */
            aa[i] = _mm512_dpbusd_epi32(aa[i], u, da);
            ab[i] = _mm512_dpbusd_epi32(ab[i], u, db);
            ac[i] = _mm512_dpbusd_epi32(ac[i], u, dc);
        }
    }
    for (int i = 0; i < rb; i++) {
        double s = 16384.0 * hsum_epi32(aa[i]) + 128.0 * hsum_epi32(ab[i]) +
                   (double)hsum_epi32(ac[i]) - 128.0 * xd->sv;
        y[n + i] = (float)(s * xd->dx * w->d[n + i]);
    }
}

static void q8_matmul_avx512(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1) {
    const int64_t K = w->K;
    int8_t stack[3 * 8192];
    q8x xd = {(size_t)3 * K <= sizeof stack ? stack : malloc((size_t)3 * K), 0, 0};
    if (!xd.d) /* exhausted heap: the portable rows, which need no memory */
        return r1__cpu_q8_matmul(&r1__cpu_kernels_scalar, w, x, T, y, n0, n1);
    for (int t = 0; t < T; t++) {
        q8x_prep(x + (size_t)t * K, K, &xd);
        float *yt = y + (size_t)t * w->N;
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) q8_rows(w, &xd, yt, n, 4);
        for (; n < n1; n++) q8_rows(w, &xd, yt, n, 1);
    }
    if (xd.d != stack) free(xd.d);
}

const r1_cpu_kernels r1__cpu_kernels_avx512 = {
    .name = "avx512",
    .q4_matmul = q4_matmul_avx512,
    .dense_matmul = dense_matmul_avx512,
    .col_align = 16,
    .q4_act_bytes = r1__q4_act_bytes_std,
    .q4_act_prep = act_prep_avx512,
    .q4_matmul_act = matmul_act_avx512,
    .q8_matmul = q8_matmul_avx512,
};
