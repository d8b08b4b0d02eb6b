/* Graph nodes -> dispatches.
 *
 * Two plans per segment: decode (one token; matrix-vector shaders, one
 * workgroup row) and batch (prompts; tiled matrix-matrix shaders, sized for
 * the graph's n_batch rows, with workgroups past the call's n_tokens leaving
 * at once). Both are recorded once; run-time sizes come from the run buffer.
 *
 * Fusions (every tensor the fused nodes write is still written, so a fused
 * dispatch is exactly the nodes it replaces):
 *   ADD, RMSNORM(of that sum, all rows)  -> add_rmsnorm
 *   ROPE q, ROPE k, KV_STORE(k, v)        -> rope_kv */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk_seg.h"

static const vk_ref *ref_of(const r1_tensor *t) {
    return t ? (const vk_ref *)t->extra : NULL;
}

typedef struct planner {
    vk_ctx *c;
    vk_seg *s;
    int var;
    r1_error *err;
    r1_status st;
} planner;

static vk_disp *disp_new(planner *pl, vk_pipe pipe) {
    if (pl->st) return NULL;
    vk_disp *d = &pl->s->d[pl->var][pl->s->nd[pl->var]++];
    memset(d, 0, sizeof *d);
    d->pipe = pipe;
    for (int i = 0; i < VK_NBIND; i++) d->b[i] = (vk_bind){pl->c->dummy.buf, 0, pl->c->dummy.size};
    d->groups[0] = d->groups[1] = d->groups[2] = 1;
    return d;
}

