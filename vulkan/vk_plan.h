/* The planner's shared state and helpers (vk_plan.c: every op but the GPTQ
 * matmuls, and the segment's plan; vk_plan_q4.c: GPTQ matmuls and the decode
 * fusions around them). */
#ifndef R1_VK_PLAN_H
#define R1_VK_PLAN_H

#include <stdint.h>
#include <string.h>

#include "vk_seg.h"

static inline const vk_ref *ref_of(const r1_tensor *t) {
    return t ? (const vk_ref *)t->extra : NULL;
}

typedef struct planner {
    vk_ctx *c;
    vk_seg *s;
    int var;
    r1_error *err;
    r1_status st;
    int gk_next;   /* the prompt GEMM split region the next GPTQ GEMM takes */
    int cm_groups; /* tensor-core GEMM groups planned (they take the W regions in turn) */
    int ahead_at;  /* the node whose group's W was prepared ahead (prep_ahead), else -1 */
    int x_at;      /* the node whose group's x its producer wrote (x_direct), else -1 */
} planner;

static inline vk_disp *disp_new(planner *pl, vk_pipe pipe) {
    if (pl->st) return NULL;
    if (pl->s->nd[pl->var] >= pl->s->d_cap) { /* a planner bug: reported, never an overrun */
        pl->st = r1__err(pl->err, R1_E_UNSUPPORTED, "vulkan: more dispatches than planned for");
        return NULL;
    }
    vk_disp *d = &pl->s->d[pl->var][pl->s->nd[pl->var]++];
    memset(d, 0, sizeof *d);
    d->pipe = pipe;
    for (int i = 0; i < VK_NBIND; i++) d->b[i] = (vk_bind){pl->c->dummy.buf, 0, pl->c->dummy.size};
    d->groups[0] = d->groups[1] = d->groups[2] = 1;
    return d;
}

static inline void push(vk_disp *d, uint32_t v) {
    if (d) d->push[d->push_size++] = v;
}

static inline uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline void fail(planner *pl, const char *what, const r1_tensor *t) {
    if (!pl->st)
        pl->st = r1__err(pl->err, R1_E_DEVICE, "vulkan: %s %s has no device memory", what,
                         t && t->name ? t->name : "(unnamed)");
}

/* An activation or cache tensor: bound whole, and recorded as accessed. */
static inline void act(planner *pl, vk_disp *d, int slot, const r1_tensor *t, int write) {
    const vk_ref *r = ref_of(t);
    if (!d) return;
    if (!r || r->pending) return fail(pl, "tensor", t);
    d->b[slot] = (vk_bind){r->buf, r->off, (r->size + 3) & ~(VkDeviceSize)3};
    if (d->n_acc < VK_MAX_ACCESS) d->acc[d->n_acc++] = (vk_access){r->buf, r->off, r->size, write};
}

/* d's groups along x follow the call's length T (vk_disp_rows_x: cdiv(T rmul +
 * (T > wcut ? wadd : 0), rdiv) for T in (tlo, thi], none outside); recorded for
 * the most rows T reaches, min(rows, thi), and in prompt passes set each call. */
static inline void by_rows(vk_disp *d, uint32_t rows, uint32_t tlo, uint32_t thi, uint32_t rmul,
                           uint32_t rdiv, uint32_t wadd, uint32_t wcut) {
    if (!d) return;
    d->tlo = tlo, d->thi = thi, d->rmul = rmul, d->rdiv = rdiv, d->wadd = wadd, d->wcut = wcut;
    uint64_t x = vk_disp_rows_x(d, rows < thi ? rows : thi);
    d->groups[0] = x < 1 ? 1 : x > 65535 ? 65535 : (uint32_t)x;
}

/* The segment's scratch buffer at binding `slot`, recording the access to its
 * elements [off, off + n) (keyed by the segment) for the barrier placement. */
static inline void scratch_use(planner *pl, vk_disp *d, int slot, VkDeviceSize off, VkDeviceSize n,
                               int write) {
    if (!d) return;
    d->scratch = slot;
    if (d->n_acc < VK_MAX_ACCESS)
        d->acc[d->n_acc++] = (vk_access){(VkBuffer)(uintptr_t)pl->s, off, n, write};
}

/* Scratch elements of ks K splits of a prompt GEMM of n columns: partials
 * (splits x 64 x n) and counters (splits x n / 128); 0 for one split. */
