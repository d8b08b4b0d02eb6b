/* CPU implementations of the graph ops. Called from inside an OpenMP parallel
 * region: each op shares its work with orphaned `omp for` loops (dynamic
 * chunks, so a thread that was descheduled does not hold up the others), the
 * matmuls by runs of column chunks that idle threads take over (cpu/chunks.h).
 * A duo call (cpu/duo.h) runs a node on one thread outside any parallel region
 * (the loops then run whole there), and one-token matmuls chunk by chunk. */
#ifndef R1_CPU_OPS_H
#define R1_CPU_OPS_H

#include "kernels.h"

/* Per-segment CPU state: how GPTQ matmuls take their activations, and one
 * buffer (sized for the largest node at n_batch tokens) for the prepared ones. */
typedef struct r1_cpu_seg {
    const r1_cpu_kernels *k;
    /* T == 1, 1 < T < R1_CPU_PROMPT_T, T >= R1_CPU_PROMPT_T */
    r1_q4_act mode_decode, mode_short, mode_batch;
    void *xa;
    size_t xa_bytes;
    size_t xa_stride1;    /* per-thread slice for T == 1 (each thread prepares its own) */
    int job_n;            /* the longest matmul output (a duo side's scratch, cpu/duo.c) */
    unsigned char *sync;  /* sync[i]: a barrier is needed before node i (data hazard) */
    int light;            /* only row-wise ops (no matmul, no attention): see cpu_compute */
    const r1_node *nodes; /* the segment's, for a node's index */
    uint64_t *runs;       /* per node, max_threads chunk-run words (cpu/chunks.h) */
    int max_threads;
    uint32_t gen; /* the compute call's number, which tells this call's run words */
} r1_cpu_seg;

/* The activation mode a node runs with for T tokens (F32 when the table lacks one). */
r1_q4_act r1__cpu_q4_mode(const r1_cpu_seg *cs, const r1_qlinear *q, int T, size_t *bytes);
/* Runs one node inside the team. Work-sharing loops do not wait at their end:
 * the caller puts a barrier before a node only where sync[] says it reads or
 * writes memory that an unfinished earlier node touches. */
void r1__cpu_node(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs);
/* Fills cs->sync for the segment's nodes (tensors must be bound) and allocates
 * the chunk-run words for teams of up to max_threads. */
int r1__cpu_sync_plan(r1_cpu_seg *cs, const r1_node *nodes, int n, int max_threads);

/* One-token matmuls as column chunks that any thread may compute (cpu/duo.c).
 * The number of chunks of node n in this run (chunk size *ch), or 0 when it is not
 * such a matmul. */
int r1__cpu_job_chunks(const r1_node *n, const r1_run *run, const r1_cpu_seg *cs, int *ch);
/* Its output length (y of r1__cpu_job_run holds this many floats). */
int r1__cpu_job_n(const r1_node *n);
/* Prepares its activations into xa (cs->xa_stride1 bytes); once per op and thread. */
void r1__cpu_job_prep(const r1_node *n, const r1_cpu_seg *cs, void *xa);
/* Computes chunk c into y[*n0, *n1). */
void r1__cpu_job_run(const r1_node *n, const r1_cpu_seg *cs, const void *xa, int ch, int c,
                     float *y, int *n0, int *n1);

#endif
