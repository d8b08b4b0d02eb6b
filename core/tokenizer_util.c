/* Small building blocks of the tokenizer: hash lookups, the GPT-2 byte-level
 * character mapping, UTF-8 validation and a growable string buffer. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys (tokens are a few bytes), good enough spread. */
uint32_t r1__hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int32_t r1__vocab_find(const r1_tokenizer *t, const char *s, size_t n) {
    uint32_t h = r1__hash_bytes(s, n);
    for (uint32_t i = h & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        const r1__vocab_slot *sl = &t->vocab[i];
        if (sl->id < 0) return -1;
        if (sl->hash != h) continue;
        if (sl->key.len == n && memcmp(t->pool + sl->key.off, s, n) == 0) return sl->id;
    }
}

const r1__merge_slot *r1__merge_find(const r1_tokenizer *t, int32_t a, int32_t b) {
    uint64_t pair = r1__pair_key(a, b);
    for (uint32_t i = r1__pair_hash(pair) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const r1__merge_slot *sl = &t->merges[i];
        if (sl->rank < 0) return NULL;
        if (sl->pair == pair) return sl;
    }
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
 * other 68 bytes to U+0100.. in byte order. */
static int is_printable_byte(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

void r1__bytelevel_init(r1_tokenizer *t) {
    uint32_t next = 256;
    for (int i = 0; i < R1__BL_NCP; i++) t->cp_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = is_printable_byte(b) ? b : next++;
        t->cp_byte[cp] = (int16_t)b;
        if (cp < 0x80) {
            t->bl[b][0] = (char)cp;
            t->bl_len[b] = 1;
        } else {
            t->bl[b][0] = (char)(0xC0 | (cp >> 6));
            t->bl[b][1] = (char)(0x80 | (cp & 0x3F));
            t->bl_len[b] = 2;
        }
    }
}

size_t r1__bytelevel_encode(const r1_tokenizer *t, const char *raw, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)raw[i];
        out[o] = t->bl[b][0];
        if (t->bl_len[b] == 2) out[o + 1] = t->bl[b][1];
        o += t->bl_len[b];
    }
    return o;
}

/* Bytes of a sequence led by c (0 = c cannot start one) and the valid range
 * of its second byte (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static int utf8_lead(uint8_t c, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

size_t r1__utf8_valid_prefix(const char *s, size_t n) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        uint8_t lo, hi;
        int len = utf8_lead(u[i], &lo, &hi);
        if (len == 0 || i + (size_t)len > n) return i;
        if (u[i + 1] < lo || u[i + 1] > hi) return i;
        for (int k = 2; k < len; k++)
            if ((u[i + k] & 0xC0) != 0x80) return i;
        i += (size_t)len;
    }
    return n;
}

int r1__utf8_decode(const char *s, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (u[0] < 0x80) return *cp = u[0], 1;
    if (u[0] < 0xE0) return *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F), 2;
    if (u[0] < 0xF0)
        return *cp =
                   ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F),
               3;
    *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
          ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    return 4;
}

void r1__sb_put(r1__strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
