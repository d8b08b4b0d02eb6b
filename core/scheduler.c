#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALIGN 256
#define FUSE_WINDOW 4 /* nodes a backend may fuse: see allocate() */

struct r1_sched {
    r1_graph *g;
    r1_backend **be;
    int n_be;
    r1_buffer *buf[R1_MAX_BACKENDS];
    size_t mem[R1_MAX_BACKENDS];
    r1_segment *segs;
    int n_segs;
    int *home; /* per graph tensor: backend holding it */
    int times; /* R1_SCHED_TIMES=1: each segment's wall time, a line a run (a tuning aid) */
};

static int tensor_index(const r1_graph *g, const r1_tensor *t) {
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i] == t) return i;
    return -1;
}

static int node_srcs(const r1_node *n, r1_tensor ***out, r1_tensor **buf) {
    int k = 0;
    for (int i = 0; i < 3; i++)
        if (n->src[i]) buf[k++] = n->src[i];
    for (int i = 0; i < 2; i++)
        if (n->kv[i]) buf[k++] = n->kv[i];
    *out = buf;
    return k;
}

/* Places nodes and inserts COPY nodes for sources produced on another backend.
 * home[] (per tensor) must already have room for the mirrors this adds. */
static r1_status place(r1_sched *s, const int *layer_backend, r1_error *err) {
    r1_graph *g = s->g;
    int n_old = g->n_nodes, n_layers_p2 = 0;
    for (int i = 0; i < n_old; i++)
        if (g->nodes[i].layer + 2 > n_layers_p2) n_layers_p2 = g->nodes[i].layer + 2;
    r1_node *old = g->nodes;
    g->nodes = NULL;
    g->n_nodes = g->cap_nodes = 0;
    /* mirror[t * n_be + b]: copy of tensor t on backend b */
    int n_t0 = g->n_tensors;
    r1_tensor **mirror = calloc((size_t)n_t0 * (size_t)s->n_be, sizeof *mirror);
    s->home = malloc((size_t)(n_t0 * (s->n_be + 1)) * sizeof(int));
    if (!mirror || !s->home) {
        free(mirror);
        free(old);
        return r1__err(err, R1_E_NOMEM, "out of memory scheduling the graph");
    }
    for (int i = 0; i < n_t0 * (s->n_be + 1); i++) s->home[i] = -1;
    r1_status st = R1_OK;
    for (int i = 0; i < n_old && !st; i++) {
        r1_node n = old[i];
        int b = layer_backend[n.layer + 1];
        if (b < 0 || b >= s->n_be || !s->be[b]->i->supports(s->be[b], &n)) b = 0;
        n.backend = b;
        for (int k = 0; k < 3 + 2 && !st; k++) {
            r1_tensor **slot = k < 3 ? &n.src[k] : &n.kv[k - 3];
            if (!*slot || (*slot)->is_weight) continue;
            int ti = tensor_index(g, *slot);
            if (ti < 0 || ti >= n_t0) continue;
            if (s->home[ti] < 0) s->home[ti] = b; /* persistent inputs (KV) live where used */
            if (s->home[ti] == b) continue;
            if (!mirror[ti * s->n_be + b]) {
                r1_tensor *m = r1__graph_tensor(g, (*slot)->name, (*slot)->ne[0], (*slot)->ne[1]);
                r1_node c = {.op = R1_OP_COPY,
                             .layer = n.layer,
                             .backend = b,
                             .rows = n.rows,
                             .dst = m,
                             .src = {*slot}};
                if (!m || !r1__graph_add(g, &c)) {
                    st = r1__err(err, R1_E_NOMEM, "out of memory scheduling the graph");
                    break;
                }
                s->home[g->n_tensors - 1] = b;
                mirror[ti * s->n_be + b] = m;
            }
            *slot = mirror[ti * s->n_be + b];
        }
        if (!st && n.dst) {
            int di = tensor_index(g, n.dst);
            if (di >= 0 && s->home[di] < 0) s->home[di] = b;
            /* a tensor written on two backends would need a mirror back: not produced by builders
             */
        }
        if (!st && !r1__graph_add(g, &n)) st = r1__err(err, R1_E_NOMEM, "out of memory");
    }
    free(mirror);
    free(old);
    return st;
}

typedef struct {
    size_t off, size;
} block;

/* First-fit arena over liveness: returns the offset for `size` bytes. */
static size_t arena_alloc(block *fr, int *n_fr, size_t *top, size_t size) {
    for (int i = 0; i < *n_fr; i++) {
        if (fr[i].size >= size) {
            size_t off = fr[i].off;
            fr[i].off += size;
            fr[i].size -= size;
            if (!fr[i].size) fr[i] = fr[--*n_fr];
            return off;
        }
    }
    size_t off = *top;
    *top += size;
    return off;
}

