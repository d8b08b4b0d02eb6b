#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int fail(const char *msg) {
    fprintf(stderr, "r1run: %s\n", msg);
    return 1;
}

static int rt_abort(void *user) {
    const r1cli_rt *rt = user;
    return rt->intr && *rt->intr;
}

int r1cli_rt_open(const r1cli_opts *o, r1cli_rt *rt) {
    memset(rt, 0, sizeof *rt);
    rt->o = o;
    double t0 = r1cli_now();
    int rc = r1cli_load(o, &rt->m);
    if (rc) return rc;
    rt->tok = r1_model_tokenizer(rt->m);
    if (!rt->tok) return fail("the model folder has no tokenizer.json: only --tokens works");
    r1_error err = {0};
    r1_session_params spp = {
        .n_ctx = o->n_ctx, .n_batch = o->n_batch, .abort_cb = rt_abort, .abort_user = rt};
    if (r1_session_new(rt->m, &spp, &rt->s, &err)) return fail(err.msg);
    /* The embedding may have padding rows past the tokenizer (R1: 152064 vs 151665):
     * they are no tokens, so they are never sampled. */
    int nv_tok = r1_tokenizer_n_vocab(rt->tok), nv_model = r1_model_n_vocab(rt->m);
    rt->n_vocab = nv_tok < nv_model ? nv_tok : nv_model;
    r1cli_sampler_params(o, rt->m, &rt->sp);
    if (r1_sampler_new(&rt->sp, rt->n_vocab, &rt->smp, &err)) return fail(err.msg);
    rt->eos = r1_model_eos(rt->m);
    rt->eos_tok = r1_tokenizer_eos(rt->tok);
    rt->think_open = r1_token_id(rt->tok, "<think>");
    rt->think_close = r1_token_id(rt->tok, "</think>");
    rt->t_load = r1cli_now() - t0;
    return 0;
}

void r1cli_rt_close(r1cli_rt *rt) {
    r1_sampler_free(rt->smp);
    r1_session_free(rt->s);
    r1_model_free(rt->m);
    free(rt->cache);
    free(rt->gen);
    memset(rt, 0, sizeof *rt);
}

static int push_id(int32_t **v, int *n, int *cap, int32_t id) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 256;
        int32_t *nv = realloc(*v, (size_t)c * sizeof *nv);
        if (!nv) return -1;
        *v = nv, *cap = c;
    }
    (*v)[(*n)++] = id;
    return 0;
}

static r1_status oom(r1_error *err) {
    if (err) err->code = R1_E_NOMEM, snprintf(err->msg, sizeof err->msg, "out of memory");
    return R1_E_NOMEM;
}

r1_status r1cli_rt_prompt(r1cli_rt *rt, const int32_t *ids, int n, r1_error *err) {
    int n_ctx = r1_session_n_ctx(rt->s);
    if (n < 1 || n >= n_ctx) {
        if (err)
            err->code = R1_E_RANGE,
            snprintf(err->msg, sizeof err->msg,
                     "the prompt is %d tokens and the context %d (--ctx): it must leave room "
                     "for the answer",
                     n, n_ctx);
        return R1_E_RANGE;
    }
    double t0 = r1cli_now();
    int common = 0;
    while (common < n && common < rt->n_cache && rt->cache[common] == ids[common]) common++;
    if (common == n) common--; /* the last prompt token is re-evaluated for its logits */
    r1_status st = r1_session_truncate(rt->s, common, err);
    if (st) return st;
    rt->n_cache = common;
    st = r1_session_eval(rt->s, ids + common, n - common, 0, err);
    /* a cancelled prompt keeps the batches already evaluated: remember them */
    int done = st == R1_E_CANCELLED ? r1_session_pos(rt->s) : st ? common : n;
    for (int i = common; i < done; i++)
        if (push_id(&rt->cache, &rt->n_cache, &rt->cap_cache, ids[i])) return oom(err);
    if (st) return st;
    r1_sampler_reset(rt->smp);
    for (int i = 0; i < n; i++) r1_sampler_accept(rt->smp, ids[i]);
    rt->last = (r1cli_stats){.n_prompt = n, .n_reused = common, .t_prompt = r1cli_now() - t0};
    rt->total.n_prompt += n - common;
    rt->total.n_reused += common;
    rt->total.t_prompt += rt->last.t_prompt;
    return R1_OK;
}

int r1cli_rt_in_think(const r1cli_rt *rt, const int32_t *ids, int n) {
    for (int i = n - 1; i >= 0; i--) {
        if (ids[i] == rt->think_close) return 0;
        if (ids[i] == rt->think_open) return rt->think_open >= 0;
    }
    return 0;
}

