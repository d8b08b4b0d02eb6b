/* r1_tokenizer_load: builds the tables of tokenizer.h from tokenizer.json
 * (vocabulary, merges, added tokens; the pipeline checks live in
 * tokenizer_config.c) and reads BOS/EOS from tokenizer_config.json. */
#include "tokenizer.h"

#include "error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_IDS (1 << 22) /* sanity bound on token ids: tables are sized by them */

r1_status r1__read_text_file(const char *path, char **buf, size_t *len, r1_error *err) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return r1__err(err, R1_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    /* Sized from fstat so the 7 MB file is read once, without regrowing. */
    size_t cap = fstat(fileno(f), &sb) == 0 && sb.st_size > 0 ? (size_t)sb.st_size : 65536;
    char *p = malloc(cap + 1);
    size_t n = 0, got;
    while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *q = realloc(p, 2 * cap + 1);
            if (!q) free(p);
            p = q, cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!p) return r1__err(err, R1_E_NOMEM, "%s: out of memory reading the file", path);
    if (bad) {
        free(p);
        return r1__err(err, R1_E_IO, "%s: read error", path);
    }
    p[n] = 0;
    *buf = p, *len = n;
    return R1_OK;
}

/* Appends bytes to the pool; returns R1_OK or R1_E_NOMEM. */
static r1_status pool_add(r1_tokenizer *t, const char *s, size_t n, r1__span *out) {
    if (t->pool_len + n > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 20;
        while (cap < t->pool_len + n) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return R1_E_NOMEM;
        t->pool = p, t->pool_cap = cap;
    }
    if (t->pool_len + n > UINT32_MAX) return R1_E_NOMEM;
    memcpy(t->pool + t->pool_len, s, n);
    out->off = (uint32_t)t->pool_len, out->len = (uint32_t)n;
    t->pool_len += n;
    return R1_OK;
}

/* Open-addressing tables at most 3/4 full. */
static uint32_t table_size(size_t n) {
    uint32_t s = 16;
    while (s < n + n / 3 + 1) s *= 2;
    return s;
}

/* A JSON number that is a whole token id in [0, MAX_IDS). */
static int json_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < MAX_IDS) || d != (double)(int32_t)d) return 0;
    *id = (int32_t)d;
    return 1;
}

/* Highest id named by model.vocab and added_tokens, validating both. */
static r1_status scan_ids(const cJSON *vocab, const cJSON *added, const char *path, int *n_vocab,
                          r1_error *err) {
    int32_t max = -1, id;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!json_id(it, &id))
            return r1__err(err, R1_E_FORMAT, "%s: model.vocab[\"%s\"] is not a token id", path,
                           it->string);
        if (id > max) max = id;
    }
    int i = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id))
            return r1__err(err, R1_E_FORMAT, "%s: added_tokens[%d].id missing or invalid", path, i);
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return r1__err(err, R1_E_FORMAT, "%s: added_tokens[%d].content missing or empty", path,
                           i);
        if (id > max) max = id;
        i++;
    }
    if (max < 0) return r1__err(err, R1_E_FORMAT, "%s: model.vocab is empty", path);
    *n_vocab = max + 1;
    return R1_OK;
}

/* Raw bytes of a token: each character through the inverse byte map, or
 * the string itself when a character is unmapped (as HF's ByteLevel decoder). */
static size_t decode_form(const r1_tokenizer *t, const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)r1__utf8_decode(s + i, &cp);
        int b = cp < R1__BL_NCP ? t->cp_byte[cp] : -1;
        if (b < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[o++] = (char)b;
    }
    return o;
}

static r1_status add_vocab_entry(r1_tokenizer *t, const char *key, int32_t id, char *scratch,
                                 const char *path, r1_error *err) {
    size_t n = strlen(key);
    if (t->flags[id] & R1__TOK_PRESENT)
        return r1__err(err, R1_E_FORMAT, "%s: model.vocab: id %d is used by two tokens", path,
                       (int)id);
    if (r1__utf8_valid_prefix(key, n) != n)
        return r1__err(err, R1_E_FORMAT, "%s: model.vocab: token %d is not valid UTF-8", path,
                       (int)id);
    if (pool_add(t, key, n, &t->form[id])) return R1_E_NOMEM;
    size_t rn = decode_form(t, key, n, scratch);
    if (rn == n && memcmp(scratch, key, n) == 0) {
        t->raw[id] = t->form[id]; /* printable ASCII tokens decode to themselves */
    } else if (pool_add(t, scratch, rn, &t->raw[id])) {
        return R1_E_NOMEM;
    }
    t->flags[id] = R1__TOK_PRESENT;
    uint32_t h = r1__hash_bytes(key, n);
    uint32_t i = h & t->vocab_mask;
    while (t->vocab[i].id >= 0) i = (i + 1) & t->vocab_mask;
    t->vocab[i].hash = h, t->vocab[i].id = id, t->vocab[i].key = t->form[id];
    return R1_OK;
}

