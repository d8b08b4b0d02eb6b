/* Token sampler: penalties, top-k, temperature, top-p, min-p and a seeded draw.
 *
 * Order of operations for one r1_sampler_sample() call:
 *   1. penalties   repeat penalty (positive logits divided, negative multiplied)
 *                  then presence penalty (subtracted), once per distinct token in
 *                  the last penalty_last_n accepted tokens; applied to a copy
 *   2. greedy      temperature <= 0: argmax of the penalized logits (ties: lowest
 *                  id); no random number is consumed
 *   3. top-k       keep the k largest logits (ties: lowest id)
 *   4. temperature z = (logit - max) / T
 *   5. softmax     e = exp(z); Z = sum of e over the kept set (whole vocabulary
 *                  when top-k is off)
 *   6. top-p       in order of decreasing logit (ties: lowest id) keep the
 *                  shortest prefix whose mass reaches top_p * Z
 *   7. min-p       of those keep tokens with p >= min_p * p_max, i.e. e >= min_p
 *   8. renormalize and draw: one uniform u in [0,1) per call; walk the kept
 *                  tokens in the order of step 6 with a double cumulative sum
 *                  and pick the first whose running sum exceeds u * total.
 *                  With top-k, top-p and min-p all off the walk is over the
 *                  whole vocabulary in id order.
 *
 * Random numbers: xoshiro256** (Blackman and Vigna), its state seeded by four
 * splitmix64 outputs from params.seed; u = (next() >> 11) * 2^-53.
 *
 * Speed (vocabulary 152,064): no full sort per token. One vectorised pass finds
 * the max of each interleaved group of 32 tokens. Without top-k a second pass
 * computes every exp (vectorised; the exact Z needs them all), then only the
 * groups whose max lies within a margin of the overall max are scanned for
 * candidates, and a binary heap over those yields them best-first until the
 * top-p mass is reached; the margin widens, band by band, while the collected
 * mass falls short. With top-k a size-k heap selects the candidates (skipping
 * groups that cannot beat its worst) and only k exps are computed. Every buffer
 * is allocated in r1_sampler_new; nothing is allocated per token. */
#include "error.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Elements per block of the exp pass: each block's sum is added pairwise in
 * float (vectorisable) and kept in double for the walk over the vocabulary. */
#define R1__BLK 256
#define R1__LANES 8
/* The max pass splits each block into R1__LANES interleaved groups: group j of
 * block b holds tokens b * R1__BLK + j + R1__LANES * i. Their maxima come out
 * of plain vertical vector maxima (no horizontal step), and let the argmax,
 * top-k and the candidate collection skip groups without reading them. */
#define R1__NGRP(n) (((n) + R1__BLK - 1) / R1__BLK * R1__LANES)
/* First collection margin in units of z (e^-4 ~ 0.018 of the max's weight),
 * and the factor it grows by while the collected mass is short of top_p. */
#define R1__MARGIN0 4.0f
#define R1__MARGIN_GROWTH 1.5f
/* exp() of anything at or below this is flushed to 0 (float underflow). */
#define R1__ZMIN (-88.0f)

/* The exp and max passes dominate the per-token cost; build AVX2/AVX-512
 * variants picked at load time. All variants do the same IEEE operations (C11
 * mode does not contract to FMA), so results are bit-identical across them. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define R1__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef R1__CLONES
#define R1__CLONES
#endif

typedef struct r1__cand {
    float x;    /* penalized logit */
    float e;    /* exp((x - max) / T) */
    int32_t id; /* token id */
} r1__cand;

struct r1_sampler {
    r1_sampler_params p;
    int n_vocab;
    int greedy;   /* temperature <= 0 (or so small that 1/T overflows) */
    int penalize; /* repeat or presence penalty on, with a window */
    float inv_temp;
    uint64_t rng[4];
    float *work;       /* [n_vocab] penalized copy of the logits (penalties only) */
    float *e;          /* [n_vocab] exp((x - max) / T) */
    float *group_max;  /* [R1__NGRP(n_vocab)] max logit per interleaved group */
    double *block_sum; /* [n_blocks] sum of e per R1__BLK block */
    r1__cand *cand;    /* [n_vocab] candidates; heap, then kept tokens at the end */
    /* Penalty window: ring buffer of the last penalty_last_n accepted ids, the
     * count of each id inside it and the list of distinct ids (with each id's
     * index in the list, for O(1) removal). */
    int32_t *hist;
    int hist_len, hist_head;
    int32_t *count;
    int32_t *distinct;
    int32_t *distinct_pos;
    int n_distinct;
};

