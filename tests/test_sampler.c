/* Sampler tests: greedy, temperature, top-k, top-p, min-p and the penalties
 * checked against exact expected distributions (chi-square over 20,000 seeded
 * draws), reproducibility, reset, parameter errors, the large-vocabulary fast
 * path against a full-sort reference fed the same uniform numbers, and a
 * micro-benchmark (printed, not asserted). */
#include "check.h"
#include "r1run.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_DRAWS 20000
#define BIG_VOCAB 152064
#define MAX_SMALL 16

/* ---- reference PRNG, as documented in core/sampler.c ------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static rng rng_new(uint64_t seed) {
    rng r;
    for (int i = 0; i < 4; i++) r.s[i] = splitmix64(&seed);
    return r;
}

static double rng_uniform(rng *r) {
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_normal(rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* ---- helpers ------------------------------------------------------------------ */

static r1_sampler_params base_params(float temperature, uint64_t seed) {
    r1_sampler_params p;
    r1_sampler_params_default(&p);
    p.temperature = temperature;
    p.top_p = 1.0f;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.seed = seed;
    return p;
}

static r1_sampler *make(const r1_sampler_params *p, int n_vocab) {
    r1_sampler *s = NULL;
    r1_error err = {0};
    r1_status st = r1_sampler_new(p, n_vocab, &s, &err);
    CHECK_MSG(st == R1_OK && s, "r1_sampler_new: %d %s", st, err.msg);
    return s;
}

/* softmax(l / T) into p (double). */
static void softmax(const double *l, int n, double t, double *p) {
    double m = l[0], z = 0.0;
    for (int i = 1; i < n; i++) m = l[i] > m ? l[i] : m;
    for (int i = 0; i < n; i++) z += p[i] = exp((l[i] - m) / t);
    for (int i = 0; i < n; i++) p[i] /= z;
}

/* Zeroes the tokens outside `keep` and renormalizes. */
static void restrict_to(double *p, int n, const int *keep) {
    double z = 0.0;
    for (int i = 0; i < n; i++) z += p[i] = keep[i] ? p[i] : 0.0;
    for (int i = 0; i < n; i++) p[i] /= z;
}

/* Upper critical value of chi-square with df degrees of freedom at normal
 * quantile zq (Wilson-Hilferty); zq = 4.5 is a tail of ~3e-6. */
static double chi2_crit(int df, double zq) {
    double a = 2.0 / (9.0 * df), c = 1.0 - a + zq * sqrt(a);
    return df * c * c * c;
}

/* Draws N_DRAWS tokens (after feeding `hist`) and checks them against expected
 * probabilities: zero-probability tokens never drawn, chi-square below the
 * critical value, every frequency within 5 sigma. */
