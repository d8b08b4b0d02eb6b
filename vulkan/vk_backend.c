/* The Vulkan backend: r1_backend_i on top of the vulkan/ modules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "vk_internal.h"
#include "vk_plan.h"

#define BLOCK_BYTES (256ull << 20)      /* smallest weight block */
#define BLOCK_MAX_BYTES (2048ull << 20) /* largest (less where the device binds less) */

/* Activation/KV memory of one session and the refs bound into it. */
typedef struct vk_actbuf {
    vk_buf b;
    vk_ref *refs;
} vk_actbuf;

static vk_ctx *ctx(r1_backend *be) {
    return be->ctx;
}

/* The context of an entry point that touches shared Vulkan state, locked. */
static vk_ctx *enter(r1_backend *be) {
    vk_ctx *c = be->ctx;
    pthread_mutex_lock(&c->lock);
    return c;
}

static void leave(vk_ctx *c) {
    pthread_mutex_unlock(&c->lock);
}

static void vk_free(r1_backend *be) {
    if (!be) return;
    vk_ctx *c = ctx(be);
    if (c && c->profile)
        for (int i = 0; i < 2; i++)
            if (c->prof_io_n[i])
                fprintf(stderr, "vulkan profile: %s %d calls, %.3f ms/call (host)\n",
                        i ? "tensor_get" : "tensor_set", c->prof_io_n[i],
                        c->prof_io_ns[i] / 1e6 / c->prof_io_n[i]);
    if (c) {
        if (c->dev) vkDeviceWaitIdle(c->dev);
        if (c->dev) {
            r1vk_pipelines_destroy(c);
            r1vk_memory_free(c);
            r1vk_buf_free(c, &c->dummy);
            if (c->xfer_fence) vkDestroyFence(c->dev, c->xfer_fence, NULL);
            if (c->pool) vkDestroyCommandPool(c->dev, c->pool, NULL);
        }
        r1vk_device_close(c);
        if (c->lock_init) pthread_mutex_destroy(&c->lock);
        free(c);
    }
    free(be);
}