/* ---- random numbers ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&seed);
}

static double rng_uniform(uint64_t s[4]) {
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

/* ---- parameters ------------------------------------------------------------ */

void r1_sampler_params_default(r1_sampler_params *p) {
    if (!p) return;
    /* Time alone repeats for calls within one clock tick; a counter and a stack
     * address (ASLR) make such seeds differ. */
    static atomic_uint_fast64_t calls;
    struct timespec ts = {0, 0};
    timespec_get(&ts, TIME_UTC);
    uint64_t mix = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    mix ^= (uint64_t)atomic_fetch_add(&calls, 1) * 0x9e3779b97f4a7c15ull;
    mix ^= (uint64_t)(uintptr_t)&ts;
    *p = (r1_sampler_params){
        .temperature = 0.6f,
        .top_k = 0,
        .top_p = 0.95f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = splitmix64(&mix),
    };
}

static r1_status check_params(const r1_sampler_params *p, int n_vocab, r1_error *err) {
    if (n_vocab <= 0)
        return r1__err(err, R1_E_INVAL, "sampler: n_vocab must be > 0 (got %d)", n_vocab);
    if (isnan(p->temperature) || isinf(p->temperature))
        return r1__err(err, R1_E_INVAL, "sampler: temperature must be finite");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return r1__err(err, R1_E_INVAL, "sampler: top_p must be in (0,1] (got %g)", p->top_p);
    if (isnan(p->min_p) || p->min_p > 1.0f)
        return r1__err(err, R1_E_INVAL, "sampler: min_p must be <= 1 (got %g)", p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return r1__err(err, R1_E_INVAL, "sampler: repeat_penalty must be finite and > 0 (got %g)",
                       p->repeat_penalty);
    if (isnan(p->presence_penalty) || isinf(p->presence_penalty))
        return r1__err(err, R1_E_INVAL, "sampler: presence_penalty must be finite");
    if (p->penalty_last_n < 0)
        return r1__err(err, R1_E_INVAL, "sampler: penalty_last_n must be >= 0 (got %d)",
                       p->penalty_last_n);
    return R1_OK;
}

/* ---- lifetime -------------------------------------------------------------- */

void r1_sampler_free(r1_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->e);
    free(s->group_max);
    free(s->block_sum);
    free(s->cand);
    free(s->hist);
    free(s->count);
    free(s->distinct);
    free(s->distinct_pos);
    free(s);
}

r1_status r1_sampler_new(const r1_sampler_params *p, int n_vocab, r1_sampler **out, r1_error *err) {
    if (out) *out = NULL;
    if (!p || !out) return r1__err(err, R1_E_INVAL, "sampler: params and out must not be NULL");
    r1_status st = check_params(p, n_vocab, err);
    if (st != R1_OK) return st;

    r1_sampler *s = calloc(1, sizeof *s);
    if (!s) return r1__err(err, R1_E_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->inv_temp = p->temperature > 0.0f ? 1.0f / p->temperature : 0.0f;
    s->greedy = !(p->temperature > 0.0f) || isinf(s->inv_temp);
    s->penalize =
        p->penalty_last_n > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f);
    rng_seed(s->rng, p->seed);

    size_t n = (size_t)n_vocab, nb = (n + R1__BLK - 1) / R1__BLK;
    s->e = malloc(n * sizeof *s->e);
    s->group_max = malloc(R1__NGRP(n) * sizeof *s->group_max);
    s->block_sum = malloc(nb * sizeof *s->block_sum);
    s->cand = malloc(n * sizeof *s->cand);
    int ok = s->e && s->group_max && s->block_sum && s->cand;
    if (ok && s->penalize) {
        /* The window never holds more distinct ids than the vocabulary. */
        size_t w = (size_t)p->penalty_last_n, d = w < n ? w : n;
        s->work = malloc(n * sizeof *s->work);
        s->hist = malloc(w * sizeof *s->hist);
        s->count = calloc(n, sizeof *s->count);
        s->distinct = malloc(d * sizeof *s->distinct);
        s->distinct_pos = malloc(n * sizeof *s->distinct_pos);
        ok = s->work && s->hist && s->count && s->distinct && s->distinct_pos;
    }
    if (!ok) {
        r1_sampler_free(s);
        return r1__err(err, R1_E_NOMEM, "sampler: out of memory for n_vocab %d", n_vocab);
    }
    *out = s;
    return R1_OK;
}