static void arena_free(block *fr, int *n_fr, size_t off, size_t size) {
    /* merge with neighbours to limit fragmentation */
    for (int i = 0; i < *n_fr; i++) {
        if (fr[i].off + fr[i].size == off) {
            fr[i].size += size;
            off = fr[i].off;
            size = fr[i].size;
            fr[i] = fr[--*n_fr];
            i = -1;
        } else if (off + size == fr[i].off) {
            size += fr[i].size;
            fr[i] = fr[--*n_fr];
            i = -1;
        }
    }
    fr[*n_fr].off = off;
    fr[*n_fr].size = size;
    (*n_fr)++;
}

static size_t tsize(const r1_tensor *t) {
    return (r1__tensor_nbytes(t) + ALIGN - 1) / ALIGN * ALIGN;
}

/* Assigns offsets: persistent tensors first, then scratch by first and last use. */
static r1_status allocate(r1_sched *s, r1_error *err) {
    r1_graph *g = s->g;
    int nt = g->n_tensors;
    size_t *off = malloc((size_t)nt * sizeof *off);
    int *last = malloc((size_t)nt * sizeof *last);
    block *fr = malloc((size_t)(nt + 1) * sizeof *fr * R1_MAX_BACKENDS);
    int n_fr[R1_MAX_BACKENDS] = {0};
    size_t top[R1_MAX_BACKENDS] = {0};
    if (!off || !last || !fr) {
        free(off), free(last), free(fr);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < nt; i++) off[i] = SIZE_MAX, last[i] = -1;
    for (int i = 0; i < nt; i++) {
        r1_tensor *t = g->tensors[i];
        if (s->home[i] < 0) s->home[i] = 0;
        if (t->persistent) off[i] = arena_alloc(NULL, &(int){0}, &top[s->home[i]], tsize(t));
    }
    for (int ni = 0; ni < g->n_nodes; ni++) {
        r1_tensor **src, *sb[5];
        int ns = node_srcs(&g->nodes[ni], &src, sb);
        for (int k = 0; k < ns; k++) {
            int ti = tensor_index(g, src[k]);
            if (ti >= 0) last[ti] = ni;
        }
        int di = g->nodes[ni].dst ? tensor_index(g, g->nodes[ni].dst) : -1;
        if (di >= 0 && last[di] < ni) last[di] = ni;
    }
    /* A tensor's memory is reused only FUSE_WINDOW nodes after its last use, so a
     * backend may fuse that many consecutive nodes without an output landing on an
     * input it still reads. */
    int *release = malloc((size_t)nt * sizeof *release), n_rel = 0;
    for (int ni = 0; ni <= g->n_nodes && release; ni++) {
        for (int r = 0; r < n_rel;) {
            int ti = release[r];
            if (last[ti] + FUSE_WINDOW > ni && ni < g->n_nodes) {
                r++;
                continue;
            }
            int b = s->home[ti];
            arena_free(fr + b * (nt + 1), &n_fr[b], off[ti], tsize(g->tensors[ti]));
            release[r] = release[--n_rel];
        }
        if (ni == g->n_nodes) break;
        r1_node *n = &g->nodes[ni];
        int di = n->dst ? tensor_index(g, n->dst) : -1;
        if (di >= 0 && off[di] == SIZE_MAX) {
            int b = s->home[di];
            off[di] = arena_alloc(fr + b * (nt + 1), &n_fr[b], &top[b], tsize(n->dst));
        }
        r1_tensor **src, *sb[5];
        int ns = node_srcs(n, &src, sb);
        for (int k = 0; k < ns + 1; k++) {
            r1_tensor *t = k < ns ? src[k] : n->dst;
            int ti = t ? tensor_index(g, t) : -1;
            if (ti < 0 || t->persistent || last[ti] != ni || off[ti] == SIZE_MAX) continue;
            int dup = 0;
            for (int r = 0; r < n_rel && !dup; r++) dup = release[r] == ti;
            if (!dup) release[n_rel++] = ti;
        }
    }
    if (!release) {
        free(off), free(last), free(fr);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    free(release);
    r1_status st = R1_OK;
    for (int b = 0; b < s->n_be && !st; b++) {
        s->mem[b] = top[b];
        if (!top[b]) continue;
        st = s->be[b]->i->buffer_alloc(s->be[b], top[b], &s->buf[b], err);
    }
    for (int i = 0; i < nt && !st; i++) {
        if (off[i] == SIZE_MAX) continue; /* never produced nor persistent: unused */
        r1_backend *be = s->be[s->home[i]];
        g->tensors[i]->backend = s->home[i];
        be->i->tensor_bind(be, g->tensors[i], s->buf[s->home[i]], off[i]);
    }
    free(off), free(last), free(fr);
    return st;
}

static r1_status segment(r1_sched *s, r1_error *err) {
    r1_graph *g = s->g;
    s->segs = calloc((size_t)g->n_nodes + 1, sizeof *s->segs);
    if (!s->segs) return r1__err(err, R1_E_NOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes;) {
        int j = i + 1;
        if (g->nodes[i].op != R1_OP_COPY)
            while (j < g->n_nodes && g->nodes[j].op != R1_OP_COPY &&
                   g->nodes[j].backend == g->nodes[i].backend)
                j++;
        r1_segment *sg = &s->segs[s->n_segs++];
        sg->be = s->be[g->nodes[i].backend];
        sg->nodes = &g->nodes[i];
        sg->n_nodes = j - i;
        if (g->nodes[i].op != R1_OP_COPY && sg->be->i->segment_init) {
            r1_status st = sg->be->i->segment_init(sg->be, sg, err);
            if (st) return st;
        }
        i = j;
    }
    return R1_OK;
}

r1_status r1__sched_new(r1_graph *g, r1_backend **backends, int n_backends,
                        const int *layer_backend, r1_sched **out, r1_error *err) {
    *out = NULL;
    if (n_backends < 1 || n_backends > R1_MAX_BACKENDS || !backends[0]->is_host)
        return r1__err(err, R1_E_INVAL, "scheduler: backend 0 must be the CPU");
    r1_sched *s = calloc(1, sizeof *s);
    if (!s) return r1__err(err, R1_E_NOMEM, "out of memory");
    s->g = g;
    s->be = backends;
    s->n_be = n_backends;
    const char *e = getenv("R1_SCHED_TIMES");
    s->times = e && *e && strcmp(e, "0");
    r1_status st = place(s, layer_backend, err);
    if (!st) st = allocate(s, err);
    if (!st) st = segment(s, err);
    if (st) {
        r1__sched_free(s);
        return st;
    }
    *out = s;
    return R1_OK;
}

/* Bytes of the rows a node touches, for cross-backend copies. */
static void copy_range(const r1_node *n, const r1_run *run, size_t *off, size_t *len) {
    size_t row = (size_t)n->dst->ne[1] * sizeof(float);
    int first = n->rows == R1_ROWS_PICK ? run->n_tokens - run->n_out : 0;
    int cnt = n->rows == R1_ROWS_ALL ? run->n_tokens : run->n_out;
    *off = (size_t)first * row;
    *len = (size_t)cnt * row;
}

static r1_status run_copy(r1_sched *s, const r1_node *n, const r1_run *run, r1_error *err) {
    r1_backend *from = s->be[n->src[0]->backend], *to = s->be[n->dst->backend];
    size_t off, len;
    copy_range(n, run, &off, &len);
    if (from->is_host)
        return to->i->tensor_set(to, n->dst, (char *)n->src[0]->data + off, off, len, err);
    if (to->is_host)
        return from->i->tensor_get(from, n->src[0], (char *)n->dst->data + off, off, len, err);
    return r1__err(err, R1_E_UNSUPPORTED, "scheduler: device-to-device copy is not supported");
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

r1_status r1__sched_run(r1_sched *s, const r1_run *run, r1_error *err) {
    int times = s->times;
    if (times) fprintf(stderr, "sched: %d tokens:", run->n_tokens);
    for (int i = 0; i < s->n_segs; i++) {
        r1_segment *sg = &s->segs[i];
        double t0 = times ? now_ms() : 0;
        r1_status st = sg->nodes[0].op == R1_OP_COPY ? run_copy(s, sg->nodes, run, err)
                                                     : sg->be->i->compute(sg->be, sg, run, err);
        if (times)
            fprintf(stderr, " %s %.3f ms;",
                    sg->nodes[0].op == R1_OP_COPY ? "copy" : sg->be->i->name, now_ms() - t0);
        if (st) return st;
    }
    if (times) fputc('\n', stderr);
    return R1_OK;
}

size_t r1__sched_mem(const r1_sched *s, int b) {
    return b >= 0 && b < s->n_be ? s->mem[b] : 0;
}

void r1__sched_free(r1_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_segs; i++)
        if (s->segs[i].state && s->segs[i].be->i->segment_free)
            s->segs[i].be->i->segment_free(s->segs[i].be, &s->segs[i]);
    for (int b = 0; b < s->n_be; b++)
        if (s->buf[b]) s->be[b]->i->buffer_free(s->be[b], s->buf[b]);
    free(s->segs);
    free(s->home);
    free(s);
}
