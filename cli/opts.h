/* r1run command-line options: one struct filled by r1cli_parse, shared by every mode. */
#ifndef R1_CLI_OPTS_H
#define R1_CLI_OPTS_H

#include <stdint.h>
#include <stdio.h>

#include "r1run.h"

#define R1CLI_MAX_STOPS 16

/* Which sampler fields a flag set; the others come from generation_config.json. */
enum {
    R1CLI_SET_TEMP = 1 << 0,
    R1CLI_SET_TOP_K = 1 << 1,
    R1CLI_SET_TOP_P = 1 << 2,
    R1CLI_SET_MIN_P = 1 << 3,
    R1CLI_SET_REPEAT = 1 << 4,
    R1CLI_SET_PRESENCE = 1 << 5,
    R1CLI_SET_SEED = 1 << 6,
    R1CLI_SET_LAST_N = 1 << 7,
};

typedef struct r1cli_opts {
    const char *model_dir;
    /* generation and chat */
    const char *prompt;   /* -p */
    const char *system;   /* --system */
    const char *messages; /* --messages FILE */
    int raw, no_bos;      /* --raw: no chat template; --no-bos: and no BOS either */
    int interactive;      /* -i */
    int n_predict;        /* -n; -1 = until EOS or context end */
    const char *stops[R1CLI_MAX_STOPS];
    int n_stops;
    int hide_think;
    int think_budget; /* -1 = no budget */
    r1_sampler_params sp;
    unsigned sp_set; /* R1CLI_SET_* */
    /* tokenizer modes */
    const char *tokenize, *tokenize_file, *detokenize;
    int dump_prompt;
    /* perplexity */
    const char *file; /* -f */
    int chunks;       /* 0 = every full window */
    /* checking interface */
    const char *tokens; /* "1,2,3" */
    const char *dump_logits;
    int print_ids;
    /* runtime */
    int n_ctx, n_batch, n_threads;
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
/* Prints "r1run: FLAG: WHY (see r1run --help)" and returns 2 (the usage exit code). */
int r1cli_bad(const char *flag, const char *why);
/* Loads the model with options o (progress on stderr); prints the error line on failure. */
int r1cli_load(const r1cli_opts *o, r1_model **m);
/* The model parameters the flags ask for; 2 after printing a bad --gpu-layers. */
int r1cli_model_params(const r1cli_opts *o, r1_model_params *mp);
/* The model's recommended sampling with the fields set by flags replaced. */
void r1cli_sampler_params(const r1cli_opts *o, const r1_model *m, r1_sampler_params *p);

#endif
