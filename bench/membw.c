/* Memory read-bandwidth probe: each thread sums its share of a buffer much
 * larger than the caches, as generation streams the weights. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Eight independent accumulators keep the loads in flight; the compiler
 * vectorizes this to full-width loads at -O2/-O3. */
static uint64_t sum_range(const uint64_t *p, size_t n) {
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += p[i + j];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double r1__bench_membw(int n_threads, size_t bytes, int reps) {
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, n * sizeof *buf)) return 0;
        /* first touch from the threads that will read it */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double *bw = calloc((size_t)reps, sizeof *bw);
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t total = 0;
        double t0 = now();
#pragma omp parallel num_threads(n_threads) reduction(+ : total)
        {
            int nt = omp_get_num_threads(), it = omp_get_thread_num();
            size_t chunk = (n / (size_t)nt) & ~(size_t)7;
            size_t b = (size_t)it * chunk, e = it == nt - 1 ? (n & ~(size_t)7) : b + chunk;
            total += sum_range(buf + b, e - b);
        }
        bw[r] = (double)bytes / (now() - t0);
        sink += total;
    }
    qsort(bw, (size_t)reps, sizeof *bw, cmp_double);
    double med = bw[reps / 2];
    free(bw);
    free(buf);
    (void)sink;
    return med;
}
