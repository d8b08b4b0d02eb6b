/* r1-mkmodel's command line: presets, flag parsing and validation. */
#ifndef R1_MKOPTS_H
#define R1_MKOPTS_H

#include "mklayout.h"

#include <stdio.h>

/* Token ids of the R1-Distill-Qwen tokenizer (MODEL.md §1, §2, §3.2). */
#define MK_R1_TOKENIZER_SIZE 151665u
#define MK_R1_EOS 151643u
#define MK_R1_BOS 151646u

typedef struct mk_opts {
    mk_model model;
    /* config.json fields that do not change the tensors */
    uint32_t max_pos, max_window_layers, sliding_window;
    double rope_theta, rms_eps;
    uint64_t shard_size; /* max bytes of tensor data per shard, HF max_shard_size rule */
    const char *preset, *out_dir;
    const char *tokenizer_dir; /* NULL: search the default places (mktok.h) */
    bool no_tokenizer, quiet;
} mk_opts;

typedef enum mk_parse_result { MK_PARSE_OK, MK_PARSE_HELP, MK_PARSE_ERROR } mk_parse_result;

/* Parses argv into *o. On MK_PARSE_ERROR, msg holds one line saying what is wrong (no usage). */
mk_parse_result mk_opts_parse(int argc, char **argv, mk_opts *o, char *msg, size_t msg_size);

/* Prints the usage text. */
void mk_opts_usage(FILE *f);

#endif
