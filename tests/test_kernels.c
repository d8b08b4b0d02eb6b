/* CPU kernels: every ISA table against the scalar reference on random shapes.
 *
 *   test_kernels            correctness (ctest "kernels"); ISAs the CPU lacks are skipped
 *   test_kernels bench ...  micro-benchmarks (see bench_usage), not run by ctest
 *
 * GPTQ cases cover group sizes 32/64/128/K, sym and asym zeros, v1 and v2 zero
 * formats, act-order g_idx permutations, g_idx absent, T = 1, 2, 7, 64 and
 * column ranges that do not start at 0. Tolerances are relative to the RMS of
 * the reference output: float32 summation-order differences stay far below
 * 2e-6 * sqrt(K) of it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "chunks.h"
#include "kernels.h"
#include "q4_layout.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return rng_state = x;
}
static float frand(void) {
    return (float)((rng() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static int irand(int n) {
    return (int)(rng() % (uint64_t)n);
}

static const char *isa_names[] = {"avx2", "avx512", "amx", "neon"};

/* ---- a random GPTQ linear ---- */

typedef struct qcase {
    r1_qlinear q;
    void *extra_saved; /* bench: the prepared layout while the checkpoint one is timed */
    r1_tensor qweight, qzeros, scales, g_idx;
} qcase;

static void tensor2(r1_tensor *t, r1_dtype type, int64_t d0, int64_t d1, void *data) {
    memset(t, 0, sizeof *t);
    t->type = type, t->ndim = d1 ? 2 : 1, t->ne[0] = d0, t->ne[1] = d1, t->data = data;
}

/* act: 0 natural with g_idx, 1 act-order permutation, 2 no g_idx tensor. */
static qcase *qcase_new(int K, int N, int G, int sym, int v2, int act) {
    qcase *c = calloc(1, sizeof *c);
    int ng = K / G;
    uint32_t *qw = malloc((size_t)K / 8 * N * 4), *qz = malloc((size_t)ng * N / 8 * 4);
    uint16_t *sc = malloc((size_t)ng * N * 2);
    int32_t *gi = malloc((size_t)K * 4);
    for (size_t i = 0; i < (size_t)K / 8 * N; i++) qw[i] = (uint32_t)rng();
    for (size_t i = 0; i < (size_t)ng * N / 8; i++)
        qz[i] = sym ? (v2 ? 0x88888888u : 0x77777777u) : (uint32_t)rng();
    for (size_t i = 0; i < (size_t)ng * N; i++) sc[i] = r1__f32_to_f16((0.5f + frand()) * 0.02f);
    int *perm = malloc((size_t)K * sizeof(int));
    for (int k = 0; k < K; k++) perm[k] = k;
    if (act == 1)
        for (int k = K - 1; k > 0; k--) {
            int j = irand(k + 1), tmp = perm[k];
            perm[k] = perm[j], perm[j] = tmp;
        }
    for (int i = 0; i < K; i++) gi[perm[i]] = i / G; /* the k at position i is in group i/G */
    free(perm);
    tensor2(&c->qweight, R1_I32, K / 8, N, qw);
    tensor2(&c->qzeros, R1_I32, ng, N / 8, qz);
    tensor2(&c->scales, R1_F16, ng, N, sc);
    tensor2(&c->g_idx, R1_I32, K, 0, gi);
    c->q = (r1_qlinear){.K = K,
                        .N = N,
                        .G = G,
                        .n_groups = ng,
                        .act_order = act == 1,
                        .zeros_v2 = v2,
                        .qweight = &c->qweight,
                        .qzeros = &c->qzeros,
                        .scales = &c->scales,
                        .g_idx = act == 2 ? NULL : &c->g_idx};
    return c;
}

static void qcase_free(qcase *c) {
    free(c->qweight.data), free(c->qzeros.data), free(c->scales.data), free(c->g_idx.data);
    free(c);
}

static float *rand_vec(size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

/* Checks y (from a kernel) against ref in rows < T, columns [n0, n1); columns outside
 * must keep the sentinel. Returns the max error relative to the reference RMS. */
static double compare(const float *y, const float *ref, int T, int N, int n0, int n1, double tol,
                      const char *what) {
    double ss = 0, maxd = 0;
    int bad_sentinel = 0;
    for (int t = 0; t < T; t++)
        for (int n = n0; n < n1; n++) ss += (double)ref[(size_t)t * N + n] * ref[(size_t)t * N + n];
    double rms = sqrt(ss / ((double)T * (n1 - n0))) + 1e-30;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            float v = y[(size_t)t * N + n];
            if (n < n0 || n >= n1) {
                bad_sentinel += v != 1234.5f;
                continue;
            }
            double d = fabs((double)v - ref[(size_t)t * N + n]);
            if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        }
    CHECK_MSG(bad_sentinel == 0, "%s: %d outputs outside [%d, %d) were written", what, bad_sentinel,
              n0, n1);
    CHECK_MSG(maxd / rms <= tol, "%s: max error %.3g of output RMS %.3g exceeds %.3g", what,
              maxd / rms, rms, tol);
    return maxd / rms;
}

