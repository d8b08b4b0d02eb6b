/* Per-segment state: descriptor sets written once, both plans (decode and
 * batch) recorded once into their own command buffers, and compute(), which
 * writes the run buffer (sizes, RoPE tables) and replays one of them.
 *
 * Barriers: a dispatch waits for earlier ones only when it reads or writes a
 * byte range that an earlier dispatch since the last barrier wrote (or writes
 * what one read). Independent nodes (q, k and v projections; gate and up) run
 * without a barrier between them.
 *
 * Chains (decode, c->chain): a barrier drains the GPU, and the next dispatch
 * then starts from nothing (H200 14b: decode without any barrier, results
 * wrong, 4.8 -> 3.1 ms a token). Where a group of dispatches (those between
 * two sync points, which run beside each other) needs the group before it and
 * all are chain-capable (the GPTQ matvec, the decode attention and its
 * combine), it is recorded without the barrier: its workgroups start while the
 * previous group finishes, issue their first weight loads, then wait (one
 * invocation polling, chain.glsl) until the previous group's counter reaches
 * its count of finished tiles, and every activation they read is `coherent`
 * (not from a stale L1). Since that group waited the same way (or followed a
 * barrier), the wait orders everything before it too. The counters live at the
 * start of the scratch and are zeroed at the start of every decode pass. A
 * wait that polls for too long sets an error flag (scratch element 0) that
 * compute() reports. Deadlock-free where a dispatch's workgroups are all launched before
 * the next one's (in-order launch): then every workgroup waited for is
 * resident or done. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vk_seg.h"

#define RUN_HEADER 16 /* bytes before run.rope[] */

/* Whether d conflicts with the accesses since the last barrier. */
static int hazard(const vk_disp *d, const vk_access *pend, int n_pend) {
    for (int i = 0; i < d->n_acc; i++)
        for (int j = 0; j < n_pend; j++)
            if ((d->acc[i].write || pend[j].write) && r1vk_overlap(&d->acc[i], &pend[j])) return 1;
    return 0;
}

static void compute_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

static r1_status record(vk_ctx *c, vk_seg *s, int v, r1_error *err) {
    VkCommandBuffer cb = s->cb[v];
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    r1_status st = r1vk_check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer", err);
    if (st) return st;
    int chain = v == VK_DECODE && s->chained;
    /* the chain and attention counters start every decode pass at zero */
    if (v == VK_DECODE && s->scratch.buf) vkCmdFillBuffer(cb, s->scratch.buf, 0, s->fill_n * 4, 0);
    if (v == VK_DECODE) r1vk_trace_reset(s, cb);
    /* earlier transfers and host writes (tensor_set, weights) before any dispatch */
    r1vk_barrier_all(cb);
    vk_access *pend = malloc(((size_t)s->nd[v] * VK_MAX_ACCESS + 1) * sizeof *pend);
    if (!pend) return r1__err(err, R1_E_NOMEM, "out of memory");
    int n_pend = 0;
    VkPipeline bound = VK_NULL_HANDLE;
    VkQueryPool qp = s->qpool[v];
    if (qp) {
        vkCmdResetQueryPool(cb, qp, 0, (uint32_t)s->nd[v] + 1);
        vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 0);
    }
    s->n_barriers[v] = s->n_chained[v] = 0;
    /* Groups: the dispatches between two sync points (a barrier, or a chain
     * wait), which run beside each other. Group g's members count on element
     * g + 1; a chained group's members all wait for the previous group's sum. */
    int g = 0, gall = 1, gwait = 0, fault = c->chain_fault; /* gall: all chain-capable */
    uint32_t gsig = 0, psig = 0; /* counts of this group and of the previous one */
    for (int i = 0; i < s->nd[v]; i++) {
        vk_disp *d = &s->d[v][i];
        /* a dispatch that cannot wait cannot run beside waiting ones; one that
         * orders itself after the one before it (joins_prev) needs no sync */
        int joins = chain && d->joins_prev && i > 0 && s->d[v][i - 1].chain_sig;
        int mine = n_pend;
        for (int k = 1; k <= d->excl_prev && k <= i; k++) mine -= s->d[v][i - k].n_acc;
        if (!joins && (hazard(d, pend, mine > 0 ? mine : 0) || (gwait && !d->chain_sig))) {
            gwait = chain && gall && d->chain_sig && gsig && gsig < 65536;
            if (!gwait) compute_barrier(cb);
            s->n_barriers[v] += !gwait;
            s->n_chained[v] += gwait;
            n_pend = 0;
            g++, psig = gsig, gsig = 0, gall = 1;
            if (gwait && fault && !--fault) psig++; /* R1_VK_CHAIN_FAULT=k: wait k never met */
        }
        if (chain && d->chain_sig) { /* the last push constant (chain.glsl) */
            d->push[VK_PUSH_BYTES / 4 - 1] = (uint32_t)(g + 1) | (gwait ? psig << 16 : 0u);
            gsig += d->chain_sig;
        }
        gall = gall && d->chain_sig;
        memcpy(pend + n_pend, d->acc, (size_t)d->n_acc * sizeof *pend);
        n_pend += d->n_acc;
        if (c->pipe[d->pipe] != bound) {
            bound = c->pipe[d->pipe];
            vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, bound);
        }
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &d->set, 0,
                                NULL);
        if (d->push_size) /* whole: the chain word is the last, zero when not chained */
            vkCmdPushConstants(cb, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES,
                               d->push);
        if (d->ind >= 0)
            vkCmdDispatchIndirect(cb, s->run.buf, s->ind_off + (VkDeviceSize)d->ind * 12);
        else
            vkCmdDispatch(cb, d->groups[0], d->groups[1], d->groups[2]);
        if (qp) vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, (uint32_t)i + 1);
    }
    free(pend);
    r1vk_barrier_all(cb); /* results visible to transfers and the host */
    if (v == VK_DECODE) r1vk_readback_record(s, cb);
    return r1vk_check(vkEndCommandBuffer(cb), "vkEndCommandBuffer", err);
}