static void check_distribution(const char *what, const r1_sampler_params *p, const float *logits,
                               int n, const int32_t *hist, int n_hist, const double *expect) {
    r1_sampler *s = make(p, n);
    if (!s) return;
    for (int i = 0; i < n_hist; i++) r1_sampler_accept(s, hist[i]);
    int count[MAX_SMALL] = {0};
    for (int d = 0; d < N_DRAWS; d++) {
        int32_t id = r1_sampler_sample(s, logits);
        CHECK_MSG(id >= 0 && id < n, "%s: id %d", what, (int)id);
        if (id >= 0 && id < n) count[id]++;
    }
    double chi2 = 0.0;
    int df = -1;
    for (int i = 0; i < n; i++) {
        double e = expect[i] * N_DRAWS, sd = sqrt(N_DRAWS * expect[i] * (1.0 - expect[i]));
        if (expect[i] == 0.0) {
            CHECK_MSG(count[i] == 0, "%s: token %d has p=0 but was drawn %d times", what, i,
                      count[i]);
            continue;
        }
        df++;
        chi2 += (count[i] - e) * (count[i] - e) / e;
        CHECK_MSG(fabs(count[i] - e) <= 5.0 * sd + 1.0, "%s: token %d: %d draws, expected %.1f",
                  what, i, count[i], e);
    }
    if (df > 0) {
        double crit = chi2_crit(df, 4.5);
        CHECK_MSG(chi2 < crit, "%s: chi2 %.2f >= %.2f (df %d)", what, chi2, crit, df);
        printf("  %-28s chi2 %6.2f (df %d, limit %.2f)\n", what, chi2, df, crit);
    }
    r1_sampler_free(s);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_defaults(void) {
    r1_sampler_params a, b;
    r1_sampler_params_default(&a);
    r1_sampler_params_default(&b);
    CHECK(a.temperature == 0.6f);
    CHECK(a.top_p == 0.95f);
    CHECK(a.top_k == 0);
    CHECK(a.min_p == 0.0f);
    CHECK(a.repeat_penalty == 1.0f);
    CHECK(a.presence_penalty == 0.0f);
    CHECK(a.penalty_last_n == 64);
    CHECK_MSG(a.seed != b.seed, "two default seeds are equal: %llu", (unsigned long long)a.seed);
    r1_sampler_params_default(NULL); /* tolerated */
}

static void expect_inval(const char *what, const r1_sampler_params *p, int n_vocab) {
    r1_sampler *s = (r1_sampler *)&s; /* must be reset to NULL */
    r1_error err = {0};
    r1_status st = r1_sampler_new(p, n_vocab, &s, &err);
    CHECK_MSG(st == R1_E_INVAL, "%s: status %d", what, st);
    CHECK_MSG(err.code == R1_E_INVAL, "%s: err.code %d", what, err.code);
    CHECK_MSG(strstr(err.msg, "sampler") != NULL, "%s: message '%s'", what, err.msg);
    CHECK_MSG(s == NULL, "%s: out not cleared", what);
}

static void test_invalid(void) {
    r1_sampler_params ok = base_params(1.0f, 1), p;
    expect_inval("n_vocab 0", &ok, 0);
    expect_inval("n_vocab -5", &ok, -5);
    p = ok, p.top_p = 0.0f;
    expect_inval("top_p 0", &p, 10);
    p = ok, p.top_p = -0.5f;
    expect_inval("top_p < 0", &p, 10);
    p = ok, p.top_p = 1.5f;
    expect_inval("top_p > 1", &p, 10);
    p = ok, p.top_p = NAN;
    expect_inval("top_p nan", &p, 10);
    p = ok, p.temperature = NAN;
    expect_inval("temperature nan", &p, 10);
    p = ok, p.temperature = INFINITY;
    expect_inval("temperature inf", &p, 10);
    p = ok, p.min_p = 1.5f;
    expect_inval("min_p > 1", &p, 10);
    p = ok, p.min_p = NAN;
    expect_inval("min_p nan", &p, 10);
    p = ok, p.repeat_penalty = 0.0f;
    expect_inval("repeat_penalty 0", &p, 10);
    p = ok, p.repeat_penalty = -1.0f;
    expect_inval("repeat_penalty < 0", &p, 10);
    p = ok, p.repeat_penalty = INFINITY;
    expect_inval("repeat_penalty inf", &p, 10);
    p = ok, p.presence_penalty = NAN;
    expect_inval("presence nan", &p, 10);
    p = ok, p.penalty_last_n = -1;
    expect_inval("penalty_last_n < 0", &p, 10);

    r1_sampler *s = NULL;
    r1_error err = {0};
    CHECK(r1_sampler_new(NULL, 10, &s, &err) == R1_E_INVAL && s == NULL);
    CHECK(r1_sampler_new(&ok, 10, NULL, &err) == R1_E_INVAL);
    CHECK(r1_sampler_new(&ok, 10, &s, NULL) == R1_OK); /* err is optional */
    r1_sampler_free(s);
    r1_sampler_free(NULL);

    /* Documented "off" values are accepted. */
    p = ok, p.top_k = -3, p.min_p = -1.0f, p.top_p = 1.0f, p.penalty_last_n = 0;
    s = make(&p, 10);
    r1_sampler_free(s);
    CHECK(r1_sampler_sample(NULL, (const float[1]){0}) == -1);
}

static void test_greedy(void) {
    const float l[6] = {0.5f, 2.0f, -1.0f, 3.5f, 3.5f, 1.0f};
    float t[] = {0.0f, -1.0f};
    for (int i = 0; i < 2; i++) {
        r1_sampler_params p = base_params(t[i], 7);
        p.top_p = 0.5f, p.top_k = 2, p.min_p = 0.3f; /* ignored when greedy */
        r1_sampler *s = make(&p, 6);
        for (int k = 0; k < 5; k++) CHECK(r1_sampler_sample(s, l) == 3); /* tie 3/4: lowest */
        r1_sampler_free(s);
    }
    /* -inf and NaN entries never win. */
    const float m[4] = {-INFINITY, NAN, -2.0f, -INFINITY};
    r1_sampler_params p = base_params(0.0f, 7);
    r1_sampler *s = make(&p, 4);
    CHECK(r1_sampler_sample(s, m) == 2);
    r1_sampler_free(s);

    /* top-k = 1 equals greedy on random large rows, whatever the temperature. */
    rng g = rng_new(99);
    float *row = malloc(BIG_VOCAB * sizeof *row);
    r1_sampler_params pk = base_params(1.3f, 5), pg = base_params(0.0f, 5);
    pk.top_k = 1;
    r1_sampler *sk = make(&pk, BIG_VOCAB), *sg = make(&pg, BIG_VOCAB);
    int agree = 0;
    for (int r = 0; r < 20; r++) {
        float best = -INFINITY;
        int arg = 0;
        for (int i = 0; i < BIG_VOCAB; i++) {
            row[i] = (float)(3.0 * rng_normal(&g));
            if (row[i] > best) best = row[i], arg = i;
        }
        int32_t a = r1_sampler_sample(sk, row), b = r1_sampler_sample(sg, row);
        agree += a == b && a == arg;
    }
    CHECK_MSG(agree == 20, "top_k=1 vs greedy agree on %d of 20 rows", agree);
    r1_sampler_free(sk);
    r1_sampler_free(sg);
    free(row);
}

/* p = {0.4, 0.3, 0.15, 0.1, 0.05} at T = 1. */
static const double P5[5] = {0.4, 0.3, 0.15, 0.1, 0.05};

static void logits_of(const double *p, int n, float *l, double *ld) {
    for (int i = 0; i < n; i++) {
        l[i] = (float)log(p[i]);
        ld[i] = l[i]; /* expected values use the float logits */
    }
}

static void test_temperature(void) {
    const float l[6] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    double ld[6], e[6];
    for (int i = 0; i < 6; i++) ld[i] = l[i];
    float ts[] = {0.7f, 1.0f, 2.5f};
    for (int k = 0; k < 3; k++) {
        r1_sampler_params p = base_params(ts[k], 1000 + k);
        softmax(ld, 6, ts[k], e);
        char what[64];
        snprintf(what, sizeof what, "temperature %.1f", ts[k]);
        check_distribution(what, &p, l, 6, NULL, 0, e);
    }
}

static void test_top_k(void) {
    const float l[8] = {0.3f, 1.2f, -0.4f, 0.9f, 1.5f, 0.0f, 0.9f, -2.0f};
    double ld[8], e[8];
    for (int i = 0; i < 8; i++) ld[i] = l[i];
    /* k = 3: {4, 1, 3}; 3 and 6 tie at 0.9 so the lower id (3) is kept. */
    r1_sampler_params p = base_params(1.3f, 11);
    p.top_k = 3;
    softmax(ld, 8, 1.3, e);
    restrict_to(e, 8, (const int[8]){0, 1, 0, 1, 1, 0, 0, 0});
    check_distribution("top-k 3 (tie at boundary)", &p, l, 8, NULL, 0, e);
    p.top_k = 5, p.temperature = 0.8f;
    softmax(ld, 8, 0.8, e);
    restrict_to(e, 8, (const int[8]){1, 1, 0, 1, 1, 0, 1, 0});
    check_distribution("top-k 5", &p, l, 8, NULL, 0, e);
    p.top_k = 8; /* == n_vocab: off */
    softmax(ld, 8, 0.8, e);
    check_distribution("top-k = n_vocab", &p, l, 8, NULL, 0, e);
}

static void test_top_p(void) {
    float l[5];
    double ld[5], e[5];
    logits_of(P5, 5, l, ld);
    struct {
        float top_p;
        int keep[5];
    } cases[] = {
        {0.3f, {1, 0, 0, 0, 0}},  /* 0.4 already >= 0.3 */
        {0.65f, {1, 1, 0, 0, 0}}, /* 0.7 */
        {0.75f, {1, 1, 1, 0, 0}}, /* 0.85 */
        {0.9f, {1, 1, 1, 1, 0}},  /* 0.95 */
        {0.97f, {1, 1, 1, 1, 1}},
    };
    for (int c = 0; c < 5; c++) {
        r1_sampler_params p = base_params(1.0f, 20 + c);
        p.top_p = cases[c].top_p;
        softmax(ld, 5, 1.0, e);
        restrict_to(e, 5, cases[c].keep);
        char what[64];
        snprintf(what, sizeof what, "top-p %.2f", cases[c].top_p);
        check_distribution(what, &p, l, 5, NULL, 0, e);
    }
    /* Temperature applies before top-p: at T = 0.5, p ~ {0.552, 0.310, 0.078, 0.034, 0.009}. */
    r1_sampler_params p = base_params(0.5f, 31);
    p.top_p = 0.85f;
    softmax(ld, 5, 0.5, e);
    restrict_to(e, 5, (const int[5]){1, 1, 0, 0, 0});
    check_distribution("top-p 0.85 at T 0.5", &p, l, 5, NULL, 0, e);
    /* top-k then top-p over the renormalized top 3 {0.471, 0.353, 0.176}: 0.85 needs all
     * three (0.824 < 0.85) although over all five tokens two would reach 0.65. */
    p = base_params(1.0f, 32);
    p.top_k = 3, p.top_p = 0.85f;
    softmax(ld, 5, 1.0, e);
    restrict_to(e, 5, (const int[5]){1, 1, 1, 0, 0});
    check_distribution("top-k 3 + top-p 0.85", &p, l, 5, NULL, 0, e);
}

static void test_min_p(void) {
    float l[5];
    double ld[5], e[5];
    logits_of(P5, 5, l, ld);
    r1_sampler_params p = base_params(1.0f, 40);
    p.min_p = 0.3f; /* keep p >= 0.12 */
    softmax(ld, 5, 1.0, e);
    restrict_to(e, 5, (const int[5]){1, 1, 1, 0, 0});
    check_distribution("min-p 0.3", &p, l, 5, NULL, 0, e);
    p.min_p = 0.2f; /* keep p >= 0.08 */
    softmax(ld, 5, 1.0, e);
    restrict_to(e, 5, (const int[5]){1, 1, 1, 1, 0});
    check_distribution("min-p 0.2", &p, l, 5, NULL, 0, e);
    /* top-p 0.9 keeps 4, then min-p 0.3 cuts to 3. */
    p.min_p = 0.3f, p.top_p = 0.9f;
    softmax(ld, 5, 1.0, e);
    restrict_to(e, 5, (const int[5]){1, 1, 1, 0, 0});
    check_distribution("top-p 0.9 + min-p 0.3", &p, l, 5, NULL, 0, e);
}

static void test_penalties(void) {
    const float l[6] = {2.0f, 1.0f, 0.5f, -1.0f, -0.5f, 0.25f};
    double e[6];
    /* Repeat 1.5 on {0, 3} (0 seen twice, penalized once): 2 -> 1.333, -1 -> -1.5. */
    {
        r1_sampler_params p = base_params(1.0f, 50);
        p.repeat_penalty = 1.5f;
        const int32_t h[] = {0, 3, 0};
        double pl[6] = {2.0 / 1.5, 1.0, 0.5, -1.5, -0.5, 0.25};
        softmax(pl, 6, 1.0, e);
        check_distribution("repeat penalty 1.5", &p, l, 6, h, 3, e);
    }
    /* Presence 0.8 on {1, 2}, subtracted once although 1 appears three times. */
    {
        r1_sampler_params p = base_params(1.0f, 51);
        p.presence_penalty = 0.8f;
        const int32_t h[] = {1, 1, 2, 1};
        double pl[6] = {2.0, 1.0 - 0.8, 0.5 - 0.8, -1.0, -0.5, 0.25};
        softmax(pl, 6, 1.0, e);
        check_distribution("presence penalty 0.8", &p, l, 6, h, 4, e);
    }
    /* Both, at T = 0.7: repeat first, then presence. */
    {
        r1_sampler_params p = base_params(0.7f, 52);
        p.repeat_penalty = 1.3f, p.presence_penalty = 0.4f;
        const int32_t h[] = {0, 4};
        double pl[6] = {2.0 / 1.3 - 0.4, 1.0, 0.5, -1.0, -0.5 * 1.3 - 0.4, 0.25};
        softmax(pl, 6, 0.7, e);
        check_distribution("repeat 1.3 + presence 0.4", &p, l, 6, h, 2, e);
    }
    /* Window of 2: token 0 (oldest) has left it; ids outside the vocab are ignored. */
    {
        r1_sampler_params p = base_params(1.0f, 53);
        p.presence_penalty = 1.0f, p.penalty_last_n = 2;
        const int32_t h[] = {0, 1, -4, 2, 99};
        double pl[6] = {2.0, 0.0, -0.5, -1.0, -0.5, 0.25};
        softmax(pl, 6, 1.0, e);
        check_distribution("presence, window 2", &p, l, 6, h, 5, e);
    }
    /* Greedy sees penalties: 3.0 / 1.1 = 2.727 < 2.9. */
    {
        const float g[2] = {3.0f, 2.9f};
        r1_sampler_params p = base_params(0.0f, 54);
        p.repeat_penalty = 1.1f;
        r1_sampler *s = make(&p, 2);
        CHECK(r1_sampler_sample(s, g) == 0);
        r1_sampler_accept(s, 0);
        CHECK(r1_sampler_sample(s, g) == 1);
        for (int i = 0; i < 70; i++) r1_sampler_accept(s, 1); /* 0 leaves the 64 window */
        CHECK(r1_sampler_sample(s, g) == 0);
        r1_sampler_reset(s);
        r1_sampler_accept(s, 0);
        CHECK(r1_sampler_sample(s, g) == 1);
        r1_sampler_reset(s); /* clears the history */
        CHECK(r1_sampler_sample(s, g) == 0);
        CHECK(g[0] == 3.0f); /* logits are not modified */
        r1_sampler_free(s);
    }
    /* Reset also restores the unpenalized distribution when sampling. */
    {
        r1_sampler_params p = base_params(1.0f, 55);
        p.repeat_penalty = 3.0f;
        r1_sampler *s = make(&p, 6);
        for (int i = 0; i < 6; i++) r1_sampler_accept(s, i);
        r1_sampler_reset(s);
        int c0 = 0;
        for (int d = 0; d < N_DRAWS; d++) c0 += r1_sampler_sample(s, l) == 0;
        double pl[6];
        for (int i = 0; i < 6; i++) pl[i] = l[i];
        softmax(pl, 6, 1.0, e);
        double sd = sqrt(N_DRAWS * e[0] * (1 - e[0]));
        CHECK_MSG(fabs(c0 - e[0] * N_DRAWS) < 5 * sd, "after reset: %d draws of 0, expected %.0f",
                  c0, e[0] * N_DRAWS);
        r1_sampler_free(s);
    }
}

/* NaN and -inf logits carry no weight; +inf takes all of it. */
static void test_nonfinite(void) {
    const float l[6] = {NAN, 1.0f, -INFINITY, 0.0f, NAN, -INFINITY};
    double e[6] = {0, exp(1.0) / (exp(1.0) + 1.0), 0, 1.0 / (exp(1.0) + 1.0), 0, 0};
    r1_sampler_params p = base_params(1.0f, 60);
    check_distribution("NaN and -inf logits", &p, l, 6, NULL, 0, e);
    p.top_p = 0.99f, p.min_p = 0.01f;
    check_distribution("NaN and -inf, top-p + min-p", &p, l, 6, NULL, 0, e);
    p = base_params(1.0f, 61), p.top_k = 4;
    check_distribution("NaN and -inf, top-k 4", &p, l, 6, NULL, 0, e);

    const float inf[4] = {1.0f, INFINITY, 2.0f, INFINITY};
    const float none[3] = {-INFINITY, NAN, -INFINITY};
    const float one[1] = {-3.0f};
    p = base_params(0.8f, 62);
    r1_sampler *s = make(&p, 4), *s3 = make(&p, 3), *s1 = make(&p, 1);
    for (int i = 0; i < 10; i++) {
        CHECK(r1_sampler_sample(s, inf) == 1);
        CHECK(r1_sampler_sample(s3, none) == 0); /* no weight anywhere: lowest id */
        CHECK(r1_sampler_sample(s1, one) == 0);
    }
    r1_sampler_free(s);
    r1_sampler_free(s3);
    r1_sampler_free(s1);

    /* Top-k with NaN in the first k slots and fewer finite logits than k. */
    const float few[5] = {NAN, -INFINITY, 2.0f, -INFINITY, NAN};
    for (int k = 1; k <= 4; k++) {
        p = base_params(1.0f, 63 + k), p.top_k = k;
        r1_sampler *sk = make(&p, 5);
        int ok = 0;
        for (int i = 0; i < 200; i++) ok += r1_sampler_sample(sk, few) == 2;
        CHECK_MSG(ok == 200, "top-k %d over NaN/-inf: %d of 200 draws picked the finite token", k,
                  ok);
        r1_sampler_free(sk);
    }
}

static void sequence(uint64_t seed, const float *l, int n, int32_t *out, int len) {
    r1_sampler_params p = base_params(1.0f, seed);
    p.top_p = 0.97f;
    r1_sampler *s = make(&p, n);
    for (int i = 0; i < len; i++) out[i] = s ? r1_sampler_sample(s, l) : -1;
    r1_sampler_free(s);
}

static void test_reproducible(void) {
    const float l[6] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 2.0f};
    int32_t a[500], b[500], c[500];
    sequence(12345, l, 6, a, 500);
    sequence(12345, l, 6, b, 500);
    sequence(12346, l, 6, c, 500);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int diff = 0;
    for (int i = 0; i < 500; i++) diff += a[i] != c[i];
    CHECK_MSG(diff > 100, "seeds 12345 and 12346 differ at only %d of 500 draws", diff);
    /* Reset keeps the random stream running (only the history is cleared). */
    r1_sampler_params p = base_params(1.0f, 12345);
    p.top_p = 0.97f;
    r1_sampler *s = make(&p, 6);
    for (int i = 0; i < 250; i++) b[i] = r1_sampler_sample(s, l);
    r1_sampler_reset(s);
    for (int i = 250; i < 500; i++) b[i] = r1_sampler_sample(s, l);
    CHECK(memcmp(a, b, sizeof a) == 0);
    r1_sampler_free(s);
}

