/* The CPU backend: host memory, weights used in place from the mmap, ops run by
 * an OpenMP team that lives for the whole segment (no thread spawn per op). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "duo.h"
#include "ops.h"
#include "shed.h"

typedef struct cpu_ctx {
    int n_threads;
    const r1_cpu_kernels *k;
    r1_q4_act mode_decode, mode_short, mode_batch; /* as in r1_cpu_seg */
    char desc[64];                                 /* kernel table, and prompts in int8 */
    /* R1_CPU_PROFILE=1: wall time per op kind (a barrier after every node), printed at exit;
     * 2: also one decoder layer's nodes one by one (a layer a quarter into the segment) */
    int profile, prof_batch; /* R1_CPU_PROFILE=batch: prompt calls instead of decode ones */
    double op_time[R1_OP_COUNT];
    long op_calls[R1_OP_COUNT], calls_decode;
#define CPU_PROF_NODES 16
    const r1_node *prof_node[CPU_PROF_NODES];
    double prof_time[CPU_PROF_NODES];
    r1_cpu_shed shed; /* threads left out of decode calls under contention */
    int shed_verbose; /* R1_CPU_SHED=verbose: print each call's lowest CPU share */
    int shed_off;     /* R1_CPU_SHED=0 */
    /* A one-token call shed down to one thread runs as a duo (cpu/duo.h). R1_CPU_DUO=0:
     * never (one thread alone); always: every one-token call (tests). */
    enum { DUO_OFF, DUO_SHED, DUO_ALWAYS } duo_mode;
    r1_cpu_duo *duo;
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

static void print_profile(const cpu_ctx *c) {
    double total = 0;
    for (int i = 0; i < R1_OP_COUNT; i++) total += c->op_time[i];
    fprintf(stderr, "cpu profile (%ld %s calls): total %.3f s\n", c->calls_decode,
            c->prof_batch ? "prompt" : "decode", total);
    for (int i = 0; i < R1_OP_COUNT; i++)
        if (c->op_calls[i])
            fprintf(stderr, "  %-10s %8ld calls %9.3f s %5.1f%%\n", r1__op_name((r1_op)i),
                    c->op_calls[i], c->op_time[i], 100.0 * c->op_time[i] / (total > 0 ? total : 1));
    for (int i = 0; i < CPU_PROF_NODES && c->prof_node[i] && c->calls_decode; i++) {
        const r1_node *n = c->prof_node[i];
        double us = c->prof_time[i] / (double)c->calls_decode * 1e6;
        fprintf(stderr, "  node %-10s %8.1f us", r1__op_name(n->op), us);
        if (n->op == R1_OP_MATMUL_Q4)
            fprintf(stderr, "  %5dx%-5d %5.1f GB/s", n->q->K, n->q->N,
                    (double)n->q->K * n->q->N / 2 / (us * 1e3));
        fputc('\n', stderr);
    }
}

