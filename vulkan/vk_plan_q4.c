/* GPTQ int4 matmuls: the native-layout split-K decode matvec, the transposed
 * layout's matvec (R1_VK_LAYOUT=t), the tiled prompt GEMMs, and the decode
 * fusions of norms, gates and residual adds into the matvecs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk_plan.h"

/* q4_matvec.comp: x of a K split in shared memory (XMAX = 4096 elements), 16
 * slices of whole 4-row batches. */
#define Q4_ROWS_PER_SPLIT 512u
/* Words of q4_matvec.comp's push constants after ssoff: nmat, t1, t2 and five
 * per extra matrix of a merged dispatch. */
#define Q4_MERGED_WORDS 13
#define Q4_SLICES 16u
#define Q4_BATCH 4u
/* q4_matvec.comp's flag bits (its Q4_*) and prologue kinds (PRO_*) */
#define Q4F_BIAS 1u
#define Q4F_V2 2u
#define Q4F_PERM 4u
#define Q4F_EPI 8u
#define Q4F_BIAS1 16u
#define Q4F_BIAS2 32u
#define Q4F_PREQ 64u
#define Q4F_XQOUT 128u
#define Q4P_NORM 1u
#define Q4P_SILU 2u
#define Q4_TILE 64u       /* columns of a workgroup's tile */
#define Q4_TILE_WIDE 256u /* ... in the multi-tile variant (R1_MT) */

/* K split of a decode matvec: at least wg_target workgroups in all, and as
 * many as one wave of resident ones holds (wg_slots): an invocation streams
 * its slice one batch per memory round trip, so more splits make the chain
 * shorter, and a second wave would add a whole chain. At most
 * Q4_ROWS_PER_SPLIT word rows per split, at least one batch per slice; rows
 * per split a multiple of the batch. H200 14b: o 80 x 2 -> 80 x 3 workgroups
 * 14.3 -> 12.9 us, down 20 x 7 -> 20 x 13 25.7 -> 20.1 us, tg64 188 -> 200. */
static void q4_split(const vk_ctx *c, int K, uint32_t tiles, uint32_t *ks, uint32_t *rps) {
    uint32_t R = (uint32_t)K / 8;
    uint32_t kmin = (R + Q4_ROWS_PER_SPLIT - 1) / Q4_ROWS_PER_SPLIT;
    uint32_t kmax = R / (Q4_SLICES * Q4_BATCH);
    uint32_t k = (c->wg_target + tiles - 1) / tiles;
    if (c->wg_slots / tiles > k) k = c->wg_slots / tiles;
    if (kmax < kmin) kmax = kmin;
    if (k > kmax) k = kmax;
    if (k < kmin) k = kmin;
    if (k < 1) k = 1;
    uint32_t r = (R + k - 1) / k;
    *rps = (r + Q4_BATCH - 1) / Q4_BATCH * Q4_BATCH;
    *ks = (R + *rps - 1) / *rps;
}

/* Tiles per workgroup (of the multi-tile variant) where one each would take
 * more than two waves of resident workgroups: the fewest that fit one wave, so
 * x is staged once per workgroup instead of once per tile. H200 14b with 64-
 * column tiles: gate+up (432 x 2 splits) 46.8 -> 42.2 us, down (80 x 4) slower
 * with 2 a workgroup (27.3 -> 29.7 us), hence two waves; with 256-column tiles
 * (q4_tile) neither needs more than one. */
static uint32_t q4_tpw(const vk_ctx *c, uint32_t tiles, uint32_t ks) {
    if (!c->wg_slots || tiles * ks <= 2 * c->wg_slots) return 1;
    uint32_t t = 1;
    while (t < 64 && ((tiles + t - 1) / t) * ks > c->wg_slots) t++;
    return t;
}

/* The grid of a split-K matvec dispatch (tiles x ks x T) and its scratch:
 * with several splits the partials, counters and sums of squares up to
 * scratch_end; tiles per workgroup in the flags word, the multi-tile variant
 * where a workgroup takes more than one. */
static void split_grid(planner *pl, vk_disp *d, uint32_t tiles, uint32_t ks, uint32_t T,
                       VkDeviceSize scratch_end, int wide) {
    if (ks > 1) {
        pl->s->scratch_elems = scratch_end;
        d->scratch = 8;
    }
    if (pl->s->chain_on && T == 1) { /* a decode matvec can be chained (vk_record.c) */
        d->scratch = 8;
        d->chain_sig = tiles; /* every tile's finishing workgroup signals */
    }
    uint32_t tpw = wide ? q4_tpw(pl->c, tiles, ks) : 1;
    d->push[3] |= tpw << 8; /* flags: tiles per workgroup */
    if (wide) d->pipe = VKP_Q4_MATVEC_MT;
    d->groups[0] = cdiv(tiles, tpw);
    d->groups[1] = ks;
    d->groups[2] = T;
}

/* Tile width of a decode matvec whose matrices have tiles64 64-column tiles in
 * all: the multi-tile variant's 256-column tiles where 64-column ones would take
 * more than one wave of resident workgroups (H200 14b: gate+up, and down's 80 x
 * 4, which becomes 20 x 7). */
static uint32_t q4_tile(const vk_ctx *c, int K, uint32_t tiles64) {
    uint32_t ks, rps;
    q4_split(c, K, tiles64, &ks, &rps);
    return c->wg_slots && tiles64 * ks > c->wg_slots ? Q4_TILE_WIDE : Q4_TILE;
}

/* Nodes fused into a transposed-layout matvec (decode): a preceding RMSNORM or
 * SILU_MUL computed on the fly from its inputs, a following residual ADD. */
typedef struct q4fuse {
    const r1_node *norm, *silu, *add;
    int write_pro; /* this dispatch also writes the norm's / gate's own output */
} q4fuse;

static int is_t(const r1_node *n) {
    const vk_ref *r = n->op == R1_OP_MATMUL_Q4 ? ref_of(n->q->qweight) : NULL;
    return r && r->layout_t;
}

