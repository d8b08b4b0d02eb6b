/* The word two threads share one matmul of a duo call through (cpu/duo.c).
 *
 * Side 0 takes the op's column chunks from the front, side 1 from the back; a
 * side's chunk in flight is front - 1 (side 0) or end (side 1), and its slot
 * says where it stands: NONE, COMPUTING (into the side's own scratch),
 * COMMITTING (copying out) or TAKEN_BACK. When no chunk is left and the other
 * side is still COMPUTING, a side may take that chunk back and compute it
 * itself: the other side's commit then fails and it writes nothing. So neither
 * thread ever waits for one that the OS descheduled mid-chunk, only for a
 * copy-out under way (one chunk of output, a few hundred bytes). The side that
 * sees every chunk in place closes the op (exactly one does) and runs what
 * follows it.
 *
 * Layout: seq (bits 37-63, the op's number) | closed (36) | front (20-35) |
 * end (4-19) | slot 1 (2-3) | slot 0 (0-1). Every change is a read-modify-write,
 * so a release by one side reaches the other's acquire through later changes. */
#ifndef R1_CPU_DUO_WORD_H
#define R1_CPU_DUO_WORD_H

#include <stdint.h>

enum { R1_DUO_NONE, R1_DUO_COMPUTING, R1_DUO_COMMITTING, R1_DUO_TAKEN_BACK };

#define R1_DUO_MAX_CHUNKS 65535
#define R1_DUO_SEQ_MASK 0x7ffffffu
#define R1_DUO_CLOSED ((uint64_t)1 << 36)

static inline uint64_t r1__duo_word(uint32_t seq, uint32_t front, uint32_t end) {
    return (uint64_t)(seq & R1_DUO_SEQ_MASK) << 37 | (uint64_t)(front & 0xffff) << 20 |
           (uint64_t)(end & 0xffff) << 4;
}
static inline uint32_t r1__duo_seq(uint64_t w) {
    return (uint32_t)(w >> 37);
}
static inline uint32_t r1__duo_front(uint64_t w) {
    return (uint32_t)(w >> 20) & 0xffff;
}
static inline uint32_t r1__duo_end(uint64_t w) {
    return (uint32_t)(w >> 4) & 0xffff;
}
static inline uint32_t r1__duo_slot(uint64_t w, int side) {
    return (uint32_t)(w >> (2 * side)) & 3;
}
static inline uint64_t r1__duo_set_slot(uint64_t w, int side, uint32_t st) {
    return (w & ~((uint64_t)3 << (2 * side))) | (uint64_t)st << (2 * side);
}
/* The word is op seq's, still open. */
static inline int r1__duo_open(uint64_t w, uint32_t seq) {
    return r1__duo_seq(w) == (seq & R1_DUO_SEQ_MASK) && !(w & R1_DUO_CLOSED);
}

/* A chunk for side (0: the front one, 1: the back one) of op seq, its slot then
 * COMPUTING; -1 when the op is another one, has no chunk left, or the side's
 * previous chunk is not settled. */
static inline int r1__duo_take(uint64_t *w, uint32_t seq, int side) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t f = r1__duo_front(v), e = r1__duo_end(v);
        if (!r1__duo_open(v, seq) || f >= e || r1__duo_slot(v, side) != R1_DUO_NONE) return -1;
        uint64_t nv = side ? (v & ~((uint64_t)0xffff << 4)) | (uint64_t)(e - 1) << 4
                           : (v & ~((uint64_t)0xffff << 20)) | (uint64_t)(f + 1) << 20;
        nv = r1__duo_set_slot(nv, side, R1_DUO_COMPUTING);
        if (__atomic_compare_exchange_n(w, &v, nv, 1, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
            return side ? (int)e - 1 : (int)f;
    }
}

/* The side's chunk computed: 1 if it may copy it out (then r1__duo_settle with
 * COMMITTING), 0 if the other side took it back. */
static inline int r1__duo_commit(uint64_t *w, uint32_t seq, int side) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
    for (;;) {
        if (r1__duo_seq(v) != (seq & R1_DUO_SEQ_MASK) || r1__duo_slot(v, side) != R1_DUO_COMPUTING)
            return 0;
        uint64_t nv = r1__duo_set_slot(v, side, R1_DUO_COMMITTING);
        if (__atomic_compare_exchange_n(w, &v, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return 1;
    }
}

/* Slot `side`, in state st (COMMITTING: its owner's; TAKEN_BACK: the taker's), back
 * to NONE once the chunk's output is in place (release: the other side reads it). */
static inline void r1__duo_settle(uint64_t *w, int side, uint32_t st) {
    __atomic_fetch_sub(w, (uint64_t)st << (2 * side), __ATOMIC_RELEASE);
}

/* When op seq has no chunk left and the other side's chunk is COMPUTING: that
 * chunk, now this side's to compute (then r1__duo_settle(other, TAKEN_BACK)); else -1. */
static inline int r1__duo_take_back(uint64_t *w, uint32_t seq, int other) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t f = r1__duo_front(v), e = r1__duo_end(v);
        if (!r1__duo_open(v, seq) || f < e || r1__duo_slot(v, other) != R1_DUO_COMPUTING) return -1;
        uint64_t nv = r1__duo_set_slot(v, other, R1_DUO_TAKEN_BACK);
        if (__atomic_compare_exchange_n(w, &v, nv, 1, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
            return other ? (int)e : (int)f - 1;
    }
}

/* Closes op seq when every chunk's output is in place: 1 for the one side that
 * does (acquire: it then reads every output), 0 otherwise. */
static inline int r1__duo_close(uint64_t *w, uint32_t seq) {
    uint64_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
    for (;;) {
        if (!r1__duo_open(v, seq) || r1__duo_front(v) < r1__duo_end(v) ||
            r1__duo_slot(v, 0) != R1_DUO_NONE || r1__duo_slot(v, 1) != R1_DUO_NONE)
            return 0;
        if (__atomic_compare_exchange_n(w, &v, v | R1_DUO_CLOSED, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_ACQUIRE))
            return 1;
    }
}

#endif
