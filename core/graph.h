/* The compute graph: a flat, topologically ordered list of ops over tensors.
 *
 * models/ builds it once per session for at most n_batch tokens; every call then
 * runs the same nodes with run-time sizes (r1_run: how many tokens, at which
 * position). Nothing here knows about backends: the scheduler (sched.h) places
 * each node by where its layer's weights live and inserts copies. */
#ifndef R1_GRAPH_H
#define R1_GRAPH_H

#include "error.h"
#include "tensor.h"

typedef enum r1_op {
    R1_OP_EMBED,     /* dst[T,D] f32 = w[tokens[t], :] (w: F16/BF16/F32 [V,D]) */
    R1_OP_RMSNORM,   /* dst[T,D] = src0 / sqrt(mean(src0^2) + f0) * w[D] */
    R1_OP_MATMUL_Q4, /* dst[T,N] = src0[T,K] . W[K,N] (+ bias[N]), W = GPTQ int4 (q) */
    R1_OP_MATMUL,    /* dst[T,N] = src0[T,K] . w[N,K]^T, w dense F16/BF16/F32 or Q8 rows */
    R1_OP_ROPE,      /* in place on src0 [T, i0*i2]: NeoX rotate-half, theta f0, pos+t */
    R1_OP_KV_STORE,  /* rows pos..pos+T-1 of kv[0] (K), kv[1] (V) [n_ctx, i1*i2] = src0 (k),
                        src1 (v) [T, i1*i2]; no dst */
    R1_OP_ATTN,      /* dst[T,i0*i2] = causal GQA softmax(q k^T / sqrt(i2)) v of src0 (q)
                        over cache rows 0..pos+t; query head h uses kv head h/(i0/i1) */
    R1_OP_SILU_MUL,  /* dst[T,F] = silu(src0) * src1 */
    R1_OP_ADD,       /* dst[T,D] = src0 + src1 */
    R1_OP_COPY,      /* dst = src0, across backends (inserted by the scheduler) */
    R1_OP_COUNT
} r1_op;

/* Which rows an op works on. Most ops take all n_tokens rows (ALL). The output
 * norm PICKs the last n_out source rows into dst rows 0..n_out-1; the head then
 * works on those n_out rows (OUT). */
typedef enum r1_rows { R1_ROWS_ALL = 0, R1_ROWS_PICK, R1_ROWS_OUT } r1_rows;

/* A GPTQ int4 linear layer, K inputs, N outputs (see spec: qweight [K/8,N],
 * qzeros [K/G,N/8], scales [K/G,N] f16, g_idx [K]). Tensors point into the mmap. */
typedef struct r1_qlinear {
    int K, N, G, n_groups;
    int act_order; /* g_idx differs from k/G: look groups up per row */
    int zeros_v2;  /* stored zero is z itself (gptq_v2), else z-1 (v1) */
    r1_tensor *qweight, *qzeros, *scales, *g_idx, *bias; /* bias may be NULL */
    void *cpu_extra; /* CPU backend's derived data (repacked layout, perm), owned by it */
} r1_qlinear;

typedef struct r1_node {
    r1_op op;
    int layer;   /* -1 embedding, 0..L-1 decoder layers, L output head: drives placement */
    int backend; /* set by the scheduler */
    r1_rows rows;
    r1_tensor *dst;
    r1_tensor *src[3];
    r1_tensor *w;     /* EMBED, RMSNORM, MATMUL weight */
    r1_qlinear *q;    /* MATMUL_Q4 */
    r1_tensor *kv[2]; /* ATTN: this layer's K and V cache [n_ctx, n_kv*head_dim] */
    float f0;         /* eps (RMSNORM), rope theta (ROPE) */
    int i0, i1, i2;   /* n_heads, n_kv_heads, head_dim (ROPE, ATTN) */
} r1_node;

/* Run-time parameters of one forward call. */
typedef struct r1_run {
    int n_tokens;          /* rows in use, 1..n_batch */
    int pos;               /* position of row 0 */
    int n_out;             /* rows for PICK/OUT ops: logits wanted for the last n_out tokens */
    const int32_t *tokens; /* host array of n_tokens ids (EMBED) */
} r1_run;

typedef struct r1_graph {
    r1_node *nodes;
    int n_nodes, cap_nodes;
    r1_tensor **tensors; /* activations the graph owns (allocated by the scheduler) */
    int n_tensors, cap_tensors;
    int n_batch;
} r1_graph;

r1_graph *r1__graph_new(int n_batch);
void r1__graph_free(r1_graph *g);
/* New activation tensor [rows, cols] of f32 owned by the graph; NULL on OOM. */
r1_tensor *r1__graph_tensor(r1_graph *g, const char *name, int64_t rows, int64_t cols);
/* Appends a node (copied); returns it or NULL on OOM. */
r1_node *r1__graph_add(r1_graph *g, const r1_node *n);
const char *r1__op_name(r1_op op);

#endif
