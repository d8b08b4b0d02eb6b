/* The view of a GPTQ linear that every ISA kernel works on: the checkpoint
 * layout, or the 64-column panels made by r1__cpu_q4_prepare (cpu/kernels.h). */
#ifndef R1_CPU_Q4_LAYOUT_H
#define R1_CPU_Q4_LAYOUT_H

#include "kernels.h"

typedef struct q4p {
    const uint32_t *qw, *qz;
    const uint16_t *sc;
    const int32_t *gi;   /* per-row groups: unprepared act-order only */
    const int32_t *perm; /* prepared act-order: row i holds input perm[i] */
    const uint8_t *meta; /* prepared scales and zeros per panel (r1_q4_prepared.meta) */
    int K, N, G, ng, v2;
    int panel; /* prepared panel width (columns); 0: the checkpoint layout */
} q4p;

static inline q4p q4p_of(const r1_qlinear *q) {
    const r1_q4_prepared *pp = q->cpu_extra;
    q4p p = {pp ? pp->w : q->qweight->data,
             q->qzeros->data,
             q->scales->data,
             !pp && q->act_order && q->g_idx ? q->g_idx->data : NULL,
             pp ? pp->perm : NULL,
             pp ? pp->meta : NULL,
             q->K,
             q->N,
             q->G,
             q->n_groups,
             q->zeros_v2,
             pp ? pp->pw : 0};
    return p;
}
/* End of the panel holding column n (64-column steps in the checkpoint layout):
 * a kernel block never crosses it, so that its rows keep one stride. */
static inline int q4p_panel_end(const q4p *p, int n) {
    int pw = p->panel ? p->panel : 64;
    return n / pw * pw + pw;
}

/* The (panel, group) entry of prepared metadata holding column n; *col: n's column
 * in its panel. */
static inline __attribute__((always_inline)) const uint8_t *q4p_meta(const q4p *p, int g, int n,
                                                                     int *col) {
    int pw = p->panel, pi = n / pw;
    *col = n - pi * pw;
    return p->meta + ((size_t)pi * p->ng + g) * R1_Q4_META(pw);
}

/* The fp16 scales of group g from column n on (at least to n's panel end). */
static inline __attribute__((always_inline)) const uint16_t *q4p_scales(const q4p *p, int g,
                                                                        int n) {
    if (!p->meta) return p->sc + (size_t)g * p->N + n;
    int col;
    return (const uint16_t *)q4p_meta(p, g, n, &col) + col;
}

/* The qzeros word of group g holding columns n..n+7 (n % 8 == 0), column n + i at bits 4i. */
static inline __attribute__((always_inline)) uint32_t q4p_zword(const q4p *p, int g, int n) {
    if (!p->meta) return p->qz[(size_t)g * (p->N / 8) + n / 8];
    int col;
    const uint8_t *e = q4p_meta(p, g, n, &col);
    return ((const uint32_t *)(e + 2 * (size_t)p->panel))[col / 8];
}

/* Word (row 0, column n) of the block holding n, and the block's row stride. */
static inline __attribute__((always_inline)) const uint32_t *block_base(const q4p *p, int n,
                                                                        size_t *stride) {
    if (!p->panel) {
        *stride = (size_t)p->N;
        return p->qw + n;
    }
    int pw = p->panel, p0 = n / pw * pw;
    *stride = (size_t)(p->N - p0 < pw ? p->N - p0 : pw);
    return p->qw + (size_t)p0 * (p->K / 8) + (n - p0);
}

/* Inputs of an act-order layout that r1__cpu_q4_prepare sorted into groups must be
 * gathered through perm. The exact entry (q4_matmul) does it one token at a time in
 * a stack row, so it allocates nothing per call; prepare leaves linears with more
 * inputs than this in the checkpoint layout (every Qwen2 shape fits). */
#define R1_Q4_GATHER_MAX 32768

/* Exact y for columns [n0, n1) one product at a time, with no memory of its own:
 * what a range function falls back to when it cannot allocate its tables.
 * x is in row order (gathered through perm by the caller, as for every range). */
static inline void q4p_range_portable(const q4p *p, const float *x, int T, float *y, int n0,
                                      int n1) {
    for (int n = n0; n < n1; n++) {
        size_t st;
        const uint32_t *col = block_base(p, n, &st);
        for (int t = 0; t < T; t++) {
            double acc = 0;
            for (int i = 0; i < p->K; i++) {
                int g = p->gi ? p->gi[i] : i / p->G;
                uint32_t zw = q4p_zword(p, g, n / 8 * 8) >> (4 * (n % 8));
                int z = p->v2 ? (int)(zw & 15) : (int)((zw + 1) & 15);
                int q = (int)(col[(size_t)(i / 8) * st] >> (4 * (i % 8)) & 15);
                acc += (double)x[(size_t)t * p->K + i] *
                       (r1__f16_to_f32(*q4p_scales(p, g, n)) * (float)(q - z));
            }
            y[(size_t)t * p->N + n] = (float)acc;
        }
    }
}

typedef void (*q4p_range_fn)(const q4p *p, const float *x, int T, float *y, int n0, int n1);

static inline void q4p_matmul(const q4p *p, const float *x, int T, float *y, int n0, int n1,
                              q4p_range_fn range) {
    if (!p->perm) {
        range(p, x, T, y, n0, n1);
        return;
    }
    float row[R1_Q4_GATHER_MAX];
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * p->K;
        for (int i = 0; i < p->K; i++) row[i] = xt[p->perm[i]];
        range(p, row, 1, y + (size_t)t * p->N, n0, n1);
    }
}

#endif
