/* r1_tokenizer_load on broken and minimal tokenizer folders: every bad input
 * gives one clear error (code and field named), never a crash; a minimal
 * hand-written tokenizer exercises merges in both formats, unknown bytes,
 * tokenizer_config.json variants and a missing config. */
#include "check.h"
#include "r1run.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void remove_files(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir), remove(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir), remove(path);
}

/* A tokenizer.json with the given model and extra top-level fields. */
#define PRE                                                                                        \
    "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "       \
    "\"pattern\": {\"Regex\": \" ?\\\\p{L}+|\\\\s+\"}, \"behavior\": \"Isolated\", "               \
    "\"invert\": false}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}"
#define VOCAB                                                                                      \
    "\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"Ġ\": 3, \"ab\": 4, \"abc\": 5, \"Ġab\": 6}"
#define ADDED "\"added_tokens\": [{\"id\": 7, \"content\": \"<s>\", \"special\": true}]"

static void expect_load_error(const char *json, r1_status code, const char *needle) {
    remove_files();
    write_file("tokenizer.json", json);
    r1_tokenizer *t = (r1_tokenizer *)1;
    r1_error err = {0};
    r1_status st = r1_tokenizer_load(dir, &t, &err);
    CHECK_MSG(st == code && t == NULL, "want %d got %d (%s) for: %s", code, st, err.msg, json);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
    CHECK_MSG(strstr(err.msg, "tokenizer") != NULL, "message \"%s\" names no file", err.msg);
    if (st == R1_OK) r1_tokenizer_free(t);
}

static void test_bad_files(void) {
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK(r1_tokenizer_load(NULL, &t, &err) == R1_E_INVAL);
    CHECK(r1_tokenizer_load(dir, NULL, &err) == R1_E_INVAL);
    remove_files();
    CHECK(r1_tokenizer_load(dir, &t, &err) == R1_E_IO && t == NULL);
    CHECK(strstr(err.msg, "tokenizer.json") && strstr(err.msg, "cannot open"));
    expect_load_error("{\"model\": {\"vocab\": {\"a\": 0,}}", R1_E_FORMAT, "invalid JSON");
    expect_load_error("", R1_E_FORMAT, "invalid JSON");
    expect_load_error("[1, 2]", R1_E_FORMAT, "not an object");
    expect_load_error("{\"model\": {\"type\": \"BPE\"}}", R1_E_FORMAT, "model.vocab");
    expect_load_error("{\"model\": {\"vocab\": []}}", R1_E_FORMAT, "model.vocab");
    expect_load_error("{\"model\": {\"vocab\": {}}}", R1_E_FORMAT, "empty");
    expect_load_error("{\"model\": {\"vocab\": {\"a\": \"x\"}}}", R1_E_FORMAT,
                      "model.vocab[\"a\"]");
    expect_load_error("{\"model\": {\"vocab\": {\"a\": -1}}}", R1_E_FORMAT, "model.vocab[\"a\"]");
    expect_load_error("{\"model\": {\"vocab\": {\"a\": 1.5}}}", R1_E_FORMAT, "model.vocab[\"a\"]");
    expect_load_error("{\"model\": {\"vocab\": {\"a\": 1e12}}}", R1_E_FORMAT, "model.vocab");
    expect_load_error("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}}}", R1_E_FORMAT, "id 0");
    expect_load_error("{\"model\": {" VOCAB ", \"merges\": [\"a x\"]}}", R1_E_FORMAT,
                      "model.merges[0]");
    expect_load_error("{\"model\": {" VOCAB ", \"merges\": [\"a b\", \"ab\"]}}", R1_E_FORMAT,
                      "model.merges[1]");
    expect_load_error("{\"model\": {" VOCAB ", \"merges\": [\"b c\"]}}", R1_E_FORMAT,
                      "merged token not in model.vocab");
    expect_load_error("{\"model\": {" VOCAB ", \"merges\": {}}}", R1_E_FORMAT, "model.merges");
    expect_load_error("{\"model\": {" VOCAB "}, \"added_tokens\": [{\"id\": 9}]}", R1_E_FORMAT,
                      "added_tokens[0].content");
    expect_load_error("{\"model\": {" VOCAB "}, \"added_tokens\": [{\"content\": \"x\"}]}",
                      R1_E_FORMAT, "added_tokens[0].id");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", " VOCAB "}}", R1_E_UNSUPPORTED,
                      "model.type");
    expect_load_error("{\"model\": {" VOCAB "}, \"normalizer\": {\"type\": \"Lowercase\"}, " PRE
                      "}",
                      R1_E_UNSUPPORTED, "normalizer \"Lowercase\"");
    expect_load_error("{\"model\": {" VOCAB "}}", R1_E_UNSUPPORTED, "pre_tokenizer");
    expect_load_error("{\"model\": {" VOCAB "}, \"pre_tokenizer\": {\"type\": \"Sequence\", "
                      "\"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                      "\"(\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
                      "\"use_regex\": false}]}}",
                      R1_E_FORMAT, "regex");
    expect_load_error("{\"model\": {" VOCAB "}, \"pre_tokenizer\": {\"type\": \"Sequence\", "
                      "\"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                      "\"a\"}, \"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\"}]}}",
                      R1_E_UNSUPPORTED, "Isolated");
    expect_load_error("{\"model\": {" VOCAB "}, " PRE ", \"decoder\": {\"type\": \"WordPiece\"}}",
                      R1_E_UNSUPPORTED, "decoder");

    /* tokenizer_config.json problems */
    const char *good = "{\"model\": {" VOCAB "}, " PRE ", " ADDED "}";
    write_file("tokenizer.json", good);
    write_file("tokenizer_config.json", "{\"bos_token\": ");
    t = (r1_tokenizer *)1;
    CHECK(r1_tokenizer_load(dir, &t, &err) == R1_E_FORMAT && t == NULL);
    CHECK(strstr(err.msg, "tokenizer_config.json") && strstr(err.msg, "invalid JSON"));
    write_file("tokenizer_config.json", "{\"bos_token\": 5}");
    CHECK(r1_tokenizer_load(dir, &t, &err) == R1_E_FORMAT);
    CHECK(strstr(err.msg, "tokenizer_config.json") && strstr(err.msg, "bos_token"));
}