static inline void gemm_split_sizes(uint32_t n, uint32_t ks, VkDeviceSize *part,
                                    VkDeviceSize *cnt) {
    *part = ks > 1 ? (VkDeviceSize)ks * 64 * n : 0;
    *cnt = ks > 1 ? (VkDeviceSize)ks * ((n + 127) / 128) : 0;
}

/* K splits of the prompt GEMM (q4_gemm.comp) of GPTQ linear q when one 64-row
 * tile is live: enough 128-column tiles x splits for two resident workgroups
 * per wg_target (one per SM on the H200), each split at least 256 inputs, at
 * most 16; with part and cnt, their gemm_split_sizes. The segment holds
 * GK_REGIONS regions of each, taken in turn, so that GEMMs that may run
 * together (q, k, v; gate, up) do not share one and need no barrier. */
#define GK_REGIONS 4
static inline uint32_t gemm_splits(const vk_ctx *c, const r1_qlinear *q, VkDeviceSize *part,
                                   VkDeviceSize *cnt) {
    uint32_t tiles = ((uint32_t)q->N + 127) / 128, want = (2 * c->wg_target + tiles - 1) / tiles;
    uint32_t most = (uint32_t)q->K / 256;
    if (want > most) want = most;
    if (want > 16) want = 16;
    if (want < 2) want = 1;
    if (part && cnt) gemm_split_sizes((uint32_t)q->N, want, part, cnt);
    return want;
}

/* 4-byte words of the tensor-core GEMM's fp16 operands for a GPTQ linear and
 * `rows` tokens: the weight (*w) and x (*x), remainder planes included. */
static inline void cm_words(const vk_ctx *c, const r1_qlinear *q, VkDeviceSize rows,
                            VkDeviceSize *w, VkDeviceSize *x) {
    VkDeviceSize np = c->cm == 2 ? 2 : 1; /* exact: hi and lo planes */
    *w = (VkDeviceSize)q->K * (VkDeviceSize)q->N / 2 * np;
    *x = rows * (VkDeviceSize)q->K / 2 * np;
}

/* 4-byte words of the prompt GEMMs' scratch, the largest over the GPTQ linears
 * added: the tensor-core operands (W regions w[0] and w[1], which the groups of
 * linears take in turn, and x) and the K-split partials and counters of one
 * region (vk_plan.c takes GK_REGIONS of them). */
typedef struct {
    VkDeviceSize w[2], x, part, cnt;
    VkDeviceSize w1; /* the largest single linear's W */
} gemm_scratch;

static inline void gemm_scratch_add(const vk_ctx *c, const r1_qlinear *q, VkDeviceSize rows,
                                    gemm_scratch *g) {
    VkDeviceSize a, b;
    if (c->cm) {
        cm_words(c, q, rows, &a, &b);
        g->x = b > g->x ? b : g->x, g->w1 = a > g->w1 ? a : g->w1;
    }
    gemm_splits(c, q, &a, &b);
    g->part = a > g->part ? a : g->part, g->cnt = b > g->cnt ? b : g->cnt;
}

/* The weight of tensor-core group k (all: its linears' columns as one linear)
 * in W region k % 2. */
static inline void gemm_scratch_group(const vk_ctx *c, const r1_qlinear *all, int k,
                                      gemm_scratch *g) {
    VkDeviceSize a, b;
    if (!c->cm) return;
    cm_words(c, all, 1, &a, &b);
    if (a > g->w[k & 1]) g->w[k & 1] = a;
}

/* After the last linear and group (full: cm_full). The scratch is bound whole:
 * two W regions where full and they fit in half of what one binding may span,
 * else one (w[1] = 0) holding every group; where that would not fit either,
 * the segment keeps the float32 GEMM (w = x = 0). */
static inline void gemm_scratch_fit(const vk_ctx *c, gemm_scratch *g, int full) {
    VkDeviceSize half = c->props.limits.maxStorageBufferRange / 2;
    if (!full || (g->w[0] + g->w[1] + g->x) * 4 > half) {
        g->w[0] = g->w[0] > g->w[1] ? g->w[0] : g->w[1];
        g->w[1] = 0;
    }
    if ((g->w[0] + g->x) * 4 > half) g->w[0] = g->x = 0;
}

/* Whether the prompt GEMMs keep the second W region and the wider groups:
 * prep_ahead, and full (every layer and the output head on this GPU: the
 * segment holds the head, or the layer budget asks so, backend.h
 * batch_extra_bytes), or R1_VK_PREP_AHEAD=1. */
static inline int cm_full(const vk_ctx *c, int full) {
    return c->prep_ahead == 2 || (c->prep_ahead && full);
}

