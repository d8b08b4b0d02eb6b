/* Building the prompt: a conversation (owned copies of the messages), rendered
 * with the model's chat template, or --raw text; then its token ids. */
#ifndef R1_CLI_PROMPT_H
#define R1_CLI_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "opts.h"

typedef struct r1cli_msgs {
    r1_chat_message *v; /* role and content are malloc'd copies */
    size_t n, cap;
    int add_generation_prompt;
} r1cli_msgs;

/* Appends a copy of (role, content); 0 or -1 (out of memory). */
int r1cli_msgs_push(r1cli_msgs *m, const char *role, const char *content);
void r1cli_msgs_pop(r1cli_msgs *m);
void r1cli_msgs_clear(r1cli_msgs *m); /* keeps the array for reuse */
void r1cli_msgs_free(r1cli_msgs *m);
/* Reads --messages FILE: a JSON array of {"role","content"} (generation prompt added) or
 * {"messages": [...], "add_generation_prompt": bool}. Prints the error line, returns 1. */
int r1cli_msgs_load(const char *path, r1cli_msgs *m);
/* The conversation of -p/--system/--messages (not --raw). Returns 0 or an exit code. */
int r1cli_msgs_from_opts(const r1cli_opts *o, r1cli_msgs *m);

/* Renders m (chat template) and tokenizes the text; both malloc'd (r1_free). */
r1_status r1cli_render(const r1_tokenizer *t, const r1cli_msgs *m, char **text, int32_t **ids,
                       size_t *n, r1_error *err);
/* --raw: [BOS] + encode(text) (no BOS with --no-bos or when the tokenizer has none). */
r1_status r1cli_raw_ids(const r1_tokenizer *t, const char *text, int bos, int32_t **ids, size_t *n,
                        r1_error *err);
/* The prompt of -p/--raw/--system/--messages: text and ids. Returns 0 or an exit code after
 * printing the error line. */
int r1cli_build_prompt(const r1cli_opts *o, const r1_tokenizer *t, char **text, int32_t **ids,
                       size_t *n);

#endif
