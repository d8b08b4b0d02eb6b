/* Thread shedding under contention (see cpu/shed.c). Internal to the CPU backend. */
#ifndef R1_CPU_SHED_H
#define R1_CPU_SHED_H

#include <stdatomic.h>

/* Lowest share of a call's wall time that every thread must have run for. */
#define R1_SHED_SHARE 0.7
/* Calls run with a thread fewer before one more is tried again. */
#define R1_SHED_HOLD 64

/* One per backend; zero-initialized. Updated with relaxed atomics, so sessions on
 * several threads may share it (a lost update only shifts when a retry happens). */
typedef struct r1_cpu_shed {
    atomic_int shed;      /* threads left out of decode calls */
    atomic_int hold;      /* calls left before one thread is given back */
    atomic_int low_calls; /* consecutive calls with a thread below the share */
} r1_cpu_shed;

/* Threads for the next decode call out of n_threads (at least 1). */
int r1__cpu_shed_threads(r1_cpu_shed *s, int n_threads);
/* After a call that ran nt of n_threads threads, whose lowest CPU share of the
 * wall time was low. */
void r1__cpu_shed_update(r1_cpu_shed *s, int n_threads, int nt, double low);

#endif
