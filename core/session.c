/* r1_session: one sequence — its KV cache, its scheduled graph, its logits. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define LOGITS_BYTES_MAX (64u << 20) /* cap on the graph's logits rows per forward */

void r1_session_params_default(r1_session_params *p) {
    memset(p, 0, sizeof *p);
}

r1_status r1_session_new(r1_model *m, const r1_session_params *p, r1_session **out, r1_error *err) {
    if (!m || !out) return r1__err(err, R1_E_INVAL, "r1_session_new: NULL argument");
    *out = NULL;
    r1_session_params d;
    r1_session_params_default(&d);
    if (!p) p = &d;
    int max = m->cfg.max_pos;
    if (p->n_ctx < 0 || p->n_ctx > max)
        return r1__err(err, R1_E_RANGE, "--ctx %d: must be between 1 and the model's %d positions",
                       p->n_ctx, max);
    if (p->n_batch < 0) return r1__err(err, R1_E_INVAL, "--batch %d: must be positive", p->n_batch);
    r1_session *s = calloc(1, sizeof *s);
    if (!s) return r1__err(err, R1_E_NOMEM, "out of memory");
    s->m = m;
    s->abort_cb = p->abort_cb;
    s->abort_user = p->abort_user;
    s->n_ctx = p->n_ctx ? p->n_ctx : (max < 4096 ? max : 4096);
    s->n_batch = p->n_batch ? p->n_batch : 512;
    if (s->n_batch > s->n_ctx) s->n_batch = s->n_ctx;
    size_t row = (size_t)m->cfg.vocab * sizeof(float);
    s->n_out_max =
        (size_t)s->n_batch * row <= LOGITS_BYTES_MAX ? s->n_batch : (int)(LOGITS_BYTES_MAX / row);
    if (s->n_out_max < 1) s->n_out_max = 1;
    r1_status st = R1_OK;
    s->g = r1__graph_new(s->n_batch);
    if (!s->g) st = r1__err(err, R1_E_NOMEM, "out of memory");
    if (!st) st = r1__qwen2_build(m, s->g, s->n_ctx, s->n_out_max, &s->logits_t, err);
    if (!st) st = r1__sched_new(s->g, m->be, m->n_be, m->layer_backend, &s->sched, err);
    if (st) {
        r1_session_free(s);
        return st;
    }
    *out = s;
    return R1_OK;
}

void r1_session_free(r1_session *s) {
    if (!s) return;
    r1__sched_free(s->sched);
    r1__graph_free(s->g);
    free(s->logits);
    free(s);
}

static r1_status reserve_logits(r1_session *s, int rows, r1_error *err) {
    if (rows <= s->cap_logit_rows) return R1_OK;
    float *l = realloc(s->logits, (size_t)rows * (size_t)s->m->cfg.vocab * sizeof(float));
    if (!l) return r1__err(err, R1_E_NOMEM, "out of memory for %d rows of logits", rows);
    s->logits = l;
    s->cap_logit_rows = rows;
    return R1_OK;
}

static r1_status fetch_logits(r1_session *s, int rows, int dst_row, r1_error *err) {
    r1_backend *be = s->m->be[s->logits_t->backend];
    size_t row = (size_t)s->m->cfg.vocab * sizeof(float);
    return be->i->tensor_get(be, s->logits_t, (char *)s->logits + (size_t)dst_row * row, 0,
                             (size_t)rows * row, err);
}

r1_status r1_session_eval(r1_session *s, const int32_t *tokens, int n, int logits_all,
                          r1_error *err) {
    if (!s || (!tokens && n)) return r1__err(err, R1_E_INVAL, "r1_session_eval: NULL argument");
    if (n <= 0) return r1__err(err, R1_E_INVAL, "r1_session_eval: no tokens");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->m->cfg.vocab)
            return r1__err(err, R1_E_RANGE,
                           "token id %d (position %d) is outside the vocabulary 0..%d", tokens[i],
                           i, s->m->cfg.vocab - 1);
    if (n > s->n_ctx - s->pos)
        return r1__err(err, R1_E_RANGE,
                       "%d tokens at position %d do not fit the context of %d tokens (--ctx)", n,
                       s->pos, s->n_ctx);
    r1_status st = reserve_logits(s, logits_all ? n : 1, err);
    int chunk = logits_all && s->n_out_max < s->n_batch ? s->n_out_max : s->n_batch;
    for (int done = 0; !st && done < n;) {
        int cnt = n - done < chunk ? n - done : chunk, last = done + cnt == n;
        if (s->abort_cb && s->abort_cb(s->abort_user)) {
            st =
                r1__err(err, R1_E_CANCELLED, "evaluation cancelled after %d of %d tokens", done, n);
            break;
        }
        r1_run run = {.n_tokens = cnt,
                      .pos = s->pos,
                      .n_out = logits_all ? cnt : last,
                      .tokens = tokens + done};
        st = r1__sched_run(s->sched, &run, err);
        if (!st && run.n_out) st = fetch_logits(s, run.n_out, logits_all ? done : 0, err);
        if (!st) s->pos += cnt;
        done += cnt;
    }
    s->n_logit_rows = st ? 0 : (logits_all ? n : 1);
    return st;
}

const float *r1_session_logits(const r1_session *s, int row) {
    if (!s || row < 0 || row >= s->n_logit_rows) return NULL;
    return s->logits + (size_t)row * (size_t)s->m->cfg.vocab;
}

int r1_session_pos(const r1_session *s) {
    return s->pos;
}
int r1_session_n_ctx(const r1_session *s) {
    return s->n_ctx;
}

r1_status r1_session_truncate(r1_session *s, int pos, r1_error *err) {
    if (!s || pos < 0 || pos > s->pos)
        return r1__err(err, R1_E_RANGE, "r1_session_truncate: position %d outside 0..%d", pos,
                       s ? s->pos : 0);
    s->pos = pos; /* cache rows past pos are simply overwritten later */
    return R1_OK;
}

uint64_t r1_session_kv_bytes(const r1_session *s) {
    const r1_config *c = &s->m->cfg;
    return 2ull * (uint64_t)c->n_layers * (uint64_t)s->n_ctx * (uint64_t)c->n_kv_heads *
           (uint64_t)c->head_dim * sizeof(float);
}
