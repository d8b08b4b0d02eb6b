/* Column chunks of one op, shared out by a team of threads.
 *
 * Thread t first walks run t, a contiguous range of the op's chunks, in order:
 * one memory stream, which the hardware prefetcher and the kernels' prefetch
 * distance follow across chunk ends. Chunks handed out one at a time in any
 * order (OpenMP's dynamic schedule) restarted that stream at every chunk of
 * 48-160 KiB. A thread whose run is done takes chunks from the back of the
 * other runs, so one thread that the OS descheduled does not hold up the op
 * (issue 4: generation under load).
 *
 * Each run is one 64-bit word: the call's generation (bits 32-63), its next
 * chunk from the front (16-31) and its end (0-15). A word left by an earlier
 * call holds another generation and reads as the full run, so nothing has to
 * reset the words between calls. */
#ifndef R1_CPU_CHUNKS_H
#define R1_CPU_CHUNKS_H

#include <stdint.h>

#define R1_CPU_RUN_MAX_CHUNKS 65535 /* front and end are 16 bits */

typedef struct r1_cpu_chunk_iter {
    uint64_t *runs; /* nt words */
    uint32_t gen;
    int nch, nt, t;
    int step; /* runs visited: 0 is the own one */
} r1_cpu_chunk_iter;

static inline uint64_t r1__run_word(uint32_t gen, uint32_t front, uint32_t end) {
    return (uint64_t)gen << 32 | (uint64_t)front << 16 | end;
}

/* One chunk of run r ([s, e) when fresh), from the front or the back; -1 if none is left. */
static inline int r1__run_take(uint64_t *w, uint32_t gen, int s, int e, int back) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    for (;;) {
        uint32_t f = (uint32_t)s, b = (uint32_t)e;
        if ((uint32_t)(v >> 32) == gen) f = (uint32_t)(v >> 16) & 0xffff, b = (uint32_t)v & 0xffff;
        if (f >= b) return -1;
        uint64_t nv = back ? r1__run_word(gen, f, b - 1) : r1__run_word(gen, f + 1, b);
        /* relaxed: chunks write disjoint outputs; the team's barriers order the ops */
        if (__atomic_compare_exchange_n(w, &v, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return back ? (int)b - 1 : (int)f;
    }
}

/* runs: nt words that no other op uses during this call; gen: differs from the
 * previous call's. nch <= R1_CPU_RUN_MAX_CHUNKS. */
static inline r1_cpu_chunk_iter r1__cpu_chunks(uint64_t *runs, uint32_t gen, int nch, int t,
                                               int nt) {
    r1_cpu_chunk_iter it = {runs, gen, nch, nt, t, 0};
    return it;
}

/* The next chunk for this thread, or -1 when the op has none left. */
static inline int r1__cpu_chunk_next(r1_cpu_chunk_iter *it) {
    for (; it->step < it->nt; it->step++) {
        int r = (it->t + it->step) % it->nt;
        int s = (int)((long)r * it->nch / it->nt), e = (int)((long)(r + 1) * it->nch / it->nt);
        int c = r1__run_take(&it->runs[r], it->gen, s, e, it->step != 0);
        if (c >= 0) return c;
    }
    return -1;
}

#endif
