/* r1-mkmodel: writes a random-weight Qwen2 GPTQ-Int4 checkpoint in the published Hugging Face
 * layout, for loader tests and benchmarks without downloading the real 10 GB model.
 * Exit status: 0 done, 1 run-time failure (I/O, disk space), 2 bad command line. */
#include "mkconfig.h"
#include "mkopts.h"
#include "mkout.h"
#include "mkst.h"
#include "mktok.h"

#include <limits.h>
#include <stdio.h>

/* Tokenizer files and JSON side files need a little space beyond the shards. */
#define EXTRA_BYTES (16u << 20)

static int failed(const r1_error *err) {
    fprintf(stderr, "r1-mkmodel: %s\n", err->msg);
    return 1;
}

static int run(const mk_opts *o) {
    r1_error err = {0};
    char tok_dir[PATH_MAX + 64];
    if (!o->no_tokenizer && mk_tok_find(o->tokenizer_dir, tok_dir, sizeof tok_dir, &err) != R1_OK)
        return failed(&err);
    mk_plan plan;
    if (mk_plan_build(&o->model, o->shard_size, &plan, &err) != R1_OK) return failed(&err);
    r1_status st = mk_out_prepare(o->out_dir, plan.total_file + EXTRA_BYTES, &err);
    if (st == R1_OK) st = mk_write_configs(o, &err);
    if (st == R1_OK && !o->no_tokenizer) st = mk_tok_copy(tok_dir, o->out_dir, &err);
    if (st == R1_OK) st = mk_plan_write(&plan, o->out_dir, o->quiet, &err);
    if (st == R1_OK && !o->quiet)
        fprintf(stderr, "%s: preset %s, %zu tensors, %zu shard%s, %llu tensor bytes\n", o->out_dir,
                o->preset, plan.n, plan.nshards, plan.nshards > 1 ? "s" : "",
                (unsigned long long)plan.total_data);
    mk_plan_free(&plan);
    return st == R1_OK ? 0 : failed(&err);
}

int main(int argc, char **argv) {
    mk_opts o;
    char msg[512];
    switch (mk_opts_parse(argc, argv, &o, msg, sizeof msg)) {
    case MK_PARSE_HELP:
        mk_opts_usage(stdout);
        return 0;
    case MK_PARSE_ERROR:
        fprintf(stderr, "r1-mkmodel: %s\n", msg);
        mk_opts_usage(stderr);
        return 2;
    case MK_PARSE_OK:
        break;
    }
    return run(&o);
}
