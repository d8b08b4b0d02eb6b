/* The checking interface: --tokens with --dump-logits or --print-ids. */
#include <stdlib.h>
#include <string.h>

#include "modes.h"

static int parse_ids(const char *s, int32_t **ids, int *n) {
    int cap = 16, k = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    while (*s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 0 || x > 0x7fffffff) {
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) return free(v), -1;
            v = nv;
        }
        v[k++] = (int32_t)x;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return free(v), -1;
    }
    *ids = v;
    *n = k;
    return k ? 0 : (free(v), -1);
}

static int dump_logits(r1_session *s, int n, int vocab, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "r1run: --dump-logits %s: cannot open for writing\n", path);
        return 1;
    }
    int bad = 0;
    for (int t = 0; t < n && !bad; t++)
        bad = fwrite(r1_session_logits(s, t), sizeof(float), (size_t)vocab, f) != (size_t)vocab;
    if (fclose(f) || bad) {
        fprintf(stderr, "r1run: --dump-logits %s: write failed\n", path);
        return 1;
    }
    return 0;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int r1cli_eval_ids(const r1cli_opts *o) {
    int32_t *ids;
    int n;
    if (parse_ids(o->tokens, &ids, &n)) {
        fprintf(stderr, "r1run: --tokens: expects comma-separated non-negative ids\n");
        return 2;
    }
    r1_model *m;
    int rc = r1cli_load(o, &m);
    if (rc) return free(ids), rc;
    r1_session_params sp = {.n_ctx = o->n_ctx, .n_batch = o->n_batch};
    r1_session *s = NULL;
    r1_error err = {0};
    int vocab = r1_model_n_vocab(m);
    if (r1_session_new(m, &sp, &s, &err) ||
        r1_session_eval(s, ids, n, o->dump_logits != NULL, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        rc = 1;
    } else if (o->dump_logits) {
        rc = dump_logits(s, n, vocab, o->dump_logits);
    } else {
        int budget = o->n_predict < 0 ? r1_session_n_ctx(s) - n : o->n_predict;
        int tok = argmax(r1_session_logits(s, 0), vocab);
        for (int i = 0; i < budget && !rc; i++) {
            printf(i ? " %d" : "%d", tok);
            if (i + 1 == budget) break;
            if (r1_session_eval(s, &tok, 1, 0, &err)) {
                fprintf(stderr, "\nr1run: %s\n", err.msg);
                rc = 1;
                break; /* no logits to read */
            }
            tok = argmax(r1_session_logits(s, 0), vocab);
        }
        printf("\n");
    }
    r1_session_free(s);
    r1_model_free(m);
    free(ids);
    return rc;
}