static void matmul_q4t(planner *pl, const r1_node *n, const q4fuse *f) {
    const r1_qlinear *q = n->q;
    int dec = pl->var == VK_DECODE, perm = q->act_order && q->g_idx;
    vk_disp *d = disp_new(pl, dec ? VKP_Q4T_MATVEC : VKP_Q4T_GEMM);
    const r1_node *pro = f ? (f->norm ? f->norm : f->silu) : NULL;
    act(pl, d, 1, pro ? pro->src[0] : n->src[0], 0);
    act(pl, d, 2, n->dst, 1);
    weight(pl, d, 3, q->qweight);
    weight(pl, d, 4, q->scales);
    if (perm) weight(pl, d, 5, q->g_idx);
    uint32_t boff = q->bias ? weight(pl, d, 6, q->bias) : 0, woff = 0;
    if (f && f->norm) woff = weight(pl, d, 7, f->norm->w);
    if (f && f->silu) act(pl, d, 7, f->silu->src[1], 0);
    if (pro && f->write_pro) act(pl, d, 8, pro->dst, 1);
    if (f && f->add) {
        act(pl, d, 9, f->add->src[0] == n->dst ? f->add->src[1] : f->add->src[0], 0);
        act(pl, d, 10, f->add->dst, 1);
    }
    push(d, (uint32_t)q->K);
    push(d, (uint32_t)q->N);
    push(d, (uint32_t)q->G);
    push(d, (q->bias ? 1u : 0u) | (perm ? 4u : 0u) | (f && f->add ? 8u : 0u) |
                (pro && f->write_pro ? 16u : 0u));
    push(d, q->bias ? (uint32_t)q->bias->type : 0u);
    push(d, boff);
    if (!d) return;
    uint32_t T = rows(pl, n->dst);
    if (!dec) {
        d->groups[0] = cdiv((uint64_t)q->N, 64);
        d->groups[1] = cdiv(T, 64);
        return;
    }
    push(d, f && f->norm ? 1u : f && f->silu ? 2u : 0u);
    push(d, f && f->norm ? (uint32_t)f->norm->w->type : 0u);
    push(d, woff);
    push(d, fbits(f && f->norm ? f->norm->f0 : 0.0f));
    d->groups[0] = (uint32_t)q->N / 8;
    d->groups[1] = T;
}

/* Decode fusions around transposed-layout matvecs; 0 when none applies. */
static int plan_fused_q4t(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i];
    if (a->op == R1_OP_RMSNORM && a->rows == R1_ROWS_ALL) {
        int j = i + 1;
        while (j < n && is_t(&nodes[j]) && nodes[j].src[0] == a->dst &&
               fused_safe((const r1_tensor *[]){a->src[0]}, 1,
                          (const r1_tensor *[]){nodes[j].dst, a->dst}, 2))
            j++;
        for (int k = i + 1; k < j; k++)
            matmul_q4t(pl, &nodes[k], &(q4fuse){.norm = a, .write_pro = k == i + 1});
        return j > i + 1 ? j - i : 0;
    }
    int has_add = 0, at = i;
    const r1_node *silu = NULL;
    if (a->op == R1_OP_SILU_MUL && i + 1 < n && is_t(&nodes[i + 1]) &&
        nodes[i + 1].src[0] == a->dst && !nodes[i + 1].q->act_order)
        silu = a, at = i + 1;
    else if (!is_t(a))
        return 0;
    const r1_node *m = &nodes[at], *b = at + 1 < n ? &nodes[at + 1] : NULL;
    has_add = b && b->op == R1_OP_ADD && (b->src[0] == m->dst) != (b->src[1] == m->dst);
    const r1_tensor *res = has_add ? (b->src[0] == m->dst ? b->src[1] : b->src[0]) : NULL;
    const r1_tensor *in[] = {silu ? silu->src[0] : m->src[0], silu ? silu->src[1] : NULL, res};
    const r1_tensor *out[] = {m->dst, silu ? silu->dst : NULL, has_add ? b->dst : NULL};
    if (has_add && !fused_safe(in, 3, out, 3)) {
        has_add = 0; /* try without the residual add */
        out[2] = NULL, in[2] = NULL;
    }
    if (silu && !fused_safe(in, 3, out, 3)) return 0;
    if (!silu && !has_add) return 0;
    matmul_q4t(pl, m, &(q4fuse){.silu = silu, .add = has_add ? b : NULL, .write_pro = 1});
    return at - i + 1 + has_add;
}

/* The fast split-K matvec reads 4 columns at once (16-byte aligned words and
 * scales) in batches of 32 k within one group; else the simple one-column
 * shader, which fuses nothing. */
static int fast_ok(const planner *pl, const r1_qlinear *q) {
    const vk_ref *rq = ref_of(q->qweight), *rs = ref_of(q->scales);
    return pl->var == VK_DECODE && !getenv("R1_VK_SIMPLE_MATVEC") && rq && rs && !rq->pending &&
           (rq->off % 16) == 0 && (rs->off % 8) == 0 && q->G % 32 == 0 && q->K % 32 == 0;
}

/* q4_matvec.comp's push constants from ksplit to ssoff: the K split, its scratch
 * (partials, counters, sums of squares) and the prologue (the RMSNorm `norm`
 * with its weight at element woff, else `pro`: 0 none, 2 SiLU gate). */
static void push_split(vk_disp *d, uint32_t ks, uint32_t rps, VkDeviceSize poff, VkDeviceSize coff,
                       VkDeviceSize ssoff, const r1_node *norm, uint32_t woff, uint32_t pro) {
    push(d, ks);
    push(d, rps);
    push(d, (uint32_t)poff);
    push(d, (uint32_t)coff);
    push(d, norm ? Q4P_NORM : pro);
    push(d, norm ? (uint32_t)norm->w->type : 0u);
    push(d, woff);
    push(d, fbits(norm ? norm->f0 : 0.0f));
    push(d, (uint32_t)ssoff);
}

/* q4.glsl's push constants for linear q: K, N, G, flags (its bias, zeros
 * form and act-order, and extra), the weights' offsets, the bias dtype. */
static void push_q4(vk_disp *d, const r1_qlinear *q, uint32_t extra, uint32_t qoff, uint32_t soff,
                    uint32_t zoff, uint32_t boff) {
    int perm = q->act_order && q->g_idx;
    push(d, (uint32_t)q->K);
    push(d, (uint32_t)q->N);
    push(d, (uint32_t)q->G);
    push(d,
         (q->bias ? Q4F_BIAS : 0u) | (q->zeros_v2 ? Q4F_V2 : 0u) | (perm ? Q4F_PERM : 0u) | extra);
    push(d, qoff);
    push(d, soff);
    push(d, zoff);
    push(d, boff);
    push(d, q->bias ? (uint32_t)q->bias->type : 0u);
}

/* The prompt GEMM's K splits, ks (the shader uses fewer as rows grow; at most
 * gemm_splits of q, for which the regions are sized), and their shared scratch
 * regions; returns the splits for the caller's grid (q4_gemm numbers them
 * along z, gemm_cm's split variant along x). */
