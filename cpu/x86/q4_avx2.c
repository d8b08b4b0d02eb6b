/* AVX2 + FMA + F16C kernels: GPTQ int4 matmuls, dense F16/BF16/F32 heads and
 * the 8-bit head, for x86 CPUs without AVX-512 (col_align 8 = one ymm of words).
 *
 * Same designs as cpu/x86/q4_avx512.c (read its header comment) with 8-column
 * vectors. Without VNNI the int8 dot products are vpmaddubsw (u8 nibbles x s8
 * digits; two products of at most 15 * 127 never saturate int16, nor does the
 * sum of a word's low and high halves) followed by vpmaddwd against ones.
 * N is a multiple of 8, so blocks never need masks.
 *
 * Panels are 32 columns wide (panel_cols): the I8X3 decode block covers 32
 * columns (12 accumulators in 16 ymm registers), and in 64-column panels its
 * two passes each read half of every 256-byte row. On a 2-core Zen 3 that
 * reached 55-69% of the read probe (test_kernels bench decode, 14b shapes);
 * reading 32-column panels front to back, 87-103%. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "q4_layout.h"

#define AI static inline __attribute__((always_inline))
#define PF_PANEL_WORDS 2048 /* prefetch distance in a panel: 8 KiB (into L2, as q4_avx512.c) */
#define PF_ROWS 10          /* ... in the checkpoint layout, where rows are N words apart */

/* End of the block that starts at n: at most `width` columns, never across a panel. */
AI int block_end(const q4p *p, int n, int n1, int width) {
    int e = q4p_panel_end(p, n);
    if (e > n + width) e = n + width;
    return e < n1 ? e : n1;
}

AI void prefetch_row(const q4p *p, const uint32_t *row, size_t stride, int cv) {
    const uint32_t *a = row + (p->panel ? (size_t)PF_PANEL_WORDS : PF_ROWS * stride);
    for (int c = 0; c < cv; c += 2) _mm_prefetch((const char *)(a + 8 * c), _MM_HINT_T1);
}

/* Zero points of the 8 columns starting at n (n % 8 == 0) in group g. */
AI __m256i zeros8(const q4p *p, int g, int n) {
    __m256i w = _mm256_set1_epi32((int)q4p_zword(p, g, n));
    const __m256i f = _mm256_set1_epi32(15);
    __m256i z =
        _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)), f);
    if (!p->v2) z = _mm256_and_si256(_mm256_add_epi32(z, _mm256_set1_epi32(1)), f);
    return z;
}

AI __m256 scales8(const q4p *p, int g, int n) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)q4p_scales(p, g, n)));
}

/* 1 + q/16 for nibble j of every word (j is a constant after unrolling). */
AI __m256 nib(__m256i w, int j) {
    const __m256i m = _mm256_set1_epi32(0x00780000), one = _mm256_set1_epi32(0x3f800000);
    __m256i s = j <= 4 ? _mm256_slli_epi32(w, 19 - 4 * j) : _mm256_srli_epi32(w, 4 * j - 19);
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(s, m), one));
}

AI float hsum8(__m256 s) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

AI int hsum8i(__m256i s) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

