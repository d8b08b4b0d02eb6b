/* Device memory read bandwidth probe: the denominator of r1run bench's GPU
 * roofline. membw.comp streams a device-local buffer (256 MiB, less on small
 * devices) timed by GPU timestamps around the dispatch; after a few unmeasured
 * passes (clocks ramp up, pages fault in) the median of several is reported.
 * A buffer copy is not used: on the H200 vkCmdCopyBuffer moved only about
 * 0.85 TB/s, a fifth of what shaders read. Any failure reports 0 (unknown). */
#include <stdlib.h>

#include "vk_seg.h"

#define WARMUP 5
#define REPS 7

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static VkDescriptorSet probe_set(vk_ctx *c, VkDescriptorPool pool, const vk_buf *src) {
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &c->dsl};
    VkDescriptorSet set = VK_NULL_HANDLE;
    if (vkAllocateDescriptorSets(c->dev, &ai, &set) != VK_SUCCESS) return VK_NULL_HANDLE;
    vk_bind b[VK_NBIND];
    for (int k = 0; k < VK_NBIND; k++) b[k] = (vk_bind){c->dummy.buf, 0, VK_WHOLE_SIZE};
    b[1] = (vk_bind){src->buf, 0, VK_WHOLE_SIZE};
    r1vk_set_write(c, set, b);
    return set;
}

/* Seconds one pass over n bytes takes on the GPU, 0 on failure. */
static double time_pass(vk_ctx *c, VkQueryPool qp, VkDescriptorSet set, VkDeviceSize n) {
    r1_error err = {0};
    if (r1vk_xfer_begin(c, &err)) return 0;
    VkCommandBuffer cb = c->xfer_cb;
    uint32_t n4 = (uint32_t)(n / 16);
    vkCmdResetQueryPool(cb, qp, 0, 2);
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe[VKP_MEMBW]);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(cb, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof n4, &n4);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, qp, 0);
    vkCmdDispatch(cb, 4096, 1, 1);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
    if (r1vk_xfer_submit(c, &err)) return 0;
    uint64_t ts[2];
    if (vkGetQueryPoolResults(c->dev, qp, 0, 2, sizeof ts, ts, sizeof ts[0],
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return 0;
    return ts[1] > ts[0] ? (double)(ts[1] - ts[0]) * c->props.limits.timestampPeriod * 1e-9 : 0;
}

double r1vk_membw(vk_ctx *c) {
    r1_error err = {0};
    if (!c->f.timestamps || !c->pipe[VKP_MEMBW] || r1vk_flush_uploads(c, &err)) return 0;
    VkDeviceSize n = 256ull << 20;
    while (n > (16ull << 20) && r1vk_free_memory(c) < 2 * n) n /= 2;
    vk_buf src = {0};
    VkQueryPool qp = VK_NULL_HANDLE;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_NBIND};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = 1,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    double t[REPS], bw = 0;
    int ok = !r1vk_buf_new(c, n, 0, &src, &err) &&
             vkCreateQueryPool(c->dev, &qi, NULL, &qp) == VK_SUCCESS &&
             vkCreateDescriptorPool(c->dev, &pi, NULL, &pool) == VK_SUCCESS;
    VkDescriptorSet set = ok ? probe_set(c, pool, &src) : VK_NULL_HANDLE;
    ok = ok && set;
    if (ok && !src.map) { /* defined contents (the shader only XORs them) */
        ok = !r1vk_xfer_begin(c, &err);
        if (ok) vkCmdFillBuffer(c->xfer_cb, src.buf, 0, VK_WHOLE_SIZE, 0);
        ok = ok && !r1vk_xfer_submit(c, &err);
    }
    for (int i = 0; ok && i < WARMUP + REPS; i++) {
        double s = time_pass(c, qp, set, n);
        ok = s > 0;
        if (i >= WARMUP) t[i - WARMUP] = s;
    }
    if (ok) {
        qsort(t, REPS, sizeof t[0], cmp_double);
        bw = (double)n / t[REPS / 2];
    }
    if (pool) vkDestroyDescriptorPool(c->dev, pool, NULL);
    if (qp) vkDestroyQueryPool(c->dev, qp, NULL);
    r1vk_buf_free(c, &src);
    return bw;
}