static uint32_t gemm_split_grid(planner *pl, vk_disp *d, const r1_qlinear *q, uint32_t ks) {
    const vk_seg *s = pl->s;
    uint32_t r = (uint32_t)(pl->gk_next % GK_REGIONS);
    VkDeviceSize np, nc;
    gemm_split_sizes((uint32_t)q->N, ks, &np, &nc);
    VkDeviceSize part = s->gk_part + r * s->gk_psz, cnt = s->gk_cnt + r * s->gk_csz;
    push(d, ks);
    push(d, (uint32_t)part);
    push(d, (uint32_t)cnt);
    if (ks < 2) return 1;
    pl->gk_next++;
    scratch_use(pl, d, 8, part, np, 1);
    scratch_use(pl, d, 8, cnt, nc, 1);
    return ks;
}

/* Prompt lengths from which gemm_cm's 128 x 128 tile runs, where built: at 256
 * both tiles measured the same on the H200 (2,976 and 2,984 tokens/s). */
#define CM_BIG_FROM 256

/* Prompt lengths up to which gemm_cm's variants read the GPTQ words themselves
 * (where built), with no fp16 copy of the weight: H200 14b pp16 / 64 / 128 409 / 1,302-1,319
 * / 2,599-2,604 -> 496 / 1,524-1,527 / 2,766-2,772, but pp256 3,383-3,389 -> 2,994-3,009
 * (the dequantization then costs the GEMM more than the copy costs). */
#define CM_Q4_UPTO 128

/* One gemm_cm variant and the prompt lengths (tlo, thi] it runs for. */
typedef struct {
    int pipe;
    uint32_t tlo, thi;
} cm_var;

/* Prompt lengths up to which linear q's GEMM reads the GPTQ words itself (the
 * words-reading variants, where built; groups that a 32-deep step never
 * crosses): the prep writes its fp16 weight only past them. */
static uint32_t cm_wmin(const vk_ctx *c, const r1_qlinear *q) {
    return c->pipe[VKP_GEMM_CM_Q4] && c->pipe[VKP_GEMM_CM_SPLIT_Q4] && q->G % 32 == 0 ? CM_Q4_UPTO
                                                                                      : 0;
}

/* Prompt lengths from which the 128 x 128 tile runs for ncols columns (of
 * linears side by side): past CM_BIG_FROM, and past the lengths whose 64 x 128
 * tiles all fit one wave of resident workgroups (wg_slots, two per SM), where
 * the 128 x 128 tiles, half as many, would leave SMs with one workgroup. H200
 * 14b at 384 tokens, each GEMM timed alone (R1_VK_PROFILE=3), 64 x 128 against
 * 128 x 128: o 126.5 / 177.3 us (240 / 120 tiles), down 324.5 / 377.5, gate
 * 352 / 354; at 512 128 x 128 wins: o 226.5 / 173.8 (320 / 160 tiles), down
 * 582.5 / 441.5, gate 462 / 349. R1_VK_CM_BIG_FROM=t fixes it at t. */
static uint32_t cm_big_from(const vk_ctx *c, uint32_t ncols) {
    if (c->cm_big_from) return c->cm_big_from;
    uint32_t slots = c->wg_slots ? c->wg_slots : 2 * c->wg_target;
    uint32_t t = 128 * (slots / (2 * ((ncols + 127) / 128)));
    return t > CM_BIG_FROM ? t : CM_BIG_FROM;
}

/* gemm_cm's variants for linear q with ks K splits, of ncols columns with the
 * linears beside it: the split one while one takes two or more splits (ks /
 * row tiles of 64), the 64 x 128 tile, the 128 x 128 tile (where built) past
 * cm_big_from tokens; the first two in their words-reading form up to cm_wmin
 * tokens. Some ranges are empty. */
static int cm_variants(const vk_ctx *c, const r1_qlinear *q, uint32_t ks, uint32_t ncols,
                       cm_var var[5]) {
    uint32_t tsplit = ks > 1 ? 64 * (ks / 2) : 0, wmin = cm_wmin(c, q);
    uint32_t from = cm_big_from(c, ncols);
    uint32_t tbig = c->pipe[VKP_GEMM_CM_BIG] && tsplit < from ? from : UINT32_MAX;
    const struct {
        int pipe, pipe_q4;
        uint32_t tlo, thi;
    } range[] = {{VKP_GEMM_CM_SPLIT, VKP_GEMM_CM_SPLIT_Q4, 0, tsplit},
                 {VKP_GEMM_CM, VKP_GEMM_CM_Q4, tsplit, tbig},
                 {VKP_GEMM_CM_BIG, -1, tbig, UINT32_MAX}};
    int nv = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t lo = range[k].tlo, hi = range[k].thi;
        uint32_t cut = range[k].pipe_q4 >= 0 ? wmin : 0;
        if (cut) var[nv++] = (cm_var){range[k].pipe_q4, lo, hi < cut ? hi : cut};
        var[nv++] = (cm_var){range[k].pipe, lo > cut ? lo : cut, hi};
    }
    return nv;
}

/* What a q4_prep_cm dispatch writes: the weight dequantized to fp16 (past wmin
 * tokens), x in fp16 in the weight's K order, and whether it records the write
 * of the whole group's W for the barrier placement (the group's first linear:
 * the others' columns are disjoint from its own; cm_group_preps). */
enum { PREP_W = 1, PREP_X = 2, PREP_WACC = 4 };

/* q4_prep_cm for linear n: W [K, wst] from column col of the W region at word
 * wbase (wst = N and col = 0 unless linears of one input are prepared
 * together), and x (silu: silu(gate) * up, the gate node's inputs). */
