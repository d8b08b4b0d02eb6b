/* Duo calls: two threads that never wait for each other mid-chunk
 * (cpu/duo.h; the shared op word in cpu/duo_word.h). */
#include "duo.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duo_word.h"

typedef struct duo_side {
    float *scratch; /* outputs before they are claimed */
    void *xa;       /* prepared activations of the current op */
    size_t scratch_n, xa_bytes;
    double t_chunk; /* seconds of this side's last chunk */
} duo_side;

struct r1_cpu_duo {
    uint64_t word; /* the current matmul (duo_word.h) */
    /* The op that word's seq names, published like a seqlock: job_seq is 0 while
     * the others change, so a reader that got a mix sees a wrong seq. */
    uint32_t job_seq;
    const r1_cpu_seg *job_cs;
    int job_node, job_ch; /* the node's index in job_cs, its chunk size */
    uint32_t seq;         /* ops published so far, by whichever side publishes */
    /* The call's, written by side 0 before it publishes the call's first op and read
     * by a side that closed one of its ops (so never while they change). */
    const r1_cpu_seg *cs;
    r1_run run;
    int n_nodes;
    unsigned active;      /* the call side 1 serves; 0 between calls */
    unsigned done;        /* the last call whose nodes have all run */
    pthread_mutex_t lead; /* one caller at a time */
    pthread_mutex_t busy; /* held by side 1 while it reads a segment's nodes */
    pthread_mutex_t mu;   /* calls, quit, started */
    pthread_cond_t cv;
    unsigned calls;
    int quit, started, failed;
    pthread_t th;
    duo_side side[2];
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins (ops are microseconds apart; yielding sooner gave the busy process time
 * that this call could have used: 1.5b beside `yes`, 10.5 -> 11.1 tokens/s),
 * then yields after about a millisecond, in case a thread of ours shares the core. */
static void idle_wait(int *idle) {
    if (++*idle < 32768)
        cpu_relax();
    else
        sched_yield();
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_job(r1_cpu_duo *h, uint32_t s, const r1_cpu_seg **cs, int *node, int *ch) {
    if (__atomic_load_n(&h->job_seq, __ATOMIC_ACQUIRE) != s) return 0;
    *cs = __atomic_load_n(&h->job_cs, __ATOMIC_RELAXED);
    *node = __atomic_load_n(&h->job_node, __ATOMIC_RELAXED);
    *ch = __atomic_load_n(&h->job_ch, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&h->job_seq, __ATOMIC_RELAXED) == s;
}

/* Node i of the call as the current op: nch chunks of ch columns. */
static void publish(r1_cpu_duo *h, const r1_cpu_seg *cs, int i, int ch, int nch) {
    uint32_t s = ++h->seq & R1_DUO_SEQ_MASK;
    if (!s) s = ++h->seq & R1_DUO_SEQ_MASK; /* 0 marks a job being changed */
    __atomic_store_n(&h->job_seq, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&h->job_cs, cs, __ATOMIC_RELAXED);
    __atomic_store_n(&h->job_node, i, __ATOMIC_RELAXED);
    __atomic_store_n(&h->job_ch, ch, __ATOMIC_RELAXED);
    __atomic_store_n(&h->job_seq, s, __ATOMIC_RELEASE);
    /* release: the node's inputs, written on this side, before the other may read them */
    __atomic_store_n(&h->word, r1__duo_word(s, 0, (uint32_t)nch), __ATOMIC_RELEASE);
}

/* Runs the call's nodes from i on up to its next one-token matmul, which it
 * publishes; or to the end, which ends the call. */
static void run_section(r1_cpu_duo *h, int i, unsigned call) {
    const r1_cpu_seg *cs = h->cs;
    for (; i < h->n_nodes; i++) {
        const r1_node *n = &cs->nodes[i];
        int ch, nch = r1__cpu_job_chunks(n, &h->run, cs, &ch);
        if (nch > 0 && nch <= R1_DUO_MAX_CHUNKS) {
            publish(h, cs, i, ch, nch);
            return;
        }
        r1__cpu_node(n, &h->run, cs);
    }
    __atomic_store_n(&h->done, call, __ATOMIC_RELEASE);
}

/* This side's buffers for any matmul of segment cs; 0 when they cannot be had. */
static int reserve(duo_side *me, const r1_cpu_seg *cs) {
    size_t N = (size_t)cs->job_n;
    if (N > me->scratch_n) {
        free(me->scratch);
        me->scratch = malloc(N * sizeof(float));
        me->scratch_n = me->scratch ? N : 0;
    }
    if (cs->xa_stride1 > me->xa_bytes) {
        free(me->xa);
        if (posix_memalign(&me->xa, 64, cs->xa_stride1)) me->xa = NULL;
        me->xa_bytes = me->xa ? cs->xa_stride1 : 0;
    }
    return me->scratch && (me->xa || !cs->xa_stride1);
}

typedef struct duo_op { /* the op a side is on */
    uint32_t seq;
    const r1_cpu_seg *cs;
    int node, ch, prepped;
    double since; /* when the side found no chunk left while the other computed one */
} duo_op;

/* One chunk of op o for this side, if one is free: computed into scratch and
 * copied out if still claimed. 1 if a chunk was taken, 0 if none, -1 if this
 * side has no buffers (its chunk, left COMPUTING, is taken back). */
static int take_one(r1_cpu_duo *h, int side, duo_op *o) {
    duo_side *me = &h->side[side];
    if (!reserve(me, o->cs)) return -1;
    int c = r1__duo_take(&h->word, o->seq, side);
    if (c < 0) return 0;
    const r1_node *n = &o->cs->nodes[o->node];
    if (!o->prepped) r1__cpu_job_prep(n, o->cs, me->xa), o->prepped = 1;
    double t0 = now_s();
    int n0, n1;
    r1__cpu_job_run(n, o->cs, me->xa, o->ch, c, me->scratch, &n0, &n1);
    if (r1__duo_commit(&h->word, o->seq, side)) {
        memcpy((float *)n->dst->data + n0, me->scratch + n0, (size_t)(n1 - n0) * sizeof(float));
        r1__duo_settle(&h->word, side, R1_DUO_COMMITTING);
    }
    me->t_chunk = now_s() - t0;
    return 1;
}

/* No chunk left: takes back the other side's chunk once it has run for about two
 * of this side's chunks (it is then likely descheduled), or closes the op and runs
 * what follows it. 1 if it did either. */
static int finish_op(r1_cpu_duo *h, int side, duo_op *o, uint64_t v, unsigned call) {
    if (r1__duo_front(v) < r1__duo_end(v)) return 0;
    if (r1__duo_slot(v, 1 - side) == R1_DUO_COMPUTING) {
        double t = now_s();
        if (o->since == 0) o->since = t;
        if (t - o->since < 2 * h->side[side].t_chunk + 2e-6) return 0;
        int c = r1__duo_take_back(&h->word, o->seq, 1 - side);
        if (c < 0) return 0;
        duo_side *me = &h->side[side]; /* its buffers are reserved: take_one ran first */
        const r1_node *n = &o->cs->nodes[o->node];
        if (!o->prepped) r1__cpu_job_prep(n, o->cs, me->xa), o->prepped = 1;
        int n0, n1;
        r1__cpu_job_run(n, o->cs, me->xa, o->ch, c, n->dst->data, &n0, &n1);
        r1__duo_settle(&h->word, 1 - side, R1_DUO_TAKEN_BACK);
        o->since = 0;
        return 1;
    }
    if (!r1__duo_close(&h->word, o->seq)) return 0;
    run_section(h, o->node + 1, call);
    return 1;
}

/* Works on the call's ops until its last node has run. Side 1 holds busy while it
 * may read a segment's nodes (r1__cpu_duo_forget). */
static void duo(r1_cpu_duo *h, int side, unsigned call) {
    duo_op o = {0};
    int idle = 0;
    while (__atomic_load_n(&h->done, __ATOMIC_ACQUIRE) != call) {
        if (side && (__atomic_load_n(&h->active, __ATOMIC_RELAXED) != call ||
                     __atomic_load_n(&h->failed, __ATOMIC_RELAXED)))
            return;
        uint64_t v = __atomic_load_n(&h->word, __ATOMIC_ACQUIRE);
        uint32_t s = r1__duo_seq(v);
        if (!s || (v & R1_DUO_CLOSED)) { /* no op yet (seq 0 is never published), or between two */
            idle_wait(&idle);
            continue;
        }
        if (s != o.seq) {
            duo_op fresh = {.seq = s};
            if (!read_job(h, s, &fresh.cs, &fresh.node, &fresh.ch)) {
                idle_wait(&idle);
                continue;
            }
            o = fresh;
        }
        if (side) {
            /* the job may be from a call that has ended and whose segment is freed: the
             * nodes are read only if the op is still open once busy is held */
            pthread_mutex_lock(&h->busy);
            if (!r1__duo_open(__atomic_load_n(&h->word, __ATOMIC_ACQUIRE), o.seq)) {
                pthread_mutex_unlock(&h->busy);
                continue;
            }
        }
        int r = take_one(h, side, &o);
        if (!r) r = finish_op(h, side, &o, __atomic_load_n(&h->word, __ATOMIC_ACQUIRE), call);
        if (side) pthread_mutex_unlock(&h->busy);
        if (r < 0) { /* out of memory: side 1 stops; the call goes on without it */
            __atomic_store_n(&h->failed, 1, __ATOMIC_RELAXED);
            return;
        }
        if (r)
            idle = 0;
        else
            idle_wait(&idle);
    }
}

static void *helper_main(void *arg) {
    r1_cpu_duo *h = arg;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->quit && h->calls == seen) pthread_cond_wait(&h->cv, &h->mu);
        int quit = h->quit;
        seen = h->calls;
        pthread_mutex_unlock(&h->mu);
        if (quit) return NULL;
        duo(h, 1, seen);
    }
}

