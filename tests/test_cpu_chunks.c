/* Column chunks shared out by runs (cpu/chunks.h): every chunk of an op goes to
 * exactly one thread, each thread starts on its own contiguous run, and a thread
 * that never turns up has its run taken over from the back. */
#include <omp.h>
#include <string.h>

#include "../cpu/chunks.h"
#include "check.h"

#define NCH 37

/* Steps the threads listed in `order` (threads of 0..nt-1; the others never run)
 * round robin until each has no chunk left; seen[c] counts chunk c, who[c] is
 * the thread that took it. */
static void drive(uint64_t *runs, uint32_t gen, int nt, const int *order, int no, int *seen,
                  int *who) {
    r1_cpu_chunk_iter it[8];
    int done[8] = {0}, left = no;
    for (int t = 0; t < nt; t++) it[t] = r1__cpu_chunks(runs, gen, NCH, t, nt);
    memset(seen, 0, NCH * sizeof *seen);
    for (int s = 0; left > 0; s++) {
        int t = order[s % no];
        if (done[t]) continue;
        int c = r1__cpu_chunk_next(&it[t]);
        if (c < 0) {
            done[t] = 1, left--;
            continue;
        }
        CHECK_MSG(c < NCH, "chunk %d out of range", c);
        if (c < NCH) seen[c]++, who[c] = t;
    }
}

int main(void) {
    uint64_t runs[8] = {0};
    int seen[NCH], who[NCH];

    /* three threads in turn: each walks its own run (runs of 12, 12, 13 chunks);
     * only run 2's extra chunk is left for a thread that finished first */
    int rr[] = {0, 1, 2}, foreign = 0;
    drive(runs, 1, 3, rr, 3, seen, who);
    for (int c = 0; c < NCH; c++) {
        CHECK_MSG(seen[c] == 1, "round robin: chunk %d taken %d times", c, seen[c]);
        int run = c < 12 ? 0 : c < 24 ? 1 : 2;
        foreign += who[c] != run;
    }
    CHECK_MSG(foreign == 1 && who[NCH - 1] == 0, "round robin: %d chunks off their run, last by %d",
              foreign, who[NCH - 1]);

    /* thread 2 never runs (descheduled): threads 0 and 1 take its run from the back */
    int two[] = {0, 1};
    drive(runs, 2, 3, two, 2, seen, who);
    for (int c = 0; c < NCH; c++)
        CHECK_MSG(seen[c] == 1, "missing thread: chunk %d taken %d times", c, seen[c]);
    int by[2] = {0, 0};
    for (int c = 2 * NCH / 3; c < NCH; c++) {
        CHECK(who[c] == 0 || who[c] == 1);
        if (who[c] == 0 || who[c] == 1) by[who[c]]++;
    }
    CHECK_MSG(by[0] > 0 && by[1] > 0, "run 2 shared %d / %d, expected both thieves", by[0], by[1]);
    /* from the back: the first stolen chunk is run 2's last */
    CHECK_MSG(who[NCH - 1] == 0, "run 2's last chunk went to %d", who[NCH - 1]);

    /* a new call (generation) starts from full runs, even with another team size */
    int one[] = {0};
    drive(runs, 3, 1, one, 1, seen, who);
    for (int c = 0; c < NCH; c++) CHECK_MSG(seen[c] == 1 && who[c] == 0, "one thread: chunk %d", c);
    drive(runs, 4, 2, rr, 2, seen, who);
    for (int c = 0; c < NCH; c++)
        CHECK_MSG(seen[c] == 1, "two threads: chunk %d taken %d times", c, seen[c]);

    /* a real team: 4 threads, 1000 calls, every chunk exactly once per call */
    static uint64_t team_runs[4];
    int bad = 0;
    for (uint32_t gen = 10; gen < 1010; gen++) {
        int count[NCH] = {0};
#pragma omp parallel num_threads(4)
        {
            int nt = omp_get_num_threads();
            r1_cpu_chunk_iter it = r1__cpu_chunks(team_runs, gen, NCH, omp_get_thread_num(), nt);
            for (int c; (c = r1__cpu_chunk_next(&it)) >= 0;)
                __atomic_fetch_add(&count[c], 1, __ATOMIC_RELAXED);
        }
        for (int c = 0; c < NCH; c++) bad += count[c] != 1;
    }
    CHECK_MSG(bad == 0, "team: %d chunks taken other than once", bad);
    return r1t_finish("cpu_chunks");
}