static void cm_prep(planner *pl, const r1_node *n, uint32_t wmin, VkDeviceSize wbase,
                    VkDeviceSize wn, VkDeviceSize xn, uint32_t col, uint32_t wst, int what,
                    const r1_node *silu) {
    const r1_qlinear *q = n->q;
    vk_seg *s = pl->s;
    VkDeviceSize T = rows(pl, n->dst);
    int w = what & PREP_W, x = what & PREP_X;
    vk_disp *d = disp_new(pl, VKP_Q4_PREP_CM);
    if (x) act(pl, d, 1, silu ? silu->src[0] : n->src[0], 0);
    if (x && silu) act(pl, d, 9, silu->src[1], 0);
    uint32_t qoff = weight(pl, d, 3, q->qweight), soff = weight(pl, d, 4, q->scales);
    uint32_t zoff = weight(pl, d, 5, q->qzeros);
    if (q->act_order && q->g_idx) weight(pl, d, 6, q->g_idx);
    push_q4(d, q, 0, qoff, soff, zoff, 0);
    push(d, (uint32_t)(wbase + col / 2));
    push(d, (uint32_t)s->cm_x);
    push(d, w ? wmin : UINT32_MAX); /* the shader writes W past wmin tokens */
    push(d, wst);
    push(d, x ? 0u : 1u);
    push(d, x && silu ? 1u : 0u);
    if (d) d->scratch = 8;
    if (w && (what & PREP_WACC) && T > wmin) scratch_use(pl, d, 8, wbase, wn, 1);
    if (x) scratch_use(pl, d, 8, s->cm_x, xn, 1);
    /* invocations, a grid-stride loop: the weight's words past wmin rows, x's */
    uint32_t nw = w ? (uint32_t)q->K / 8 * (uint32_t)q->N / 8 : 0, nx = x ? (uint32_t)q->K / 8 : 0;
    by_rows(d, (uint32_t)T, 0, UINT32_MAX, nx, 256, nw, w ? wmin : UINT32_MAX);
}

/* One gemm_cm variant v, exclusive with the excl variants recorded before it;
 * a variant reading the prep's W finds column 0 of this linear at column col of
 * rows wst long in the W region at word wbase (r1vk_plan_cm; else 0 and N). */
static void cm_gemm(planner *pl, const r1_node *n, cm_var v, uint32_t ks, int excl,
                    VkDeviceSize wbase, VkDeviceSize wn, VkDeviceSize xn, uint32_t col,
                    uint32_t wst) {
    const r1_qlinear *q = n->q;
    vk_seg *s = pl->s;
    int split = v.pipe == VKP_GEMM_CM_SPLIT || v.pipe == VKP_GEMM_CM_SPLIT_Q4;
    int big = v.pipe == VKP_GEMM_CM_BIG;
    int reads_w = v.pipe != VKP_GEMM_CM_Q4 && v.pipe != VKP_GEMM_CM_SPLIT_Q4; /* the prep's W */
    vk_disp *d = disp_new(pl, v.pipe);
    act(pl, d, 2, n->dst, 1);
    uint32_t qoff = reads_w ? 0 : weight(pl, d, 3, q->qweight);
    uint32_t soff = reads_w ? 0 : weight(pl, d, 4, q->scales);
    uint32_t zoff = reads_w ? 0 : weight(pl, d, 5, q->qzeros);
    push_q4(d, q, 0, qoff, soff, zoff, q->bias ? weight(pl, d, 7, q->bias) : 0);
    push(d, (uint32_t)s->cm_x);
    push(d, (uint32_t)(wbase + col / 2));
    if (reads_w) scratch_use(pl, d, 8, wbase, wn, 0);
    scratch_use(pl, d, 8, s->cm_x, xn, 0);
    if (!d) return;
    /* no groups outside the variant's range; within it (row tile, split) pairs,
     * at most ks while splits are taken, or row tiles of gemm_cm.comp's TM */
    uint32_t T = rows(pl, n->dst);
    if (split) {
        gemm_split_grid(pl, d, q, ks);
        by_rows(d, T, v.tlo, v.thi, 0, 1, ks, 0);
    } else {
        push(d, ks); /* no partials */
        push(d, 0u);
        push(d, 0u);
        by_rows(d, T, v.tlo, v.thi, 1, big ? 128 : 64, 0, 0);
    }
    push(d, v.tlo);
    push(d, v.thi);
    push(d, wst);
    d->groups[1] = cdiv((uint32_t)q->N, 128);
    d->excl_prev = excl;
}

/* gemm_cm's variants for node n that the segment's length can reach, recorded
 * one after another (each exclusive with those before it), with the K splits
 * and variant ranges of the group's columns qs (linears side by side fill the
 * GPU together). */
static void cm_gemms(planner *pl, const r1_node *n, VkDeviceSize wbase, VkDeviceSize wn,
                     VkDeviceSize xn, uint32_t col, uint32_t wst, const r1_qlinear *qs) {
    VkDeviceSize T = rows(pl, n->dst);
    uint32_t ks = gemm_splits(pl->c, qs, NULL, NULL);
    cm_var var[5];
    int nv = cm_variants(pl->c, n->q, ks, (uint32_t)qs->N, var), excl = 0;
    for (int k = 0; k < nv && !pl->st; k++)
        if (var[k].tlo < var[k].thi && var[k].tlo < T) /* else it never runs */
            cm_gemm(pl, n, var[k], ks, excl++, wbase, wn, xn, col, wst);
}

/* The tensor-core group starting at nodes[i], its linears' count, with *all
 * their columns as one linear: linears of one input (q, k and v; gate and up)
 * prepared together where merges are on, up to three of one K and G without
 * act-order (each would order x its own way) whose weights stay within cap
 * words (cm_merge_cap); else nodes[i] alone. 0 when nodes[i] is no GPTQ linear of the
 * tensor-core GEMM. Gate and up together (their region 283 MB on 14b; they had
 * been kept within the largest single linear's): H200 14b pp16 / 64 / 1024
 * 593-598 / 2,110-2,116 / 5,858-5,874 -> 657-661 / 2,376-2,391 / 6,159-6,163,
 * pp512 5,752-5,757 -> 5,700-5,718. */
static int cm_group(const vk_ctx *c, const r1_node *nodes, int i, int n, VkDeviceSize cap,
                    r1_qlinear *all) {
    const r1_node *a = &nodes[i];
    if (a->op != R1_OP_MATMUL_Q4 || is_t(a)) return 0;
    *all = *a->q;
    r1_qlinear m = *a->q;
    m.N = 0;
    int cnt = 0;
    while (c->merge && cnt < 3 && i + cnt < n && nodes[i + cnt].op == R1_OP_MATMUL_Q4 &&
           nodes[i + cnt].src[0] == a->src[0] && !is_t(&nodes[i + cnt])) {
        const r1_qlinear *q = nodes[i + cnt].q;
        if (q->K != a->q->K || q->G != a->q->G || q->act_order) return 1;
        m.N += q->N, cnt++;
    }
    VkDeviceSize wn, xn;
    cm_words(c, &m, 1, &wn, &xn);
    if (cnt < 2 || wn > cap) return 1;
    *all = m;
    return cnt;
}

