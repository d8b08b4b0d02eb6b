/* Deterministic element values of r1-mkmodel checkpoints: see mkgen.h for the rules. */
#include "mkgen.h"

#include <math.h>
#include <string.h>

#define GAMMA 0x9e3779b97f4a7c15ull

/* RMS of (q - zero): q - 8 takes -7..7 (0 twice as often), E = 17.5; asym adds the zero's own
 * spread, which has the same shape. */
#define SIGMA_SYM 4.18330013f  /* sqrt(17.5) */
#define SIGMA_ASYM 5.91607978f /* sqrt(35) */
#define BIAS_AMP 0.05f
#define LOGIT_STD 2.0f

/* splitmix64's output function: a bijective 64-bit mixer. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t mkgen_key(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: cheap and stable across platforms */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return mix64(h ^ mix64(seed + GAMMA));
}

uint64_t mkgen_rand(uint64_t key, uint64_t i) {
    return mix64(key + (i + 1) * GAMMA);
}

/* Top 24 bits as a float in [0, 1): exact in single precision. */
static inline float unit(uint64_t r) {
    return (float)(r >> 40) * 0x1p-24f;
}

/* Bit 0 of every nibble of w that is 0 (resp. 15), other bits clear. */
static inline uint32_t zero_nibbles(uint32_t w) {
    return ~(w | w >> 1 | w >> 2 | w >> 3) & 0x11111111u;
}
static inline uint32_t full_nibbles(uint32_t w) {
    return w & w >> 1 & w >> 2 & w >> 3 & 0x11111111u;
}

uint32_t mkgen_qweight(uint64_t key, uint64_t i) {
    uint32_t w = (uint32_t)(mkgen_rand(key, i >> 1) >> (32 * (i & 1)));
    return w | zero_nibbles(w) << 3; /* 0 -> 8 */
}

uint32_t mkgen_qzeros(uint64_t key, uint64_t i, bool sym) {
    if (sym) return 0x77777777u;
    uint32_t w = (uint32_t)mkgen_rand(key, i);
    return w & ~(full_nibbles(w) << 3); /* 15 -> 7 */
}

static inline float scale_factor(uint32_t in_f, bool sym) {
    return 1.0f / ((sym ? SIGMA_SYM : SIGMA_ASYM) * sqrtf((float)in_f));
}

uint16_t mkgen_scale(uint64_t key, uint64_t i, uint32_t in_f, bool sym) {
    return mkgen_f32_to_f16((0.5f + unit(mkgen_rand(key, i))) * scale_factor(in_f, sym));
}

/* Feistel round count: 4 rounds make a well-mixed permutation for a test generator. */
static uint32_t feistel(uint64_t key, uint32_t x, unsigned half_bits) {
    uint32_t mask = (1u << half_bits) - 1, l = x >> half_bits, r = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
        uint32_t f = (uint32_t)mix64(key ^ (round << 40) ^ r) & mask;
        uint32_t nl = r;
        r = l ^ f;
        l = nl;
    }
    return (l << half_bits) | r;
}

uint32_t mkgen_perm(uint64_t key, uint32_t n, uint32_t x) {
    unsigned half = 0;
    while ((1ull << (2 * half)) < n) half++;
    /* Cycle walking: x's cycle under the bijection returns to x < n, so this terminates and
     * the restriction to values < n is again a bijection. */
    do x = feistel(key, x, half);
    while (x >= n);
    return x;
}

int32_t mkgen_g_idx(uint64_t key, uint32_t k, uint32_t in_f, uint32_t group, bool act_order) {
    uint32_t pos = act_order ? mkgen_perm(mix64(key ^ GAMMA), in_f, k) : k;
    return (int32_t)(pos / group);
}

uint16_t mkgen_bias(uint64_t key, uint64_t i) {
    return mkgen_f32_to_f16((2.0f * unit(mkgen_rand(key, i)) - 1.0f) * BIAS_AMP);
}

uint16_t mkgen_norm(void) {
    return 0x3c00;
}

