/* Every op of the Vulkan backend against the scalar CPU reference, in the
 * spirit of llama.cpp's test-backend-ops: random inputs and weights, several
 * shapes (odd sizes, act-order g_idx, asymmetric v1/v2 zeros, T = 1 and T > 1,
 * pos > 0, GQA ratios, head_dim 32/64/128), and fused patterns. Each case
 * builds the same small graph twice, one placed on the CPU backend (R1_CPU=
 * scalar) and one with its layer on the Vulkan backend, runs both through the
 * scheduler and compares every output: max |gpu - cpu| / max |cpu| per op.
 *
 * No Vulkan device: prints why and exits 77 (ctest SKIP_RETURN_CODE).
 * Usage: test_backend_ops [op-name-filter] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "scheduler.h"

#define SKIP 77

static int fp16_gemm;  /* R1_VK_CM=1: fp16 GEMM operands, looser tolerances */
static int two_digits; /* R1_VK_CM=1 or R1_VK_X_DIGITS=2: decode x in two int8 digits */
#define MAX_IO 12
#define MAX_W 32

/* ---- random data ------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frnd(float a) { /* uniform in [-a, a) */
    return a * ((float)(rnd() & 0xffffff) / 8388608.0f - 1.0f);
}

/* ---- cases --------------------------------------------------------------------- */

/* One weight tensor (host data, shared by both graphs). */
static r1_tensor *weights[MAX_W];
static int n_weights;

static r1_tensor *wnew(r1_dtype type, int64_t d0, int64_t d1) {
    r1_tensor *t = calloc(1, sizeof *t);
    t->type = type;
    t->ndim = d1 ? 2 : 1;
    t->ne[0] = d0;
    t->ne[1] = d1;
    t->is_weight = 1;
    t->name = "w";
    t->data = calloc(1, r1__tensor_nbytes(t) + 4);
    weights[n_weights++] = t;
    return t;
}

static r1_tensor *wfloat(r1_dtype type, int64_t d0, int64_t d1, float a) {
    r1_tensor *t = wnew(type, d0, d1);
    int64_t n = r1__tensor_nelem(t);
    for (int64_t i = 0; i < n; i++) {
        float v = frnd(a);
        if (type == R1_F32) ((float *)t->data)[i] = v;
        if (type == R1_F16) ((uint16_t *)t->data)[i] = r1__f32_to_f16(v);
        if (type == R1_BF16) {
            uint32_t u;
            memcpy(&u, &v, 4);
            ((uint16_t *)t->data)[i] = (uint16_t)(u >> 16);
        }
    }
    return t;
}

typedef struct qspec {
    int K, N, G, act_order, asym, v2, bias;
    r1_dtype bias_type;
} qspec;

static r1_qlinear *qnew(const qspec *s) {
    r1_qlinear *q = calloc(1, sizeof *q);
    int K = s->K, N = s->N, G = s->G, ng = K / G;
    q->K = K, q->N = N, q->G = G, q->n_groups = ng, q->zeros_v2 = s->v2;
    q->qweight = wnew(R1_I32, K / 8, N);
    q->qzeros = wnew(R1_I32, ng, N / 8);
    q->scales = wnew(R1_F16, ng, N);
    q->g_idx = wnew(R1_I32, K, 0);
    uint32_t *qw = q->qweight->data, *qz = q->qzeros->data;
    for (int64_t i = 0; i < (int64_t)K / 8 * N; i++) qw[i] = rnd();
    for (int64_t i = 0; i < (int64_t)ng * N / 8; i++)
        qz[i] = s->asym ? rnd() : 0x77777777u; /* asym: every nibble, 15 included */
    uint16_t *sc = q->scales->data;
    for (int64_t i = 0; i < (int64_t)ng * N; i++) sc[i] = r1__f32_to_f16(frnd(0.02f));
    int32_t *gi = q->g_idx->data;
    int *perm = malloc((size_t)K * sizeof *perm);
    for (int k = 0; k < K; k++) perm[k] = k;
    if (s->act_order)
        for (int k = K - 1; k > 0; k--) {
            int j = (int)(rnd() % (uint32_t)(k + 1)), t = perm[k];
            perm[k] = perm[j], perm[j] = t;
        }
    for (int k = 0; k < K; k++) gi[perm[k]] = k / G;
    for (int k = 0; k < K; k++) q->act_order |= gi[k] != k / G;
    free(perm);
    if (s->bias) q->bias = wfloat(s->bias_type, N, 0, 0.5f);
    return q;
}

/* A graph description: nodes over tensors named by index, built the same way
 * in both graphs. Tensor 0..n_t-1: [rows, cols] f32; inputs are filled with
 * random values before every run; outputs are compared after every run. */
