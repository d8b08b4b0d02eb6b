/* Vulkan backend internals, shared by the files of vulkan/.
 *
 * vk_device.c    instance, device list and choice, logical device, features
 * vk_memory.c    weight sub-allocator, buffers, staging uploads, host-pointer import
 * vk_submit.c    one-shot transfer command buffers, fences with timeouts, error text
 * vk_pipeline.c  shader table -> pipelines (created once), on-disk pipeline cache
 * vk_qlinear.c   GPTQ linears: act-order permutation and repacking
 * vk_plan.c      graph nodes -> dispatches (shader, bindings, push constants, barriers)
 * vk_plan_q4.c   ... of GPTQ matmuls, with the decode fusions and merged matvecs
 * vk_record.c    per-segment state: descriptor sets, recorded command buffers, compute
 * vk_readback.c  a segment's outputs copied to host memory inside the decode pass
 * vk_membw.c     device memory bandwidth probe (r1run bench's GPU roofline)
 * vk_mma_probe.c tensor-core throughput probe (R1_VK_MMA_PROBE=1, a diagnostic)
 * vk_backend.c   the r1_backend_i glue */
#ifndef R1_VK_INTERNAL_H
#define R1_VK_INTERNAL_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#include "backend.h"

/* An environment switch (R1_VK_NO_DP=1 ...): set, non-empty and not "0". */
static inline int r1vk_env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Descriptor layout shared by every pipeline: binding 0 holds the per-call run
 * parameters (n_tokens, pos, n_out, RoPE tables), bindings 1..VK_NBIND-1 the
 * op's tensors. Push constants carry the node's fixed sizes and offsets. */
#define VK_NBIND 11
#define VK_PUSH_BYTES 128

/* A buffer with its own memory (staging, activations, run parameters, blocks). */
typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map; /* host address when host-visible and mapped, else NULL */
} vk_buf;

/* Where a tensor's bytes live on the device; stored in r1_tensor.extra. */
typedef struct vk_ref {
    VkBuffer buf;
    VkDeviceSize off;  /* byte offset of the tensor's first byte in buf */
    VkDeviceSize size; /* bytes */
    void *map;         /* host address of the first byte when mapped, else NULL */
    int pending;       /* weight whose upload waits for qlinear_prepare (or first use) */
    int imported;      /* memory is the mmap itself (VK_EXT_external_memory_host) */
    int layout_t;      /* GPTQ qweight/scales in the transposed layout (vk_qlinear.c) */
    const void *host;  /* pending: the host bytes to upload */
    /* A host copy of the first mirror_bytes bytes as the last forward pass left them
     * (vk_readback.c), or NULL: owned by the segment, valid until its next pass. */
    const void *mirror;
    VkDeviceSize mirror_bytes;
    struct vk_ref *next;
} vk_ref;

/* One large device allocation weights are carved from. */
typedef struct vk_block {
    vk_buf b;
    VkDeviceSize used;
    struct vk_block *next;
} vk_block;

/* Pending staging copy (staging offset -> buffer, offset). */
typedef struct vk_copy {
    VkBuffer dst;
    VkBufferCopy region;
} vk_copy;

typedef enum vk_pipe {
    VKP_RMSNORM,
    VKP_ADD_RMSNORM,
    VKP_Q4_MATVEC,
    VKP_Q4_MATVEC_MT, /* several tiles per workgroup (large decode matvecs) */
    VKP_Q4_MATVEC_SIMPLE,
    VKP_Q4_GEMM,
    VKP_Q4_PREP_CM, /* fp16 operands of the tensor-core prompt GEMM */
    VKP_GEMM_CM,
    VKP_GEMM_CM_SPLIT,    /* ... its K-split variant for short prompts */
    VKP_GEMM_CM_BIG,      /* ... its 128 x 128 tile variant for long prompts (where it fits) */
    VKP_GEMM_CM_Q4,       /* gemm_cm reading the GPTQ words itself (fp16 mode) */
    VKP_GEMM_CM_SPLIT_Q4, /* ... its K-split variant */
    VKP_ATTN_CM,          /* prompt attention on tensor cores (fp16 mode, head dim 128) */
    VKP_Q4T_MATVEC,
    VKP_Q4T_GEMM,
    VKP_DENSE_MATVEC,
    VKP_DENSE_GEMM,
    VKP_ROPE,
    VKP_ROPE_KV,
    VKP_KV_STORE,
    VKP_ATTN,
    VKP_ATTN_TILED, /* prompt attention, four invocations a row (subgroup shuffles) */
    VKP_ATTN_DEC,
    VKP_ATTN_COMBINE, /* decode attention's chunks combined, a workgroup per query head */
    VKP_ELTWISE,
    VKP_EMBED,     /* embedding lookup, ids from the run buffer */
    VKP_MEMBW,     /* the bandwidth probe, not a graph op */
    VKP_MMA_PROBE, /* tensor-core throughput probes (R1_VK_MMA_PROBE), not graph ops */
    VKP_MMA_PROBE1,
    VKP_MMA_PROBE_H,
    VKP_MMA_PROBE_S,
    VKP_COUNT
} vk_pipe;