static r1_status buffer_alloc(vk_ctx *c, r1_backend *be, size_t size, r1_buffer **out,
                              r1_error *err) {
    r1_buffer *b = calloc(1, sizeof *b);
    vk_actbuf *a = calloc(1, sizeof *a);
    if (!b || !a) {
        free(b), free(a);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    r1_status st = r1vk_buf_new(c, size, 0, &a->b, err);
    if (st) {
        r1__err_prefix(err, "activations and KV cache (%.1f MiB)", (double)size / 1048576.0);
        free(b), free(a);
        return st;
    }
    if (a->b.map) memset(a->b.map, 0, size);
    c->bytes_device += size;
    b->be = be;
    b->size = size;
    b->handle = a;
    *out = b;
    return R1_OK;
}

static r1_status vk_buffer_alloc(r1_backend *be, size_t size, r1_buffer **out, r1_error *err) {
    vk_ctx *c = enter(be);
    r1_status st = buffer_alloc(c, be, size, out, err);
    leave(c);
    return st;
}

static void vk_buffer_free(r1_backend *be, r1_buffer *b) {
    if (!b) return;
    vk_ctx *c = enter(be);
    vk_actbuf *a = b->handle;
    vkDeviceWaitIdle(c->dev);
    c->bytes_device -= b->size;
    r1vk_buf_free(c, &a->b);
    for (vk_ref *r = a->refs, *n; r; r = n) {
        n = r->next;
        free(r);
    }
    free(a);
    free(b);
    leave(c);
}

static void vk_tensor_bind(r1_backend *be, r1_tensor *t, r1_buffer *b, size_t off) {
    const vk_ctx *c = ctx(be);
    vk_actbuf *a = b->handle;
    vk_ref *r = calloc(1, sizeof *r);
    t->data = NULL;
    t->extra = r; /* NULL on OOM: segment_init then reports the tensor */
    if (!r) return;
    r->buf = a->b.buf;
    r->off = off;
    r->size = r1__tensor_nbytes(t);
    r->map = a->b.map && !c->act_unmapped ? (char *)a->b.map + off : NULL;
    r->next = a->refs;
    a->refs = r;
}

static r1_status vk_tensor_set(r1_backend *be, r1_tensor *t, const void *src, size_t off, size_t n,
                               r1_error *err) {
    vk_ref *r = t->extra;
    if (!r || off + n > r->size)
        return r1__err(err, R1_E_INVAL, "vulkan: tensor_set outside tensor %s", t->name);
    vk_ctx *c = enter(be);
    double t0 = c->profile ? r1vk_now_ns() : 0;
    r->mirror = NULL; /* the last pass's copy is stale now */
    r1_status st =
        r1vk_upload(c, r->buf, r->off + off, r->map ? (char *)r->map + off : NULL, src, n, err);
    if (c->profile) c->prof_io_ns[0] += r1vk_now_ns() - t0, c->prof_io_n[0]++;
    leave(c);
    return st;
}

static r1_status vk_tensor_get(r1_backend *be, const r1_tensor *t, void *dst, size_t off, size_t n,
                               r1_error *err) {
    const vk_ref *r = t->extra;
    if (!r || off + n > r->size)
        return r1__err(err, R1_E_INVAL, "vulkan: tensor_get outside tensor %s", t->name);
    vk_ctx *c = enter(be);
    double t0 = c->profile ? r1vk_now_ns() : 0;
    r1_status st;
    if (r->map) {
        st = r1vk_flush_uploads(c, err);
        if (!st) memcpy(dst, (const char *)r->map + off, n);
    } else if (r->mirror && off + n <= r->mirror_bytes) { /* copied by the last pass */
        st = R1_OK;
        memcpy(dst, (const char *)r->mirror + off, n);
    } else {
        st = r1vk_download(c, r->buf, r->off + off, dst, n, err);
    }
    if (c->profile) c->prof_io_ns[1] += r1vk_now_ns() - t0, c->prof_io_n[1]++;
    leave(c);
    return st;
}

/* Integer weights (qweight, qzeros, g_idx) wait for qlinear_prepare, which
 * knows whether they are used as they are or repacked; float weights are
 * uploaded (or imported) now. A weight too large to bind stays on the host:
 * supports() then leaves its node to the CPU. */
static r1_status vk_weight_load(r1_backend *be, r1_tensor *w, r1_error *err) {
    vk_ctx *c = ctx(be);
    if (w->extra) return R1_OK;
    size_t n = r1__tensor_nbytes(w);
    if (n + 4096 > c->props.limits.maxStorageBufferRange) {
        if (c->verbose)
            fprintf(stderr, "vulkan: %s (%.1f MiB) exceeds the storage buffer range: CPU\n",
                    w->name, (double)n / 1048576.0);
        return R1_OK;
    }
    if (w->type == R1_I32) {
        vk_ref *r = calloc(1, sizeof *r);
        if (!r) return r1__err(err, R1_E_NOMEM, "out of memory");
        r->pending = 1;
        r->host = w->data;
        r->size = n;
        r->next = c->refs;
        c->refs = r;
        w->extra = r;
        return R1_OK;
    }
    return r1vk_weight_upload(c, w, w->data, n, 1, err);
}

static r1_status vk_qlinear_prepare(r1_backend *be, r1_qlinear *q, r1_error *err) {
    return r1vk_qlinear_prepare(ctx(be), q, err);
}

static void vk_qlinear_release(r1_backend *be, r1_qlinear *q) {
    (void)be, (void)q; /* device memory belongs to the backend's blocks */
}

static int vk_supports(r1_backend *be, const r1_node *n) {
    return r1vk_supports(ctx(be), n);
}

static r1_status vk_segment_init(r1_backend *be, r1_segment *seg, r1_error *err) {
    vk_ctx *c = enter(be);
    r1_status st = r1vk_segment_init(c, seg, err);
    leave(c);
    return st;
}

static void vk_segment_free(r1_backend *be, r1_segment *seg) {
    vk_ctx *c = enter(be);
    vkDeviceWaitIdle(c->dev);
    r1vk_segment_free(c, seg);
    leave(c);
}

static r1_status vk_compute(r1_backend *be, r1_segment *seg, const r1_run *run, r1_error *err) {
    vk_ctx *c = enter(be);
    r1_status st = r1vk_compute(c, seg, run, err);
    leave(c);
    return st;
}

/* weight_load keeps 4 KiB of slack for sub-allocation alignment */
static uint64_t vk_max_tensor_bytes(r1_backend *be) {
    uint64_t r = ctx(be)->props.limits.maxStorageBufferRange;
    return r > 4096 ? r - 4096 : 1;
}

/* The prompt GEMMs' scratch for the GPTQ linears of cfg, sized as the segment
 * plan sizes it (vk_plan.c prompt_regions): K-split partials and counters, and
 * with the tensor-core GEMM its fp16 operands (W regions for the groups of
 * linears of two layers, taken in turn, and n_batch x K halves of x; on 14b
 * with everything on the GPU 283 MB for gate and up side by side, and 141 MB
 * for down; else one region of 141 MB). */
static uint64_t vk_batch_extra_bytes(r1_backend *be, const r1_config *cfg, int n_batch, int full) {
    const vk_ctx *c = ctx(be);
    int qd = cfg->n_heads * cfg->head_dim, kvd = cfg->n_kv_heads * cfg->head_dim;
    int kn[][3] = {{cfg->hidden, qd, 0},         {cfg->hidden, kvd, 0},
                   {cfg->hidden, kvd, 0},        {qd, cfg->hidden, 1},
                   {cfg->hidden, cfg->inter, 2}, {cfg->hidden, cfg->inter, 2},
                   {cfg->inter, cfg->hidden, 3}}; /* K, N, input */
    enum { NL = sizeof kn / sizeof kn[0] };
    r1_qlinear q[NL];
    r1_tensor in[4] = {0}, out = {.ne = {n_batch}};
    r1_node nodes[2 * NL];
    gemm_scratch g = {0};
    for (int i = 0; i < 2 * NL; i++) {
        int k = i % NL;
        q[k] = (r1_qlinear){.K = kn[k][0], .N = kn[k][1], .G = 128};
        nodes[i] = (r1_node){.op = R1_OP_MATMUL_Q4, .q = &q[k], .dst = &out};
        nodes[i].src[0] = &in[kn[k][2]];
        if (i < NL) gemm_scratch_add(c, &q[k], (VkDeviceSize)n_batch, &g);
    }
    full = cm_full(c, full);
    r1vk_cm_regions(c, nodes, 2 * NL, cm_merge_cap(c, &g, full), &g);
    gemm_scratch_fit(c, &g, full);
    return 4 * (g.w[0] + g.w[1] + g.x + GK_REGIONS * (g.part + g.cnt));
}

static uint64_t vk_free_memory(r1_backend *be) {
    vk_ctx *c = enter(be);
    uint64_t r = r1vk_free_memory(c);
    leave(c);
    return r;
}

static double vk_mem_bandwidth(r1_backend *be) {
    vk_ctx *c = enter(be);
    double r = r1vk_membw(c);
    leave(c);
    return r;
}

static const r1_backend_i vk_iface = {
    .name = "Vulkan",
    .free = vk_free,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .tensor_bind = vk_tensor_bind,
    .tensor_set = vk_tensor_set,
    .tensor_get = vk_tensor_get,
    .weight_load = vk_weight_load,
    .qlinear_prepare = vk_qlinear_prepare,
    .qlinear_release = vk_qlinear_release,
    .supports = vk_supports,
    .segment_init = vk_segment_init,
    .segment_free = vk_segment_free,
    .compute = vk_compute,
    .free_memory = vk_free_memory,
    .max_tensor_bytes = vk_max_tensor_bytes,
    .batch_extra_bytes = vk_batch_extra_bytes,
    .mem_bandwidth = vk_mem_bandwidth,
};

static r1_status transfer_setup(vk_ctx *c, r1_error *err) {
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = c->qfam};
    r1_status st =
        r1vk_check(vkCreateCommandPool(c->dev, &pi, NULL, &c->pool), "vkCreateCommandPool", err);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if (!st)
        st = r1vk_check(vkAllocateCommandBuffers(c->dev, &ai, &c->xfer_cb),
                        "vkAllocateCommandBuffers", err);
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (!st)
        st = r1vk_check(vkCreateFence(c->dev, &fi, NULL, &c->xfer_fence), "vkCreateFence", err);
    return st;
}