static void expect_ids(const r1_tokenizer *t, const char *text, const int32_t *want, size_t n) {
    int32_t *ids = NULL;
    size_t got = 0;
    CHECK(r1_tokenize(t, text, strlen(text), &ids, &got, NULL) == R1_OK);
    CHECK_MSG(got == n && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0), "\"%s\": %zu ids",
              text, got);
    r1_free(ids);
}

static void test_minimal(const char *merges, const char *config) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", " VOCAB ", \"merges\": %s}, " PRE ", " ADDED "}",
             merges);
    remove_files();
    write_file("tokenizer.json", json);
    if (config) write_file("tokenizer_config.json", config);
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenizer_load(dir, &t, &err) == R1_OK, "%s", err.msg);
    if (!t) return;
    CHECK(r1_tokenizer_n_vocab(t) == 8);
    /* "x" has no byte token: dropped, as HF BPE without unk_token does */
    expect_ids(t, "abc ab<s>xab", (const int32_t[]){5, 6, 7, 4}, 4);
    expect_ids(t, "ba", (const int32_t[]){1, 0}, 2);
    char *text = NULL;
    r1_chat_message m = {"user", "hi"};
    CHECK(r1_chat_render(t, &m, 1, 0, &text, NULL) == R1_OK);
    if (!config) {
        CHECK(r1_tokenizer_bos(t) == -1 && r1_tokenizer_eos(t) == -1);
        CHECK(text && strcmp(text, "<｜User｜>hi") == 0); /* no BOS text known */
    } else {
        CHECK(r1_tokenizer_bos(t) == 7 && r1_tokenizer_eos(t) == -1); /* eos not a token */
        CHECK(text && strcmp(text, "<s><｜User｜>hi") == 0);
    }
    r1_free(text);
    r1_tokenizer_free(t);
}

/* unk_token / fuse_unk, ignore_merges, and an added token with
 * "normalized": true (matched after NFC). */
static void test_model_options(int fuse_unk, int ignore_merges) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ba\": 3, \"ab\": 4}, "
             "\"merges\": [\"a b\"], \"unk_token\": \"c\", \"fuse_unk\": %s, "
             "\"ignore_merges\": %s}, \"normalizer\": {\"type\": \"NFC\"}, " PRE
             ", \"added_tokens\": [{\"id\": 5, \"content\": \"é\", \"normalized\": true}]}",
             fuse_unk ? "true" : "false", ignore_merges ? "true" : "false");
    remove_files();
    write_file("tokenizer.json", json);
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenizer_load(dir, &t, &err) == R1_OK, "%s", err.msg);
    if (!t) return;
    if (fuse_unk)
        expect_ids(t, "xyab", (const int32_t[]){2, 4}, 2);
    else
        expect_ids(t, "xyab", (const int32_t[]){2, 2, 4}, 3);
    if (ignore_merges) /* the whole word is in the vocabulary */
        expect_ids(t, "ba", (const int32_t[]){3}, 1);
    else /* no merge "b a": BPE leaves two symbols */
        expect_ids(t, "ba", (const int32_t[]){1, 0}, 2);
    expect_ids(t,
               "ab"
               "e\xcc\x81"
               "b",
               (const int32_t[]){4, 5, 1}, 3); /* e + U+0301 -> é */
    r1_tokenizer_free(t);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/r1tokXXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_bad_files();
    test_minimal("[\"a b\", \"ab c\", \"Ġ ab\"]", NULL);
    test_minimal("[[\"a\", \"b\"], [\"ab\", \"c\"], [\"Ġ\", \"ab\"]]",
                 "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}}");
    test_model_options(0, 0);
    test_model_options(1, 1);
    remove_files();
    rmdir(dir);
    return r1t_finish("tokenizer_errors");
}