typedef struct tdesc {
    int64_t rows, cols;
    int input, cache; /* cache: filled once, then carried across runs (KV) */
    float amp;        /* input amplitude */
} tdesc;

typedef struct ndesc {
    r1_node n; /* src/dst/kv as tensor indices + 1 cast into pointers below */
    int src[3], dst, kv[2];
} ndesc;

typedef struct gcase {
    char name[96];
    const char *op; /* summary key */
    double tol;
    int n_batch;
    tdesc t[MAX_IO];
    int n_t;
    ndesc nd[10];
    int n_nodes;
    int out[MAX_IO]; /* tensors compared; rows: see out_rows */
    int n_out;
    r1_run runs[6];
    int n_runs;
    int no_reuse; /* every tensor keeps its own memory (the scheduler reuses scratch) */
} gcase;

static int tadd(gcase *c, int64_t rows, int64_t cols, int input, float amp) {
    c->t[c->n_t] = (tdesc){rows, cols, input, 0, amp};
    return c->n_t++;
}

static ndesc *nadd(gcase *c, r1_node n, int dst, int s0, int s1) {
    ndesc *d = &c->nd[c->n_nodes++];
    d->n = n;
    d->dst = dst, d->src[0] = s0, d->src[1] = s1, d->src[2] = -1, d->kv[0] = d->kv[1] = -1;
    return d;
}

/* ---- running ------------------------------------------------------------------- */

static r1_backend *be[2];
static struct {
    const char *op;
    double worst;
    int cases;
} summary[16];
static int n_summary;

static void note(const char *op, double e) {
    int i = 0;
    while (i < n_summary && strcmp(summary[i].op, op)) i++;
    if (i == n_summary) summary[n_summary++].op = op;
    summary[i].cases++;
    if (e > summary[i].worst) summary[i].worst = e;
}

typedef struct side {
    r1_graph *g;
    r1_sched *s;
    r1_tensor *t[MAX_IO];
} side;

static int build(const gcase *c, int gpu, side *sd, r1_error *err) {
    sd->g = r1__graph_new(c->n_batch);
    for (int i = 0; i < c->n_t; i++) {
        sd->t[i] = r1__graph_tensor(sd->g, "t", c->t[i].rows, c->t[i].cols);
        sd->t[i]->persistent = c->t[i].input || c->no_reuse; /* inputs: never reused */
    }
    for (int i = 0; i < c->n_nodes; i++) {
        r1_node n = c->nd[i].n;
        n.layer = 0;
        n.dst = c->nd[i].dst >= 0 ? sd->t[c->nd[i].dst] : NULL;
        for (int k = 0; k < 3; k++) n.src[k] = c->nd[i].src[k] >= 0 ? sd->t[c->nd[i].src[k]] : NULL;
        for (int k = 0; k < 2; k++) n.kv[k] = c->nd[i].kv[k] >= 0 ? sd->t[c->nd[i].kv[k]] : NULL;
        r1__graph_add(sd->g, &n);
    }
    int layer_backend[3] = {0, gpu, gpu};
    return r1__sched_new(sd->g, be, 2, layer_backend, &sd->s, err);
}

static void side_free(side *sd) {
    r1__sched_free(sd->s);
    r1__graph_free(sd->g);
}

static int set_tensor(r1_tensor *t, const float *v, r1_error *err) {
    r1_backend *b = be[t->backend];
    return b->i->tensor_set(b, t, v, 0, r1__tensor_nbytes(t), err);
}

static int get_tensor(r1_tensor *t, float *v, r1_error *err) {
    r1_backend *b = be[t->backend];
    return b->i->tensor_get(b, t, v, 0, r1__tensor_nbytes(t), err);
}

/* Rows of output tensor o that run r defines. */
static int64_t out_rows(const gcase *c, int o, const r1_run *r) {
    const tdesc *t = &c->t[o];
    if (t->cache) return r->pos + r->n_tokens; /* caches: every row so far */
    for (int i = 0; i < c->n_nodes; i++)
        if (c->nd[i].dst == o && c->nd[i].n.rows != R1_ROWS_ALL) return r->n_out;
    return r->n_tokens;
}