enum { VK_CM_NV = 1, VK_CM_KHR = 2 };

typedef struct vk_features {
    int fp16;           /* shaderFloat16 (arithmetic) */
    int storage16;      /* storageBuffer16BitAccess */
    int subgroup_arith; /* subgroup arithmetic in compute shaders */
    int shuffle;        /* ... and subgroup shuffles */
    int int_dot; /* packed 4x8-bit integer dot products (VK_KHR_shader_integer_dot_product) */
    int vmm;     /* the Vulkan memory model (VkPhysicalDeviceVulkanMemoryModelFeatures) */
    uint32_t subgroup_size;
    int host_import; /* VK_EXT_external_memory_host */
    VkDeviceSize import_align;
    int mem_budget;         /* VK_EXT_memory_budget */
    uint32_t compute_units; /* SMs (VK_NV_shader_sm_builtins) or CUs (AMD), 0 unknown */
    int timestamps;         /* the queue can time dispatches (R1_VK_PROFILE) */
    int coopmat;    /* 16x16x16 fp16 x fp16 + float32 cooperative matrices (the tensor-core prompt
                       GEMM): VK_CM_NV | VK_CM_KHR, the extensions that offer them */
    int exec_stats; /* R1_VK_STATS=1 and VK_KHR_pipeline_executable_properties: print each
                       pipeline's compiler statistics (registers, ...) */
} vk_features;

typedef struct vk_ctx {
    /* One caller at a time (sessions on several threads share the backend):
     * the queue, the command pool and the transfer buffer need external sync. */
    pthread_mutex_t lock;
    int lock_init;
    VkInstance inst;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memp;
    vk_features f;
    PFN_vkGetMemoryHostPointerPropertiesEXT get_host_ptr_props;
    uint64_t timeout_ns;
    int verbose;
    int profile;          /* R1_VK_PROFILE=1: time every dispatch; 2: also list one layer's */
    double prof_io_ns[2]; /* ... and host time in tensor_set [0] and tensor_get [1] */
    int prof_io_n[2];
    uint32_t wg_target;   /* workgroups a decode matvec aims for (K split) */
    uint32_t wg_slots;    /* decode matvec workgroups resident at once (tiles per workgroup) */
    uint32_t cm_big_from; /* prompt lengths past which the 128 x 128 GEMM tile runs; 0: by
                             the tile counts (vk_plan_q4.c cm_big_from) */
    int layout_t;         /* repack GPTQ linears to the transposed layout (discrete GPUs) */
    int fuse;             /* fuse neighbouring nodes into one dispatch (R1_VK_NO_FUSE=0) */
    int merge;            /* matvecs of one input in one dispatch (R1_VK_NO_MERGE=1: not) */
    int prep_ahead;       /* prompt GEMMs: the next linear's fp16 weight written beside this
                             one's GEMM, in a second region, with every layer and the head
                             on the GPU (1); R1_VK_PREP_AHEAD=0: never, =1: always (2) */
    int x_direct;         /* ... their x in fp16 written by the norm or attention before them
                             (fp16 mode; R1_VK_X_DIRECT=0: not) */
    int preq;         /* decode matvecs hand x's digits on (vk_plan_q4.c; R1_VK_NO_PREQ=1: not) */
    int chain;        /* decode dispatches chained by counters, no barriers (R1_VK_CHAIN=0/1) */
    int vmm;          /* chained shaders' Vulkan-memory-model variants (R1_VK_VMM=0/1) */
    int chain_fault;  /* R1_VK_CHAIN_FAULT=k (tests): chained wait k asks one count too many,
                         so that it gives up and the pass reports the error */
    int spin;         /* poll the fence near a pass's expected end (R1_VK_SPIN=0: not) */
    int act_unmapped; /* R1_VK_UNMAPPED=1: activations used as if not host-visible (tests the
                         staged transfers and readbacks of discrete GPUs on lavapipe) */

    /* transfers */
    VkCommandPool pool;
    VkCommandBuffer xfer_cb;
    VkFence xfer_fence;
    vk_buf staging;
    VkDeviceSize staging_used;
    vk_copy *copies;
    int n_copies, cap_copies;

    /* weights */
    vk_block *blocks;
    VkDeviceSize block_size, block_max; /* weight blocks: smallest and largest size */
    vk_ref *refs;                       /* every vk_ref made for weights (freed with the backend) */
    vk_buf *imports;                    /* one buffer per imported weight range */
    int n_imports, cap_imports;
    int use_import; /* R1_VK_IMPORT=0 turns host-pointer import off */
    uint64_t bytes_device, bytes_imported;

    /* pipelines */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache cache;
    VkPipeline pipe[VKP_COUNT];
    const char *pipe_variant[VKP_COUNT];
    int use_fp16; /* fp16-arithmetic shader variants chosen */
    int x_digits; /* int8 digits of x in the decode matvec: 3, or 2 in the fp16 mode (cm 1) */
    /* Prompt GEMM on tensor cores, on by default where the device has them: fp16
     * operands (1), R1_VK_CM=exact operands split for float32 accuracy (2); 0 off
     * (R1_VK_CM=0, or none on the device). cm_khr: through
     * VK_KHR_cooperative_matrix (the "_khr" shaders), else VK_NV_cooperative_matrix;
     * KHR where the device has it and the shaders are built, R1_VK_CM_API=nv|khr.
     * cm_emu: emulated products (the "_emu" shader), for tests on devices without
     * cooperative matrices (R1_VK_CM_EMU=1). The fp16-only variants (the big
     * tile, the words-reading ones, attn_cm) are planned where their pipelines
     * exist (vk_pipeline.c fp16_only_ok). */
    int cm, cm_khr, cm_emu;
    vk_buf dummy; /* bound to unused descriptor slots */
    char cache_path[512];
    char trace_path[512]; /* R1_VK_TRACE (vk_trace.c), "" when off */
} vk_ctx;

