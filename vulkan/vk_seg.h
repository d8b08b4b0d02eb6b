/* A segment's dispatch plan and recorded state (vk_plan.c builds the plan,
 * vk_record.c records and runs it). */
#ifndef R1_VK_SEG_H
#define R1_VK_SEG_H

#include "vk_internal.h"

#define VK_MAX_ACCESS 10
#define VK_MAX_ROPES 4
#define VK_PROF_DISP 40 /* R1_VK_PROFILE=2 (3): decode (prompt) dispatches timed one by one */
#define VK_MAX_EXPORTS 4

typedef struct vk_bind {
    VkBuffer buf;
    VkDeviceSize off, range;
} vk_bind;

/* A byte range a dispatch reads or writes: barriers go only where ranges of
 * activations (which the scheduler reuses across layers) meet. */
typedef struct vk_access {
    VkBuffer buf;
    VkDeviceSize off, size;
    int write;
} vk_access;

static inline int r1vk_overlap(const vk_access *a, const vk_access *b) {
    return a->buf == b->buf && a->off < b->off + b->size && b->off < a->off + a->size;
}

typedef struct vk_disp {
    vk_pipe pipe;
    uint32_t push[VK_PUSH_BYTES / 4];
    uint32_t push_size;
    vk_bind b[VK_NBIND]; /* b[0], the run buffer, is filled in at recording */
    uint32_t groups[3];
    vk_access acc[VK_MAX_ACCESS];
    int n_acc;
    int scratch;        /* binding slot of the segment's scratch buffer, 0 for none */
    uint32_t chain_sig; /* decode: counter increments when done (finished tiles); 0: can't chain */
    int excl_prev;      /* does its work only in calls where the excl_prev dispatches before it
                           do none (the GEMM's variants, by prompt length): no hazard with them */
    int joins_prev;     /* chained: runs beside the dispatch before it, whatever they access
                           (attn_combine: it orders itself after attn_dec by a counter) */
    /* A dispatch whose groups along x follow the call's length T (thi > 0; vk_plan.h
     * by_rows): vk_disp_rows_x. Prompt passes record it indirect, its groups set by
     * the host each call (vk_record.c); the shader covers its work in any such grid */
    uint32_t tlo, thi, rmul, rdiv, wadd, wcut;
    int ind; /* ... its arguments' index in the run buffer, -1 when recorded direct */
    VkDescriptorSet set;
} vk_disp;

/* Groups along x for a call of T rows: none outside T in (tlo, thi] (the GEMM's
 * variants), else cdiv(T rmul + (T > wcut ? wadd : 0), rdiv). */
static inline uint64_t vk_disp_rows_x(const vk_disp *d, uint32_t T) {
    if (T <= d->tlo || T > d->thi) return 0;
    uint64_t w = (uint64_t)T * d->rmul + (T > d->wcut ? d->wadd : 0);
    return (w + d->rdiv - 1) / d->rdiv;
}

/* One RoPE configuration: the host writes its cos/sin table every call. */
typedef struct vk_rope {
    float theta;
    int hd;
    uint32_t toff; /* floats from the start of run.rope[] */
} vk_rope;

enum { VK_DECODE = 0, VK_BATCH = 1, VK_NVAR = 2 };