static void cpu_free(r1_backend *be) {
    if (!be) return;
    if (((cpu_ctx *)be->ctx)->profile) print_profile(be->ctx);
    r1__cpu_duo_free(((cpu_ctx *)be->ctx)->duo);
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
    /* not zeroed: KV rows are written before they are read, and untouched pages of a
     * long context stay out of the resident set */
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

/* Repacks each GPTQ linear once at load; the mmap'd qweight pages are then
 * released, so the process holds one copy of the weights. */
static r1_status cpu_qlinear_prepare(r1_backend *be, r1_qlinear *q, r1_error *err) {
    return r1__cpu_q4_prepare(((cpu_ctx *)be->ctx)->k, q, 1, err);
}

static void cpu_qlinear_release(r1_backend *be, r1_qlinear *q) {
    (void)be;
    r1__cpu_q4_release(q);
}

/* One activation buffer per segment, for the largest GPTQ node at n_batch tokens. */
static r1_status cpu_segment_init(r1_backend *be, r1_segment *seg, r1_error *err) {
    cpu_ctx *c = be->ctx;
    r1_cpu_seg *cs = calloc(1, sizeof *cs);
    if (!cs) return r1__err(err, R1_E_NOMEM, "out of memory");
    cs->k = c->k;
    cs->mode_decode = c->mode_decode;
    cs->mode_short = c->mode_short;
    cs->mode_batch = c->mode_batch;
    for (int i = 0; i < seg->n_nodes; i++) {
        const r1_node *n = &seg->nodes[i];
        if ((n->op == R1_OP_MATMUL_Q4 || n->op == R1_OP_MATMUL) && r1__cpu_job_n(n) > cs->job_n)
            cs->job_n = r1__cpu_job_n(n);
        if (n->op != R1_OP_MATMUL_Q4) continue;
        int T = (int)n->dst->ne[0];
        size_t b1, bT, bs;
        r1__cpu_q4_mode(cs, n->q, 1, &b1);
        r1__cpu_q4_mode(cs, n->q, T, &bT);
        /* the short-batch mode may need more bytes per token than the prompt one */
        r1__cpu_q4_mode(cs, n->q, T < R1_CPU_PROMPT_T ? T : R1_CPU_PROMPT_T - 1, &bs);
        if (bs > bT) bT = bs;
        b1 = (b1 + 63) & ~(size_t)63;
        if (b1 > cs->xa_stride1) cs->xa_stride1 = b1;
        if (bT > cs->xa_bytes) cs->xa_bytes = bT;
    }
    size_t per_thread = cs->xa_stride1 * (size_t)c->n_threads;
    if (per_thread > cs->xa_bytes) cs->xa_bytes = per_thread;
    if (r1__cpu_sync_plan(cs, seg->nodes, seg->n_nodes, c->n_threads)) {
        free(cs->sync), free(cs->runs);
        free(cs);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    if (cs->xa_bytes && posix_memalign(&cs->xa, 64, cs->xa_bytes)) {
        size_t bytes = cs->xa_bytes;
        free(cs->sync), free(cs->runs);
        free(cs);
        return r1__err(err, R1_E_NOMEM, "cpu: cannot allocate %zu bytes of activation scratch",
                       bytes);
    }
    seg->state = cs;
    return R1_OK;
}

static void cpu_segment_free(r1_backend *be, r1_segment *seg) {
    r1__cpu_duo_forget(((cpu_ctx *)be->ctx)->duo);
    r1_cpu_seg *cs = seg->state;
    if (cs) free(cs->xa), free(cs->sync), free(cs->runs);
    free(cs);
    seg->state = NULL;
}

#define SHED_MAX_THREADS 256

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The lowest CPU share of the call's wall time over its threads (cpu/shed.c). */
static void shed_after_call(cpu_ctx *c, int nt, const double *cpu, double wall) {
    double low = 1;
    for (int i = 0; i < nt; i++)
        if (cpu[i] / wall < low) low = cpu[i] / wall;
    if (c->shed_verbose && nt > 1)
        fprintf(stderr, "cpu: %d threads, lowest CPU share %.2f\n", nt, low);
    r1__cpu_shed_update(&c->shed, c->n_threads, nt, low);
}

static r1_status cpu_compute(r1_backend *be, r1_segment *seg, const r1_run *run, r1_error *err) {
    (void)err;
    cpu_ctx *c = be->ctx;
    r1_cpu_seg *cs = seg->state;
    cs->gen++; /* this call's chunk-run words (cpu/chunks.h) */
    int prof = c->profile && (run->n_tokens == 1) != c->prof_batch;
    c->calls_decode += prof;
    /* One team for the whole segment; each op shares its work inside it. A
     * light segment of a few rows (the embedding before GPU layers, 1 token a
     * decode step) runs on this thread alone: waking a sleeping team cost
     * 0.07-0.34 ms a token on the H200 host (16 threads), against a 4.1 ms step. */
    int nt = cs->light && run->n_tokens <= 16 ? 1 : c->n_threads;
    /* decode calls on a team: watched for contention (cpu/shed.c) */
    int watch = nt > 1 && nt <= SHED_MAX_THREADS && run->n_tokens < R1_CPU_PROMPT_T && !c->shed_off;
    if (watch) nt = r1__cpu_shed_threads(&c->shed, nt);
    /* shed down to one thread: a duo instead, whose two threads never wait for each other */
    int duo = run->n_tokens == 1 && !prof && !cs->light && c->n_threads > 1 &&
              (c->duo_mode == DUO_ALWAYS || (c->duo_mode == DUO_SHED && watch && nt == 1));
    if (duo && r1__cpu_duo_call(c->duo, cs, seg->n_nodes, run)) return R1_OK;
    double cpu[SHED_MAX_THREADS], wall = watch ? omp_get_wtime() : 0;
    int got = nt; /* the team OpenMP gave, which may be smaller */
#pragma omp parallel num_threads(nt)
    {
        double t0 = prof ? omp_get_wtime() : 0, c0 = watch ? thread_cpu_s() : 0;
        for (int i = 0; i < seg->n_nodes; i++) {
            if (cs->sync[i] || prof) {
#pragma omp barrier
            }
            if (prof && omp_get_thread_num() == 0) {
                double t1 = omp_get_wtime();
                if (i) {
                    c->op_time[seg->nodes[i - 1].op] += t1 - t0,
                        c->op_calls[seg->nodes[i - 1].op]++;
                    int j = i - 1 - seg->n_nodes / 4;
                    if (c->profile > 1 && j >= 0 && j < CPU_PROF_NODES)
                        c->prof_node[j] = &seg->nodes[i - 1], c->prof_time[j] += t1 - t0;
                }
                t0 = t1;
            }
            r1__cpu_node(&seg->nodes[i], run, cs);
        }
        if (prof) {
#pragma omp barrier
            if (omp_get_thread_num() == 0) {
                r1_op last = seg->nodes[seg->n_nodes - 1].op;
                c->op_time[last] += omp_get_wtime() - t0, c->op_calls[last]++;
            }
        }
        if (watch) cpu[omp_get_thread_num()] = thread_cpu_s() - c0;
        if (watch && omp_get_thread_num() == 0) got = omp_get_num_threads();
    }
    if (watch) shed_after_call(c, got, cpu, omp_get_wtime() - wall);
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
    .qlinear_prepare = cpu_qlinear_prepare,
    .qlinear_release = cpu_qlinear_release,
    .supports = cpu_supports,
    .segment_init = cpu_segment_init,
    .segment_free = cpu_segment_free,
    .compute = cpu_compute,
};

/* How GPTQ matmuls take activations: I8X3 (int8 digits, float32-level error),
 * prompts I8 (llama.cpp-like 8-bit inputs, ~1% error) on tables that set
 * prompt_i8, unless R1_CPU_ACT (decode) / R1_CPU_ACT_BATCH (every batch of
 * more than one token) choose f32, i8x3 or i8. */
static int parse_mode(const char *s, r1_q4_act *m) {
    if (!s || !*s) return 0;
    if (!strcmp(s, "f32"))
        *m = R1_Q4_F32;
    else if (!strcmp(s, "i8x3"))
        *m = R1_Q4_I8X3;
    else if (!strcmp(s, "i8"))
        *m = R1_Q4_I8;
    else
        return -1;
    return 0;
}

static r1_status act_modes(cpu_ctx *c, r1_error *err) {
    const char *batch = getenv("R1_CPU_ACT_BATCH");
    c->mode_decode = c->mode_short = R1_Q4_I8X3;
    if (parse_mode(getenv("R1_CPU_ACT"), &c->mode_decode) || parse_mode(batch, &c->mode_short))
        return r1__err(err, R1_E_INVAL, "R1_CPU_ACT / R1_CPU_ACT_BATCH: expected f32, i8x3 or i8");
    c->mode_batch = batch && *batch ? c->mode_short : c->k->prompt_i8 ? R1_Q4_I8 : R1_Q4_I8X3;
    snprintf(c->desc, sizeof c->desc, "%s%s", c->k->name,
             c->mode_batch == R1_Q4_I8 ? " (int8 prompt activations)" : "");
    return R1_OK;
}

/* --lm-head q8: an 8-bit copy of the head for the CPU; the fp16 pages are dropped. */
r1_status r1__cpu_head_q8(r1_tensor *w, r1_error *err) {
    r1_q8_rows *q8;
    r1_status st = r1__cpu_q8_rows_new(w, &q8, err);
    if (st) return st;
    w->cpu_extra = q8;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)w->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)w->data + r1__tensor_nbytes(w)) & ~((uintptr_t)page - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED); /* file-backed: refaults if read */
    return R1_OK;
}