void r1vk_cm_regions(const vk_ctx *c, const r1_node *nodes, int n, VkDeviceSize cap,
                     gemm_scratch *g) {
    r1_qlinear all;
    for (int i = 0, k = 0, cnt; i < n; i += cnt ? cnt : 1) {
        cnt = nodes[i].op == R1_OP_MATMUL_Q4 && nodes[i].dst->ne[0] >= 2
                  ? cm_group(c, nodes, i, n, cap, &all)
                  : 0;
        if (cnt) gemm_scratch_group(c, &all, k++, g);
    }
}

/* H200 14b, the norms and the attention writing the GEMMs' x (a prep dispatch
 * and a barrier fewer for q/k/v, o, and gate/up): pp64 / 512 / 1024
 * 2,392-2,394 / 5,791-5,794 / 6,310-6,315 -> 2,457-2,461 / 5,921-5,945 /
 * 6,434-6,437. */
uint32_t r1vk_cm_x_direct(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_tensor *t = nodes[i].dst;
    int j = i + 1, cnt = 0;
    r1_qlinear all;
    /* rmsnorm.comp writes fp16 for all the rows, from registers (up to 8,192) */
    if (nodes[i].op == R1_OP_RMSNORM && (nodes[i].rows != R1_ROWS_ALL || t->ne[1] > 8192)) return 0;
    if (pl->var == VK_BATCH && pl->s->cm && pl->c->cm == 1 && pl->c->x_direct && j < n)
        cnt = cm_group(pl->c, nodes, j, n, pl->s->cm_cap, &all);
    /* x in the weight's K order: the tensor's own unless act-order permutes it */
    if (!cnt || nodes[j].src[0] != t || all.act_order || t->ne[1] % 4 ||
        read_elsewhere(nodes, j + cnt, n, t, 0, 0))
        return 0;
    pl->x_at = j;
    return (uint32_t)pl->s->cm_x;
}

/* The preps of group (nodes[i], cnt linears, columns all) into W region wr:
 * what = PREP_W and / or PREP_X for the group; its first linear writes x and
 * records the write of the whole group's W. */
static void cm_group_preps(planner *pl, const r1_node *nodes, int i, int cnt, const r1_qlinear *all,
                           int wr, int what, const r1_node *silu) {
    VkDeviceSize wn, xn;
    cm_words(pl->c, all, rows(pl, nodes[i].dst), &wn, &xn);
    uint32_t wmin = cm_wmin(pl->c, all), col = 0; /* one G: one cm_wmin for all */
    for (int m = 0; m < cnt; m++) {
        int w = m == 0 ? what | PREP_WACC : what & PREP_W;
        if (w & (PREP_W | PREP_X))
            cm_prep(pl, &nodes[i + m], wmin, pl->s->cm_w[wr], wn, xn, col, (uint32_t)all->N, w,
                    silu);
        col += (uint32_t)nodes[i + m].q->N;
    }
}

/* With prep_ahead: the next group's W written now into the other region (its
 * preps recorded after this group's GEMMs, beside which they run: the GEMMs
 * leave SMs idle, e.g. o and down at 512 tokens 160 tiles on 264 slots), so that
 * its own turn only prepares x. The W preps had taken 11% of a 512-token pass
 * (H200 14b) between barriers of their own: pp256 / 512 / 1024 3,785-3,790 /
 * 5,489-5,493 / 5,728-5,744 -> 4,147-4,148 / 5,758-5,761 / 5,874-5,889. */
static void cm_prep_ahead(planner *pl, const r1_node *nodes, int j, int n, int wr) {
    if (!pl->c->prep_ahead || pl->s->cm_w[0] == pl->s->cm_w[1]) return;
    while (j < n && nodes[j].op != R1_OP_MATMUL_Q4) j++;
    r1_qlinear all;
    int cnt = j < n ? cm_group(pl->c, nodes, j, n, pl->s->cm_cap, &all) : 0;
    if (!cnt) return;
    cm_group_preps(pl, nodes, j, cnt, &all, wr, PREP_W, NULL);
    pl->ahead_at = j;
}

/* Prompts: the SiLU gate before a tensor-core GEMM (down) computed by its prep
 * on the way to fp16, where nothing else reads the gate's output: one pass over
 * the rows and a barrier fewer (H200 14b pp64 / 512 / 1024 1,948-1,951 /
 * 4,794-4,799 / 5,443-5,461 -> 2,058-2,060 / 4,876-4,931 / 5,530-5,542). */
static int silu_cm(const planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i], *m = i + 1 < n ? &nodes[i + 1] : NULL;
    return pl->c->fuse && a->op == R1_OP_SILU_MUL && m && m->op == R1_OP_MATMUL_Q4 &&
           m->src[0] == a->dst && !read_elsewhere(nodes, i + 2, n, a->dst, 0, 0);
}

/* A prompt GEMM on tensor cores: q4_prep_cm writes the fp16 operands (x in the
 * weight's K order, and the weight dequantized where a variant reads it) to the
 * segment's scratch, gemm_cm multiplies them. gemm_cm's variants each run for a
 * range of prompt lengths (tlo, thi] and have no groups at others: K splits
 * while one takes two or more (ks / row tiles of 64), the 64 x 128 tile, the
 * 128 x 128 tile (where built) past cm_big_from tokens. Up to CM_Q4_UPTO tokens
 * the first two read the GPTQ words themselves where built (groups that a
 * 32-deep step never crosses), and the prep then writes the weight only for
 * longer prompts. Only the variants the segment's length can reach are
 * recorded.
 * Linears of one input (q, k and v; cm_group) are prepared together: their
 * preps write W side by side, [K, N0 + N1 + N2] (the first also x), with no
 * barrier between them, and their GEMMs then run side by side too, each
 * reading its columns, with the K splits and tile ranges of all the columns
 * (k and v took 64-row K-split tiles up to 512 tokens as if alone: H200 14b
 * pp128 / 256 / 512 2,983-2,997 / 3,461-3,466 / 4,533-4,536 -> 3,062-3,068 /
 * 3,566-3,575 / 4,592-4,625). Alone, k and v have too few column tiles to fill
 * the GPU (14b: 8 against q's 40) and ran between barriers, after q. H200 14b,
 * side by side: pp64 / 256 / 512 / 1024 1,479-1,483 / 3,342-3,346 / 4,426-4,449
 * / 4,970-4,972 -> 1,583-1,586 / 3,446-3,458 / 4,469-4,508 / 5,126-5,149.
 * Groups take the W regions in turn (one region twice without prep_ahead).
 * Returns the nodes consumed (a SiLU gate before the group included), 0 when
 * nodes[i] starts no tensor-core GEMM. */