/* Words of W up to which linears of one input merge into one tensor-core group
 * (vk_plan_q4.c cm_group). full (cm_full): an eighth of what one binding may span, so that two
 * regions of them and x fit in half of it (on 14b gate and up merge: 283 MB); else the largest
 * single linear's W (g->w1, after the linears are added), the scratch the GEMMs need anyway. */
static inline VkDeviceSize cm_merge_cap(const vk_ctx *c, const gemm_scratch *g, int full) {
    return full ? c->props.limits.maxStorageBufferRange / 32 : g->w1;
}

/* A weight: bound from an aligned offset, its element offset returned. */
static inline uint32_t weight(planner *pl, vk_disp *d, int slot, r1_tensor *w) {
    if (!d) return 0;
    if (!pl->st) pl->st = r1vk_weight_resolve(pl->c, w, pl->err); /* deferred upload */
    const vk_ref *r = ref_of(w);
    if (!r || r->pending) {
        fail(pl, "weight", w);
        return 0;
    }
    VkDeviceSize a = pl->c->props.limits.minStorageBufferOffsetAlignment;
    VkDeviceSize off = r->off / a * a;
    d->b[slot] = (vk_bind){r->buf, off, (r->off - off + r->size + 3) & ~(VkDeviceSize)3};
    return (uint32_t)((r->off - off) / r1__dtype_size(w->type));
}

/* Whether nodes[from, n) other than nodes[skip0, skip1) read t. */
static inline int read_elsewhere(const r1_node *nodes, int from, int n, const r1_tensor *t,
                                 int skip0, int skip1) {
    for (int k = from; k < n; k++) {
        if (k >= skip0 && k < skip1) continue;
        for (int s = 0; s < 3; s++)
            if (nodes[k].src[s] == t) return 1;
    }
    return 0;
}

static inline uint32_t rows(const planner *pl, const r1_tensor *t) {
    return pl->var == VK_DECODE ? 1u : (uint32_t)t->ne[0];
}

static inline uint32_t cdiv(uint64_t a, uint64_t b) {
    uint64_t v = (a + b - 1) / b;
    return v > 65535 ? 65535 : (uint32_t)(v ? v : 1);
}

/* Whether two activations share bytes: the scheduler reuses a tensor's memory
 * after its last reader, so a fused dispatch may find one of its outputs where
 * an input lives; such a fusion would race (workgroups overwrite what others
 * still read) and is not made. */
static inline int overlap_t(const r1_tensor *a, const r1_tensor *b) {
    const vk_ref *x = ref_of(a), *y = ref_of(b);
    return x && y && x->buf == y->buf && x->off < y->off + y->size && y->off < x->off + x->size;
}

static inline int fused_safe(const r1_tensor *const *in, int n_in, const r1_tensor *const *out,
                             int n_out) {
    for (int i = 0; i < n_in; i++)
        for (int o = 0; o < n_out; o++)
            if (in[i] && out[o] && overlap_t(in[i], out[o])) return 0;
    return 1;
}

/* vk_plan_q4.c */
void r1vk_plan_matmul_q4(planner *pl, const r1_node *n);
/* Decode fusions of GPTQ matvecs with their neighbours starting at nodes[i];
 * returns the nodes consumed, 0 when none applies. */
int r1vk_plan_fused_q4(planner *pl, const r1_node *nodes, int i, int n);
/* After the decode plan: residual-epilogue matvecs write the digits that the
 * norm-prologue matvecs reading their sum stage directly (R1_VK_NO_PREQ=1: off). */
void r1vk_plan_preq(const vk_ctx *c, vk_seg *s);
/* Prompts: the tensor-core GEMM of the GPTQ linear (or linears of one input,
 * prepared together) starting at nodes[i], or at nodes[i + 1] after a SiLU gate
 * that its prep computes; returns the nodes consumed, 0 when none applies. */
int r1vk_plan_cm(planner *pl, const r1_node *nodes, int i, int n);
/* Prompts: where the output of nodes[i] (a norm, the attention) is read only by
 * the tensor-core group at nodes[i + 1], its word in scratch for the group's
 * x, which nodes[i]'s dispatch then writes in fp16 instead of its float output
 * (the group needing no x prep); else 0. */
uint32_t r1vk_cm_x_direct(planner *pl, const r1_node *nodes, int i, int n);
/* The W regions of the tensor-core groups of nodes[0, n) (prompt rows only),
 * merging within cap words (cm_merge_cap). */
void r1vk_cm_regions(const vk_ctx *c, const r1_node *nodes, int n, VkDeviceSize cap,
                     gemm_scratch *g);

#endif
