/* Duo calls under contention (issue 4: generation beside a busy process).
 *
 * When another busy process shares the cores, a team thread that the OS
 * deschedules holds each of a call's barriers for a time slice, so the backend
 * sheds threads (cpu/shed.c), and a 2-core machine then ran at one core's speed.
 * A duo call runs on the calling thread and one helper thread, and neither ever
 * waits for the other mid-chunk: the one-token matmuls are shared out in column
 * chunks that each side computes into its own scratch, and a chunk that the
 * other side still holds when none is left is taken back and computed again
 * (cpu/duo_word.h), so a side that wakes up late writes nothing. The nodes
 * between two matmuls run on the side that completed the first one. Results are
 * bit-identical to any other split: a chunk's arithmetic does not depend on who
 * computes it. Internal to the CPU backend. */
#ifndef R1_CPU_DUO_H
#define R1_CPU_DUO_H

#include "ops.h"

typedef struct r1_cpu_duo r1_cpu_duo;

/* NULL when out of memory; the helper thread starts with the first duo call. */
r1_cpu_duo *r1__cpu_duo_new(void);
/* Stops and joins the thread. */
void r1__cpu_duo_free(r1_cpu_duo *h);
/* Call before freeing a segment: returns once the helper thread reads none of its nodes. */
void r1__cpu_duo_forget(r1_cpu_duo *h);
/* Runs a one-token call as a duo; 0 (nothing run) when it cannot: no thread
 * could be started, no memory for the caller's scratch, or another call holds it. */
int r1__cpu_duo_call(r1_cpu_duo *h, const r1_cpu_seg *cs, int n_nodes, const r1_run *run);

#endif