AI float group_sum(const float *x, int G) {
    __m256 s = _mm256_setzero_ps();
    for (int i = 0; i < G; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    return hsum8(s);
}

AI __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Runs CALL(cv) with cv a constant for each block of up to 32 (FOR_BLOCKS) or 16
 * (FOR_BLOCKS16) columns in [n0, n1) of the layout *P. */
#define FOR_BLOCKS(P, n0, n1, CALL)                                                                \
    for (int n = (n0), e_; n < (n1); n = e_) {                                                     \
        e_ = block_end((P), n, (n1), 32);                                                          \
        switch ((e_ - n) / 8) {                                                                    \
        case 4:                                                                                    \
            CALL(4);                                                                               \
            break;                                                                                 \
        case 3:                                                                                    \
            CALL(3);                                                                               \
            break;                                                                                 \
        case 2:                                                                                    \
            CALL(2);                                                                               \
            break;                                                                                 \
        default:                                                                                   \
            CALL(1);                                                                               \
            break;                                                                                 \
        }                                                                                          \
    }
#define FOR_BLOCKS16(P, n0, n1, CALL)                                                              \
    for (int n = (n0), e_; n < (n1); n = e_) {                                                     \
        e_ = block_end((P), n, (n1), 16);                                                          \
        if (e_ - n == 16)                                                                          \
            CALL(2);                                                                               \
        else                                                                                       \
            CALL(1);                                                                               \
    }

/* ---- F32 decode, natural groups ---- */

AI void gemv_f32(const q4p *p, const float *x, float *y, int n, int cv) {
    __m256 yv[4], a[4];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int rpg = p->G / 8;
    for (int c = 0; c < cv; c++) yv[c] = _mm256_setzero_ps();
    for (int g = 0; g < p->ng; g++) {
        for (int c = 0; c < cv; c++) a[c] = _mm256_setzero_ps();
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            const float *xk = x + 8 * r;
            prefetch_row(p, row, st, cv);
            for (int c = 0; c < cv; c++) {
                __m256i w = _mm256_loadu_si256((const __m256i *)(row + 8 * c));
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    a[c] = _mm256_fmadd_ps(_mm256_set1_ps(xk[j]), nib(w, j), a[c]);
            }
        }
        __m256 sx = _mm256_set1_ps(group_sum(x + (size_t)g * p->G, p->G));
        for (int c = 0; c < cv; c++) {
            __m256 z16 =
                _mm256_add_ps(_mm256_cvtepi32_ps(zeros8(p, g, n + 8 * c)), _mm256_set1_ps(16.0f));
            __m256 d = _mm256_fmsub_ps(a[c], _mm256_set1_ps(16.0f), _mm256_mul_ps(z16, sx));
            yv[c] = _mm256_fmadd_ps(scales8(p, g, n + 8 * c), d, yv[c]);
        }
    }
    for (int c = 0; c < cv; c++) _mm256_storeu_ps(y + n + 8 * c, yv[c]);
}

/* ---- F32 batched / act-order: exact per-row dequantization ---- */

typedef struct rowtab {
    float *s16, *zs; /* [ng][16]: 16*s and -(16+z)*s, so w = (1 + q/16)*s16 + zs */
} rowtab;

static void rowtab_fill(const q4p *p, rowtab *t, int n, int cv) {
    for (int g = 0; g < p->ng; g++)
        for (int c = 0; c < cv; c++) {
            __m256 s = scales8(p, g, n + 8 * c);
            __m256 z16 =
                _mm256_add_ps(_mm256_cvtepi32_ps(zeros8(p, g, n + 8 * c)), _mm256_set1_ps(16.0f));
            _mm256_storeu_ps(t->s16 + g * 16 + 8 * c, _mm256_mul_ps(s, _mm256_set1_ps(16.0f)));
            _mm256_storeu_ps(t->zs + g * 16 + 8 * c,
                             _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), z16), s));
        }
}

AI int group_of(const q4p *p, int k) {
    return p->gi ? p->gi[k] : k / p->G;
}