void r1vk_set_write(vk_ctx *c, VkDescriptorSet set, const vk_bind *b) {
    VkDescriptorBufferInfo bi[VK_NBIND];
    VkWriteDescriptorSet w[VK_NBIND];
    for (int k = 0; k < VK_NBIND; k++) {
        bi[k] = (VkDescriptorBufferInfo){b[k].buf, b[k].off, b[k].range};
        w[k] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)k,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[k]};
    }
    vkUpdateDescriptorSets(c->dev, VK_NBIND, w, 0, NULL);
}

static r1_status write_sets(vk_ctx *c, vk_seg *s, r1_error *err) {
    int total = s->nd[0] + s->nd[1];
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (uint32_t)total * VK_NBIND};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = (uint32_t)total,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    r1_status st = r1vk_check(vkCreateDescriptorPool(c->dev, &pi, NULL, &s->pool),
                              "vkCreateDescriptorPool", err);
    VkDeviceSize max_range = c->props.limits.maxStorageBufferRange;
    for (int v = 0; v < VK_NVAR && !st; v++)
        for (int i = 0; i < s->nd[v] && !st; i++) {
            vk_disp *d = &s->d[v][i];
            VkDescriptorSetAllocateInfo ai = {.sType =
                                                  VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                              .descriptorPool = s->pool,
                                              .descriptorSetCount = 1,
                                              .pSetLayouts = &c->dsl};
            st = r1vk_check(vkAllocateDescriptorSets(c->dev, &ai, &d->set),
                            "vkAllocateDescriptorSets", err);
            d->b[0] = (vk_bind){s->run.buf, 0, s->run.size};
            if (d->scratch) d->b[d->scratch] = (vk_bind){s->scratch.buf, 0, s->scratch.size};
            for (int k = 0; k < VK_NBIND && !st; k++)
                if (d->b[k].range > max_range)
                    st = r1__err(err, R1_E_DEVICE,
                                 "vulkan: a tensor of %.1f MiB exceeds the device's storage "
                                 "buffer range (%.1f MiB)",
                                 (double)d->b[k].range / 1048576.0, (double)max_range / 1048576.0);
            if (!st) r1vk_set_write(c, d->set, d->b);
        }
    return st;
}