static r1_status load_vocab(r1_tokenizer *t, const cJSON *vocab, const char *path, r1_error *err) {
    size_t count = (size_t)cJSON_GetArraySize(vocab);
    t->vocab_mask = table_size(count) - 1;
    t->vocab = malloc(((size_t)t->vocab_mask + 1) * sizeof *t->vocab);
    char *scratch = malloc(4096);
    if (!t->vocab || !scratch) {
        free(scratch);
        return r1__err(err, R1_E_NOMEM, "%s: out of memory for the vocabulary", path);
    }
    for (uint32_t i = 0; i <= t->vocab_mask; i++) t->vocab[i].id = -1;
    const cJSON *it;
    r1_status st = R1_OK;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        if (strlen(it->string) > 4096) {
            st = r1__err(err, R1_E_FORMAT, "%s: model.vocab: token %d longer than 4096 bytes", path,
                         (int)id);
            break;
        }
        st = add_vocab_entry(t, it->string, id, scratch, path, err);
        if (st == R1_E_NOMEM) st = r1__err(err, st, "%s: out of memory for the vocabulary", path);
        if (st) break;
    }
    free(scratch);
    return st;
}

/* Splits merges[i] ("a b" or ["a", "b"]) into its two token strings. */
static int merge_parts(const cJSON *m, const char **a, size_t *na, const char **b, size_t *nb) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp) return 0;
        *a = s, *na = (size_t)(sp - s), *b = sp + 1, *nb = strlen(sp + 1);
        return 1;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2) {
        const cJSON *x = cJSON_GetArrayItem(m, 0), *y = x->next;
        if (!cJSON_IsString(x) || !cJSON_IsString(y)) return 0;
        *a = x->valuestring, *na = strlen(*a), *b = y->valuestring, *nb = strlen(*b);
        return 1;
    }
    return 0;
}

static void merge_insert(r1_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id) {
    uint64_t pair = r1__pair_key(a, b);
    uint32_t i = r1__pair_hash(pair) & t->merge_mask;
    /* A repeated pair keeps its last rank, as HF's HashMap collect does. */
    while (t->merges[i].rank >= 0 && t->merges[i].pair != pair) i = (i + 1) & t->merge_mask;
    t->merges[i].pair = pair, t->merges[i].rank = rank, t->merges[i].id = id;
}

static r1_status load_merges(r1_tokenizer *t, const cJSON *merges, const char *path,
                             r1_error *err) {
    size_t count = cJSON_IsArray(merges) ? (size_t)cJSON_GetArraySize(merges) : 0;
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return r1__err(err, R1_E_FORMAT, "%s: model.merges is not an array", path);
    t->merge_mask = table_size(count) - 1;
    t->merges = malloc(((size_t)t->merge_mask + 1) * sizeof *t->merges);
    if (!t->merges) return r1__err(err, R1_E_NOMEM, "%s: out of memory for the merges", path);
    for (uint32_t i = 0; i <= t->merge_mask; i++) t->merges[i].rank = -1;
    char buf[1024];
    int32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t na, nb;
        if (!merge_parts(m, &a, &na, &b, &nb))
            return r1__err(err, R1_E_FORMAT, "%s: model.merges[%d] is not \"a b\" or [a, b]", path,
                           (int)rank);
        if (na + nb > sizeof buf)
            return r1__err(err, R1_E_FORMAT, "%s: model.merges[%d] is too long", path, (int)rank);
        int32_t ia = r1__vocab_find(t, a, na), ib = r1__vocab_find(t, b, nb);
        memcpy(buf, a, na), memcpy(buf + na, b, nb);
        int32_t im = r1__vocab_find(t, buf, na + nb);
        if (ia < 0 || ib < 0 || im < 0)
            return r1__err(err, R1_E_FORMAT, "%s: model.merges[%d] (\"%.*s\" + \"%.*s\") uses %s",
                           path, (int)rank, (int)na, a, (int)nb, b,
                           im < 0 && ia >= 0 && ib >= 0 ? "a merged token not in model.vocab"
                                                        : "a token not in model.vocab");
        merge_insert(t, ia, ib, rank, im);
        rank++;
    }
    return R1_OK;
}