/* vk_trace.c: reads R1_VK_TRACE into c->trace_path (vk_seg.h has the rest) */
void r1vk_trace_init(vk_ctx *c);

/* vk_device.c */
r1_status r1vk_device_open(vk_ctx *c, int device, r1_error *err);
void r1vk_device_close(vk_ctx *c);

/* vk_submit.c */
const char *r1vk_result_str(VkResult r);
r1_status r1vk_check(VkResult r, const char *what, r1_error *err);
r1_status r1vk_wait(vk_ctx *c, VkFence f, const char *what, r1_error *err);
double r1vk_now_ns(void); /* CLOCK_MONOTONIC */
r1_status r1vk_wait_expect(vk_ctx *c, VkFence f, double expect_ns, const char *what, r1_error *err);
r1_status r1vk_xfer_begin(vk_ctx *c, r1_error *err);
r1_status r1vk_xfer_submit(vk_ctx *c, r1_error *err);
void r1vk_barrier_all(VkCommandBuffer cb);

/* vk_memory.c */
int r1vk_mem_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want,
                  VkMemoryPropertyFlags avoid);
r1_status r1vk_buf_new(vk_ctx *c, VkDeviceSize size, int host_visible, vk_buf *out, r1_error *err);
void r1vk_buf_free(vk_ctx *c, vk_buf *b);
r1_status r1vk_upload(vk_ctx *c, VkBuffer dst, VkDeviceSize off, void *dst_map, const void *src,
                      VkDeviceSize n, r1_error *err);
r1_status r1vk_flush_uploads(vk_ctx *c, r1_error *err);
r1_status r1vk_uploads_cb(vk_ctx *c, int *any, r1_error *err);
r1_status r1vk_download(vk_ctx *c, VkBuffer src, VkDeviceSize off, void *dst, VkDeviceSize n,
                        r1_error *err);
r1_status r1vk_weight_alloc(vk_ctx *c, VkDeviceSize size, vk_ref **out, r1_error *err);
r1_status r1vk_weight_upload(vk_ctx *c, r1_tensor *w, const void *src, size_t n, int may_import,
                             r1_error *err);
r1_status r1vk_weight_resolve(vk_ctx *c, r1_tensor *w, r1_error *err);
void r1vk_memory_free(vk_ctx *c);
uint64_t r1vk_free_memory(vk_ctx *c);

/* vk_membw.c: bytes/s a compute shader reads from device memory, 0 if unknown */
double r1vk_membw(vk_ctx *c);
/* ... and what probes share: a timestamp query pair and a descriptor set with
 * buf at slot (dummies elsewhere); open returns 0 on failure (close is still
 * safe); time is the GPU seconds of one dispatch of pipe with one push word. */
typedef struct vk_probe {
    VkQueryPool qp;
    VkDescriptorPool pool;
    VkDescriptorSet set;
} vk_probe;
int r1vk_probe_open(vk_ctx *c, int slot, const vk_buf *buf, vk_probe *pr);
void r1vk_probe_close(vk_ctx *c, vk_probe *pr);
double r1vk_probe_time(vk_ctx *c, const vk_probe *pr, int pipe, uint32_t word, uint32_t groups);
/* vk_mma_probe.c: prints the cooperative-matrix product rate of each probe variant */
void r1vk_mma_probe(vk_ctx *c);

/* vk_pipeline.c */
r1_status r1vk_pipelines_create(vk_ctx *c, r1_error *err);
void r1vk_pipelines_destroy(vk_ctx *c);

/* vk_qlinear.c */
r1_status r1vk_qlinear_prepare(vk_ctx *c, r1_qlinear *q, r1_error *err);

/* vk_plan.c / vk_record.c */
int r1vk_supports(vk_ctx *c, const r1_node *n);
r1_status r1vk_segment_init(vk_ctx *c, r1_segment *seg, r1_error *err);
void r1vk_segment_free(vk_ctx *c, r1_segment *seg);
r1_status r1vk_compute(vk_ctx *c, r1_segment *seg, const r1_run *run, r1_error *err);

#endif
