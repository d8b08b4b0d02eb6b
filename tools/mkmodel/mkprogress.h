/* Write progress on stderr: percent, MB written and MB/s. On a terminal the line is updated in
 * place a few times a second; otherwise (logs, pipes) one line per 10% is printed. */
#ifndef R1_MKPROGRESS_H
#define R1_MKPROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct mk_progress {
    uint64_t total, done;
    double t0, last_print;
    int last_decile;
    bool quiet, tty;
} mk_progress;

/* Starts timing a write of total bytes; quiet suppresses all output. */
void mk_progress_start(mk_progress *p, uint64_t total, bool quiet);

/* Records bytes more written to file (its name is shown). */
void mk_progress_add(mk_progress *p, uint64_t bytes, const char *file);

/* Prints the final summary line; returns the elapsed seconds. */
double mk_progress_end(mk_progress *p);

/* Monotonic clock in seconds. */
double mk_now(void);

#endif
