/* Device memory: buffers, the weight sub-allocator, staging transfers and the
 * import of mmap'd weight pages.
 *
 * Weights are carved out of a few large blocks (each sized to the weights still
 * to come, 256 MiB to 2 GiB, or one block for a tensor larger than that) so that
 * a 14B model needs a handful of allocations, not thousands. Where the device
 * can read host memory (VK_EXT_external_memory_host: lavapipe, integrated GPUs)
 * a large weight is imported from the mmap instead of copied, so the weights are
 * not held twice. Uploads to device-local memory go through a staging buffer and
 * are batched: copies are recorded until the staging buffer is full or something
 * needs the data (a forward pass submits its input's copies with itself). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define STAGING_BYTES (64u << 20)
#define IMPORT_MIN_BYTES (16u << 10) /* smaller weights are copied: fewer allocations */

int r1vk_mem_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want,
                  VkMemoryPropertyFlags avoid) {
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < c->memp.memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = c->memp.memoryTypes[i].propertyFlags;
            if (!(bits & (1u << i)) || (f & want) != want) continue;
            if (pass == 0 && (f & avoid)) continue;
            return (int)i;
        }
    return -1;
}

static const VkBufferUsageFlags USAGE =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
    VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT;

/* host_visible: 0 device-local (mapped anyway when that memory is host-visible,
 * as on lavapipe and many integrated GPUs), 1 host memory for staging, 2 small
 * buffers the host writes every call (device-local and host-visible if any). */
