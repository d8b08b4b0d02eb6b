/* Tensor-core throughput probe, a diagnostic (R1_VK_MMA_PROBE=1 with
 * R1_VK_CM=1 on a device with VK_NV_cooperative_matrix): times mma_probe.comp's
 * variants (8 or 1 float32 accumulators a subgroup, 8 fp16 ones, 8 with the
 * operands reloaded from shared memory) and prints their product rate, to tell
 * whether the cooperative-matrix path itself or the GEMM around it limits the
 * tensor-core prompt GEMM. */
#include <stdio.h>

#include "vk_seg.h"

#define ITERS 256u
#define GROUPS 1056u /* 8 workgroups of 8 subgroups per SM on a 132-SM GPU */

/* GPU seconds of one dispatch of pipe, 0 on failure. */
static double time_probe(vk_ctx *c, VkQueryPool qp, VkDescriptorSet set, int pipe) {
    r1_error err = {0};
    if (r1vk_xfer_begin(c, &err)) return 0;
    VkCommandBuffer cb = c->xfer_cb;
    uint32_t iters = ITERS;
    vkCmdResetQueryPool(cb, qp, 0, 2);
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe[pipe]);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(cb, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof iters, &iters);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, qp, 0);
    vkCmdDispatch(cb, GROUPS, 1, 1);
    vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
    if (r1vk_xfer_submit(c, &err)) return 0;
    uint64_t ts[2];
    if (vkGetQueryPoolResults(c->dev, qp, 0, 2, sizeof ts, ts, sizeof ts[0],
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return 0;
    return ts[1] > ts[0] ? (double)(ts[1] - ts[0]) * c->props.limits.timestampPeriod * 1e-9 : 0;
}

void r1vk_mma_probe(vk_ctx *c) {
    static const struct {
        int pipe, acc;
        const char *what;
    } v[] = {{VKP_MMA_PROBE, 8, "8 float32 accumulators a subgroup"},
             {VKP_MMA_PROBE1, 1, "1 float32 accumulator (dependent chain)"},
             {VKP_MMA_PROBE_H, 8, "8 fp16 accumulators"},
             {VKP_MMA_PROBE_S, 8, "8 float32 accumulators, operands from shared memory"}};
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_NBIND};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = 1,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    VkQueryPool qp = VK_NULL_HANDLE;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkDescriptorSet set = VK_NULL_HANDLE;
    vk_buf out = {0};
    r1_error err = {0};
    int ok = c->f.timestamps && !r1vk_buf_new(c, 4096, 0, &out, &err) &&
             vkCreateQueryPool(c->dev, &qi, NULL, &qp) == VK_SUCCESS &&
             vkCreateDescriptorPool(c->dev, &pi, NULL, &pool) == VK_SUCCESS;
    if (ok) {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = pool,
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &c->dsl};
        ok = vkAllocateDescriptorSets(c->dev, &ai, &set) == VK_SUCCESS;
    }
    if (ok) {
        vk_bind b[VK_NBIND];
        for (int k = 0; k < VK_NBIND; k++) b[k] = (vk_bind){c->dummy.buf, 0, VK_WHOLE_SIZE};
        b[2] = (vk_bind){out.buf, 0, VK_WHOLE_SIZE};
        r1vk_set_write(c, set, b);
    }
    for (size_t i = 0; ok && i < sizeof v / sizeof v[0]; i++) {
        if (!c->pipe[v[i].pipe]) continue;
        double best = 0;
        for (int r = 0; r < 5; r++) { /* the first passes ramp the clocks up */
            double s = time_probe(c, qp, set, v[i].pipe);
            if (s > 0 && (best == 0 || s < best)) best = s;
        }
        double flop = (double)GROUPS * 8 * ITERS * v[i].acc * 2.0 * 16 * 16 * 16;
        fprintf(stderr, "vulkan mma probe: %-52s %8.1f TFLOPS (%.3f ms)\n", v[i].what,
                best > 0 ? flop / best / 1e12 : 0.0, best * 1e3);
    }
    if (pool) vkDestroyDescriptorPool(c->dev, pool, NULL);
    if (qp) vkDestroyQueryPool(c->dev, qp, NULL);
    r1vk_buf_free(c, &out);
}
