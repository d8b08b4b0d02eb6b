/* The scheduler/executor: places a graph's nodes on backends by layer, inserts
 * copies where activations cross a backend boundary, packs each backend's
 * tensors into one buffer by liveness (scratch reused across layers), and runs
 * the segments in order. Built once per session; r1__sched_run allocates nothing. */
#ifndef R1_SCHED_H
#define R1_SCHED_H

#include "backend.h"

typedef struct r1_sched r1_sched;

/* layer_backend[l + 1] is the backend index for graph layer l (-1 embedding ..
 * L output head). The graph's node list is rewritten (copies inserted). */
r1_status r1__sched_new(r1_graph *g, r1_backend **backends, int n_backends,
                        const int *layer_backend, r1_sched **out, r1_error *err);
r1_status r1__sched_run(r1_sched *s, const r1_run *run, r1_error *err);
/* Bytes of activation/KV memory the schedule uses on backend b. */
size_t r1__sched_mem(const r1_sched *s, int b);
void r1__sched_free(r1_sched *s);

#endif
