/* Streaming the generated text: UTF-8-safe decoding, reasoning shown apart from
 * the answer, and --stop strings held back until they can no longer match.
 *
 * Reasoning (between <think> and </think>) is dimmed with the tags hidden when
 * the output is a terminal, printed with the tags as plain markers otherwise (so
 * scripts can split it off), or dropped with --hide-think. Stop strings are
 * matched on all generated text, tags and reasoning included; neither the stop
 * string nor any part of it is printed. */
#ifndef R1_CLI_DISPLAY_H
#define R1_CLI_DISPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "opts.h"

typedef struct r1cli_display {
    FILE *out; /* NULL: print nothing (text is still collected) */
    int tty, hide_think, indicator;
    int32_t think_open, think_close; /* -1 when the vocabulary has none */
    const r1_tokenizer *tok;
    const char *const *stops;
    int n_stops;
    /* per answer */
    r1_detok_stream ds;
    int tok_think;   /* inside reasoning, as far as tokens have arrived */
    int shown_think; /* inside reasoning, as far as text has been released */
    int dimmed, indicator_on, skip_ws, stopped;
    char *hold; /* bytes that could still start a stop string */
    unsigned char *kind;
    size_t n_hold, cap_hold;
    char *text; /* every released byte: the assistant message as generated */
    size_t n_text, cap_text;
} r1cli_display;

/* out is stdout (or NULL); the terminal check is made on it. */
void r1cli_display_init(r1cli_display *d, const r1cli_opts *o, const r1_tokenizer *t, FILE *out);
void r1cli_display_free(r1cli_display *d);
/* Starts an answer; in_think: the prompt left the model inside its reasoning. */
void r1cli_display_begin(r1cli_display *d, int in_think);
/* Streams one token. Returns 1 when a stop string was completed (nothing of it shown),
 * -1 when out of memory, else 0. */
int r1cli_display_token(r1cli_display *d, int32_t id);
/* Ends the answer: releases held text (unless a stop string matched) and restores the
 * terminal. The collected text stays in d->text (NUL-terminated) until the next begin. */
void r1cli_display_end(r1cli_display *d);

#endif