/* ---- penalty history ------------------------------------------------------- */

static void count_add(r1_sampler *s, int32_t id) {
    if (s->count[id]++ == 0) {
        s->distinct_pos[id] = s->n_distinct;
        s->distinct[s->n_distinct++] = id;
    }
}

static void count_remove(r1_sampler *s, int32_t id) {
    if (--s->count[id] == 0) {
        int32_t last = s->distinct[--s->n_distinct], at = s->distinct_pos[id];
        s->distinct[at] = last;
        s->distinct_pos[last] = at;
    }
}

/* Ids outside the vocabulary are ignored: there is no logit to penalize. */
void r1_sampler_accept(r1_sampler *s, int32_t id) {
    if (!s || !s->penalize || id < 0 || id >= s->n_vocab) return;
    int cap = s->p.penalty_last_n;
    if (s->hist_len == cap) {
        count_remove(s, s->hist[s->hist_head]);
    } else {
        s->hist_len++;
    }
    s->hist[s->hist_head] = id;
    s->hist_head = (s->hist_head + 1) % cap;
    count_add(s, id);
}

/* Forgets the penalty history; the random stream continues (a new sampler with
 * the same seed is what replays a sequence). */
void r1_sampler_reset(r1_sampler *s) {
    if (!s || !s->penalize) return;
    for (int i = 0; i < s->n_distinct; i++) s->count[s->distinct[i]] = 0;
    s->n_distinct = 0;
    s->hist_len = 0;
    s->hist_head = 0;
}

/* Returns the logits to sample from: the caller's row, or a penalized copy. */
static const float *apply_penalties(r1_sampler *s, const float *logits) {
    if (!s->penalize || s->n_distinct == 0) return logits;
    memcpy(s->work, logits, (size_t)s->n_vocab * sizeof *s->work);
    float rp = s->p.repeat_penalty, pp = s->p.presence_penalty;
    for (int i = 0; i < s->n_distinct; i++) {
        float *v = &s->work[s->distinct[i]];
        if (rp != 1.0f) *v = *v > 0.0f ? *v / rp : *v * rp;
        *v -= pp;
    }
    return s->work;
}

/* ---- vector passes ---------------------------------------------------------- */

/* Group maxima, with GCC/clang vector extensions: GCC does not vectorise a
 * lane-wise max written in plain C. */
typedef float r1__f8 __attribute__((vector_size(R1__LANES * sizeof(float))));
typedef int32_t r1__i8 __attribute__((vector_size(R1__LANES * sizeof(int32_t))));

/* Max of every group into gmax, and the overall max. NaN never wins: it is the
 * new value that is tested (d > acc) against an accumulator that is never NaN. */
R1__CLONES static float group_maxima(const float *restrict x, int n, float *restrict gmax) {
    const float ni = -INFINITY;
    const r1__f8 ninf = {ni, ni, ni, ni, ni, ni, ni, ni};
    r1__f8 all = ninf;
    int nfull = n / R1__BLK;
    for (int b = 0; b < nfull; b++) {
        /* Four accumulators (vectors i, i+1, i+2, i+3) break the dependency chain. */
        r1__f8 acc[4] = {ninf, ninf, ninf, ninf}, d;
        for (int i = 0; i < R1__BLK / R1__LANES; i++) {
            memcpy(&d, x + (size_t)b * R1__BLK + i * R1__LANES, sizeof d);
            r1__i8 k = d > acc[i % 4];
            acc[i % 4] = (r1__f8)((k & (r1__i8)d) | (~k & (r1__i8)acc[i % 4]));
        }
        for (int j = 1; j < 4; j++) { /* acc[j] never holds NaN either */
            r1__i8 k = acc[j] > acc[0];
            acc[0] = (r1__f8)((k & (r1__i8)acc[j]) | (~k & (r1__i8)acc[0]));
        }
        memcpy(gmax + (size_t)b * R1__LANES, &acc[0], sizeof acc[0]);
        r1__i8 k = acc[0] > all;
        all = (r1__f8)((k & (r1__i8)acc[0]) | (~k & (r1__i8)all));
    }
    float m = -INFINITY;
    for (int j = 0; j < R1__LANES; j++) m = all[j] > m ? all[j] : m;
    if (nfull * R1__BLK < n) { /* last, partial block */
        float *g = gmax + (size_t)nfull * R1__LANES;
        for (int j = 0; j < R1__LANES; j++) g[j] = -INFINITY;
        for (int k = nfull * R1__BLK; k < n; k++) {
            float *gj = &g[k % R1__LANES];
            *gj = x[k] > *gj ? x[k] : *gj;
            m = x[k] > m ? x[k] : m;
        }
    }
    return m;
}

