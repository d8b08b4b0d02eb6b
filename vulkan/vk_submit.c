/* Errors, fences and the transfer command buffer.
 *
 * Every wait has a timeout (R1_VK_TIMEOUT seconds, default 120): a hung or lost
 * device becomes an R1_E_DEVICE error, never a hang. */
#include <stdio.h>

#include <time.h>

#include "vk_internal.h"

const char *r1vk_result_str(VkResult r) {
    switch (r) {
    case VK_SUCCESS:
        return "VK_SUCCESS";
    case VK_TIMEOUT:
        return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
        return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
        return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED:
        return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
        return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:
        return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:
        return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE:
        return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
        return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default:
        return "VkResult error";
    }
}

r1_status r1vk_check(VkResult r, const char *what, r1_error *err) {
    if (r == VK_SUCCESS) return R1_OK;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        return r1__err(err, R1_E_DEVICE, "vulkan: %s: out of %s memory (%s)", what,
                       r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "device" : "host", r1vk_result_str(r));
    if (r == VK_ERROR_DEVICE_LOST)
        return r1__err(err, R1_E_DEVICE, "vulkan: %s: device lost (driver reset or GPU fault)",
                       what);
    return r1__err(err, R1_E_DEVICE, "vulkan: %s failed: %s (%d)", what, r1vk_result_str(r),
                   (int)r);
}

r1_status r1vk_wait(vk_ctx *c, VkFence f, const char *what, r1_error *err) {
    VkResult r = vkWaitForFences(c->dev, 1, &f, VK_TRUE, c->timeout_ns);
    if (r == VK_TIMEOUT)
        return r1__err(err, R1_E_DEVICE,
                       "vulkan: %s did not finish within %.0f s (GPU hung or far too slow; "
                       "R1_VK_TIMEOUT sets the limit in seconds)",
                       what, (double)c->timeout_ns / 1e9);
    r1_status st = r1vk_check(r, what, err);
    if (!st) st = r1vk_check(vkResetFences(c->dev, 1, &f), "vkResetFences", err);
    return st;
}

double r1vk_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Waits for a pass expected to take about expect_ns (the last one's time):
 * asleep until SPIN_MARGIN_NS before then, then polling the fence, so that the
 * thread resumes when the GPU finishes rather than when the driver's sleep
 * ends (H200 14b decode: see README). At most SPIN_MAX_NS of polling, then the
 * plain wait; R1_VK_SPIN=0 turns the polling off. */
#define SPIN_MARGIN_NS 300e3
#define SPIN_MAX_NS 2e6
r1_status r1vk_wait_expect(vk_ctx *c, VkFence f, double expect_ns, const char *what,
                           r1_error *err) {
    if (!c->spin || expect_ns < 2 * SPIN_MARGIN_NS) return r1vk_wait(c, f, what, err);
    VkResult r = vkWaitForFences(c->dev, 1, &f, VK_TRUE, (uint64_t)(expect_ns - SPIN_MARGIN_NS));
    for (double t0 = r1vk_now_ns(); r == VK_TIMEOUT && r1vk_now_ns() - t0 < SPIN_MAX_NS;) {
        r = vkGetFenceStatus(c->dev, f);
        if (r == VK_NOT_READY) r = VK_TIMEOUT;
    }
    if (r == VK_TIMEOUT) return r1vk_wait(c, f, what, err);
    r1_status st = r1vk_check(r, what, err);
    if (!st) st = r1vk_check(vkResetFences(c->dev, 1, &f), "vkResetFences", err);
    return st;
}

/* A full compute/transfer/host memory barrier: transfers are rare and coarse. */
void r1vk_barrier_all(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT |
                                           VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cb,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_HOST_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                             VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
}

r1_status r1vk_xfer_begin(vk_ctx *c, r1_error *err) {
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    r1_status st = r1vk_check(vkResetCommandBuffer(c->xfer_cb, 0), "vkResetCommandBuffer", err);
    if (!st) st = r1vk_check(vkBeginCommandBuffer(c->xfer_cb, &bi), "vkBeginCommandBuffer", err);
    if (!st) r1vk_barrier_all(c->xfer_cb);
    return st;
}

/* Ends, submits and waits for the transfer command buffer. */
r1_status r1vk_xfer_submit(vk_ctx *c, r1_error *err) {
    r1vk_barrier_all(c->xfer_cb);
    r1_status st = r1vk_check(vkEndCommandBuffer(c->xfer_cb), "vkEndCommandBuffer", err);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &c->xfer_cb};
    if (!st) st = r1vk_check(vkQueueSubmit(c->queue, 1, &si, c->xfer_fence), "vkQueueSubmit", err);
    if (!st) st = r1vk_wait(c, c->xfer_fence, "a transfer", err);
    return st;
}
