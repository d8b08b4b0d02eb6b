#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double r1cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *r1cli_read_file(const char *flag, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "r1run: %s %s: %s\n", flag, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *p = malloc(cap);
    while (p && (got = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *q = realloc(p, cap *= 2);
            if (!q) free(p);
            p = q;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!p || bad) {
        fprintf(stderr, "r1run: %s %s: %s\n", flag, path, p ? "read error" : "out of memory");
        free(p);
        return NULL;
    }
    p[n] = 0;
    if (len) *len = n;
    return p;
}

static const char *skip_space(const char *s, int lenient) {
    while (lenient && isspace((unsigned char)*s)) s++;
    return s;
}

int r1cli_parse_ids(const char *s, int lenient, int32_t **ids, int *n) {
    int cap = 16, k = 0, bracket = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    s = skip_space(s, lenient);
    if (lenient && *s == '[') bracket = 1, s = skip_space(s + 1, 1);
    while (*s && !(bracket && *s == ']')) {
        char *end;
        errno = 0;
        long x = isdigit((unsigned char)*s) ? strtol(s, &end, 10) : -1;
        if (x < 0 || errno || x > 0x7fffffff) return free(v), -1;
        if (k == cap) {
            int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) return free(v), -1;
            v = nv;
        }
        v[k++] = (int32_t)x;
        s = skip_space(end, lenient);
        if (*s == ',')
            s = skip_space(s + 1, lenient);
        else if (*s && !(bracket && *s == ']'))
            return free(v), -1;
    }
    if (bracket && (*s != ']' || *skip_space(s + 1, 1))) return free(v), -1;
    if (!k) return free(v), -1;
    *ids = v;
    *n = k;
    return 0;
}

void r1cli_print_ids_json(FILE *f, const int32_t *ids, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", ids[i]);
    fputc(']', f);
}

int r1cli_load_tokenizer(const r1cli_opts *o, r1_tokenizer **t) {
    r1_error err = {0};
    if (r1_tokenizer_load(o->model_dir, t, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static volatile sig_atomic_t *g_sigint_flag;
static int g_sigint_pipe[2] = {-1, -1};

/* Sets the flag and writes a byte to the pipe: the kernel may run the handler on
 * any thread that does not block SIGINT (OpenMP's, a driver's), and a thread
 * sleeping in poll() wakes only for the pipe then. */
static void on_sigint(int sig) {
    (void)sig;
    if (g_sigint_flag) *g_sigint_flag = 1;
    if (g_sigint_pipe[1] >= 0) {
        int e = errno;
        ssize_t w = write(g_sigint_pipe[1], "", 1);
        (void)w; /* full: a wake-up is already pending */
        errno = e;
    }
}

int r1cli_sigint_fd(void) {
    return g_sigint_pipe[0];
}

void r1cli_sigint_drain(void) {
    char b[64];
    while (g_sigint_pipe[0] >= 0 && read(g_sigint_pipe[0], b, sizeof b) > 0) {
    }
}

void r1cli_catch_sigint(volatile sig_atomic_t *flag, int reset_after_first) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (g_sigint_pipe[0] < 0 && pipe2(g_sigint_pipe, O_NONBLOCK | O_CLOEXEC))
        g_sigint_pipe[0] = g_sigint_pipe[1] = -1; /* then only the flag */
    g_sigint_flag = flag;
    sa.sa_handler = on_sigint;
    sa.sa_flags = reset_after_first ? SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}