/* First index holding the max m (ties: lowest id): the first block with a group
 * reaching m holds it. 0 when nothing equals m (every logit NaN). */
static int32_t first_argmax(const float *x, int n, const float *gmax, float m) {
    int ng = R1__NGRP(n), g = 0;
    while (g < ng && gmax[g] != m) g++;
    if (g == ng) return 0;
    int b = g / R1__LANES * R1__BLK, end = b + R1__BLK < n ? b + R1__BLK : n;
    for (int i = b; i < end; i++)
        if (x[i] == m) return i;
    return 0;
}

/* exp(z) for z in [R1__ZMIN, 0]: Cody-Waite reduction z = k ln2 + r and the
 * Cephes expf polynomial (max relative error ~1.2e-7). k = -127 builds the
 * float 0, which flushes the bottom of the range to 0. */
static inline float exp_clamped(float z) {
    union {
        float f;
        uint32_t u;
    } t, s;
    t.f = z * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds k into the low bits */
    float k = t.f - 12582912.0f;
    float r = z - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    s.u = (t.u - 0x4B400000u + 127u) << 23; /* 2^k; unsigned so garbage cannot overflow */
    return q * s.f;
}

/* z = (x - max) / T clamped to [R1__ZMIN, 0]; NaN and -inf map to R1__ZMIN (weight 0).
 * Written as its own loop: GCC will not if-convert the clamp when it feeds
 * more arithmetic in the same loop under -ftrapping-math. */
static inline float z_of(float x, float m, float inv_t) {
    float z = (x - m) * inv_t;
    return z >= R1__ZMIN ? z : R1__ZMIN;
}

/* e[k] = exp((x[k] - m) * inv_t) for one block of len <= R1__BLK tokens;
 * returns their sum, added pairwise in float (vectorisable, and more accurate
 * than a running sum) with the last eight partial sums added in double. */
__attribute__((always_inline)) static inline double
exp_block(const float *restrict x, int len, float m, float inv_t, float *restrict e) {
    float t[R1__BLK];
    for (int k = 0; k < len; k++) t[k] = z_of(x[k], m, inv_t);
    for (int k = len; k < R1__BLK; k++) t[k] = R1__ZMIN; /* pads with weight 0 */
    for (int k = 0; k < R1__BLK; k++) t[k] = exp_clamped(t[k]);
    for (int k = 0; k < len; k++) e[k] = t[k];
    for (int w = R1__BLK / 2; w >= R1__LANES; w /= 2)
        for (int k = 0; k < w; k++) t[k] += t[k + w];
    double sum = 0.0;
    for (int j = 0; j < R1__LANES; j++) sum += t[j];
    return sum;
}

/* e for the whole row; block totals go to block_sum and their sum is returned. */
R1__CLONES static double exp_row(const float *restrict x, int n, float m, float inv_t,
                                 float *restrict e, double *restrict block_sum) {
    double total = 0.0;
    for (int b = 0; b < n; b += R1__BLK) {
        int len = n - b < R1__BLK ? n - b : R1__BLK;
        total += block_sum[b / R1__BLK] = exp_block(x + b, len, m, inv_t, e + b);
    }
    return total;
}