static float *sentinel(size_t n) {
    float *y = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) y[i] = 1234.5f;
    return y;
}

/* Column range: starts at a multiple of align (often not 0), ends at N or aligned. */
static void pick_range(int N, int align, int *n0, int *n1) {
    int blocks = N / align;
    *n0 = blocks > 1 ? align * irand(blocks / 2 + 1) : 0;
    *n1 = N;
    if (blocks > 1 && irand(2)) *n1 = *n0 + align * (1 + irand((N - *n0) / align));
    if (*n1 > N) *n1 = N;
}

/* ---- GPTQ int4 ---- */

static const char *mode_names[] = {"F32", "I8X3", "I8"};
static double worst[3]; /* largest error seen per mode, relative to the reference RMS */

/* The prepared-activation path of table k in `mode`, as ops.c runs it: activation
 * units split in two calls (two threads), then the column range. Returns the
 * activation buffer (caller frees) or NULL when the mode does not apply. */
static void *run_act(const r1_cpu_kernels *k, const r1_qlinear *q, const float *x, int T,
                     r1_q4_act mode, float *y, int n0, int n1, size_t *bytes) {
    *bytes = r1__cpu_q4_act_bytes(k, q, T, mode);
    if (*bytes == (size_t)-1) return NULL;
    void *xa = calloc(1, *bytes ? *bytes : 1);
    int units = T * q->n_groups, split = units / 2;
    r1__cpu_q4_act_prep(k, q, x, T, mode, 0, split, *bytes ? xa : NULL);
    r1__cpu_q4_act_prep(k, q, x, T, mode, split, units, *bytes ? xa : NULL);
    r1__cpu_q4_matmul_act(k, q, x, *bytes ? xa : NULL, T, mode, y, n0, n1);
    return xa;
}

/* Every entry of every ISA on q (checkpoint or prepared layout) against `ref`
 * (exact scalar result) and against the portable code for the same mode. */
static void check_q4(const r1_cpu_kernels **isas, int n_isa, const r1_qlinear *q, const float *x,
                     int T, const float *ref, const char *label) {
    int K = q->K, N = q->N;
    double tol = 2e-6 * sqrt((double)K);
    char what[200];
    { /* the no-memory fallback of the SIMD range functions (either layout) */
        q4p p = q4p_of(q);
        float *y = sentinel((size_t)T * N);
        q4p_matmul(&p, x, T, y, 0, N, q4p_range_portable);
        snprintf(what, sizeof what, "q4p_range_portable, %s", label);
        compare(y, ref, T, N, 0, N, tol, what);
        free(y);
    }
    for (int mode = 0; mode < 3; mode++) {
        size_t rb;
        float *y0 = malloc((size_t)T * N * sizeof(float));
        void *xa0 = run_act(&r1__cpu_kernels_scalar, q, x, T, (r1_q4_act)mode, y0, 0, N, &rb);
        if (xa0) {
            float *y = sentinel((size_t)T * N);
            memcpy(y, y0, (size_t)T * N * sizeof(float));
            snprintf(what, sizeof what, "portable %s vs exact, %s", mode_names[mode], label);
            double e = compare(y, ref, T, N, 0, N, mode == R1_Q4_I8 ? 6e-2 : tol, what);
            if (mode != R1_Q4_I8 && e > worst[mode]) worst[mode] = e;
            free(y);
        }
        for (int i = 0; i < n_isa && xa0; i++) {
            int n0, n1;
            size_t bytes;
            pick_range(N, isas[i]->col_align, &n0, &n1);
            float *y = sentinel((size_t)T * N);
            void *xa = run_act(isas[i], q, x, T, (r1_q4_act)mode, y, n0, n1, &bytes);
            snprintf(what, sizeof what, "%s %s [%d,%d) %s", isas[i]->name, mode_names[mode], n0, n1,
                     label);
            /* a table may keep data of its own after the shared layout (amx: digit planes) */
            CHECK_MSG(xa && bytes >= rb, "%s: activation buffer smaller than the layout", what);
            if (xa && bytes >= rb)
                CHECK_MSG(!memcmp(xa, xa0, rb),
                          "%s: prepared activations differ from the portable code", what);
            double e = compare(y, mode == R1_Q4_I8 ? y0 : ref, T, N, n0, n1, tol, what);
            if (mode == R1_Q4_I8) e = 0;
            if (e > worst[mode]) worst[mode] = e;
            free(y), free(xa);
        }
        free(y0), free(xa0);
    }
    for (int i = 0; i < n_isa; i++) {
        int n0, n1;
        pick_range(N, isas[i]->col_align, &n0, &n1);
        float *y = sentinel((size_t)T * N);
        isas[i]->q4_matmul(q, x, T, y, n0, n1);
        snprintf(what, sizeof what, "%s q4_matmul [%d,%d) %s", isas[i]->name, n0, n1, label);
        double e = compare(y, ref, T, N, n0, n1, tol, what);
        if (e > worst[0]) worst[0] = e;
        free(y);
    }
}