typedef struct vk_seg {
    vk_disp *d[VK_NVAR]; /* decode (one token: matrix-vector shaders) and batch plans */
    int nd[VK_NVAR];
    int d_cap; /* capacity of each plan's d */
    vk_rope ropes[VK_MAX_ROPES];
    int n_ropes;
    int max_rows;         /* rows of the RoPE tables (graph n_batch) */
    int tok_rows;         /* token ids leading run.rope (an EMBED), else 0 */
    vk_buf run;           /* run parameters, host-visible */
    VkDeviceSize ind_off; /* ... then the indirect dispatches' arguments, 3 words each */
    int n_ind;
    vk_buf scratch;             /* counters, partial sums, operands (zeroed once; the
                                   counters up to fill_n again each decode pass) */
    VkDeviceSize scratch_elems; /* 4-byte elements the plans need */
    VkDeviceSize trace_base;    /* the decode trace's region in it (vk_trace.c), 0: none */
    VkDeviceSize chain_n;       /* error flag (0) and chained decode counters: [0, chain_n) */
    VkDeviceSize fill_n;        /* ... and the attentions' counters: zeroed each decode pass */
    int chain_on;               /* the plan may chain (vk_record.c: if its flag copy maps) */
    VkDeviceSize flag_off;      /* ... the flag's copy in readback */
    int chained;                /* chain_on and a host-visible flag copy: chains recorded */
    VkDeviceSize attn_part;     /* decode attention partials: elements, at attn_poff */
    VkDeviceSize attn_poff, attn_coff; /* ... and their counters at attn_coff: attn_kv (the
                                          most kv heads) for each decode attention in turn */
    VkDeviceSize attn_kv;
    int n_attn;                   /* decode attentions planned so far (their counter sets) */
    VkDeviceSize cm_w[2], cm_x;   /* tensor-core GEMM operands: W regions (groups of linears
                                     take them in turn; one region twice without
                                     prep_ahead), X */
    VkDeviceSize cm_cap;          /* ... W words up to which linears of one input merge */
    VkDeviceSize gk_part, gk_cnt; /* prompt GEMM K-split partials and counters in scratch: */
    VkDeviceSize gk_psz, gk_csz;  /* GK_REGIONS regions of each, these sizes apart */
    int cm; /* prompt GPTQ matmuls use the tensor-core GEMM (its prep and up to five variants,
               vk_plan_q4.c r1vk_plan_cm) */
    VkQueryPool qpool[VK_NVAR]; /* R1_VK_PROFILE: a timestamp after every dispatch */
    double prof_ns[VKP_COUNT], prof_total_ns, prof_host_ns;
    int prof_n[VKP_COUNT], prof_calls;
    double prof_disp[VK_PROF_DISP]; /* ns per decode dispatch, from dispatch prof_first */
    int prof_first, prof_dcalls, prof_var;
    VkDescriptorPool pool;
    VkCommandBuffer cb[VK_NVAR];
    VkFence fence;
    double last_ns[VK_NVAR]; /* host time of the last pass (decode), for the wait */
    int n_barriers[VK_NVAR], n_chained[VK_NVAR];
    int n_preq; /* decode matvecs writing x's digits for the next ones (vk_plan_q4.c) */
    /* vk_readback.c: outputs (first row) copied at the end of the decode pass */
    struct {
        vk_ref *r;
        VkDeviceSize off, bytes; /* in readback */
    } exp[VK_MAX_EXPORTS];
    int n_exp;
    vk_buf readback; /* host-visible */
} vk_seg;

/* vk_record.c: points every binding of set at b[0..VK_NBIND). */
void r1vk_set_write(vk_ctx *c, VkDescriptorSet set, const vk_bind *b);

/* vk_readback.c: finds the segment's outputs that are not host-mapped and a
 * host buffer for their first rows; records their copy at the end of the
 * decode command buffer; after a pass, points each output's mirror at its copy
 * (decode) or clears it (batch). */
r1_status r1vk_readback_init(vk_ctx *c, const r1_segment *seg, vk_seg *s, r1_error *err);
void r1vk_readback_record(const vk_seg *s, VkCommandBuffer cb);
void r1vk_readback_publish(vk_seg *s, int decode);

/* vk_trace.c: the decode trace (R1_VK_TRACE, r1vk_trace_init): places its
 * region after the plan's scratch; zeroes its count at the start of a decode
 * pass; writes the last pass's records. */
void r1vk_trace_scratch(const vk_ctx *c, vk_seg *s);
void r1vk_trace_reset(const vk_seg *s, VkCommandBuffer cb);
void r1vk_trace_dump(vk_ctx *c, const vk_seg *s);

/* vk_plan.c: fills seg->d / seg->nd / seg->ropes from the nodes. */
r1_status r1vk_plan(vk_ctx *c, const r1_segment *seg, vk_seg *s, r1_error *err);

#endif
