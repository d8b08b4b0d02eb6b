#include "prompt.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int r1cli_msgs_push(r1cli_msgs *m, const char *role, const char *content) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        r1_chat_message *v = realloc(m->v, cap * sizeof *v);
        if (!v) return -1;
        m->v = v, m->cap = cap;
    }
    char *r = strdup(role), *c = strdup(content);
    if (!r || !c) return free(r), free(c), -1;
    m->v[m->n++] = (r1_chat_message){r, c};
    return 0;
}

void r1cli_msgs_pop(r1cli_msgs *m) {
    if (!m->n) return;
    m->n--;
    free((char *)m->v[m->n].role);
    free((char *)m->v[m->n].content);
}

void r1cli_msgs_clear(r1cli_msgs *m) {
    while (m->n) r1cli_msgs_pop(m);
}

void r1cli_msgs_free(r1cli_msgs *m) {
    r1cli_msgs_clear(m);
    free(m->v);
    memset(m, 0, sizeof *m);
}

static int load_error(const char *path, const char *why) {
    fprintf(stderr, "r1run: --messages %s: %s\n", path, why);
    return 1;
}

static int load_array(const char *path, const cJSON *arr, r1cli_msgs *m) {
    if (!cJSON_IsArray(arr)) return load_error(path, "expects an array of messages");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *role = cJSON_GetObjectItem(it, "role");
        const cJSON *content = cJSON_GetObjectItem(it, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            char why[96];
            snprintf(why, sizeof why, "message %d needs string \"role\" and \"content\"", i);
            return load_error(path, why);
        }
        if (r1cli_msgs_push(m, role->valuestring, content->valuestring))
            return load_error(path, "out of memory");
        i++;
    }
    return 0;
}

int r1cli_msgs_load(const char *path, r1cli_msgs *m) {
    char *text = r1cli_read_file("--messages", path, NULL);
    if (!text) return 1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return load_error(path, "invalid JSON");
    int rc;
    m->add_generation_prompt = 1;
    if (cJSON_IsObject(j)) {
        const cJSON *gen = cJSON_GetObjectItem(j, "add_generation_prompt");
        if (gen && !cJSON_IsBool(gen))
            rc = load_error(path, "\"add_generation_prompt\" must be true or false");
        else {
            if (gen) m->add_generation_prompt = cJSON_IsTrue(gen);
            rc = load_array(path, cJSON_GetObjectItem(j, "messages"), m);
        }
    } else {
        rc = load_array(path, j, m);
    }
    cJSON_Delete(j);
    return rc;
}

int r1cli_msgs_from_opts(const r1cli_opts *o, r1cli_msgs *m) {
    /* --system first: a system message of the file then overrides it, as the
     * template keeps the last one */
    int oom = o->system && r1cli_msgs_push(m, "system", o->system);
    if (!oom && o->messages && r1cli_msgs_load(o->messages, m)) return 1;
    m->add_generation_prompt = o->messages ? m->add_generation_prompt : 1;
    /* in chat, -p is the first typed turn rather than part of the history */
    oom = oom || (o->prompt && !o->interactive && r1cli_msgs_push(m, "user", o->prompt));
    if (oom) fprintf(stderr, "r1run: out of memory\n");
    return oom;
}

r1_status r1cli_render(const r1_tokenizer *t, const r1cli_msgs *m, char **text, int32_t **ids,
                       size_t *n, r1_error *err) {
    *ids = NULL;
    r1_status st = r1_chat_render(t, m->v, m->n, m->add_generation_prompt, text, err);
    if (!st) st = r1_tokenize(t, *text, strlen(*text), ids, n, err);
    if (st) r1_free(*text), *text = NULL;
    return st;
}

r1_status r1cli_raw_ids(const r1_tokenizer *t, const char *text, int bos, int32_t **ids, size_t *n,
                        r1_error *err) {
    int32_t *body = NULL;
    size_t nb = 0;
    r1_status st = r1_tokenize(t, text, strlen(text), &body, &nb, err);
    if (st) return st;
    int b = bos ? r1_tokenizer_bos(t) : -1;
    if (b < 0) return *ids = body, *n = nb, R1_OK;
    int32_t *v = malloc((nb + 1) * sizeof *v);
    if (!v) {
        r1_free(body);
        if (err) err->code = R1_E_NOMEM, snprintf(err->msg, sizeof err->msg, "out of memory");
        return R1_E_NOMEM;
    }
    v[0] = b;
    if (nb) memcpy(v + 1, body, nb * sizeof *v);
    r1_free(body);
    *ids = v, *n = nb + 1;
    return R1_OK;
}

int r1cli_build_prompt(const r1cli_opts *o, const r1_tokenizer *t, char **text, int32_t **ids,
                       size_t *n) {
    r1_error err = {0};
    r1_status st;
    *text = NULL, *ids = NULL;
    if (o->raw) {
        if (!o->prompt) return r1cli_bad("--raw", "needs the text in -p");
        if (o->messages || o->system)
            return r1cli_bad("--raw", "takes -p only, no --messages or --system");
        if (!(*text = strdup(o->prompt))) return fprintf(stderr, "r1run: out of memory\n"), 1;
        st = r1cli_raw_ids(t, o->prompt, !o->no_bos, ids, n, &err);
    } else {
        r1cli_msgs m = {0};
        int rc = r1cli_msgs_from_opts(o, &m);
        if (rc) return r1cli_msgs_free(&m), rc;
        st = r1cli_render(t, &m, text, ids, n, &err);
        r1cli_msgs_free(&m);
    }
    if (st) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        free(*text), *text = NULL;
        return 1;
    }
    return 0;
}
