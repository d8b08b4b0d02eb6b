/* Tokenizer against the HF golden outputs for the R1 tokenizer
 * (tests/data/tokenizer/tokenizer_golden.jsonl) plus token-level queries and
 * the streaming decoder. Usage: test_tokenizer golden|queries|stream|speed */
#include "check.h"
#include "r1run.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define R1_DIR R1_SOURCE_ROOT "/models/r1-tokenizer"

/* Independent strict UTF-8 check (not the library's). */
static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 31 : len == 3 ? c & 15 : c & 7;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 63);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        i += len;
    }
    return 1;
}

/* Decodes ids one at a time; every chunk must be valid UTF-8. Returns the
 * concatenation (malloc'd) or NULL on a bad chunk. */
static char *stream_decode(const r1_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    r1_detok_stream st = {0};
    size_t cap = 4096, used = 0;
    char *all = malloc(cap), chunk[1024];
    for (size_t i = 0; i <= n; i++) {
        int k = r1_detok_stream_push(t, &st, i < n ? ids[i] : -1, chunk, sizeof chunk);
        if (k < 0 || !valid_utf8((unsigned char *)chunk, (size_t)k)) {
            free(all);
            return NULL;
        }
        if (used + (size_t)k + 1 > cap) all = realloc(all, cap = 2 * (used + (size_t)k + 1));
        memcpy(all + used, chunk, (size_t)k);
        used += (size_t)k;
    }
    all[used] = 0;
    *len = used;
    return all;
}

static int32_t *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) ids[i++] = (int32_t)it->valuedouble;
    return ids;
}

static void check_case(const r1_tokenizer *t, int line, const cJSON *c) {
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    const char *decoded = cJSON_GetObjectItem(c, "decoded")->valuestring;
    size_t n_gold, n = 0;
    int32_t *gold = json_ids(cJSON_GetObjectItem(c, "ids"), &n_gold), *ids = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenize(t, text, strlen(text), &ids, &n, &err) == R1_OK, "case %d: %s", line,
              err.msg);
    int same = n == n_gold && (n == 0 || memcmp(ids, gold, n * sizeof *ids) == 0);
    CHECK_MSG(same, "case %d: ids differ (%zu vs golden %zu tokens) for \"%.60s\"", line, n, n_gold,
              text);
    if (!same)
        for (size_t i = 0; i < n || i < n_gold; i++)
            fprintf(stderr, "  [%zu] %d %d\n", i, i < n ? ids[i] : -1, i < n_gold ? gold[i] : -1);
    char *dec = NULL;
    CHECK(r1_detokenize(t, ids, n, &dec, &err) == R1_OK);
    CHECK_MSG(dec && strcmp(dec, decoded) == 0, "case %d: decode(encode(x)) != golden decoded",
              line);
    size_t slen = 0;
    char *streamed = stream_decode(t, gold, n_gold, &slen);
    CHECK_MSG(streamed && slen == strlen(decoded) && memcmp(streamed, decoded, slen) == 0,
              "case %d: streaming decode differs or emitted invalid UTF-8", line);
    free(streamed), r1_free(dec), r1_free(ids), free(gold);
}

static void test_golden(const r1_tokenizer *t) {
    char *all = r1t_slurp(R1_TEST_DATA "/tokenizer/tokenizer_golden.jsonl", NULL);
    CHECK(all != NULL);
    if (!all) return;
    int line = 0;
    for (char *p = all, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p) - 1;
        *nl = 0;
        cJSON *c = cJSON_Parse(p);
        CHECK_MSG(c != NULL, "golden line %d is not JSON", line);
        if (c) check_case(t, line, c);
        cJSON_Delete(c);
        line++;
    }
    CHECK_MSG(line == 64, "expected 64 golden cases, read %d", line);
    free(all);
}

