/* Backends: small structs of function pointers (after ggml-backend).
 *
 * A backend owns device memory and runs a contiguous segment of graph nodes.
 * The CPU backend is always index 0 and is the host: its tensors have `data`.
 * Other backends (Vulkan) keep device memory in tensor->extra. The scheduler
 * (sched.h) decides which nodes run where and moves activations between them. */
#ifndef R1_BACKEND_H
#define R1_BACKEND_H

#include <stdio.h>

#include "error.h"
#include "graph.h"

struct r1_config; /* config.h */

#define R1_MAX_BACKENDS 4

typedef struct r1_backend r1_backend;

/* One allocation holding many tensors (activations, KV caches of one session). */
typedef struct r1_buffer {
    r1_backend *be;
    size_t size;
    void *host;   /* host address when the memory is host-visible, else NULL */
    void *handle; /* backend-private */
} r1_buffer;

/* A run of consecutive nodes placed on one backend; `state` is the backend's
 * per-segment cache (recorded command buffers, descriptor sets). */
typedef struct r1_segment {
    r1_backend *be;
    r1_node *nodes;
    int n_nodes;
    void *state;
} r1_segment;

typedef struct r1_backend_i {
    const char *name;
    void (*free)(r1_backend *be);
    /* Memory for activations and caches. */
    r1_status (*buffer_alloc)(r1_backend *be, size_t size, r1_buffer **out, r1_error *err);
    void (*buffer_free)(r1_backend *be, r1_buffer *buf);
    /* Points t at buf + off (sets t->data for host memory and/or t->extra). */
    void (*tensor_bind)(r1_backend *be, r1_tensor *t, r1_buffer *buf, size_t off);
    /* Host <-> tensor transfers (bytes from the tensor's start). */
    r1_status (*tensor_set)(r1_backend *be, r1_tensor *t, const void *src, size_t off, size_t n,
                            r1_error *err);
    r1_status (*tensor_get)(r1_backend *be, const r1_tensor *t, void *dst, size_t off, size_t n,
                            r1_error *err);
    /* Makes a weight (host data in the mmap) usable here: upload, import, or nothing. */
    r1_status (*weight_load)(r1_backend *be, r1_tensor *w, r1_error *err);
    /* Derived per-linear data (e.g. a repacked layout); may be NULL. */
    r1_status (*qlinear_prepare)(r1_backend *be, r1_qlinear *q, r1_error *err);
    void (*qlinear_release)(r1_backend *be, r1_qlinear *q);
    /* Whether this backend can run the node; unsupported nodes fall back to the CPU. */
    int (*supports)(r1_backend *be, const r1_node *n);
    /* Per-segment state, created once when the session's graph is scheduled. */
    r1_status (*segment_init)(r1_backend *be, r1_segment *seg, r1_error *err);
    void (*segment_free)(r1_backend *be, r1_segment *seg);
    /* Runs the segment's nodes for one forward call and waits for them. */
    r1_status (*compute)(r1_backend *be, r1_segment *seg, const r1_run *run, r1_error *err);
    /* Free device memory in bytes, 0 if unknown (for automatic layer placement). */
    uint64_t (*free_memory)(r1_backend *be);
    /* Largest single weight tensor it can bind, 0 = no limit (may be NULL). */
    uint64_t (*max_tensor_bytes)(r1_backend *be);
    /* Device memory a batch of n_batch tokens of model cfg needs beyond its
     * activations (the backend's own scratch), for the layer budget; may be NULL.
     * full: every layer and the output head run here, and the backend may keep
     * more for speed (it does the same where a segment holds the head); else it
     * keeps no more than it must, leaving the memory to layers. */
    uint64_t (*batch_extra_bytes)(r1_backend *be, const struct r1_config *cfg, int n_batch,
                                  int full);
    /* Measured memory bandwidth in bytes/s for the bench roofline, 0 if unknown
     * (may be NULL; runs a short probe, not for use while computing). */
    double (*mem_bandwidth)(r1_backend *be);
} r1_backend_i;

struct r1_backend {
    const r1_backend_i *i;
    void *ctx;
    int index;   /* position in the model's backend list */
    int is_host; /* tensors have host `data` pointers */
};

/* CPU backend (cpu/): n_threads 0 = physical cores. */
r1_status r1__cpu_backend_new(int n_threads, r1_backend **out, r1_error *err);
int r1__cpu_backend_threads(const r1_backend *be);
const char *r1__cpu_backend_kernels(const r1_backend *be);
/* --lm-head q8: builds an 8-bit per-row copy of w for the CPU (w->cpu_extra). */
r1_status r1__cpu_head_q8(r1_tensor *w, r1_error *err);
void r1__cpu_head_q8_free(r1_tensor *w);
/* Moves w's data into 2 MiB pages (w->data changes); returns the block to free. */
void *r1__cpu_weight_to_huge(r1_tensor *w, r1_error *err);

/* Vulkan backend (vulkan/), present when built with R1_HAVE_VULKAN. device -1 picks
 * the default (first discrete GPU, else integrated, else a CPU device like lavapipe).
 * Fails with R1_E_DEVICE and a message naming what is missing (loader, driver, device). */
r1_status r1__vulkan_backend_new(int device, r1_backend **out, r1_error *err);
/* Prints every Vulkan device with its type and memory heaps. */
r1_status r1__vulkan_list_devices(FILE *f, r1_error *err);

#endif