AI void rows_block(const q4p *p, const rowtab *tab, const float *x, float *y, int t0, int tb, int n,
                   int cv) {
    __m256 acc[4][2];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int K = p->K;
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++) acc[t][c] = _mm256_setzero_ps();
    const float *xt = x + (size_t)t0 * K;
    for (int r = 0; r < K / 8; r++) {
        const uint32_t *row = base + (size_t)r * st;
        __m256i wv[2];
        prefetch_row(p, row, st, cv);
        for (int c = 0; c < cv; c++) wv[c] = _mm256_loadu_si256((const __m256i *)(row + 8 * c));
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            int k = 8 * r + j, g = group_of(p, k);
            for (int c = 0; c < cv; c++) {
                __m256 w =
                    _mm256_fmadd_ps(nib(wv[c], j), _mm256_loadu_ps(tab->s16 + g * 16 + 8 * c),
                                    _mm256_loadu_ps(tab->zs + g * 16 + 8 * c));
                for (int t = 0; t < tb; t++)
                    acc[t][c] =
                        _mm256_fmadd_ps(_mm256_set1_ps(xt[(size_t)t * K + k]), w, acc[t][c]);
            }
        }
    }
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++)
            _mm256_storeu_ps(y + (size_t)(t0 + t) * p->N + n + 8 * c, acc[t][c]);
}

AI void rows_tblocks(const q4p *p, const rowtab *tab, const float *x, float *y, int T, int n,
                     int cv) {
    int t = 0;
    for (; t + 4 <= T; t += 4) rows_block(p, tab, x, y, t, 4, n, cv);
    if (t + 2 <= T) rows_block(p, tab, x, y, t, 2, n, cv), t += 2;
    if (t < T) rows_block(p, tab, x, y, t, 1, n, cv);
}

static void rows_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    float stack[2 * 16 * 128];
    size_t need = (size_t)2 * 16 * p->ng;
    float *buf = need <= sizeof stack / sizeof *stack ? stack : malloc(need * sizeof(float));
    if (!buf) return q4p_range_portable(p, x, T, y, n0, n1); /* exhausted heap: slow, exact */
    rowtab tab = {buf, buf + 16 * p->ng};
#define ROWS_CALL(cv) (rowtab_fill(p, &tab, n, cv), rows_tblocks(p, &tab, x, y, T, n, cv))
    FOR_BLOCKS16(p, n0, n1, ROWS_CALL)
#undef ROWS_CALL
    if (buf != stack) free(buf);
}

static void f32_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    if (T == 1 && !p->gi && p->G % 8 == 0) {
#define GEMV_CALL(cv) gemv_f32(p, x, y, n, cv)
        FOR_BLOCKS(p, n0, n1, GEMV_CALL)
#undef GEMV_CALL
    } else {
        rows_range(p, x, T, y, n0, n1);
    }
}

static void q4_matmul_avx2(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1) {
    q4p p = q4p_of(q);
    q4p_matmul(&p, x, T, y, n0, n1, f32_range);
}

/* ---- prepared activations ---- */

AI float load_group(const q4p *p, const float *xt, int g, float *xs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < p->G; i += 8) {
        __m256 v = p->perm
                       ? _mm256_i32gather_ps(
                             xt, _mm256_loadu_si256((const __m256i *)(p->perm + g * p->G + i)), 4)
                       : _mm256_loadu_ps(xt + (size_t)g * p->G + i);
        _mm256_storeu_ps(xs + i, v);
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* 8 int32 lanes to 8 int8 in the low 64 bits. */
AI __m128i pack8(__m256i v) {
    __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packs_epi16(w16, w16);
}

static void act_prep_unit(const q4p *p, const float *x, int T, r1_q4_act mode, int t, int g,
                          void *xa, size_t tail_off) {
    const int K = p->K, G = p->G, ng = p->ng;
    const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i k64 = _mm256_set1_epi32(64), k127 = _mm256_set1_epi32(127);
    float xs[G];
    float amax = load_group(p, x + (size_t)t * K, g, xs);
    if (mode == R1_Q4_F32) {
        memcpy((float *)xa + (size_t)t * K + (size_t)g * G, xs, (size_t)G * sizeof(float));
        return;
    }
    float lim = mode == R1_Q4_I8 ? 127.0f : 127.0f * 16384.0f, id = amax > 0 ? lim / amax : 0.0f;
    __m256i sum = _mm256_setzero_si256();
    for (int i = 0; i < G; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xs + i), _mm256_set1_ps(id));
        __m256i qv = _mm256_permutevar8x32_epi32(_mm256_cvtps_epi32(v), perm); /* slot order */
        sum = _mm256_add_epi32(sum, qv);
        int kk = g * G + i;
        if (mode == R1_Q4_I8) {
            _mm_storel_epi64((__m128i *)((int8_t *)xa + (size_t)t * K + kk), pack8(qv));
            continue;
        }
        /* v = a*2^14 + b*2^7 + c, b and c in [-64, 63] */
        __m256i lo = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(qv, k64), k127), k64);
        __m256i v1 = _mm256_srai_epi32(_mm256_sub_epi32(qv, lo), 7);
        __m256i mid = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(v1, k64), k127), k64);
        __m256i hi = _mm256_srai_epi32(_mm256_sub_epi32(v1, mid), 7);
        int8_t *blk = (int8_t *)xa + ((size_t)t * (K / 8) + kk / 8) * 24;
        _mm_storel_epi64((__m128i *)blk, pack8(hi));
        _mm_storel_epi64((__m128i *)(blk + 8), pack8(mid));
        _mm_storel_epi64((__m128i *)(blk + 16), pack8(lo));
    }
    float *tail = (float *)((char *)xa + tail_off);
    int s = hsum8i(sum);
    tail[(size_t)t * ng + g] = amax / lim;
    tail[(size_t)(T + t) * ng + g] = mode == R1_Q4_I8 ? amax / lim * (float)s : (float)s;
}

