/* Token -> text: per-token queries, r1_detokenize and the streaming decoder.
 *
 * Both decoders turn bytes into text with one UTF-8 state machine that
 * replaces each maximal invalid subsequence by U+FFFD, exactly like Rust's
 * String::from_utf8_lossy (what HF decode returns). The streaming decoder
 * holds back an incomplete sequence that may still complete, so the
 * concatenation of its outputs equals r1_detokenize of the same ids, and
 * every output chunk is valid UTF-8. Pushing a negative id flushes: a
 * held-back incomplete sequence is emitted as U+FFFD. */
#include "tokenizer.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

static int id_ok(const r1_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && (t->flags[id] & R1__TOK_PRESENT);
}

const char *r1_token_bytes(const r1_tokenizer *t, int32_t id, size_t *len) {
    if (!id_ok(t, id)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->raw[id].len;
    return t->pool + t->raw[id].off;
}

int r1_token_is_special(const r1_tokenizer *t, int32_t id) {
    return id_ok(t, id) && (t->flags[id] & R1__TOK_SPECIAL);
}

int32_t r1_token_id(const r1_tokenizer *t, const char *text) {
    if (!t || !text) return -1;
    size_t n = strlen(text);
    for (int i = 0; i < t->n_added; i++) {
        size_t len;
        const char *c = r1__tok_form(t, t->added[i].id, &len);
        if (len == n && memcmp(c, text, n) == 0) return t->added[i].id;
    }
    char buf[512], *form = 2 * n <= sizeof buf ? buf : malloc(2 * n);
    if (!form) return -1;
    int32_t id = r1__vocab_find(t, form, r1__bytelevel_encode(t, text, n, form));
    if (form != buf) free(form);
    return id;
}

/* ---- UTF-8 repair ---- */

/* Output sink: a growable buffer, or a fixed one that reports overflow. */
typedef struct sink {
    char *p;
    size_t n, cap;
    int grow, fail;
} sink;

static void put(sink *s, const char *b, size_t n) {
    if (s->fail || n == 0) return;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n) cap *= 2;
        char *p = s->grow ? realloc(s->p, cap) : NULL;
        if (!p) {
            s->fail = 1;
            return;
        }
        s->p = p, s->cap = cap;
    }
    memcpy(s->p + s->n, b, n);
    s->n += n;
}

/* Expected length of a sequence led by c (0: invalid lead) and whether b
 * may be its byte number i (RFC 3629 second-byte ranges). */
static int seq_len(uint8_t c) {
    return c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
}

static int cont_ok(uint8_t lead, size_t i, uint8_t b) {
    if (i == 1) {
        if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
        if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
        if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
        if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
    }
    return (b & 0xC0) == 0x80;
}

/* Feeds bytes through the machine; pending holds an incomplete prefix. */
static void feed(sink *s, char *pending, size_t *np, const char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!*np) { /* fast path: copy the valid run in one piece */
            size_t ok = r1__utf8_valid_prefix(bytes + i, n - i);
            put(s, bytes + i, ok);
            if ((i += ok) == n) break;
        }
        uint8_t b = (uint8_t)bytes[i];
        if (*np) {
            if (cont_ok((uint8_t)pending[0], *np, b)) {
                pending[(*np)++] = (char)b;
                if (*np == (size_t)seq_len((uint8_t)pending[0])) put(s, pending, *np), *np = 0;
                continue;
            }
            put(s, REPLACEMENT, 3); /* the prefix can never complete */
            *np = 0;
        }
        int len = seq_len(b);
        if (len == 1)
            put(s, (const char *)&bytes[i], 1);
        else if (len == 0)
            put(s, REPLACEMENT, 3);
        else
            pending[(*np)++] = (char)b;
    }
}

static void flush(sink *s, size_t *np) {
    if (*np) put(s, REPLACEMENT, 3);
    *np = 0;
}

r1_status r1_detokenize(const r1_tokenizer *t, const int32_t *ids, size_t n, char **text,
                        r1_error *err) {
    if (!text) return r1__err(err, R1_E_INVAL, "r1_detokenize: text is NULL");
    *text = NULL;
    if (!t || (!ids && n)) return r1__err(err, R1_E_INVAL, "r1_detokenize: tokenizer or ids NULL");
    sink s = {.grow = 1};
    char pending[4];
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (!id_ok(t, ids[i])) {
            free(s.p);
            return r1__err(err, R1_E_RANGE, "r1_detokenize: ids[%zu] = %d is not a token (0..%d)",
                           i, (int)ids[i], t->n_vocab - 1);
        }
        feed(&s, pending, &np, t->pool + t->raw[ids[i]].off, t->raw[ids[i]].len);
    }
    flush(&s, &np);
    put(&s, "", 1);
    if (s.fail) {
        free(s.p);
        return r1__err(err, R1_E_NOMEM, "r1_detokenize: out of memory");
    }
    *text = s.p;
    return R1_OK;
}

/* Unknown ids add no bytes; on overflow (-1) the stream is left unchanged so
 * the call can be repeated with a larger buffer. */
int r1_detok_stream_push(const r1_tokenizer *t, r1_detok_stream *st, int32_t id, char *out,
                         size_t cap) {
    if (!st || (!out && cap)) return -1;
    char pending[sizeof st->pending];
    size_t np = st->n_pending < 4 ? st->n_pending : 0; /* > 3 cannot happen: treat as reset */
    memcpy(pending, st->pending, np);
    sink s = {.p = out, .cap = cap};
    if (id < 0)
        flush(&s, &np);
    else if (id_ok(t, id))
        feed(&s, pending, &np, t->pool + t->raw[id].off, t->raw[id].len);
    if (s.fail) return -1;
    memcpy(st->pending, pending, np);
    st->n_pending = np;
    return (int)s.n;
}