/* Longest first, so the matcher can stop at its first hit; then by id. */
static int added_longer_first(const void *x, const void *y) {
    const r1__added *a = x, *b = y;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* added_tokens: id, content, special, normalized. lstrip / rstrip /
 * single_word are not implemented (false in every Qwen/R1 file). */
static r1_status load_added(r1_tokenizer *t, const cJSON *added, const char *path, r1_error *err) {
    int n = cJSON_GetArraySize(added);
    t->added = calloc(n ? (size_t)n : 1, sizeof *t->added);
    if (!t->added) return r1__err(err, R1_E_NOMEM, "%s: out of memory", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *c = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        size_t len = strlen(c);
        if (r1__utf8_valid_prefix(c, len) != len)
            return r1__err(err, R1_E_FORMAT, "%s: added_tokens[%d].content is not valid UTF-8",
                           path, t->n_added);
        /* The content replaces a vocabulary entry of the same id, as in HF
         * decode; the vocabulary map keeps its own key. */
        if (pool_add(t, c, len, &t->form[id]))
            return r1__err(err, R1_E_NOMEM, "%s: out of memory", path);
        t->raw[id] = t->form[id];
        t->flags[id] |= R1__TOK_PRESENT | R1__TOK_ADDED;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")))
            t->flags[id] |= R1__TOK_SPECIAL;
        r1__added *a = &t->added[t->n_added++];
        a->id = id, a->len = (uint32_t)len;
        a->normalized = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "normalized"));
        t->added_first[(uint8_t)c[0]] = 1;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_longer_first);
    return R1_OK;
}

static r1_status load_model(r1_tokenizer *t, const cJSON *root, const char *path, r1_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(model))
        return r1__err(err, R1_E_FORMAT, "%s: \"model\" missing or not an object", path);
    if (!cJSON_IsObject(vocab))
        return r1__err(err, R1_E_FORMAT, "%s: model.vocab missing or not an object", path);
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return r1__err(err, R1_E_FORMAT, "%s: added_tokens is not an array", path);
    r1_status st = scan_ids(vocab, added, path, &t->n_vocab, err);
    if (st) return st;
    size_t nv = (size_t)t->n_vocab;
    t->flags = calloc(nv, 1);
    t->form = calloc(nv, sizeof *t->form);
    t->raw = calloc(nv, sizeof *t->raw);
    t->pool_cap = 16 * nv; /* about what Qwen's vocabulary needs: avoids regrowing */
    t->pool = malloc(t->pool_cap);
    if (!t->flags || !t->form || !t->raw || !t->pool)
        return r1__err(err, R1_E_NOMEM, "%s: out of memory for %zu tokens", path, nv);
    r1__bytelevel_init(t);
    if ((st = load_vocab(t, vocab, path, err))) return st;
    if ((st = load_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err)))
        return st;
    for (int b = 0; b < 256; b++) {
        char c = (char)b, form[2];
        t->byte_id[b] = r1__vocab_find(t, form, r1__bytelevel_encode(t, &c, 1, form));
    }
    return load_added(t, added, path, err);
}

static r1_status load_tokenizer_json(r1_tokenizer *t, const char *dir, r1_error *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path)
        return r1__err(err, R1_E_INVAL, "r1_tokenizer_load: directory name too long");
    char *text;
    size_t len;
    r1_status st = r1__read_text_file(path, &text, &len, err);
    if (st) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        free(text);
        return r1__err(err, R1_E_FORMAT, "%s: invalid JSON near byte %zu", path, at);
    }
    free(text);
    st = cJSON_IsObject(root) ? R1_OK
                              : r1__err(err, R1_E_FORMAT, "%s: top level is not an object", path);
    if (!st) st = load_model(t, root, path, err);
    if (!st) st = r1__tok_check_pipeline(t, root, path, err);
    cJSON_Delete(root);
    return st;
}

r1_status r1_tokenizer_load(const char *dir, r1_tokenizer **out, r1_error *err) {
    if (!out) return r1__err(err, R1_E_INVAL, "r1_tokenizer_load: out is NULL");
    *out = NULL;
    if (!dir) return r1__err(err, R1_E_INVAL, "r1_tokenizer_load: dir is NULL");
    r1_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return r1__err(err, R1_E_NOMEM, "r1_tokenizer_load: out of memory");
    t->bos = t->eos = t->unk = -1;
    r1_status st = load_tokenizer_json(t, dir, err);
    if (!st) st = r1__tok_load_config(t, dir, err);
    if (st) {
        r1_tokenizer_free(t);
        return st;
    }
    *out = t;
    return R1_OK;
}

void r1_tokenizer_free(r1_tokenizer *t) {
    if (!t) return;
    free(t->flags), free(t->form), free(t->raw), free(t->pool);
    free(t->vocab), free(t->merges), free(t->added);
    pcre2_code_free(t->re);
    free(t->bos_text), free(t->eos_text);
    free(t);
}

int r1_tokenizer_n_vocab(const r1_tokenizer *t) {
    return t ? t->n_vocab : 0;
}
int r1_tokenizer_bos(const r1_tokenizer *t) {
    return t ? t->bos : -1;
}
int r1_tokenizer_eos(const r1_tokenizer *t) {
    return t ? t->eos : -1;
}