static void act_prep_avx2(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0,
                          int u1, void *xa) {
    q4p p = q4p_of(q);
    if (mode == R1_Q4_F32 && !p.perm) return;
    size_t off = r1__q4_act_tail_offset(q, T, mode);
    for (int u = u0; u < u1; u++) act_prep_unit(&p, x, T, mode, u / p.ng, u % p.ng, xa, off);
}

/* sum of lo*dl + hi*dh as int32 lanes: u8 nibbles x s8 digits, never saturating */
AI __m256i dot8(__m256i lo, __m256i hi, __m256i dl, __m256i dh) {
    __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, dl), _mm256_maddubs_epi16(hi, dh));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* 128 * (digit-0 products) + (digit-1 products) as int32 lanes, d the row's
 * digits (8 bytes of digit 0, then 8 of digit 1): one madd weights the first
 * pair sums by 128. A lane's sum is at most 128 * 15240 + 15240 per row, so a
 * 128-input group (16 rows) stays below 2^25: exact in int32. */
AI __m256i dot8x2(__m256i lo, __m256i hi, const int8_t *d) {
    __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(d)),
                                  _mm256_maddubs_epi16(hi, bcast4(d + 4)));
    __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(d + 8)),
                                  _mm256_maddubs_epi16(hi, bcast4(d + 12)));
    return _mm256_add_epi32(_mm256_madd_epi16(s0, _mm256_set1_epi16(128)),
                            _mm256_madd_epi16(s1, _mm256_set1_epi16(1)));
}

/* Rows [r0, r1) of a decode block into acc (see gemv_digits). */
AI void gemv_rows(const q4p *p, const uint32_t *base, size_t st, const int8_t *xd, int r0, int r1,
                  int cv, int nd, __m256i acc[2][4]) {
    const __m256i lo4 = _mm256_set1_epi32(0x0f0f0f0f);
    for (int k = 0; k < (nd == 3 ? 2 : 1); k++)
        for (int c = 0; c < cv; c++) acc[k][c] = _mm256_setzero_si256();
    for (int r = r0; r < r1; r++) {
        const uint32_t *row = base + (size_t)r * st;
        const int8_t *d = xd + (size_t)r * 8 * nd;
        prefetch_row(p, row, st, cv);
        for (int c = 0; c < cv; c++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(row + 8 * c));
            __m256i lo = _mm256_and_si256(w, lo4),
                    hi = _mm256_and_si256(_mm256_srli_epi32(w, 4), lo4);
            if (nd == 3) { /* digits 0 and 1 share acc[0] as 128 * s0 + s1 */
                acc[0][c] = _mm256_add_epi32(acc[0][c], dot8x2(lo, hi, d));
                acc[1][c] =
                    _mm256_add_epi32(acc[1][c], dot8(lo, hi, bcast4(d + 16), bcast4(d + 20)));
            } else {
                acc[0][c] = _mm256_add_epi32(acc[0][c], dot8(lo, hi, bcast4(d), bcast4(d + 4)));
            }
        }
    }
}

