/* r1_tokenize: the HF tokenizers encode pipeline with add_special_tokens=False:
 * split on added tokens (raw text), NFC, split on "normalized" added tokens,
 * pre-tokenizer regex (Isolated), byte-level BPE by merge rank. */
#include "tokenizer.h"

#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* A BPE symbol in a doubly linked list over the piece's bytes. */
typedef struct sym {
    int32_t id, prev, next;
    int32_t len; /* bytes covered; 0 once merged into its left neighbour */
} sym;

/* Per-call cache of BPE results by piece bytes: natural text repeats its
 * words, and a cached piece skips the merge loop. Fixed slot count, no
 * eviction; keys and ids take at most the size of the input and output. */
#define WC_SLOTS (1u << 15)
typedef struct wc_slot {
    uint32_t hash, key_off, key_len; /* key_len 0 = empty */
    uint32_t ids_off, n_ids;
} wc_slot;

typedef struct enc {
    const r1_tokenizer *t;
    wc_slot *wc; /* NULL: no cache (short text, or allocation failed) */
    uint32_t wc_used;
    char *wc_keys;
    int32_t *wc_ids;
    size_t wc_keys_len, wc_keys_cap, wc_ids_len, wc_ids_cap;
    int32_t *ids;
    size_t n, cap;
    sym *syms;
    uint64_t *heap;   /* candidate merges, see cand_key() */
    size_t piece_cap; /* bytes the syms / heap scratch can take */
    size_t n_heap;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
} enc;

static int push(enc *e, int32_t id) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        int32_t *p = realloc(e->ids, cap * sizeof *p);
        if (!p) return -1;
        e->ids = p, e->cap = cap;
    }
    e->ids[e->n++] = id;
    return 0;
}

/* ---- BPE: HF's Word::merge_all ----
 * A min-heap of candidate merges keyed (rank << 32 | position): the lowest
 * rank goes first, the leftmost among equals. An entry is stale when its
 * left symbol was merged away or the pair there changed; symbols only grow,
 * so "same rank at the same position" means "same pair" (HF compares the
 * merged id, which is equivalent). */

static inline uint64_t cand_key(int32_t rank, int32_t pos) {
    return (uint64_t)(uint32_t)rank << 32 | (uint32_t)pos;
}

static void sift_down(uint64_t *h, size_t n, size_t i) {
    uint64_t x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_push(enc *e, uint64_t key) {
    size_t i = e->n_heap++;
    while (i > 0 && key < e->heap[(i - 1) / 2]) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = key;
}

static uint64_t heap_pop(enc *e) {
    uint64_t top = e->heap[0];
    e->heap[0] = e->heap[--e->n_heap];
    if (e->n_heap) sift_down(e->heap, e->n_heap, 0);
    return top;
}

/* Merge rank of symbol pos with its right neighbour, or -1. */
static int32_t pair_rank(const enc *e, int32_t pos) {
    const sym *s = &e->syms[pos];
    if (s->next < 0) return -1;
    const r1__merge_slot *m = r1__merge_find(e->t, s->id, e->syms[s->next].id);
    return m ? m->rank : -1;
}

static void push_merge(enc *e, int32_t pos) {
    int32_t rank = pair_rank(e, pos);
    if (rank >= 0) heap_push(e, cand_key(rank, pos));
}

static int reserve_piece(enc *e, size_t n) {
    if (n <= e->piece_cap) return 0;
    size_t cap = e->piece_cap ? e->piece_cap : 64;
    while (cap < n) cap *= 2;
    sym *s = realloc(e->syms, cap * sizeof *s);
    if (s) e->syms = s;
    /* Live entries <= pairs + merges (each merge pops one, pushes two) < 2n. */
    uint64_t *h = realloc(e->heap, 2 * cap * sizeof *h);
    if (h) e->heap = h;
    if (!s || !h) return -1;
    e->piece_cap = cap;
    return 0;
}

/* Initial symbols: one per byte. Bytes without a token become unk, or are
 * dropped when there is none (HF BPE without unk_token). */
static int32_t init_syms(enc *e, const char *p, size_t n) {
    const r1_tokenizer *t = e->t;
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(uint8_t)p[i]];
        if (id < 0) {
            if (t->unk < 0) continue;
            if (t->fuse_unk && m > 0 && e->syms[m - 1].id == t->unk) {
                e->syms[m - 1].len++;
                continue;
            }
            id = t->unk;
        }
        e->syms[m] = (sym){id, m - 1, m + 1, 1};
        m++;
    }
    if (m) e->syms[m - 1].next = -1;
    return m;
}