/* Stores every token with lo <= x < hi in c, reading only the groups whose
 * max reaches lo. Returns the count. */
static int collect_band(const float *x, const float *e, const float *gmax, int n, float lo,
                        float hi, r1__cand *c) {
    int nc = 0, ng = R1__NGRP(n);
    for (int g = 0; g < ng; g++) {
        if (!(gmax[g] >= lo)) continue;
        int b = g / R1__LANES * R1__BLK, end = b + R1__BLK < n ? b + R1__BLK : n;
        for (int k = b + g % R1__LANES; k < end; k += R1__LANES)
            if (x[k] >= lo && x[k] < hi) c[nc++] = (r1__cand){x[k], e[k], k};
    }
    return nc;
}

/* ---- heaps over candidates ---------------------------------------------------- */

/* Total order used everywhere: larger logit first, then lower id. */
static int better(const r1__cand *a, const r1__cand *b) {
    return a->x > b->x || (a->x == b->x && a->id < b->id);
}

/* max_heap: best candidate at the root; otherwise the worst. */
static void sift_down(r1__cand *h, int n, int i, int max_heap) {
    r1__cand v = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && (max_heap ? better(&h[c + 1], &h[c]) : better(&h[c], &h[c + 1]))) c++;
        if (!(max_heap ? better(&h[c], &v) : better(&v, &h[c]))) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static void heapify(r1__cand *h, int n, int max_heap) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(h, n, i, max_heap);
}

/* The k best tokens of x (in heap order) with their e and sum of e. */
static int select_top_k(const float *x, const float *gmax, int n, int k, float m, float inv_t,
                        r1__cand *h, double *z_sum) {
    /* NaN would never leave the heap (no comparison beats it): store it as -inf. */
    for (int i = 0; i < k; i++) h[i] = (r1__cand){x[i] == x[i] ? x[i] : -INFINITY, 0.0f, i};
    heapify(h, k, 0);
    for (int g = 0, ng = R1__NGRP(n); g < ng; g++) {
        /* A group whose max is below the worst kept logit holds no better token. */
        if (!(gmax[g] >= h[0].x)) continue;
        int b = g / R1__LANES * R1__BLK, end = b + R1__BLK < n ? b + R1__BLK : n;
        for (int i = b + g % R1__LANES; i < end; i += R1__LANES) {
            r1__cand v = {x[i], 0.0f, i};
            if (i >= k && better(&v, &h[0])) { /* ids below k are in the heap already */
                h[0] = v;
                sift_down(h, k, 0, 0);
            }
        }
    }
    double sum = 0.0;
    for (int i = 0; i < k; i++) {
        h[i].e = exp_clamped(z_of(h[i].x, m, inv_t));
        sum += h[i].e;
    }
    *z_sum = sum;
    return k;
}

/* Tokens kept so far. They sit at the end of the n_vocab candidate array, best
 * first from c[n_vocab - 1] down; the heap of the band being searched occupies
 * the front (the two never overlap: they hold different tokens). */
typedef struct r1__kept {
    int n;        /* number kept */
    double mass;  /* their sum of e */
    int complete; /* top-p mass reached, or the min-p cut met: search no further */
} r1__kept;

/* Pops the band c[0..nc) best-first onto the kept list until the top-p mass
 * `need` is reached or the next token falls below min_e (steps 6 and 7). */
static void take_band(r1__cand *c, int nc, int n_vocab, double need, float min_e, r1__kept *k) {
    heapify(c, nc, 1);
    for (int h = nc; h > 0 && !k->complete;) {
        r1__cand top = c[0];
        if (k->n > 0 && top.e < min_e) {
            k->complete = 1;
            break;
        }
        c[0] = c[--h];
        sift_down(c, h, 0, 1);
        c[n_vocab - 1 - k->n++] = top;
        k->mass += top.e;
        k->complete = k->mass >= need;
    }
}

static int32_t draw_kept(const r1__cand *c, int n_vocab, const r1__kept *k, double u) {
    double target = u * k->mass, acc = 0.0;
    int32_t last = c[n_vocab - 1].id; /* the max: its weight is 1 */
    for (int j = n_vocab - 1; j >= n_vocab - k->n; j--) {
        acc += c[j].e;
        if (target < acc) return c[j].id;
        if (c[j].e > 0.0f) last = c[j].id;
    }
    return last; /* rounding left the target past the last sum: last weighted token */
}