static void push(vk_disp *d, uint32_t v) {
    if (d) d->push[d->push_size++] = v;
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void fail(planner *pl, const char *what, const r1_tensor *t) {
    if (!pl->st)
        pl->st = r1__err(pl->err, R1_E_DEVICE, "vulkan: %s %s has no device memory", what,
                         t && t->name ? t->name : "(unnamed)");
}

/* An activation or cache tensor: bound whole, and recorded as accessed. */
static void act(planner *pl, vk_disp *d, int slot, const r1_tensor *t, int write) {
    const vk_ref *r = ref_of(t);
    if (!d) return;
    if (!r || r->pending) return fail(pl, "tensor", t);
    d->b[slot] = (vk_bind){r->buf, r->off, (r->size + 3) & ~(VkDeviceSize)3};
    if (d->n_acc < VK_MAX_ACCESS) d->acc[d->n_acc++] = (vk_access){r->buf, r->off, r->size, write};
}

/* A weight: bound from an aligned offset, its element offset returned. */
static uint32_t weight(planner *pl, vk_disp *d, int slot, r1_tensor *w) {
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

static uint32_t rows(const planner *pl, const r1_tensor *t) {
    return pl->var == VK_DECODE ? 1u : (uint32_t)t->ne[0];
}

static uint32_t cdiv(uint64_t a, uint64_t b) {
    uint64_t v = (a + b - 1) / b;
    return v > 65535 ? 65535 : (uint32_t)(v ? v : 1);
}

static void rmsnorm(planner *pl, const r1_node *n, const r1_node *add) {
    vk_disp *d = disp_new(pl, add ? VKP_ADD_RMSNORM : VKP_RMSNORM);
    act(pl, d, 1, n->src[0] == (add ? add->dst : NULL) ? add->src[0] : n->src[0], 0);
    act(pl, d, 2, n->dst, 1);
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
    if (d) d->groups[0] = rows(pl, n->dst);
}

/* K split of a decode matvec: enough workgroups to fill the GPU (wg_target),
 * an x slice that fits shared memory, at least two word rows per slice. */
static void q4_split(const vk_ctx *c, int K, int N, uint32_t *ks, uint32_t *rps) {
    uint32_t R = (uint32_t)K / 8, tiles = ((uint32_t)N + 63) / 64;
    uint32_t kmin = (R * 8 + 4095) / 4096, kmax = R / 32;
    uint32_t k = (c->wg_target + tiles - 1) / tiles;
    if (kmax < kmin) kmax = kmin;
    if (k > kmax) k = kmax;
    if (k < kmin) k = kmin;
    if (k < 1) k = 1;
    *rps = (R + k - 1) / k;
    *ks = (R + *rps - 1) / *rps;
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

static void matmul_q4(planner *pl, const r1_node *n) {
    const r1_qlinear *q = n->q;
    int dec = pl->var == VK_DECODE;
    if (is_t(n)) return matmul_q4t(pl, n, NULL);
    const vk_ref *rq = ref_of(q->qweight), *rs = ref_of(q->scales);
    /* the fast matvec reads 4 columns at once: 16-byte aligned words and scales */
    int fast = dec && !getenv("R1_VK_SIMPLE_MATVEC") && rq && rs && !rq->pending &&
               (rq->off % 16) == 0 && (rs->off % 8) == 0;
    vk_disp *d = disp_new(pl, !dec ? VKP_Q4_GEMM : fast ? VKP_Q4_MATVEC : VKP_Q4_MATVEC_SIMPLE);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->dst, 1);
    uint32_t qoff = weight(pl, d, 3, q->qweight), soff = weight(pl, d, 4, q->scales);
    uint32_t zoff = weight(pl, d, 5, q->qzeros), boff = 0;
    int perm = q->act_order && q->g_idx;
    if (perm) weight(pl, d, 6, q->g_idx);
    if (q->bias) boff = weight(pl, d, 7, q->bias);
    push(d, (uint32_t)q->K);
    push(d, (uint32_t)q->N);
    push(d, (uint32_t)q->G);
    push(d, (q->bias ? 1u : 0u) | (q->zeros_v2 ? 2u : 0u) | (perm ? 4u : 0u));
    push(d, qoff);
    push(d, soff);
    push(d, zoff);
    push(d, boff);
    push(d, q->bias ? (uint32_t)q->bias->type : 0u);
    if (!d) return;
    uint32_t T = rows(pl, n->dst);
    if (fast && (qoff % 4 || soff % 4)) fast = 0, d->pipe = VKP_Q4_MATVEC_SIMPLE;
    if (fast) {
        uint32_t ks, rps, tiles = cdiv((uint64_t)q->N, 64);
        q4_split(pl->c, q->K, q->N, &ks, &rps);
        push(d, ks);
        push(d, rps);
        push(d, (uint32_t)pl->s->scratch_elems);
        push(d, (uint32_t)(pl->s->scratch_elems + (VkDeviceSize)T * ks * (uint32_t)q->N));
        if (ks > 1) {
            pl->s->scratch_elems += (VkDeviceSize)T * (ks * (uint32_t)q->N + tiles);
            d->scratch = 8;
        }
        d->groups[0] = tiles;
        d->groups[1] = ks;
        d->groups[2] = T;
        return;
    }
    d->groups[0] = cdiv((uint64_t)q->N, dec ? 32 : 64);
    d->groups[1] = dec ? T : cdiv(T, 64);
}

static void matmul(planner *pl, const r1_node *n) {
    int dec = pl->var == VK_DECODE;
    vk_disp *d = disp_new(pl, dec ? VKP_DENSE_MATVEC : VKP_DENSE_GEMM);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->dst, 1);
    uint32_t woff = weight(pl, d, 3, n->w);
    uint32_t N = (uint32_t)n->w->ne[0];
    push(d, (uint32_t)n->w->ne[1]);
    push(d, N);
    push(d, (uint32_t)n->rows);
    push(d, (uint32_t)n->w->type);
    push(d, woff);
    if (!d) return;
    d->groups[0] = cdiv(N, dec ? 8 : 64);
    d->groups[1] = dec ? rows(pl, n->dst) : cdiv(rows(pl, n->dst), 64);
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
    uint32_t off = 0;
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
    if (d) d->groups[0] = cdiv((uint64_t)rows(pl, n->dst) * work, 256);
}

static void kv_store(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_KV_STORE);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->src[1], 0);
    act(pl, d, 3, n->kv[0], 1);
    act(pl, d, 4, n->kv[1], 1);
    uint32_t row = (uint32_t)n->i1 * (uint32_t)n->i2;
    push(d, row);
    if (d) d->groups[0] = cdiv((uint64_t)rows(pl, n->src[0]) * row, 256);
}

#define ATTN_CH 16 /* keys per workgroup of attn_dec.comp */

static int attn_split(const r1_node *n) {
    return n->i0 / n->i1 <= 16 && n->i2 <= 128;
}

/* Decode attention split over the cache (attn_dec.comp): its partials share one
 * scratch region (recorded as written, so two never run unordered). */
static void attn_dec(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_ATTN_DEC);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->kv[0], 0);
    act(pl, d, 3, n->kv[1], 0);
    act(pl, d, 4, n->dst, 1);
    uint32_t nmax = (uint32_t)((n->kv[0]->ne[0] + ATTN_CH - 1) / ATTN_CH);
    push(d, (uint32_t)n->i0);
    push(d, (uint32_t)n->i1);
    push(d, (uint32_t)n->i2);
    push(d, 0);
    push(d, (uint32_t)pl->s->attn_part);
    push(d, nmax);
    if (!d) return;
    d->scratch = 5;
    if (d->n_acc < VK_MAX_ACCESS)
        d->acc[d->n_acc++] = (vk_access){(VkBuffer)(uintptr_t)pl->s, 0, pl->s->attn_part, 1};
    d->groups[0] = nmax;
    d->groups[1] = (uint32_t)n->i1;
}