static void test_q4_case(const r1_cpu_kernels **isas, int n_isa, int K, int N, int G, int sym,
                         int v2, int act, int T) {
    qcase *c = qcase_new(K, N, G, sym, v2, act);
    float *x = rand_vec((size_t)T * K), *ref = malloc((size_t)T * N * sizeof(float));
    r1__cpu_kernels_scalar.q4_matmul(&c->q, x, T, ref, 0, N);
    char label[128];
    snprintf(label, sizeof label, "K=%d N=%d G=%d sym=%d v2=%d act=%d T=%d", K, N, G, sym, v2, act,
             T);
    check_q4(isas, n_isa, &c->q, x, T, ref, label);
    if (n_isa) { /* the same on the prepared layout (one layout for every ISA) */
        r1_error err = {0};
        CHECK(r1__cpu_q4_prepare(isas[0], &c->q, 0, &err) == R1_OK);
        CHECK_MSG(c->q.cpu_extra != NULL, "%s: not prepared", label);
        strcat(label, " prepared");
        check_q4(isas, n_isa, &c->q, x, T, ref, label);
        r1__cpu_q4_release(&c->q);
        CHECK(c->q.cpu_extra == NULL);
    }
    free(x), free(ref);
    qcase_free(c);
}

static void test_q4(const r1_cpu_kernels **isas, int n_isa) {
    static const int Ts[] = {1, 2, 7, 64};
    int cases = 0;
    /* fixed corners first (tails of 8 columns, several panels), then random shapes */
    test_q4_case(isas, n_isa, 128, 64, 128, 1, 0, 0, 1), cases++;
    test_q4_case(isas, n_isa, 256, 24, 32, 0, 0, 1, 3), cases++;
    test_q4_case(isas, n_isa, 512, 200, 64, 0, 1, 2, 1), cases++;
    test_q4_case(isas, n_isa, 256, 136, 64, 0, 0, 1, 9), cases++;
    /* one group of 1,056 rows: the AVX2 decode block sums it in parts (GROUP_PAIR_ROWS) */
    test_q4_case(isas, n_isa, 8448, 16, 8448, 0, 0, 0, 1), cases++;
    for (int it = 0; it < 40; it++) {
        int G = (int[]){32, 64, 128, 0}[irand(4)];
        int K = G ? G * (1 + irand(8)) : 8 * (1 + irand(80));
        if (!G) G = K;
        int N = 8 * (1 + irand(40)), T = Ts[irand(4)];
        if (T == 64 && K * N > 100000) T = 7;
        test_q4_case(isas, n_isa, K, N, G, irand(2), irand(2), irand(3), T), cases++;
    }
    printf("q4: %d random linears checked (checkpoint and prepared layouts); worst error / RMS: "
           "F32 %.2g, I8X3 %.2g\n",
           cases, worst[0], worst[1]);
}

/* ---- dense heads ---- */