/* No truncation: walk the vocabulary in id order, whole blocks at a time. */
static int32_t draw_full(const float *e, const double *block_sum, int n, double total, double u) {
    double target = u * total, acc = 0.0;
    int nb = (n + R1__BLK - 1) / R1__BLK, b = 0, last = 0;
    for (; b < nb; b++) {
        if (block_sum[b] > 0.0) last = b;
        if (target < acc + block_sum[b]) break;
        acc += block_sum[b];
    }
    if (b == nb) b = last; /* rounding ran past the total: use the last weighted block */
    int end = (b + 1) * R1__BLK < n ? (b + 1) * R1__BLK : n, pick = b * R1__BLK;
    for (int i = b * R1__BLK; i < end; i++) {
        if (e[i] > 0.0f) pick = i;
        acc += e[i];
        if (target < acc) return i; /* e[i] > 0 here: target >= acc before this block */
    }
    return pick; /* float block sum above the double walk: last weighted token */
}

/* ---- sampling ----------------------------------------------------------------- */

/* Steps 6-8 without top-k. Candidates are gathered in bands of z: first
 * [-R1__MARGIN0, 0], then ever wider bands below it while the kept mass is short
 * of top_p. Every band lies below the previous one, so popping band after band
 * keeps the global best-first order and no token is visited twice. */
static int32_t sample_nucleus(r1_sampler *s, const float *x, float m, double z_sum, double u) {
    int n = s->n_vocab;
    double need = s->p.top_p < 1.0f ? (double)s->p.top_p * z_sum : INFINITY;
    float min_e = s->p.min_p > 0.0f ? s->p.min_p : 0.0f;
    /* Every token min-p can keep has z >= ln(min_p); the slack covers exp rounding. */
    float cover = s->p.min_p > 0.0f ? -logf(s->p.min_p) + 0.01f : INFINITY;
    float margin = need == INFINITY || cover < R1__MARGIN0 ? cover : R1__MARGIN0;
    float hi = INFINITY;
    r1__kept k = {0, 0.0, 0};
    for (;;) {
        /* Past z = -100 every weight is 0 anyway: take all that is left. The
         * few ulps of m taken off keep rounding from dropping a token min-p keeps. */
        float lo =
            margin > 100.0f ? -INFINITY : m - margin / s->inv_temp - 4.0f * FLT_EPSILON * fabsf(m);
        int nc = collect_band(x, s->e, s->group_max, n, lo, hi, s->cand);
        take_band(s->cand, nc, n, need, min_e, &k);
        if (k.complete || margin >= cover || lo == -INFINITY) break;
        hi = lo;
        margin = margin * R1__MARGIN_GROWTH < cover ? margin * R1__MARGIN_GROWTH : cover;
    }
    return draw_kept(s->cand, n, &k, u);
}

int32_t r1_sampler_sample(r1_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    const float *x = apply_penalties(s, logits);
    int n = s->n_vocab;
    float m = group_maxima(x, n, s->group_max);
    if (s->greedy) return first_argmax(x, n, s->group_max, m);

    double u = rng_uniform(s->rng); /* exactly one per non-greedy call */
    if (!isfinite(m)) return first_argmax(x, n, s->group_max, m); /* nothing to normalise */

    if (s->p.top_k > 0 && s->p.top_k < n) {
        double z_sum;
        int nc = select_top_k(x, s->group_max, n, s->p.top_k, m, s->inv_temp, s->cand, &z_sum);
        double need = s->p.top_p < 1.0f ? (double)s->p.top_p * z_sum : INFINITY;
        r1__kept k = {0, 0.0, 0};
        take_band(s->cand, nc, n, need, s->p.min_p > 0.0f ? s->p.min_p : 0.0f, &k);
        return draw_kept(s->cand, n, &k, u);
    }
    double z_sum = exp_row(x, n, m, s->inv_temp, s->e, s->block_sum);
    if (s->p.top_p >= 1.0f && !(s->p.min_p > 0.0f))
        return draw_full(s->e, s->block_sum, n, z_sum, u);
    return sample_nucleus(s, x, m, z_sum, u);
}
