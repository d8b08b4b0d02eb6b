/* Graph nodes -> dispatches.
 *
 * Two plans per segment: decode (one token; matrix-vector shaders, one
 * workgroup row) and batch (prompts; tiled matrix-matrix shaders, sized for
 * the graph's n_batch rows, with workgroups past the call's n_tokens leaving
 * at once). Both are recorded once; run-time sizes come from the run buffer.
 *
 * Fusions here (every tensor the fused nodes write is still written):
 *   ADD, RMSNORM(of that sum, all rows)  -> add_rmsnorm
 *   ROPE q, ROPE k, KV_STORE(k, v)        -> rope_kv
 *   ROPE q, ROPE k, KV_STORE, ATTN (decode, rotated q and k read by nothing
 *   else)                                 -> attn_dec with its rope prologue
 * and, in vk_plan_q4.c, the decode fusions of norms, SiLU gates and residual
 * adds into GPTQ matvecs (which drop outputs no other node reads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk_plan.h"

/* Output t at binding slot, or where xh is nonzero its fp16 form at scratch
 * word xh instead, as the next GEMM's x (r1vk_cm_x_direct). */
static void out_or_x(planner *pl, vk_disp *d, int slot, const r1_tensor *t, uint32_t xh) {
    if (xh)
        scratch_use(pl, d, 8, xh, (VkDeviceSize)rows(pl, t) * (VkDeviceSize)t->ne[1] / 2, 1);
    else
        act(pl, d, slot, t, 1);
}

/* xh: out_or_x. */
static void rmsnorm(planner *pl, const r1_node *n, const r1_node *add, uint32_t xh) {
    vk_disp *d = disp_new(pl, add ? VKP_ADD_RMSNORM : VKP_RMSNORM);
    act(pl, d, 1, n->src[0] == (add ? add->dst : NULL) ? add->src[0] : n->src[0], 0);
    out_or_x(pl, d, 2, n->dst, xh);
    uint32_t woff = weight(pl, d, 3, n->w);
    if (add) {
        act(pl, d, 4, add->src[1], 0);
        act(pl, d, 5, add->dst, 1);
    }
    push(d, (uint32_t)n->src[0]->ne[1]);
    push(d, (uint32_t)n->rows);
    push(d, fbits(n->f0));
    push(d, (uint32_t)n->w->type);
    push(d, woff);
    push(d, xh);
    by_rows(d, rows(pl, n->dst), 0, UINT32_MAX, 1, 1, 0, 0); /* a workgroup a row */
}

/* Row counts up to which the output head of a prompt runs as matrix-vector
 * products, one pass over the weights per row: a prompt's head usually wants
 * one row, for which the tiled GEMM took 4.8 ms on the H200 (14b, fp16 head)
 * against ~0.4 for one pass. */
#define HEAD_MATVEC_ROWS 8u

/* The output head: matrix-vector products for few rows, and in prompts also the
 * tiled GEMM for more, each exiting at once at the other's row counts. */
static void matmul(planner *pl, const r1_node *n) {
    int dec = pl->var == VK_DECODE;
    uint32_t N = (uint32_t)n->w->ne[0], R = (uint32_t)rows(pl, n->dst);
    for (int gemm = 0; gemm < 1 + (!dec && R > HEAD_MATVEC_ROWS); gemm++) {
        vk_disp *d = disp_new(pl, gemm ? VKP_DENSE_GEMM : VKP_DENSE_MATVEC);
        act(pl, d, 1, n->src[0], 0);
        act(pl, d, 2, n->dst, 1);
        uint32_t woff = weight(pl, d, 3, n->w);
        push(d, (uint32_t)n->w->ne[1]);
        push(d, N);
        push(d, (uint32_t)n->rows);
        push(d, (uint32_t)n->w->type);
        push(d, woff);
        push(d, gemm ? HEAD_MATVEC_ROWS : 0u);
        push(d, gemm ? UINT32_MAX : HEAD_MATVEC_ROWS); /* decode: one row */
        if (!d) return;
        d->groups[0] = cdiv(N, gemm ? 64 : 8);
        d->groups[1] = gemm ? cdiv(R, 64) : R < HEAD_MATVEC_ROWS ? R : HEAD_MATVEC_ROWS;
        d->excl_prev = gemm;
    }
}