static void settings(vk_ctx *c) {
    const char *t = getenv("R1_VK_TIMEOUT"), *v = getenv("R1_VK_VERBOSE"),
               *im = getenv("R1_VK_IMPORT");
    double secs = t && *t ? atof(t) : 120.0;
    c->timeout_ns = (uint64_t)((secs > 0 ? secs : 120.0) * 1e9);
    c->verbose = v && *v && strcmp(v, "0") != 0;
    c->use_import = !(im && !strcmp(im, "0"));
    const char *pr = getenv("R1_VK_PROFILE"), *wg = getenv("R1_VK_WGS");
    int pv = pr && *pr ? atoi(pr) : 0; /* 1 per shader, 2 (3) a decode (prompt) layer */
    c->profile = c->f.timestamps && pv > 0 ? (pv > 3 ? 3 : pv) : 0;
    /* One decode matvec workgroup per SM or CU where the driver reports them,
     * else the H200's 132 (14b decode, q4 matvec ms/token: 132 -> 5.72, 264 ->
     * 5.97, 512 -> 6.11). */
    c->wg_target = wg && atoi(wg) > 0   ? (uint32_t)atoi(wg)
                   : c->f.compute_units ? c->f.compute_units
                                        : 132;
    /* Workgroups of the decode matvec resident at once: the H200 holds two per
     * SM (115 registers x 256 invocations); R1_VK_SLOTS=0 turns the sizing off. */
    const char *sl = getenv("R1_VK_SLOTS");
    c->wg_slots = sl && *sl ? (uint32_t)atoi(sl) : 2 * c->wg_target;
    const char *bf = getenv("R1_VK_CM_BIG_FROM");
    c->cm_big_from = bf && atoi(bf) > 0 ? (uint32_t)atoi(bf) : 0;
    /* The checkpoint's own GPTQ layout is the default: on the H200 its split-K
     * matvec decoded 93 tokens/s against 89 for the transposed layout with its
     * fused kernels (R1_VK_LAYOUT=t), and it can be imported from the mmap. */
    const char *lay = getenv("R1_VK_LAYOUT"), *nf = getenv("R1_VK_NO_FUSE");
    c->layout_t = lay && !strcmp(lay, "t");
    c->fuse = !(nf && *nf && strcmp(nf, "0") != 0);
    const char *nm = getenv("R1_VK_NO_MERGE");
    c->merge = c->fuse && !(nm && *nm && strcmp(nm, "0") != 0);
    c->preq = c->fuse && !r1vk_env_flag("R1_VK_NO_PREQ");
    const char *pa = getenv("R1_VK_PREP_AHEAD");
    c->prep_ahead = !c->fuse || (pa && *pa && !strcmp(pa, "0")) ? 0 : pa && *pa ? 2 : 1;
    const char *xd = getenv("R1_VK_X_DIRECT");
    c->x_direct = c->fuse && !(xd && *xd && !strcmp(xd, "0"));
    c->act_unmapped = r1vk_env_flag("R1_VK_UNMAPPED");
    /* Chained decode dispatches (vk_record.c) rely on a dispatch's workgroups
     * all being launched before the next one's, which NVIDIA's scheduler does;
     * lavapipe runs dispatches one after another, so there the waits are
     * always met (the tests check the counts). Other drivers: R1_VK_CHAIN=1. */
    const char *ch = getenv("R1_VK_CHAIN");
    c->chain = c->fuse && (ch && *ch ? strcmp(ch, "0") != 0
                                     : c->props.vendorID == 0x10DE ||
                                           c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU);
    /* ... ordered by the Vulkan memory model's release / acquire where the device
     * has it (chain.glsl _vmm variants), not by full fences. Not on CPU devices
     * unless R1_VK_VMM=1: lavapipe (Mesa 22.3) advertises the model but computes
     * the _vmm matvec and decode attention wrong, chained or not, and a CPU
     * device gains nothing from it. */
    const char *vm = getenv("R1_VK_VMM");
    c->vmm =
        c->chain && c->f.vmm &&
        (vm && *vm ? strcmp(vm, "0") != 0 : c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU);
    const char *cf = getenv("R1_VK_CHAIN_FAULT");
    c->chain_fault = c->chain && cf ? atoi(cf) : 0;
    const char *sp = getenv("R1_VK_SPIN");
    /* by default not on a CPU device (lavapipe), whose shaders run on the cores a poll
     * would take; R1_VK_SPIN=1 forces it (tests), =0 turns it off */
    c->spin = sp && *sp ? strcmp(sp, "0") != 0 : c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
    VkDeviceSize max_alloc = 0;
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &m3};
    vkGetPhysicalDeviceProperties2(c->pd, &p2);
    max_alloc = m3.maxMemoryAllocationSize;
    /* blocks bindable whole, so that merged matvecs can read several tensors of one */
    VkDeviceSize range = c->props.limits.maxStorageBufferRange & ~(VkDeviceSize)0xFFFF;
    c->block_max = BLOCK_MAX_BYTES;
    if (max_alloc && c->block_max > max_alloc) c->block_max = max_alloc;
    if (range && c->block_max > range) c->block_max = range;
    c->block_size = BLOCK_BYTES < c->block_max ? BLOCK_BYTES : c->block_max;
}

