/* The CPU backend's thread shedding under contention (cpu/shed.c): when to drop a
 * thread from decode calls, for how long, and that idle calls never do. */
#include "../cpu/shed.h"
#include "check.h"

/* One decode call: the threads it gets, then its lowest CPU share. */
static int call(r1_cpu_shed *s, int n, double low) {
    int nt = r1__cpu_shed_threads(s, n);
    r1__cpu_shed_update(s, n, nt, low);
    return nt;
}

int main(void) {
    r1_cpu_shed s = {0};
    for (int i = 0; i < 1000; i++)
        CHECK_MSG(call(&s, 2, 0.95) == 2, "idle call %d shed a thread", i);

    /* one slow call is not contention; a second one in a row is */
    CHECK_MSG(call(&s, 2, 0.5) == 2, "first low call");
    CHECK_MSG(call(&s, 2, 0.97) == 2, "idle call after one low call");
    CHECK_MSG(call(&s, 2, 0.5) == 2, "low call after an idle one");
    CHECK_MSG(call(&s, 2, 0.5) == 2, "second low call in a row runs before shedding");
    for (int i = 0; i < R1_SHED_HOLD; i++)
        CHECK_MSG(call(&s, 2, 1.0) == 1, "held call %d: expected 1 thread", i);
    CHECK_MSG(call(&s, 2, 0.96) == 2, "after the hold the full team is tried again");
    CHECK_MSG(call(&s, 2, 0.96) == 2, "and kept while idle");

    /* four threads, two busy neighbours: one thread at a time, never below one */
    r1_cpu_shed t = {0};
    call(&t, 4, 0.4), call(&t, 4, 0.4);
    CHECK_MSG(r1__cpu_shed_threads(&t, 4) == 3, "first shed on 4 threads");
    r1__cpu_shed_update(&t, 4, 3, 0.4);
    r1__cpu_shed_update(&t, 4, 3, 0.4);
    CHECK_MSG(r1__cpu_shed_threads(&t, 4) == 2, "contention with 3 threads sheds another");
    for (int i = 0; i < 8; i++) r1__cpu_shed_update(&t, 4, 1, 0.1);
    CHECK_MSG(r1__cpu_shed_threads(&t, 4) >= 1, "at least one thread");
    r1_cpu_shed u = {0};
    for (int i = 0; i < 10; i++) CHECK_MSG(call(&u, 1, 0.1) == 1, "one thread stays one");

    return r1t_finish("cpu shed");
}
