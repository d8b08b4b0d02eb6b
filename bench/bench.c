/* r1run bench -m DIR [-t N] [-p 64,512] [-n 32] [-d 0] [-r 5] [-o md|json] [--gpu-layers 0,8,...]
 *
 * For each GPU layer count: prompt processing (pp) at each prompt length and
 * text generation (tg) of n tokens, each the median of r runs from an empty
 * cache (tg: after an untimed prompt of 1 + d tokens, so -d 4000 measures
 * decoding over a 4,000-token cache, as llama-bench's -d), plus bytes read per token, the measured
 * memory read bandwidth and the generation speed as a fraction of the roofline: the time to read
 * every weight once, host bytes at the host's bandwidth plus GPU bytes at the GPU's (read by a
 * probe shader). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "r1run.h"

#define MAX_LIST 16

typedef struct bench_opts {
    const char *model;
    int threads, n_gen, reps, json, n_pp, n_gl, lm_head_q8, ctx, depth;
    int pp[MAX_LIST], gl[MAX_LIST];
    const char *gl_str[MAX_LIST];
    uint64_t gpu_mem;
} bench_opts;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One line on stderr (the usage with --help, on stdout). */
static int usage(const char *why) {
    if (!strcmp(why, "help")) {
        printf("usage: r1run bench -m DIR [-t N] [-p 64,512] [-n 32] [-d 0] [-r 5] [-o md|json] "
               "[--gpu-layers 0,8,16|all|auto] [--gpu-mem SIZE] [--lm-head q8]\n");
        return 2;
    }
    fprintf(stderr, "r1run bench: %s (see r1run bench --help)\n", why);
    return 2;
}

static int parse_list(const char *s, int *out, const char **strs, int *n, int allow_words) {
    *n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) return free(copy), -1;
        char *end;
        long v = strtol(tok, &end, 10);
        if (allow_words && (!strcmp(tok, "all") || !strcmp(tok, "auto"))) {
            v = !strcmp(tok, "all") ? R1_GPU_LAYERS_ALL : R1_GPU_LAYERS_AUTO;
        } else if (*end || end == tok || v < 0 || v > 1 << 20) {
            return free(copy), -1;
        }
        if (strs) strs[*n] = s; /* for messages only */
        out[(*n)++] = (int)v;
    }
    free(copy);
    return *n ? 0 : -1;
}

static int parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return -1;
    double mul = 1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kib"))
        mul = 1024.0;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib"))
        mul = 1048576.0;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib"))
        mul = 1073741824.0;
    else if (*end)
        return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

/* A whole number for flag a, or -1 after an error naming it. */
static int int_of(const char *a, const char *v, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < -1000000000L || x > 1000000000L) {
        char why[160];
        snprintf(why, sizeof why, "%.40s %.60s: expects a whole number", a, v);
        return usage(why), -1;
    }
    *out = (int)x;
    return 0;
}

static int parse(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_gen = 32, o->reps = 5, o->n_pp = 2, o->pp[0] = 64, o->pp[1] = 512, o->n_gl = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage("help"), 1;
        if (!v) {
            char why[160];
            snprintf(why, sizeof why, "%.100s: expects a value", a);
            return usage(why);
        }
        i++;
        int bad = 0;
        if (!strcmp(a, "-m"))
            o->model = v;
        else if (!strcmp(a, "-t"))
            bad = int_of(a, v, &o->threads);
        else if (!strcmp(a, "-n"))
            bad = int_of(a, v, &o->n_gen);
        else if (!strcmp(a, "-r"))
            bad = int_of(a, v, &o->reps);
        else if (!strcmp(a, "-d") || !strcmp(a, "--depth"))
            bad = int_of(a, v, &o->depth);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx"))
            bad = int_of(a, v, &o->ctx);
        else if (!strcmp(a, "-o"))
            o->json = !strcmp(v, "json");
        else if (!strcmp(a, "-p")) {
            if (parse_list(v, o->pp, NULL, &o->n_pp, 0))
                return usage("-p: expects lengths like 64,512");
        } else if (!strcmp(a, "--gpu-layers") || !strcmp(a, "-ngl")) {
            if (parse_list(v, o->gl, NULL, &o->n_gl, 1))
                return usage("--gpu-layers: expects a list like 0,8,16 or all/auto");
        } else if (!strcmp(a, "--gpu-mem")) {
            if (parse_size(v, &o->gpu_mem)) return usage("--gpu-mem: expects a size like 4GiB");
        } else if (!strcmp(a, "--lm-head")) {
            if (!v || (strcmp(v, "q8") && strcmp(v, "f16")))
                return usage("--lm-head: expects q8 or f16");
            o->lm_head_q8 = !strcmp(v, "q8");
        } else {
            char why[160];
            snprintf(why, sizeof why, "%.100s: unknown flag", a);
            return usage(why);
        }
        if (bad) return 2;
    }
    if (!o->model) return usage("-m DIR is required");
    if (o->reps < 1) return usage("-r: expects 1 or more runs");
    if (o->n_gen < 0) return usage("-n: expects 0 or more tokens");
    if (o->depth < 0) return usage("-d: expects a depth of 0 or more tokens");
    if (o->threads < 0) return usage("-t: expects 0 (the physical cores) or more threads");
    return 0;
}

