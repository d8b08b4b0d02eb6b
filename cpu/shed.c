/* Contention. A decode call is a few hundred barriers; when another busy process
 * shares a core, the thread it displaces holds each of them for a time slice. On
 * the 2-core Zen 3 host 2 threads kept 54-59% of their idle 1.5b generation speed
 * beside `yes`, where one thread alone keeps 62%. So the CPU backend compares each
 * thread's CPU time with a decode call's wall time: when a thread ran for less than
 * R1_SHED_SHARE of it in two calls in a row, the next R1_SHED_HOLD decode calls run
 * with one thread fewer (down to one); then one more is tried again. Idle, every
 * thread runs for 0.95-1.0 of a call. A one-token call shed down to one thread
 * runs as a duo (cpu/duo.h): two threads again, but neither waits for the other. */
#include "shed.h"

int r1__cpu_shed_threads(r1_cpu_shed *s, int n_threads) {
    int shed = atomic_load_explicit(&s->shed, memory_order_relaxed);
    if (shed > 0 && atomic_fetch_sub_explicit(&s->hold, 1, memory_order_relaxed) <= 0) {
        shed--; /* the hold is over: give one thread back */
        atomic_store_explicit(&s->shed, shed, memory_order_relaxed);
        atomic_store_explicit(&s->hold, R1_SHED_HOLD, memory_order_relaxed);
    }
    if (shed > n_threads - 1) shed = n_threads - 1;
    return n_threads - (shed > 0 ? shed : 0);
}

void r1__cpu_shed_update(r1_cpu_shed *s, int n_threads, int nt, double low) {
    if (nt <= 1) return;
    if (low >= R1_SHED_SHARE) {
        atomic_store_explicit(&s->low_calls, 0, memory_order_relaxed);
        return;
    }
    /* two in a row: one slow call (a page fault, a daemon waking) is not contention */
    if (atomic_fetch_add_explicit(&s->low_calls, 1, memory_order_relaxed) < 1) return;
    atomic_store_explicit(&s->low_calls, 0, memory_order_relaxed);
    atomic_store_explicit(&s->shed, n_threads - nt + 1, memory_order_relaxed);
    atomic_store_explicit(&s->hold, R1_SHED_HOLD, memory_order_relaxed);
}