static void test_queries(const r1_tokenizer *t) {
    CHECK(r1_tokenizer_n_vocab(t) == 151665);
    CHECK(r1_tokenizer_bos(t) == 151646);
    CHECK(r1_tokenizer_eos(t) == 151643);
    CHECK(r1_token_id(t, "<｜User｜>") == 151644);
    CHECK(r1_token_id(t, "</think>") == 151649);
    CHECK(r1_token_id(t, "Hello") == 9707);
    CHECK(r1_token_id(t, " world") == 1879); /* raw bytes, looked up as "Ġworld" */
    CHECK(r1_token_id(t, "\n") == 198);
    CHECK(r1_token_id(t, "Ġworld") == -1);
    CHECK(r1_token_id(t, "<|im_start|>") == -1);
    CHECK(r1_token_id(t, "") == -1);
    CHECK(r1_token_is_special(t, 151643) && r1_token_is_special(t, 151646));
    CHECK(!r1_token_is_special(t, 151644) && !r1_token_is_special(t, 9707));
    CHECK(!r1_token_is_special(t, -1) && !r1_token_is_special(t, 151665));
    size_t len = 99;
    const char *b = r1_token_bytes(t, 1879, &len);
    CHECK(b && len == 6 && memcmp(b, " world", 6) == 0);
    b = r1_token_bytes(t, 151648, &len);
    CHECK(b && len == 7 && memcmp(b, "<think>", 7) == 0);
    b = r1_token_bytes(t, r1_token_id(t, "\xe4"), &len); /* a lone byte token */
    CHECK(b && len == 1 && (unsigned char)b[0] == 0xE4);
    CHECK(r1_token_bytes(t, 151665, &len) == NULL && len == 0);
    CHECK(r1_token_bytes(t, -5, NULL) == NULL);
    /* every byte has its own token */
    for (int c = 1; c < 256; c++) {
        char s[2] = {(char)c, 0};
        int32_t id = r1_token_id(t, s);
        b = r1_token_bytes(t, id, &len);
        CHECK_MSG(b && len == 1 && (unsigned char)b[0] == c, "byte %d", c);
    }
    r1_error err = {0};
    int32_t *ids = NULL, bad = 151665;
    size_t n = 1;
    CHECK(r1_tokenize(t, "\xff", 1, &ids, &n, &err) == R1_E_INVAL && ids == NULL && n == 0);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    CHECK(r1_tokenize(t, "a\0b", 3, &ids, &n, &err) == R1_OK && n == 3); /* NUL is a char */
    r1_free(ids);
    CHECK(r1_tokenize(t, NULL, 0, &ids, &n, &err) == R1_OK && ids && n == 0);
    r1_free(ids);
    char *text = NULL;
    CHECK(r1_detokenize(t, &bad, 1, &text, &err) == R1_E_RANGE && text == NULL);
    CHECK(strstr(err.msg, "151665") != NULL);
}

