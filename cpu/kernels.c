#include "kernels.h"
#include "q4_layout.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

/* ISA tables live in cpu/x86/ and cpu/arm/, which CMake compiles on the matching
 * architecture. The references must be strong there: a weak undefined symbol
 * does not pull its object out of libr1run.a, so programs linked against the
 * static library would silently run the scalar table. */
#if defined(__x86_64__)
extern const r1_cpu_kernels r1__cpu_kernels_avx2, r1__cpu_kernels_avx512;
extern const r1_cpu_kernels r1__cpu_kernels_neon __attribute__((weak));
#ifdef R1_HAVE_AMX /* cpu/x86/q4_amx.c, built where the compiler knows AMX */
extern const r1_cpu_kernels r1__cpu_kernels_amx;
int r1__cpu_amx_usable(void);
#endif
#elif defined(__aarch64__)
extern const r1_cpu_kernels r1__cpu_kernels_avx2 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_avx512 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_neon;
#else
extern const r1_cpu_kernels r1__cpu_kernels_avx2 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_avx512 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_neon __attribute__((weak));
#endif

static int cpu_has(const char *feature) {
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(feature, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (!strcmp(feature, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx512dq");
#ifdef R1_HAVE_AMX
    if (!strcmp(feature, "amx")) return cpu_has("avx512") && r1__cpu_amx_usable();
#endif
    return 0;
#elif defined(__aarch64__)
    /* the NEON table uses the dot product (sdot) in its int8 paths */
    return !strcmp(feature, "neon") && (getauxval(AT_HWCAP) & (1ul << 20)) != 0; /* ASIMDDP */
#else
    (void)feature;
    return 0;
#endif
}

const r1_cpu_kernels *r1__cpu_kernels_get(const char *name) {
    /* through an array: a strong symbol's address in a condition warns (-Waddress) */
    static const r1_cpu_kernels *const tables[] = {&r1__cpu_kernels_avx2, &r1__cpu_kernels_avx512,
                                                   &r1__cpu_kernels_neon};
    static const char *const features[] = {"avx2", "avx512", "neon"};
    if (!strcmp(name, "scalar")) return &r1__cpu_kernels_scalar;
#ifdef R1_HAVE_AMX
    if (!strcmp(name, "amx")) return cpu_has("amx") ? &r1__cpu_kernels_amx : NULL;
#endif
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, features[i]) && tables[i] && cpu_has(features[i])) return tables[i];
    return NULL;
}

const r1_cpu_kernels *r1__cpu_kernels_select(const char **error_name) {
    const char *env = getenv("R1_CPU");
    *error_name = NULL;
    if (env && *env) {
        const r1_cpu_kernels *k = r1__cpu_kernels_get(env);
        if (!k) *error_name = env;
        return k;
    }
    static const char *order[] = {"amx", "avx512", "avx2", "neon", "scalar"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const r1_cpu_kernels *k = r1__cpu_kernels_get(order[i]);
        if (k) return k;
    }
    return &r1__cpu_kernels_scalar;
}

/* ---- GPTQ: prepared layout ---- */

static const r1_q4_prepared *prep_of(const r1_qlinear *q) {
    return q->cpu_extra;
}

/* Word (row-block r, column n) in whichever layout q has. */
static inline uint32_t q4_word(const r1_qlinear *q, int r, int n) {
    const r1_q4_prepared *pp = prep_of(q);
    if (!pp) return ((const uint32_t *)q->qweight->data)[(size_t)r * q->N + n];
    int p0 = n / pp->pw * pp->pw, w = q->N - p0 < pp->pw ? q->N - p0 : pp->pw;
    return pp->w[(size_t)p0 * (q->K / 8) + (size_t)r * w + (n - p0)];
}

/* Row i of the (possibly prepared) layout: its input index and its group. */
static inline int row_input(const r1_qlinear *q, int i) {
    const r1_q4_prepared *pp = prep_of(q);
    return pp && pp->perm ? pp->perm[i] : i;
}
static inline int row_group(const r1_qlinear *q, int i) {
    if (prep_of(q) || !q->g_idx) return i / q->G;
    return ((const int32_t *)q->g_idx->data)[i];
}

static inline int q4_zero(const r1_qlinear *q, int g, int n) {
    const uint32_t *qz = q->qzeros->data;
    int zq = (int)((qz[(size_t)g * (q->N / 8) + n / 8] >> (4 * (n % 8))) & 15);
    return q->zeros_v2 ? zq : (zq + 1) & 15;
}

static inline int row_nibble(const r1_qlinear *q, int i, int n) {
    return (int)((q4_word(q, i / 8, n) >> (4 * (i % 8))) & 15);
}

/* Rows sorted by group, stable: perm[i] = input of row i. 0 if some group does
 * not hold exactly G rows (then the checkpoint layout is kept). */
static int sort_rows(const r1_qlinear *q, int32_t *perm) {
    const int32_t *gi = q->g_idx->data;
    int ng = q->n_groups, *fill = calloc((size_t)ng, sizeof(int)), ok = fill != NULL;
    for (int k = 0; ok && k < q->K; k++) ok = gi[k] >= 0 && gi[k] < ng && fill[gi[k]]++ < q->G;
    for (int g = 0; ok && g < ng; g++) ok = fill[g] == q->G, fill[g] = g * q->G;
    for (int k = 0; ok && k < q->K; k++) perm[fill[gi[k]]++] = k;
    free(fill);
    return ok;
}

/* Panel p, row-block r of the repacked matrix (8 inputs of the sorted order). */
static void repack_row(const r1_qlinear *q, const int32_t *perm, uint32_t *dst, int pw, int p,
                       int r) {
    const uint32_t *src = q->qweight->data;
    int N = q->N, n0 = pw * p, w = N - n0 < pw ? N - n0 : pw;
    uint32_t *out = dst + (size_t)n0 * (q->K / 8) + (size_t)r * w;
    if (!perm) {
        memcpy(out, src + (size_t)r * N + n0, (size_t)w * 4);
        return;
    }
    memset(out, 0, (size_t)w * 4);
    for (int j = 0; j < 8; j++) {
        int k = perm[8 * r + j], sh = 4 * (k % 8);
        const uint32_t *row = src + (size_t)(k / 8) * N + n0;
        for (int n = 0; n < w; n++) out[n] |= ((row[n] >> sh) & 15u) << (4 * j);
    }
}

/* madvise over the whole pages inside [p, p+n). DONTNEED on the file mapping
 * gives its pages back: they are re-read from the file if touched again. */
static void madvise_range(const void *p, size_t n, int advice) {
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (e > a) madvise((void *)a, e - a, advice);
}

/* Scales and zeros of each (panel, group) side by side (r1_q4_prepared.meta). */
static void fill_meta(const r1_qlinear *q, uint8_t *meta, int pw) {
    const uint16_t *sc = q->scales->data;
    const uint32_t *qz = q->qzeros->data;
    int panels = (q->N + pw - 1) / pw;
    memset(meta, 0, (size_t)panels * q->n_groups * R1_Q4_META(pw));
    for (int p = 0; p < panels; p++) {
        int n0 = p * pw, w = q->N - n0 < pw ? q->N - n0 : pw;
        for (int g = 0; g < q->n_groups; g++) {
            uint8_t *e = meta + ((size_t)p * q->n_groups + g) * R1_Q4_META(pw);
            memcpy(e, sc + (size_t)g * q->N + n0, (size_t)w * 2);
            memcpy(e + 2 * (size_t)pw, qz + (size_t)g * (q->N / 8) + n0 / 8, (size_t)w / 2);
        }
    }
}

r1_status r1__cpu_q4_prepare(const r1_cpu_kernels *k, r1_qlinear *q, int drop_source,
                             r1_error *err) {
    if (!k->q4_matmul_act || q->cpu_extra || q->G % 8 || q->K % q->G) return R1_OK;
    if (q->act_order && q->K > R1_Q4_GATHER_MAX) return R1_OK; /* see cpu/q4_layout.h */
    int pw = k->panel_cols ? k->panel_cols : 64, panels = (q->N + pw - 1) / pw, rows = q->K / 8;
    size_t wbytes = (size_t)q->K / 8 * q->N * 4, pbytes = q->act_order ? (size_t)q->K * 4 : 0;
    size_t mbytes = k->panel_meta ? (size_t)panels * q->n_groups * R1_Q4_META(pw) : 0;
    size_t bytes = (wbytes + pbytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    r1_q4_prepared *pp = calloc(1, sizeof *pp);
    void *mem = NULL;
    /* the metadata in a block of its own, not after the weights in the 2-MiB pages,
     * where it would often start one more huge page (14b peak RSS 10.17 -> 10.11 GB) */
    if (!pp || posix_memalign(&mem, 2u << 20, bytes) ||
        (mbytes && posix_memalign((void **)&pp->meta, 64, mbytes))) {
        if (pp) free(mem);
        free(pp);
        return r1__err(err, R1_E_NOMEM, "out of memory repacking a %dx%d GPTQ linear (%zu bytes)",
                       q->K, q->N, bytes);
    }
    madvise(mem, bytes, MADV_HUGEPAGE); /* fewer TLB misses while streaming */
    pp->w = mem, pp->bytes = bytes, pp->pw = pw;
    if (q->act_order && q->g_idx) {
        pp->perm = (int32_t *)((char *)mem + wbytes);
        if (!sort_rows(q, pp->perm)) {
            free(mem), free(pp->meta), free(pp);
            return R1_OK; /* uneven groups: the checkpoint layout and the F32 path stay */
        }
    }
    if (mbytes) fill_meta(q, pp->meta, pw);
    if (drop_source) madvise_range(q->qweight->data, wbytes, MADV_WILLNEED); /* read ahead */
#pragma omp parallel for schedule(dynamic, 1)
    /* natural order: blocks of 16 source rows read front to back (the pattern
     * memory streams best); act-order rows gather from anywhere anyway */
    for (int b = 0; b < (rows + 15) / 16; b++)
        for (int r = 16 * b; r < 16 * b + 16 && r < rows; r++)
            for (int p = 0; p < panels; p++) repack_row(q, pp->perm, pp->w, pp->pw, p, r);
    if (drop_source) madvise_range(q->qweight->data, wbytes, MADV_DONTNEED);
    if (drop_source && mbytes) {
        madvise_range(q->scales->data, (size_t)q->n_groups * q->N * 2, MADV_DONTNEED);
        madvise_range(q->qzeros->data, (size_t)q->n_groups * q->N / 2, MADV_DONTNEED);
    }
    q->cpu_extra = pp;
    return R1_OK;
}

void r1__cpu_q4_release(r1_qlinear *q) {
    r1_q4_prepared *pp = q->cpu_extra;
    if (!pp) return;
    free(pp->w);
    free(pp->meta);
    free(pp);
    q->cpu_extra = NULL;
}

/* ---- prepared activations: formats and the portable reference ---- */

size_t r1__q4_act_tail_offset(const r1_qlinear *q, int T, r1_q4_act mode) {
    size_t body = (size_t)T * (size_t)q->K * (mode == R1_Q4_I8X3 ? 3 : mode == R1_Q4_I8 ? 1 : 4);
    return (body + 63) & ~(size_t)63;
}

size_t r1__q4_act_bytes_std(const r1_qlinear *q, int T, r1_q4_act mode) {
    const r1_q4_prepared *pp = prep_of(q);
    if (mode == R1_Q4_F32) return pp && pp->perm ? r1__q4_act_tail_offset(q, T, mode) : 0;
    if ((q->act_order && !pp) || q->G % 8 || q->K % q->G) return (size_t)-1;
    return r1__q4_act_tail_offset(q, T, mode) + 2 * sizeof(float) * (size_t)T * q->n_groups;
}

/* Position of input k inside its 8-block in slot order (0,2,4,6,1,3,5,7). */
static inline int act_slot(int k) {
    int j = k & 7;
    return (k & ~7) + (j >> 1) + ((j & 1) << 2);
}

/* v = a*2^14 + b*2^7 + c with b, c in [-64, 63]; |v| <= 127*2^14 keeps |a| <= 127. */
static inline void digits3(int v, int8_t *a, int8_t *b, int8_t *c) {
    int lo = ((v + 64) & 127) - 64, v1 = (v - lo) / 128, mid = ((v1 + 64) & 127) - 64;
    *c = (int8_t)lo, *b = (int8_t)mid, *a = (int8_t)((v1 - mid) / 128);
}

static void act_prep_unit(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int t, int g,
                          void *xa) {
    int K = q->K, G = q->G, ng = q->n_groups;
    float *tail = (float *)((char *)xa + r1__q4_act_tail_offset(q, T, mode));
    float xs[G], amax = 0;
    for (int i = 0; i < G; i++) {
        xs[i] = x[(size_t)t * K + row_input(q, g * G + i)];
        amax = fmaxf(amax, fabsf(xs[i]));
    }
    if (mode == R1_Q4_F32) {
        memcpy((float *)xa + (size_t)t * K + (size_t)g * G, xs, (size_t)G * sizeof(float));
        return;
    }
    float lim = mode == R1_Q4_I8 ? 127.0f : 127.0f * 16384.0f, id = amax > 0 ? lim / amax : 0.0f;
    int64_t sum = 0;
    for (int i = 0; i < G; i++) {
        int kk = g * G + i, v = (int)nearbyintf(xs[i] * id);
        sum += v;
        if (mode == R1_Q4_I8) {
            ((int8_t *)xa)[(size_t)t * K + act_slot(kk)] = (int8_t)v;
        } else {
            int8_t *blk = (int8_t *)xa + ((size_t)t * (K / 8) + kk / 8) * 24, a, b, c;
            int s = act_slot(kk) & 7;
            digits3(v, &a, &b, &c);
            blk[s] = a, blk[8 + s] = b, blk[16 + s] = c;
        }
    }
    tail[(size_t)t * ng + g] = amax / lim;
    tail[(size_t)(T + t) * ng + g] = mode == R1_Q4_I8 ? amax / lim * (float)sum : (float)sum;
}

static void act_prep_ref(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0, int u1,
                         void *xa) {
    if (mode == R1_Q4_F32 && !r1__q4_act_bytes_std(q, T, mode)) return;
    for (int u = u0; u < u1; u++)
        act_prep_unit(q, x, T, mode, u / q->n_groups, u % q->n_groups, xa);
}

/* sum over the group's rows of nibble * activation digit(s), exact in int64 */
static float act_group_ref(const r1_qlinear *q, const void *xa, int T, r1_q4_act mode, int t, int g,
                           int n) {
    int K = q->K, G = q->G, ng = q->n_groups;
    const float *tail = (const float *)((const char *)xa + r1__q4_act_tail_offset(q, T, mode));
    int64_t acc = 0;
    for (int i = g * G; i < (g + 1) * G; i++) {
        int v;
        if (mode == R1_Q4_I8) {
            v = ((const int8_t *)xa)[(size_t)t * K + act_slot(i)];
        } else {
            const int8_t *blk = (const int8_t *)xa + ((size_t)t * (K / 8) + i / 8) * 24;
            int s = act_slot(i) & 7;
            v = blk[s] * 16384 + blk[8 + s] * 128 + blk[16 + s];
        }
        acc += (int64_t)row_nibble(q, i, n) * v;
    }
    float dx = tail[(size_t)t * ng + g], second = tail[(size_t)(T + t) * ng + g];
    if (mode == R1_Q4_I8) return (float)acc * dx - (float)q4_zero(q, g, n) * second;
    return (float)((double)acc - (double)q4_zero(q, g, n) * second) * dx;
}

static void matmul_act_ref(const r1_qlinear *q, const float *x, const void *xa, int T,
                           r1_q4_act mode, float *y, int n0, int n1) {
    const uint16_t *sc = q->scales->data;
    int K = q->K, N = q->N;
    const float *xin = mode == R1_Q4_F32 && xa ? xa : x;
    for (int t = 0; t < T; t++)
        for (int n = n0; n < n1; n++) {
            double acc = 0;
            if (mode == R1_Q4_F32) {
                for (int i = 0; i < K; i++) {
                    int g = row_group(q, i);
                    float w = r1__f16_to_f32(sc[(size_t)g * N + n]) *
                              (float)(row_nibble(q, i, n) - q4_zero(q, g, n));
                    acc += (double)xin[(size_t)t * K + i] * w;
                }
            } else {
                for (int g = 0; g < q->n_groups; g++)
                    acc += (double)r1__f16_to_f32(sc[(size_t)g * N + n]) *
                           act_group_ref(q, xa, T, mode, t, g, n);
            }
            y[(size_t)t * N + n] = (float)acc;
        }
}

size_t r1__cpu_q4_act_bytes(const r1_cpu_kernels *k, const r1_qlinear *q, int T, r1_q4_act mode) {
    return (k->q4_act_bytes ? k->q4_act_bytes : r1__q4_act_bytes_std)(q, T, mode);
}

void r1__cpu_q4_act_prep(const r1_cpu_kernels *k, const r1_qlinear *q, const float *x, int T,
                         r1_q4_act mode, int u0, int u1, void *xa) {
    (k->q4_act_prep ? k->q4_act_prep : act_prep_ref)(q, x, T, mode, u0, u1, xa);
}

void r1__cpu_q4_matmul_act(const r1_cpu_kernels *k, const r1_qlinear *q, const float *x,
                           const void *xa, int T, r1_q4_act mode, float *y, int n0, int n1) {
    (k->q4_matmul_act ? k->q4_matmul_act : matmul_act_ref)(q, x, xa, T, mode, y, n0, n1);
}

/* ---- 8-bit rows (lm_head) ---- */

static void q8_matmul_ref(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1) {
    int64_t K = w->K, N = w->N;
    for (int64_t n = n0; n < n1; n++) {
        const int8_t *row = w->q + n * K;
        for (int t = 0; t < T; t++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)x[t * K + k] * row[k];
            y[t * N + n] = (float)(acc * w->d[n]);
        }
    }
}

void r1__cpu_q8_matmul(const r1_cpu_kernels *k, const r1_q8_rows *w, const float *x, int T,
                       float *y, int n0, int n1) {
    (k->q8_matmul ? k->q8_matmul : q8_matmul_ref)(w, x, T, y, n0, n1);
}

/* One row: scale = max|w| / 127, round to nearest (ties to even). */
static void q8_row(const r1_tensor *w, int64_t n, int8_t *q, float *d) {
    int64_t K = w->ne[1];
    float amax = 0;
    for (int64_t k = 0; k < K; k++)
        amax = fmaxf(amax, fabsf(r1__get_f(w->data, w->type, n * K + k)));
    float id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t k = 0; k < K; k++)
        q[k] = (int8_t)nearbyintf(r1__get_f(w->data, w->type, n * K + k) * id);
    *d = amax / 127.0f;
}

