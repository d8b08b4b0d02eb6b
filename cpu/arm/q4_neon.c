/* NEON kernels for aarch64 (ASIMD + dot product): GPTQ int4 matmuls, dense
 * F16/BF16/F32 heads and the 8-bit head. Built with -march=armv8.2-a+dotprod;
 * kernels.c offers this table only where the CPU reports the dot product.
 *
 * Same designs as cpu/x86/q4_avx512.c (read its header comment) with 4-column
 * vectors and blocks of up to 16 columns: F32 turns nibbles into 1 + q/16
 * floats with a shift and a bit-select; I8X3 and I8 use sdot (signed int8,
 * nibbles 0..15 fit) against activation digits picked by lane, so a word's four
 * low nibbles meet digits for inputs 0,2,4,6 and its high nibbles 1,3,5,7. */
#include <arm_neon.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "q4_layout.h"

#define AI static inline __attribute__((always_inline))
#define PF_PANEL_WORDS 1024 /* prefetch distance in a panel: 4 KiB */

/* Blocks of 16 columns (8 at the end of an N % 16 == 8 matrix or panel). */
AI int block_end(const q4p *p, int n, int n1) {
    int e = q4p_panel_end(p, n);
    if (e > n + 16) e = n + 16;
    return e < n1 ? e : n1;
}

AI void prefetch_row(const q4p *p, const uint32_t *row, size_t stride) {
    if (p->panel)
        __builtin_prefetch(row + PF_PANEL_WORDS);
    else
        __builtin_prefetch(row + 8 * stride);
}

/* Zero points of the 4 columns starting at n in group g. */
AI uint32x4_t zeros4(const q4p *p, int g, int n) {
    uint32x4_t w = vdupq_n_u32(p->qz[(size_t)g * (p->N / 8) + n / 8]);
    const int32_t s0 = -4 * (n % 8);
    const int32x4_t sh = {s0, s0 - 4, s0 - 8, s0 - 12};
    uint32x4_t z = vandq_u32(vshlq_u32(w, sh), vdupq_n_u32(15));
    if (!p->v2) z = vandq_u32(vaddq_u32(z, vdupq_n_u32(1)), vdupq_n_u32(15));
    return z;
}

AI float32x4_t scales4(const q4p *p, int g, int n) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p->sc + (size_t)g * p->N + n)));
}

/* 1 + q/16 for nibble j of every word: nibble moved to mantissa bits 19..22. */
AI float32x4_t nib(uint32x4_t w, int j) {
    const int32x4_t sh = vdupq_n_s32(19 - 4 * j);
    uint32x4_t s = vshlq_u32(w, sh);
    return vreinterpretq_f32_u32(vbslq_u32(vdupq_n_u32(0x00780000), s, vdupq_n_u32(0x3f800000)));
}

AI float group_sum(const float *x, int G) {
    float32x4_t s = vdupq_n_f32(0);
    for (int i = 0; i < G; i += 4) s = vaddq_f32(s, vld1q_f32(x + i));
    return vaddvq_f32(s);
}

/* ---- F32 decode, natural groups ---- */

AI void gemv_f32(const q4p *p, const float *x, float *y, int n, int cv) {
    float32x4_t yv[4], a[4];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int rpg = p->G / 8;
    for (int c = 0; c < cv; c++) yv[c] = vdupq_n_f32(0);
    for (int g = 0; g < p->ng; g++) {
        for (int c = 0; c < cv; c++) a[c] = vdupq_n_f32(0);
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            const float32x4_t x0 = vld1q_f32(x + 8 * r), x1 = vld1q_f32(x + 8 * r + 4);
            prefetch_row(p, row, st);
            for (int c = 0; c < cv; c++) {
                uint32x4_t w = vld1q_u32(row + 4 * c);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 0), x0, 0);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 1), x0, 1);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 2), x0, 2);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 3), x0, 3);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 4), x1, 0);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 5), x1, 1);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 6), x1, 2);
                a[c] = vfmaq_laneq_f32(a[c], nib(w, 7), x1, 3);
            }
        }
        float32x4_t sx = vdupq_n_f32(group_sum(x + (size_t)g * p->G, p->G));
        for (int c = 0; c < cv; c++) {
            float32x4_t z16 = vaddq_f32(vcvtq_f32_u32(zeros4(p, g, n + 4 * c)), vdupq_n_f32(16.0f));
            float32x4_t d = vsubq_f32(vmulq_n_f32(a[c], 16.0f), vmulq_f32(z16, sx));
            yv[c] = vfmaq_f32(yv[c], scales4(p, g, n + 4 * c), d);
        }
    }
    for (int c = 0; c < cv; c++) vst1q_f32(y + n + 4 * c, yv[c]);
}

