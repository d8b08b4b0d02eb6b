/* Small helpers shared by r1run's modes: files, id lists, clocks, JSON output. */
#ifndef R1_CLI_UTIL_H
#define R1_CLI_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "opts.h"

/* Ctrl-C sets *flag instead of killing r1run. No SA_RESTART, so a blocked read at
 * the chat prompt ends; with reset_after_first a second Ctrl-C kills as usual. */
void r1cli_catch_sigint(volatile sig_atomic_t *flag, int reset_after_first);
/* A pipe's read end that becomes readable at each Ctrl-C (-1 if none): poll it
 * beside stdin, since the handler may run on another thread than the poller.
 * r1cli_sigint_drain empties it. */
int r1cli_sigint_fd(void);
void r1cli_sigint_drain(void);

/* Seconds on a monotonic clock. */
double r1cli_now(void);
/* Whole file, NUL-terminated (malloc'd); prints "r1run: FLAG PATH: why" and returns NULL on
 * failure. */
char *r1cli_read_file(const char *flag, const char *path, size_t *len);
/* "1,2,3". lenient also takes spaces and the brackets of a JSON array ("[1, 2, 3]").
 * Returns 0 and a malloc'd array of n >= 1 ids, or -1. */
int r1cli_parse_ids(const char *s, int lenient, int32_t **ids, int *n);
/* [1, 2, 3] as Python's json.dumps writes it. */
void r1cli_print_ids_json(FILE *f, const int32_t *ids, size_t n);
/* Loads only the tokenizer of o->model_dir; prints the error line on failure. */
int r1cli_load_tokenizer(const r1cli_opts *o, r1_tokenizer **t);

#endif
