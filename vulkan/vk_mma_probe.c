/* Tensor-core throughput probe, a diagnostic (R1_VK_MMA_PROBE=1 with
 * R1_VK_CM=1 on a device with cooperative matrices; R1_VK_CM_API=nv|khr picks the
 * extension): times mma_probe.comp's
 * variants (8 or 1 float32 accumulators a subgroup, 8 fp16 ones (NV only), 8 with the
 * operands reloaded from shared memory) and prints their product rate, to tell
 * whether the cooperative-matrix path itself or the GEMM around it limits the
 * tensor-core prompt GEMM. */
#include <stdio.h>

#include "vk_seg.h"

#define ITERS 256u
#define GROUPS 1056u /* 8 workgroups of 8 subgroups per SM on a 132-SM GPU */

void r1vk_mma_probe(vk_ctx *c) {
    static const struct {
        int pipe, acc;
        const char *what;
    } v[] = {{VKP_MMA_PROBE, 8, "8 float32 accumulators a subgroup"},
             {VKP_MMA_PROBE1, 1, "1 float32 accumulator (dependent chain)"},
             {VKP_MMA_PROBE_H, 8, "8 fp16 accumulators"},
             {VKP_MMA_PROBE_S, 8, "8 float32 accumulators, operands from shared memory"}};
    vk_buf out = {0};
    vk_probe pr = {0};
    r1_error err = {0};
    int ok = !r1vk_buf_new(c, 4096, 0, &out, &err) && r1vk_probe_open(c, 2, &out, &pr);
    for (size_t i = 0; ok && i < sizeof v / sizeof v[0]; i++) {
        if (!c->pipe[v[i].pipe]) continue;
        double best = 0;
        for (int r = 0; r < 5; r++) { /* the first passes ramp the clocks up */
            double s = r1vk_probe_time(c, &pr, v[i].pipe, ITERS, GROUPS);
            if (s > 0 && (best == 0 || s < best)) best = s;
        }
        double flop = (double)GROUPS * 8 * ITERS * v[i].acc * 2.0 * 16 * 16 * 16;
        fprintf(stderr, "vulkan mma probe (%s): %-52s %8.1f TFLOPS (%.3f ms)\n",
                c->cm_khr ? "KHR" : "NV", v[i].what, best > 0 ? flop / best / 1e12 : 0.0,
                best * 1e3);
    }
    r1vk_probe_close(c, &pr);
    r1vk_buf_free(c, &out);
}