/* ---- F32 batched / act-order: exact per-row dequantization ---- */

typedef struct rowtab {
    float *s16, *zs; /* [ng][16]: 16*s and -(16+z)*s, so w = (1 + q/16)*s16 + zs */
} rowtab;

static void rowtab_fill(const q4p *p, rowtab *t, int n, int cv) {
    for (int g = 0; g < p->ng; g++)
        for (int c = 0; c < cv; c++) {
            float32x4_t s = scales4(p, g, n + 4 * c);
            float32x4_t z16 = vaddq_f32(vcvtq_f32_u32(zeros4(p, g, n + 4 * c)), vdupq_n_f32(16.0f));
            vst1q_f32(t->s16 + g * 16 + 4 * c, vmulq_n_f32(s, 16.0f));
            vst1q_f32(t->zs + g * 16 + 4 * c, vmulq_f32(vnegq_f32(z16), s));
        }
}

AI int group_of(const q4p *p, int k) {
    return p->gi ? p->gi[k] : k / p->G;
}

AI void rows_block(const q4p *p, const rowtab *tab, const float *x, float *y, int t0, int tb, int n,
                   int cv) {
    float32x4_t acc[4][4];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int K = p->K;
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++) acc[t][c] = vdupq_n_f32(0);
    const float *xt = x + (size_t)t0 * K;
    for (int r = 0; r < K / 8; r++) {
        const uint32_t *row = base + (size_t)r * st;
        uint32x4_t wv[4];
        prefetch_row(p, row, st);
        for (int c = 0; c < cv; c++) wv[c] = vld1q_u32(row + 4 * c);
        for (int j = 0; j < 8; j++) {
            int k = 8 * r + j, g = group_of(p, k);
            for (int c = 0; c < cv; c++) {
                float32x4_t w = vfmaq_f32(vld1q_f32(tab->zs + g * 16 + 4 * c), nib(wv[c], j),
                                          vld1q_f32(tab->s16 + g * 16 + 4 * c));
                for (int t = 0; t < tb; t++)
                    acc[t][c] = vfmaq_n_f32(acc[t][c], w, xt[(size_t)t * K + k]);
            }
        }
    }
    for (int t = 0; t < tb; t++)
        for (int c = 0; c < cv; c++) vst1q_f32(y + (size_t)(t0 + t) * p->N + n + 4 * c, acc[t][c]);
}

static void rows_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    float stack[2 * 16 * 128];
    size_t need = (size_t)2 * 16 * p->ng;
    float *buf = need <= sizeof stack / sizeof *stack ? stack : malloc(need * sizeof(float));
    if (!buf) return q4p_range_portable(p, x, T, y, n0, n1); /* exhausted heap: slow, exact */
    rowtab tab = {buf, buf + 16 * p->ng};
    for (int n = n0, e; n < n1; n = e) {
        e = block_end(p, n, n1);
        int cv = (e - n) / 4;
        rowtab_fill(p, &tab, n, cv);
        for (int t = 0; t < T; t += 4) {
            int tb = T - t < 4 ? T - t : 4;
            if (cv == 4) {
                if (tb == 4)
                    rows_block(p, &tab, x, y, t, 4, n, 4);
                else
                    for (int i = 0; i < tb; i++) rows_block(p, &tab, x, y, t + i, 1, n, 4);
            } else {
                for (int i = 0; i < tb; i++) rows_block(p, &tab, x, y, t + i, 1, n, 2);
            }
        }
    }
    if (buf != stack) free(buf);
}

static void f32_range(const q4p *p, const float *x, int T, float *y, int n0, int n1) {
    if (T == 1 && !p->gi && p->G % 8 == 0) {
        for (int n = n0, e; n < n1; n = e) {
            e = block_end(p, n, n1);
            if (e - n == 16)
                gemv_f32(p, x, y, n, 4);
            else
                gemv_f32(p, x, y, n, 2);
        }
    } else {
        rows_range(p, x, T, y, n0, n1);
    }
}