static void random_tokens(int32_t *t, int n, int vocab, unsigned *seed) {
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(rand_r(seed) % (unsigned)(vocab < 1000 ? vocab : 1000));
}

/* Median tokens/s of prompt processing of n tokens, each from an empty cache. */
static int bench_pp(r1_session *s, int vocab, int n, int reps, double *tps) {
    int32_t *t = malloc((size_t)n * sizeof *t);
    double *v = calloc((size_t)reps, sizeof *v);
    unsigned seed = 1;
    r1_error err = {0};
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        random_tokens(t, n, vocab, &seed);
        r1_session_truncate(s, 0, NULL);
        double t0 = now();
        rc = r1_session_eval(s, t, n, 0, &err);
        v[r] = n / (now() - t0);
    }
    if (rc) fprintf(stderr, "r1run bench: %s\n", err.msg);
    *tps = median(v, reps);
    free(t), free(v);
    return rc;
}

/* Median tokens/s generating n tokens one at a time after a prompt of 1 + depth
 * tokens (untimed). */
static int bench_tg(r1_session *s, int vocab, int n, int depth, int reps, double *tps) {
    double *v = calloc((size_t)reps, sizeof *v);
    int32_t *prompt = malloc((size_t)(depth + 1) * sizeof *prompt);
    unsigned seed = 2;
    r1_error err = {0};
    int rc = !v || !prompt;
    if (rc) snprintf(err.msg, sizeof err.msg, "out of memory");
    for (int r = 0; r < reps && !rc; r++) {
        int32_t tok;
        random_tokens(prompt, depth + 1, vocab, &seed);
        r1_session_truncate(s, 0, NULL);
        rc = r1_session_eval(s, prompt, depth + 1, 0, &err);
        double t0 = now();
        for (int i = 0; i < n && !rc; i++) {
            random_tokens(&tok, 1, vocab, &seed);
            rc = r1_session_eval(s, &tok, 1, 0, &err);
        }
        v[r] = n / (now() - t0);
    }
    if (rc) fprintf(stderr, "r1run bench: %s\n", err.msg);
    *tps = rc ? 0 : median(v, reps);
    free(v), free(prompt);
    return rc;
}

/* Roofline tokens/s: each weight read once from where it lives; 0 if unknown. */
static double roofline(const r1_model *m, double bw, double gbw) {
    double bpt = (double)r1_model_weight_bytes(m), gpu = (double)r1_model_backend_bytes(m, 1);
    if (gpu > bpt) gpu = bpt;
    if (gpu > 0 && gbw <= 0) return 0;
    double t = (bpt - gpu) / bw + (gpu > 0 ? gpu / gbw : 0);
    return t > 0 ? 1 / t : 0;
}

static void report(const bench_opts *o, const r1_model *m, const char *test, double tps, double bw,
                   double gbw, int threads) {
    double bpt = (double)r1_model_weight_bytes(m), gpu = (double)r1_model_backend_bytes(m, 1);
    double roof = roofline(m, bw, gbw);
    const r1_plan *p = r1_model_plan(m);
    int tg = test[0] == 't';
    if (o->json) {
        printf("{\"test\": \"%s\", \"tokens_per_s\": %.3f, \"threads\": %d, \"gpu_layers\": %d, "
               "\"gpu_bytes\": %.0f, \"bytes_per_token\": %.0f, \"mem_bw_gbs\": %.2f, "
               "\"gpu_bw_gbs\": %.2f, \"backend\": \"%s\"",
               test, tps, threads, p->gpu_layers, gpu, bpt, bw / 1e9, gbw / 1e9,
               r1_model_backend_desc(m));
        if (tg)
            printf(", \"read_gbs\": %.2f, \"roofline_tps\": %.2f, \"roofline_frac\": %.3f",
                   tps * bpt / 1e9, roof, roof > 0 ? tps / roof : 0.0);
        printf("}\n");
    } else {
        printf("| %5d | %7.2f GiB | %-6s | %9.2f | %6.2f GB |", p->gpu_layers, gpu / 1073741824.0,
               test, tps, bpt / 1e9);
        if (tg && roof > 0)
            printf(" %7.2f GB/s | %8.1f | %6.1f%% |\n", tps * bpt / 1e9, roof, 100 * tps / roof);
        else if (tg)
            printf(" %7.2f GB/s |    -     |    -    |\n", tps * bpt / 1e9);
        else
            printf("      -       |    -     |    -    |\n");
    }
    fflush(stdout);
}

