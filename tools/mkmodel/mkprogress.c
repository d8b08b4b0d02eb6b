/* Progress line for r1-mkmodel (see mkprogress.h). */
#include "mkprogress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define MB 1e6

double mk_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mk_progress_start(mk_progress *p, uint64_t total, bool quiet) {
    p->total = total ? total : 1;
    p->done = 0;
    p->t0 = p->last_print = mk_now();
    p->last_decile = 0;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
}

static void print_line(const mk_progress *p, double now, const char *file, char end) {
    double dt = now - p->t0;
    fprintf(stderr, "%swriting %-34s %5.1f%%  %7.0f / %.0f MB  %6.0f MB/s%c", p->tty ? "\r" : "",
            file, 100.0 * (double)p->done / (double)p->total, (double)p->done / MB,
            (double)p->total / MB, dt > 0 ? (double)p->done / MB / dt : 0.0, end);
    fflush(stderr);
}

void mk_progress_add(mk_progress *p, uint64_t bytes, const char *file) {
    p->done += bytes;
    if (p->quiet) return;
    double now = mk_now();
    if (p->tty) {
        if (now - p->last_print >= 0.2 || p->done == p->total) {
            print_line(p, now, file, ' ');
            p->last_print = now;
        }
        return;
    }
    int decile = (int)(10 * p->done / p->total);
    if (decile > p->last_decile) {
        p->last_decile = decile;
        print_line(p, now, file, '\n');
    }
}

double mk_progress_end(mk_progress *p) {
    double dt = mk_now() - p->t0;
    if (!p->quiet) {
        if (p->tty) fputc('\n', stderr);
        fprintf(stderr, "wrote %.0f MB in %.1f s (%.0f MB/s)\n", (double)p->done / MB, dt,
                dt > 0 ? (double)p->done / MB / dt : 0.0);
    }
    return dt;
}