/* Split-K partial sums and counters: the counters must start at zero (the
 * last workgroup of each tile resets its own). */
static r1_status scratch_buffer(vk_ctx *c, vk_seg *s, r1_error *err) {
    if (!s->scratch_elems) return R1_OK;
    r1vk_trace_scratch(c, s);
    VkDeviceSize bytes = s->scratch_elems * 4;
    r1_status st = r1vk_buf_new(c, bytes, s->trace_base ? 2 : 0, &s->scratch, err);
    if (st) return st;
    if (s->scratch.map) {
        memset(s->scratch.map, 0, bytes);
        return R1_OK;
    }
    st = r1vk_xfer_begin(c, err);
    if (!st) vkCmdFillBuffer(c->xfer_cb, s->scratch.buf, 0, VK_WHOLE_SIZE, 0);
    if (!st) st = r1vk_xfer_submit(c, err);
    return st;
}

/* The run parameters: header, token ids, RoPE tables, then the indirect
 * dispatches' arguments (the prompt pass's row-sized ones; decode keeps its
 * fixed grids). */
static r1_status run_buffer(vk_ctx *c, vk_seg *s, r1_error *err) {
    size_t floats = (size_t)s->tok_rows;
    for (int i = 0; i < s->n_ropes; i++) floats += (size_t)s->max_rows * (size_t)s->ropes[i].hd;
    s->n_ind = 0;
    for (int v = 0; v < VK_NVAR; v++)
        for (int i = 0; i < s->nd[v]; i++)
            s->d[v][i].ind = v == VK_BATCH && s->d[v][i].thi ? s->n_ind++ : -1;
    s->ind_off = RUN_HEADER + (floats ? floats : 4) * sizeof(float);
    return r1vk_buf_new(c, s->ind_off + (size_t)s->n_ind * 12, 2, &s->run, err);
}

/* The groups of the indirect dispatches for a call of T rows: none where T is
 * outside a dispatch's range (so that the GEMM's other variants launch no
 * workgroups), else only the row tiles T needs. */
static void indirect_args(vk_seg *s, int v, uint32_t T) {
    uint32_t *a = (uint32_t *)((char *)s->run.map + s->ind_off);
    for (int i = 0; i < s->nd[v]; i++) {
        const vk_disp *d = &s->d[v][i];
        if (d->ind < 0) continue;
        uint64_t x = vk_disp_rows_x(d, T);
        a[3 * d->ind] = x < d->groups[0] ? (uint32_t)x : d->groups[0];
        a[3 * d->ind + 1] = d->groups[1];
        a[3 * d->ind + 2] = d->groups[2];
    }
}

r1_status r1vk_segment_init(vk_ctx *c, r1_segment *seg, r1_error *err) {
    vk_seg *s = calloc(1, sizeof *s);
    if (!s) return r1__err(err, R1_E_NOMEM, "out of memory");
    seg->state = s;
    r1_status st = r1vk_plan(c, seg, s, err);
    if (!st) st = r1vk_flush_uploads(c, err); /* weights must be there before the first run */
    if (!st) st = run_buffer(c, s, err);
    if (!st) st = scratch_buffer(c, s, err);
    if (!st) st = r1vk_readback_init(c, seg, s, err);
    if (!st && !s->run.map)
        st = r1__err(err, R1_E_DEVICE, "vulkan: the run parameter buffer is not host-visible");
    if (!st) st = write_sets(c, s, err);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = VK_NVAR};
    if (!st)
        st = r1vk_check(vkAllocateCommandBuffers(c->dev, &ai, s->cb), "vkAllocateCommandBuffers",
                        err);
    for (int v = 0; v < VK_NVAR && !st && c->profile; v++) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = (uint32_t)s->nd[v] + 1};
        st = r1vk_check(vkCreateQueryPool(c->dev, &qi, NULL, &s->qpool[v]), "vkCreateQueryPool",
                        err);
    }
    s->prof_var = c->profile > 2 ? VK_BATCH : VK_DECODE; /* R1_VK_PROFILE=3: prompts */
    s->prof_first = s->nd[s->prof_var] / 4;              /* a layer away from the segment's ends */
    for (int v = 0; v < VK_NVAR && !st; v++) st = record(c, s, v, err);
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (!st) st = r1vk_check(vkCreateFence(c->dev, &fi, NULL, &s->fence), "vkCreateFence", err);
    if (!st && c->verbose)
        fprintf(stderr,
                "vulkan: segment of %d nodes: %d/%d dispatches, %d/%d barriers "
                "(decode/batch), %d chained, %d matvecs hand their digits on, %d decode "
                "attention counter sets\n",
                seg->n_nodes, s->nd[0], s->nd[1], s->n_barriers[0], s->n_barriers[1],
                s->n_chained[0], s->n_preq, s->n_attn);
    return st;
}