/* ---- large vocabulary: fast path vs a full-sort reference --------------------- */

typedef struct ref_item {
    float x;
    int32_t id;
} ref_item;

static int ref_cmp(const void *pa, const void *pb) {
    const ref_item *a = pa, *b = pb;
    if (a->x != b->x) return a->x > b->x ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The documented pipeline the slow way: penalties, full sort, libm expf,
 * double sums. `u` is the uniform number the sampler draws for this call. */
static int32_t ref_sample(const r1_sampler_params *p, const float *logits, int n,
                          const int32_t *hist, int n_hist, double u, float *x, ref_item *it) {
    memcpy(x, logits, (size_t)n * sizeof *x);
    int from = n_hist > p->penalty_last_n ? n_hist - p->penalty_last_n : 0;
    for (int i = from; i < n_hist; i++) {
        int dup = 0;
        for (int j = from; j < i; j++) dup |= hist[j] == hist[i];
        if (dup) continue;
        float *v = &x[hist[i]];
        if (p->repeat_penalty != 1.0f)
            *v = *v > 0 ? *v / p->repeat_penalty : *v * p->repeat_penalty;
        *v -= p->presence_penalty;
    }
    float m = -INFINITY, inv_t = 1.0f / p->temperature;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (p->top_p >= 1.0f && p->min_p <= 0.0f && (p->top_k <= 0 || p->top_k >= n)) {
        double z = 0.0, acc = 0.0;
        for (int i = 0; i < n; i++) z += expf((x[i] - m) * inv_t);
        for (int i = 0; i < n; i++) {
            acc += expf((x[i] - m) * inv_t);
            if (u * z < acc) return i;
        }
        return n - 1;
    }
    for (int i = 0; i < n; i++) it[i] = (ref_item){x[i], i};
    qsort(it, (size_t)n, sizeof *it, ref_cmp);
    int len = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    double z = 0.0, mass = 0.0;
    for (int i = 0; i < len; i++) z += expf((it[i].x - m) * inv_t);
    double need = p->top_p < 1.0f ? p->top_p * z : INFINITY;
    int kept = 0;
    for (; kept < len; kept++) {
        float e = expf((it[kept].x - m) * inv_t);
        if (kept > 0 && e < p->min_p) break;
        mass += e;
        if (mass >= need) {
            kept++;
            break;
        }
    }
    double acc = 0.0;
    for (int i = 0; i < kept; i++) {
        acc += expf((it[i].x - m) * inv_t);
        if (u * mass < acc) return it[i].id;
    }
    return it[kept - 1].id;
}

typedef struct big_case {
    const char *name;
    int n; /* vocabulary size */
    float temperature, top_p, min_p, repeat, presence;
    int top_k, spike, mask, rows; /* mask: ~30% of the logits -inf */
} big_case;

static void test_large_vocab(void) {
    const big_case cases[] = {
        {"default T0.6 top-p0.95", BIG_VOCAB, 0.6f, 0.95f, 0, 1, 0, 0, 0, 0, 40},
        {"T1.0 top-p0.9 min-p0.02", BIG_VOCAB, 1.0f, 0.9f, 0.02f, 1, 0, 0, 0, 0, 20},
        {"T1.5 top-p0.99", BIG_VOCAB, 1.5f, 0.99f, 0, 1, 0, 0, 0, 0, 20},
        {"spike: widening, top-p0.9", BIG_VOCAB, 1.0f, 0.9f, 0, 1, 0, 0, 1, 0, 10},
        {"min-p 0.05 only", BIG_VOCAB, 0.7f, 1.0f, 0.05f, 1, 0, 0, 0, 0, 20},
        {"top-k40 top-p0.9", BIG_VOCAB, 0.8f, 0.9f, 0, 1, 0, 40, 0, 0, 20},
        {"penalties + top-p0.95", BIG_VOCAB, 0.6f, 0.95f, 0, 1.3f, 0.5f, 0, 0, 0, 20},
        {"no truncation, id order", BIG_VOCAB, 1.0f, 1.0f, 0, 1, 0, 0, 0, 0, 15},
        /* A vocabulary that is no multiple of the group or block sizes, and -inf masks. */
        {"n=100003 T0.6 top-p0.95", 100003, 0.6f, 0.95f, 0, 1, 0, 0, 0, 0, 20},
        {"n=100003 masked top-p0.9", 100003, 0.8f, 0.9f, 0, 1, 0, 0, 0, 1, 20},
        {"n=100003 top-k1000 masked", 100003, 0.8f, 0.95f, 0, 1, 0, 1000, 0, 1, 10},
        {"n=100003 no truncation", 100003, 1.0f, 1.0f, 0, 1, 0, 0, 0, 1, 10},
        {"n=100003 min-p0.1 spike", 100003, 1.0f, 1.0f, 0.1f, 1, 0, 0, 1, 0, 10},
    };
    float *row = malloc(BIG_VOCAB * sizeof *row), *tmp = malloc(BIG_VOCAB * sizeof *tmp);
    ref_item *it = malloc(BIG_VOCAB * sizeof *it);
    rng g = rng_new(2024);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const big_case *bc = &cases[c];
        r1_sampler_params p = base_params(bc->temperature, 777 + c);
        p.top_p = bc->top_p, p.min_p = bc->min_p, p.top_k = bc->top_k;
        p.repeat_penalty = bc->repeat, p.presence_penalty = bc->presence;
        int n = bc->n;
        r1_sampler *s = make(&p, n);
        if (!s) continue;
        rng u = rng_new(p.seed); /* the sampler's own stream */
        int32_t hist[100];
        for (int i = 0; i < 100; i++) {
            /* Ids near the top of a row make the penalties matter. */
            hist[i] = (int32_t)(rng_next(&g) % (uint64_t)(i < 50 ? 64 : n));
            r1_sampler_accept(s, hist[i]);
        }
        int same = 0;
        for (int r = 0; r < bc->rows; r++) {
            for (int i = 0; i < n; i++) {
                row[i] = (float)((bc->spike ? 1.0 : 3.0) * rng_normal(&g));
                if (bc->mask && (rng_next(&g) % 10 < 3 || i < 40)) row[i] = -INFINITY;
            }
            if (bc->spike)
                row[r * 97] = 12.0f;
            else
                for (int i = 0; i < 64; i++) row[i] += 6.0f; /* the penalized ids compete */
            double uu = rng_uniform(&u);
            int32_t fast = r1_sampler_sample(s, row);
            int32_t ref = ref_sample(&p, row, n, hist, 100, uu, tmp, it);
            same += fast == ref;
            if (fast != ref)
                fprintf(stderr, "  %s row %d: fast %d ref %d (u %.17g)\n", bc->name, r, (int)fast,
                        (int)ref, uu);
        }
        CHECK_MSG(same == bc->rows, "%s: %d of %d rows agree", bc->name, same, bc->rows);
        printf("  large vocab %-30s %d/%d rows identical\n", bc->name, same, bc->rows);
        r1_sampler_free(s);
    }
    free(row);
    free(tmp);
    free(it);
}