/* acc of gemv_rows as floats: 16384 a + 128 b + c for I8X3, the sums for I8. */
AI __m256 gemv_fold(__m256i acc[2][4], int c, int nd) {
    if (nd != 3) return _mm256_cvtepi32_ps(acc[0][c]);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[0][c]), _mm256_set1_ps(128.0f),
                           _mm256_cvtepi32_ps(acc[1][c]));
}

/* Decode: a 32-column block, y kept in registers across groups (the batched
 * i8_block re-reads y per group and covers 16 columns, half a panel row per pass).
 * nd digits per input (a constant after inlining): 3 for I8X3 (24 bytes per 8
 * inputs, v = a*2^14 + b*2^7 + c; s2 = sums of v), 1 for I8 (8 bytes; s2 = dx times
 * the sums of q). I8X3 keeps 8 accumulators (dot8x2), not 12, which 16 ymm
 * registers could not hold with the row's digits (2-core Zen 3, test_kernels
 * bench decode, three interleaved rounds: 98 -> 102% of the probe over the
 * seven shapes); a group past GROUP_PAIR_ROWS rows is summed in parts so that
 * no int32 overflows. */
#define GROUP_PAIR_ROWS 1024
AI void gemv_digits(const q4p *p, const int8_t *xd, const float *dx, const float *s2, float *y,
                    int n, int cv, int nd) {
    const int rpg = p->G / 8, part = nd == 3 && rpg > GROUP_PAIR_ROWS ? GROUP_PAIR_ROWS : rpg;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    __m256 yv[4];
    for (int c = 0; c < cv; c++) yv[c] = _mm256_setzero_ps();
    for (int g = 0; g < p->ng; g++) {
        __m256i acc[2][4];
        __m256 f[4];
        for (int c = 0; c < cv; c++) f[c] = _mm256_setzero_ps();
        for (int r = g * rpg; r < (g + 1) * rpg; r += part) { /* one part unless G is huge */
            int e = r + part < (g + 1) * rpg ? r + part : (g + 1) * rpg;
            gemv_rows(p, base, st, xd, r, e, cv, nd, acc);
            for (int c = 0; c < cv; c++) f[c] = _mm256_add_ps(f[c], gemv_fold(acc, c, nd));
        }
        __m256 vdx = _mm256_set1_ps(dx[g]), vs2 = _mm256_set1_ps(s2[g]);
        for (int c = 0; c < cv; c++) {
            __m256 z = _mm256_cvtepi32_ps(zeros8(p, g, n + 8 * c)), h;
            if (nd == 3)
                h = _mm256_mul_ps(_mm256_fnmadd_ps(z, vs2, f[c]), vdx);
            else
                h = _mm256_fnmadd_ps(z, vs2, _mm256_mul_ps(f[c], vdx));
            yv[c] = _mm256_fmadd_ps(scales8(p, g, n + 8 * c), h, yv[c]);
        }
    }
    for (int c = 0; c < cv; c++) _mm256_storeu_ps(y + n + 8 * c, yv[c]);
}