static void describe(const vk_ctx *c) {
    fprintf(stderr,
            "vulkan: %s; compute units %u, decode matvec workgroups %u (resident %u); subgroup "
            "%u%s, fp16 %s, int8 dot %s, coopmat %s, import %s; shaders:",
            c->props.deviceName, c->f.compute_units, c->wg_target, c->wg_slots, c->f.subgroup_size,
            c->f.subgroup_arith ? " (arithmetic)" : "", c->f.fp16 ? "yes" : "no",
            c->f.int_dot ? "yes" : "no",
            !c->f.coopmat               ? "no"
            : c->f.coopmat == VK_CM_NV  ? "NV"
            : c->f.coopmat == VK_CM_KHR ? "KHR"
                                        : "KHR+NV",
            c->f.host_import && c->use_import ? "yes" : "no");
    for (int i = 0; i < VKP_COUNT; i++)
        if (c->pipe_variant[i]) fprintf(stderr, " %s", c->pipe_variant[i]);
    fputc('\n', stderr);
}

r1_status r1__vulkan_backend_new(int device, r1_backend **out, r1_error *err) {
    *out = NULL;
    r1_backend *be = calloc(1, sizeof *be);
    vk_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be), free(c);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    be->i = &vk_iface;
    be->ctx = c;
    c->lock_init = pthread_mutex_init(&c->lock, NULL) == 0;
    if (!c->lock_init) {
        free(be), free(c);
        return r1__err(err, R1_E_NOMEM, "vulkan: cannot create a mutex");
    }
    r1_status st = r1vk_device_open(c, device, err);
    if (!st) {
        settings(c);
        st = transfer_setup(c, err);
    }
    if (!st) st = r1vk_buf_new(c, 256, 0, &c->dummy, err);
    if (!st) st = r1vk_pipelines_create(c, err);
    if (st) {
        vk_free(be);
        return st;
    }
    if (c->verbose) describe(c);
    if (c->pipe[VKP_MMA_PROBE]) r1vk_mma_probe(c);
    *out = be;
    return R1_OK;
}