/* The next token: </think> once the reasoning budget is spent, else a sample. */
static int32_t next_token(r1cli_rt *rt, int think, int n_think) {
    int budget = rt->o->think_budget;
    if (think && budget >= 0 && n_think >= budget && rt->think_close >= 0) return rt->think_close;
    return r1_sampler_sample(rt->smp, r1_session_logits(rt->s, 0));
}

static r1cli_stop step(r1cli_rt *rt, r1cli_display *d, int32_t tok) {
    int limit = rt->o->n_predict;
    if (tok == rt->eos || tok == rt->eos_tok) return R1CLI_STOP_EOS;
    r1_sampler_accept(rt->smp, tok);
    if (push_id(&rt->gen, &rt->n_gen, &rt->cap_gen, tok)) return R1CLI_STOP_ERROR;
    int r = r1cli_display_token(d, tok);
    if (r) return r > 0 ? R1CLI_STOP_STRING : R1CLI_STOP_ERROR;
    if (limit >= 0 && rt->n_gen >= limit) return R1CLI_STOP_LIMIT; /* no need to evaluate it */
    if (r1_session_pos(rt->s) >= r1_session_n_ctx(rt->s)) return R1CLI_STOP_CTX;
    r1_error err = {0};
    r1_status st = r1_session_eval(rt->s, &tok, 1, 0, &err);
    if (st == R1_E_CANCELLED) return R1CLI_STOP_INTR; /* Ctrl-C: the abort callback fired */
    if (st || push_id(&rt->cache, &rt->n_cache, &rt->cap_cache, tok)) {
        fprintf(stderr, "\nr1run: %s\n", err.msg[0] ? err.msg : "out of memory");
        return R1CLI_STOP_ERROR;
    }
    return R1CLI_GOING;
}

r1cli_stop r1cli_rt_generate(r1cli_rt *rt, r1cli_display *d, int in_think,
                             volatile sig_atomic_t *intr) {
    double t0 = r1cli_now();
    int think = in_think, n_think = 0;
    r1cli_stop why = R1CLI_GOING;
    rt->n_gen = 0;
    r1cli_display_begin(d, in_think);
    if (rt->o->n_predict == 0) why = R1CLI_STOP_LIMIT;
    while (why == R1CLI_GOING) {
        if (intr && *intr) {
            why = R1CLI_STOP_INTR;
            break;
        }
        int32_t tok = next_token(rt, think, n_think);
        if (tok == rt->think_open || tok == rt->think_close)
            think = tok == rt->think_open;
        else if (think)
            n_think++;
        why = step(rt, d, tok);
    }
    r1cli_display_end(d);
    rt->last.n_gen = rt->n_gen;
    rt->last.t_gen = r1cli_now() - t0;
    rt->total.n_gen += rt->n_gen;
    rt->total.t_gen += rt->last.t_gen;
    return why;
}

static void stat_line(const char *what, int n, double t) {
    fprintf(stderr, "%-12s %6d tokens in %8.3f s (%.2f tokens/s)\n", what, n, t,
            t > 0 ? n / t : 0.0);
}

void r1cli_rt_print_stats(const r1cli_rt *rt) {
    fprintf(stderr, "%-12s %22.3f s\n", "load time", rt->t_load);
    stat_line("prompt", rt->total.n_prompt, rt->total.t_prompt);
    if (rt->total.n_reused)
        fprintf(stderr, "%-12s %6d tokens reused from the cache\n", "", rt->total.n_reused);
    stat_line("generation", rt->total.n_gen, rt->total.t_gen);
}

void r1cli_rt_print_setup(const r1cli_rt *rt) {
    const double mib = 1024.0 * 1024.0;
    fprintf(stderr, "model:    %s\n", r1_model_backend_desc(rt->m));
    fprintf(stderr, "weights:  %.1f MiB memory-mapped (CPU %.1f MiB, GPU %.1f MiB)\n",
            (double)r1_model_weight_bytes(rt->m) / mib,
            (double)r1_model_backend_bytes(rt->m, 0) / mib,
            (double)r1_model_backend_bytes(rt->m, 1) / mib);
    fprintf(stderr,
            "context:  %d tokens (model max %d), KV cache %.1f MiB, vocabulary %d (sampled %d)\n",
            r1_session_n_ctx(rt->s), r1_model_max_ctx(rt->m),
            (double)r1_session_kv_bytes(rt->s) / mib, r1_model_n_vocab(rt->m), rt->n_vocab);
    const r1_sampler_params *p = &rt->sp;
    fprintf(stderr,
            "sampling: temp %.3g, top-k %d, top-p %.3g, min-p %.3g, repeat-penalty %.3g, "
            "presence-penalty %.3g (last %d), seed %llu\n",
            p->temperature, p->top_k, p->top_p, p->min_p, p->repeat_penalty, p->presence_penalty,
            p->penalty_last_n, (unsigned long long)p->seed);
}
