#include "display.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a held byte is: answer or reasoning text, or part of a tag token. The first
 * byte of a tag carries the switch so that a tag split by the hold-back still
 * switches exactly once. */
enum { K_ANSWER, K_THINK, K_OPEN, K_CLOSE, K_TAG };

#define FAINT "\033[2m"
#define NORMAL "\033[22m"
#define THINKING "thinking\xe2\x80\xa6" /* U+2026 */

void r1cli_display_init(r1cli_display *d, const r1cli_opts *o, const r1_tokenizer *t, FILE *out) {
    memset(d, 0, sizeof *d);
    d->out = out;
    d->tty = out && isatty(fileno(out));
    d->hide_think = o->hide_think;
    d->indicator = o->hide_think && out && isatty(STDERR_FILENO);
    d->tok = t;
    d->think_open = r1_token_id(t, "<think>");
    d->think_close = r1_token_id(t, "</think>");
    d->stops = o->stops;
    d->n_stops = o->n_stops;
}

void r1cli_display_free(r1cli_display *d) {
    free(d->hold);
    free(d->kind);
    free(d->text);
    memset(d, 0, sizeof *d);
}

static void put(r1cli_display *d, const char *s) {
    if (d->out) fputs(s, d->out);
}

static void indicator(r1cli_display *d, int on) {
    if (!d->indicator || d->indicator_on == on) return;
    d->indicator_on = on;
    fputs(on ? THINKING : "\r\033[K", stderr);
    fflush(stderr);
}

/* Display side of entering or leaving the reasoning. */
static void show_think(r1cli_display *d, int on) {
    if (d->shown_think == on) return;
    d->shown_think = on;
    if (d->hide_think) {
        indicator(d, on);
        d->skip_ws = !on; /* the answer's leading "\n\n" belonged to the hidden part */
    } else if (d->tty && d->dimmed != on) {
        d->dimmed = on;
        put(d, on ? FAINT : NORMAL);
    }
}

static void emit(r1cli_display *d, char c, int kind) {
    int show;
    if (kind == K_OPEN || kind == K_CLOSE) show_think(d, kind == K_OPEN);
    if (kind == K_ANSWER) {
        if (d->skip_ws && (c == '\n' || c == ' ' || c == '\r' || c == '\t')) return;
        d->skip_ws = 0;
        show = 1;
    } else if (kind == K_THINK) {
        show = !d->hide_think;
    } else {
        show = !d->hide_think && !d->tty; /* tags are the plain markers */
    }
    if (show && d->out) fputc(c, d->out);
}

static int grow(char **p, unsigned char **k, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 < need) cap2 *= 2;
    char *np = realloc(*p, cap2);
    if (!np) return -1;
    *p = np;
    if (k) {
        unsigned char *nk = realloc(*k, cap2);
        if (!nk) return -1;
        *k = nk;
    }
    *cap = cap2;
    return 0;
}

/* Shows and records the first n held bytes and drops them from the hold. */
static int release(r1cli_display *d, size_t n) {
    if (grow(&d->text, NULL, &d->cap_text, d->n_text + n + 1)) return -1;
    for (size_t i = 0; i < n; i++) emit(d, d->hold[i], d->kind[i]);
    if (n) memcpy(d->text + d->n_text, d->hold, n); /* hold is NULL until the first byte */
    d->n_text += n;
    d->text[d->n_text] = 0;
    if (d->n_hold > n) {
        memmove(d->hold, d->hold + n, d->n_hold - n);
        memmove(d->kind, d->kind + n, d->n_hold - n);
    }
    d->n_hold -= n;
    return 0;
}

static int hold(r1cli_display *d, const char *s, size_t n, int kind, int first_kind) {
    if (!n) return 0;
    if (grow(&d->hold, &d->kind, &d->cap_hold, d->n_hold + n)) return -1;
    memcpy(d->hold + d->n_hold, s, n);
    memset(d->kind + d->n_hold, kind, n);
    d->kind[d->n_hold] = (unsigned char)first_kind;
    d->n_hold += n;
    return 0;
}

/* 1 when hold[p..] is a proper prefix of some stop string. */
static int could_start_stop(const r1cli_display *d, size_t p) {
    size_t tail = d->n_hold - p;
    for (int i = 0; i < d->n_stops; i++)
        if (strlen(d->stops[i]) > tail && !memcmp(d->hold + p, d->stops[i], tail)) return 1;
    return 0;
}

/* A stop string can only start in held bytes: every released byte was checked not
 * to begin one. So the earliest complete match in the hold is the first in the text. */
static int check_stops(r1cli_display *d) {
    if (!d->n_hold) return 0;
    size_t first = d->n_hold;
    for (int i = 0; i < d->n_stops; i++) {
        const char *m = memmem(d->hold, d->n_hold, d->stops[i], strlen(d->stops[i]));
        if (m && (size_t)(m - d->hold) < first) first = (size_t)(m - d->hold);
    }
    if (first < d->n_hold) {
        int r = release(d, first);
        d->n_hold = 0;
        d->stopped = 1;
        return r ? -1 : 1;
    }
    size_t keep = 0;
    while (keep < d->n_hold && !could_start_stop(d, keep)) keep++;
    return release(d, keep);
}

void r1cli_display_begin(r1cli_display *d, int in_think) {
    memset(&d->ds, 0, sizeof d->ds);
    d->n_hold = d->n_text = 0;
    if (d->text) d->text[0] = 0;
    d->stopped = d->skip_ws = 0;
    d->tok_think = in_think;
    /* The chat template ends the prompt with "<think>\n": show the marker the model
     * did not have to write, so piped output always has both tags. */
    if (in_think && !d->hide_think && !d->tty) put(d, "<think>\n");
    show_think(d, in_think);
    if (d->out) fflush(d->out);
}

static int decoded(r1cli_display *d, int32_t id) {
    char buf[512];
    int n = r1_detok_stream_push(d->tok, &d->ds, id, buf, sizeof buf);
    if (n < 0) { /* a token longer than buf: rare, so allocate then */
        size_t len = 0;
        r1_token_bytes(d->tok, id, &len);
        char *big = malloc(len + sizeof d->ds.pending + 8);
        n = big ? r1_detok_stream_push(d->tok, &d->ds, id, big, len + sizeof d->ds.pending + 8)
                : -1;
        int r = n < 0 ? -1 : hold(d, big, (size_t)n, d->tok_think, d->tok_think);
        free(big);
        return r;
    }
    return hold(d, buf, (size_t)n, d->tok_think, d->tok_think);
}

int r1cli_display_token(r1cli_display *d, int32_t id) {
    int r;
    if (d->stopped) return 1;
    if (id >= 0 && (id == d->think_open || id == d->think_close)) {
        size_t len = 0;
        const char *tag = r1_token_bytes(d->tok, id, &len);
        r = decoded(d, -1); /* an unfinished UTF-8 sequence cannot continue past a tag */
        d->tok_think = id == d->think_open;
        if (!r) r = hold(d, tag, len, K_TAG, d->tok_think ? K_OPEN : K_CLOSE);
    } else {
        r = decoded(d, id);
    }
    if (!r) r = check_stops(d);
    if (d->out) fflush(d->out);
    return r;
}

void r1cli_display_end(r1cli_display *d) {
    if (!d->stopped) {
        decoded(d, -1); /* a sequence cut by the end shows as U+FFFD */
        release(d, d->n_hold);
    }
    indicator(d, 0);
    if (d->dimmed) put(d, NORMAL), d->dimmed = 0;
    d->shown_think = 0;
    if (d->out) fflush(d->out);
}