static const char *pipe_name(const vk_ctx *c, int p) {
    return c->pipe_variant[p] ? c->pipe_variant[p] : "?";
}

/* R1_VK_PROFILE: GPU time per shader over all calls, and host time per call. */
static void profile_print(vk_ctx *c, const vk_seg *s, const r1_segment *seg) {
    if (!s->prof_calls) return;
    fprintf(stderr,
            "vulkan profile: segment of %d nodes, %d calls: GPU %.3f ms/call, host %.3f ms/call\n",
            seg->n_nodes, s->prof_calls, s->prof_total_ns / 1e6 / s->prof_calls,
            s->prof_host_ns / 1e6 / s->prof_calls);
    for (int p = 0; p < VKP_COUNT; p++)
        if (s->prof_n[p])
            fprintf(stderr, "  %-18s %8d dispatches %10.3f ms/call %6.1f%%\n", pipe_name(c, p),
                    s->prof_n[p], s->prof_ns[p] / 1e6 / s->prof_calls,
                    100.0 * s->prof_ns[p] / (s->prof_total_ns > 0 ? s->prof_total_ns : 1));
    /* R1_VK_PROFILE=2: one decoder layer's dispatches, end to end from the previous one */
    for (int i = 0; c->profile > 1 && s->prof_dcalls && i < VK_PROF_DISP; i++) {
        int k = s->prof_first + i;
        if (k >= s->nd[s->prof_var]) break;
        const vk_disp *d = &s->d[s->prof_var][k];
        fprintf(stderr, "  #%-4d %-18s groups %5u x %3u x %u %9.2f us\n", k, pipe_name(c, d->pipe),
                d->groups[0], d->groups[1], d->groups[2], s->prof_disp[i] / 1e3 / s->prof_dcalls);
    }
}