static void test_dense_case(const r1_cpu_kernels **isas, int n_isa, r1_dtype type, int K, int N,
                            int T) {
    size_t n = (size_t)N * K;
    void *data = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        float v = frand() * 0.05f;
        if (type == R1_F32)
            ((float *)data)[i] = v;
        else if (type == R1_F16)
            ((uint16_t *)data)[i] = r1__f32_to_f16(v);
        else {
            uint32_t u;
            memcpy(&u, &v, 4);
            ((uint16_t *)data)[i] = (uint16_t)(u >> 16);
        }
    }
    r1_tensor w;
    tensor2(&w, type, N, K, data);
    float *x = rand_vec((size_t)T * K), *ref = malloc((size_t)T * N * sizeof(float));
    r1__cpu_kernels_scalar.dense_matmul(&w, x, T, ref, 0, N);
    char what[128];
    for (int i = 0; i < n_isa; i++) {
        int n0, n1;
        pick_range(N, isas[i]->col_align, &n0, &n1);
        float *y = sentinel((size_t)T * N);
        isas[i]->dense_matmul(&w, x, T, y, n0, n1);
        snprintf(what, sizeof what, "%s dense %s K=%d N=%d T=%d [%d,%d)", isas[i]->name,
                 r1__dtype_name(type), K, N, T, n0, n1);
        compare(y, ref, T, N, n0, n1, 2e-6 * sqrt((double)K), what);
        free(y);
    }
    /* 8-bit rows built from this matrix */
    if (type != R1_F32 || K % 2 == 0) {
        r1_q8_rows *q8 = NULL;
        r1_error err = {0};
        CHECK(r1__cpu_q8_rows_new(&w, &q8, &err) == R1_OK);
        float *ref8 = malloc((size_t)T * N * sizeof(float));
        r1__cpu_q8_matmul(&r1__cpu_kernels_scalar, q8, x, T, ref8, 0, N);
        float *y = sentinel((size_t)T * N);
        memcpy(y, ref8, (size_t)T * N * sizeof(float));
        snprintf(what, sizeof what, "q8 ref vs exact %s K=%d N=%d", r1__dtype_name(type), K, N);
        compare(y, ref, T, N, 0, N, 5e-2, what);
        free(y);
        for (int i = 0; i < n_isa; i++) {
            if (!isas[i]->q8_matmul) continue;
            int n0, n1;
            pick_range(N, isas[i]->col_align, &n0, &n1);
            y = sentinel((size_t)T * N);
            isas[i]->q8_matmul(q8, x, T, y, n0, n1);
            snprintf(what, sizeof what, "%s q8 K=%d N=%d T=%d [%d,%d)", isas[i]->name, K, N, T, n0,
                     n1);
            /* AVX2 rounds one token's x to int16 (q8_matmul_avx2): about 2^-15 of its
             * block's max |x| per input, some 1e-4 of the output RMS */
            compare(y, ref8, T, N, n0, n1, 2e-6 * sqrt((double)K) + 3e-4, what);
            free(y);
        }
        free(ref8);
        r1__cpu_q8_rows_free(q8);
    }
    free(x), free(ref), free(data);
}

/* A NaN in x reaches every 8-bit head output (the AVX2 int16 path cannot carry
 * it and must fall back), never a made-up number. */
static void test_q8_nan(const r1_cpu_kernels **isas, int n_isa) {
    enum { K = 256, N = 16 };
    uint16_t *h = malloc((size_t)N * K * 2);
    for (int i = 0; i < N * K; i++) h[i] = r1__f32_to_f16(frand() * 0.05f);
    r1_tensor w;
    tensor2(&w, R1_F16, N, K, h);
    r1_q8_rows *q8 = NULL;
    r1_error err = {0};
    CHECK(r1__cpu_q8_rows_new(&w, &q8, &err) == R1_OK);
    float *x = rand_vec(K), y[N];
    x[100] = NAN;
    for (int i = 0; i < n_isa && q8; i++) {
        if (!isas[i]->q8_matmul) continue;
        isas[i]->q8_matmul(q8, x, 1, y, 0, N);
        int nan = 0;
        for (int n = 0; n < N; n++) nan += isnan(y[n]) != 0;
        CHECK_MSG(nan == N, "%s q8: %d of %d outputs NaN for a NaN input", isas[i]->name, nan, N);
    }
    r1__cpu_q8_rows_free(q8);
    free(h), free(x);
}

static void test_dense(const r1_cpu_kernels **isas, int n_isa) {
    static const r1_dtype types[] = {R1_F16, R1_BF16, R1_F32};
    static const int Ts[] = {1, 2, 7, 64};
    /* one token through the AVX2 8-bit head's int16 path: one block of x, and two
     * (Q8X_BLK = 4096 inputs) */
    test_dense_case(isas, n_isa, R1_F16, 1536, 40, 1);
    test_dense_case(isas, n_isa, R1_BF16, 4096 + 512, 24, 1);
    for (int it = 0; it < 24; it++) {
        int K = 8 * (1 + irand(100)), N = 8 * (1 + irand(30)), T = Ts[irand(4)];
        test_dense_case(isas, n_isa, types[it % 3], K + (it % 5 == 0 ? 3 : 0), N, T);
    }
    printf("dense: 26 heads checked (F16, BF16, F32, 8-bit rows)\n");
}

