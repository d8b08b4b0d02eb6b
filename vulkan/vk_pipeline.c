/* Pipelines: one per op shader, created once with the backend, from the variant
 * that suits the device (subgroup arithmetic, fp16 arithmetic, or the plain
 * fallback), through an on-disk pipeline cache so that later runs skip the
 * driver's shader compiler. Cache read/write failures are harmless. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vk_internal.h"
#include "vk_shaders.h"

enum { OPT_CM = 1, OPT_SHUFFLE = 2, OPT_PROBE = 3 };

static const struct {
    const char *base;
    int sg, f16, dp; /* has a subgroup (2: needing shuffles and subgroups of 8 or more) / fp16 /
                        integer dot product variant */
    int opt;         /* optional, never planned without: 1 the tensor-core GEMM (R1_VK_CM, "_exact"
                        variant), 2 subgroup shuffles, 3 the tensor-core probe (R1_VK_CM and
                        R1_VK_MMA_PROBE) */
} PIPES[VKP_COUNT] = {
    [VKP_RMSNORM] = {"rmsnorm", 1, 0},
    [VKP_ADD_RMSNORM] = {"add_rmsnorm", 1, 0},
    [VKP_Q4_MATVEC] = {"q4_matvec", 2, 0, 1},
    [VKP_Q4_MATVEC_MT] = {"q4_matvec_mt", 2, 0, 1},
    [VKP_Q4_MATVEC_SIMPLE] = {"q4_matvec_simple", 0, 0},
    [VKP_Q4_GEMM] = {"q4_gemm", 0, 0},
    [VKP_Q4_PREP_CM] = {"q4_prep_cm", 0, 0, 0, OPT_CM},
    [VKP_GEMM_CM] = {"gemm_cm", 0, 0, 0, OPT_CM},
    [VKP_GEMM_CM_SPLIT] = {"gemm_cm_split", 0, 0, 0, OPT_CM},
    [VKP_GEMM_CM_BIG] = {"gemm_cm_big", 0, 0, 0, OPT_CM},
    [VKP_GEMM_CM_Q4] = {"gemm_cm_q4", 0, 0, 0, OPT_CM},
    [VKP_GEMM_CM_SPLIT_Q4] = {"gemm_cm_split_q4", 0, 0, 0, OPT_CM},
    [VKP_ATTN_CM] = {"attn_cm", 0, 0, 0, OPT_CM},
    [VKP_Q4T_MATVEC] = {"q4t_matvec", 1, 0},
    [VKP_Q4T_GEMM] = {"q4t_gemm", 0, 0},
    [VKP_DENSE_MATVEC] = {"dense_matvec", 1, 0},
    [VKP_DENSE_GEMM] = {"dense_gemm", 0, 0},
    [VKP_ROPE] = {"rope", 0, 0},
    [VKP_ROPE_KV] = {"rope_kv", 0, 0},
    [VKP_KV_STORE] = {"kv_store", 0, 0},
    [VKP_ATTN] = {"attn", 0, 0},
    [VKP_ATTN_TILED] = {"attn_tiled", 0, 0, 0, OPT_SHUFFLE},
    [VKP_ATTN_DEC] = {"attn_dec", 2, 0},
    [VKP_ATTN_COMBINE] = {"attn_combine", 0, 0},
    [VKP_ELTWISE] = {"eltwise", 0, 0},
    [VKP_EMBED] = {"embed", 0, 0},
    [VKP_MEMBW] = {"membw", 0, 0},
    [VKP_MMA_PROBE] = {"mma_probe", 0, 0, 0, OPT_PROBE},
    [VKP_MMA_PROBE1] = {"mma_probe1", 0, 0, 0, OPT_PROBE},
    [VKP_MMA_PROBE_H] = {"mma_probe_h", 0, 0, 0, OPT_PROBE},
    [VKP_MMA_PROBE_S] = {"mma_probe_s", 0, 0, 0, OPT_PROBE},
};