static int bpe_merge(enc *e, int32_t m) {
    e->n_heap = 0;
    for (int32_t i = 0; i + 1 < m; i++) {
        int32_t rank = pair_rank(e, i);
        if (rank >= 0) e->heap[e->n_heap++] = cand_key(rank, i);
    }
    for (size_t i = e->n_heap / 2; i-- > 0;) sift_down(e->heap, e->n_heap, i); /* heapify */
    while (e->n_heap) {
        uint64_t c = heap_pop(e);
        int32_t pos = (int32_t)(uint32_t)c;
        sym *s = &e->syms[pos];
        if (s->len == 0 || s->next < 0) continue;
        sym *r = &e->syms[s->next];
        const r1__merge_slot *cur = r1__merge_find(e->t, s->id, r->id);
        if (!cur || cur->rank != (int32_t)(c >> 32)) continue; /* stale */
        s->id = cur->id, s->len += r->len, s->next = r->next;
        r->len = 0;
        if (s->next >= 0) e->syms[s->next].prev = pos;
        if (s->prev >= 0) push_merge(e, s->prev);
        push_merge(e, pos);
    }
    for (int32_t i = 0; i < m; i++)
        if (e->syms[i].len && push(e, e->syms[i].id)) return -1;
    return 0;
}

/* ---- word cache ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static wc_slot *wc_find(enc *e, const char *p, size_t n, uint32_t h) {
    for (uint32_t i = h & (WC_SLOTS - 1);; i = (i + 1) & (WC_SLOTS - 1)) {
        wc_slot *s = &e->wc[i];
        if (!s->key_len ||
            (s->hash == h && s->key_len == n && memcmp(e->wc_keys + s->key_off, p, n) == 0))
            return s;
    }
}

/* Remembers the ids pushed since `from` as the result of piece p. A failed
 * allocation only means the piece is not cached. */
static void wc_store(enc *e, wc_slot *s, const char *p, size_t n, uint32_t h, size_t from) {
    size_t k = e->n - from;
    if (e->wc_used >= WC_SLOTS / 2 ||
        grow((void **)&e->wc_keys, &e->wc_keys_cap, e->wc_keys_len + n, 1) ||
        grow((void **)&e->wc_ids, &e->wc_ids_cap, e->wc_ids_len + k, sizeof(int32_t)))
        return;
    memcpy(e->wc_keys + e->wc_keys_len, p, n);
    memcpy(e->wc_ids + e->wc_ids_len, e->ids + from, k * sizeof(int32_t));
    *s = (wc_slot){h, (uint32_t)e->wc_keys_len, (uint32_t)n, (uint32_t)e->wc_ids_len, (uint32_t)k};
    e->wc_keys_len += n, e->wc_ids_len += k;
    e->wc_used++;
}

static int bpe_uncached(enc *e, const char *p, size_t n);

static int bpe_piece(enc *e, const char *p, size_t n) {
    const r1_tokenizer *t = e->t;
    if (n == 1 && t->byte_id[(uint8_t)*p] >= 0) return push(e, t->byte_id[(uint8_t)*p]);
    if (!e->wc) return bpe_uncached(e, p, n);
    uint32_t h = r1__hash_bytes(p, n);
    wc_slot *s = wc_find(e, p, n, h);
    if (s->key_len) {
        for (uint32_t i = 0; i < s->n_ids; i++)
            if (push(e, e->wc_ids[s->ids_off + i])) return -1;
        return 0;
    }
    size_t from = e->n;
    if (bpe_uncached(e, p, n)) return -1;
    wc_store(e, s, p, n, h, from);
    return 0;
}

static int bpe_uncached(enc *e, const char *p, size_t n) {
    const r1_tokenizer *t = e->t;
    if (reserve_piece(e, n)) return -1;
    if (t->ignore_merges) { /* syms (16 bytes per byte) doubles as the 2n-byte scratch */
        char *form = (char *)e->syms;
        int32_t id = r1__vocab_find(t, form, r1__bytelevel_encode(t, p, n, form));
        if (id >= 0) return push(e, id);
    }
    return bpe_merge(e, init_syms(e, p, n));
}

/* ---- pre-tokenizer split ---- */