/* The table slot of a RoPE configuration (one per distinct theta, head dim). */
static uint32_t rope_slot(planner *pl, const r1_node *n) {
    vk_seg *s = pl->s;
    for (int i = 0; i < s->n_ropes; i++)
        if (s->ropes[i].theta == n->f0 && s->ropes[i].hd == n->i2) return s->ropes[i].toff;
    if (s->n_ropes == VK_MAX_ROPES) {
        if (!pl->st)
            pl->st = r1__err(pl->err, R1_E_UNSUPPORTED, "vulkan: more than %d RoPE variants",
                             VK_MAX_ROPES);
        return 0;
    }
    uint32_t off = (uint32_t)s->tok_rows; /* after the token ids */
    for (int i = 0; i < s->n_ropes; i++) off += (uint32_t)s->max_rows * (uint32_t)s->ropes[i].hd;
    s->ropes[s->n_ropes++] = (vk_rope){n->f0, n->i2, off};
    return off;
}

static void rope(planner *pl, const r1_node *n, const r1_node *rk, const r1_node *kv) {
    vk_disp *d = disp_new(pl, kv ? VKP_ROPE_KV : VKP_ROPE);
    act(pl, d, 1, n->dst, 1);
    uint32_t work = (uint32_t)n->i0 * (uint32_t)n->i2 / 2;
    if (kv) {
        act(pl, d, 2, rk->dst, 1);
        act(pl, d, 3, kv->src[1], 0);
        act(pl, d, 4, kv->kv[0], 1);
        act(pl, d, 5, kv->kv[1], 1);
        work += (uint32_t)rk->i0 * (uint32_t)rk->i2 / 2;
    }
    push(d, (uint32_t)n->i0);
    push(d, (uint32_t)n->i2);
    push(d, rope_slot(pl, n));
    push(d, kv ? (uint32_t)rk->i0 : 0u);
    by_rows(d, rows(pl, n->dst), 0, UINT32_MAX, work, 256, 0, 0); /* rope.comp: grid-stride */
}

/* The embedding lookup: ids leading the run buffer's tables (vk_record.c). */
static void embed(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_EMBED);
    act(pl, d, 2, n->dst, 1);
    uint32_t woff = weight(pl, d, 3, n->w);
    push(d, (uint32_t)n->w->ne[1]);
    push(d, (uint32_t)n->w->ne[0]);
    push(d, (uint32_t)n->w->type);
    push(d, woff);
    if (d) {
        d->groups[0] = cdiv((uint64_t)n->w->ne[1], 1024);
        d->groups[1] = rows(pl, n->dst);
    }
}

static void kv_store(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_KV_STORE);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->src[1], 0);
    act(pl, d, 3, n->kv[0], 1);
    act(pl, d, 4, n->kv[1], 1);
    uint32_t row = (uint32_t)n->i1 * (uint32_t)n->i2;
    push(d, row);
    by_rows(d, rows(pl, n->src[0]), 0, UINT32_MAX, row, 256, 0, 0); /* kv_store.comp: ditto */
}

#define ATTN_CH 64 /* keys per workgroup of attn_dec.comp (its CH) */

static int attn_split(const r1_node *n) {
    return n->i0 / n->i1 <= 16 && n->i2 <= 128 && n->i2 % 4 == 0;
}

/* Decode attention split over the cache (attn_dec.comp), then the combine of
 * its chunks' partials (attn_combine.comp; chained, it runs beside attn_dec and
 * waits on its counter). The partials share one scratch region after the chain
 * counters (recorded as written, so two attentions never run unordered); the
 * counters do not: each attention has its own set, zeroed at the start of the
 * pass. A chained combine polls from its launch, without waiting for the
 * dispatches before its attention, so with one set shared by the layers (reset
 * by the last combine of each) a later layer's combine could see the earlier
 * layer's count and read unwritten partials (H200: greedy tokens departed at
 * 64 positions with two or more layers on the GPU; lavapipe runs dispatches one
 * after another, so it never showed). With
 * rq, rk and kv (ROPE q, ROPE k, KV_STORE before it) attn_dec also rotates q
 * and k and stores the new k and v rows in the caches. */