/* The GPU's bandwidth, probed once with the first model that has GPU layers. */
static double gpu_bandwidth(r1_model *m, int json) {
    static double gbw = -1;
    if (gbw < 0 && r1_model_backend_bytes(m, 1) > 0) {
        gbw = r1_model_backend_bandwidth(m, 1);
        if (!json)
            fprintf(stderr, "GPU memory read bandwidth (probe shader): %.1f GB/s\n", gbw / 1e9);
    }
    return gbw > 0 ? gbw : 0;
}

static int bench_one(const bench_opts *o, int gpu_layers, double bw, int threads) {
    r1_model_params mp;
    r1_model_params_default(&mp);
    mp.n_threads = o->threads;
    mp.gpu_layers = gpu_layers;
    mp.gpu_mem = o->gpu_mem;
    mp.lm_head_q8 = o->lm_head_q8;
    r1_model *m = NULL;
    r1_session *s = NULL;
    r1_error err = {0};
    int maxp = 1;
    for (int i = 0; i < o->n_pp; i++) maxp = o->pp[i] > maxp ? o->pp[i] : maxp;
    double t0 = now();
    if (r1_model_load(o->model, &mp, &m, &err)) {
        fprintf(stderr, "r1run bench: %s\n", err.msg);
        return 1;
    }
    double load_s = now() - t0;
    /* positions the tg test needs; the depth's prompt goes in passes of up to 512 */
    int need = o->depth + o->n_gen + 1, ctx = o->ctx ? o->ctx : (maxp > need ? maxp : need);
    int batch = o->depth + 1 > maxp ? (o->depth + 1 < 512 ? o->depth + 1 : 512) : maxp;
    if (o->n_gen > 0 && (ctx < need || need > r1_model_max_ctx(m))) {
        fprintf(stderr,
                "r1run bench: -d %d -n %d: needs %d positions; %s %d (see r1run bench --help)\n",
                o->depth, o->n_gen, need, ctx < need ? "-c gives" : "the model has",
                ctx < need ? ctx : r1_model_max_ctx(m));
        r1_model_free(m);
        return 1;
    }
    r1_session_params sp = {.n_ctx = ctx, .n_batch = batch};
    if (r1_session_new(m, &sp, &s, &err)) {
        fprintf(stderr, "r1run bench: %s\n", err.msg);
        r1_model_free(m);
        return 1;
    }
    if (!o->json) {
        const r1_plan *p = r1_model_plan(m);
        fprintf(stderr, "loaded in %.2f s: %s%s\n", load_s, r1_model_backend_desc(m),
                gpu_layers == R1_GPU_LAYERS_AUTO ? " (auto choice)" : "");
        if (*p->note) fprintf(stderr, "note: %s\n", p->note);
    }
    double gbw = gpu_bandwidth(m, o->json);
    int vocab = r1_model_n_vocab(m), rc = 0;
    for (int i = 0; i < o->n_pp && !rc; i++) {
        if (o->pp[i] <= 0) continue; /* -p 0: no prompt test, as llama-bench */
        double tps;
        char name[32];
        snprintf(name, sizeof name, "pp%d", o->pp[i]);
        if (!(rc = bench_pp(s, vocab, o->pp[i], o->reps, &tps)))
            report(o, m, name, tps, bw, gbw, threads);
    }
    if (o->n_gen > 0 && !rc) {
        double tps;
        char name[32];
        if (o->depth)
            snprintf(name, sizeof name, "tg%d@d%d", o->n_gen, o->depth);
        else
            snprintf(name, sizeof name, "tg%d", o->n_gen);
        if (!(rc = bench_tg(s, vocab, o->n_gen, o->depth, o->reps, &tps)))
            report(o, m, name, tps, bw, gbw, threads);
    }
    r1_session_free(s);
    r1_model_free(m);
    return rc;
}

int r1__bench_main(int argc, char **argv) {
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    int threads = o.threads ? o.threads : r1_cpu_physical_cores();
    double bw = r1__bench_membw(threads, (size_t)1 << 30, 5);
    if (!o.json) fprintf(stderr, "model %s\n", o.model);
    if (!o.json) {
        printf("memory read bandwidth (%d threads, 1 GiB, median of 5): %.2f GB/s\n\n", threads,
               bw / 1e9);
        printf("| ngl   | GPU weights | test   | tokens/s  | bytes/tok | gen read     | roof t/s | "
               "of roof |\n");
        printf("|-------|-------------|--------|-----------|-----------|--------------|----------|"
               "---------|\n");
    }
    for (int i = 0; i < o.n_gl && !rc; i++) rc = bench_one(&o, o.gl[i], bw, threads);
    return rc;
}
