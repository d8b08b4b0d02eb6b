#include "graph.h"

#include <stdlib.h>
#include <string.h>

r1_graph *r1__graph_new(int n_batch) {
    r1_graph *g = calloc(1, sizeof *g);
    if (g) g->n_batch = n_batch;
    return g;
}

void r1__graph_free(r1_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i]);
    free(g->tensors);
    free(g->nodes);
    free(g);
}

r1_tensor *r1__graph_tensor(r1_graph *g, const char *name, int64_t rows, int64_t cols) {
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
        r1_tensor **nt = realloc(g->tensors, (size_t)cap * sizeof *nt);
        if (!nt) return NULL;
        g->tensors = nt;
        g->cap_tensors = cap;
    }
    r1_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = name;
    t->type = R1_F32;
    t->ndim = 2;
    t->ne[0] = rows;
    t->ne[1] = cols;
    g->tensors[g->n_tensors++] = t;
    return t;
}

r1_node *r1__graph_add(r1_graph *g, const r1_node *n) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        r1_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return NULL;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes] = *n;
    return &g->nodes[g->n_nodes++];
}

const char *r1__op_name(r1_op op) {
    static const char *names[R1_OP_COUNT] = {"embed",    "rmsnorm", "matmul_q4", "matmul", "rope",
                                             "kv_store", "attn",    "silu_mul",  "add",    "copy"};
    return (unsigned)op < R1_OP_COUNT ? names[op] : "?";
}