r1_status r1vk_buf_new(vk_ctx *c, VkDeviceSize size, int host_visible, vk_buf *out, r1_error *err) {
    memset(out, 0, sizeof *out);
    const VkMemoryPropertyFlags HV =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size ? size : 16,
                             .usage = USAGE,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    r1_status st = r1vk_check(vkCreateBuffer(c->dev, &bi, NULL, &out->buf), "vkCreateBuffer", err);
    if (st) return st;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, out->buf, &req);
    int t = -1;
    if (host_visible == 1) {
        t = r1vk_mem_type(c, req.memoryTypeBits, HV | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
        if (t < 0) t = r1vk_mem_type(c, req.memoryTypeBits, HV, 0);
    } else if (host_visible == 2) {
        t = r1vk_mem_type(c, req.memoryTypeBits, HV | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (t < 0) t = r1vk_mem_type(c, req.memoryTypeBits, HV, 0);
    } else {
        t = r1vk_mem_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (t < 0) t = r1vk_mem_type(c, req.memoryTypeBits, 0, 0);
    }
    if (t < 0) {
        r1vk_buf_free(c, out);
        return r1__err(err, R1_E_DEVICE, "vulkan: no memory type for a %s buffer",
                       host_visible ? "host-visible" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    VkResult r = vkAllocateMemory(c->dev, &ai, NULL, &out->mem);
    if (r != VK_SUCCESS) {
        r1vk_buf_free(c, out);
        r1vk_check(r, "vkAllocateMemory", err);
        return r1__err(err, R1_E_DEVICE, "vulkan: cannot allocate %.1f MiB of device memory (%s)",
                       (double)req.size / 1048576.0, r1vk_result_str(r));
    }
    out->size = size;
    st = r1vk_check(vkBindBufferMemory(c->dev, out->buf, out->mem, 0), "vkBindBufferMemory", err);
    VkMemoryPropertyFlags f = c->memp.memoryTypes[t].propertyFlags;
    if (!st && (f & HV) == HV)
        st = r1vk_check(vkMapMemory(c->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &out->map),
                        "vkMapMemory", err);
    if (st) r1vk_buf_free(c, out);
    return st;
}

void r1vk_buf_free(vk_ctx *c, vk_buf *b) {
    if (b->buf) vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(c->dev, b->mem, NULL); /* unmaps too */
    memset(b, 0, sizeof *b);
}

/* Records the pending staging copies into the transfer command buffer, left
 * open (*any: whether there were some). */
static r1_status record_uploads(vk_ctx *c, int *any, r1_error *err) {
    *any = c->n_copies > 0;
    if (!*any) return R1_OK;
    r1_status st = r1vk_xfer_begin(c, err);
    for (int i = 0; i < c->n_copies && !st; i++)
        vkCmdCopyBuffer(c->xfer_cb, c->staging.buf, c->copies[i].dst, 1, &c->copies[i].region);
    c->n_copies = 0;
    c->staging_used = 0;
    return st;
}

/* Submits the recorded staging copies and waits for them. */
r1_status r1vk_flush_uploads(vk_ctx *c, r1_error *err) {
    int any;
    r1_status st = record_uploads(c, &any, err);
    return !st && any ? r1vk_xfer_submit(c, err) : st;
}

/* The pending staging copies as the ended transfer command buffer, for the
 * caller to submit ahead of its own in one submission (and to wait for before
 * staging is written again); *any: whether there were some. Saves a forward
 * pass a separate submit and wait for its input. */
r1_status r1vk_uploads_cb(vk_ctx *c, int *any, r1_error *err) {
    r1_status st = record_uploads(c, any, err);
    if (!st && *any) {
        r1vk_barrier_all(c->xfer_cb);
        st = r1vk_check(vkEndCommandBuffer(c->xfer_cb), "vkEndCommandBuffer", err);
    }
    return st;
}

static r1_status staging_ready(vk_ctx *c, r1_error *err) {
    if (c->staging.buf) return R1_OK;
    return r1vk_buf_new(c, STAGING_BYTES, 1, &c->staging, err);
}

static r1_status add_copy(vk_ctx *c, VkBuffer dst, VkDeviceSize dst_off, VkDeviceSize n,
                          r1_error *err) {
    if (c->n_copies == c->cap_copies) {
        int cap = c->cap_copies ? c->cap_copies * 2 : 256;
        vk_copy *nc = realloc(c->copies, (size_t)cap * sizeof *nc);
        if (!nc) return r1__err(err, R1_E_NOMEM, "out of memory");
        c->copies = nc;
        c->cap_copies = cap;
    }
    c->copies[c->n_copies++] =
        (vk_copy){dst, {.srcOffset = c->staging_used, .dstOffset = dst_off, .size = n}};
    c->staging_used += (n + 15) & ~(VkDeviceSize)15;
    return R1_OK;
}

/* Copies n host bytes to dst+off: directly when dst is mapped, else through
 * staging (batched; r1vk_flush_uploads makes them happen). */
r1_status r1vk_upload(vk_ctx *c, VkBuffer dst, VkDeviceSize off, void *dst_map, const void *src,
                      VkDeviceSize n, r1_error *err) {
    if (dst_map) {
        memcpy(dst_map, src, n);
        return R1_OK;
    }
    r1_status st = staging_ready(c, err);
    for (VkDeviceSize done = 0; !st && done < n;) {
        if (c->staging_used >= STAGING_BYTES) st = r1vk_flush_uploads(c, err);
        if (st) break;
        VkDeviceSize k = n - done, room = STAGING_BYTES - c->staging_used;
        if (k > room) k = room;
        memcpy((char *)c->staging.map + c->staging_used, (const char *)src + done, k);
        st = add_copy(c, dst, off + done, k, err);
        done += k;
    }
    return st;
}

/* Reads n bytes at src+off into host memory (waits for the device). */
r1_status r1vk_download(vk_ctx *c, VkBuffer src, VkDeviceSize off, void *dst, VkDeviceSize n,
                        r1_error *err) {
    r1_status st = r1vk_flush_uploads(c, err);
    if (!st) st = staging_ready(c, err);
    for (VkDeviceSize done = 0; !st && done < n;) {
        VkDeviceSize k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        VkBufferCopy region = {.srcOffset = off + done, .dstOffset = 0, .size = k};
        st = r1vk_xfer_begin(c, err);
        if (st) break;
        vkCmdCopyBuffer(c->xfer_cb, src, c->staging.buf, 1, &region);
        st = r1vk_xfer_submit(c, err);
        if (!st) memcpy((char *)dst + done, c->staging.map, k);
        done += k;
    }
    return st;
}

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a) {
    return (v + a - 1) / a * a;
}

static vk_ref *ref_new(vk_ctx *c) {
    vk_ref *r = calloc(1, sizeof *r);
    if (r) {
        r->next = c->refs;
        c->refs = r;
    }
    return r;
}

/* Bytes of weights whose upload still waits (the integer weights until their
 * qlinear_prepare). */
static VkDeviceSize pending_bytes(const vk_ctx *c) {
    VkDeviceSize n = 0;
    for (const vk_ref *r = c->refs; r; r = r->next)
        if (r->pending) n += r->size;
    return n;
}

/* size bytes of weight memory from a block (a new block when none has room).
 * A new block holds what is still to come, up to block_max: a model's weights
 * then sit in a few blocks, so the tensors that a merged matvec binds together
 * (a layer's q/k/v, gate/up) rarely straddle two (H200, 14b: 271 -> 245 decode
 * dispatches, 154 -> 160 tokens/s), and the last block ends where they do. */
r1_status r1vk_weight_alloc(vk_ctx *c, VkDeviceSize size, vk_ref **out, r1_error *err) {
    VkDeviceSize a = c->props.limits.minStorageBufferOffsetAlignment;
    if (a < 256) a = 256;
    size = align_up(size ? size : 4, 4);
    vk_block *b = c->blocks;
    for (; b; b = b->next)
        if (align_up(b->used, a) + size <= b->b.size) break;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return r1__err(err, R1_E_NOMEM, "out of memory");
        VkDeviceSize want = pending_bytes(c) + size, bs = c->block_size;
        if (want > bs) bs = want < c->block_max ? align_up(want, a) : c->block_max;
        if (size > bs) bs = align_up(size, a);
        r1_status st = r1vk_buf_new(c, bs, 0, &b->b, err);
        if (st) {
            free(b);
            return st;
        }
        b->next = c->blocks;
        c->blocks = b;
        c->bytes_device += bs;
    }
    vk_ref *r = ref_new(c);
    if (!r) return r1__err(err, R1_E_NOMEM, "out of memory");
    r->buf = b->b.buf;
    r->off = align_up(b->used, a);
    r->size = size;
    r->map = b->b.map ? (char *)b->b.map + r->off : NULL;
    b->used = r->off + size;
    *out = r;
    return R1_OK;
}

static r1_status import_buf(vk_ctx *c, uintptr_t p0, VkDeviceSize n, vk_buf *out) {
    VkMemoryHostPointerPropertiesEXT hp = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    if (c->get_host_ptr_props(c->dev, VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
                              (void *)p0, &hp) != VK_SUCCESS)
        return R1_E_DEVICE;
    VkExternalMemoryBufferCreateInfo ext = {
        .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .pNext = &ext,
                             .size = n,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    memset(out, 0, sizeof *out);
    if (vkCreateBuffer(c->dev, &bi, NULL, &out->buf) != VK_SUCCESS) return R1_E_DEVICE;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, out->buf, &req);
    int t = r1vk_mem_type(c, req.memoryTypeBits & hp.memoryTypeBits, 0, 0);
    VkImportMemoryHostPointerInfoEXT imp = {
        .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
        .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
        .pHostPointer = (void *)p0};
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .pNext = &imp,
                               .allocationSize = n,
                               .memoryTypeIndex = (uint32_t)t};
    if (t < 0 || req.size > n || vkAllocateMemory(c->dev, &ai, NULL, &out->mem) != VK_SUCCESS ||
        vkBindBufferMemory(c->dev, out->buf, out->mem, 0) != VK_SUCCESS) {
        r1vk_buf_free(c, out);
        return R1_E_DEVICE;
    }
    out->size = n;
    return R1_OK;
}

