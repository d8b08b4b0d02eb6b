/* Qwen2ForCausalLM: checkpoint binding and the forward graph.
 *
 * Shapes (14B): D = hidden 5120, F = inter 13824, H = 40 heads, KV = 8 kv heads,
 * hd = head_dim 128, V = vocab 152064, T = tokens in this call (<= n_batch).
 * Everything is backend-agnostic: nodes carry their layer, the scheduler places them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static r1_tensor *weight(r1_model *m, const char *name) {
    const r1_st_entry *e = r1__st_find(m->st, name);
    return e ? &m->wt[e - m->st->t] : NULL;
}

static const char *file_of(r1_model *m, const r1_tensor *t) {
    return m->st->files[m->st->t[t - m->wt].file].path;
}

/* Checks dtype (one of two allowed) and shape; NULL a1 = any float type. */
static r1_status expect(r1_model *m, const char *name, r1_tensor **out, int ndim, int64_t d0,
                        int64_t d1, int int32, r1_error *err) {
    r1_tensor *t = weight(m, name);
    *out = t;
    if (!t) return r1__err(err, R1_E_FORMAT, "%s: missing tensor %s", m->dir, name);
    const char *f = file_of(m, t);
    const r1_st_entry *e = &m->st->t[t - m->wt];
    int ok_type =
        int32 ? t->type == R1_I32 : (t->type == R1_F16 || t->type == R1_BF16 || t->type == R1_F32);
    if (!ok_type)
        return r1__err(err, R1_E_FORMAT, "%s: tensor %s has dtype %s, expected %s", f, name,
                       e->dtype_str, int32 ? "I32" : "F16, BF16 or F32");
    int ok_shape = t->ndim == ndim && t->ne[0] == d0 && (ndim == 1 || t->ne[1] == d1);
    if (!ok_shape) {
        char got[64] = "", want[64];
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->ne[i]);
        if (ndim == 1)
            snprintf(want, sizeof want, "%lld", (long long)d0);
        else
            snprintf(want, sizeof want, "%lld, %lld", (long long)d0, (long long)d1);
        return r1__err(err, R1_E_FORMAT, "%s: tensor %s has shape [%s], config.json implies [%s]",
                       f, name, got, want);
    }
    return R1_OK;
}

/* g_idx values index scales/qzeros rows: all must be in range, and act-order
 * maps must still put exactly G rows in every group. */
static r1_status check_gidx(r1_model *m, const char *name, r1_qlinear *q, r1_error *err) {
    const int32_t *g = q->g_idx->data;
    int *count = calloc((size_t)q->n_groups, sizeof(int));
    if (!count) return r1__err(err, R1_E_NOMEM, "out of memory");
    q->act_order = 0;
    r1_status st = R1_OK;
    for (int k = 0; k < q->K; k++) {
        if (g[k] < 0 || g[k] >= q->n_groups) {
            st = r1__err(err, R1_E_FORMAT, "%s: tensor %s.g_idx[%d] = %d is outside 0..%d",
                         file_of(m, q->g_idx), name, k, g[k], q->n_groups - 1);
            break;
        }
        count[g[k]]++;
        if (g[k] != k / q->G) q->act_order = 1;
    }
    for (int i = 0; i < q->n_groups && !st; i++)
        if (count[i] != q->G)
            st = r1__err(err, R1_E_FORMAT,
                         "%s: tensor %s.g_idx puts %d rows in group %d, expected %d",
                         file_of(m, q->g_idx), name, count[i], i, q->G);
    free(count);
    return st;
}

static r1_status bind_linear(r1_model *m, const char *prefix, int K, int N, int has_bias,
                             r1_qlinear *q, r1_error *err) {
    const r1_config *c = &m->cfg;
    int G = c->group_size == -1 ? K : c->group_size;
    char name[256];
    if (K % G || K % 8 || N % 8)
        return r1__err(
            err, R1_E_FORMAT,
            "%s: %s: in_features %d / out_features %d do not fit group_size %d and 4-bit "
            "packing",
            m->dir, prefix, K, N, G);
    q->K = K, q->N = N, q->G = G, q->n_groups = K / G, q->zeros_v2 = c->zeros_v2;
    r1_status st;
    snprintf(name, sizeof name, "%s.qweight", prefix);
    if ((st = expect(m, name, &q->qweight, 2, K / 8, N, 1, err))) return st;
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    if ((st = expect(m, name, &q->qzeros, 2, K / G, N / 8, 1, err))) return st;
    snprintf(name, sizeof name, "%s.scales", prefix);
    if ((st = expect(m, name, &q->scales, 2, K / G, N, 0, err))) return st;
    if (q->scales->type != R1_F16)
        return r1__err(err, R1_E_UNSUPPORTED, "%s: tensor %s: scales must be F16",
                       file_of(m, q->scales), name);
    snprintf(name, sizeof name, "%s.g_idx", prefix);
    q->g_idx = weight(m, name);
    if (q->g_idx) {
        if ((st = expect(m, name, &q->g_idx, 1, K, 0, 1, err))) return st;
        if ((st = check_gidx(m, prefix, q, err))) return st;
    } else if (c->desc_act) {
        return r1__err(err, R1_E_FORMAT, "%s: missing tensor %s (desc_act is true)", m->dir, name);
    }
    snprintf(name, sizeof name, "%s.bias", prefix);
    q->bias = NULL;
    if (has_bias || weight(m, name))
        if ((st = expect(m, name, &q->bias, 1, N, 0, 0, err))) return st;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (weight(m, name))
        return r1__err(err, R1_E_FORMAT,
                       "%s: %s is an unquantized linear; only GPTQ-Int4 is supported",
                       file_of(m, weight(m, name)), name);
    return R1_OK;
}