r1_cpu_duo *r1__cpu_duo_new(void) {
    r1_cpu_duo *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->lead, NULL);
    pthread_mutex_init(&h->busy, NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    return h;
}

void r1__cpu_duo_free(r1_cpu_duo *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->quit = 1;
    pthread_cond_signal(&h->cv);
    int started = h->started;
    pthread_mutex_unlock(&h->mu);
    if (started) pthread_join(h->th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->busy);
    pthread_mutex_destroy(&h->lead);
    for (int i = 0; i < 2; i++) free(h->side[i].scratch), free(h->side[i].xa);
    free(h);
}

void r1__cpu_duo_forget(r1_cpu_duo *h) {
    if (!h) return;
    pthread_mutex_lock(&h->busy);
    pthread_mutex_unlock(&h->busy);
}

/* Starts call number `call` for side 1 (starting its thread the first time). */
static unsigned begin_call(r1_cpu_duo *h) {
    pthread_mutex_lock(&h->mu);
    if (!h->started && !__atomic_load_n(&h->failed, __ATOMIC_RELAXED)) {
        if (pthread_create(&h->th, NULL, helper_main, h))
            __atomic_store_n(&h->failed, 1, __ATOMIC_RELAXED);
        else
            h->started = 1;
    }
    unsigned call = 0;
    if (!__atomic_load_n(&h->failed, __ATOMIC_RELAXED)) {
        call = ++h->calls ? h->calls : ++h->calls; /* 0 means no call */
        __atomic_store_n(&h->active, call, __ATOMIC_RELAXED);
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return call;
}

int r1__cpu_duo_call(r1_cpu_duo *h, const r1_cpu_seg *cs, int n_nodes, const r1_run *run) {
    if (!h || __atomic_load_n(&h->failed, __ATOMIC_RELAXED) || pthread_mutex_trylock(&h->lead))
        return 0;
    if (!reserve(&h->side[0], cs)) { /* up front: side 0 never fails mid-call */
        pthread_mutex_unlock(&h->lead);
        return 0;
    }
    /* the previous call is done: side 1 reads these only after closing an op of this one */
    h->cs = cs;
    h->run = *run;
    h->n_nodes = n_nodes;
    unsigned call = begin_call(h);
    if (call) {
        run_section(h, 0, call);
        duo(h, 0, call);
        __atomic_store_n(&h->active, 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&h->lead);
    return call != 0;
}