/* ---- benchmarks ----
 * Weights are replicated until each measured set exceeds the 480 MB L3 of the
 * test machine, so every timed call reads DRAM like a real decode step does.
 * Work is shared in one parallel region, in chunks of cpu/ops.c's sizes
 * (r1__cpu_col_chunk, r1__cpu_row_chunk for the head): the matmuls in runs as
 * ops.c hands them out (cpu/chunks.h), the head one chunk at a time. */
#ifdef R1_HAVE_OPENBLAS
#include <cblas.h>
#endif

static double now_s(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Memory read probes over 1 GiB, each thread summing its share: "probe" is the
 * same loop as bench/membw.c (8 uint64 accumulators, what r1run bench reports);
 * "probe+pf" adds a software prefetch 4 KiB ahead like the kernels do. */
typedef struct probe {
    uint64_t *a;
    size_t n;
} probe;

static probe probe_new(void) {
    probe p = {NULL, (size_t)1 << 27};
    p.a = malloc(p.n * sizeof(uint64_t));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p.n; i++) p.a[i] = i;
    return p;
}

static uint64_t sum_range(const uint64_t *p, size_t n, int pf) {
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8) {
        if (pf) __builtin_prefetch(p + i + 512);
        for (int j = 0; j < 8; j++) a[j] += p[i + j];
    }
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static double probe_gbs(const probe *p, int nth, int pf) {
    double t0 = now_s();
    uint64_t s = 0;
#pragma omp parallel num_threads(nth) reduction(+ : s)
    {
        int nt = 1, it = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads(), it = omp_get_thread_num();
#endif
        size_t chunk = p->n / (size_t)nt & ~(size_t)7, b = (size_t)it * chunk;
        s += sum_range(p->a + b, it == nt - 1 ? p->n - b : chunk, pf);
    }
    double gbs = (double)p->n * 8 / (now_s() - t0) / 1e9;
    return s == 42 ? gbs + 1e-9 : gbs;
}

static size_t q4_bytes(const r1_qlinear *q) {
    return (size_t)q->K / 8 * q->N * 4 + (size_t)q->n_groups * q->N * 2 +
           (size_t)q->n_groups * q->N / 8 * 4;
}

/* One forward step over `n` linears, shared out the way the CPU backend does it:
 * one parallel region; per op the activation units (static), then runs of
 * chunks of 64 columns (cpu/chunks.h). mode < 0: plain q4_matmul (no preparation). */
static void run_set(const r1_cpu_kernels *k, qcase **set, int n, const float *x, int T, float *y,
                    int mode, void *xa, int nth) {
    static uint64_t runs[64];
    static uint32_t gen;
    gen++;
#pragma omp parallel num_threads(nth)
    for (int i = 0; i < n; i++) {
        const r1_qlinear *q = &set[i]->q;
        int ch = r1__cpu_col_chunk(q->N, k->col_align), nch = (q->N + ch - 1) / ch;
        size_t bytes = mode < 0 ? 0 : r1__cpu_q4_act_bytes(k, q, T, (r1_q4_act)mode);
        if (bytes) {
#pragma omp for schedule(static)
            for (int u = 0; u < T * q->n_groups; u++)
                r1__cpu_q4_act_prep(k, q, x, T, (r1_q4_act)mode, u, u + 1, xa);
        }
        int nt = omp_get_num_threads() < 64 ? omp_get_num_threads() : 64;
        r1_cpu_chunk_iter it =
            r1__cpu_chunks(runs, gen * 256u + (uint32_t)i, nch, omp_get_thread_num(), nt);
        for (int c; (c = r1__cpu_chunk_next(&it)) >= 0;) {
            int n0 = c * ch, n1 = n0 + ch > q->N ? q->N : n0 + ch;
            if (mode < 0)
                k->q4_matmul(q, x, T, y, n0, n1);
            else
                r1__cpu_q4_matmul_act(k, q, x, bytes ? xa : NULL, T, (r1_q4_act)mode, y, n0, n1);
        }
#pragma omp barrier /* the next op reuses the run words */
    }
}

typedef struct shape {
    const char *name;
    int K, N;
} shape;

static double prepare_set(const r1_cpu_kernels *k, qcase **set, int n) {
    double t0 = now_s(), bytes = 0;
    for (int i = 0; i < n; i++) {
        r1_error err = {0};
        if (r1__cpu_q4_prepare(k, &set[i]->q, 0, &err)) fprintf(stderr, "prepare: %s\n", err.msg);
        bytes += (double)set[i]->q.K / 8 * set[i]->q.N * 4;
    }
    return bytes / (now_s() - t0) / 1e9;
}

/* Decode GB/s per mode, each repetition interleaved with the read probe so that
 * both see the same machine (its bandwidth drifts by tens of percent). */