/* Imports the pages holding [src, src+n); 0 when the driver refuses (then copy). */
static int try_import(vk_ctx *c, r1_tensor *w, const void *src, size_t n) {
    VkDeviceSize A = c->f.import_align ? c->f.import_align : 4096;
    uintptr_t p = (uintptr_t)src, p0 = p / A * A;
    VkDeviceSize len = align_up(p + n - p0, A);
    size_t es = r1__dtype_size(w->type);
    /* shaders index weights in elements from an aligned descriptor offset */
    if (!c->f.host_import || !c->use_import || n < IMPORT_MIN_BYTES || !es || p % es ||
        len > c->props.limits.maxStorageBufferRange)
        return 0;
    if (c->n_imports == c->cap_imports) {
        int cap = c->cap_imports ? c->cap_imports * 2 : 256;
        vk_buf *nb = realloc(c->imports, (size_t)cap * sizeof *nb);
        if (!nb) return 0;
        c->imports = nb;
        c->cap_imports = cap;
    }
    vk_buf b;
    vk_ref *r;
    if (import_buf(c, p0, len, &b)) return 0;
    if (!(r = ref_new(c))) {
        r1vk_buf_free(c, &b);
        return 0;
    }
    c->imports[c->n_imports++] = b;
    r->buf = b.buf;
    r->off = p - p0;
    r->size = n;
    r->imported = 1;
    w->extra = r;
    c->bytes_imported += n;
    return 1;
}