static r1_status bind_layer(r1_model *m, int l, r1_error *err) {
    const r1_config *c = &m->cfg;
    r1_layer_weights *L = &m->layers[l];
    int D = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    char p[160], n[200];
    r1_status st;
    snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
    if ((st = expect(m, n, &L->attn_norm, 1, D, 0, 0, err))) return st;
    snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
    if ((st = expect(m, n, &L->ffn_norm, 1, D, 0, 0, err))) return st;
    struct {
        const char *name;
        r1_qlinear *q;
        int K, N, bias;
    } lin[] = {{"self_attn.q_proj", &L->q, D, qd, 1},       {"self_attn.k_proj", &L->k, D, kvd, 1},
               {"self_attn.v_proj", &L->v, D, kvd, 1},      {"self_attn.o_proj", &L->o, qd, D, 0},
               {"mlp.gate_proj", &L->gate, D, c->inter, 0}, {"mlp.up_proj", &L->up, D, c->inter, 0},
               {"mlp.down_proj", &L->down, c->inter, D, 0}};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        snprintf(p, sizeof p, "model.layers.%d.%s", l, lin[i].name);
        if ((st = bind_linear(m, p, lin[i].K, lin[i].N, lin[i].bias, lin[i].q, err))) return st;
    }
    return R1_OK;
}

static uint64_t linear_bytes(const r1_qlinear *q) {
    uint64_t b =
        r1__tensor_nbytes(q->qweight) + r1__tensor_nbytes(q->qzeros) + r1__tensor_nbytes(q->scales);
    if (q->g_idx) b += r1__tensor_nbytes(q->g_idx);
    if (q->bias) b += r1__tensor_nbytes(q->bias);
    return b;
}

r1_status r1__qwen2_bind(r1_model *m, r1_error *err) {
    const r1_config *c = &m->cfg;
    r1_status st;
    if ((st = expect(m, "model.embed_tokens.weight", &m->embed, 2, c->vocab, c->hidden, 0, err)) ||
        (st = expect(m, "model.norm.weight", &m->norm, 1, c->hidden, 0, 0, err)))
        return st;
    if (c->tied) {
        m->lm_head = m->embed;
    } else if ((st = expect(m, "lm_head.weight", &m->lm_head, 2, c->vocab, c->hidden, 0, err))) {
        return st;
    }
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return r1__err(err, R1_E_NOMEM, "out of memory");
    uint64_t bytes = r1__tensor_nbytes(m->lm_head) + r1__tensor_nbytes(m->norm) +
                     (uint64_t)c->hidden * r1__dtype_size(m->embed->type);
    for (int l = 0; l < c->n_layers; l++) {
        if ((st = bind_layer(m, l, err))) return st;
        r1_layer_weights *L = &m->layers[l];
        bytes += linear_bytes(&L->q) + linear_bytes(&L->k) + linear_bytes(&L->v) +
                 linear_bytes(&L->o) + linear_bytes(&L->gate) + linear_bytes(&L->up) +
                 linear_bytes(&L->down) + r1__tensor_nbytes(L->attn_norm) +
                 r1__tensor_nbytes(L->ffn_norm);
    }
    m->weight_bytes = bytes;
    return R1_OK;
}

/* ---- graph ------------------------------------------------------------------ */

typedef struct builder {
    r1_graph *g;
    r1_error *err;
    int failed;
} builder;

static r1_tensor *bt(builder *b, const char *name, int64_t rows, int64_t cols) {
    r1_tensor *t = b->failed ? NULL : r1__graph_tensor(b->g, name, rows, cols);
    if (!t) b->failed = 1;
    return t;
}

static void bn(builder *b, r1_node n) {
    if (!b->failed && !r1__graph_add(b->g, &n)) b->failed = 1;
}

static r1_tensor *linear(builder *b, int layer, const char *name, r1_tensor *x, r1_qlinear *q) {
    r1_tensor *y = bt(b, name, b->g->n_batch, q->N);
    bn(b, (r1_node){.op = R1_OP_MATMUL_Q4, .layer = layer, .dst = y, .src = {x}, .q = q});
    return y;
}