/* Byte tokens of a UTF-8 sequence split over several pushes. */
static void test_stream(const r1_tokenizer *t) {
    int32_t c3 = r1_token_id(t, "\xc3"), a9 = r1_token_id(t, "\xa9"), a = r1_token_id(t, "a");
    int32_t f0 = r1_token_id(t, "\xf0"), x9f = r1_token_id(t, "\x9f");
    CHECK(c3 >= 0 && a9 >= 0 && a >= 0 && f0 >= 0 && x9f >= 0);
    r1_detok_stream st = {0};
    char out[16];
    CHECK(r1_detok_stream_push(t, &st, c3, out, sizeof out) == 0 && st.n_pending == 1);
    CHECK(r1_detok_stream_push(t, &st, a9, out, 1) == -1 && st.n_pending == 1); /* too small */
    CHECK(r1_detok_stream_push(t, &st, a9, out, sizeof out) == 2 && memcmp(out, "é", 2) == 0);
    /* an incomplete sequence interrupted by ASCII becomes U+FFFD */
    CHECK(r1_detok_stream_push(t, &st, f0, out, sizeof out) == 0);
    CHECK(r1_detok_stream_push(t, &st, x9f, out, sizeof out) == 0 && st.n_pending == 2);
    CHECK(r1_detok_stream_push(t, &st, a, out, sizeof out) == 4 && memcmp(out,
                                                                          "\xef\xbf\xbd"
                                                                          "a",
                                                                          4) == 0);
    /* a byte that can never start a sequence is replaced at once */
    CHECK(r1_detok_stream_push(t, &st, a9, out, sizeof out) == 3);
    /* flush (negative id) of a held-back prefix */
    CHECK(r1_detok_stream_push(t, &st, c3, out, sizeof out) == 0);
    CHECK(r1_detok_stream_push(t, &st, -1, out, sizeof out) == 3 && st.n_pending == 0);
    CHECK(r1_detok_stream_push(t, &st, -1, out, sizeof out) == 0);
    CHECK(r1_detok_stream_push(t, &st, 151665, out, sizeof out) == 0); /* unknown id */

    /* Random id sequences, biased to byte tokens: the stream is always valid
     * UTF-8 and its concatenation equals r1_detokenize. */
    uint64_t rng = 12345;
    int32_t ids[64];
    for (int round = 0; round < 2000; round++) {
        for (int i = 0; i < 64; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(rng >> 33);
            ids[i] = r % 4 ? (int32_t)(r % 256) : (int32_t)(r % 151665);
            size_t len;
            const char *b = r1_token_bytes(t, ids[i], &len);
            if (memchr(b, 0, len)) ids[i] = 0; /* strlen() must see the whole text */
        }
        char *whole = NULL;
        size_t slen = 0;
        CHECK(r1_detokenize(t, ids, 64, &whole, NULL) == R1_OK);
        char *streamed = stream_decode(t, ids, 64, &slen);
        CHECK_MSG(streamed && whole && slen == strlen(whole) && !memcmp(streamed, whole, slen),
                  "random round %d", round);
        CHECK(whole && valid_utf8((unsigned char *)whole, strlen(whole)));
        free(streamed), r1_free(whole);
        if (r1t_failures) break;
    }
}

/* A 32k-token prompt (the golden texts repeated) must encode well under a
 * second; prints the throughput. The bound is loose for sanitizer builds. */
static void test_speed(const r1_tokenizer *t) {
    char *all = r1t_slurp(R1_TEST_DATA "/tokenizer/tokenizer_golden.jsonl", NULL);
    if (!all) return;
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    for (int round = 0; len < 140000; round++)
        for (char *p = all, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
            *nl = 0;
            cJSON *c = cJSON_Parse(p);
            const char *s = c ? cJSON_GetObjectItem(c, "text")->valuestring : "";
            if (len + strlen(s) + 1 < cap) memcpy(text + len, s, strlen(s)), len += strlen(s);
            text[len++] = '\n';
            cJSON_Delete(c);
            *nl = '\n';
        }
    int32_t *ids = NULL;
    size_t n = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(r1_tokenize(t, text, len, &ids, &n, NULL) == R1_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    printf("%zu bytes -> %zu tokens in %.2f ms (%.1f MB/s)\n", len, n, dt * 1e3,
           (double)len / dt / 1e6);
    CHECK(n >= 32768);
    CHECK_MSG(dt < 1.0, "32k-token prompt took %.3f s", dt);
    r1_free(ids), free(text), free(all);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "golden";
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenizer_load(R1_DIR, &t, &err) == R1_OK, "%s", err.msg);
    if (!t) return r1t_finish("test_tokenizer");
    if (strcmp(what, "golden") == 0) test_golden(t);
    if (strcmp(what, "queries") == 0) test_queries(t);
    if (strcmp(what, "stream") == 0) test_stream(t);
    if (strcmp(what, "speed") == 0) test_speed(t);
    r1_tokenizer_free(t);
    return r1t_finish(what);
}
