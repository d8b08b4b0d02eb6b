/* The parts of tokenizer.json around the BPE model (normalizer, pre-tokenizer,
 * decoder, model options) and tokenizer_config.json (BOS / EOS names).
 * Anything the encoder would silently get wrong is refused with
 * R1_E_UNSUPPORTED, naming the field. */
#include "tokenizer.h"

#include "error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The split HF's ByteLevel pre-tokenizer applies when use_regex is true. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *type_of(const cJSON *o) {
    const cJSON *ty = get(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : "(none)";
}

static int is_absent(const cJSON *v) {
    return !v || cJSON_IsNull(v);
}

static r1_status check_normalizer(r1_tokenizer *t, const cJSON *n, const char *path,
                                  r1_error *err) {
    if (is_absent(n)) return R1_OK;
    if (strcmp(type_of(n), "NFC") == 0) {
        t->nfc = 1;
        return R1_OK;
    }
    if (strcmp(type_of(n), "Sequence") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, get(n, "normalizers")) {
            if (strcmp(type_of(it), "NFC") != 0)
                return r1__err(err, R1_E_UNSUPPORTED,
                               "%s: normalizer \"%s\" is not supported (only NFC)", path,
                               type_of(it));
            t->nfc = 1;
        }
        return R1_OK;
    }
    return r1__err(err, R1_E_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (only NFC)", path,
                   type_of(n));
}

static r1_status check_split(const cJSON *sp, const char **pattern, const char *path,
                             r1_error *err) {
    const cJSON *re = get(get(sp, "pattern"), "Regex");
    const cJSON *behavior = get(sp, "behavior");
    if (!cJSON_IsString(re))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: pre_tokenizer Split needs a pattern.Regex",
                       path);
    if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") != 0)
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: pre_tokenizer Split behavior must be \"Isolated\"", path);
    if (cJSON_IsTrue(get(sp, "invert")))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: pre_tokenizer Split invert is not supported",
                       path);
    *pattern = re->valuestring;
    return R1_OK;
}

/* ByteLevel must come last; with use_regex (default true) it splits itself. */
static r1_status check_bytelevel(const cJSON *bl, const char **pattern, const char *path,
                                 r1_error *err) {
    if (cJSON_IsTrue(get(bl, "add_prefix_space")))
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: pre_tokenizer ByteLevel add_prefix_space is not supported", path);
    if (!cJSON_IsFalse(get(bl, "use_regex"))) {
        if (*pattern)
            return r1__err(err, R1_E_UNSUPPORTED,
                           "%s: pre_tokenizer: Split followed by ByteLevel use_regex", path);
        *pattern = GPT2_PATTERN;
    }
    return R1_OK;
}

static r1_status check_pre_tokenizer(r1_tokenizer *t, const cJSON *pt, const char *path,
                                     r1_error *err) {
    const char *pattern = NULL;
    r1_status st = R1_OK;
    int bytelevel = 0;
    if (strcmp(type_of(pt), "ByteLevel") == 0) {
        st = check_bytelevel(pt, &pattern, path, err);
        bytelevel = 1;
    } else if (strcmp(type_of(pt), "Sequence") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, get(pt, "pretokenizers")) {
            const char *ty = type_of(it);
            if (bytelevel || (strcmp(ty, "Split") != 0 && strcmp(ty, "ByteLevel") != 0) ||
                (strcmp(ty, "Split") == 0 && pattern))
                return r1__err(err, R1_E_UNSUPPORTED,
                               "%s: pre_tokenizer: only [Split,] ByteLevel is supported", path);
            if (strcmp(ty, "Split") == 0) {
                st = check_split(it, &pattern, path, err);
            } else {
                st = check_bytelevel(it, &pattern, path, err);
                bytelevel = 1;
            }
            if (st) return st;
        }
    }
    if (st) return st;
    if (!bytelevel)
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: pre_tokenizer \"%s\" is not supported (byte-level BPE only)", path,
                       type_of(pt));
    return pattern ? r1__regex_compile(pattern, path, &t->re, err) : R1_OK;
}