static void run_case(gcase *c) {
    r1_error err = {0};
    side sd[2] = {{0}};
    int ok = !build(c, 0, &sd[0], &err) && !build(c, 1, &sd[1], &err);
    CHECK_MSG(ok, "%s: scheduling: %s", c->name, err.msg);
    for (int i = 0; ok && i < sd[1].g->n_nodes; i++)
        if (sd[1].g->nodes[i].op != R1_OP_COPY && sd[1].g->nodes[i].backend != 1) {
            CHECK_MSG(0, "%s: node %s was not placed on Vulkan", c->name,
                      r1__op_name(sd[1].g->nodes[i].op));
            ok = 0;
        }
    double worst = 0;
    size_t cap = 0;
    for (int i = 0; i < c->n_t; i++)
        if ((size_t)(c->t[i].rows * c->t[i].cols) > cap)
            cap = (size_t)(c->t[i].rows * c->t[i].cols);
    float *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
    /* persistent inputs (caches) get their random contents once */
    for (int i = 0; ok && i < c->n_t; i++) {
        if (!c->t[i].cache) continue;
        size_t n = (size_t)(c->t[i].rows * c->t[i].cols);
        for (size_t k = 0; k < n; k++) a[k] = frnd(c->t[i].amp);
        ok = !set_tensor(sd[0].t[i], a, &err) && !set_tensor(sd[1].t[i], a, &err);
    }
    for (int r = 0; ok && r < c->n_runs; r++) {
        const r1_run *run = &c->runs[r];
        for (int i = 0; ok && i < c->n_t; i++) {
            if (!c->t[i].input || c->t[i].cache) continue;
            size_t n = (size_t)(c->t[i].rows * c->t[i].cols);
            for (size_t k = 0; k < n; k++) a[k] = frnd(c->t[i].amp);
            ok = !set_tensor(sd[0].t[i], a, &err) && !set_tensor(sd[1].t[i], a, &err);
        }
        ok = ok && !r1__sched_run(sd[0].s, run, &err) && !r1__sched_run(sd[1].s, run, &err);
        CHECK_MSG(ok, "%s: run %d: %s", c->name, r, err.msg);
        for (int k = 0; ok && k < c->n_out; k++) {
            int o = c->out[k];
            ok = !get_tensor(sd[0].t[o], a, &err) && !get_tensor(sd[1].t[o], b, &err);
            CHECK_MSG(ok, "%s: reading output: %s", c->name, err.msg);
            size_t n = (size_t)(out_rows(c, o, run) * c->t[o].cols);
            double mx = 1e-30, md = 0;
            for (size_t e = 0; ok && e < n; e++) {
                double d = fabs((double)a[e] - (double)b[e]);
                if (isnan(b[e]) || isnan(a[e])) d = INFINITY;
                if (fabs(a[e]) > mx) mx = fabs(a[e]);
                if (d > md) md = d;
            }
            if (md / mx > worst) worst = md / mx;
        }
    }
    /* R1_VK_CM=1: the prompt GEMMs' operands are fp16 (a few 1e-4 here), and
     * so are prompt attention's q, k, v and probabilities (a few 1e-3) */
    double loose = strstr(c->op, "q4") ? 2e-3 : strstr(c->op, "attn") ? 3e-3 : 0;
    double tol = fp16_gemm && c->n_batch > 1 && c->tol < loose ? loose : c->tol;
    /* ... and the decode matvec stages x as two int8 digits, not three (within
     * 2^-15 of each 32-element block's largest |x|: a few 1e-5 here) */
    if (two_digits && strstr(c->op, "q4") && tol < 2e-4) tol = 2e-4;
    if (ok) {
        CHECK_MSG(worst <= tol, "%s: max rel error %.3g > %.3g", c->name, worst, tol);
        printf("  %-58s rel %.2e%s\n", c->name, worst, worst <= tol ? "" : "  FAIL");
        note(c->op, worst);
    }
    free(a), free(b);
    side_free(&sd[0]), side_free(&sd[1]);
}

static void load_weights(void) {
    r1_error err = {0};
    for (int i = 0; i < n_weights; i++)
        CHECK_MSG(!be[1]->i->weight_load(be[1], weights[i], &err), "weight_load: %s", err.msg);
}

static void free_weights(void) {
    for (int i = 0; i < n_weights; i++) {
        free(weights[i]->data);
        free(weights[i]);
    }
    n_weights = 0;
}

static const char *filter;
static int wanted(const char *op) {
    return !filter || strstr(op, filter);
}

/* ---- op cases ------------------------------------------------------------------ */

static const char *tname(r1_dtype t) {
    return r1__dtype_name(t);
}

static void case_rmsnorm(int D, int T, r1_dtype wt, r1_rows rows, int n_out) {
    if (!wanted("rmsnorm")) return;
    gcase c = {.op = "rmsnorm", .tol = 2e-6, .n_batch = T};
    snprintf(c.name, sizeof c.name, "rmsnorm D=%d T=%d w=%s rows=%d n_out=%d", D, T, tname(wt),
             rows, n_out);
    int x = tadd(&c, T, D, 1, 3.0f), y = tadd(&c, rows == R1_ROWS_ALL ? T : n_out, D, 0, 0);
    r1_tensor *w = wfloat(wt, D, 0, 1.5f);
    nadd(&c, (r1_node){.op = R1_OP_RMSNORM, .rows = rows, .w = w, .f0 = 1e-5f}, y, x, -1);
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .pos = 0, .n_out = n_out};
    if (T > 2) c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .pos = 0, .n_out = 1};
    load_weights();
    run_case(&c);
    free_weights();
}