static const r1vk_shader *find_shader(const char *name) {
    for (const r1vk_shader *s = r1vk_shaders; s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

static const r1vk_shader *choose(const vk_ctx *c, int i) {
    char name[64];
    const r1vk_shader *s = NULL;
    if (PIPES[i].opt == OPT_CM || PIPES[i].opt == OPT_PROBE) {
        int cm_op = i != VKP_Q4_PREP_CM; /* the prep writes operands, no matrices */
        snprintf(name, sizeof name, "%s%s%s", PIPES[i].base,
                 PIPES[i].opt == OPT_CM && c->cm == 2 ? "_exact" : "",
                 !cm_op      ? ""
                 : c->cm_emu ? "_emu"
                 : c->cm_khr ? "_khr"
                             : "");
        return find_shader(name);
    }
    if (PIPES[i].opt) return find_shader(PIPES[i].base);
    int want_f16 = PIPES[i].f16 && c->f.fp16, want_sg = PIPES[i].sg && c->f.subgroup_arith;
    if (PIPES[i].sg == 2) want_sg = want_sg && c->f.shuffle && c->f.subgroup_size >= 8;
    int want_dp = PIPES[i].dp && c->f.int_dot;
    for (int pass = 0; pass < 8 && !s; pass++) {
        int f16 = want_f16 && !(pass & 2), sg = want_sg && !(pass & 1), dp = want_dp && !(pass & 4);
        snprintf(name, sizeof name, "%s%s%s%s", PIPES[i].base, dp ? "_dp" : "", f16 ? "_f16" : "",
                 sg ? "_sg" : "");
        s = find_shader(name);
    }
    /* the decode matvec's two-digit form (fp16 mode, r1vk_pipelines_create) */
    if (s && (i == VKP_Q4_MATVEC || i == VKP_Q4_MATVEC_MT) && c->x_digits == 2 &&
        strstr(s->name, "_dp")) {
        snprintf(name, sizeof name, "%s_x2", s->name);
        s = find_shader(name);
    }
    /* chained decode: the Vulkan memory model's release / acquire (chain.glsl) */
    if (s && c->vmm &&
        (i == VKP_Q4_MATVEC || i == VKP_Q4_MATVEC_MT || i == VKP_ATTN_DEC ||
         i == VKP_ATTN_COMBINE)) {
        snprintf(name, sizeof name, "%s_vmm", s->name);
        const r1vk_shader *v = find_shader(name);
        if (v) s = v;
    }
    return s;
}

static void cache_path(vk_ctx *c) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[400];
    c->cache_path[0] = 0;
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/r1run", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/r1run", home);
    else
        return;
    if (!(xdg && *xdg)) {
        char parent[400];
        snprintf(parent, sizeof parent, "%s/.cache", home);
        mkdir(parent, 0755);
    }
    if (mkdir(dir, 0755) && errno != EEXIST) return;
    snprintf(c->cache_path, sizeof c->cache_path, "%s/pipeline-%04x-%04x-%08x.bin", dir,
             c->props.vendorID, c->props.deviceID, c->props.driverVersion);
}

/* Reads the cache file when its header names this device and driver. */
static void *cache_read(vk_ctx *c, size_t *n) {
    *n = 0;
    FILE *f = c->cache_path[0] ? fopen(c->cache_path, "rb") : NULL;
    if (!f) return NULL;
    void *data = NULL;
    long len = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (len >= 32 && len < (256l << 20) && !fseek(f, 0, SEEK_SET) && (data = malloc((size_t)len)) &&
        fread(data, 1, (size_t)len, f) == (size_t)len) {
        const uint32_t *h = data;
        if (h[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && h[2] == c->props.vendorID &&
            h[3] == c->props.deviceID && !memcmp(h + 4, c->props.pipelineCacheUUID, VK_UUID_SIZE))
            *n = (size_t)len;
    }
    fclose(f);
    if (!*n) {
        free(data);
        data = NULL;
    }
    return data;
}

static void cache_write(vk_ctx *c, size_t old_size) {
    size_t n = 0;
    if (!c->cache_path[0] || vkGetPipelineCacheData(c->dev, c->cache, &n, NULL) || n == old_size)
        return;
    void *data = malloc(n);
    if (data && !vkGetPipelineCacheData(c->dev, c->cache, &n, data)) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", c->cache_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(data, 1, n, f) == n;
        if (f && fclose(f)) ok = 0;
        if (ok) ok = !rename(tmp, c->cache_path); /* atomic: concurrent runs never read half */
        if (!ok) remove(tmp);
    }
    free(data);
}