static r1_status check_model(r1_tokenizer *t, const cJSON *model, const char *path, r1_error *err) {
    const cJSON *ty = get(model, "type"), *dropout = get(model, "dropout");
    const cJSON *prefix = get(model, "continuing_subword_prefix");
    const cJSON *suffix = get(model, "end_of_word_suffix");
    if (ty && !(cJSON_IsString(ty) && strcmp(ty->valuestring, "BPE") == 0))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: model.type \"%s\" is not supported (BPE only)",
                       path, type_of(model));
    if ((cJSON_IsString(prefix) && prefix->valuestring[0]) ||
        (cJSON_IsString(suffix) && suffix->valuestring[0]))
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: model continuing_subword_prefix / end_of_word_suffix not supported",
                       path);
    if (cJSON_IsTrue(get(model, "byte_fallback")))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: model.byte_fallback is not supported", path);
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return r1__err(err, R1_E_UNSUPPORTED, "%s: model.dropout is not supported", path);
    const cJSON *unk = get(model, "unk_token");
    if (cJSON_IsString(unk)) t->unk = r1__vocab_find(t, unk->valuestring, strlen(unk->valuestring));
    t->fuse_unk = cJSON_IsTrue(get(model, "fuse_unk"));
    t->ignore_merges = cJSON_IsTrue(get(model, "ignore_merges"));
    return R1_OK;
}

r1_status r1__tok_check_pipeline(r1_tokenizer *t, const struct cJSON *root, const char *path,
                                 r1_error *err) {
    const cJSON *dec = get(root, "decoder");
    r1_status st = check_model(t, get(root, "model"), path, err);
    if (!st) st = check_normalizer(t, get(root, "normalizer"), path, err);
    if (!st) st = check_pre_tokenizer(t, get(root, "pre_tokenizer"), path, err);
    if (!st && !is_absent(dec) && strcmp(type_of(dec), "ByteLevel") != 0)
        st = r1__err(err, R1_E_UNSUPPORTED, "%s: decoder \"%s\" is not supported (ByteLevel only)",
                     path, type_of(dec));
    return st;
}

/* Exact token string to id: added contents first, then vocabulary forms
 * (HF token_to_id). */
static int32_t exact_id(const r1_tokenizer *t, const char *s) {
    size_t n = strlen(s);
    for (int i = 0; i < t->n_added; i++) {
        size_t len;
        const char *c = r1__tok_form(t, t->added[i].id, &len);
        if (len == n && memcmp(c, s, n) == 0) return t->added[i].id;
    }
    return r1__vocab_find(t, s, n);
}

/* bos_token / eos_token: a plain string or an AddedToken {"content": ...}. */
static r1_status config_token(const cJSON *root, const char *key, char **text, const char *path,
                              r1_error *err) {
    const cJSON *v = get(root, key);
    if (is_absent(v)) return R1_OK;
    if (cJSON_IsObject(v)) v = get(v, "content");
    if (!cJSON_IsString(v))
        return r1__err(err, R1_E_FORMAT, "%s: %s is neither a string nor {\"content\": string}",
                       path, key);
    *text = strdup(v->valuestring);
    return *text ? R1_OK : r1__err(err, R1_E_NOMEM, "%s: out of memory", path);
}

r1_status r1__tok_load_config(r1_tokenizer *t, const char *dir, r1_error *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer_config.json", dir) >= sizeof path)
        return r1__err(err, R1_E_INVAL, "r1_tokenizer_load: directory name too long");
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) return R1_OK; /* optional: BOS / EOS stay unknown */
    if (f) fclose(f);
    char *text;
    size_t len;
    r1_status st = r1__read_text_file(path, &text, &len, err);
    if (st) return st;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return r1__err(err, R1_E_FORMAT, "%s: invalid JSON near byte %zu", path, at);
    }
    st = config_token(root, "bos_token", &t->bos_text, path, err);
    if (!st) st = config_token(root, "eos_token", &t->eos_text, path, err);
    cJSON_Delete(root);
    if (t->bos_text) t->bos = exact_id(t, t->bos_text);
    if (t->eos_text) t->eos = exact_id(t, t->eos_text);
    return st;
}