static void profile_collect(vk_ctx *c, vk_seg *s, int v) {
    int n = s->nd[v] + 1;
    uint64_t *ts = malloc((size_t)n * sizeof *ts);
    if (ts && vkGetQueryPoolResults(c->dev, s->qpool[v], 0, (uint32_t)n, (size_t)n * sizeof *ts, ts,
                                    sizeof *ts, VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
        double per = c->props.limits.timestampPeriod;
        for (int i = 0; i < s->nd[v]; i++) {
            double dt = (double)(ts[i + 1] - ts[i]) * per;
            s->prof_ns[s->d[v][i].pipe] += dt;
            s->prof_n[s->d[v][i].pipe]++;
            s->prof_total_ns += dt;
            if (v == s->prof_var && i >= s->prof_first && i < s->prof_first + VK_PROF_DISP)
                s->prof_disp[i - s->prof_first] += dt;
        }
        s->prof_dcalls += v == s->prof_var;
    }
    free(ts);
}

void r1vk_segment_free(vk_ctx *c, r1_segment *seg) {
    vk_seg *s = seg->state;
    if (!s) return;
    r1vk_trace_dump(c, s);
    if (s->fence) vkDestroyFence(c->dev, s->fence, NULL);
    if (s->cb[0]) vkFreeCommandBuffers(c->dev, c->pool, VK_NVAR, s->cb);
    if (s->pool) vkDestroyDescriptorPool(c->dev, s->pool, NULL);
    if (c->profile) profile_print(c, s, seg);
    for (int v = 0; v < VK_NVAR; v++)
        if (s->qpool[v]) vkDestroyQueryPool(c->dev, s->qpool[v], NULL);
    r1vk_readback_publish(s, 0);
    r1vk_buf_free(c, &s->run);
    r1vk_buf_free(c, &s->scratch);
    r1vk_buf_free(c, &s->readback);
    for (int v = 0; v < VK_NVAR; v++) free(s->d[v]);
    free(s);
    seg->state = NULL;
}

/* cos/sin of (pos + t) * theta^(-2i/hd) in double, as the CPU reference. */
static void rope_tables(vk_seg *s, const r1_run *run) {
    float *tab = (float *)((char *)s->run.map + RUN_HEADER);
    for (int r = 0; r < s->n_ropes; r++) {
        const vk_rope *ro = &s->ropes[r];
        int half = ro->hd / 2;
        double theta = ro->theta;
        float *o = tab + ro->toff;
        for (int i = 0; i < half; i++) {
            double inv = pow(theta, -2.0 * i / ro->hd);
            for (int t = 0; t < run->n_tokens; t++) {
                double a = (double)(run->pos + t) * inv;
                o[((size_t)t * half + i) * 2] = (float)cos(a);
                o[((size_t)t * half + i) * 2 + 1] = (float)sin(a);
            }
        }
    }
}

r1_status r1vk_compute(vk_ctx *c, r1_segment *seg, const r1_run *run, r1_error *err) {
    vk_seg *s = seg->state;
    if (!s) return r1__err(err, R1_E_INVAL, "vulkan: segment was not initialised");
    if (run->n_tokens < 1 || ((s->n_ropes || s->tok_rows) && run->n_tokens > s->max_rows) ||
        run->n_out < 0 || run->n_out > run->n_tokens)
        return r1__err(err, R1_E_INVAL, "vulkan: %d tokens (%d out) in a graph built for %d",
                       run->n_tokens, run->n_out, s->max_rows);
    if (s->tok_rows && !run->tokens)
        return r1__err(err, R1_E_INVAL, "vulkan: an embedding lookup without token ids");
    uint32_t *h = s->run.map;
    h[0] = (uint32_t)run->n_tokens;
    h[1] = (uint32_t)run->pos;
    h[2] = (uint32_t)run->n_out;
    h[3] = run->n_tokens == 1 ? (uint32_t)s->trace_base : 0u; /* decode trace, 0: none */
    rope_tables(s, run);
    if (s->tok_rows) /* the embedding lookup's ids lead the tables */
        memcpy((char *)s->run.map + RUN_HEADER, run->tokens, (size_t)run->n_tokens * 4);
    int v = run->n_tokens == 1 ? VK_DECODE : VK_BATCH, up = 0;
    indirect_args(s, v, (uint32_t)run->n_tokens);
    r1_status st = r1vk_uploads_cb(c, &up, err); /* the input's copy: same submission */
    VkCommandBuffer cbs[2] = {c->xfer_cb, s->cb[v]};
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = up ? 2 : 1,
                       .pCommandBuffers = up ? cbs : &s->cb[v]};
    double t0 = r1vk_now_ns();
    if (!st) st = r1vk_check(vkQueueSubmit(c->queue, 1, &si, s->fence), "vkQueueSubmit", err);
    if (!st) st = r1vk_wait_expect(c, s->fence, s->last_ns[v], "a forward pass", err);
    if (!st && v == VK_DECODE && s->chained &&
        *(volatile uint32_t *)((char *)s->readback.map + s->flag_off))
        st = r1__err(err, R1_E_DEVICE,
                     "vulkan: a chained decode dispatch gave up waiting for the one before it "
                     "(results invalid; R1_VK_CHAIN=0 records barriers instead)");
    r1vk_readback_publish(s, !st && v == VK_DECODE);
    double dt = r1vk_now_ns() - t0;
    s->last_ns[v] = v == VK_DECODE ? dt : 0; /* batch passes vary with their length */
    if (!st && s->qpool[v]) {
        s->prof_host_ns += dt;
        s->prof_calls++;
        profile_collect(c, s, v);
    }
    return st;
}