static void bench_decode(const r1_cpu_kernels *k, const probe *pr, int nth, int reps,
                         double min_bytes, int act) {
    static const shape shapes[] = {
        {"14b k/v 5120x1024", 5120, 1024},       {"14b q/o 5120x5120", 5120, 5120},
        {"14b gate/up 5120x13824", 5120, 13824}, {"14b down 13824x5120", 13824, 5120},
        {"1.5b q/o 1536x1536", 1536, 1536},      {"1.5b gate/up 1536x8960", 1536, 8960},
        {"1.5b down 8960x1536", 8960, 1536}};
    static const char *names[] = {"q4_matmul, checkpoint layout", "F32 prepared", "I8X3 prepared",
                                  "I8 prepared"};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int K = shapes[s].K, N = shapes[s].N, n = 0;
        qcase *set[1024];
        do set[n++] = qcase_new(K, N, 128, 1, 0, act);
        while (n < 1024 && (double)n * ((double)K * N / 2) < min_bytes);
        float *x = rand_vec(K), *y = malloc((size_t)N * sizeof(float));
        void *xa = malloc(r1__q4_act_tail_offset(&set[0]->q, 1, R1_Q4_I8X3) +
                          8 * (size_t)set[0]->q.n_groups + 64);
        double gbs[6][32], ratio[5][32];
        int prepared = 0;
        for (int m = 0; m < 4; m++) {
            if (m == 1 && !prepared) {
                double g = prepare_set(k, set, n);
                prepared = 1;
                printf("prepare %-24s x%-3d repack %.1f GB/s\n", shapes[s].name, n, g);
            }
            run_set(k, set, n, x, 1, y, m - 1, xa, nth); /* warm-up: page faults, frequency */
        }
        for (int r = 0; r < reps; r++)
            for (int m = 0; m < 6; m++) {
                if (m >= 4) {
                    gbs[m][r] = probe_gbs(pr, nth, m == 5);
                    continue;
                }
                if (m == 0) /* the checkpoint layout: hide the prepared one for a moment */
                    for (int i = 0; i < n; i++)
                        set[i]->extra_saved = set[i]->q.cpu_extra, set[i]->q.cpu_extra = NULL;
                double t0 = now_s();
                run_set(k, set, n, x, 1, y, m - 1, xa, nth);
                gbs[m][r] = (double)n * q4_bytes(&set[0]->q) / (now_s() - t0) / 1e9;
                if (m == 0)
                    for (int i = 0; i < n; i++) set[i]->q.cpu_extra = set[i]->extra_saved;
            }
        for (int r = 0; r < reps; r++)
            for (int m = 0; m < 4; m++) ratio[m][r] = gbs[m][r] / gbs[4][r];
        for (int r = 0; r < reps; r++) ratio[4][r] = gbs[5][r] / gbs[4][r];
        printf("decode %-7s %-24s probe %5.1f GB/s, probe+pf %5.1f (median of %d, %d threads)\n",
               k->name, shapes[s].name, median(gbs[4], reps), median(gbs[5], reps), reps, nth);
        for (int m = 0; m < 4; m++)
            printf("       %-32s %5.1f GB/s  %3.0f%% of the probe\n", names[m],
                   median(gbs[m], reps), 100 * median(ratio[m], reps));
        for (int i = 0; i < n; i++) r1__cpu_q4_release(&set[i]->q), qcase_free(set[i]);
        free(x), free(y), free(xa);
    }
}