static void attn(planner *pl, const r1_node *n) {
    if (pl->var == VK_DECODE && attn_split(n) && pl->c->fuse) return attn_dec(pl, n);
    vk_disp *d = disp_new(pl, VKP_ATTN);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->kv[0], 0);
    act(pl, d, 3, n->kv[1], 0);
    act(pl, d, 4, n->dst, 1);
    push(d, (uint32_t)n->i0);
    push(d, (uint32_t)n->i1);
    push(d, (uint32_t)n->i2);
    if (!d) return;
    d->groups[0] = cdiv((uint64_t)rows(pl, n->dst) * (uint64_t)(n->i0 / n->i1), 16);
    d->groups[1] = (uint32_t)n->i1;
}

static void eltwise(planner *pl, const r1_node *n) {
    vk_disp *d = disp_new(pl, VKP_ELTWISE);
    act(pl, d, 1, n->src[0], 0);
    act(pl, d, 2, n->src[1], 0);
    act(pl, d, 3, n->dst, 1);
    push(d, (uint32_t)n->dst->ne[1]);
    push(d, n->op == R1_OP_ADD ? 0u : 1u);
    if (d) d->groups[0] = cdiv((uint64_t)rows(pl, n->dst) * (uint64_t)n->dst->ne[1], 256);
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

/* Nodes [i, ...) -> dispatches; returns how many nodes were consumed. */
/* Whether two activations share bytes: the scheduler reuses a tensor's memory
 * after its last reader, so a fused dispatch may find one of its outputs where
 * an input lives; such a fusion would race (workgroups overwrite what others
 * still read) and is not made. */
static int overlap_t(const r1_tensor *a, const r1_tensor *b) {
    const vk_ref *x = ref_of(a), *y = ref_of(b);
    return x && y && x->buf == y->buf && x->off < y->off + y->size && y->off < x->off + x->size;
}

static int fused_safe(const r1_tensor *const *in, int n_in, const r1_tensor *const *out,
                      int n_out) {
    for (int i = 0; i < n_in; i++)
        for (int o = 0; o < n_out; o++)
            if (in[i] && out[o] && overlap_t(in[i], out[o])) return 0;
    return 1;
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

static int plan_node(planner *pl, const r1_node *nodes, int i, int n) {
    const r1_node *a = &nodes[i];
    int fuse = pl->c->fuse, used;
    if (fuse && pl->var == VK_DECODE && (used = plan_fused_q4t(pl, nodes, i, n))) return used;
    if (fuse && i + 1 < n && fuse_add_norm(a, &nodes[i + 1])) {
        rmsnorm(pl, &nodes[i + 1], a);
        return 2;
    }
    if (fuse && i + 2 < n && fuse_rope_kv(a, &nodes[i + 1], &nodes[i + 2])) {
        rope(pl, a, &nodes[i + 1], &nodes[i + 2]);
        return 3;
    }
    switch (a->op) {
    case R1_OP_RMSNORM:
        rmsnorm(pl, a, NULL);
        break;
    case R1_OP_MATMUL_Q4:
        matmul_q4(pl, a);
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
    case R1_OP_ATTN:
        attn(pl, a);
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

r1_status r1vk_plan(vk_ctx *c, const r1_segment *seg, vk_seg *s, r1_error *err) {
    /* RoPE tables need a row per token: ROPE works on all n_tokens rows, so its
     * tensor has the graph's n_batch rows */
    s->max_rows = 1;
    for (int i = 0; i < seg->n_nodes; i++)
        if (seg->nodes[i].op == R1_OP_ROPE && seg->nodes[i].dst->ne[0] > s->max_rows)
            s->max_rows = (int)seg->nodes[i].dst->ne[0];
    /* the decode attention's shared scratch region comes first */
    VkDeviceSize part = 0, cnt = 0;
    for (int i = 0; i < seg->n_nodes; i++) {
        const r1_node *n = &seg->nodes[i];
        if (n->op != R1_OP_ATTN || !attn_split(n)) continue;
        VkDeviceSize chunks = (VkDeviceSize)(n->kv[0]->ne[0] + ATTN_CH - 1) / ATTN_CH;
        VkDeviceSize need = chunks * (VkDeviceSize)n->i0 * (VkDeviceSize)(n->i2 + 2);
        if (need > part) part = need;
        if ((VkDeviceSize)n->i1 > cnt) cnt = (VkDeviceSize)n->i1;
    }
    s->attn_part = part;
    s->scratch_elems = part + cnt;
    for (int v = 0; v < VK_NVAR; v++) {
        s->d[v] = calloc((size_t)seg->n_nodes + 1, sizeof *s->d[v]);
        if (!s->d[v]) return r1__err(err, R1_E_NOMEM, "out of memory");
        planner pl = {c, s, v, err, R1_OK};
        s->n_ropes = 0; /* both plans assign the same slots */
        for (int i = 0; i < seg->n_nodes && !pl.st;)
            i += plan_node(&pl, seg->nodes, i, seg->n_nodes);
        if (pl.st) return pl.st;
    }
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
    default:
        return 0; /* EMBED stays on the CPU with the embedding table; COPY is the scheduler's */
    }
}