/* ---- micro-benchmark (printed only) ---------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Prints the best and the mean time per sample over batches of 10 (the best
 * is the one to trust on a machine shared with other jobs). */
static void bench_one(const char *name, const r1_sampler_params *p, float *rows, int n_rows) {
    r1_sampler *s = make(p, BIG_VOCAB);
    if (!s) return;
    for (int i = 0; i < 64; i++) r1_sampler_accept(s, i * 1000);
    unsigned sink = 0;
    for (int i = 0; i < 5; i++)
        sink += (unsigned)r1_sampler_sample(s, rows + (size_t)(i % n_rows) * BIG_VOCAB);
    int iters = 0;
    double t0 = now_s(), t, best = INFINITY;
    do {
        double tb = now_s();
        for (int i = 0; i < 10; i++, iters++)
            sink += (unsigned)r1_sampler_sample(s, rows + (size_t)(iters % n_rows) * BIG_VOCAB);
        tb = (now_s() - tb) / 10;
        best = tb < best ? tb : best;
        t = now_s() - t0;
    } while (t < 0.3);
    printf("  bench n_vocab=%d %-38s best %7.1f us/sample, mean %7.1f (%d samples, sink %u)\n",
           BIG_VOCAB, name, best * 1e6, t / iters * 1e6, iters, sink % 10);
    r1_sampler_free(s);
}