int r1vk_plan_cm(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *silu = silu_cm(pl, nodes, i, n) ? &nodes[i] : NULL;
    int at = i + (silu != NULL);
    r1_qlinear all;
    int cnt =
        pl->var == VK_BATCH && pl->s->cm ? cm_group(pl->c, nodes, at, n, pl->s->cm_cap, &all) : 0;
    if (!cnt) return 0;
    int wr = pl->cm_groups++ & 1, ahead = pl->ahead_at == at;
    VkDeviceSize wn, xn;
    cm_words(pl->c, &all, rows(pl, nodes[at].dst), &wn, &xn);
    int xdone = !silu && pl->x_at == at; /* its producer wrote x (r1vk_cm_x_direct) */
    cm_group_preps(pl, nodes, at, cnt, &all, wr, (ahead ? 0 : PREP_W) | (xdone ? 0 : PREP_X), silu);
    uint32_t col = 0;
    for (int m = 0; m < cnt; m++) {
        cm_gemms(pl, &nodes[at + m], pl->s->cm_w[wr], wn, xn, col, (uint32_t)all.N, &all);
        col += (uint32_t)nodes[at + m].q->N;
    }
    cm_prep_ahead(pl, nodes, at + cnt, n, wr ^ 1);
    return at + cnt - i;
}

static void matmul_q4(planner *pl, const r1_node *n, const q4fuse *f) {
    const r1_qlinear *q = n->q;
    int dec = pl->var == VK_DECODE;
    if (is_t(n)) return matmul_q4t(pl, n, f);
    int fast = fast_ok(pl, q);
    vk_disp *d = disp_new(pl, !dec ? VKP_Q4_GEMM : fast ? VKP_Q4_MATVEC : VKP_Q4_MATVEC_SIMPLE);
    const r1_node *pro = f ? (f->norm ? f->norm : f->silu) : NULL;
    act(pl, d, 1, pro ? pro->src[0] : n->src[0], 0);
    act(pl, d, 2, f && f->add ? f->add->dst : n->dst, 1);
    uint32_t qoff = weight(pl, d, 3, q->qweight), soff = weight(pl, d, 4, q->scales);
    uint32_t zoff = weight(pl, d, 5, q->qzeros), boff = 0, woff = 0;
    int perm = q->act_order && q->g_idx;
    if (perm) weight(pl, d, 6, q->g_idx);
    if (q->bias) boff = weight(pl, d, 7, q->bias);
    if (f && f->norm) woff = weight(pl, d, 9, f->norm->w);
    if (f && f->silu) act(pl, d, 9, f->silu->src[1], 0);
    if (f && f->add) act(pl, d, 10, f->add->src[0] == n->dst ? f->add->src[1] : f->add->src[0], 0);
    push_q4(d, q, f && f->add ? Q4F_EPI : 0u, qoff, soff, zoff, boff);
    if (!d) return;
    uint32_t T = rows(pl, n->dst);
    if (fast && (qoff % 4 || soff % 4)) fast = 0, d->pipe = VKP_Q4_MATVEC_SIMPLE;
    if (!fast) {
        if (pro || (f && f->add))
            pl->st =
                r1__err(pl->err, R1_E_UNSUPPORTED, "vulkan: fused nodes need the split-K matvec");
        d->groups[0] = cdiv((uint64_t)q->N, dec ? 32 : 128); /* q4_gemm: 64 x 128 tiles */
        d->groups[1] = dec ? T : cdiv(T, 64);
        if (!dec) d->groups[2] = gemm_split_grid(pl, d, q, gemm_splits(pl->c, q, NULL, NULL));
        return;
    }
    uint32_t tw = q4_tile(pl->c, q->K, cdiv((uint64_t)q->N, Q4_TILE));
    uint32_t ks, rps, tiles = cdiv((uint64_t)q->N, tw);
    q4_split(pl->c, q->K, tiles, &ks, &rps);
    VkDeviceSize poff = pl->s->scratch_elems, coff = poff + (VkDeviceSize)T * ks * (uint32_t)q->N;
    VkDeviceSize ssoff = coff + (VkDeviceSize)T * tiles;
    push_split(d, ks, rps, poff, coff, ssoff, f && f->norm ? f->norm : NULL, woff,
               f && f->silu ? Q4P_SILU : 0u);
    push(d, 1u); /* one matrix: the merged fields stay zero */
    for (int i = 0; i < Q4_MERGED_WORDS - 1; i++) push(d, 0u);
    split_grid(pl, d, tiles, ks, T, ssoff + (f && f->norm ? (VkDeviceSize)T * tiles * ks : 0),
               tw == Q4_TILE_WIDE);
}

/* Size of the weight block that holds buf (0: not a block, e.g. an import). */
static VkDeviceSize block_bytes(const vk_ctx *c, VkBuffer buf) {
    for (const vk_block *b = c->blocks; b; b = b->next)
        if (b->b.buf == buf) return b->b.size;
    return 0;
}

/* Whether a and b (weights of the same kind) lie in one block bindable whole. */
static int same_block(const planner *pl, const r1_tensor *a, const r1_tensor *b) {
    if (!a || !b) return a == b || !a || !b; /* a missing bias binds nothing */
    const vk_ref *ra = ref_of(a), *rb = ref_of(b);
    if (!ra || !rb || ra->buf != rb->buf) return 0;
    VkDeviceSize bb = block_bytes(pl->c, ra->buf);
    return bb && bb <= pl->c->props.limits.maxStorageBufferRange;
}

/* Uploads q's deferred weights now (in node order, so neighbours land together). */
static void resolve_linear(planner *pl, const r1_qlinear *q) {
    r1_tensor *ts[] = {q->qweight, q->qzeros, q->scales, q->bias};
    for (int i = 0; i < 4 && !pl->st; i++)
        if (ts[i]) pl->st = r1vk_weight_resolve(pl->c, ts[i], pl->err);
}

/* Whether matvecs a and b can share one dispatch: same input shape and group,
 * no act-order (each has its own order), the same bias type, and each kind of
 * weight (words, scales, zeros, bias) of both in one block bindable whole. */
static int mergeable(const planner *pl, const r1_qlinear *a, const r1_qlinear *b) {
    if (a->K != b->K || a->G != b->G || a->zeros_v2 != b->zeros_v2 || a->act_order ||
        b->act_order || (a->bias && b->bias && a->bias->type != b->bias->type))
        return 0;
    return same_block(pl, a->qweight, b->qweight) && same_block(pl, a->scales, b->scales) &&
           same_block(pl, a->qzeros, b->qzeros) && same_block(pl, a->bias, b->bias);
}

