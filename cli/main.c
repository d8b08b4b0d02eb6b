/* r1run: command-line front end. Dispatches to a mode by subcommand or flags. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "modes.h"

/* Flags that belong to one mode only are refused elsewhere rather than ignored. */
static int check_combination(const r1cli_opts *o, int perplexity) {
    int modes = !!o->tokens + !!o->tokenize + !!o->tokenize_file + !!o->detokenize +
                !!o->dump_prompt + !!o->interactive;
    if (modes > 1)
        return r1cli_bad("mode", "choose one of --tokens, --tokenize, --tokenize-file, "
                                 "--detokenize, --dump-prompt, -i");
    if ((o->tokens || o->tokenize || o->tokenize_file || o->detokenize) && o->prompt)
        return r1cli_bad("-p", "not with --tokens, --tokenize or --detokenize");
    if (perplexity && (modes || o->prompt))
        return r1cli_bad("perplexity", "takes -f FILE, not a prompt or another mode");
    if (!perplexity && (o->file || o->chunks))
        return r1cli_bad(o->file ? "-f" : "--chunks", "only for r1run perplexity");
    if (o->dump_logits && !o->tokens) return r1cli_bad("--dump-logits", "needs --tokens");
    if (o->interactive && o->raw) return r1cli_bad("--raw", "not with -i (chat uses the template)");
    if (o->interactive && o->print_ids) return r1cli_bad("--print-ids", "not with -i");
    return 0;
}

/* libgomp reads its wait policy once, at start-up. Spinning threads make 2-thread
 * generation collapse when another program is busy (a laptop always has one):
 * measured on 1.5b, 2.6 tokens/s with a competing busy loop against 7.8 with
 * passive waits. Passive waits cost about 11% when the machine is idle (a
 * futex wake at every barrier); a short spin first (GOMP_SPINCOUNT=1000, a few
 * microseconds) gets that back and is as fast under load: 1.5b tg32 idle 17.3-17.5
 * vs 15.6-15.7 tokens/s, under load 9.8-10.3 vs 9.9-10.4 (a 30000 spin: 5.2-6.0).
 * So r1run re-runs itself once with GOMP_SPINCOUNT=1000 unless the user chose a
 * policy or a spin count. */
static void prefer_short_spins(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("R1_NO_REEXEC")) return;
    setenv("GOMP_SPINCOUNT", "1000", 1);
    setenv("R1_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

int main(int argc, char **argv) {
    prefer_short_spins(argv);
    if (argc > 1 && !strcmp(argv[1], "bench")) return r1__bench_main(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "bench-tokenizer"))
        return r1__bench_tokenizer_main(argc - 2, argv + 2);
    int perplexity = argc > 1 && !strcmp(argv[1], "perplexity");
    if (argc > 1 && !strcmp(argv[1], "--list-devices")) {
        r1_error err = {0};
        if (r1_list_devices(stdout, &err) == R1_OK) return 0;
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "plan")) {
        r1cli_opts o;
        int rc = r1cli_parse(argc - 2, argv + 2, &o);
        return rc ? (rc == 1 ? 0 : rc) : r1cli_plan(&o);
    }
    r1cli_opts o;
    int rc = r1cli_parse(argc - 1 - perplexity, argv + 1 + perplexity, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = check_combination(&o, perplexity))) return rc;
    if (perplexity) return r1cli_perplexity(&o);
    if (o.tokens) return r1cli_eval_ids(&o);
    if (o.tokenize || o.tokenize_file) return r1cli_tokenize(&o);
    if (o.detokenize) return r1cli_detokenize(&o);
    if (o.dump_prompt) return r1cli_dump_prompt(&o);
    if (o.interactive) return r1cli_chat(&o);
    if (o.prompt || o.messages) return r1cli_generate(&o);
    fprintf(stderr, "r1run: nothing to do: give -p, -i or --tokens (see r1run --help)\n");
    return 2;
}