static void case_q4(const qspec *s, int T) {
    if (!wanted("matmul_q4")) return;
    gcase c = {.op = "matmul_q4", .tol = 2e-5, .n_batch = T};
    snprintf(c.name, sizeof c.name, "matmul_q4 K=%d N=%d G=%d T=%d%s%s%s%s", s->K, s->N, s->G, T,
             s->act_order ? " act-order" : "", s->asym ? " asym" : "", s->v2 ? " v2" : "",
             s->bias ? (s->bias_type == R1_F16 ? " bias-f16" : " bias-f32") : "");
    r1_qlinear *q = qnew(s);
    int x = tadd(&c, T, s->K, 1, 1.0f), y = tadd(&c, T, s->N, 0, 0);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = q}, y, x, -1);
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .n_out = 1};
    if (T > 1) c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .n_out = 1};
    /* a plan for a long prompt, run shorter: the tensor-core GEMM's variants
     * for other lengths (gemm_cm.comp) must take over */
    if (T > 256) c.runs[c.n_runs++] = (r1_run){.n_tokens = 200, .n_out = 1};
    if (T > 256) c.runs[c.n_runs++] = (r1_run){.n_tokens = 100, .n_out = 1};
    if (T > 256) c.runs[c.n_runs++] = (r1_run){.n_tokens = 20, .n_out = 1};
    load_weights();
    r1_error err = {0};
    CHECK_MSG(!be[1]->i->qlinear_prepare(be[1], q, &err), "qlinear_prepare: %s", err.msg);
    run_case(&c);
    free_weights();
    free(q);
}

/* The embedding lookup of T token ids (repeats and the vocabulary's last row
 * among them) from a V x D table. */
static void case_embed(int V, int D, r1_dtype wt, int T) {
    if (!wanted("embed")) return;
    static int32_t ids[64];
    gcase c = {.op = "embed", .tol = 0, .n_batch = T};
    snprintf(c.name, sizeof c.name, "embed V=%d D=%d w=%s T=%d", V, D, tname(wt), T);
    for (int t = 0; t < T && t < 64; t++) ids[t] = t == 1 ? V - 1 : (t * 7919) % V;
    r1_tensor *w = wfloat(wt, V, D, 1.0f);
    int y = tadd(&c, T, D, 0, 0);
    nadd(&c, (r1_node){.op = R1_OP_EMBED, .w = w}, y, -1, -1);
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .n_out = 1, .tokens = ids};
    if (T > 2) c.runs[c.n_runs++] = (r1_run){.n_tokens = 2, .n_out = 1, .tokens = ids + 3};
    load_weights();
    run_case(&c);
    free_weights();
}

static void case_dense(int N, int K, r1_dtype wt, int T, r1_rows rows, int n_out) {
    if (!wanted("matmul")) return;
    gcase c = {.op = "matmul", .tol = 2e-6, .n_batch = T};
    snprintf(c.name, sizeof c.name, "matmul N=%d K=%d w=%s T=%d rows=%d n_out=%d", N, K, tname(wt),
             T, rows, n_out);
    r1_tensor *w = wfloat(wt, N, K, 0.1f);
    int x = tadd(&c, T, K, 1, 1.0f), y = tadd(&c, rows == R1_ROWS_ALL ? T : n_out, N, 0, 0);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL, .rows = rows, .w = w}, y, x, -1);
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .n_out = n_out};
    if (T > 1) c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .n_out = 1};
    /* a prompt plan for many rows, run for few: its matrix-vector form takes over */
    if (T > 8) c.runs[c.n_runs++] = (r1_run){.n_tokens = 6, .n_out = n_out < 6 ? n_out : 6};
    load_weights();
    run_case(&c);
    free_weights();
}

static void case_rope(int H, int hd, float theta, int T, int pos) {
    if (!wanted("rope")) return;
    gcase c = {.op = "rope", .tol = 1e-6, .n_batch = T};
    snprintf(c.name, sizeof c.name, "rope H=%d hd=%d theta=%g T=%d pos=%d", H, hd, theta, T, pos);
    int x = tadd(&c, T, (int64_t)H * hd, 1, 2.0f);
    nadd(&c, (r1_node){.op = R1_OP_ROPE, .f0 = theta, .i0 = H, .i2 = hd}, x, x, -1);
    c.out[c.n_out++] = x;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .pos = pos};
    if (T > 1) c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .pos = pos + T};
    run_case(&c);
}