static void attn_dec(planner *pl, const r1_node *n, const r1_node *rq, const r1_node *rk,
                     const r1_node *kv) {
    vk_disp *d = disp_new(pl, VKP_ATTN_DEC);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->kv[0], kv != NULL);
    act(pl, d, 3, n->kv[1], kv != NULL);
    act(pl, d, 4, n->dst, 1);
    if (kv) {
        act(pl, d, 6, rk->dst, 0);
        act(pl, d, 7, kv->src[1], 0);
    }
    uint32_t nmax = (uint32_t)((n->kv[0]->ne[0] + ATTN_CH - 1) / ATTN_CH);
    push(d, (uint32_t)n->i0);
    push(d, (uint32_t)n->i1);
    push(d, (uint32_t)n->i2);
    push(d, (uint32_t)pl->s->attn_poff);
    push(d, (uint32_t)(pl->s->attn_coff + (VkDeviceSize)pl->s->n_attn++ * pl->s->attn_kv));
    push(d, nmax);
    push(d, kv ? 1u : 0u);
    push(d, kv ? rope_slot(pl, rq) : 0u);
    if (!d) return;
    scratch_use(pl, d, 5, pl->s->attn_poff, pl->s->attn_part, 1);
    d->groups[0] = nmax;
    d->groups[1] = (uint32_t)n->i1;
    d->chain_sig = (uint32_t)n->i1; /* chunk 0 of each kv head, whatever the length */
    /* the combine (attn_combine.comp): a workgroup per query head */
    vk_disp *cb = disp_new(pl, VKP_ATTN_COMBINE);
    act(pl, cb, 4, n->dst, 1);
    for (int i = 0; cb && i < 6; i++) cb->push[i] = d->push[i];
    if (cb) cb->push_size = 6;
    if (!cb) return;
    scratch_use(pl, cb, 5, pl->s->attn_poff, pl->s->attn_part, 0);
    cb->groups[0] = (uint32_t)(n->i0 / n->i1);
    cb->groups[1] = (uint32_t)n->i1;
    cb->chain_sig = cb->groups[0] * cb->groups[1];
    cb->joins_prev = 1;
}

/* ROPE q, ROPE k, KV_STORE, ATTN of one decode step, when the rotated q and k
 * are read by nothing else (attn_dec.comp rotates them itself). */
static int fuse_rope_attn(const planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i], *b = &nodes[i + 1], *c = &nodes[i + 2], *at = &nodes[i + 3];
    return pl->var == VK_DECODE && at->op == R1_OP_ATTN && attn_split(at) && at->i2 % 8 == 0 &&
           at->src[0] == a->dst && at->kv[0] == c->kv[0] && at->kv[1] == c->kv[1] &&
           a->i2 == at->i2 && !read_elsewhere(nodes, i, n, a->dst, i, i + 4) &&
           !read_elsewhere(nodes, i, n, b->dst, i, i + 4) && !r1vk_env_flag("R1_VK_NO_ROPE_ATTN");
}

/* Prompts: attn_cm.comp in the fp16 tensor-core mode (head dim 128). */
static int attn_cm_ok(const planner *pl, const r1_node *n) {
    return pl->var != VK_DECODE && pl->c->pipe[VKP_ATTN_CM] && n->i2 == 128;
}