AI void i8_block(const q4p *p, const int8_t *xq, const float *dx, const float *dxs, float *y,
                 int t0, int tb, int n, int cv) {
    const int K = p->K, rpg = p->G / 8, ng = p->ng;
    const __m256i lo4 = _mm256_set1_epi32(0x0f0f0f0f);
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    for (int g = 0; g < ng; g++) {
        __m256i acc[4][2];
        for (int t = 0; t < tb; t++)
            for (int c = 0; c < cv; c++) acc[t][c] = _mm256_setzero_si256();
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            __m256i lo[2], hi[2];
            prefetch_row(p, row, st, cv);
            for (int c = 0; c < cv; c++) {
                __m256i w = _mm256_loadu_si256((const __m256i *)(row + 8 * c));
                lo[c] = _mm256_and_si256(w, lo4);
                hi[c] = _mm256_and_si256(_mm256_srli_epi32(w, 4), lo4);
            }
            for (int t = 0; t < tb; t++) {
                const int8_t *xr = xq + (size_t)(t0 + t) * K + 8 * r;
                __m256i xl = bcast4(xr), xh = bcast4(xr + 4);
                for (int c = 0; c < cv; c++)
                    acc[t][c] = _mm256_add_epi32(acc[t][c], dot8(lo[c], hi[c], xl, xh));
            }
        }
        for (int c = 0; c < cv; c++) {
            __m256 s = scales8(p, g, n + 8 * c), z = _mm256_cvtepi32_ps(zeros8(p, g, n + 8 * c));
            for (int t = 0; t < tb; t++) {
                size_t i = (size_t)(t0 + t) * ng + g;
                float *yp = y + (size_t)(t0 + t) * p->N + n + 8 * c;
                __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[t][c]), _mm256_set1_ps(dx[i]));
                f = _mm256_fnmadd_ps(z, _mm256_set1_ps(dxs[i]), f);
                __m256 yv = g ? _mm256_loadu_ps(yp) : _mm256_setzero_ps();
                _mm256_storeu_ps(yp, _mm256_fmadd_ps(s, f, yv));
            }
        }
    }
}

AI void i8_tblocks(const q4p *p, const int8_t *xq, const float *dx, const float *dxs, int T,
                   float *y, int n, int cv) {
    int t = 0;
    for (; t + 4 <= T; t += 4) i8_block(p, xq, dx, dxs, y, t, 4, n, cv);
    if (t + 2 <= T) i8_block(p, xq, dx, dxs, y, t, 2, n, cv), t += 2;
    if (t < T) i8_block(p, xq, dx, dxs, y, t, 1, n, cv);
}

static void matmul_act_avx2(const r1_qlinear *q, const float *x, const void *xa, int T,
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
    if (mode == R1_Q4_I8 && T == 1) {
#define I8V_CALL(cv) gemv_digits(&p, xa, dx, second, y, n, cv, 1)
        FOR_BLOCKS(&p, n0, n1, I8V_CALL)
#undef I8V_CALL
        return;
    }
    if (mode == R1_Q4_I8) {
#define I8_CALL(cv) i8_tblocks(&p, xa, dx, second, T, y, n, cv)
        FOR_BLOCKS16(&p, n0, n1, I8_CALL)
#undef I8_CALL
        return;
    }
    for (int t = 0; t < T; t++) {
        const int8_t *xd = (const int8_t *)xa + (size_t)t * (p.K / 8) * 24;
        float *yt = y + (size_t)t * p.N;
        const float *dxt = dx + (size_t)t * p.ng, *svt = second + (size_t)t * p.ng;
#define X3_CALL(cv) gemv_digits(&p, xd, dxt, svt, yt, n, cv, 3)
        FOR_BLOCKS(&p, n0, n1, X3_CALL)
#undef X3_CALL
    }
}

/* ---- dense rows: F16 / BF16 / F32 / int8 ---- */

enum { D_F32, D_F16, D_BF16, D_I8 };

AI __m256 load_w(const void *w, int type, size_t i) {
    switch (type) {
    case D_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    case D_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))),
            16));
    case D_I8:
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)w + i))));
    default:
        return _mm256_loadu_ps((const float *)w + i);
    }
}

