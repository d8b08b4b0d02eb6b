/* A segment's outputs brought to the host inside its decode pass: the tensors
 * it writes and no later node of it reads (the logits, or the hidden state
 * handed to the CPU) get their first row copied into a host-visible buffer at
 * the end of the recorded decode command buffer, so that reading them after the
 * pass is a memcpy instead of another submission and wait (H200, 14b logits:
 * 0.2 ms a token). Batch passes (several rows) keep the staged download. */
#include <stdio.h>

#include "vk_seg.h"

static int read_later(const r1_segment *seg, int i, const r1_tensor *t) {
    for (int j = i + 1; j < seg->n_nodes; j++) {
        const r1_node *n = &seg->nodes[j];
        for (int k = 0; k < 3; k++)
            if (n->src[k] == t) return 1;
        if (n->kv[0] == t || n->kv[1] == t) return 1;
    }
    return 0;
}

r1_status r1vk_readback_init(vk_ctx *c, const r1_segment *seg, vk_seg *s, r1_error *err) {
    VkDeviceSize total = 0;
    s->n_exp = 0;
    for (int i = 0; i < seg->n_nodes && s->n_exp < VK_MAX_EXPORTS; i++) {
        const r1_tensor *t = seg->nodes[i].dst;
        vk_ref *r = t ? t->extra : NULL;
        if (!r || t->persistent || t->is_weight || r->map || read_later(seg, i, t)) continue;
        /* the first row: rows are ne[0], a row is the rest */
        VkDeviceSize bytes = (VkDeviceSize)r1__tensor_row(t) * r1__dtype_size(t->type);
        if (bytes > r->size) bytes = r->size;
        s->exp[s->n_exp].r = r;
        s->exp[s->n_exp].off = total;
        s->exp[s->n_exp++].bytes = bytes;
        total += (bytes + 255) & ~(VkDeviceSize)255;
    }
    s->flag_off = total; /* chained decode dispatches' error flag (vk_record.c) */
    if (s->chain_on) total += 256;
    s->chained = 0;
    if (!total) return R1_OK;
    r1_status st = r1vk_buf_new(c, total, 1, &s->readback, err);
    if (!st && !s->readback.map) s->n_exp = 0; /* not mappable: downloads as before */
    if (!st && s->readback.map && s->chain_on) s->chained = 1;
    if (!st && c->verbose && s->n_exp)
        fprintf(stderr, "vulkan: %d output(s), %.1f KiB, copied to the host by the decode pass\n",
                s->n_exp, (double)total / 1024.0);
    return st;
}

void r1vk_readback_record(const vk_seg *s, VkCommandBuffer cb) {
    if (s->chained) {
        VkBufferCopy region = {.srcOffset = 0, .dstOffset = s->flag_off, .size = 4};
        vkCmdCopyBuffer(cb, s->scratch.buf, s->readback.buf, 1, &region);
    }
    if (!s->n_exp && !s->chained) return;
    for (int i = 0; i < s->n_exp; i++) {
        VkBufferCopy region = {
            .srcOffset = s->exp[i].r->off, .dstOffset = s->exp[i].off, .size = s->exp[i].bytes};
        vkCmdCopyBuffer(cb, s->exp[i].r->buf, s->readback.buf, 1, &region);
    }
    r1vk_barrier_all(cb); /* the copies visible to the host */
}

void r1vk_readback_publish(vk_seg *s, int decode) {
    for (int i = 0; i < s->n_exp; i++) {
        vk_ref *r = s->exp[i].r;
        r->mirror = decode ? (const char *)s->readback.map + s->exp[i].off : NULL;
        r->mirror_bytes = decode ? s->exp[i].bytes : 0;
    }
}