/* Copies a weight read whole every token (the fp16 head) out of 4 KiB page-cache
 * pages into 2 MiB pages and drops the mapped pages, as the int4 repack does: one
 * copy in memory, fewer TLB misses while streaming. Returns the block to free. */
void *r1__cpu_weight_to_huge(r1_tensor *w, r1_error *err) {
    size_t n = r1__tensor_nbytes(w), bytes = (n + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    void *mem = NULL;
    if (posix_memalign(&mem, 2u << 20, bytes)) {
        r1__err(err, R1_E_NOMEM, "out of memory copying %s (%zu bytes)", w->name, n);
        return NULL;
    }
    madvise(mem, bytes, MADV_HUGEPAGE);
    const char *src = w->data;
    long chunks = (long)((n + (8u << 20) - 1) / (8u << 20));
#pragma omp parallel for schedule(dynamic, 1)
    for (long c = 0; c < chunks; c++) {
        size_t o = (size_t)c * (8u << 20), len = n - o < (8u << 20) ? n - o : (8u << 20);
        memcpy((char *)mem + o, src + o, len);
    }
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)src + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)src + n) & ~((uintptr_t)page - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
    w->data = mem;
    return mem;
}

void r1__cpu_head_q8_free(r1_tensor *w) {
    r1__cpu_q8_rows_free(w->cpu_extra);
    w->cpu_extra = NULL;
}

