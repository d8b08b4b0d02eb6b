/* r1run -p: one answer, streamed token by token as it is generated. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modes.h"
#include "prompt.h"
#include "runtime.h"
#include "util.h"

static volatile sig_atomic_t g_stop;

static void print_ids(const r1cli_rt *rt) {
    for (int i = 0; i < rt->n_gen; i++) printf(i ? " %d" : "%d", rt->gen[i]);
    printf("\n");
}

static int report_stop(r1cli_stop why, const r1cli_rt *rt) {
    if (why == R1CLI_STOP_CTX)
        fprintf(stderr, "r1run: the context of %d tokens (--ctx) is full: stopped\n",
                r1_session_n_ctx(rt->s));
    else if (why == R1CLI_STOP_INTR)
        fprintf(stderr, "r1run: interrupted\n");
    return why == R1CLI_STOP_ERROR;
}

static int answer(const r1cli_opts *o, r1cli_rt *rt, const int32_t *ids, int n) {
    r1_error err = {0};
    r1cli_catch_sigint(&g_stop,
                       1); /* from here Ctrl-C stops the prompt (between batches) or the answer */
    rt->intr = &g_stop;
    if (r1cli_rt_prompt(rt, ids, n, &err)) {
        signal(SIGINT, SIG_DFL);
        fprintf(stderr, "r1run: %s\n", err.code == R1_E_CANCELLED ? "interrupted" : err.msg);
        return 1;
    }
    r1cli_display d;
    r1cli_display_init(&d, o, rt->tok, o->print_ids ? NULL : stdout);
    r1cli_stop why = r1cli_rt_generate(rt, &d, r1cli_rt_in_think(rt, ids, n), &g_stop);
    signal(SIGINT, SIG_DFL);
    if (o->print_ids)
        print_ids(rt);
    else if (isatty(STDOUT_FILENO))
        putchar('\n');
    else if (d.n_text && d.text[d.n_text - 1] != '\n')
        fputc('\n', stderr); /* piped output stays exactly the text; 2>&1 stays readable */
    fflush(stdout);
    r1cli_display_free(&d);
    r1cli_rt_print_stats(rt);
    return report_stop(why, rt);
}

int r1cli_generate(const r1cli_opts *o) {
    r1cli_rt rt;
    int rc = r1cli_rt_open(o, &rt);
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (!rc && o->verbose) r1cli_rt_print_setup(&rt);
    if (!rc) rc = r1cli_build_prompt(o, rt.tok, &text, &ids, &n);
    if (!rc) rc = answer(o, &rt, ids, (int)n);
    r1_free(text);
    r1_free(ids);
    r1cli_rt_close(&rt);
    return rc;
}