r1_status r1__cpu_q8_rows_new(const r1_tensor *w, r1_q8_rows **out, r1_error *err) {
    if (w->ndim != 2 || (w->type != R1_F16 && w->type != R1_BF16 && w->type != R1_F32))
        return r1__err(err, R1_E_INVAL, "%s: 8-bit rows need a 2-D F16/BF16/F32 matrix",
                       w->name ? w->name : "tensor");
    int64_t N = w->ne[0], K = w->ne[1];
    r1_q8_rows *r = calloc(1, sizeof *r);
    void *mem = NULL;
    size_t qbytes = ((size_t)(N * K) + 63) & ~(size_t)63;
    size_t bytes =
        (qbytes + (size_t)N * sizeof(float) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    if (!r || posix_memalign(&mem, 2u << 20, bytes)) {
        free(r);
        return r1__err(err, R1_E_NOMEM, "out of memory for the 8-bit copy of %s (%zu bytes)",
                       w->name ? w->name : "tensor", bytes);
    }
    madvise(mem, bytes, MADV_HUGEPAGE); /* streamed every token: 2 MiB pages, as the int4 repack */
    r->N = N, r->K = K, r->q = mem, r->d = (float *)((char *)mem + qbytes);
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t n = 0; n < N; n++) q8_row(w, n, r->q + n * K, r->d + n);
    *out = r;
    return R1_OK;
}

void r1__cpu_q8_rows_free(r1_q8_rows *w) {
    if (!w) return;
    free(w->q);
    free(w);
}