r1_status r1__cpu_backend_new(int n_threads, r1_backend **out, r1_error *err) {
    const char *bad = NULL;
    const r1_cpu_kernels *k = r1__cpu_kernels_select(&bad);
    if (!k)
        return r1__err(err, R1_E_INVAL,
                       "R1_CPU=%s: unknown or unsupported on this CPU "
                       "(scalar, avx2, avx512, amx, neon)",
                       bad);
    r1_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be), free(c);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    c->n_threads = n_threads > 0 ? n_threads : r1_cpu_physical_cores();
    c->k = k;
    const char *pr = getenv("R1_CPU_PROFILE");
    c->profile = pr ? (atoi(pr) > 1 ? 2 : atoi(pr) == 1) : 0;
    if (pr && !strcmp(pr, "batch")) c->profile = c->prof_batch = 1;
    const char *shed = getenv("R1_CPU_SHED");
    c->shed_off = shed && !strcmp(shed, "0");
    c->shed_verbose = shed && !strcmp(shed, "verbose");
    const char *duo = getenv("R1_CPU_DUO");
    c->duo_mode = duo && !strcmp(duo, "0")        ? DUO_OFF
                  : duo && !strcmp(duo, "always") ? DUO_ALWAYS
                                                  : DUO_SHED;
    c->duo = c->duo_mode != DUO_OFF ? r1__cpu_duo_new() : NULL; /* NULL: one thread alone */
    if (act_modes(c, err)) {
        free(be), free(c);
        return err ? err->code : R1_E_INVAL;
    }
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
    return ((const cpu_ctx *)be->ctx)->desc;
}
