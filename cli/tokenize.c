/* The tokenizer modes: --tokenize, --tokenize-file, --detokenize, --dump-prompt.
 * They load only the tokenizer files, never the weights. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "prompt.h"
#include "util.h"

static int encode_print(const r1_tokenizer *t, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    r1_error err = {0};
    if (r1_tokenize(t, text, len, &ids, &n, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    r1cli_print_ids_json(stdout, ids, n);
    putchar('\n');
    r1_free(ids);
    return 0;
}

int r1cli_tokenize(const r1cli_opts *o) {
    r1_tokenizer *t = NULL;
    int rc = r1cli_load_tokenizer(o, &t);
    if (!rc && o->tokenize) rc = encode_print(t, o->tokenize, strlen(o->tokenize));
    if (!rc && o->tokenize_file) {
        size_t len = 0;
        char *text = r1cli_read_file("--tokenize-file", o->tokenize_file, &len);
        rc = text ? encode_print(t, text, len) : 1;
        free(text);
    }
    r1_tokenizer_free(t);
    return rc;
}

int r1cli_detokenize(const r1cli_opts *o) {
    int32_t *ids = NULL;
    int n = 0;
    if (r1cli_parse_ids(o->detokenize, 1, &ids, &n))
        return r1cli_bad("--detokenize", "expects non-negative ids like 1,2,3 or [1, 2, 3]");
    r1_tokenizer *t = NULL;
    int rc = r1cli_load_tokenizer(o, &t);
    char *text = NULL;
    r1_error err = {0};
    if (!rc && r1_detokenize(t, ids, (size_t)n, &text, &err)) {
        fprintf(stderr, "r1run: --detokenize: %s\n", err.msg);
        rc = 1;
    }
    if (!rc) fwrite(text, 1, strlen(text), stdout); /* exactly the text: no newline added */
    r1_free(text);
    r1_tokenizer_free(t);
    free(ids);
    return rc;
}

static int print_prompt_json(const char *text, const int32_t *ids, size_t n) {
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_CreateArray();
    int ok = j && a && cJSON_AddStringToObject(j, "text", text);
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *v = cJSON_CreateNumber(ids[i]);
        ok = v && cJSON_AddItemToArray(a, v);
    }
    ok = ok && cJSON_AddItemToObject(j, "ids", a);
    if (!ok) cJSON_Delete(a); /* not owned by j yet */
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return fprintf(stderr, "r1run: --dump-prompt: out of memory\n"), 1;
    puts(s);
    cJSON_free(s);
    return 0;
}

int r1cli_dump_prompt(const r1cli_opts *o) {
    if (!o->prompt && !o->messages)
        return r1cli_bad("--dump-prompt", "needs --messages FILE or -p TEXT");
    r1_tokenizer *t = NULL;
    int rc = r1cli_load_tokenizer(o, &t);
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (!rc) rc = r1cli_build_prompt(o, t, &text, &ids, &n);
    if (!rc) rc = print_prompt_json(text, ids, n);
    r1_free(text);
    r1_free(ids);
    r1_tokenizer_free(t);
    return rc;
}