static r1_status layouts(vk_ctx *c, r1_error *err) {
    VkDescriptorSetLayoutBinding b[VK_NBIND];
    for (uint32_t i = 0; i < VK_NBIND; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo di = {.sType =
                                              VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = VK_NBIND,
                                          .pBindings = b};
    r1_status st = r1vk_check(vkCreateDescriptorSetLayout(c->dev, &di, NULL, &c->dsl),
                              "vkCreateDescriptorSetLayout", err);
    if (st) return st;
    VkPushConstantRange pc = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &c->dsl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pc};
    return r1vk_check(vkCreatePipelineLayout(c->dev, &li, NULL, &c->layout),
                      "vkCreatePipelineLayout", err);
}

/* R1_VK_STATS=1: the driver's statistics of a compiled pipeline on one line
 * (NVIDIA reports its register count, which bounds the workgroups per SM). */
static void print_stats(vk_ctx *c, VkPipeline pipe, const char *name) {
    PFN_vkGetPipelineExecutableStatisticsKHR get =
        (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(
            c->dev, "vkGetPipelineExecutableStatisticsKHR");
    if (!get) return;
    VkPipelineExecutableInfoKHR ei = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                                      .pipeline = pipe};
    VkPipelineExecutableStatisticKHR st[16];
    uint32_t n = 16;
    for (uint32_t k = 0; k < n; k++)
        st[k] = (VkPipelineExecutableStatisticKHR){
            .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    if (get(c->dev, &ei, &n, st) < 0) return;
    fprintf(stderr, "vulkan stats: %-18s", name);
    for (uint32_t k = 0; k < n; k++) {
        fprintf(stderr, " | %s ", st[k].name);
        switch (st[k].format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
            fprintf(stderr, "%u", (unsigned)st[k].value.b32);
            break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
            fprintf(stderr, "%lld", (long long)st[k].value.i64);
            break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
            fprintf(stderr, "%llu", (unsigned long long)st[k].value.u64);
            break;
        default:
            fprintf(stderr, "%g", st[k].value.f64);
        }
    }
    fputc('\n', stderr);
}

/* Tensor-core pipelines built for the fp16 mode only (no "_exact" form):
 * gemm_cm.comp's R1_CM_BIG and R1_CM_Q4 variants (KHR or emulated) and attn_cm.comp, where
 * the shader exists, its shared memory (bytes: KHR or NV, emulated) is within
 * the device's limit and its knob (R1_VK_CM_BIG, R1_VK_CM_ATTN; 0 off) allows. */
static int fp16_only_ok(const vk_ctx *c, const r1vk_shader *s, const char *knob, uint32_t need,
                        uint32_t need_emu) {
    const char *e = getenv(knob);
    return s && c->cm == 1 && (!e || !*e || r1vk_env_flag(knob)) &&
           c->props.limits.maxComputeSharedMemorySize >= (c->cm_emu ? need_emu : need);
}

static r1_status pipeline(vk_ctx *c, int i, r1_error *err) {
    if ((PIPES[i].opt == OPT_CM && !c->cm) || (PIPES[i].opt == OPT_SHUFFLE && !c->f.shuffle) ||
        (PIPES[i].opt == OPT_PROBE && (!c->cm || c->cm_emu || !r1vk_env_flag("R1_VK_MMA_PROBE"))))
        return R1_OK; /* not asked for, or the device cannot: never planned */
    const r1vk_shader *s = choose(c, i);
    if (!s && PIPES[i].opt == OPT_PROBE) return R1_OK; /* e.g. no fp16-accumulator KHR probe */
    if (i == VKP_GEMM_CM_BIG && !fp16_only_ok(c, s, "R1_VK_CM_BIG", 37904, 21008))
        return R1_OK; /* the plain variant takes every length */
    if (i == VKP_ATTN_CM && !fp16_only_ok(c, s, "R1_VK_CM_ATTN", 45056, 20480))
        return R1_OK; /* attn_tiled.comp takes prompts */
    if ((i == VKP_GEMM_CM_Q4 || i == VKP_GEMM_CM_SPLIT_Q4) &&
        !fp16_only_ok(c, s, "R1_VK_CM_Q4", 30736, 30736))
        return R1_OK; /* the variants reading the prep's fp16 weight */
    if (!s) return r1__err(err, R1_E_DEVICE, "vulkan: shader %s is not built in", PIPES[i].base);
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = s->size,
                                   .pCode = s->code};
    VkShaderModule mod;
    r1_status st =
        r1vk_check(vkCreateShaderModule(c->dev, &mi, NULL, &mod), "vkCreateShaderModule", err);
    if (st) return st;
    VkComputePipelineCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main"},
        .layout = c->layout};
    if (c->f.exec_stats) pi.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    VkResult r = vkCreateComputePipelines(c->dev, c->cache, 1, &pi, NULL, &c->pipe[i]);
    vkDestroyShaderModule(c->dev, mod, NULL);
    c->pipe_variant[i] = s->name;
    if (r != VK_SUCCESS) {
        r1vk_check(r, "vkCreateComputePipelines", err);
        r1__err_prefix(err, "shader %s", s->name);
        return R1_E_DEVICE;
    }
    if (c->f.exec_stats) print_stats(c, c->pipe[i], s->name);
    return R1_OK;
}