/* xh: out_or_x (attn_cm only). */
static void attn(planner *pl, const r1_node *n, uint32_t xh) {
    if (pl->var == VK_DECODE && attn_split(n) && pl->c->fuse)
        return attn_dec(pl, n, NULL, NULL, NULL);
    /* attn_cm.comp (64 rows a workgroup, 32 emulated) in the fp16 tensor-core
     * mode, else attn_tiled.comp (32) where the device has shuffles, else
     * attn.comp (16) */
    int cm = attn_cm_ok(pl, n);
    int tiled = pl->c->pipe[VKP_ATTN_TILED] && n->i2 % 32 == 0;
    vk_disp *d = disp_new(pl, cm ? VKP_ATTN_CM : tiled ? VKP_ATTN_TILED : VKP_ATTN);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->kv[0], 0);
    act(pl, d, 3, n->kv[1], 0);
    out_or_x(pl, d, 4, n->dst, cm ? xh : 0);
    push(d, (uint32_t)n->i0);
    push(d, (uint32_t)n->i1);
    push(d, (uint32_t)n->i2);
    if (cm) push(d, xh);
    if (!d) return;
    uint32_t qb = cm ? (pl->c->cm_emu ? 32 : 64) : tiled ? 32 : 16;
    /* row blocks of the call's rows (attn_cm counts them from its grid) */
    by_rows(d, rows(pl, n->dst), 0, UINT32_MAX, (uint32_t)(n->i0 / n->i1), qb, 0, 0);
    d->groups[1] = (uint32_t)n->i1;
}

static void eltwise(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_ELTWISE);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->src[1], 0);
    act(pl, d, 3, n->dst, 1);
    push(d, (uint32_t)n->dst->ne[1]);
    push(d, n->op == R1_OP_ADD ? 0u : 1u);
    by_rows(d, rows(pl, n->dst), 0, UINT32_MAX, (uint32_t)n->dst->ne[1], 256, 0, 0); /* ditto */
}

static int fuse_add_norm(const r1_node *a, const r1_node *b) {
    return a->op == R1_OP_ADD && b->op == R1_OP_RMSNORM && b->rows == R1_ROWS_ALL &&
           b->src[0] == a->dst && a->dst != a->src[1];
}

static int fuse_rope_kv(const r1_node *a, const r1_node *b, const r1_node *c) {
    return a->op == R1_OP_ROPE && b->op == R1_OP_ROPE && c->op == R1_OP_KV_STORE &&
           a->f0 == b->f0 && a->i2 == b->i2 && c->src[0] == b->dst && c->i2 == b->i2 &&
           c->i1 == b->i0 && a->dst != b->dst && c->src[1] != a->dst && c->src[1] != b->dst;
}

static int plan_node(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i];
    int fuse = pl->c->fuse, used;
    if (fuse && pl->var == VK_DECODE && (used = r1vk_plan_fused_q4(pl, nodes, i, n))) return used;
    if (pl->var == VK_BATCH && (used = r1vk_plan_cm(pl, nodes, i, n))) return used;
    if (fuse && i + 1 < n && fuse_add_norm(a, &nodes[i + 1])) {
        rmsnorm(pl, &nodes[i + 1], a, r1vk_cm_x_direct(pl, nodes, i + 1, n));
        return 2;
    }
    if (fuse && i + 2 < n && fuse_rope_kv(a, &nodes[i + 1], &nodes[i + 2])) {
        if (i + 3 < n && fuse_rope_attn(pl, nodes, i, n)) {
            attn_dec(pl, &nodes[i + 3], a, &nodes[i + 1], &nodes[i + 2]);
            return 4;
        }
        rope(pl, a, &nodes[i + 1], &nodes[i + 2]);
        return 3;
    }
    switch (a->op) {
    case R1_OP_RMSNORM:
        rmsnorm(pl, a, NULL, r1vk_cm_x_direct(pl, nodes, i, n));
        break;
    case R1_OP_MATMUL_Q4:
        r1vk_plan_matmul_q4(pl, a);
        break;
    case R1_OP_MATMUL:
        matmul(pl, a);
        break;
    case R1_OP_ROPE:
        rope(pl, a, NULL, NULL);
        break;
    case R1_OP_KV_STORE:
        kv_store(pl, a);
        break;
    case R1_OP_EMBED:
        embed(pl, a);
        break;
    case R1_OP_ATTN: /* attn_cm can write fp16 */
        attn(pl, a, attn_cm_ok(pl, a) ? r1vk_cm_x_direct(pl, nodes, i, n) : 0);
        break;
    case R1_OP_ADD:
    case R1_OP_SILU_MUL:
        eltwise(pl, a);
        break;
    default:
        pl->st = r1__err(pl->err, R1_E_UNSUPPORTED, "vulkan: op %s is not supported",
                         r1__op_name(a->op));
    }
    return 1;
}