/* KV_STORE then ATTN over several calls: a prompt, then decode steps. With
 * rope (1), the q/k RoPE pair in front is fused with the store on the GPU, and
 * for decode steps into the attention (the rotated q is read by nothing else);
 * with rope 2 another node reads the rotated q, which is then checked too, so
 * decode keeps the separate rope_kv dispatch. */
static void case_attn(int H, int KV, int hd, int T, int pos0, int with_rope) {
    if (!wanted(with_rope ? "rope_kv" : "attn")) return;
    gcase c = {.op = with_rope ? "rope+kv_store+attn" : "kv_store+attn", .tol = 1e-5, .n_batch = T};
    snprintf(c.name, sizeof c.name, "%s%s H=%d KV=%d hd=%d T=%d pos=%d", c.op,
             with_rope == 2 ? " (q read)" : "", H, KV, hd, T, pos0);
    int n_ctx = pos0 + T + 8;
    int q = tadd(&c, T, (int64_t)H * hd, 1, 1.5f), k = tadd(&c, T, (int64_t)KV * hd, 1, 1.5f);
    int v = tadd(&c, T, (int64_t)KV * hd, 1, 1.0f), o = tadd(&c, T, (int64_t)H * hd, 0, 0);
    int kc = tadd(&c, n_ctx, (int64_t)KV * hd, 1, 1.5f),
        vc = tadd(&c, n_ctx, (int64_t)KV * hd, 1, 1.0f);
    c.t[kc].cache = c.t[vc].cache = 1;
    if (with_rope) {
        nadd(&c, (r1_node){.op = R1_OP_ROPE, .f0 = 1e6f, .i0 = H, .i2 = hd}, q, q, -1);
        nadd(&c, (r1_node){.op = R1_OP_ROPE, .f0 = 1e6f, .i0 = KV, .i2 = hd}, k, k, -1);
    }
    ndesc *st = nadd(&c, (r1_node){.op = R1_OP_KV_STORE, .i1 = KV, .i2 = hd}, -1, k, v);
    st->kv[0] = kc, st->kv[1] = vc;
    ndesc *at = nadd(&c, (r1_node){.op = R1_OP_ATTN, .i0 = H, .i1 = KV, .i2 = hd}, o, q, -1);
    at->kv[0] = kc, at->kv[1] = vc;
    c.out[c.n_out++] = o;
    c.out[c.n_out++] = kc;
    c.out[c.n_out++] = vc;
    if (with_rope == 2) {
        int q2 = tadd(&c, T, (int64_t)H * hd, 0, 0);
        nadd(&c, (r1_node){.op = R1_OP_ADD}, q2, q, q);
        c.out[c.n_out++] = q2;
    }
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T, .pos = pos0};
    c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .pos = pos0 + T};
    c.runs[c.n_runs++] = (r1_run){.n_tokens = 1, .pos = pos0 + T + 1};
    if (T > 2) c.runs[c.n_runs++] = (r1_run){.n_tokens = 2, .pos = pos0 + T + 2};
    run_case(&c);
}

static void case_eltwise(r1_op op, int cols, int T) {
    const char *name = op == R1_OP_ADD ? "add" : "silu_mul";
    if (!wanted(name)) return;
    gcase c = {.op = name, .tol = 1e-6, .n_batch = T};
    snprintf(c.name, sizeof c.name, "%s cols=%d T=%d", name, cols, T);
    int a = tadd(&c, T, cols, 1, 4.0f), b = tadd(&c, T, cols, 1, 2.0f), y = tadd(&c, T, cols, 0, 0);
    nadd(&c, (r1_node){.op = op}, y, a, b);
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T};
    if (T > 1) c.runs[c.n_runs++] = (r1_run){.n_tokens = 1};
    run_case(&c);
}

/* ADD then RMSNORM of the sum: fused on the GPU, both results compared. */
static void case_add_norm(int D, int T) {
    if (!wanted("add_rmsnorm")) return;
    gcase c = {.op = "add+rmsnorm", .tol = 2e-6, .n_batch = T};
    snprintf(c.name, sizeof c.name, "add+rmsnorm D=%d T=%d", D, T);
    int a = tadd(&c, T, D, 1, 2.0f), b = tadd(&c, T, D, 1, 2.0f), s = tadd(&c, T, D, 0, 0);
    int y = tadd(&c, T, D, 0, 0);
    r1_tensor *w = wfloat(R1_F16, D, 0, 1.5f);
    nadd(&c, (r1_node){.op = R1_OP_ADD}, s, a, b);
    nadd(&c, (r1_node){.op = R1_OP_RMSNORM, .w = w, .f0 = 1e-6f}, y, s, -1);
    c.out[c.n_out++] = s;
    c.out[c.n_out++] = y;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T};
    c.runs[c.n_runs++] = (r1_run){.n_tokens = 1};
    load_weights();
    run_case(&c);
    free_weights();
}

