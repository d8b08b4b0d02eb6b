/* r1run -i driven through a pseudo-terminal, as a person uses it:
 *   chat     two turns keep the history (the second reuses the cached prefix of the
 *            first), reasoning dimmed with the tags hidden, Ctrl-C during a long
 *            answer stops only that answer, the next turn is answered, /reset, /exit
 *   intr     Ctrl-C at the input prompt quits (status 0)
 *   eof      Ctrl-D at the input prompt quits (status 0)
 * usage: test_cli_pty CASE R1RUN */
#include "check.h"

#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KJV R1_SOURCE_ROOT "/models/kjv-tiny"
#define TIMEOUT_S 120

typedef struct term {
    int fd;
    pid_t pid;
    char *buf;           /* everything the program wrote */
    size_t n, cap, mark; /* mark: where the current wait started looking */
    int eof;
} term;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int start(term *t, const char *r1run, char *const extra[]) {
    char *argv[32] = {(char *)r1run, "-m", KJV, "-t", "1", "-i", "--temp", "0", "-v"};
    int n = 9;
    for (int i = 0; extra[i] && n < 31; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    memset(t, 0, sizeof *t);
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    if (t->pid < 0) return perror("forkpty"), -1;
    if (t->pid == 0) {
        execv(r1run, argv);
        _exit(127);
    }
    return 0;
}

/* Reads whatever is there within ms milliseconds; 0 on EOF. */
static int pump(term *t, int ms) {
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return 1;
    if (t->n + 4096 + 1 > t->cap) {
        t->cap = t->cap ? 2 * t->cap : 65536;
        t->buf = realloc(t->buf, t->cap);
    }
    ssize_t k = read(t->fd, t->buf + t->n, 4096);
    if (k <= 0) return t->eof = 1, 0; /* EIO once the child has closed the slave */
    t->n += (size_t)k;
    t->buf[t->n] = 0;
    return 1;
}

/* Waits until needle appears after the mark; moves the mark past it. */
static const char *wait_for(term *t, const char *needle) {
    double end = now() + TIMEOUT_S;
    for (;;) {
        const char *hit = t->buf ? strstr(t->buf + t->mark, needle) : NULL;
        if (hit) {
            t->mark = (size_t)(hit - t->buf) + strlen(needle);
            return hit;
        }
        if (t->eof || now() > end) {
            fprintf(stderr, "waited for \"%s\"; the terminal shows:\n%s\n", needle,
                    t->buf ? t->buf + t->mark : "");
            return NULL;
        }
        pump(t, 100);
    }
}

static void send_keys(term *t, const char *s) {
    if (write(t->fd, s, strlen(s)) != (ssize_t)strlen(s)) perror("write");
}

/* The exit status once the program ends (-1 after the timeout: then it is killed). */
static int finish(term *t) {
    double end = now() + TIMEOUT_S;
    int st = 0;
    int timed_out = 0;
    while (waitpid(t->pid, &st, WNOHANG) == 0) {
        if (now() > end) {
            fprintf(stderr, "still running; the terminal shows:\n%s\n", t->buf ? t->buf : "");
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &st, 0);
            timed_out = 1;
            break;
        }
        pump(t, 50);
    }
    close(t->fd);
    free(t->buf);
    if (timed_out) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int alive(const term *t) {
    int st;
    return waitpid(t->pid, &st, WNOHANG) == 0;
}

/* "[turn N: prompt P tokens, R reused ..., G generated" after the mark. */
static int turn_line(term *t, int turn, int *prompt, int *reused, int *gen) {
    char key[32];
    snprintf(key, sizeof key, "[turn %d: ", turn);
    const char *s = wait_for(t, key);
    size_t off = s ? (size_t)(s - t->buf) : 0;
    if (!s || !wait_for(t, "]")) return 0;
    s = t->buf + off; /* the buffer may have moved */
    const char *g = strstr(s, "s; ");
    return sscanf(s + strlen(key), "prompt %d tokens, %d reused", prompt, reused) == 2 && g &&
           sscanf(g + 3, "%d generated", gen) == 1;
}

static void test_chat(const char *r1run) {
    term t;
    /* long answers (kjv-tiny never ends on its own) so that Ctrl-C lands inside one */
    char *extra[] = {"-n", "1500", NULL};
    if (start(&t, r1run, extra)) {
        CHECK(0);
        return;
    }
    CHECK(wait_for(&t, "/exit") && wait_for(&t, "> ")); /* the help line, then the prompt */

    int p1 = 0, r1 = 0, g1 = 0, p2 = 0, r2 = 0, g2 = 0, p3, r3, g3 = 0, p4, r4, g4;
    send_keys(&t, "Who was Moses?\r");
    CHECK(turn_line(&t, 1, &p1, &r1, &g1) && wait_for(&t, "> "));
    send_keys(&t, "And who was Aaron?\r");
    CHECK(turn_line(&t, 2, &p2, &r2, &g2) && wait_for(&t, "> "));
    printf("turn 1: prompt %d, reused %d, generated %d\n", p1, r1, g1);
    printf("turn 2: prompt %d, reused %d, generated %d\n", p2, r2, g2);
    /* the history is kept: turn 2's prompt holds turn 1, whose prefix came from the cache */
    CHECK(r1 == 0 && g1 == 1500 && p2 > p1 && r2 > 0 && r2 < p1);

    /* reasoning is dimmed and its tags hidden on a terminal */
    CHECK_MSG(strstr(t.buf, "\033[2m") && !strstr(t.buf, "<think>"), "tty display");

    /* Ctrl-C once the answer is streaming: it stops, the program stays */
    size_t before = t.n;
    send_keys(&t, "Tell me of Samson\r");
    CHECK(wait_for(&t, "\033[2m"));
    double until = now() + TIMEOUT_S; /* some answer text first */
    while (t.n < before + 200 && now() < until && pump(&t, 20)) {
    }
    send_keys(&t, "\x03");
    CHECK(wait_for(&t, "[stopped]"));
    CHECK(turn_line(&t, 3, &p3, &r3, &g3) && wait_for(&t, "> "));
    printf("turn 3 (Ctrl-C): generated %d\n", g3);
    CHECK(g3 > 0 && g3 < 1500);
    CHECK(alive(&t));

    send_keys(&t, "Blessed are\r");
    CHECK(turn_line(&t, 4, &p4, &r4, &g4) && wait_for(&t, "> "));
    CHECK(g4 == 1500);

    send_keys(&t, "/reset\r");
    CHECK(wait_for(&t, "[history cleared]") && wait_for(&t, "> "));
    send_keys(&t, "/exit\r");
    int st = finish(&t);
    CHECK_MSG(st == 0, "exit status %d", st);
}

static void test_quit(const char *r1run, const char *key, const char *label) {
    term t;
    char *extra[] = {NULL};
    if (start(&t, r1run, extra)) {
        CHECK(0);
        return;
    }
    CHECK(wait_for(&t, "> "));
    send_keys(&t, key);
    int st = finish(&t);
    CHECK_MSG(st == 0, "%s at the prompt: exit status %d", label, st);
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s CASE R1RUN\n", argv[0]), 2;
    if (!strcmp(argv[1], "chat"))
        test_chat(argv[2]);
    else if (!strcmp(argv[1], "intr"))
        test_quit(argv[2], "\x03", "Ctrl-C");
    else if (!strcmp(argv[1], "eof"))
        test_quit(argv[2], "\x04", "Ctrl-D");
    else
        CHECK_MSG(0, "unknown case %s", argv[1]);
    return r1t_finish(argv[1]);
}