static void bench(void) {
    enum { N_ROWS = 8 };
    float *rows = malloc((size_t)N_ROWS * BIG_VOCAB * sizeof *rows);
    rng g = rng_new(31337);
    for (size_t i = 0; i < (size_t)N_ROWS * BIG_VOCAB; i++) rows[i] = (float)(3.0 * rng_normal(&g));
    r1_sampler_params p;
    r1_sampler_params_default(&p);
    bench_one("default (T0.6 top-p0.95), 1 hot row", &p, rows, 1);
    bench_one("default (T0.6 top-p0.95), 8 rows", &p, rows, N_ROWS);
    r1_sampler_params q = p;
    q.repeat_penalty = 1.1f, q.presence_penalty = 0.2f;
    bench_one("default + penalties", &q, rows, N_ROWS);
    q = p, q.top_k = 40;
    bench_one("top-k 40 + top-p0.95", &q, rows, N_ROWS);
    q = p, q.top_p = 1.0f;
    bench_one("T0.6, no truncation", &q, rows, N_ROWS);
    q = p, q.temperature = 0.0f;
    bench_one("greedy", &q, rows, N_ROWS);
    free(rows);
}

int main(void) {
    test_defaults();
    test_invalid();
    test_greedy();
    test_temperature();
    test_top_k();
    test_top_p();
    test_min_p();
    test_penalties();
    test_nonfinite();
    test_reproducible();
    test_large_vocab();
    bench();
    return r1t_finish("test_sampler");
}