r1_status r1vk_pipelines_create(vk_ctx *c, r1_error *err) {
    r1_status st = layouts(c, err);
    if (st) return st;
    cache_path(c);
    size_t n = 0;
    void *data = cache_read(c, &n);
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = n,
                                    .pInitialData = data};
    if (vkCreatePipelineCache(c->dev, &ci, NULL, &c->cache) != VK_SUCCESS) {
        ci.initialDataSize = 0; /* a rejected cache file only costs compile time */
        ci.pInitialData = NULL;
        n = 0;
        st = r1vk_check(vkCreatePipelineCache(c->dev, &ci, NULL, &c->cache),
                        "vkCreatePipelineCache", err);
    }
    free(data);
    c->use_fp16 = c->f.fp16;
    /* Tensor-core prompt GEMM: on by default on NVIDIA GPUs that have it (fp16
     * operands; golden logits within the fp16 tolerance, greedy tokens equal; the
     * only vendor measured, and others' drivers are known to advertise cooperative
     * matrices that run slowly), R1_VK_CM=1 elsewhere; R1_VK_CM=0 off (the float32
     * GEMM), R1_VK_CM=exact split operands for float32 accuracy. R1_VK_CM_EMU=1
     * (tests): the same GEMM with emulated products where the device has none. */
    const char *cm = getenv("R1_VK_CM"), *api = getenv("R1_VK_CM_API");
    c->cm_emu = !c->f.coopmat && r1vk_env_flag("R1_VK_CM_EMU");
    c->cm = !c->f.coopmat && !c->cm_emu ? 0
            : !cm || !*cm               ? (c->props.vendorID == 0x10DE || c->cm_emu)
            : !strcmp(cm, "exact")      ? 2
            : r1vk_env_flag("R1_VK_CM") ? 1
                                        : 0;
    /* KHR where offered and built (a cross build lacks the patched shaders) */
    int khr = (c->f.coopmat & VK_CM_KHR) && find_shader("gemm_cm_khr"),
        nv = (c->f.coopmat & VK_CM_NV) != 0;
    if (api && !strcmp(api, "nv")) khr = 0;
    if (api && !strcmp(api, "khr")) nv = 0;
    c->cm_khr = khr;
    if (!khr && !nv && !c->cm_emu) c->cm = 0;
    /* Decode matvecs stage x as int8 digits (q4_matvec.comp): three (float32
     * level) by default, two in the fp16 mode, whose prompt products already
     * round x and W to fp16 (H200 14b: tg64 257.0 -> 266.9, golden rel at most
     * 8.3e-3 against the fp16 bound 2e-2); R1_VK_X_DIGITS=2|3 chooses. */
    const char *xd = getenv("R1_VK_X_DIGITS");
    c->x_digits = xd && (!strcmp(xd, "2") || !strcmp(xd, "3")) ? atoi(xd) : c->cm == 1 ? 2 : 3;
    for (int i = 0; i < VKP_COUNT && !st; i++) st = pipeline(c, i, err);
    if (!st) cache_write(c, n);
    return st;
}

void r1vk_pipelines_destroy(vk_ctx *c) {
    for (int i = 0; i < VKP_COUNT; i++)
        if (c->pipe[i]) vkDestroyPipeline(c->dev, c->pipe[i], NULL);
    if (c->cache) vkDestroyPipelineCache(c->dev, c->cache, NULL);
    if (c->layout) vkDestroyPipelineLayout(c->dev, c->layout, NULL);
    if (c->dsl) vkDestroyDescriptorSetLayout(c->dev, c->dsl, NULL);
}
