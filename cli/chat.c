/* r1run -i: interactive chat. The conversation is kept as a message list and
 * re-rendered with the chat template every turn (so earlier reasoning is dropped
 * as the template requires); the KV cache is reused for the tokens the new
 * rendering shares with what was evaluated before.
 *
 * Input is one line per turn, from a terminal or a pipe. Ctrl-C during an answer
 * stops that answer; Ctrl-C at the input prompt, EOF or /exit quits. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modes.h"
#include "prompt.h"
#include "runtime.h"
#include "util.h"

static volatile sig_atomic_t g_intr;

/* Input read straight from fd 0: stdio's buffer would hide lines that poll cannot see. */
typedef struct input {
    char *buf;
    size_t start, n, cap;
    int eof;
} input;

typedef struct chat {
    const r1cli_opts *o;
    r1cli_rt rt;
    r1cli_display d;
    r1cli_msgs msgs;
    input in;
    int tty_in, turn;
} chat;

/* Waits until stdin is readable; 0 when Ctrl-C came first. SIGINT is blocked from the
 * flag check until ppoll sleeps, so a Ctrl-C in between cannot be lost (a plain
 * blocking read would miss it and hang); and since the kernel then runs the handler
 * on another thread (OpenMP's, a driver's), which does not interrupt this ppoll, the
 * handler's pipe is polled too (a Ctrl-C landing between the check and ppoll hung a
 * CI run of cli_pty_intr; a 300 ms sleep put there hangs the old form every time). */
static int wait_input(void) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    int fd = r1cli_sigint_fd();
    struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    while (!g_intr) {
        int r = ppoll(p, fd >= 0 ? 2 : 1, NULL, &old);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 || p[0].revents) break; /* input, EOF or an error: read() tells */
        r1cli_sigint_drain();             /* the pipe: g_intr is set */
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return !g_intr;
}

/* The next complete line in the buffer (newline and CR removed), or NULL. */
static char *take_line(input *in) {
    if (!in->buf) return NULL;
    char *s = in->buf + in->start, *nl = memchr(s, '\n', in->n - in->start);
    if (!nl && !(in->eof && in->start < in->n)) return NULL;
    if (!nl) nl = in->buf + in->n; /* a last line without newline */
    *nl = 0;
    in->start = (size_t)(nl - in->buf) + (nl < in->buf + in->n);
    if (nl > s && nl[-1] == '\r') nl[-1] = 0;
    return s;
}