static void q4_matmul_neon(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1) {
    q4p p = q4p_of(q);
    q4p_matmul(&p, x, T, y, n0, n1, f32_range);
}

/* ---- prepared activations ---- */

AI float load_group(const q4p *p, const float *xt, int g, float *xs) {
    float32x4_t mx = vdupq_n_f32(0);
    for (int i = 0; i < p->G; i += 4) {
        float32x4_t v;
        if (p->perm) {
            const int32_t *pi = p->perm + g * p->G + i;
            float t4[4] = {xt[pi[0]], xt[pi[1]], xt[pi[2]], xt[pi[3]]};
            v = vld1q_f32(t4);
        } else {
            v = vld1q_f32(xt + (size_t)g * p->G + i);
        }
        vst1q_f32(xs + i, v);
        mx = vmaxq_f32(mx, vabsq_f32(v));
    }
    return vmaxvq_f32(mx);
}

/* 8 inputs in slot order (0,2,4,6 | 1,3,5,7) as int32, rounded to nearest even. */
AI void quant8(const float *xs, float id, int32x4_t *even, int32x4_t *odd) {
    float32x4x2_t v = vld2q_f32(xs); /* val[0] = inputs 0,2,4,6, val[1] = 1,3,5,7 */
    *even = vcvtnq_s32_f32(vmulq_n_f32(v.val[0], id));
    *odd = vcvtnq_s32_f32(vmulq_n_f32(v.val[1], id));
}

AI int8x8_t narrow8(int32x4_t a, int32x4_t b) {
    return vmovn_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b)));
}

/* v = a*2^14 + b*2^7 + c, b and c in [-64, 63]. */
AI void split3(int32x4_t v, int32x4_t *a, int32x4_t *b, int32x4_t *c) {
    const int32x4_t k64 = vdupq_n_s32(64), k127 = vdupq_n_s32(127);
    int32x4_t lo = vsubq_s32(vandq_s32(vaddq_s32(v, k64), k127), k64);
    int32x4_t v1 = vshrq_n_s32(vsubq_s32(v, lo), 7);
    int32x4_t mid = vsubq_s32(vandq_s32(vaddq_s32(v1, k64), k127), k64);
    *c = lo, *b = mid, *a = vshrq_n_s32(vsubq_s32(v1, mid), 7);
}

static void act_prep_unit(const q4p *p, const float *x, int T, r1_q4_act mode, int t, int g,
                          void *xa, size_t tail_off) {
    const int K = p->K, G = p->G, ng = p->ng;
    float xs[G];
    float amax = load_group(p, x + (size_t)t * K, g, xs);
    if (mode == R1_Q4_F32) {
        memcpy((float *)xa + (size_t)t * K + (size_t)g * G, xs, (size_t)G * sizeof(float));
        return;
    }
    float lim = mode == R1_Q4_I8 ? 127.0f : 127.0f * 16384.0f, id = amax > 0 ? lim / amax : 0.0f;
    int32x4_t sum = vdupq_n_s32(0);
    for (int i = 0; i < G; i += 8) {
        int32x4_t e, o;
        quant8(xs + i, id, &e, &o);
        sum = vaddq_s32(sum, vaddq_s32(e, o));
        int kk = g * G + i;
        if (mode == R1_Q4_I8) {
            vst1_s8((int8_t *)xa + (size_t)t * K + kk, narrow8(e, o));
            continue;
        }
        int32x4_t ea, eb, ec, oa, ob, oc;
        split3(e, &ea, &eb, &ec);
        split3(o, &oa, &ob, &oc);
        int8_t *blk = (int8_t *)xa + ((size_t)t * (K / 8) + kk / 8) * 24;
        vst1_s8(blk, narrow8(ea, oa));
        vst1_s8(blk + 8, narrow8(eb, ob));
        vst1_s8(blk + 16, narrow8(ec, oc));
    }
    float *tail = (float *)((char *)xa + tail_off);
    int s = vaddvq_s32(sum);
    tail[(size_t)t * ng + g] = amax / lim;
    tail[(size_t)(T + t) * ng + g] = mode == R1_Q4_I8 ? amax / lim * (float)s : (float)s;
}

