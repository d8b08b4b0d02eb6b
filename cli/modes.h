/* r1run's modes, one file each. Each returns the process exit code. */
#ifndef R1_CLI_MODES_H
#define R1_CLI_MODES_H

#include "opts.h"

int r1cli_eval_ids(const r1cli_opts *o);    /* --tokens: the checking interface */
int r1cli_generate(const r1cli_opts *o);    /* -p: one answer */
int r1cli_chat(const r1cli_opts *o);        /* -i: interactive chat */
int r1cli_perplexity(const r1cli_opts *o);  /* r1run perplexity */
int r1cli_tokenize(const r1cli_opts *o);    /* --tokenize, --tokenize-file */
int r1cli_detokenize(const r1cli_opts *o);  /* --detokenize */
int r1cli_dump_prompt(const r1cli_opts *o); /* --dump-prompt */

int r1cli_plan(const r1cli_opts *o);

#endif