AI float load_1(const void *w, int type, size_t i) {
    switch (type) {
    case D_F16:
        return _cvtsh_ss(((const uint16_t *)w)[i]);
    case D_BF16:
        return r1__bf16_to_f32(((const uint16_t *)w)[i]);
    case D_I8:
        return ((const int8_t *)w)[i];
    default:
        return ((const float *)w)[i];
    }
}

/* Rows ahead that dense_block prefetches: about 24 KiB, at least the next 4-row
 * block. 1.5b's 1.5 KiB 8-bit head rows (4 rows = 6 KiB ahead) streamed at 73%
 * of the probe, 16 rows ahead 84% (test_kernels bench head, four rounds each). */
AI int dense_pf_rows(int64_t K, size_t es) {
    int r = (int)((24576 + (size_t)K * es - 1) / ((size_t)K * es));
    return r < 4 ? 4 : r;
}

/* Rows n .. n + rb - 1, pf rows ahead, at byte column k * es, into L2, once per
 * cache line: without it short rows (1.5b's 1.5 KiB 8-bit ones) streamed at 59%
 * of the probe. */
AI void dense_prefetch(const void *w, int64_t n, int rb, int pf, int64_t K, int64_t k, size_t es) {
    if (((size_t)k * es & 63) == 0)
        for (int i = 0; i < rb; i++)
            _mm_prefetch((const char *)w + ((size_t)(n + i + pf) * K + k) * es, _MM_HINT_T1);
}

AI void dense_block(const void *w, int type, const float *x, float *y, int64_t N, int64_t K, int t0,
                    int tb, int64_t n, int rb, const float *rs) {
    __m256 acc[4][4];
    int64_t k = 0;
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) acc[t][i] = _mm256_setzero_ps();
    const size_t es = type == D_F32 ? 4 : type == D_I8 ? 1 : 2;
    const int pf = dense_pf_rows(K, es);
    for (; k + 8 <= K; k += 8) {
        __m256 wv[4];
        dense_prefetch(w, n, rb, pf, K, k, es);
        for (int i = 0; i < rb; i++) wv[i] = load_w(w, type, (size_t)(n + i) * K + k);
        for (int t = 0; t < tb; t++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)(t0 + t) * K + k);
            for (int i = 0; i < rb; i++) acc[t][i] = _mm256_fmadd_ps(xv, wv[i], acc[t][i]);
        }
    }
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) {
            float v = hsum8(acc[t][i]);
            for (int64_t kk = k; kk < K; kk++)
                v += x[(size_t)(t0 + t) * K + kk] * load_1(w, type, (size_t)(n + i) * K + kk);
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

static void dense_matmul_avx2(const r1_tensor *w, const float *x, int T, float *y, int n0, int n1) {
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

/* ---- 8-bit head, one token: int16 x against int8 rows ----
 * Converting every weight to float held 1.5b's head (1.5 KiB rows) to about 8
 * bytes per 4-cycle FMA chain: 74-84% of the probe, 12 GB/s even from cache.
 * Here x is rounded to int16 (Q8X_MAX against the largest |x| of each Q8X_BLK
 * inputs: within 2^-15 of it, far below the rows' own 8-bit rounding) and a row
 * costs one sign extension and one vpmaddwd per 16 weights (a single-thread
 * loop over cache-resident rows: 21 -> 41 GB/s). A block's int32 sums stay
 * below 2^31: Q8X_BLK * Q8X_MAX * 127 < 2^31. */
#define Q8X_MAX 16383
#define Q8X_BLK 4096
#define Q8X_KMAX 16384 /* larger K: the float path */

/* xq = x rounded against each block's max |x|; sc[b] the block's step. K % 16 == 0.
 * Returns 0 when x holds a NaN or an infinity (which int16 cannot carry: the
 * float path then passes it on to the logits). */
static int q8x_quantize(const float *x, int64_t K, int16_t *xq, float *sc) {
    for (int64_t b = 0; b < K; b += Q8X_BLK) {
        int64_t e = b + Q8X_BLK < K ? b + Q8X_BLK : K;
        __m256 m = _mm256_setzero_ps(), nf = _mm256_setzero_ps(); /* nf: 0 * x, NaN if not finite */
        const __m256 mabs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        for (int64_t k = b; k < e; k += 8) {
            __m256 v = _mm256_loadu_ps(x + k);
            m = _mm256_max_ps(m, _mm256_and_ps(v, mabs));
            nf = _mm256_add_ps(nf, _mm256_mul_ps(v, _mm256_setzero_ps()));
        }
        if (_mm256_movemask_ps(_mm256_cmp_ps(nf, nf, _CMP_UNORD_Q))) return 0;
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        float amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
        __m256 inv = _mm256_set1_ps(amax > 0 ? (float)Q8X_MAX / amax : 0.0f);
        sc[b / Q8X_BLK] = amax / (float)Q8X_MAX;
        for (int64_t k = b; k < e; k += 16) {
            __m256i lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), inv));
            __m256i hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8), inv));
            /* packs interleaves 128-bit lanes: restore the element order */
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
            _mm256_storeu_si256((__m256i *)(xq + k), p);
        }
    }
    return 1;
}