static void act_prep_neon(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0,
                          int u1, void *xa) {
    q4p p = q4p_of(q);
    if (mode == R1_Q4_F32 && !p.perm) return;
    size_t off = r1__q4_act_tail_offset(q, T, mode);
    for (int u = u0; u < u1; u++) act_prep_unit(&p, x, T, mode, u / p.ng, u % p.ng, xa, off);
}

AI int8x16_t lo_nibbles(uint32x4_t w) {
    return vreinterpretq_s8_u32(vandq_u32(w, vdupq_n_u32(0x0f0f0f0f)));
}
AI int8x16_t hi_nibbles(uint32x4_t w) {
    return vreinterpretq_s8_u32(vandq_u32(vshrq_n_u32(w, 4), vdupq_n_u32(0x0f0f0f0f)));
}

/* I8X3 decode of one token over a block of cv 4-column vectors. */
AI void x3_block(const q4p *p, const int8_t *xd, const float *dx, const float *sv, float *y, int n,
                 int cv) {
    const int rpg = p->G / 8;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    float32x4_t yv[4];
    for (int c = 0; c < cv; c++) yv[c] = vdupq_n_f32(0);
    for (int g = 0; g < p->ng; g++) {
        int32x4_t aa[4], ab[4], ac[4];
        for (int c = 0; c < cv; c++) aa[c] = ab[c] = ac[c] = vdupq_n_s32(0);
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            const int8_t *d = xd + (size_t)r * 24;
            const int8x16_t dab = vld1q_s8(d); /* lanes: a even, a odd, b even, b odd */
            const int8x16_t dc = vcombine_s8(vld1_s8(d + 16), vdup_n_s8(0));
            prefetch_row(p, row, st);
            for (int c = 0; c < cv; c++) {
                uint32x4_t w = vld1q_u32(row + 4 * c);
                int8x16_t lo = lo_nibbles(w), hi = hi_nibbles(w);
                aa[c] = vdotq_laneq_s32(vdotq_laneq_s32(aa[c], lo, dab, 0), hi, dab, 1);
                ab[c] = vdotq_laneq_s32(vdotq_laneq_s32(ab[c], lo, dab, 2), hi, dab, 3);
                ac[c] = vdotq_laneq_s32(vdotq_laneq_s32(ac[c], lo, dc, 0), hi, dc, 1);
            }
        }
        for (int c = 0; c < cv; c++) {
            float32x4_t f = vfmaq_n_f32(vcvtq_f32_s32(ac[c]), vcvtq_f32_s32(ab[c]), 128.0f);
            f = vfmaq_n_f32(f, vcvtq_f32_s32(aa[c]), 16384.0f);
            f = vmulq_n_f32(vfmsq_n_f32(f, vcvtq_f32_u32(zeros4(p, g, n + 4 * c)), sv[g]), dx[g]);
            yv[c] = vfmaq_f32(yv[c], scales4(p, g, n + 4 * c), f);
        }
    }
    for (int c = 0; c < cv; c++) vst1q_f32(y + n + 4 * c, yv[c]);
}

/* I8 for up to 4 tokens x cv 4-column vectors, one group at a time. */
AI void i8_block(const q4p *p, const int8_t *xq, const float *dx, const float *dxs, float *y,
                 int t0, int tb, int n, int cv) {
    const int K = p->K, rpg = p->G / 8, ng = p->ng;
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    for (int g = 0; g < ng; g++) {
        int32x4_t acc[4][4];
        for (int t = 0; t < tb; t++)
            for (int c = 0; c < cv; c++) acc[t][c] = vdupq_n_s32(0);
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const uint32_t *row = base + (size_t)r * st;
            int8x16_t lo[4], hi[4];
            prefetch_row(p, row, st);
            for (int c = 0; c < cv; c++) {
                uint32x4_t w = vld1q_u32(row + 4 * c);
                lo[c] = lo_nibbles(w), hi[c] = hi_nibbles(w);
            }
            for (int t = 0; t < tb; t++) {
                int8x16_t xr =
                    vcombine_s8(vld1_s8(xq + (size_t)(t0 + t) * K + 8 * r), vdup_n_s8(0));
                for (int c = 0; c < cv; c++)
                    acc[t][c] =
                        vdotq_laneq_s32(vdotq_laneq_s32(acc[t][c], lo[c], xr, 0), hi[c], xr, 1);
            }
        }
        for (int c = 0; c < cv; c++) {
            float32x4_t s = scales4(p, g, n + 4 * c), z = vcvtq_f32_u32(zeros4(p, g, n + 4 * c));
            for (int t = 0; t < tb; t++) {
                size_t i = (size_t)(t0 + t) * ng + g;
                float *yp = y + (size_t)(t0 + t) * p->N + n + 4 * c;
                float32x4_t f =
                    vfmsq_n_f32(vmulq_n_f32(vcvtq_f32_s32(acc[t][c]), dx[i]), z, dxs[i]);
                vst1q_f32(yp, vfmaq_f32(g ? vld1q_f32(yp) : vdupq_n_f32(0), s, f));
            }
        }
    }
}

