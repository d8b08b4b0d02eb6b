/* r1run perplexity, as llama.cpp's perplexity tool computes it: the whole file is
 * tokenized (no BOS), cut into windows of BOS + (ctx-1) tokens, window i being
 * BOS + ids[(ctx-1)*i .. (ctx-1)*i + ctx-2]; each window starts from an empty
 * cache, and the logits at every position t score token t+1, so each file token
 * of a window is scored once. ppl = exp(sum NLL / scored), NLL = logsumexp(row)
 * - row[next] in double over the model's whole logits row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "util.h"

typedef struct ppl {
    r1_session *s;
    int n_ctx, n_batch, n_vocab;
    double nll;
    long scored;
} ppl;

static double nll_of(const float *row, int n, int32_t next) {
    double mx = row[0], sum = 0;
    for (int i = 1; i < n; i++) mx = row[i] > mx ? row[i] : mx;
    for (int i = 0; i < n; i++) sum += exp((double)row[i] - mx);
    return mx + log(sum) - (double)row[next];
}

/* Evaluates one window in pieces of n_batch positions, so that only that many rows
 * of logits are held at a time. */
static r1_status score_window(ppl *p, const int32_t *win, r1_error *err) {
    r1_status st = r1_session_truncate(p->s, 0, err);
    for (int off = 0; !st && off < p->n_ctx; off += p->n_batch) {
        int cnt = p->n_ctx - off < p->n_batch ? p->n_ctx - off : p->n_batch;
        st = r1_session_eval(p->s, win + off, cnt, 1, err);
        for (int r = 0; !st && r < cnt && off + r + 1 < p->n_ctx; r++) {
            p->nll += nll_of(r1_session_logits(p->s, r), p->n_vocab, win[off + r + 1]);
            p->scored++;
        }
    }
    return st;
}

static int tokenize_file(const r1cli_opts *o, const r1_tokenizer *t, int32_t **ids, size_t *n) {
    size_t len = 0;
    char *text = r1cli_read_file("-f", o->file, &len);
    if (!text) return 1;
    r1_error err = {0};
    r1_status st = r1_tokenize(t, text, len, ids, n, &err);
    free(text);
    if (st) fprintf(stderr, "r1run: -f %s: %s\n", o->file, err.msg);
    return st ? 1 : 0;
}

static int run(const r1cli_opts *o, r1_model *m, const int32_t *ids, size_t n_ids) {
    ppl p = {0};
    r1_error err = {0};
    r1_session_params sp = {.n_ctx = o->n_ctx, .n_batch = o->n_batch};
    if (r1_session_new(m, &sp, &p.s, &err)) return fprintf(stderr, "r1run: %s\n", err.msg), 1;
    p.n_ctx = r1_session_n_ctx(p.s);
    p.n_batch = o->n_batch ? o->n_batch : p.n_ctx;
    p.n_vocab = r1_model_n_vocab(m);
    size_t span = (size_t)p.n_ctx - 1;
    long k = span ? (long)(n_ids / span) : 0;
    if (o->chunks && o->chunks < k) k = o->chunks;
    int32_t *win = malloc((size_t)p.n_ctx * sizeof *win);
    int rc = 0;
    if (!win) {
        fprintf(stderr, "r1run: perplexity: out of memory\n");
        rc = 1;
    } else if (k < 1) {
        fprintf(stderr,
                "r1run: perplexity: the file has %zu tokens, a window needs %zu (--ctx %d)\n",
                n_ids, span, p.n_ctx);
        rc = 1;
    } else {
        fprintf(stderr, "perplexity: %zu tokens, %ld windows of BOS + %zu tokens\n", n_ids, k,
                span);
        win[0] = r1_model_bos(m);
    }
    double t0 = r1cli_now();
    for (long i = 0; !rc && i < k; i++) {
        memcpy(win + 1, ids + span * (size_t)i, span * sizeof *win);
        if (score_window(&p, win, &err)) {
            fprintf(stderr, "r1run: perplexity window %ld: %s\n", i, err.msg);
            rc = 1;
        } else {
            fprintf(stderr, "[%ld/%ld] ppl %.4f (%.2f s)\n", i + 1, k, exp(p.nll / p.scored),
                    r1cli_now() - t0);
        }
    }
    if (!rc) {
        fprintf(stderr, "scored %ld tokens, mean NLL %.6f, %.2f s\n", p.scored, p.nll / p.scored,
                r1cli_now() - t0);
        printf("perplexity: %.4f\n", exp(p.nll / p.scored));
    }
    free(win);
    r1_session_free(p.s);
    return rc;
}

int r1cli_perplexity(const r1cli_opts *o) {
    if (!o->file) return r1cli_bad("-f", "r1run perplexity needs a text file");
    r1_model *m = NULL;
    int rc = r1cli_load(o, &m);
    const r1_tokenizer *t = rc ? NULL : r1_model_tokenizer(m);
    if (!rc && !t) {
        fprintf(stderr, "r1run: the model folder has no tokenizer.json\n");
        rc = 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (!rc) rc = tokenize_file(o, t, &ids, &n);
    if (!rc) rc = run(o, m, ids, n);
    r1_free(ids);
    r1_model_free(m);
    return rc;
}
