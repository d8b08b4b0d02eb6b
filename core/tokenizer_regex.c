/* The pre-tokenizer's split pattern, compiled with PCRE2.
 *
 * HF tokenizers runs these patterns with Oniguruma, where \s is Unicode
 * White_Space. PCRE2's \s under PCRE2_UCP also matches U+180E (white space
 * before Unicode 6.3), so \s and \S are rewritten to an explicit class. \p{L},
 * \p{N} and case folding agree between the engines (up to their Unicode
 * versions). */
#include "tokenizer.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

/* Unicode White_Space, as class items. */
#define WS_ITEMS                                                                                   \
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}"             \
    "\\x{202f}\\x{205f}\\x{3000}"

/* Copies pattern to out, replacing \s and \S; out must hold
 * strlen(pattern) * sizeof "[^" WS_ITEMS "]" + 1 bytes. Inside a character class \S
 * is left alone (a negated set cannot be nested there). */
static void rewrite_space(const char *p, char *out) {
    int in_class = 0;
    size_t o = 0;
    for (size_t i = 0; p[i];) {
        if (p[i] == '\\' && p[i + 1] == 'Q') { /* \Q...\E is literal */
            const char *e = strstr(p + i + 2, "\\E");
            size_t n = e ? (size_t)(e - (p + i)) + 2 : strlen(p + i);
            memcpy(out + o, p + i, n);
            o += n, i += n;
            continue;
        }
        if (p[i] == '\\' && p[i + 1]) {
            const char *rep = NULL;
            if (p[i + 1] == 's') rep = in_class ? WS_ITEMS : "[" WS_ITEMS "]";
            if (p[i + 1] == 'S' && !in_class) rep = "[^" WS_ITEMS "]";
            if (rep) {
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                out[o++] = p[i], out[o++] = p[i + 1];
            }
            i += 2;
            continue;
        }
        if (!in_class && p[i] == '[') {
            in_class = 1;
            out[o++] = p[i++];
            if (p[i] == '^') out[o++] = p[i++];
            if (p[i] == ']') out[o++] = p[i++]; /* a leading ] is literal */
            continue;
        }
        if (in_class && p[i] == '[' && p[i + 1] == ':') { /* POSIX [:name:] */
            const char *e = strstr(p + i + 2, ":]");
            size_t n = e ? (size_t)(e - (p + i)) + 2 : 1;
            memcpy(out + o, p + i, n);
            o += n, i += n;
            continue;
        }
        if (in_class && p[i] == ']') in_class = 0;
        out[o++] = p[i++];
    }
    out[o] = 0;
}

r1_status r1__regex_compile(const char *pattern, const char *path, pcre2_code **out,
                            r1_error *err) {
    *out = NULL;
    char *pat = malloc(strlen(pattern) * (sizeof "[^" WS_ITEMS "]") + 1);
    if (!pat) return r1__err(err, R1_E_NOMEM, "%s: out of memory compiling the regex", path);
    rewrite_space(pattern, pat);
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &code, &at, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return r1__err(err, R1_E_FORMAT, "%s: pre_tokenizer regex does not compile: %s", path,
                       (const char *)msg);
    }
    /* JIT is an optimisation only: without it pcre2_match interprets. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return R1_OK;
}
