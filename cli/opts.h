/* r1run command-line options: one struct filled by r1cli_parse, shared by every mode. */
#ifndef R1_CLI_OPTS_H
#define R1_CLI_OPTS_H

#include <stdint.h>
#include <stdio.h>

#include "r1run.h"

typedef struct r1cli_opts {
    const char *model_dir;
    const char *prompt;
    const char *tokens; /* "1,2,3" */
    const char *dump_logits;
    int print_ids;
    int n_predict; /* -n; -1 = until EOS or context end */
    int n_ctx, n_batch, n_threads;
    r1_sampler_params sp;
    int temp_set, top_p_set, top_k_set;
    int verbose;
    const char *gpu_layers; /* "N", "all", "auto" */
    int gpu_device;
    uint64_t gpu_mem;
    int lm_head_q8;
} r1cli_opts;

/* Parses argv (after the subcommand); on a bad flag prints one line + usage hint and
 * returns 2; returns 1 after printing --help; 0 on success. */
int r1cli_parse(int argc, char **argv, r1cli_opts *o);
void r1cli_usage(FILE *f);
/* Loads the model with options o (progress on stderr); prints the error line on failure. */
int r1cli_load(const r1cli_opts *o, r1_model **m);

#endif