/* A decoder-layer-shaped chain: RMSNORM feeding two GPTQ linears, SILU_MUL of
 * their outputs feeding a third, whose output is added to a residual, and the
 * next layer's RMSNORM of that sum feeding a fourth. On the GPU the decode plan
 * fuses the norm into the matvecs, the gate into the third one and the add into
 * its epilogue, which also writes the digits of the next norm's output that
 * the fourth stages as they are (Q4_XQOUT / Q4_PREQ). With pre, the residual
 * itself comes from a linear plus add (attention's o), so the first two stage
 * digits as well. */
static void case_chain(int D, int F, int G, int act_order, int T, int no_reuse, int pre) {
    if (!wanted(T > 256 ? "chain prompt" : "chain")) return; /* "chain prompt": that one alone */
    gcase c = {.op = pre ? "q4+add+norm+q4+silu+q4+add+norm+q4" : "norm+q4+silu+q4+add+norm+q4",
               .tol = 2e-5,
               .n_batch = T,
               .no_reuse = no_reuse};
    snprintf(c.name, sizeof c.name, "chain D=%d F=%d G=%d T=%d%s%s%s", D, F, G, T,
             act_order ? " act-order" : "", no_reuse ? " no-reuse" : "", pre ? " after o" : "");
    qspec up = {D, F, G, act_order, 1, 0, 0, R1_F16}, dn = {F, D, G, 0, 0, 0, 1, R1_F16};
    qspec nx = {D, 96, G, 0, 0, 0, 1, R1_F16}, sq = {D, D, G, 0, 0, 0, 1, R1_F16};
    r1_qlinear *qg = qnew(&up), *qu = qnew(&up), *qd = qnew(&dn), *qn = qnew(&nx);
    r1_qlinear *qo = pre ? qnew(&sq) : NULL;
    r1_tensor *w = wfloat(R1_F16, D, 0, 1.5f), *w2 = wfloat(R1_F16, D, 0, 1.5f);
    int x = tadd(&c, T, D, !pre, 2.0f), h = tadd(&c, T, D, 0, 0), g = tadd(&c, T, F, 0, 0);
    int u = tadd(&c, T, F, 0, 0), a = tadd(&c, T, F, 0, 0), y = tadd(&c, T, D, 0, 0);
    int z = tadd(&c, T, D, 0, 0), h2 = tadd(&c, T, D, 0, 0), o = tadd(&c, T, 96, 0, 0);
    if (pre) { /* x = x0 + o(x0), as after attention: the MLP's norm then stages the
                  digits that o's epilogue wrote (Q4_PREQ) */
        int x0 = tadd(&c, T, D, 1, 2.0f), y0 = tadd(&c, T, D, 0, 0);
        nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qo}, y0, x0, -1);
        nadd(&c, (r1_node){.op = R1_OP_ADD}, x, x0, y0);
    }
    nadd(&c, (r1_node){.op = R1_OP_RMSNORM, .w = w, .f0 = 1e-6f}, h, x, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qg}, g, h, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qu}, u, h, -1);
    nadd(&c, (r1_node){.op = R1_OP_SILU_MUL}, a, g, u);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qd}, y, a, -1);
    nadd(&c, (r1_node){.op = R1_OP_ADD}, z, x, y);
    nadd(&c, (r1_node){.op = R1_OP_RMSNORM, .w = w2, .f0 = 1e-6f}, h2, z, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qn}, o, h2, -1);
    /* the native layout's fused decode drops the norm, gate and matvec outputs
     * that only the fused nodes read (h, a, y, h2); the transposed one writes them */
    const char *lay = getenv("R1_VK_LAYOUT");
    int t_layout = lay && !strcmp(lay, "t");
    int outs[] = {g, u, z, o, h, a, y, h2};
    for (int i = 0; i < (t_layout ? 8 : 4); i++) c.out[c.n_out++] = outs[i];
    if (pre) c.out[c.n_out++] = x;
    c.runs[c.n_runs++] = (r1_run){.n_tokens = T};
    c.runs[c.n_runs++] = (r1_run){.n_tokens = 1};
    if (T > 256) /* the tensor-core GEMM's other variants, one plan (vk_plan_q4.c) */
        for (int r = 0; r < 3; r++)
            c.runs[c.n_runs++] = (r1_run){.n_tokens = (int[]){200, 100, 20}[r]};
    load_weights();
    r1_error err = {0};
    r1_qlinear *qs[] = {qg, qu, qd, qn, qo};
    for (int i = 0; i < 4 + pre; i++)
        CHECK_MSG(!be[1]->i->qlinear_prepare(be[1], qs[i], &err), "qlinear_prepare: %s", err.msg);
    run_case(&c);
    free_weights();
    free(qg), free(qu), free(qd), free(qn), free(qo);
}