/* Scratch regions of the prompt GEMMs (GPTQ matmuls of more than one row),
 * sized for the largest and shared by all: the tensor-core GEMM's fp16
 * operands (two W regions, or one, and X; gemm_scratch_fit), and the K-split
 * partials and counters (GK_REGIONS of each, taken in turn; dispatches on one
 * region record the access, so they never overlap). */
static void prompt_regions(const vk_ctx *c, const r1_segment *seg, vk_seg *s) {
    gemm_scratch g = {0};
    int full = 0; /* the output head here: every layer too (backend.h batch_extra_bytes) */
    for (int i = 0; i < seg->n_nodes; i++) {
        const r1_node *n = &seg->nodes[i];
        full |= n->op == R1_OP_MATMUL;
        if (n->op == R1_OP_MATMUL_Q4 && n->dst->ne[0] >= 2)
            gemm_scratch_add(c, n->q, (VkDeviceSize)n->dst->ne[0], &g);
    }
    full = cm_full(c, full);
    s->cm_cap = cm_merge_cap(c, &g, full);
    r1vk_cm_regions(c, seg->nodes, seg->n_nodes, s->cm_cap, &g);
    gemm_scratch_fit(c, &g, full);
    s->cm = g.w[0] > 0;
    s->cm_w[0] = s->cm_w[1] = s->cm_x = 0;
    if (s->cm) {
        s->cm_w[0] = (s->scratch_elems + 3) & ~(VkDeviceSize)3; /* uvec4 reads */
        s->cm_w[1] = s->cm_w[0] + (g.w[1] ? g.w[0] : 0);        /* one region: the same */
        s->cm_x = s->cm_w[1] + (g.w[1] ? g.w[1] : g.w[0]);
        s->scratch_elems = s->cm_x + g.x;
    }
    s->gk_psz = g.part, s->gk_csz = g.cnt; /* partials: gemm_cm reads vec4s */
    s->gk_part = (s->scratch_elems + 3) & ~(VkDeviceSize)3;
    s->gk_cnt = s->gk_part + GK_REGIONS * g.part;
    s->scratch_elems = s->gk_cnt + GK_REGIONS * g.cnt;
}

r1_status r1vk_plan(vk_ctx *c, const r1_segment *seg, vk_seg *s, r1_error *err) {
    /* RoPE tables need a row per token: ROPE works on all n_tokens rows, so its
     * tensor has the graph's n_batch rows */
    s->max_rows = 1;
    int embed = 0;
    for (int i = 0; i < seg->n_nodes; i++) {
        const r1_node *n = &seg->nodes[i];
        embed |= n->op == R1_OP_EMBED;
        if ((n->op == R1_OP_ROPE || n->op == R1_OP_EMBED) && n->dst->ne[0] > s->max_rows)
            s->max_rows = (int)n->dst->ne[0];
    }
    s->tok_rows = embed ? s->max_rows : 0; /* a token id per row, before the tables */
    /* the decode attention's shared scratch region comes first */
    VkDeviceSize part = 0, kv = 0, n_attn = 0;
    for (int i = 0; i < seg->n_nodes; i++) {
        const r1_node *n = &seg->nodes[i];
        if (n->op != R1_OP_ATTN || !attn_split(n)) continue;
        VkDeviceSize chunks = (VkDeviceSize)(n->kv[0]->ne[0] + ATTN_CH - 1) / ATTN_CH;
        VkDeviceSize need = chunks * (VkDeviceSize)n->i0 * (VkDeviceSize)(n->i2 + 2);
        if (need > part) part = need;
        if ((VkDeviceSize)n->i1 > kv) kv = (VkDeviceSize)n->i1; /* a chunk counter per kv head */
        n_attn++;
    }
    /* Scratch from 0: the error flag, the chained decode dispatches' counters
     * (vk_record.c; indexed by 16 bits in the push constants), the decode
     * attentions' counters, all zeroed at the start of every decode pass, then
     * the attention's partials. */
    s->chain_on = c->chain && 2 * (size_t)seg->n_nodes + 2 < 65536;
    s->chain_n = s->chain_on ? (2 * (VkDeviceSize)seg->n_nodes + 2 + 3) & ~(VkDeviceSize)3 : 4;
    s->attn_coff = s->chain_n;
    s->attn_kv = kv;
    s->fill_n = s->chain_n + kv * n_attn;
    s->attn_poff = (s->fill_n + 3) & ~(VkDeviceSize)3;
    s->attn_part = part;
    s->scratch_elems = s->attn_poff + part;
    prompt_regions(c, seg, s);
    for (int v = 0; v < VK_NVAR; v++) {
        /* at most nine dispatches per node (a tensor-core GEMM's x prep, up
         * to five variants, and the next group's W preps) */
        s->d_cap = 9 * seg->n_nodes + 1;
        s->d[v] = calloc((size_t)s->d_cap, sizeof *s->d[v]);
        if (!s->d[v]) return r1__err(err, R1_E_NOMEM, "out of memory");
        planner pl = {c, s, v, err, R1_OK, 0, 0, -1, -1};
        s->n_ropes = 0;                    /* both plans assign the same slots */
        if (v == VK_DECODE) s->n_attn = 0; /* only the decode plan has attn_dec */
        for (int i = 0; i < seg->n_nodes && !pl.st;)
            i += plan_node(&pl, seg->nodes, i, seg->n_nodes);
        if (pl.st) return pl.st;
    }
    if (c->preq) r1vk_plan_preq(c, s);
    return R1_OK;
}