/* The whole block holding weight w, bound at slot. */
static void bind_block(const planner *pl, vk_disp *d, int slot, const r1_tensor *w) {
    VkBuffer buf = ref_of(w)->buf;
    d->b[slot] = (vk_bind){buf, 0, block_bytes(pl->c, buf)};
}

/* Element offset of weight w inside its block, in units of its dtype. */
static uint32_t block_elem(const r1_tensor *w) {
    return (uint32_t)(ref_of(w)->off / r1__dtype_size(w->type));
}

/* cnt (2 or 3) native matvecs of one RMSNorm's output in one dispatch: the
 * norm is staged once per workgroup for all, each matrix keeps its output. */
static void matmul_q4_merged(planner *pl, const r1_node *const *ms, int cnt, const r1_node *norm) {
    vk_disp *d = disp_new(pl, VKP_Q4_MATVEC);
    if (!d) return;
    const r1_qlinear *q0 = ms[0]->q;
    static const int out_slot[3] = {2, 6, 10};
    act(pl, d, 1, norm->src[0], 0);
    for (int m = 0; m < cnt; m++) act(pl, d, out_slot[m], ms[m]->dst, 1);
    bind_block(pl, d, 3, q0->qweight);
    bind_block(pl, d, 4, q0->scales);
    bind_block(pl, d, 5, q0->qzeros);
    for (int m = 0; m < cnt; m++)
        if (ms[m]->q->bias) bind_block(pl, d, 7, ms[m]->q->bias);
    uint32_t woff = weight(pl, d, 9, norm->w), T = 1, tiles = 0, first[3], all = 0;
    uint32_t flags = q0->zeros_v2 ? Q4F_V2 : 0u;
    const r1_tensor *bt = NULL;
    for (int m = 0; m < cnt; m++) tiles += cdiv((uint64_t)ms[m]->q->N, Q4_TILE);
    uint32_t tw = q4_tile(pl->c, q0->K, tiles);
    tiles = 0;
    for (int m = 0; m < cnt; m++) {
        first[m] = tiles;
        tiles += cdiv((uint64_t)ms[m]->q->N, tw);
        all += (uint32_t)ms[m]->q->N;
        if (ms[m]->q->bias)
            flags |= m == 0 ? Q4F_BIAS : m == 1 ? Q4F_BIAS1 : Q4F_BIAS2, bt = ms[m]->q->bias;
    }
    uint32_t ks, rps;
    q4_split(pl->c, q0->K, tiles, &ks, &rps);
    VkDeviceSize poff = pl->s->scratch_elems, coff = poff + (VkDeviceSize)T * ks * all;
    VkDeviceSize ssoff = coff + (VkDeviceSize)T * tiles;
    const r1_qlinear *q;
    push(d, (uint32_t)q0->K);
    push(d, (uint32_t)q0->N);
    push(d, (uint32_t)q0->G);
    push(d, flags);
    push(d, block_elem(q0->qweight));
    push(d, block_elem(q0->scales));
    push(d, block_elem(q0->qzeros));
    push(d, q0->bias ? block_elem(q0->bias) : 0u);
    push(d, bt ? (uint32_t)bt->type : 0u);
    push_split(d, ks, rps, poff, coff, ssoff, norm, woff, 0u);
    push(d, (uint32_t)cnt);
    push(d, first[1]);
    push(d, cnt > 2 ? first[2] : tiles);
    for (int m = 1; m < 3; m++) {
        q = m < cnt ? ms[m]->q : NULL;
        push(d, q ? block_elem(q->qweight) : 0u);
        push(d, q ? block_elem(q->scales) : 0u);
        push(d, q ? block_elem(q->qzeros) : 0u);
        push(d, q && q->bias ? block_elem(q->bias) : 0u);
        push(d, q ? (uint32_t)q->N : 0u);
    }
    split_grid(pl, d, tiles, ks, T, ssoff + (VkDeviceSize)T * tiles * ks, tw == Q4_TILE_WIDE);
}

void r1vk_plan_matmul_q4(planner *pl, const r1_node *n) {
    matmul_q4(pl, n, NULL);
}

static int native_fast(const planner *pl, const r1_node *m) {
    return m->op == R1_OP_MATMUL_Q4 && !is_t(m) && fast_ok(pl, m->q);
}

/* The residual ADD after matvec nodes[at] that its epilogue can do: the
 * matvec's output is read by nothing else, and the add's output overlaps none
 * of the dispatch's inputs. */
static const r1_node *epi_add(const r1_node *nodes, int at, int n, const r1_tensor *x,
                              const r1_tensor *x2) {
    const r1_node *m = &nodes[at], *b = at + 1 < n ? &nodes[at + 1] : NULL;
    if (!b || b->op != R1_OP_ADD || (b->src[0] == m->dst) == (b->src[1] == m->dst)) return NULL;
    const r1_tensor *res = b->src[0] == m->dst ? b->src[1] : b->src[0];
    if (read_elsewhere(nodes, at + 2, n, m->dst, 0, 0)) return NULL;
    if (!fused_safe((const r1_tensor *[]){x, x2, res}, 3, (const r1_tensor *[]){b->dst}, 1))
        return NULL;
    return b;
}

/* Decode fusions around native-layout matvecs (q4_matvec.comp): an RMSNorm
 * read only by the matvecs that follow it becomes their prologue; a SiLU gate
 * read only by the next matvec becomes its prologue; a residual add after a
 * matvec becomes its epilogue. The tensors dropped (norm, gate and matvec
 * outputs) are read by no other node; every tensor of a layer lives in that
 * layer's segment, so no other segment reads them either. */