/* Three GPTQ linears of one input with biases, as attention's q, k and v, and a
 * wider one of another input: in prompts on the tensor-core path the three are
 * prepared together, their weights side by side (vk_plan_q4.c
 * r1vk_plan_cm), the wider one after them (its weight prepared beside their GEMMs). */
static void case_merged(int D, int T) {
    if (!wanted("merged")) return;
    gcase c = {.op = "q4 x3 of one input", .tol = 2e-5, .n_batch = T};
    snprintf(c.name, sizeof c.name, "merged q4 x3 D=%d T=%d", D, T);
    qspec sq = {D, D, 128, 0, 1, 0, 1, R1_F16}, sk = {D, D / 4, 128, 0, 1, 0, 1, R1_F16};
    qspec sw = {D, 2 * D, 128, 0, 1, 0, 1, R1_F16};
    r1_qlinear *qq = qnew(&sq), *qk = qnew(&sk), *qv = qnew(&sk), *qw = qnew(&sw);
    int x = tadd(&c, T, D, 1, 2.0f), x2 = tadd(&c, T, D, 1, 2.0f);
    int yq = tadd(&c, T, D, 0, 0), yk = tadd(&c, T, D / 4, 0, 0), yv = tadd(&c, T, D / 4, 0, 0);
    int yw = tadd(&c, T, 2 * D, 0, 0);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qq}, yq, x, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qk}, yk, x, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qv}, yv, x, -1);
    nadd(&c, (r1_node){.op = R1_OP_MATMUL_Q4, .q = qw}, yw, x2, -1);
    int outs[] = {yq, yk, yv, yw};
    for (int i = 0; i < 4; i++) c.out[c.n_out++] = outs[i];
    static const int runs[] = {0, 200, 100, 20, 1};
    for (int r = 0; r < 5; r++) c.runs[c.n_runs++] = (r1_run){.n_tokens = r ? runs[r] : T};
    load_weights();
    r1_error err = {0};
    r1_qlinear *qs[] = {qq, qk, qv, qw};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(!be[1]->i->qlinear_prepare(be[1], qs[i], &err), "qlinear_prepare: %s", err.msg);
    run_case(&c);
    free_weights();
    free(qq), free(qk), free(qv), free(qw);
}

