/* The memory planner: bytes per layer on the GPU (weights, KV cache for the
 * context, scratch for a batch) against a budget, and how many layers fit. */
#include <stdio.h>
#include <string.h>

#include "model.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define RESERVE_MIN (256ull << 20) /* kept free for the driver and other programs */

static uint64_t qlin_bytes(const r1_qlinear *q) {
    uint64_t b =
        r1__tensor_nbytes(q->qweight) + r1__tensor_nbytes(q->qzeros) + r1__tensor_nbytes(q->scales);
    if (q->g_idx) b += r1__tensor_nbytes(q->g_idx);
    if (q->bias) b += r1__tensor_nbytes(q->bias);
    return b;
}

uint64_t r1__layer_weight_bytes(const r1_model *m, int l) {
    const r1_layer_weights *w = &m->layers[l];
    return qlin_bytes(&w->q) + qlin_bytes(&w->k) + qlin_bytes(&w->v) + qlin_bytes(&w->o) +
           qlin_bytes(&w->gate) + qlin_bytes(&w->up) + qlin_bytes(&w->down) +
           r1__tensor_nbytes(w->attn_norm) + r1__tensor_nbytes(w->ffn_norm);
}

/* float32 K and V rows of one layer for n_ctx positions */
static uint64_t layer_kv(const r1_config *c, int n_ctx) {
    return 2ull * (uint64_t)n_ctx * (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim * 4ull;
}

/* Activations live at once in one layer (the scheduler reuses them across layers):
 * residual, norm, q, k, v, attention, gate, up, act, plus the incoming copy. */
static uint64_t scratch(const r1_config *c, int n_batch) {
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    return 4ull * (uint64_t)n_batch * (4ull * c->hidden + 2 * qd + 2 * kvd + 3ull * c->inter);
}

static uint64_t head_bytes(const r1_model *m, int n_batch) {
    uint64_t logits = 4ull * (uint64_t)m->cfg.vocab * (uint64_t)(n_batch < 110 ? n_batch : 110);
    return r1__tensor_nbytes(m->lm_head) + r1__tensor_nbytes(m->norm) + logits;
}

/* The GPU backend, if any. */
static r1_backend *gpu_be(const r1_model *m) {
    return m->n_be > 1 ? m->be[1] : NULL;
}

/* A GPU backend may not bind a tensor as large as the head or the embedding
 * table (lavapipe: 128 MiB). */
static int gpu_binds(const r1_model *m, const r1_tensor *t) {
    r1_backend *g = gpu_be(m);
    uint64_t lim = g && g->i->max_tensor_bytes ? g->i->max_tensor_bytes(g) : 0;
    return !lim || r1__tensor_nbytes(t) <= lim;
}

static int head_fits(const r1_model *m) {
    return gpu_binds(m, m->lm_head);
}

/* What the GPU backend keeps for a batch beyond the activations (its GEMMs'
 * partials and tensor-core operands); full: with every layer and the head. */
static uint64_t gpu_extra(const r1_model *m, int n_batch, int full) {
    r1_backend *g = gpu_be(m);
    return g && g->i->batch_extra_bytes ? g->i->batch_extra_bytes(g, &m->cfg, n_batch, full) : 0;
}

/* The token embedding joins the output head on the GPU when the table is the
 * head's own (tied) or fits the budget beside everything else, never at the
 * expense of a layer: a pass then sends token ids, not embedded rows (H200 14b:
 * the CPU lookup and its copy took 2.6 of a 512-token pass's 110 ms; pp512
 * 4,660-4,666 -> 4,839-4,861, tg64 249.0-251.9 -> 255.1-255.6). */
static int embed_on_gpu(const r1_model *m, const r1_plan *p) {
    if (!p->head_on_gpu || m->lm_head == m->embed) return p->head_on_gpu;
    uint64_t e = r1__tensor_nbytes(m->embed), need = p->weights[1] + p->kv[1] + p->scratch[1];
    return gpu_binds(m, m->embed) && need <= p->budget && e <= p->budget - need;
}

static int fits(const r1_model *m, const r1_plan *p, int n) {
    int full = n == p->n_layers && head_fits(m);
    uint64_t need = n ? scratch(&m->cfg, p->n_batch) + gpu_extra(m, p->n_batch, full) : 0;
    for (int l = p->n_layers - n; l < p->n_layers; l++)
        need += r1__layer_weight_bytes(m, l) + layer_kv(&m->cfg, p->n_ctx);
    if (full) need += head_bytes(m, p->n_batch);
    return need <= p->budget;
}

/* The plan's byte totals; returns whether the token embedding goes to the GPU. */
static int totals(const r1_model *m, r1_plan *p) {
    int L = p->n_layers;
    memset(p->weights, 0, sizeof p->weights);
    memset(p->kv, 0, sizeof p->kv);
    for (int l = 0; l < L; l++) {
        int g = l >= L - p->gpu_layers;
        p->weights[g] += r1__layer_weight_bytes(m, l);
        p->kv[g] += layer_kv(&m->cfg, p->n_ctx);
    }
    p->head_on_gpu = p->gpu_layers == L && head_fits(m);
    p->weights[p->head_on_gpu] += r1__tensor_nbytes(m->lm_head) + r1__tensor_nbytes(m->norm);
    uint64_t logits =
        head_bytes(m, p->n_batch) - r1__tensor_nbytes(m->lm_head) - r1__tensor_nbytes(m->norm);
    uint64_t embed_out = 4ull * (uint64_t)p->n_batch * (uint64_t)m->cfg.hidden;
    /* with every layer on the GPU the CPU only holds the embedded tokens */
    p->scratch[0] = p->head_on_gpu ? embed_out : scratch(&m->cfg, p->n_batch) + logits;
    p->scratch[1] = p->gpu_layers
                        ? scratch(&m->cfg, p->n_batch) + gpu_extra(m, p->n_batch, p->head_on_gpu) +
                              (p->head_on_gpu ? logits : 0)
                        : 0;
    int e = embed_on_gpu(m, p); /* ... and then not even those */
    if (m->lm_head != m->embed) p->weights[e] += r1__tensor_nbytes(m->embed);
    if (e) p->scratch[0] = 0;
    return e;
}

/* gpu_free: the device's free bytes (0 if unknown). Explicit counts that do not
 * fit a known budget are an error before anything is allocated. */
r1_status r1__plan_make(const r1_model *m, uint64_t gpu_free, r1_plan *p, int *embed_gpu,
                        r1_error *err) {
    int e = 0;
    if (!embed_gpu) embed_gpu = &e;
    const r1_config *c = &m->cfg;
    int L = c->n_layers, want = m->params.gpu_layers;
    memset(p, 0, sizeof *p);
    p->n_layers = L;
    p->n_ctx = m->params.max_ctx > 0 ? m->params.max_ctx : (c->max_pos < 4096 ? c->max_pos : 4096);
    p->n_batch = p->n_ctx < 512 ? p->n_ctx : 512;
    p->layer_bytes = L ? r1__layer_weight_bytes(m, L - 1) + layer_kv(c, p->n_ctx) : 0;
    if (want == 0) return *embed_gpu = totals(m, p), R1_OK;
    uint64_t reserve = gpu_free / 20 > RESERVE_MIN ? gpu_free / 20 : RESERVE_MIN;
    p->budget = m->params.gpu_mem    ? m->params.gpu_mem
                : gpu_free > reserve ? gpu_free - reserve
                : gpu_free           ? 0
                                     : UINT64_MAX;
    if (want == R1_GPU_LAYERS_AUTO) {
        int n = 0;
        while (n < L && fits(m, p, n + 1)) n++;
        p->gpu_layers = n;
        if (!n)
            snprintf(
                p->note, sizeof p->note,
                "GPU budget %.2f GiB is too small for one layer (%.2f GiB): all layers on the CPU",
                (double)p->budget / GIB, (double)p->layer_bytes / GIB);
    } else {
        int n = want == R1_GPU_LAYERS_ALL ? L : want;
        if (n < 0 || n > L)
            return r1__err(err, R1_E_INVAL, "--gpu-layers %d: the model has %d layers", n, L);
        if (!fits(m, p, n))
            return r1__err(err, R1_E_NOMEM,
                           "--gpu-layers %d: needs more than the GPU budget of %.2f GiB (one layer "
                           "takes %.2f GiB with --ctx %d); try --gpu-layers auto",
                           n, (double)p->budget / GIB, (double)p->layer_bytes / GIB, p->n_ctx);
        p->gpu_layers = n;
    }
    *embed_gpu = totals(m, p);
    return R1_OK;
}

/* "1.50 GiB", "12.3 MiB", "512 KiB": small test models are not all 0.00 GiB. */
static const char *fmt(uint64_t b, char *buf, size_t cap) {
    if (b >= (1ull << 30))
        snprintf(buf, cap, "%.2f GiB", (double)b / GIB);
    else if (b >= (1ull << 20))
        snprintf(buf, cap, "%.1f MiB", (double)b / (1 << 20));
    else
        snprintf(buf, cap, "%.0f KiB", (double)b / 1024);
    return buf;
}

void r1_plan_format(const r1_plan *p, char *buf, size_t cap) {
    char a[32], b[32], c[32], d[32] = "unknown";
    int o = snprintf(buf, cap,
                     "plan: %d/%d layers on the GPU%s%s%s (ctx %d, batch %d)\n"
                     "  CPU: weights %s (mmap), KV %s, scratch %s\n",
                     p->gpu_layers, p->n_layers, p->head_on_gpu ? " + output head" : "",
                     *p->device ? " on " : "", p->device, p->n_ctx, p->n_batch,
                     fmt(p->weights[0], a, sizeof a), fmt(p->kv[0], b, sizeof b),
                     fmt(p->scratch[0], c, sizeof c));
    if (o < 0 || (size_t)o >= cap) return;
    if (p->budget) {
        if (p->budget != UINT64_MAX) fmt(p->budget, d, sizeof d);
        int k =
            snprintf(buf + o, cap - (size_t)o, "  GPU: weights %s, KV %s, scratch %s; budget %s\n",
                     fmt(p->weights[1], a, sizeof a), fmt(p->kv[1], b, sizeof b),
                     fmt(p->scratch[1], c, sizeof c), d);
        if (k < 0 || (size_t)(o += k) >= cap) return;
    }
    if (*p->note) snprintf(buf + o, cap - (size_t)o, "  note: %s\n", p->note);
}
