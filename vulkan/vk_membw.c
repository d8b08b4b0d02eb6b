/* Device memory read bandwidth probe: the denominator of r1run bench's GPU
 * roofline. membw.comp streams a device-local buffer (256 MiB, less on small
 * devices) timed by GPU timestamps around the dispatch; after a few unmeasured
 * passes (clocks ramp up, pages fault in) the median of several is reported.
 * A buffer copy is not used: on the H200 vkCmdCopyBuffer moved only about
 * 0.85 TB/s, a fifth of what shaders read. Any failure reports 0 (unknown). */
#include <stdlib.h>
#include <string.h>

#include "vk_seg.h"

#define WARMUP 5
#define REPS 7

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int r1vk_probe_open(vk_ctx *c, int slot, const vk_buf *buf, vk_probe *pr) {
    memset(pr, 0, sizeof *pr);
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_NBIND};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = 1,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    if (!c->f.timestamps || vkCreateQueryPool(c->dev, &qi, NULL, &pr->qp) != VK_SUCCESS ||
        vkCreateDescriptorPool(c->dev, &pi, NULL, &pr->pool) != VK_SUCCESS)
        return 0;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = pr->pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &c->dsl};
    if (vkAllocateDescriptorSets(c->dev, &ai, &pr->set) != VK_SUCCESS) return 0;
    vk_bind b[VK_NBIND];
    for (int k = 0; k < VK_NBIND; k++) b[k] = (vk_bind){c->dummy.buf, 0, VK_WHOLE_SIZE};
    b[slot] = (vk_bind){buf->buf, 0, VK_WHOLE_SIZE};
    r1vk_set_write(c, pr->set, b);
    return 1;
}

void r1vk_probe_close(vk_ctx *c, vk_probe *pr) {
    if (pr->pool) vkDestroyDescriptorPool(c->dev, pr->pool, NULL);
    if (pr->qp) vkDestroyQueryPool(c->dev, pr->qp, NULL);
    memset(pr, 0, sizeof *pr);
}

double r1vk_probe_time(vk_ctx *c, const vk_probe *pr, int pipe, uint32_t word, uint32_t groups) {
    r1_error err = {0};
    if (r1vk_xfer_begin(c, &err)) return 0;
    VkCommandBuffer cb = c->xfer_cb;
    vkCmdResetQueryPool(cb, pr->qp, 0, 2);
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe[pipe]);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &pr->set, 0, NULL);
    vkCmdPushConstants(cb, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof word, &word);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pr->qp, 0);
    vkCmdDispatch(cb, groups, 1, 1);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pr->qp, 1);
    if (r1vk_xfer_submit(c, &err)) return 0;
    uint64_t ts[2];
    if (vkGetQueryPoolResults(c->dev, pr->qp, 0, 2, sizeof ts, ts, sizeof ts[0],
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
    vk_probe pr = {0};
    double t[REPS], bw = 0;
    int ok = !r1vk_buf_new(c, n, 0, &src, &err) && r1vk_probe_open(c, 1, &src, &pr);
    if (ok && !src.map) { /* defined contents (the shader only XORs them) */
        ok = !r1vk_xfer_begin(c, &err);
        if (ok) vkCmdFillBuffer(c->xfer_cb, src.buf, 0, VK_WHOLE_SIZE, 0);
        ok = ok && !r1vk_xfer_submit(c, &err);
    }
    for (int i = 0; ok && i < WARMUP + REPS; i++) {
        double s = r1vk_probe_time(c, &pr, VKP_MEMBW, (uint32_t)(n / 16), 4096);
        ok = s > 0;
        if (i >= WARMUP) t[i - WARMUP] = s;
    }
    if (ok) {
        qsort(t, REPS, sizeof t[0], cmp_double);
        bw = (double)n / t[REPS / 2];
    }
    r1vk_probe_close(c, &pr);
    r1vk_buf_free(c, &src);
    return bw;
}