static r1_status split_pieces(enc *e, const char *s, size_t n, r1_error *err) {
    const r1_tokenizer *t = e->t;
    if (!t->re) return bpe_piece(e, s, n) ? R1_E_NOMEM : R1_OK;
    size_t prev = 0, from = 0;
    while (from < n) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, e->md, e->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return r1__err(err, R1_E_UNSUPPORTED, "r1_tokenize: pre_tokenizer regex failed: %s",
                           (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        /* Isolated: the unmatched gap before a match is a piece of its own. */
        if (ms > prev && bpe_piece(e, s + prev, ms - prev)) return R1_E_NOMEM;
        if (me > ms && bpe_piece(e, s + ms, me - ms)) return R1_E_NOMEM;
        prev = me;
        if (me > ms) {
            from = me;
        } else { /* empty match: search on from the next character */
            uint32_t cp;
            from = me + (size_t)r1__utf8_decode(s + me, &cp);
        }
    }
    if (prev < n && bpe_piece(e, s + prev, n - prev)) return R1_E_NOMEM;
    return R1_OK;
}

/* ---- added tokens and normalization ---- */

/* Leftmost-longest added token (of the given "normalized" kind) in s, as
 * HF's Aho-Corasick matcher finds it; returns its offset, or n if none. */
static size_t find_added(const r1_tokenizer *t, const char *s, size_t n, int normalized,
                         int32_t *id, size_t *len) {
    for (size_t i = 0; i < n; i++) {
        if (!t->added_first[(uint8_t)s[i]]) continue;
        for (int k = 0; k < t->n_added; k++) { /* longest first */
            const r1__added *a = &t->added[k];
            if (a->normalized != normalized || a->len > n - i) continue;
            if (memcmp(s + i, t->pool + t->form[a->id].off, a->len) == 0) {
                *id = a->id, *len = a->len;
                return i;
            }
        }
    }
    return n;
}

/* Calls fn on each stretch of s between added tokens, pushing their ids. */
static r1_status split_added(enc *e, const char *s, size_t n, int normalized,
                             r1_status (*fn)(enc *, const char *, size_t, r1_error *),
                             r1_error *err) {
    size_t pos = 0;
    while (pos < n) {
        int32_t id = -1;
        size_t len = 0, at = find_added(e->t, s + pos, n - pos, normalized, &id, &len);
        if (at > 0) {
            r1_status st = fn(e, s + pos, at, err);
            if (st) return st;
        }
        if (id >= 0 && push(e, id)) return R1_E_NOMEM;
        pos += at + len;
    }
    return R1_OK;
}

/* NFC changes nothing when every code point is below U+0300 (lead byte
 * < 0xCC): no such character decomposes or composes with a neighbour. */
static int maybe_not_nfc(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0xCC) return 1;
    return 0;
}

static r1_status normalized_stretch(enc *e, const char *s, size_t n, r1_error *err) {
    return split_pieces(e, s, n, err);
}

static r1_status raw_stretch(enc *e, const char *s, size_t n, r1_error *err) {
    if (!e->t->nfc || !maybe_not_nfc(s, n)) return split_added(e, s, n, 1, normalized_stretch, err);
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0)
        return r1__err(err, m == UTF8PROC_ERROR_NOMEM ? R1_E_NOMEM : R1_E_INVAL,
                       "r1_tokenize: NFC normalization failed: %s", utf8proc_errmsg(m));
    r1_status st = split_added(e, (const char *)nfc, (size_t)m, 1, normalized_stretch, err);
    free(nfc);
    return st;
}

static r1_status enc_init(enc *e, const r1_tokenizer *t, size_t len, r1_error *err) {
    memset(e, 0, sizeof *e);
    e->t = t;
    if (len >= 4096) e->wc = calloc(WC_SLOTS, sizeof *e->wc); /* worth it for long text only */
    if (t->re) {
        e->md = pcre2_match_data_create_from_pattern(t->re, NULL);
        e->mctx = pcre2_match_context_create(NULL);
        e->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (!e->md || !e->mctx || !e->jit)
            return r1__err(err, R1_E_NOMEM, "r1_tokenize: out of memory");
        pcre2_jit_stack_assign(e->mctx, NULL, e->jit);
    }
    return R1_OK;
}

static void enc_free(enc *e) {
    free(e->ids), free(e->syms), free(e->heap);
    free(e->wc), free(e->wc_keys), free(e->wc_ids);
    pcre2_match_data_free(e->md);
    pcre2_match_context_free(e->mctx);
    pcre2_jit_stack_free(e->jit);
}

r1_status r1_tokenize(const r1_tokenizer *t, const char *text, size_t len, int32_t **ids,
                      size_t *n_ids, r1_error *err) {
    if (!ids || !n_ids) return r1__err(err, R1_E_INVAL, "r1_tokenize: ids or n_ids is NULL");
    *ids = NULL, *n_ids = 0;
    if (!t || (!text && len))
        return r1__err(err, R1_E_INVAL, "r1_tokenize: tokenizer or text is NULL");
    if (len > INT32_MAX / 4) /* symbol links are int32 */
        return r1__err(err, R1_E_INVAL, "r1_tokenize: text of %zu bytes is too long", len);
    size_t valid = r1__utf8_valid_prefix(text, len);
    if (valid != len)
        return r1__err(err, R1_E_INVAL, "r1_tokenize: text is not valid UTF-8 (byte %zu)", valid);
    enc e;
    r1_status st = enc_init(&e, t, len, err);
    if (!st) st = split_added(&e, text, len, 0, raw_stretch, err);
    if (!st && push(&e, 0)) st = R1_E_NOMEM; /* keeps *ids non-NULL for empty text */
    if (st == R1_E_NOMEM) r1__err(err, st, "r1_tokenize: out of memory");
    if (st) {
        enc_free(&e);
        return st;
    }
    *ids = e.ids, *n_ids = e.n - 1;
    e.ids = NULL;
    enc_free(&e);
    return R1_OK;
}
