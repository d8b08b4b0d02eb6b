/* The kjv-tiny demo model's tokenizer (4090 BPE tokens + the R1 special
 * tokens at other ids) against its HF golden: prompt ids, the chat template
 * example, and the 28,687-token validation text. */
#include "check.h"
#include "r1run.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int same_ids(const int32_t *a, size_t na, const cJSON *gold, size_t skip) {
    if ((size_t)cJSON_GetArraySize(gold) != na + skip) return 0;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, gold) {
        if (i >= skip && a[i - skip] != (int32_t)it->valuedouble) return 0;
        i++;
    }
    return 1;
}

static void test_prompts(const r1_tokenizer *t, const cJSON *g) {
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(g, "prompts")) {
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        const cJSON *gold = cJSON_GetObjectItem(p, "ids");
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(r1_tokenize(t, text, strlen(text), &ids, &n, NULL) == R1_OK);
        /* golden = [BOS] + encode(text) */
        CHECK(cJSON_GetArrayItem(gold, 0)->valueint == r1_tokenizer_bos(t));
        CHECK_MSG(same_ids(ids, n, gold, 1), "prompt \"%s\"", text);
        r1_free(ids);
    }
}

static void test_chat_example(const r1_tokenizer *t, const cJSON *g) {
    const cJSON *ex = cJSON_GetObjectItem(g, "chat_template_example");
    r1_chat_message msgs[8];
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(ex, "messages")) {
        msgs[n].role = cJSON_GetObjectItem(m, "role")->valuestring;
        msgs[n++].content = cJSON_GetObjectItem(m, "content")->valuestring;
    }
    char *text = NULL;
    int gen = cJSON_IsTrue(cJSON_GetObjectItem(ex, "add_generation_prompt"));
    CHECK(r1_chat_render(t, msgs, n, gen, &text, NULL) == R1_OK);
    CHECK_MSG(text && strcmp(text, cJSON_GetObjectItem(ex, "text")->valuestring) == 0,
              "rendered: %s", text ? text : "(null)");
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK(text && r1_tokenize(t, text, strlen(text), &ids, &n_ids, NULL) == R1_OK);
    CHECK(same_ids(ids, n_ids, cJSON_GetObjectItem(ex, "ids_raw_tokenizers"), 0));
    r1_free(ids), r1_free(text);
}

static void test_validation_text(const r1_tokenizer *t) {
    size_t len = 0, raw_len = 0;
    char *text = r1t_slurp(R1_TEST_DATA "/tokenizer/kjv_val.txt", &len);
    char *raw = r1t_slurp(R1_TEST_DATA "/tokenizer/kjv_val_ids.i32", &raw_len);
    CHECK(text && raw && raw_len == 4 * 28687);
    if (!text || !raw) return;
    int32_t *gold = malloc(raw_len), *ids = NULL;
    for (size_t i = 0; i < raw_len / 4; i++) { /* int32 little-endian */
        const unsigned char *b = (const unsigned char *)raw + 4 * i;
        gold[i] = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                            (uint32_t)b[3] << 24);
    }
    size_t n = 0;
    CHECK(r1_tokenize(t, text, len, &ids, &n, NULL) == R1_OK);
    size_t first_diff = 0;
    while (first_diff < n && first_diff < raw_len / 4 && ids[first_diff] == gold[first_diff])
        first_diff++;
    CHECK_MSG(n == raw_len / 4 && first_diff == n, "%zu ids, first difference at %zu", n,
              first_diff);
    char *dec = NULL;
    CHECK(r1_detokenize(t, gold, raw_len / 4, &dec, NULL) == R1_OK);
    CHECK(dec && strcmp(dec, text) == 0);
    r1_free(dec), r1_free(ids), free(gold), free(raw), free(text);
}

int main(void) {
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenizer_load(R1_SOURCE_ROOT "/models/kjv-tiny", &t, &err) == R1_OK, "%s",
              err.msg);
    cJSON *g = NULL;
    char *gj = r1t_slurp(R1_TEST_DATA "/tokenizer/kjv_golden.json", NULL);
    if (gj) g = cJSON_Parse(gj);
    CHECK(g != NULL);
    if (t && g) {
        CHECK(r1_tokenizer_n_vocab(t) == 4096);
        CHECK(r1_tokenizer_bos(t) == 4093 && r1_tokenizer_eos(t) == 4090);
        CHECK(r1_token_id(t, "<think>") == 4094 && r1_token_is_special(t, 4090));
        test_prompts(t, g);
        test_chat_example(t, g);
        test_validation_text(t);
    }
    cJSON_Delete(g), free(gj);
    r1_tokenizer_free(t);
    return r1t_finish("tokenizer_kjv");
}