static void bench_head(const r1_cpu_kernels *k, const probe *pr, int nth, int reps, int N, int K) {
    size_t n = (size_t)N * K;
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = r1__f32_to_f16(frand() * 0.05f);
    r1_tensor w;
    tensor2(&w, R1_F16, N, K, h);
    r1_q8_rows *q8 = NULL;
    r1_error err = {0};
    double t0 = now_s();
    if (r1__cpu_q8_rows_new(&w, &q8, &err)) return;
    printf("head %dx%d: 8-bit copy built in %.2f s\n", N, K, now_s() - t0);
    float *x = rand_vec(K), *y = malloc((size_t)N * sizeof(float));
    int ch = 0, nch = 0; /* per mode below, as cpu/ops.c chunks them */
    double gbs[3][32];
    for (int r = 0; r <= reps; r++)
        for (int mode = 0; mode < 3; mode++) {
            if (mode == 2) {
                if (r) gbs[2][r - 1] = probe_gbs(pr, nth, 0);
                continue;
            }
            ch = r1__cpu_row_chunk(N, (size_t)K * (mode == 0 ? 2 : 1), k->col_align);
            nch = (N + ch - 1) / ch;
            double t1 = now_s();
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
            for (int c = 0; c < nch; c++) {
                int n0 = c * ch, n1 = n0 + ch > N ? N : n0 + ch;
                if (mode == 0)
                    k->dense_matmul(&w, x, 1, y, n0, n1);
                else
                    r1__cpu_q8_matmul(k, q8, x, 1, y, n0, n1);
            }
            if (r) gbs[mode][r - 1] = (double)n * (mode == 0 ? 2 : 1) / (now_s() - t1) / 1e9;
        }
    double pm = median(gbs[2], reps);
    for (int mode = 0; mode < 2; mode++) {
        double m = median(gbs[mode], reps);
        printf("head   %-7s %s %dx%d  %5.1f GB/s (%3.0f%% of probe %.1f), %.1f ms per token\n",
               k->name, mode == 0 ? "f16" : "q8 ", N, K, m, 100 * m / pm, pm,
               n * (mode == 0 ? 2 : 1) / m / 1e6);
    }
    r1__cpu_q8_rows_free(q8);
    free(h), free(x), free(y);
}

#ifdef R1_HAVE_OPENBLAS
/* Prompt matmul through OpenBLAS: W dequantized once to float32 (an upper bound:
 * the dequantization is not timed), sgemm with OpenBLAS's own threads. */
static double sgemm_layer_s(const r1_qlinear *q, const float *x, int T, float *y, float *wf,
                            int nth) {
    openblas_set_num_threads(nth);
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, q->N, q->K, 1.0f, x, q->K, wf, q->N,
                0.0f, y, q->N);
    return now_s() - t0;
}

/* Realistic variant: each thread dequantizes a 256-column tile, then single-threaded sgemm. */
static double sgemm_tiles_s(const r1_qlinear *q, const float *x, int T, float *y, int nth) {
    int K = q->K, N = q->N, ch = 256, nch = (N + ch - 1) / ch;
    openblas_set_num_threads(1);
    double t0 = now_s();
#pragma omp parallel num_threads(nth)
    {
        float *tile = malloc((size_t)K * ch * sizeof(float));
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < nch; c++) {
            int n0 = c * ch, w = n0 + ch > N ? N - n0 : ch;
            for (int kk = 0; kk < K; kk++)
                for (int j = 0; j < w; j++) tile[(size_t)kk * w + j] = r1__q4_weight(q, kk, n0 + j);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, w, K, 1.0f, x, K, tile, w,
                        0.0f, y + n0, N);
        }
        free(tile);
    }
    return now_s() - t0;
}
#endif

/* Prompt processing of the 1.5b linears: one layer's 7 matmuls, times 28 layers
 * (attention, norms and the head are not included). */
static void bench_pp(const r1_cpu_kernels *k, int nth, int reps, int T) {
    static const shape L[] = {{"q", 1536, 1536},   {"k", 1536, 256},     {"v", 1536, 256},
                              {"o", 1536, 1536},   {"gate", 1536, 8960}, {"up", 1536, 8960},
                              {"down", 8960, 1536}};
    enum { NL = 7, NM = 5 };
    qcase *set[NL];
    double flop = 0;
    size_t maxK = 0, maxN = 0;
    for (int i = 0; i < NL; i++) {
        set[i] = qcase_new(L[i].K, L[i].N, 128, 1, 0, 0);
        r1_error err = {0};
        r1__cpu_q4_prepare(k, &set[i]->q, 0, &err);
        flop += 2.0 * T * L[i].K * L[i].N;
        if ((size_t)L[i].K > maxK) maxK = L[i].K;
        if ((size_t)L[i].N > maxN) maxN = L[i].N;
    }
    float *x = rand_vec((size_t)T * maxK), *y = malloc((size_t)T * maxN * sizeof(float));
    size_t xa_bytes = 0; /* the largest any linear needs in any mode, as the backend sizes it */
    for (int i = 0; i < NL; i++)
        for (int m = 0; m < 3; m++) {
            size_t b = r1__cpu_q4_act_bytes(k, &set[i]->q, T, (r1_q4_act)m);
            if (b != (size_t)-1 && b > xa_bytes) xa_bytes = b;
        }
    void *xa = malloc(xa_bytes ? xa_bytes : 1);
    static const char *names[NM] = {"F32 (exact)", "I8X3 (float-level)", "I8 (int8 activations)",
                                    "sgemm, W pre-dequantized", "sgemm, dequantized tiles"};
    for (int mode = 0; mode < NM; mode++) {
        double tps[32];
#ifndef R1_HAVE_OPENBLAS
        if (mode >= 3) continue;
#endif
        float *wf[NL] = {0};
#ifdef R1_HAVE_OPENBLAS
        if (mode == 3)
            for (int i = 0; i < NL; i++) {
                const r1_qlinear *q = &set[i]->q;
                wf[i] = malloc((size_t)q->K * q->N * sizeof(float));
                for (int kk = 0; kk < q->K; kk++)
                    for (int n = 0; n < q->N; n++)
                        wf[i][(size_t)kk * q->N + n] = r1__q4_weight(q, kk, n);
            }
#endif
        for (int r = 0; r <= reps; r++) {
            double t = 0;
            for (int i = 0; i < NL; i++) {
                double t0 = now_s();
                if (mode < 3) run_set(k, &set[i], 1, x, T, y, mode, xa, nth);
                t += now_s() - t0;
#ifdef R1_HAVE_OPENBLAS
                if (mode == 3) t += sgemm_layer_s(&set[i]->q, x, T, y, wf[i], nth);
                if (mode == 4) t += sgemm_tiles_s(&set[i]->q, x, T, y, nth);
#endif
            }
            if (r) tps[r - 1] = T / (t * 28);
        }
        double m = median(tps, reps);
        printf("pp%-4d %-7s %-26s linears %7.1f tok/s  %6.1f GFLOP/s (median of %d)\n", T, k->name,
               names[mode], m, m * 28 * flop / T / 1e9, reps);
        for (int i = 0; i < NL; i++) free(wf[i]);
    }
    for (int i = 0; i < NL; i++) r1__cpu_q4_release(&set[i]->q), qcase_free(set[i]);
    free(x), free(y), free(xa);
}