static r1_tensor *rmsnorm(builder *b, int layer, const char *name, r1_tensor *x, r1_tensor *w,
                          float eps, r1_rows rows) {
    r1_tensor *y = bt(b, name, b->g->n_batch, x ? x->ne[1] : 0);
    bn(b, (r1_node){.op = R1_OP_RMSNORM,
                    .layer = layer,
                    .rows = rows,
                    .dst = y,
                    .src = {x},
                    .w = w,
                    .f0 = eps});
    return y;
}

static r1_tensor *add(builder *b, int layer, const char *name, r1_tensor *x, r1_tensor *y) {
    r1_tensor *z = bt(b, name, b->g->n_batch, x ? x->ne[1] : 0);
    bn(b, (r1_node){.op = R1_OP_ADD, .layer = layer, .dst = z, .src = {x, y}});
    return z;
}

/* One decoder layer: x [T,D] -> x + attn(norm(x)) -> + mlp(norm(.)). */
static r1_tensor *layer(builder *b, r1_model *m, int l, r1_tensor *x, int n_ctx) {
    const r1_config *c = &m->cfg;
    r1_layer_weights *L = &m->layers[l];
    int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    float eps = (float)c->rms_eps, theta = (float)c->rope_theta;
    r1_tensor *h = rmsnorm(b, l, "attn_in", x, L->attn_norm, eps, R1_ROWS_ALL);
    r1_tensor *q = linear(b, l, "q", h, &L->q); /* [T, H*hd] */
    r1_tensor *k = linear(b, l, "k", h, &L->k); /* [T, KV*hd] */
    r1_tensor *v = linear(b, l, "v", h, &L->v); /* [T, KV*hd] */
    bn(b, (r1_node){
              .op = R1_OP_ROPE, .layer = l, .dst = q, .src = {q}, .f0 = theta, .i0 = H, .i2 = hd});
    bn(b, (r1_node){
              .op = R1_OP_ROPE, .layer = l, .dst = k, .src = {k}, .f0 = theta, .i0 = KV, .i2 = hd});
    r1_tensor *kc = bt(b, "k_cache", n_ctx, (int64_t)KV * hd); /* [n_ctx, KV*hd] */
    r1_tensor *vc = bt(b, "v_cache", n_ctx, (int64_t)KV * hd);
    if (b->failed) return NULL;
    kc->persistent = vc->persistent = 1;
    bn(b, (r1_node){
              .op = R1_OP_KV_STORE, .layer = l, .src = {k, v}, .kv = {kc, vc}, .i1 = KV, .i2 = hd});
    r1_tensor *a = bt(b, "attn", b->g->n_batch, (int64_t)H * hd); /* [T, H*hd] */
    bn(b, (r1_node){.op = R1_OP_ATTN,
                    .layer = l,
                    .dst = a,
                    .src = {q},
                    .kv = {kc, vc},
                    .i0 = H,
                    .i1 = KV,
                    .i2 = hd});
    r1_tensor *o = linear(b, l, "o", a, &L->o);
    x = add(b, l, "x_attn", x, o);
    h = rmsnorm(b, l, "ffn_in", x, L->ffn_norm, eps, R1_ROWS_ALL);
    r1_tensor *gt = linear(b, l, "gate", h, &L->gate); /* [T, F] */
    r1_tensor *up = linear(b, l, "up", h, &L->up);     /* [T, F] */
    r1_tensor *act = bt(b, "act", b->g->n_batch, c->inter);
    bn(b, (r1_node){.op = R1_OP_SILU_MUL, .layer = l, .dst = act, .src = {gt, up}});
    r1_tensor *dn = linear(b, l, "down", act, &L->down);
    return add(b, l, "x_ffn", x, dn);
}

r1_status r1__qwen2_build(r1_model *m, r1_graph *g, int n_ctx, int n_out_max, r1_tensor **logits,
                          r1_error *err) {
    const r1_config *c = &m->cfg;
    builder b = {g, err, 0};
    r1_tensor *x = bt(&b, "x_embed", g->n_batch, c->hidden); /* [T, D] */
    bn(&b, (r1_node){.op = R1_OP_EMBED, .layer = -1, .dst = x, .w = m->embed});
    for (int l = 0; l < c->n_layers && !b.failed; l++) x = layer(&b, m, l, x, n_ctx);
    int L = c->n_layers;
    /* Only the rows whose logits are wanted go through the output norm and head. */
    r1_tensor *h = bt(&b, "out_norm", n_out_max, c->hidden); /* [n_out, D] */
    bn(&b, (r1_node){.op = R1_OP_RMSNORM,
                     .layer = L,
                     .rows = R1_ROWS_PICK,
                     .dst = h,
                     .src = {x},
                     .w = m->norm,
                     .f0 = (float)c->rms_eps});
    r1_tensor *y = bt(&b, "logits", n_out_max, c->vocab); /* [n_out, V] */
    bn(&b, (r1_node){.op = R1_OP_MATMUL,
                     .layer = L,
                     .rows = R1_ROWS_OUT,
                     .dst = y,
                     .src = {h},
                     .w = m->lm_head});
    if (b.failed) return r1__err(err, R1_E_NOMEM, "out of memory building the graph");
    *logits = y;
    return R1_OK;
}
