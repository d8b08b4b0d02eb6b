/* r1run: command-line front end. Dispatches to a mode by subcommand or flags. */
#include <string.h>

#include "../bench/bench.h"
#include "modes.h"

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bench")) return r1__bench_main(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "bench-tokenizer"))
        return r1__bench_tokenizer_main(argc - 2, argv + 2);
    r1cli_opts o;
    int rc = r1cli_parse(argc - 1, argv + 1, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (o.tokens) return r1cli_eval_ids(&o);
    fprintf(stderr, "r1run: nothing to do: give --tokens or -p (see r1run --help)\n");
    return 2;
}