/* Reads one line; NULL at EOF or Ctrl-C. */
static char *read_line(chat *c) {
    input *in = &c->in;
    g_intr = 0;
    if (c->tty_in) fputs("> ", stdout), fflush(stdout);
    for (;;) {
        char *line = take_line(in);
        if (line) return line;
        if (in->eof) break;
        if (in->start) { /* keep the partial line */
            memmove(in->buf, in->buf + in->start, in->n - in->start);
            in->n -= in->start, in->start = 0;
        }
        if (in->n + 1 >= in->cap) {
            size_t cap = in->cap ? 2 * in->cap : 4096;
            char *b = realloc(in->buf, cap);
            if (!b) return NULL;
            in->buf = b, in->cap = cap;
        }
        if (!wait_input()) break;
        ssize_t k = read(STDIN_FILENO, in->buf + in->n, in->cap - in->n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            in->eof = 1;
        else
            in->n += (size_t)k;
    }
    if (c->tty_in) putchar('\n'); /* leave the shell prompt on a fresh line */
    return NULL;
}

static int reset(chat *c) {
    r1cli_msgs_clear(&c->msgs);
    r1_error err = {0};
    r1_session_truncate(c->rt.s, 0, &err);
    c->rt.n_cache = 0;
    c->turn = 0;
    int rc = r1cli_msgs_from_opts(c->o, &c->msgs);
    c->msgs.add_generation_prompt = 1; /* every turn asks for an answer */
    return rc;
}

static void verbose_turn(const chat *c) {
    const r1cli_stats *s = &c->rt.last;
    fprintf(stderr,
            "[turn %d: prompt %d tokens, %d reused from the cache, %d evaluated in %.3f s; "
            "%d generated in %.3f s (%.2f tokens/s)]\n",
            c->turn, s->n_prompt, s->n_reused, s->n_prompt - s->n_reused, s->t_prompt, s->n_gen,
            s->t_gen, s->t_gen > 0 ? s->n_gen / s->t_gen : 0.0);
}

/* The answer as the history keeps it. An answer stopped inside its reasoning gets
 * the closing tag, so the template drops that reasoning like any other. */
static int keep_answer(chat *c) {
    const char *text = c->d.text ? c->d.text : "";
    size_t len = strlen(text);
    char *content = malloc(len + 9);
    if (!content) return -1;
    memcpy(content, text, len + 1);
    if (c->d.tok_think) strcat(content, "</think>");
    int r = r1cli_msgs_push(&c->msgs, "assistant", content);
    free(content);
    return r;
}

static void report_stop(const chat *c, r1cli_stop why) {
    if (why == R1CLI_STOP_INTR)
        fprintf(stderr, "[stopped]\n");
    else if (why == R1CLI_STOP_CTX)
        fprintf(stderr, "r1run: the context of %d tokens (--ctx) is full: /reset starts over\n",
                r1_session_n_ctx(c->rt.s));
}

/* One user turn. Returns 0 to go on, 1 on a fatal error. */
static int turn(chat *c, const char *user) {
    char *text = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    r1_error err = {0};
    if (r1cli_msgs_push(&c->msgs, "user", user) ||
        r1cli_render(c->rt.tok, &c->msgs, &text, &ids, &n, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg[0] ? err.msg : "out of memory");
        return 1;
    }
    r1_free(text);
    int n_ctx = r1_session_n_ctx(c->rt.s);
    if ((int)n >= n_ctx) {
        /* the history stays as it was: the user can /reset or ask something shorter */
        fprintf(stderr,
                "r1run: this turn needs %zu tokens but the context holds %d (--ctx): "
                "/reset to start over\n",
                n, n_ctx);
        r1cli_msgs_pop(&c->msgs);
        r1_free(ids);
        return 0;
    }
    c->rt.intr = &g_intr;
    if (r1cli_rt_prompt(&c->rt, ids, (int)n, &err)) {
        r1_free(ids);
        if (err.code == R1_E_CANCELLED) { /* Ctrl-C during a long prompt: back to the input */
            r1cli_msgs_pop(&c->msgs);
            fprintf(stderr, "[stopped]\n");
            return 0;
        }
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    c->turn++; /* g_intr was cleared at the input prompt: a Ctrl-C since stops this answer */
    r1cli_stop why =
        r1cli_rt_generate(&c->rt, &c->d, r1cli_rt_in_think(&c->rt, ids, (int)n), &g_intr);
    r1_free(ids);
    clearerr(stdout); /* a Ctrl-C can interrupt a write to the terminal */
    putchar('\n');
    fflush(stdout);
    report_stop(c, why);
    if (c->o->verbose) verbose_turn(c);
    if (why == R1CLI_STOP_ERROR || keep_answer(c)) return 1;
    return 0;
}

static void help(void) {
    fputs("type a message; /reset clears the history, /exit (or EOF) quits, Ctrl-C stops "
          "an answer\n",
          stderr);
}

/* Returns 0 to go on, 1 to quit, 2 on a fatal error. */
static int command(chat *c, const char *line) {
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) return 1;
    if (!strcmp(line, "/reset")) {
        if (reset(c)) return 2;
        fputs("[history cleared]\n", stderr);
        return 0;
    }
    if (!strcmp(line, "/help")) return help(), 0;
    return turn(c, line) ? 2 : 0;
}

static int loop(chat *c) {
    int r = 0;
    char *line = NULL;
    if (c->o->prompt) r = command(c, c->o->prompt);
    while (r == 0 && (line = read_line(c)))
        if (line[0]) r = command(c, line);
    return r == 2;
}

int r1cli_chat(const r1cli_opts *o) {
    chat c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.tty_in = isatty(STDIN_FILENO);
    int rc = r1cli_rt_open(o, &c.rt);
    if (!rc && o->verbose) r1cli_rt_print_setup(&c.rt);
    if (!rc) rc = reset(&c);
    if (!rc) {
        r1cli_display_init(&c.d, o, c.rt.tok, stdout);
        if (c.tty_in) help();
        r1cli_catch_sigint(&g_intr, 0);
        rc = loop(&c);
        signal(SIGINT, SIG_DFL);
        r1cli_rt_print_stats(&c.rt);
        r1cli_display_free(&c.d);
    }
    r1cli_msgs_free(&c.msgs);
    r1cli_rt_close(&c.rt);
    free(c.in.buf);
    return rc;
}