static inline float embed_amp(uint32_t hidden) {
    /* U(-a, a) has std a/sqrt(3): a unit-RMS final state then gives logits of std LOGIT_STD. */
    return 1.7320508f * LOGIT_STD / sqrtf((float)hidden);
}

/* Level j of 65536 evenly spaced points in (-amp, amp): (2j+1)/65536 - 1 is exact in float. */
static inline uint16_t embed_level(uint32_t j, float amp) {
    return mkgen_f32_to_f16(((float)(2 * j + 1) * 0x1p-16f - 1.0f) * amp);
}

uint16_t mkgen_embed(uint64_t key, uint64_t i, uint32_t hidden) {
    uint32_t j = (uint32_t)(mkgen_rand(key, i >> 2) >> (16 * (i & 3))) & 0xffff;
    return embed_level(j, embed_amp(hidden));
}

uint32_t mkgen_value(const mkgen_tensor *t, uint64_t i) {
    switch (t->kind) {
    case MKGEN_EMBED:
        return mkgen_embed(t->key, i, t->hidden);
    case MKGEN_NORM:
        return mkgen_norm();
    case MKGEN_QWEIGHT:
        return mkgen_qweight(t->key, i);
    case MKGEN_QZEROS:
        return mkgen_qzeros(t->key, i, t->sym);
    case MKGEN_SCALES:
        return mkgen_scale(t->key, i, t->in_f, t->sym);
    case MKGEN_G_IDX:
        return (uint32_t)mkgen_g_idx(t->key, (uint32_t)i, t->in_f, t->group, t->act_order);
    case MKGEN_BIAS:
        return mkgen_bias(t->key, i);
    }
    return 0;
}

static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* The two bulk kinds get their own loops (no per-element switch): they are >99% of the bytes. */
void mkgen_fill(const mkgen_tensor *t, uint64_t first, uint64_t count, uint8_t *out) {
    if (t->kind == MKGEN_QWEIGHT) {
        for (uint64_t j = 0; j < count; j++) put32(out + 4 * j, mkgen_qweight(t->key, first + j));
    } else if (t->kind == MKGEN_EMBED) {
        /* The 65536 levels as a table: no float conversion per element. Kept per thread and
         * rebuilt only when the amplitude changes (once per tensor shape). */
        static _Thread_local uint16_t table[65536];
        static _Thread_local float table_amp = -1.0f;
        float amp = embed_amp(t->hidden);
        if (table_amp != amp) {
            for (uint32_t j = 0; j < 65536; j++) table[j] = embed_level(j, amp);
            table_amp = amp;
        }
        for (uint64_t j = 0; j < count; j++) {
            uint64_t i = first + j;
            uint32_t level = (uint32_t)(mkgen_rand(t->key, i >> 2) >> (16 * (i & 3))) & 0xffff;
            put16(out + 2 * j, table[level]);
        }
    } else if (t->dtype == MKGEN_I32) {
        for (uint64_t j = 0; j < count; j++) put32(out + 4 * j, mkgen_value(t, first + j));
    } else {
        for (uint64_t j = 0; j < count; j++)
            put16(out + 2 * j, (uint16_t)mkgen_value(t, first + j));
    }
}

size_t mkgen_dtype_size(mkgen_dtype d) {
    return d == MKGEN_I32 ? 4 : 2;
}

uint16_t mkgen_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: overflow */
    if (ax < 0x38800000u) {                      /* below 2^-14: half subnormal or zero */
        float a;
        memcpy(&a, &ax, sizeof a);
        return sign | (uint16_t)lrintf(a * 0x1p24f); /* exact scaling, then nearest-even */
    }
    /* Rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest-even;
     * a mantissa carry correctly bumps the exponent. */
    return sign | (uint16_t)((ax - (112u << 23) + 0xfffu + ((ax >> 13) & 1)) >> 13);
}

float mkgen_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* subnormal or zero: exact */
        return sign ? -v : v;
    }
    if (e == 31)
        x = sign | 0x7f800000u | (m << 13);
    else
        x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}
