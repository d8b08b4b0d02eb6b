/* Internals of the byte-level BPE tokenizer (tokenizer_*.c) and the chat
 * template (chat.c). The public API is the "tokenizer" section of r1run.h.
 *
 * Layout: every token id owns two byte strings in one pool: its "form" (the
 * vocabulary key, i.e. the GPT-2 byte-level string, or an added token's
 * content) and its decoded raw bytes. Everything is immutable after load, so
 * all public tokenizer functions are thread-safe; per-call scratch lives in
 * the encoder. */
#ifndef R1_TOKENIZER_H
#define R1_TOKENIZER_H

#include "r1run.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

/* Per-id flags. */
enum {
    R1__TOK_PRESENT = 1, /* the id names a token (ids may have holes) */
    R1__TOK_ADDED = 2,   /* from added_tokens */
    R1__TOK_SPECIAL = 4, /* added token with "special": true */
};

/* Byte-level characters are U+0021..U+0143. */
#define R1__BL_NCP 0x144

/* A byte string in r1_tokenizer.pool. */
typedef struct r1__span {
    uint32_t off, len;
} r1__span;

/* Open-addressing map from a vocabulary form to its id. */
typedef struct r1__vocab_slot {
    uint32_t hash;
    int32_t id;   /* -1 = empty */
    r1__span key; /* the form; kept apart because an added token may take the id */
} r1__vocab_slot;

/* Open-addressing map from an adjacent id pair to its merge. */
typedef struct r1__merge_slot {
    uint64_t pair; /* (left << 32) | right */
    int32_t rank;  /* -1 = empty; lower merges first */
    int32_t id;    /* the merged token */
} r1__merge_slot;

/* One added token, as matched in the input before BPE. */
typedef struct r1__added {
    int32_t id;
    uint32_t len;   /* content bytes */
    int normalized; /* matched against NFC text instead of raw text */
} r1__added;

struct r1_tokenizer {
    int n_vocab; /* highest id + 1 */
    uint8_t *flags;
    r1__span *form; /* vocabulary key or added content, per id */
    r1__span *raw;  /* decoded bytes, per id */
    char *pool;
    size_t pool_len, pool_cap;

    r1__vocab_slot *vocab; /* model vocabulary only (not added tokens) */
    uint32_t vocab_mask;
    r1__merge_slot *merges;
    uint32_t merge_mask;
    int ignore_merges;    /* BPE ignore_merges: a whole word in the vocab wins */
    int32_t unk;          /* model.unk_token id for bytes without a token, -1 = drop them */
    int fuse_unk;         /* consecutive unknowns give one unk */
    int32_t byte_id[256]; /* id of each single byte's token, -1 if none */
    char bl[256][2];      /* byte-level (GPT-2) UTF-8 form of each byte */
    uint8_t bl_len[256];
    int16_t cp_byte[R1__BL_NCP]; /* inverse: code point -> byte, -1 if unmapped */

    r1__added *added; /* sorted by content length, longest first */
    int n_added;
    uint8_t added_first[256]; /* 1 if some added token starts with this byte */

    int nfc;        /* normalizer is NFC (else none) */
    pcre2_code *re; /* pre-tokenizer split pattern */

    int bos, eos;              /* -1 when unknown */
    char *bos_text, *eos_text; /* token strings from tokenizer_config.json, or NULL */
};

/* ---- shared helpers (tokenizer_util.c) ---- */

static inline const char *r1__tok_form(const r1_tokenizer *t, int32_t id, size_t *len) {
    *len = t->form[id].len;
    return t->pool + t->form[id].off;
}

uint32_t r1__hash_bytes(const char *s, size_t n);
static inline uint64_t r1__pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}
static inline uint32_t r1__pair_hash(uint64_t key) {
    key ^= key >> 31;
    key *= 0x9e3779b97f4a7c15ull; /* multiplicative mix; the high bits index */
    return (uint32_t)(key >> 32);
}
/* Id of a vocabulary form (exact byte-level string), or -1. */
int32_t r1__vocab_find(const r1_tokenizer *t, const char *s, size_t n);
/* Merge of an adjacent pair, or NULL. */
const r1__merge_slot *r1__merge_find(const r1_tokenizer *t, int32_t a, int32_t b);

/* GPT-2 byte <-> unicode mapping: fills bl, bl_len and cp_byte. */
void r1__bytelevel_init(r1_tokenizer *t);
/* Writes the byte-level form of raw bytes to out (needs 2*n bytes); returns its length. */
size_t r1__bytelevel_encode(const r1_tokenizer *t, const char *raw, size_t n, char *out);

/* Length of the longest valid UTF-8 prefix of s (== n when all valid). */
size_t r1__utf8_valid_prefix(const char *s, size_t n);
/* Decodes one code point of valid UTF-8; returns its byte length. */
int r1__utf8_decode(const char *s, uint32_t *cp);

/* ---- loader internals ---- */

/* Reads a whole file, NUL-terminated (tokenizer_load.c). */
r1_status r1__read_text_file(const char *path, char **buf, size_t *len, r1_error *err);
/* Normalizer, pre-tokenizer, decoder and model options of tokenizer.json;
 * root is a cJSON object (tokenizer_config.c). */
struct cJSON;
r1_status r1__tok_check_pipeline(r1_tokenizer *t, const struct cJSON *root, const char *path,
                                 r1_error *err);
/* BOS / EOS from dir/tokenizer_config.json when present (tokenizer_config.c). */
r1_status r1__tok_load_config(r1_tokenizer *t, const char *dir, r1_error *err);

/* Compiles a Hugging Face pre-tokenizer pattern for PCRE2, with \s and \S
 * rewritten to Unicode White_Space as the Oniguruma engine of HF tokenizers
 * defines it. */
r1_status r1__regex_compile(const char *pattern, const char *path, pcre2_code **out, r1_error *err);

/* ---- chat.c helpers ---- */

/* Growable NUL-terminated byte buffer. */
typedef struct r1__strbuf {
    char *p;
    size_t n, cap;
    int oom;
} r1__strbuf;
void r1__sb_put(r1__strbuf *b, const char *s, size_t n);
static inline void r1__sb_puts(r1__strbuf *b, const char *s) {
    r1__sb_put(b, s, strlen(s));
}

#endif