static void matmul_act_neon(const r1_qlinear *q, const float *x, const void *xa, int T,
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
    for (int n = n0, e; n < n1; n = e) {
        e = block_end(&p, n, n1);
        int cv4 = e - n == 16;
        if (mode == R1_Q4_I8) {
            for (int t = 0; t < T; t += 4) {
                int tb = T - t < 4 ? T - t : 4;
                if (cv4 && tb == 4)
                    i8_block(&p, xa, dx, second, y, t, 4, n, 4);
                else
                    for (int i = 0; i < tb; i++)
                        i8_block(&p, xa, dx, second, y, t + i, 1, n, cv4 ? 4 : 2);
            }
            continue;
        }
        for (int t = 0; t < T; t++) {
            const int8_t *xd = (const int8_t *)xa + (size_t)t * (p.K / 8) * 24;
            float *yt = y + (size_t)t * p.N;
            const float *dxt = dx + (size_t)t * p.ng, *svt = second + (size_t)t * p.ng;
            if (cv4)
                x3_block(&p, xd, dxt, svt, yt, n, 4);
            else
                x3_block(&p, xd, dxt, svt, yt, n, 2);
        }
    }
}

/* ---- dense rows: F16 / BF16 / F32 ---- */

enum { D_F32, D_F16, D_BF16 };

AI float32x4_t load_w(const void *w, int type, size_t i) {
    switch (type) {
    case D_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    case D_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
    default:
        return vld1q_f32((const float *)w + i);
    }
}

AI float load_1(const void *w, int type, size_t i) {
    switch (type) {
    case D_F16:
        return r1__f16_to_f32(((const uint16_t *)w)[i]);
    case D_BF16:
        return r1__bf16_to_f32(((const uint16_t *)w)[i]);
    default:
        return ((const float *)w)[i];
    }
}

AI void dense_block(const void *w, int type, const float *x, float *y, int64_t N, int64_t K, int t0,
                    int tb, int64_t n, int rb) {
    float32x4_t acc[4][4];
    int64_t k = 0;
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) acc[t][i] = vdupq_n_f32(0);
    for (; k + 4 <= K; k += 4) {
        float32x4_t wv[4];
        for (int i = 0; i < rb; i++) wv[i] = load_w(w, type, (size_t)(n + i) * K + k);
        for (int t = 0; t < tb; t++) {
            float32x4_t xv = vld1q_f32(x + (size_t)(t0 + t) * K + k);
            for (int i = 0; i < rb; i++) acc[t][i] = vfmaq_f32(acc[t][i], xv, wv[i]);
        }
    }
    for (int t = 0; t < tb; t++)
        for (int i = 0; i < rb; i++) {
            float v = vaddvq_f32(acc[t][i]);
            for (int64_t kk = k; kk < K; kk++)
                v += x[(size_t)(t0 + t) * K + kk] * load_1(w, type, (size_t)(n + i) * K + kk);
            y[(size_t)(t0 + t) * N + n + i] = v;
        }
}

AI void dense_range(const void *w, int type, const float *x, int T, float *y, int64_t N, int64_t K,
                    int n0, int n1) {
    for (int t = 0; t < T; t += 4) {
        int tb = T - t < 4 ? T - t : 4;
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) {
            if (tb == 4)
                dense_block(w, type, x, y, N, K, t, 4, n, 4);
            else
                for (int i = 0; i < tb; i++) dense_block(w, type, x, y, N, K, t + i, 1, n, 4);
        }
        for (; n < n1; n++)
            for (int i = 0; i < tb; i++) dense_block(w, type, x, y, N, K, t + i, 1, n, 1);
    }
}

