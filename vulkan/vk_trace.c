/* Decode trace, a diagnostic (R1_VK_TRACE=file, with shaders built with
 * -DR1_SHADER_DEFS=R1_TRACE): every workgroup of the chained decode shaders
 * records its phase times, read from the device's real-time clock
 * (chain.glsl), in a region of the segment's scratch buffer, which is then
 * host-visible. The records of the last decode pass go to the file when the
 * segment is freed; bench/vk_trace.py summarises them. */
#include <stdio.h>
#include <stdlib.h>

#include "vk_seg.h"

#define TRACE_MAX 300000u /* chain.glsl */
#define TRACE_WORDS 12u   /* group, workgroup, kind, 8 marks, end */

/* Without the shader hooks (a build without R1_TRACE) there is nothing to
 * record: the setting is ignored, with a note, rather than making the scratch
 * host-visible for an empty trace. */
void r1vk_trace_init(vk_ctx *c) {
    const char *p = getenv("R1_VK_TRACE");
    c->trace_path[0] = 0;
    if (!p || !*p) return;
#ifdef R1_VK_TRACE_BUILT
    snprintf(c->trace_path, sizeof c->trace_path, "%s", p);
#else
    fprintf(stderr,
            "r1run: R1_VK_TRACE ignored: shaders built without -DR1_SHADER_DEFS=R1_TRACE\n");
#endif
}

/* The trace region after the plan's scratch: the record count, then the
 * records (chain.glsl, at the run buffer's trace word). */
void r1vk_trace_scratch(const vk_ctx *c, vk_seg *s) {
    if (!c->trace_path[0] || !s->scratch_elems) return;
    s->trace_base = (s->scratch_elems + 15) & ~(VkDeviceSize)15;
    s->scratch_elems = s->trace_base + 16 + (VkDeviceSize)TRACE_MAX * TRACE_WORDS;
}

void r1vk_trace_reset(const vk_seg *s, VkCommandBuffer cb) {
    if (s->trace_base) vkCmdFillBuffer(cb, s->scratch.buf, s->trace_base * 4, 4, 0);
}

void r1vk_trace_dump(vk_ctx *c, const vk_seg *s) {
    if (!s->trace_base || !s->scratch.map) return;
    vkDeviceWaitIdle(c->dev);
    FILE *f = fopen(c->trace_path, "w");
    if (!f) return;
    const uint32_t *m = (const uint32_t *)s->scratch.map;
    for (int i = 0; i < s->nd[VK_DECODE]; i++) { /* dispatch, its counter, shader, grid */
        const vk_disp *d = &s->d[VK_DECODE][i];
        fprintf(f, "D %d %u %s %u %u %u\n", i, d->push[VK_PUSH_BYTES / 4 - 1] & 0xFFFF,
                c->pipe_variant[d->pipe], d->groups[0], d->groups[1], d->groups[2]);
    }
    const uint32_t *b = m + s->trace_base;
    uint32_t n = b[0] < TRACE_MAX ? b[0] : TRACE_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t *r = b + 16 + (size_t)i * TRACE_WORDS;
        fprintf(f, "R");
        for (uint32_t k = 0; k < TRACE_WORDS; k++) fprintf(f, " %u", r[k]);
        fprintf(f, "\n");
    }
    fclose(f);
}