/* Rows n .. n + rb - 1 (rb <= 4) of one token; pf: dense_pf_rows. */
AI void q8x_rows(const r1_q8_rows *w, const int16_t *xq, const float *sc, float *y, int64_t n,
                 int rb, int pf) {
    const int64_t K = w->K;
    __m256 f[4];
    for (int i = 0; i < rb; i++) f[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K; b += Q8X_BLK) {
        int64_t e = b + Q8X_BLK < K ? b + Q8X_BLK : K;
        __m256i acc[4];
        for (int i = 0; i < rb; i++) acc[i] = _mm256_setzero_si256();
        for (int64_t k = b; k < e; k += 16) {
            dense_prefetch(w->q, n, rb, pf, K, k, 1);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + k));
            for (int i = 0; i < rb; i++) {
                __m128i r = _mm_loadu_si128((const __m128i *)(w->q + (n + i) * K + k));
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(r)));
            }
        }
        __m256 s = _mm256_set1_ps(sc[b / Q8X_BLK]);
        for (int i = 0; i < rb; i++) f[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i]), s, f[i]);
    }
    for (int i = 0; i < rb; i++) y[n + i] = hsum8(f[i]) * w->d[n + i];
}

static void q8_matmul_avx2(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1) {
    int16_t xq[Q8X_KMAX] __attribute__((aligned(32)));
    float sc[Q8X_KMAX / Q8X_BLK];
    /* prompts (all logits), odd shapes and non-finite x take the float path; the
     * rounding is per call: ~1 us for 1.5b's K, where a chunk streams ~25 us */
    if (T != 1 || w->K % 16 || w->K > Q8X_KMAX || !q8x_quantize(x, w->K, xq, sc)) {
        dense_range(w->q, D_I8, x, T, y, w->N, w->K, n0, n1, w->d);
        return;
    }
    int64_t n = n0;
    const int pf = dense_pf_rows(w->K, 1);
    for (; n + 4 <= n1; n += 4) q8x_rows(w, xq, sc, y, n, 4, pf);
    for (; n < n1; n++) q8x_rows(w, xq, sc, y, n, 1, pf);
}

const r1_cpu_kernels r1__cpu_kernels_avx2 = {
    .name = "avx2",
    .q4_matmul = q4_matmul_avx2,
    .dense_matmul = dense_matmul_avx2,
    .col_align = 8,
    .q4_act_bytes = r1__q4_act_bytes_std,
    .q4_act_prep = act_prep_avx2,
    .q4_matmul_act = matmul_act_avx2,
    .q8_matmul = q8_matmul_avx2,
    .panel_cols = 32,
    .prompt_i8 = 1,
    .panel_meta = 1,
};
