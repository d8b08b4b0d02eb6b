/* r1_chat_render against the R1-distill chat template:
 *  - tests/data/tokenizer/chat_golden.jsonl: text rendered by transformers and
 *    ids from HF tokenizers (3 conversations);
 *  - tests/data/tokenizer/chat_extra.jsonl: edge cases (several systems,
 *    several </think>, tool outputs, empty conversation) rendered from
 *    tokenizer_config.json's chat_template with jinja2 3.1.6 configured as
 *    transformers does (ImmutableSandboxedEnvironment, trim_blocks,
 *    lstrip_blocks);
 *  - argument errors. */
#include "check.h"
#include "r1run.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_conversation(const r1_tokenizer *t, const cJSON *c) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    r1_chat_message msgs[16];
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(c, "messages")) {
        if (n == 16) break;
        msgs[n].role = cJSON_GetObjectItem(m, "role")->valuestring;
        msgs[n++].content = cJSON_GetObjectItem(m, "content")->valuestring;
    }
    int gen = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
    char *text = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_chat_render(t, msgs, n, gen, &text, &err) == R1_OK, "%s: %s", name, err.msg);
    const char *want = cJSON_GetObjectItem(c, "text")->valuestring;
    CHECK_MSG(text && strcmp(text, want) == 0, "%s: rendered\n%s\nwanted\n%s", name,
              text ? text : "(null)", want);
    const cJSON *gold = cJSON_GetObjectItem(c, "ids");
    if (gold && text) { /* the golden ids encode the rendered text as is */
        int32_t *ids = NULL;
        size_t n_ids = 0, i = 0;
        CHECK(r1_tokenize(t, text, strlen(text), &ids, &n_ids, &err) == R1_OK);
        int same = n_ids == (size_t)cJSON_GetArraySize(gold);
        const cJSON *it;
        cJSON_ArrayForEach(it, gold) same = same && ids[i++] == (int32_t)it->valuedouble;
        CHECK_MSG(same, "%s: ids differ", name);
        r1_free(ids);
    }
    r1_free(text);
}

static int check_file(const r1_tokenizer *t, const char *path) {
    char *all = r1t_slurp(path, NULL);
    CHECK_MSG(all != NULL, "cannot read %s", path);
    int cases = 0;
    for (char *line = all ? strtok(all, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        CHECK_MSG(c != NULL, "%s: line %d is not JSON", path, cases);
        if (c) check_conversation(t, c);
        cJSON_Delete(c);
        cases++;
    }
    free(all);
    return cases;
}

static void check_errors(const r1_tokenizer *t) {
    r1_error err = {0};
    char *text = (char *)1;
    r1_chat_message bad_role = {"robot", "hi"}, no_content = {"user", NULL};
    CHECK(r1_chat_render(t, &bad_role, 1, 1, &text, &err) == R1_E_INVAL && text == NULL);
    CHECK(strstr(err.msg, "messages[0].role \"robot\"") != NULL);
    CHECK(r1_chat_render(t, &no_content, 1, 1, &text, &err) == R1_E_INVAL);
    CHECK(strstr(err.msg, "content") != NULL);
    CHECK(r1_chat_render(t, NULL, 1, 1, &text, &err) == R1_E_INVAL);
    CHECK(r1_chat_render(NULL, &bad_role, 1, 1, &text, &err) == R1_E_INVAL);
    CHECK(r1_chat_render(t, NULL, 0, 0, NULL, &err) == R1_E_INVAL);
}

int main(void) {
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_tokenizer_load(R1_SOURCE_ROOT "/models/r1-tokenizer", &t, &err) == R1_OK, "%s",
              err.msg);
    if (t) {
        CHECK(check_file(t, R1_TEST_DATA "/tokenizer/chat_golden.jsonl") == 3);
        CHECK(check_file(t, R1_TEST_DATA "/tokenizer/chat_extra.jsonl") == 9);
        check_errors(t);
    }
    r1_tokenizer_free(t);
    return r1t_finish("chat");
}