static int plan_fused_native(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i];
    if (a->op == R1_OP_RMSNORM && a->rows == R1_ROWS_ALL) {
        int j = i + 1;
        while (
            j < n && native_fast(pl, &nodes[j]) && nodes[j].src[0] == a->dst &&
            fused_safe((const r1_tensor *[]){a->src[0]}, 1, (const r1_tensor *[]){nodes[j].dst}, 1))
            j++;
        if (j == i + 1 || read_elsewhere(nodes, i + 1, n, a->dst, i + 1, j)) return 0;
        /* up to three at a time in one dispatch when their weights share a block */
        for (int k = i + 1; k < j;) {
            const r1_node *ms[3] = {&nodes[k]};
            int cnt = 1;
            for (int r = k; pl->c->merge && r < j && r < k + 3; r++) resolve_linear(pl, nodes[r].q);
            while (pl->c->merge && cnt < 3 && k + cnt < j &&
                   mergeable(pl, ms[0]->q, nodes[k + cnt].q) &&
                   (cnt < 2 || mergeable(pl, ms[1]->q, nodes[k + cnt].q)))
                ms[cnt] = &nodes[k + cnt], cnt++;
            if (cnt > 1)
                matmul_q4_merged(pl, ms, cnt, a);
            else
                matmul_q4(pl, &nodes[k], &(q4fuse){.norm = a});
            k += cnt;
        }
        return j - i;
    }
    const r1_node *silu = NULL;
    int at = i;
    if (a->op == R1_OP_SILU_MUL && i + 1 < n && native_fast(pl, &nodes[i + 1]) &&
        nodes[i + 1].src[0] == a->dst && !read_elsewhere(nodes, i + 2, n, a->dst, 0, 0) &&
        fused_safe((const r1_tensor *[]){a->src[0], a->src[1]}, 2,
                   (const r1_tensor *[]){nodes[i + 1].dst}, 1))
        silu = a, at = i + 1;
    else if (!native_fast(pl, a))
        return 0;
    const r1_node *m = &nodes[at];
    const r1_node *add =
        epi_add(nodes, at, n, silu ? silu->src[0] : m->src[0], silu ? silu->src[1] : NULL);
    if (!silu && !add) return 0;
    matmul_q4(pl, m, &(q4fuse){.silu = silu, .add = add});
    return at - i + 1 + (add != NULL);
}

int r1vk_plan_fused_q4(planner *pl, const r1_node *nodes, int i, int n) {
    int used = plan_fused_q4t(pl, nodes, i, n);
    return used ? used : plan_fused_native(pl, nodes, i, n);
}

/* ---- x quantized once (decode, int8-dot matvecs) ----
 * A matvec with a residual epilogue (o, down) whose sum h is read, through an
 * RMSNorm prologue, by the next matvecs (q/k/v, gate/up) also writes the
 * digits of h * the norm's weight (Q4_XQOUT), so those stage them as they are
 * (Q4_PREQ) instead of each workgroup computing them again. */

#define PF_FLAGS 3
#define PF_PRO 13
#define PF_WTYPE 14
#define PF_WOFF 15
#define PF_SSOFF 17
#define PF_NMAT 18
#define PF_XQ 21 /* the producer's (single-matrix) merged fields: region, weight, type */

static int is_dp_matvec(const vk_ctx *c, const vk_disp *d) {
    if (d->pipe != VKP_Q4_MATVEC && d->pipe != VKP_Q4_MATVEC_MT) return 0;
    const char *v = c->pipe_variant[d->pipe];
    return v && strstr(v, "_dp") != NULL;
}

static int same_bind(const vk_bind *a, const vk_bind *b) {
    return a->buf == b->buf && a->off == b->off;
}

static int writes_over(const vk_disp *d, const vk_bind *t) {
    const vk_access a = {t->buf, t->off, t->range, 0};
    for (int i = 0; i < d->n_acc; i++)
        if (d->acc[i].write && r1vk_overlap(&d->acc[i], &a)) return 1;
    return 0;
}

static void add_access(vk_disp *d, const vk_seg *s, VkDeviceSize off, VkDeviceSize n, int w) {
    d->scratch = 8;
    d->acc[d->n_acc++] = (vk_access){(VkBuffer)(uintptr_t)s, off, n, w};
}

/* Consumers of producer d[i]'s output (up to 8); 0 when the pair does not qualify. */
static int preq_consumers(const vk_ctx *c, vk_disp *d, int nd, int i, int *cons) {
    const vk_disp *p = &d[i];
    uint32_t N = p->push[1];
    if (!is_dp_matvec(c, p) || !(p->push[PF_FLAGS] & Q4F_EPI) || (p->push[PF_FLAGS] & Q4F_PERM) ||
        p->push[PF_NMAT] != 1 || (p->push[PF_FLAGS] >> 8) > 1 || N % 32 || N / 32 > 256 ||
        p->groups[2] != 1 || p->n_acc >= VK_MAX_ACCESS)
        return 0;
    int n = 0;
    for (int j = i + 1; j < nd && n < 8; j++) {
        const vk_disp *q = &d[j];
        if (same_bind(&q->b[1], &p->b[2]) && is_dp_matvec(c, q) && q->push[PF_PRO] == Q4P_NORM &&
            !(q->push[PF_FLAGS] & (Q4F_PERM | Q4F_PREQ)) && q->push[0] == N &&
            q->n_acc < VK_MAX_ACCESS &&
            (!n || (same_bind(&q->b[9], &d[cons[0]].b[9]) &&
                    q->push[PF_WOFF] == d[cons[0]].push[PF_WOFF])))
            cons[n++] = j;
        if (writes_over(q, &p->b[2])) break; /* h is rewritten: later readers see another */
    }
    return n;
}

void r1vk_plan_preq(const vk_ctx *c, vk_seg *s) {
    vk_disp *d = s->d[VK_DECODE];
    int nd = s->nd[VK_DECODE], cons[8];
    for (int i = 0; i < nd; i++) {
        int n = preq_consumers(c, d, nd, i, cons);
        if (!n) continue;
        vk_disp *p = &d[i];
        uint32_t N = p->push[1], R = N / 8, blocks = N / 32;
        VkDeviceSize region = (s->scratch_elems + 3) & ~(VkDeviceSize)3;
        VkDeviceSize words =
            (VkDeviceSize)R * 2 * (VkDeviceSize)c->x_digits + 3 * blocks; /* stage_preq */
        s->scratch_elems = region + words;
        const vk_disp *q0 = &d[cons[0]];
        p->push[PF_FLAGS] |= Q4F_XQOUT;
        p->push[PF_XQ] = (uint32_t)region;
        p->push[PF_XQ + 1] = q0->push[PF_WOFF];  /* the norm weight's element offset */
        p->push[PF_XQ + 2] = q0->push[PF_WTYPE]; /* ... and dtype */
        p->b[6] = q0->b[9];
        add_access(p, s, region, words, 1);
        s->n_preq++;
        for (int k = 0; k < n; k++) {
            vk_disp *q = &d[cons[k]];
            q->push[PF_FLAGS] |= Q4F_PREQ;
            q->push[PF_WOFF] = (uint32_t)region;
            q->push[PF_SSOFF] = blocks;
            add_access(q, s, region, words, 0);
        }
    }
}