static int bench_main(int argc, char **argv) {
    int nth = 2, reps = 5, act = 0;
    const char *what = "all", *isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            nth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-k") && i + 1 < argc)
            isa = argv[++i];
        else if (!strcmp(argv[i], "--act-order"))
            act = 1;
        else
            what = argv[i];
    }
    if (reps > 31) reps = 31;
    if (reps < 1) reps = 1;
    const char *bad = NULL;
    const r1_cpu_kernels *k = isa ? r1__cpu_kernels_get(isa) : r1__cpu_kernels_select(&bad);
    if (!k) {
        fprintf(
            stderr,
            "usage: test_kernels bench [probe|decode|decode-hot|head|pp64|pp512|all] [-t threads] "
            "[-r reps] [-k scalar|avx2|avx512|amx|neon] [--act-order]\n");
        return 2;
    }
    int all = !strcmp(what, "all");
    probe pr = probe_new();
    if (all || !strcmp(what, "probe")) {
        double g[32];
        double gp[32];
        for (int r = 0; r < reps; r++)
            g[r] = probe_gbs(&pr, nth, 0), gp[r] = probe_gbs(&pr, nth, 1);
        printf("probe: memory read %.1f GB/s, with prefetch %.1f GB/s, %d threads (1 GiB, median "
               "of %d)\n",
               median(g, reps), median(gp, reps), nth, reps);
    }
    if (all || !strcmp(what, "decode")) bench_decode(k, &pr, nth, reps, 1.5e9, act);
    if (!strcmp(what, "decode-hot"))
        bench_decode(k, &pr, nth, reps, 0, act); /* one copy: from cache */
    if (all || !strcmp(what, "head")) {          /* the 14b and 1.5b heads */
        bench_head(k, &pr, nth, reps, 152064, 5120);
        bench_head(k, &pr, nth, reps, 151936, 1536);
    }
    if (all || !strcmp(what, "pp64")) bench_pp(k, nth, reps, 64);
    if (all || !strcmp(what, "pp512")) bench_pp(k, nth, reps, 512);
    free(pr.a);
    return 0;
}

int main(int argc, char **argv) {
    const int n_names = (int)(sizeof isa_names / sizeof isa_names[0]);
    const r1_cpu_kernels *isas[sizeof isa_names / sizeof isa_names[0]];
    int n_isa = 0;
    for (int i = 0; i < n_names; i++) {
        const r1_cpu_kernels *k = r1__cpu_kernels_get(isa_names[i]);
        if (k) isas[n_isa++] = k;
        printf("%s: %s\n", isa_names[i],
               k ? "tested" : "skipped (not built or not supported by this CPU)");
    }
    if (argc > 1 && !strcmp(argv[1], "bench")) return bench_main(argc - 1, argv + 1);
    test_q4(isas, n_isa);
    test_dense(isas, n_isa);
    test_q8_nan(isas, n_isa);
    return r1t_finish("kernels");
}
