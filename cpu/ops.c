#include "ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "chunks.h"

/* Rows a node reads (first source row) and processes. */
static void rows_of(const r1_node *n, const r1_run *run, int *first, int *count) {
    *first = n->rows == R1_ROWS_PICK ? run->n_tokens - run->n_out : 0;
    *count = n->rows == R1_ROWS_ALL ? run->n_tokens : run->n_out;
}

static void op_embed(const r1_node *n, const r1_run *run) {
    const r1_tensor *w = n->w;
    int64_t D = w->ne[1];
    float *y = n->dst->data;
#pragma omp for schedule(static) nowait
    for (int t = 0; t < run->n_tokens; t++) {
        int64_t id = run->tokens[t];
        for (int64_t d = 0; d < D; d++) y[t * D + d] = r1__get_f(w->data, w->type, id * D + d);
    }
}

static void op_rmsnorm(const r1_node *n, const r1_run *run) {
    int first, cnt;
    rows_of(n, run, &first, &cnt);
    int64_t D = n->src[0]->ne[1];
    const float *x = n->src[0]->data;
    float *y = n->dst->data;
#pragma omp for schedule(static) nowait
    for (int r = 0; r < cnt; r++) {
        const float *xr = x + (first + r) * D;
        double ss = 0;
        for (int64_t d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        float inv = (float)(1.0 / sqrt(ss / (double)D + (double)n->f0));
        for (int64_t d = 0; d < D; d++)
            y[r * D + d] = xr[d] * inv * r1__get_f(n->w->data, n->w->type, d);
    }
}

static void add_bias(const r1_tensor *b, float *y, int T, int N, int n0, int n1) {
    if (!b) return;
    for (int t = 0; t < T; t++)
        for (int c = n0; c < n1; c++) y[(size_t)t * N + c] += r1__get_f(b->data, b->type, c);
}

r1_q4_act r1__cpu_q4_mode(const r1_cpu_seg *cs, const r1_qlinear *q, int T, size_t *bytes) {
    r1_q4_act mode = T == 1                ? cs->mode_decode
                     : T < R1_CPU_PROMPT_T ? cs->mode_short
                                           : cs->mode_batch;
    *bytes = r1__cpu_q4_act_bytes(cs->k, q, T, mode);
    if (*bytes == (size_t)-1) {
        mode = R1_Q4_F32;
        *bytes = r1__cpu_q4_act_bytes(cs->k, q, T, mode);
    }
    return mode;
}

/* A chunk size (at least ch) that leaves no more chunks than a run word counts. */
static int chunk_size(int N, int ch) {
    while ((N + ch - 1) / ch > R1_CPU_RUN_MAX_CHUNKS) ch *= 2;
    return ch;
}

/* This thread's walk over node n's nch chunks in the current call. */
static r1_cpu_chunk_iter chunks_of(const r1_cpu_seg *cs, const r1_node *n, int nch) {
    uint64_t *runs = cs->runs + (size_t)(n - cs->nodes) * (size_t)cs->max_threads;
    int nt = omp_get_num_threads();
    return r1__cpu_chunks(runs, cs->gen, nch, omp_get_thread_num(),
                          nt < cs->max_threads ? nt : cs->max_threads);
}

static int q4_chunk_size(const r1_cpu_seg *cs, const r1_qlinear *q) {
    return chunk_size(q->N, r1__cpu_col_chunk(q->N, cs->k->col_align));
}

static int dense_chunk_size(const r1_cpu_seg *cs, const r1_node *n) {
    int N = (int)n->w->ne[0], K = (int)n->w->ne[1];
    size_t row = (size_t)K * (n->w->cpu_extra ? 1 : r1__dtype_size(n->w->type));
    return chunk_size(N, r1__cpu_row_chunk(N, row, cs->k->col_align));
}

/* Columns [n0, n1) of a GPTQ matmul from prepared activations, with the bias. */
static void q4_chunk(const r1_cpu_seg *cs, const r1_qlinear *q, const float *x, const void *xa,
                     int T, r1_q4_act mode, float *y, int n0, int n1) {
    r1__cpu_q4_matmul_act(cs->k, q, x, xa, T, mode, y, n0, n1);
    add_bias(q->bias, y, T, q->N, n0, n1);
}

/* Rows [n0, n1) of a dense matmul, or of its 8-bit copy (--lm-head q8). */
static void dense_chunk(const r1_cpu_seg *cs, const r1_tensor *w, const float *x, int T, float *y,
                        int n0, int n1) {
    if (w->cpu_extra)
        r1__cpu_q8_matmul(cs->k, w->cpu_extra, x, T, y, n0, n1);
    else
        cs->k->dense_matmul(w, x, T, y, n0, n1);
}

/* Prepared activations (quantized or gathered once per op), then column chunks. */
static void op_matmul_q4(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs) {
    const r1_cpu_kernels *k = cs->k;
    const r1_qlinear *q = n->q;
    int N = q->N, T = run->n_tokens, ch = q4_chunk_size(cs, q), nch = (N + ch - 1) / ch;
    const float *x = n->src[0]->data;
    float *y = n->dst->data;
    r1_cpu_chunk_iter it = chunks_of(cs, n, nch);
    if (!k->q4_matmul_act) { /* the scalar reference reads the checkpoint layout directly */
        for (int c; (c = r1__cpu_chunk_next(&it)) >= 0;) {
            int n0 = c * ch, n1 = n0 + ch > N ? N : n0 + ch;
            k->q4_matmul(q, x, T, y, n0, n1);
            add_bias(q->bias, y, T, N, n0, n1);
        }
        return;
    }
    size_t bytes;
    r1_q4_act mode = r1__cpu_q4_mode(cs, q, T, &bytes);
    const void *xa = cs->xa;
    if (bytes && T == 1) {
        /* decode: each thread prepares its own copy (K values, cheap), so no barrier
         * is needed between preparing and multiplying, nor against the next op */
        char *mine = (char *)cs->xa + (size_t)omp_get_thread_num() * cs->xa_stride1;
        r1__cpu_job_prep(n, cs, mine);
        xa = mine;
    } else if (bytes) {
        int units = T * q->n_groups;
#pragma omp barrier /* an earlier op may still read the shared buffer */
#pragma omp for schedule(static)
        for (int u = 0; u < units; u++) r1__cpu_q4_act_prep(k, q, x, T, mode, u, u + 1, cs->xa);
    }
    for (int c; (c = r1__cpu_chunk_next(&it)) >= 0;) {
        int n0 = c * ch, n1 = n0 + ch > N ? N : n0 + ch;
        q4_chunk(cs, q, x, xa, T, mode, y, n0, n1);
    }
}

static void op_matmul(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs) {
    int first, T;
    rows_of(n, run, &first, &T);
    int N = (int)n->w->ne[0], K = (int)n->w->ne[1], ch = dense_chunk_size(cs, n);
    int nch = (N + ch - 1) / ch;
    const float *x = (const float *)n->src[0]->data + (size_t)first * K;
    float *y = n->dst->data;
    r1_cpu_chunk_iter it = chunks_of(cs, n, nch);
    for (int c; (c = r1__cpu_chunk_next(&it)) >= 0;) {
        int n0 = c * ch, n1 = n0 + ch > N ? N : n0 + ch;
        dense_chunk(cs, n->w, x, T, y, n0, n1);
    }
}

/* ---- one-token matmuls as chunks for a duo call (cpu/duo.c) ------------- */

int r1__cpu_job_chunks(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs, int *ch) {
    if (run->n_tokens != 1) return 0;
    if (n->op == R1_OP_MATMUL_Q4 && cs->k->q4_matmul_act) {
        *ch = q4_chunk_size(cs, n->q);
        return (n->q->N + *ch - 1) / *ch;
    }
    int first, T;
    rows_of(n, run, &first, &T);
    if (n->op != R1_OP_MATMUL || first != 0 || T != 1) return 0;
    *ch = dense_chunk_size(cs, n);
    return ((int)n->w->ne[0] + *ch - 1) / *ch;
}

int r1__cpu_job_n(const r1_node *n) {
    return n->op == R1_OP_MATMUL_Q4 ? n->q->N : (int)n->w->ne[0];
}

void r1__cpu_job_prep(const r1_node *n, const r1_cpu_seg *cs, void *xa) {
    if (n->op != R1_OP_MATMUL_Q4) return;
    size_t bytes;
    r1_q4_act mode = r1__cpu_q4_mode(cs, n->q, 1, &bytes);
    if (bytes) r1__cpu_q4_act_prep(cs->k, n->q, n->src[0]->data, 1, mode, 0, n->q->n_groups, xa);
}

void r1__cpu_job_run(const r1_node *n, const r1_cpu_seg *cs, const void *xa, int ch, int c,
                     float *y, int *n0, int *n1) {
    int N = r1__cpu_job_n(n);
    const float *x = n->src[0]->data;
    *n0 = c * ch, *n1 = *n0 + ch > N ? N : *n0 + ch;
    if (n->op == R1_OP_MATMUL_Q4) {
        size_t bytes;
        q4_chunk(cs, n->q, x, xa, 1, r1__cpu_q4_mode(cs, n->q, 1, &bytes), y, *n0, *n1);
    } else {
        dense_chunk(cs, n->w, x, 1, y, *n0, *n1);
    }
}

/* NeoX rotate-half RoPE; angles in double to match the float64 reference. */
static void op_rope(const r1_node *n, const r1_run *run) {
    int H = n->i0, hd = n->i2, half = hd / 2;
    float *x = n->dst->data;
    double theta = n->f0;
#pragma omp for schedule(static) nowait
    for (int t = 0; t < run->n_tokens; t++) {
        float cs[512], sn[512];
        double p = (double)(run->pos + t);
        for (int i = 0; i < half; i++) {
            double a = p * pow(theta, -2.0 * i / hd);
            cs[i] = (float)cos(a);
            sn[i] = (float)sin(a);
        }
        for (int h = 0; h < H; h++) {
            float *v = x + ((size_t)t * H + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * sn[i];
                v[i + half] = b * cs[i] + a * sn[i];
            }
        }
    }
}

static void op_kv_store(const r1_node *n, const r1_run *run) {
    size_t row = (size_t)n->i1 * n->i2;
#pragma omp for schedule(static) nowait
    for (int t = 0; t < run->n_tokens; t++) {
        memcpy((float *)n->kv[0]->data + (run->pos + t) * row,
               (const float *)n->src[0]->data + t * row, row * sizeof(float));
        memcpy((float *)n->kv[1]->data + (run->pos + t) * row,
               (const float *)n->src[1]->data + t * row, row * sizeof(float));
    }
}

/* Multiversioned so the dot products and axpys use AVX-512/AVX2 where present
 * (long contexts make attention a visible share of decode time). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define R1_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define R1_CLONES
#endif

#define ATTN_BLOCK 32 /* keys scored together: one max, one rescale per block */

/* q . k over hd elements: 16 independent partial sums, so that the loop
 * vectorizes without reassociating a single float sum (no -ffast-math). */
static inline float dot_hd(const float *q, const float *k, int hd) {
    float s[16] = {0};
    int d = 0;
    for (; d + 16 <= hd; d += 16)
        for (int i = 0; i < 16; i++) s[i] += q[d + i] * k[d + i];
    float r = 0;
    for (; d < hd; d++) r += q[d] * k[d];
    for (int i = 0; i < 16; i++) r += s[i];
    return r;
}

/* One (token, head) pair: online softmax over cache rows 0..pos+t in blocks of
 * keys (no T x T scores): a block's scores first, then one rescale of the
 * running sums if its max is higher, then its weighted values. */
R1_CLONES static void attn_one(const r1_node *n, const r1_run *run, int t, int h) {
    int H = n->i0, KV = n->i1, hd = n->i2, kvh = h / (H / KV), last = run->pos + t;
    size_t kvrow = (size_t)KV * hd;
    const float *q = (const float *)n->src[0]->data + ((size_t)t * H + h) * hd;
    const float *K = (const float *)n->kv[0]->data + (size_t)kvh * hd;
    const float *V = (const float *)n->kv[1]->data + (size_t)kvh * hd;
    float acc[1024], sc[ATTN_BLOCK], m = -INFINITY, l = 0, scale = 1.0f / sqrtf((float)hd);
    memset(acc, 0, (size_t)hd * sizeof(float));
    for (int s0 = 0; s0 <= last; s0 += ATTN_BLOCK) {
        int nb = last + 1 - s0 < ATTN_BLOCK ? last + 1 - s0 : ATTN_BLOCK;
        float bm = -INFINITY;
        for (int j = 0; j < nb; j++) {
            sc[j] = dot_hd(q, K + (size_t)(s0 + j) * kvrow, hd) * scale;
            bm = sc[j] > bm ? sc[j] : bm;
        }
        if (bm > m) {
            float corr = expf(m - bm);
            for (int d = 0; d < hd; d++) acc[d] *= corr;
            l *= corr;
            m = bm;
        }
        for (int j = 0; j < nb; j++) {
            float w = expf(sc[j] - m);
            const float *vs = V + (size_t)(s0 + j) * kvrow;
            l += w;
            for (int d = 0; d < hd; d++) acc[d] += w * vs[d];
        }
    }
    float *o = (float *)n->dst->data + ((size_t)t * H + h) * hd;
    for (int d = 0; d < hd; d++) o[d] = acc[d] / l;
}

#define ATTN_GROUP_MAX 4096 /* R * hd floats of running sums on the stack */

/* The R = H / KV query heads of kv head g for token t together: each key and
 * value row is read once for all of them. Per head the arithmetic is exactly
 * attn_one's (same blocks, same order), so results do not depend on the path. */
R1_CLONES static void attn_group(const r1_node *n, const r1_run *run, int t, int g) {
    int H = n->i0, KV = n->i1, hd = n->i2, R = H / KV, last = run->pos + t;
    size_t kvrow = (size_t)KV * hd;
    const float *q = (const float *)n->src[0]->data + ((size_t)t * H + (size_t)g * R) * hd;
    const float *K = (const float *)n->kv[0]->data + (size_t)g * hd;
    const float *V = (const float *)n->kv[1]->data + (size_t)g * hd;
    float acc[ATTN_GROUP_MAX], sc[16][ATTN_BLOCK], m[16], l[16], scale = 1.0f / sqrtf((float)hd);
    memset(acc, 0, (size_t)R * hd * sizeof(float));
    for (int r = 0; r < R; r++) m[r] = -INFINITY, l[r] = 0;
    for (int s0 = 0; s0 <= last; s0 += ATTN_BLOCK) {
        int nb = last + 1 - s0 < ATTN_BLOCK ? last + 1 - s0 : ATTN_BLOCK;
        for (int j = 0; j < nb; j++) {
            const float *ks = K + (size_t)(s0 + j) * kvrow;
            for (int r = 0; r < R; r++) sc[r][j] = dot_hd(q + (size_t)r * hd, ks, hd) * scale;
        }
        for (int r = 0; r < R; r++) {
            float bm = -INFINITY;
            for (int j = 0; j < nb; j++) bm = sc[r][j] > bm ? sc[r][j] : bm;
            if (bm > m[r]) {
                float corr = expf(m[r] - bm);
                for (int d = 0; d < hd; d++) acc[r * hd + d] *= corr;
                l[r] *= corr;
                m[r] = bm;
            }
        }
        for (int j = 0; j < nb; j++) {
            const float *vs = V + (size_t)(s0 + j) * kvrow;
            for (int r = 0; r < R; r++) {
                float w = expf(sc[r][j] - m[r]), *a = acc + (size_t)r * hd;
                l[r] += w;
                for (int d = 0; d < hd; d++) a[d] += w * vs[d];
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float *o = (float *)n->dst->data + ((size_t)t * H + (size_t)g * R + r) * hd;
        for (int d = 0; d < hd; d++) o[d] = acc[r * hd + d] / l[r];
    }
}

/* Grouped by kv head when that leaves every thread a few items (prompts), else
 * one item per query head (decode: more parallelism). */
static void op_attn(const r1_node *n, const r1_run *run) {
    int H = n->i0, KV = n->i1, R = KV ? H / KV : 0;
    int grouped = R > 1 && R <= 16 && R * n->i2 <= ATTN_GROUP_MAX &&
                  run->n_tokens * KV >= 4 * omp_get_num_threads();
    if (grouped) {
        int items = run->n_tokens * KV;
#pragma omp for schedule(dynamic, 1) nowait
        for (int i = 0; i < items; i++) attn_group(n, run, i / KV, i % KV);
        return;
    }
    int items = run->n_tokens * H;
#pragma omp for schedule(dynamic, 1) nowait
    for (int i = 0; i < items; i++) attn_one(n, run, i / H, i % H);
}

/* e^x for x <= 0 (SiLU's e^-|a|) in a form the compiler vectorizes, unlike
 * libm's expf: 2^(x log2 e) as 2^n (exponent bits) times a degree-6 polynomial
 * of the fraction (relative error below 1e-6 down to -20, 4e-6 at -85: the
 * rounding of x log2 e); below -87 it is 0, NaN stays NaN. */
static inline float exp_neg(float x) {
    float t = x * 1.44269504f;
    t = t >= -126.0f ? t : -126.0f; /* NaN too: the cast below needs a number */
    /* n = round(t) for t <= 0, so |f| <= ln 2 / 2 */
    float n = (float)(int)(t - 0.5f), f = (t - n) * 0.69314718f;
    float p =
        1.0f +
        f * (1.0f + f * (0.5f + f * (0.16666667f +
                                     f * (0.041666668f + f * (0.008333334f + f * 0.0013888889f)))));
    int32_t bits = (int32_t)(n + 127.0f) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return x < -87.0f ? 0.0f : x == x ? p * s : x;
}

/* a * sigmoid(a) * b, with e^-|a| so that nothing overflows; both sides of the
 * select are computed so that the loop vectorizes (no control flow). */
static inline float silu_mul(float a, float b) {
    float e = exp_neg(a < 0 ? a : -a), s = 1.0f / (1.0f + e);
    return a * (a < 0 ? e * s : s) * b;
}

static void op_elementwise(const r1_node *n, const r1_run *run) {
    size_t total = (size_t)run->n_tokens * (size_t)n->dst->ne[1];
    const float *a = n->src[0]->data, *b = n->src[1]->data;
    float *y = n->dst->data;
    /* 1024-element chunks: a decode row (1.5b: 8960 gate values) splits evenly
     * enough over the threads; 4096 left one thread two of three chunks */
    long nb = (long)((total + 1023) / 1024);
#pragma omp for schedule(static) nowait
    for (long c = 0; c < nb; c++) {
        size_t i0 = (size_t)c * 1024, i1 = i0 + 1024 > total ? total : i0 + 1024;
        if (n->op == R1_OP_ADD) {
            for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
        } else {
            for (size_t i = i0; i < i1; i++) y[i] = silu_mul(a[i], b[i]);
        }
    }
}

void r1__cpu_node(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs) {
    switch (n->op) {
    case R1_OP_EMBED:
        op_embed(n, run);
        break;
    case R1_OP_RMSNORM:
        op_rmsnorm(n, run);
        break;
    case R1_OP_MATMUL_Q4:
        op_matmul_q4(n, run, cs);
        break;
    case R1_OP_MATMUL:
        op_matmul(n, run, cs);
        break;
    case R1_OP_ROPE:
        op_rope(n, run);
        break;
    case R1_OP_KV_STORE:
        op_kv_store(n, run);
        break;
    case R1_OP_ATTN:
        op_attn(n, run);
        break;
    case R1_OP_SILU_MUL:
    case R1_OP_ADD:
        op_elementwise(n, run);
        break;
    default:
        break; /* COPY is run by the scheduler */
    }
}

/* ---- barrier plan ---------------------------------------------------------- */

typedef struct span {
    const char *a, *b;
} span;

static int overlap(span x, span y) {
    return x.a < y.b && y.a < x.b;
}

static span span_of(const r1_tensor *t) {
    const char *a = t ? t->data : NULL;
    return (span){a, a ? a + r1__tensor_nbytes(t) : a};
}

/* Memory a node reads (r) and writes (w); at most 5 reads, 2 writes. */
static void node_spans(const r1_node *n, span *r, int *nr, span *w, int *nw) {
    *nr = *nw = 0;
    for (int i = 0; i < 3; i++)
        if (n->src[i]) r[(*nr)++] = span_of(n->src[i]);
    if (n->op == R1_OP_KV_STORE) {
        w[(*nw)++] = span_of(n->kv[0]);
        w[(*nw)++] = span_of(n->kv[1]);
    } else {
        for (int i = 0; i < 2; i++)
            if (n->kv[i]) r[(*nr)++] = span_of(n->kv[i]);
    }
    if (n->dst) w[(*nw)++] = span_of(n->dst);
}

static int hazard(const r1_node *prev, const r1_node *next) {
    span pr[5], pw[2], nr[5], nw[2];
    int npr, npw, nnr, nnw;
    node_spans(prev, pr, &npr, pw, &npw);
    node_spans(next, nr, &nnr, nw, &nnw);
    for (int i = 0; i < npw; i++) {
        for (int j = 0; j < nnr; j++)
            if (overlap(pw[i], nr[j])) return 1; /* read after write */
        for (int j = 0; j < nnw; j++)
            if (overlap(pw[i], nw[j])) return 1; /* write after write */
    }
    for (int i = 0; i < npr; i++)
        for (int j = 0; j < nnw; j++)
            if (overlap(pr[i], nw[j])) return 1; /* write after read */
    return 0;
}

int r1__cpu_sync_plan(r1_cpu_seg *cs, const r1_node *nodes, int n, int max_threads) {
    cs->sync = calloc((size_t)n + 1, 1);
    cs->runs = calloc((size_t)n * (size_t)max_threads + 1, sizeof *cs->runs);
    if (!cs->sync || !cs->runs) return -1;
    cs->nodes = nodes;
    cs->max_threads = max_threads;
    cs->light = 1;
    for (int i = 0; i < n; i++)
        if (nodes[i].op == R1_OP_MATMUL_Q4 || nodes[i].op == R1_OP_MATMUL ||
            nodes[i].op == R1_OP_ATTN)
            cs->light = 0;
    int since = 0; /* first node not yet behind a barrier */
    for (int i = 1; i < n; i++) {
        for (int j = since; j < i && !cs->sync[i]; j++)
            cs->sync[i] = (unsigned char)hazard(&nodes[j], &nodes[i]);
        if (cs->sync[i]) since = i;
    }
    return 0;
}