static int float_type(r1_dtype t) {
    return t == R1_F32 || t == R1_F16 || t == R1_BF16;
}

/* A weight with device memory (or a deferred upload) that fits one binding. */
static int weight_ok(const vk_ctx *c, const r1_tensor *w) {
    return w && w->extra && r1__tensor_nbytes(w) + 4096 <= c->props.limits.maxStorageBufferRange;
}

static int act_ok(const vk_ctx *c, const r1_tensor *t) {
    return !t || r1__tensor_nbytes(t) <= c->props.limits.maxStorageBufferRange;
}

int r1vk_supports(vk_ctx *c, const r1_node *n) {
    for (int i = 0; i < 3; i++)
        if (!act_ok(c, n->src[i])) return 0;
    if (!act_ok(c, n->dst) || !act_ok(c, n->kv[0]) || !act_ok(c, n->kv[1])) return 0;
    switch (n->op) {
    case R1_OP_RMSNORM:
        return float_type(n->w->type) && weight_ok(c, n->w);
    case R1_OP_MATMUL_Q4: {
        const r1_qlinear *q = n->q;
        return q->G % 8 == 0 && q->K % 8 == 0 && q->N % 8 == 0 && weight_ok(c, q->qweight) &&
               weight_ok(c, q->qzeros) && weight_ok(c, q->scales) && q->scales->type == R1_F16 &&
               (!q->act_order || weight_ok(c, q->g_idx)) &&
               (!q->bias || (weight_ok(c, q->bias) && float_type(q->bias->type)));
    }
    case R1_OP_MATMUL:
        return float_type(n->w->type) && weight_ok(c, n->w);
    case R1_OP_ROPE:
        return n->i2 > 0 && n->i2 % 2 == 0 && n->i2 <= 1024;
    case R1_OP_ATTN:
        return n->i2 > 0 && n->i2 % 8 == 0 && n->i2 <= 128 && n->i1 > 0 && n->i0 % n->i1 == 0;
    case R1_OP_KV_STORE:
    case R1_OP_SILU_MUL:
    case R1_OP_ADD:
        return 1;
    case R1_OP_EMBED:
        return float_type(n->w->type) && weight_ok(c, n->w) && n->w->ne[0] < UINT32_MAX &&
               (uint64_t)n->w->ne[0] * (uint64_t)n->w->ne[1] < UINT32_MAX;
    default:
        return 0; /* COPY is the scheduler's */
    }
}