static void dense_matmul_neon(const r1_tensor *w, const float *x, int T, float *y, int n0, int n1) {
    int64_t N = w->ne[0], K = w->ne[1];
    switch (w->type) {
    case R1_F16:
        dense_range(w->data, D_F16, x, T, y, N, K, n0, n1);
        break;
    case R1_BF16:
        dense_range(w->data, D_BF16, x, T, y, N, K, n0, n1);
        break;
    default:
        dense_range(w->data, D_F32, x, T, y, N, K, n0, n1);
        break;
    }
}

/* ---- 8-bit rows: the activation row as three int8 digits (22 bits, one scale),
 * sdot of signed weights against each digit. ---- */

static void q8x_prep(const float *x, int64_t K, int8_t *d, double *dx) {
    float32x4_t mx = vdupq_n_f32(0);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(x + k)));
    float amax = vmaxvq_f32(mx);
    for (; k < K; k++) amax = x[k] > amax ? x[k] : -x[k] > amax ? -x[k] : amax;
    float lim = 127.0f * 16384.0f, id = amax > 0 ? lim / amax : 0.0f;
    for (k = 0; k < K; k++) {
        int v = (int)vcvtns_s32_f32(x[k] * id), lo = ((v + 64) & 127) - 64, v1 = (v - lo) >> 7;
        int mid = ((v1 + 64) & 127) - 64;
        d[k] = (int8_t)((v1 - mid) >> 7), d[K + k] = (int8_t)mid, d[2 * K + k] = (int8_t)lo;
    }
    *dx = amax / lim;
}

AI void q8_rows(const r1_q8_rows *w, const int8_t *d, double dx, float *y, int64_t n, int rb) {
    const int64_t K = w->K;
    int32x4_t aa[4], ab[4], ac[4];
    int64_t tail[4] = {0};
    for (int i = 0; i < rb; i++) aa[i] = ab[i] = ac[i] = vdupq_n_s32(0);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        int8x16_t da = vld1q_s8(d + k), db = vld1q_s8(d + K + k), dc = vld1q_s8(d + 2 * K + k);
        for (int i = 0; i < rb; i++) {
            const int8_t *row = w->q + (n + i) * K + k;
            __builtin_prefetch(row + 4096);
            int8x16_t q = vld1q_s8(row);
            aa[i] = vdotq_s32(aa[i], q, da), ab[i] = vdotq_s32(ab[i], q, db);
            ac[i] = vdotq_s32(ac[i], q, dc);
        }
    }
    for (int i = 0; i < rb; i++)
        for (int64_t kk = k; kk < K; kk++) {
            int q = w->q[(n + i) * K + kk];
            tail[i] += (int64_t)q * (d[kk] * 16384 + d[K + kk] * 128 + d[2 * K + kk]);
        }
    for (int i = 0; i < rb; i++) {
        double s = 16384.0 * vaddvq_s32(aa[i]) + 128.0 * vaddvq_s32(ab[i]) + vaddvq_s32(ac[i]) +
                   (double)tail[i];
        y[n + i] = (float)(s * dx * w->d[n + i]);
    }
}

static void q8_matmul_neon(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1) {
    const int64_t K = w->K;
    int8_t stack[3 * 8192], *d = (size_t)3 * K <= sizeof stack ? stack : malloc((size_t)3 * K);
    if (!d) /* exhausted heap: the portable rows, which need no memory */
        return r1__cpu_q8_matmul(&r1__cpu_kernels_scalar, w, x, T, y, n0, n1);
    for (int t = 0; t < T; t++) {
        double dx;
        q8x_prep(x + (size_t)t * K, K, d, &dx);
        float *yt = y + (size_t)t * w->N;
        int64_t n = n0;
        for (; n + 4 <= n1; n += 4) q8_rows(w, d, dx, yt, n, 4);
        for (; n < n1; n++) q8_rows(w, d, dx, yt, n, 1);
    }
    if (d != stack) free(d);
}

const r1_cpu_kernels r1__cpu_kernels_neon = {
    .name = "neon",
    .q4_matmul = q4_matmul_neon,
    .dense_matmul = dense_matmul_neon,
    .col_align = 8,
    .q4_act_bytes = r1__q4_act_bytes_std,
    .q4_act_prep = act_prep_neon,
    .q4_matmul_act = matmul_act_neon,
    .q8_matmul = q8_matmul_neon,
};
