/* The CPU backend: host memory, weights used in place from the mmap, ops run by
 * an OpenMP team that lives for the whole segment (no thread spawn per op). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "ops.h"

typedef struct cpu_ctx {
    int n_threads;
    const r1_cpu_kernels *k;
} cpu_ctx;

/* Physical cores: distinct (package, core) pairs under /sys, else online CPUs. */
int r1_cpu_physical_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int seen = 0;
    int keys[1024];
    for (long c = 0; c < n && c < 1024; c++) {
        char p[128];
        int pkg = 0, core = -1;
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%ld/topology/core_id", c);
        FILE *f = fopen(p, "r");
        if (!f) return n > 0 ? (int)n : 1;
        if (fscanf(f, "%d", &core) != 1) core = (int)c;
        fclose(f);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id", c);
        if ((f = fopen(p, "r"))) {
            if (fscanf(f, "%d", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        int key = pkg * 65536 + core, dup = 0;
        for (int i = 0; i < seen && !dup; i++) dup = keys[i] == key;
        if (!dup) keys[seen++] = key;
    }
    return seen > 0 ? seen : 1;
}

static void cpu_free(r1_backend *be) {
    if (!be) return;
    free(be->ctx);
    free(be);
}

static r1_status cpu_buffer_alloc(r1_backend *be, size_t size, r1_buffer **out, r1_error *err) {
    r1_buffer *b = calloc(1, sizeof *b);
    void *mem = NULL;
    if (!b || posix_memalign(&mem, 64, size ? size : 64)) {
        free(b);
        return r1__err(err, R1_E_NOMEM, "cpu: cannot allocate %zu bytes of activations/KV cache",
                       size);
    }
    memset(mem, 0, size);
    b->be = be;
    b->size = size;
    b->host = mem;
    *out = b;
    return R1_OK;
}

static void cpu_buffer_free(r1_backend *be, r1_buffer *b) {
    (void)be;
    if (!b) return;
    free(b->host);
    free(b);
}

static void cpu_tensor_bind(r1_backend *be, r1_tensor *t, r1_buffer *b, size_t off) {
    (void)be;
    t->data = (char *)b->host + off;
}

static r1_status cpu_set(r1_backend *be, r1_tensor *t, const void *src, size_t off, size_t n,
                         r1_error *err) {
    (void)be, (void)err;
    memcpy((char *)t->data + off, src, n);
    return R1_OK;
}

static r1_status cpu_get(r1_backend *be, const r1_tensor *t, void *dst, size_t off, size_t n,
                         r1_error *err) {
    (void)be, (void)err;
    memcpy(dst, (const char *)t->data + off, n);
    return R1_OK;
}

static r1_status cpu_weight_load(r1_backend *be, r1_tensor *w, r1_error *err) {
    (void)be, (void)w, (void)err; /* used in place from the mmap */
    return R1_OK;
}

static int cpu_supports(r1_backend *be, const r1_node *n) {
    (void)be;
    return n->op != R1_OP_COPY;
}

static r1_status cpu_compute(r1_backend *be, r1_segment *seg, const r1_run *run, r1_error *err) {
    (void)err;
    cpu_ctx *c = be->ctx;
    const r1_cpu_kernels *k = c->k;
    int nth = c->n_threads;
    /* Decode-sized work does not profit from the team's barriers for tiny graphs. */
#pragma omp parallel num_threads(nth)
    {
        for (int i = 0; i < seg->n_nodes; i++) r1__cpu_node(&seg->nodes[i], run, k);
    }
    return R1_OK;
}

static const r1_backend_i cpu_iface = {
    .name = "CPU",
    .free = cpu_free,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .tensor_bind = cpu_tensor_bind,
    .tensor_set = cpu_set,
    .tensor_get = cpu_get,
    .weight_load = cpu_weight_load,
    .supports = cpu_supports,
    .compute = cpu_compute,
};

r1_status r1__cpu_backend_new(int n_threads, r1_backend **out, r1_error *err) {
    const char *bad = NULL;
    const r1_cpu_kernels *k = r1__cpu_kernels_select(&bad);
    if (!k)
        return r1__err(err, R1_E_INVAL,
                       "R1_CPU=%s: unknown or unsupported on this CPU "
                       "(scalar, avx2, avx512, neon)",
                       bad);
    r1_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be), free(c);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    c->n_threads = n_threads > 0 ? n_threads : r1_cpu_physical_cores();
    c->k = k;
    be->i = &cpu_iface;
    be->ctx = c;
    be->is_host = 1;
    *out = be;
    return R1_OK;
}

int r1__cpu_backend_threads(const r1_backend *be) {
    return ((const cpu_ctx *)be->ctx)->n_threads;
}

const char *r1__cpu_backend_kernels(const r1_backend *be) {
    return ((const cpu_ctx *)be->ctx)->k->name;
}