static void all_cases(void) {
    static const r1_dtype ft[] = {R1_F16, R1_BF16, R1_F32};
    for (int i = 0; i < 3; i++) {
        case_rmsnorm(128, 1, ft[i], R1_ROWS_ALL, 1);
        case_rmsnorm(99, 7, ft[i], R1_ROWS_ALL, 1);
    }
    case_rmsnorm(5120, 3, R1_F16, R1_ROWS_ALL, 1);
    case_rmsnorm(256, 9, R1_F16, R1_ROWS_PICK, 1);
    case_rmsnorm(256, 9, R1_F16, R1_ROWS_PICK, 9);
    case_rmsnorm(130, 9, R1_BF16, R1_ROWS_OUT, 4);

    qspec qs[] = {
        {128, 64, 32, 0, 0, 0, 1, R1_F16},
        {256, 776, 128, 1, 0, 0, 1, R1_F16},
        {256, 96, 64, 0, 1, 0, 0, R1_F16},
        {384, 136, 32, 1, 1, 0, 0, R1_F16},
        {512, 72, 128, 0, 1, 1, 1, R1_F32},
        {200, 40, 200, 0, 1, 0, 0, R1_F16},
        {1024, 264, 128, 1, 1, 1, 0, R1_F16},
        {13824 / 4, 128, 128, 0, 0, 0, 0, R1_F16},
        /* decode K splits of 8-row slices that cross 32-wide groups */
        {5120, 72, 32, 1, 1, 0, 0, R1_F16},
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        case_q4(&qs[i], 1);
        case_q4(&qs[i], i % 2 ? 5 : 70);
    }
    /* long prompts: gemm_cm's 128 x 128 tile (its last one partial) where
     * R1_VK_CM_BIG_FROM=256 (tests/vulkan.cmake), else the 64 x 128 one */
    case_q4(&qs[1], 300);
    case_q4(&qs[6], 260);

    for (int i = 0; i < 3; i++) case_embed(300, 1040, ft[i], 9); /* rows past 1024 elements */
    case_embed(50, 8, R1_F16, 1);
    case_dense(1000, 256, R1_F16, 1, R1_ROWS_OUT, 1);
    case_dense(40, 2048, R1_F16, 2, R1_ROWS_OUT, 2); /* K / 8 a multiple of the workgroup */
    case_dense(777, 255, R1_F16, 5, R1_ROWS_OUT, 5);
    case_dense(130, 96, R1_BF16, 3, R1_ROWS_OUT, 2);
    case_dense(64, 130, R1_BF16, 1, R1_ROWS_OUT, 1);
    case_dense(200, 64, R1_F32, 70, R1_ROWS_ALL, 70);
    case_dense(152, 72, R1_F32, 4, R1_ROWS_PICK, 2);
    case_dense(300, 128, R1_F16, 40, R1_ROWS_OUT, 12); /* past the matrix-vector rows */

    case_rope(4, 32, 1e6f, 1, 0);
    case_rope(8, 64, 1e4f, 5, 37);
    case_rope(2, 128, 1e6f, 3, 100000);
    case_rope(3, 6, 1e6f, 2, 7);

    /* query heads per kv head 2, 4, 5, 1, 3, 7 and 16 (attn_dec_sg.comp's second row slot) */
    static const int heads[][3] = {{4, 2, 32},  {4, 1, 64},   {40, 8, 128}, {8, 8, 64},
                                   {6, 2, 128}, {28, 4, 128}, {16, 1, 64}};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        case_attn(heads[i][0], heads[i][1], heads[i][2], 1, 0, 0);
        case_attn(heads[i][0], heads[i][1], heads[i][2], 19, i % 2 ? 33 : 0, 0);
        case_attn(heads[i][0], heads[i][1], heads[i][2], 5, 3, 1);
        if (i % 2) case_attn(heads[i][0], heads[i][1], heads[i][2], 5, 3, 2);
    }

    case_eltwise(R1_OP_ADD, 5120, 1);
    case_eltwise(R1_OP_ADD, 99, 13);
    case_eltwise(R1_OP_SILU_MUL, 13824, 1);
    case_eltwise(R1_OP_SILU_MUL, 77, 9);
    case_add_norm(512, 6);
    case_add_norm(97, 1);
    case_chain(256, 384, 128, 0, 3, 0, 0);
    case_chain(512, 1024, 64, 1, 5, 1, 0);
    case_chain(1024, 2048, 128, 0, 1, 0, 0);
    case_chain(1024, 2048, 128, 0, 4, 1, 0);
    case_chain(1024, 2048, 128, 0, 1, 0, 1);
    case_chain(1024, 2048, 128, 1, 4, 1, 1);
    case_chain(256, 384, 128, 0, 300, 0, 0); /* prompts: all the GEMM's variants */
    case_merged(256, 300);
    case_attn(40, 8, 128, 300, 0, 0); /* a long cache: many decode chunks */
    case_attn(12, 2, 128, 2, 700, 1);
    case_attn(40, 8, 128, 2, 200, 2);
    case_attn(4, 1, 32, 2, 4300, 1); /* more chunks than one combine pass */
    case_attn(16, 1, 64, 2, 130, 1); /* 16 query rows a kv head, over three chunks */
}

int main(int argc, char **argv) {
    filter = argc > 1 ? argv[1] : NULL;
    setenv("R1_CPU", "scalar", 1);
    /* Where the device has tensor cores the prompt GEMM takes fp16 operands by
     * default; the checks hold the float32-accurate form (split operands) to
     * float32 tolerances unless R1_VK_CM asks for another. */
    setenv("R1_VK_CM", "exact", 0);
    fp16_gemm = !strcmp(getenv("R1_VK_CM"), "1");
    const char *xd = getenv("R1_VK_X_DIGITS");
    two_digits = xd ? !strcmp(xd, "2") : fp16_gemm;
    r1_error err = {0};
    if (r1__cpu_backend_new(2, &be[0], &err)) {
        fprintf(stderr, "test_backend_ops: CPU backend: %s\n", err.msg);
        return 1;
    }
    if (r1__vulkan_backend_new(-1, &be[1], &err)) {
        printf("test_backend_ops: skipped: no Vulkan backend: %s\n", err.msg);
        be[0]->i->free(be[0]);
        return SKIP;
    }
    be[1]->index = 1;
    all_cases();
    printf("\n%-20s %6s  %s\n", "op", "cases", "max rel error");
    for (int i = 0; i < n_summary; i++)
        printf("%-20s %6d  %.2e\n", summary[i].op, summary[i].cases, summary[i].worst);
    be[1]->i->free(be[1]);
    be[0]->i->free(be[0]);
    return r1t_finish("test_backend_ops");
}