/* Makes n bytes at src the device copy of weight w (import or upload). */
r1_status r1vk_weight_upload(vk_ctx *c, r1_tensor *w, const void *src, size_t n, int may_import,
                             r1_error *err) {
    vk_ref *old = w->extra;
    if (old && old->pending) old->pending = 0; /* superseded: no longer waiting */
    if (may_import && try_import(c, w, src, n)) return R1_OK;
    vk_ref *r;
    r1_status st = r1vk_weight_alloc(c, n, &r, err);
    if (st) return st;
    w->extra = r;
    return r1vk_upload(c, r->buf, r->off, r->map, src, n, err);
}

/* A weight whose upload was deferred (see weight_load) is uploaded as it is. */
r1_status r1vk_weight_resolve(vk_ctx *c, r1_tensor *w, r1_error *err) {
    vk_ref *r = w->extra;
    if (!r || !r->pending) return R1_OK;
    w->extra = NULL;
    return r1vk_weight_upload(c, w, r->host, r1__tensor_nbytes(w), 1, err);
}

void r1vk_memory_free(vk_ctx *c) {
    for (vk_block *b = c->blocks, *nb; b; b = nb) {
        nb = b->next;
        r1vk_buf_free(c, &b->b);
        free(b);
    }
    c->blocks = NULL;
    for (int i = 0; i < c->n_imports; i++) r1vk_buf_free(c, &c->imports[i]);
    free(c->imports);
    c->imports = NULL;
    c->n_imports = 0;
    for (vk_ref *r = c->refs, *nr; r; r = nr) {
        nr = r->next;
        free(r);
    }
    c->refs = NULL;
    r1vk_buf_free(c, &c->staging);
    free(c->copies);
    c->copies = NULL;
}

uint64_t r1vk_free_memory(vk_ctx *c) {
    uint64_t total = 0;
    if (c->f.mem_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT b = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 m = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b};
        vkGetPhysicalDeviceMemoryProperties2(c->pd, &m);
        for (uint32_t h = 0; h < m.memoryProperties.memoryHeapCount; h++)
            if (m.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
                total += b.heapBudget[h] > b.heapUsage[h] ? b.heapBudget[h] - b.heapUsage[h] : 0;
        return total;
    }
    for (uint32_t h = 0; h < c->memp.memoryHeapCount; h++)
        if (c->memp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            total += c->memp.memoryHeaps[h].size;
    return total > c->bytes_device ? total - c->bytes_device : 0;
}
