/* The duo call's op word (cpu/duo_word.h): chunks from both ends, a chunk
 * taken back from a side that stalls, a late side that writes nothing, and
 * exactly one side closing each op; then two real threads, one of them stalling
 * at random mid-chunk, over many ops that reuse one output buffer. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../cpu/duo_word.h"
#include "check.h"

static void sequences(void) {
    uint64_t w = r1__duo_word(7, 0, 4); /* op 7: chunks 0..3 */
    CHECK(r1__duo_take(&w, 7, 0) == 0);
    CHECK_MSG(r1__duo_take(&w, 7, 0) == -1, "a side holds one chunk at a time");
    CHECK(r1__duo_take(&w, 7, 1) == 3);
    CHECK_MSG(r1__duo_take(&w, 6, 1) == -1, "another op's seq takes nothing");
    CHECK(r1__duo_commit(&w, 7, 0) == 1);
    r1__duo_settle(&w, 0, R1_DUO_COMMITTING);
    CHECK(r1__duo_take(&w, 7, 0) == 1);
    CHECK(r1__duo_commit(&w, 7, 0) == 1);
    r1__duo_settle(&w, 0, R1_DUO_COMMITTING);
    CHECK(r1__duo_take(&w, 7, 0) == 2);
    CHECK_MSG(r1__duo_take_back(&w, 7, 1) == 3, "none left: side 1's chunk is taken back");
    CHECK_MSG(r1__duo_commit(&w, 7, 1) == 0, "a chunk taken back is not copied out");
    CHECK_MSG(r1__duo_close(&w, 7) == 0, "not closed while a chunk is in flight");
    r1__duo_settle(&w, 1, R1_DUO_TAKEN_BACK);
    CHECK_MSG(r1__duo_take_back(&w, 7, 0) == 2, "side 0's chunk: front - 1");
    r1__duo_settle(&w, 0, R1_DUO_TAKEN_BACK);
    CHECK_MSG(r1__duo_commit(&w, 7, 0) == 0, "side 0 wakes late: nothing to copy");
    CHECK(r1__duo_close(&w, 7) == 1);
    CHECK_MSG(r1__duo_close(&w, 7) == 0, "closed once");
    CHECK_MSG(r1__duo_take(&w, 7, 1) == -1, "a closed op gives nothing");

    /* a copy-out under way cannot be taken back; no take-back while chunks remain */
    w = r1__duo_word(8, 0, 2);
    CHECK(r1__duo_take(&w, 8, 1) == 1);
    CHECK_MSG(r1__duo_take_back(&w, 8, 1) == -1, "chunk 0 is still free");
    CHECK(r1__duo_take(&w, 8, 0) == 0);
    CHECK(r1__duo_commit(&w, 8, 1) == 1);
    CHECK_MSG(r1__duo_take_back(&w, 8, 1) == -1, "committing is not taken back");
    CHECK_MSG(r1__duo_close(&w, 8) == 0, "not closed while copying out");
    r1__duo_settle(&w, 1, R1_DUO_COMMITTING);
    CHECK(r1__duo_commit(&w, 8, 0) == 1);
    r1__duo_settle(&w, 0, R1_DUO_COMMITTING);
    CHECK(r1__duo_close(&w, 8) == 1);
    CHECK_MSG(r1__duo_seq(r1__duo_word(R1_DUO_SEQ_MASK + 5u, 1, 2)) == 4, "seq wraps in its bits");
}

/* ---- two threads ----------------------------------------------------------
 * Op k's chunk c has the value k * 1000 + c. Each side computes into its own
 * scratch and copies out only after a successful commit; side 1 sleeps at
 * random mid-chunk (a descheduled thread). The closer checks the whole output
 * and publishes the next op into the same buffer, as the graph reuses buffers. */
#define OPS 3000
#define NCH 24
#define CHUNK 16

static uint64_t word;
static int out[NCH * CHUNK];
static int bad, closes[2], backs, commits[2];

/* about a microsecond of work, so that the sides interleave */
static void compute(int op, int c, int *dst) {
    volatile unsigned spin = 0;
    for (int i = 0; i < 2000; i++) spin += (unsigned)i;
    for (int i = 0; i < CHUNK; i++) dst[i] = op * 1000 + c;
}

static int check_op(int op) {
    for (int c = 0; c < NCH; c++)
        for (int i = 0; i < CHUNK; i++)
            if (out[c * CHUNK + i] != op * 1000 + c) return 0;
    return 1;
}

static void *side_main(void *arg) {
    int side = (int)(long)arg;
    unsigned rng = 12345u + (unsigned)side;
    int scratch[CHUNK];
    for (;;) {
        uint64_t v = __atomic_load_n(&word, __ATOMIC_ACQUIRE);
        uint32_t s = r1__duo_seq(v);
        if (s > OPS) return NULL;
        if (v & R1_DUO_CLOSED) continue;
        int c = r1__duo_take(&word, s, side);
        if (c >= 0) {
            compute((int)s, c, scratch);
            rng = rng * 1103515245u + 12345u;
            if (side == 1 && (rng >> 16) % 64 == 0) {
                struct timespec ts = {0, 200000}; /* 0.2 ms mid-chunk */
                nanosleep(&ts, NULL);
            }
            if (r1__duo_commit(&word, s, side)) {
                memcpy(out + c * CHUNK, scratch, sizeof scratch);
                r1__duo_settle(&word, side, R1_DUO_COMMITTING);
                commits[side]++;
            }
            continue;
        }
        if (r1__duo_front(v) < r1__duo_end(v)) continue;
        int b = side == 0 ? r1__duo_take_back(&word, s, 1) : -1; /* side 0: no patience */
        if (b >= 0) {
            compute((int)s, b, out + b * CHUNK);
            r1__duo_settle(&word, 1, R1_DUO_TAKEN_BACK);
            __atomic_fetch_add(&backs, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (r1__duo_close(&word, s)) {
            if (!check_op((int)s)) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
            closes[side]++;
            memset(out, 0xff, sizeof out); /* what the next op does not write shows */
            __atomic_store_n(&word, r1__duo_word(s + 1, 0, NCH), __ATOMIC_RELEASE);
        }
    }
}

static void threads(void) {
    word = r1__duo_word(1, 0, NCH);
    pthread_t t[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, side_main, (void *)i);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK_MSG(bad == 0, "%d of %d ops closed with a wrong or missing chunk", bad, OPS);
    CHECK_MSG(closes[0] + closes[1] == OPS, "ops closed %d + %d, want %d", closes[0], closes[1],
              OPS);
    CHECK_MSG(backs > 0, "side 1 stalled, yet no chunk was taken back");
    CHECK_MSG(commits[0] > 0 && commits[1] > 0, "chunks copied out: %d and %d", commits[0],
              commits[1]);
}

int main(void) {
    sequences();
    threads();
    printf("commits %d/%d backs %d closes %d/%d\n", commits[0], commits[1], backs, closes[0],
           closes[1]);
    return r1t_finish("cpu duo");
}
