/* Vulkan instance, device list, default device choice and logical device.
 *
 * The default is the first discrete GPU, else an integrated one, else a virtual
 * one; a CPU implementation (lavapipe) is taken only when it is the only device
 * or when the caller names it by index, since a CPU "GPU" is slower than the
 * CPU backend it would replace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "CPU";
    default:
        return "other";
    }
}

static int has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return 1;
    return 0;
}

static int instance_has_ext(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || !n) return 0;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    int r = e && vkEnumerateInstanceExtensionProperties(NULL, &n, e) == VK_SUCCESS &&
            has_ext(e, n, name);
    free(e);
    return r;
}

static r1_status instance_new(VkInstance *out, r1_error *err) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "r1run",
                             .pEngineName = "r1run",
                             .apiVersion = VK_API_VERSION_1_2};
    const char *exts[1];
    uint32_t n_ext = 0;
    VkInstanceCreateFlags flags = 0;
    /* MoltenVK and other non-conformant drivers are listed only when asked for. */
    if (instance_has_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .flags = flags,
                               .pApplicationInfo = &app,
                               .enabledExtensionCount = n_ext,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        return r1__err(err, R1_E_DEVICE,
                       "vulkan: no Vulkan driver (vkCreateInstance: %s); install the GPU's "
                       "Vulkan driver (or mesa-vulkan-drivers for lavapipe)",
                       r1vk_result_str(r));
    return r1vk_check(r, "vkCreateInstance", err);
}

static r1_status list_physical(VkInstance inst, VkPhysicalDevice **out, uint32_t *n,
                               r1_error *err) {
    *out = NULL;
    *n = 0;
    r1_status st =
        r1vk_check(vkEnumeratePhysicalDevices(inst, n, NULL), "vkEnumeratePhysicalDevices", err);
    if (st) return st;
    if (!*n)
        return r1__err(err, R1_E_DEVICE,
                       "vulkan: no Vulkan device (a driver is installed but reports no device)");
    *out = calloc(*n, sizeof **out);
    if (!*out) return r1__err(err, R1_E_NOMEM, "out of memory");
    VkResult r = vkEnumeratePhysicalDevices(inst, n, *out);
    if (r == VK_INCOMPLETE) r = VK_SUCCESS;
    return r1vk_check(r, "vkEnumeratePhysicalDevices", err);
}

/* The default device: see the file comment. -1 when only unsuitable devices exist. */
static int default_device(const VkPhysicalDevice *pd, uint32_t n) {
    static const VkPhysicalDeviceType order[] = {VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU,
                                                 VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU,
                                                 VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pd[i], &p);
            if (p.deviceType == order[o]) return (int)i;
        }
    return n == 1 ? 0 : -1;
}

static void print_device(FILE *f, VkPhysicalDevice pd, uint32_t i, int is_default) {
    VkPhysicalDeviceProperties p;
    VkPhysicalDeviceMemoryProperties m;
    vkGetPhysicalDeviceProperties(pd, &p);
    vkGetPhysicalDeviceMemoryProperties(pd, &m);
    fprintf(f, "%u: %s (%s, Vulkan %u.%u.%u, vendor 0x%04x device 0x%04x)%s\n", i, p.deviceName,
            type_name(p.deviceType), VK_API_VERSION_MAJOR(p.apiVersion),
            VK_API_VERSION_MINOR(p.apiVersion), VK_API_VERSION_PATCH(p.apiVersion), p.vendorID,
            p.deviceID, is_default ? " [default]" : "");
    for (uint32_t h = 0; h < m.memoryHeapCount; h++) {
        int dl = (m.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
        int hv = 0;
        for (uint32_t t = 0; t < m.memoryTypeCount; t++)
            if (m.memoryTypes[t].heapIndex == h &&
                (m.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
                hv = 1;
        fprintf(f, "   heap %u: %.2f GiB%s%s\n", h,
                (double)m.memoryHeaps[h].size / (1024.0 * 1024.0 * 1024.0),
                dl ? " device-local" : "", hv ? " host-visible" : "");
    }
}

r1_status r1__vulkan_list_devices(FILE *f, r1_error *err) {
    VkInstance inst;
    VkPhysicalDevice *pd = NULL;
    uint32_t n = 0;
    r1_status st = instance_new(&inst, err);
    if (st) return st;
    st = list_physical(inst, &pd, &n, err);
    if (!st) {
        int def = default_device(pd, n);
        for (uint32_t i = 0; i < n; i++) print_device(f, pd[i], i, (int)i == def);
        if (def < 0)
            fprintf(f, "no default: only CPU implementations; pick one with --gpu-device N\n");
    }
    free(pd);
    vkDestroyInstance(inst, NULL);
    return st;
}

static r1_status pick(vk_ctx *c, int device, r1_error *err) {
    VkPhysicalDevice *pd;
    uint32_t n;
    r1_status st = list_physical(c->inst, &pd, &n, err);
    if (st) {
        free(pd);
        return st;
    }
    const char *env = getenv("R1_VK_DEVICE");
    if (device < 0 && env && *env) device = atoi(env);
    int i = device >= 0 ? device : default_device(pd, n);
    if (device >= (int)n)
        st = r1__err(err, R1_E_DEVICE, "vulkan: --gpu-device %d: there are %u devices (0..%u)",
                     device, n, n - 1);
    else if (i < 0)
        st = r1__err(err, R1_E_DEVICE,
                     "vulkan: no GPU device; only CPU implementations (e.g. lavapipe) were "
                     "found: choose one with --gpu-device N (see --list-devices)");
    else
        c->pd = pd[i];
    free(pd);
    return st;
}

static int find_queue(VkPhysicalDevice pd, uint32_t *fam, int *stamps) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q) return 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int found = 0;
    /* Prefer a compute-only family (often an async queue with less contention). */
    *stamps = 0;
    for (int pass = 0; pass < 2 && !found; pass++)
        for (uint32_t i = 0; i < n && !found; i++) {
            int comp = (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
            int gfx = (q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) != 0;
            if (comp && (pass == 1 || !gfx)) {
                *fam = i, found = 1;
                *stamps = q[i].timestampValidBits > 0;
            }
        }
    free(q);
    return found;
}

/* Reads what the shaders may use; R1_VK_NO_FP16 / R1_VK_NO_SUBGROUP force fallbacks. */
static void query_features(vk_ctx *c, const VkExtensionProperties *e, uint32_t ne,
                           VkPhysicalDeviceFeatures2 *f2, VkPhysicalDevice16BitStorageFeatures *s16,
                           VkPhysicalDeviceShaderFloat16Int8Features *f16,
                           VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR *idp) {
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    /* streaming multiprocessors / compute units, where the driver says (NVIDIA,
     * AMD): the decode matvecs size their grids by them */
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
    VkPhysicalDeviceShaderCorePropertiesAMD amd = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    int import = has_ext(e, ne, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    void **tail = &sg.pNext;
    if (import) *tail = &hp, tail = &hp.pNext;
    int has_sm = has_ext(e, ne, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
    int has_amd = has_ext(e, ne, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME);
    if (has_sm) *tail = &sm, tail = &sm.pNext;
    if (has_amd) *tail = &amd;
    vkGetPhysicalDeviceProperties2(c->pd, &p2);
    c->f.compute_units = has_sm    ? sm.shaderSMCount
                         : has_amd ? amd.shaderEngineCount * amd.shaderArraysPerEngineCount *
                                         amd.computeUnitsPerShaderArray
                                   : 0;
    int f16_ok = c->props.apiVersion >= VK_API_VERSION_1_2 ||
                 has_ext(e, ne, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    s16->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    f16->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
    s16->pNext = f16_ok ? f16 : NULL;
    int idp_ok = has_ext(e, ne, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    idp->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR;
    idp->pNext = s16;
    f2->sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    f2->pNext = idp_ok ? (void *)idp : (void *)s16;
    /* the Vulkan memory model (core in 1.2): NV cooperative matrices and the
     * chained decode shaders' _vmm variants (vk_backend.c settings) */
    VkPhysicalDeviceVulkanMemoryModelFeatures mm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    if (c->props.apiVersion >= VK_API_VERSION_1_2) mm.pNext = f2->pNext, f2->pNext = &mm;
    vkGetPhysicalDeviceFeatures2(c->pd, f2);
    c->f.vmm = mm.vulkanMemoryModel != 0;
    c->f.int_dot = idp_ok && idp->shaderIntegerDotProduct && !r1vk_env_flag("R1_VK_NO_DP");
    c->f.storage16 = s16->storageBuffer16BitAccess;
    c->f.fp16 = f16_ok && f16->shaderFloat16 && !r1vk_env_flag("R1_VK_NO_FP16");
    c->f.subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                          !r1vk_env_flag("R1_VK_NO_SUBGROUP");
    c->f.subgroup_size = sg.subgroupSize;
    c->f.shuffle = c->f.subgroup_arith && sg.subgroupSize >= 4 &&
                   (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    /* Importing the mmap only pays where device memory is host memory (integrated
     * GPUs, CPU devices): a discrete GPU would read the weights over PCIe, and
     * NVIDIA's driver refuses file-backed pages and then fails later allocations. */
    const char *force = getenv("R1_VK_IMPORT");
    int uma = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
              c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->f.host_import =
        import && !r1vk_env_flag("R1_VK_NO_IMPORT") && (force ? strcmp(force, "0") != 0 : uma);
    c->f.import_align = hp.minImportedHostPointerAlignment;
    c->f.mem_budget = has_ext(e, ne, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
}

/* VK_KHR_cooperative_matrix postdates Debian 12's Vulkan headers (1.3.239): its
 * structures as the specification defines them. */
#ifndef VK_KHR_cooperative_matrix
#define VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME "VK_KHR_cooperative_matrix"
#define R1VK_STYPE_CM_FEATURES_KHR ((VkStructureType)1000506000)
#define R1VK_STYPE_CM_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} r1vk_cm_features_khr;
typedef struct {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    int32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR: 0 float16, 1 float32 */
    VkBool32 saturatingAccumulation;
    int32_t scope; /* VkScopeKHR: 3 subgroup */
} r1vk_cm_props_khr;
#else
#define R1VK_STYPE_CM_FEATURES_KHR VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR
#define R1VK_STYPE_CM_PROPERTIES_KHR VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR
typedef VkPhysicalDeviceCooperativeMatrixFeaturesKHR r1vk_cm_features_khr;
typedef VkCooperativeMatrixPropertiesKHR r1vk_cm_props_khr;
#endif
typedef VkResult(VKAPI_PTR *r1vk_cm_props_fn)(VkPhysicalDevice, uint32_t *, void *);

/* Whether the device lists a 16x16x16 fp16 x fp16 + float32 subgroup shape,
 * through the NV or the KHR query (their structures differ only in KHR's
 * saturatingAccumulation before the scope; the enum values are the same). */
static int has_f16_shape(vk_ctx *c, int khr) {
    r1vk_cm_props_fn get = (r1vk_cm_props_fn)vkGetInstanceProcAddr(
        c->inst, khr ? "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"
                     : "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    size_t size = khr ? sizeof(r1vk_cm_props_khr) : sizeof(VkCooperativeMatrixPropertiesNV);
    uint32_t n = 0;
    if (!get || get(c->pd, &n, NULL) != VK_SUCCESS || !n) return 0;
    unsigned char *p = calloc(n, size);
    int ok = 0;
    for (uint32_t i = 0; p && i < n; i++)
        *(VkStructureType *)(p + i * size) =
            khr ? R1VK_STYPE_CM_PROPERTIES_KHR : VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    if (p && get(c->pd, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !ok; i++) {
            const r1vk_cm_props_khr *q = (const r1vk_cm_props_khr *)(p + i * size);
            const VkCooperativeMatrixPropertiesNV *v =
                (const VkCooperativeMatrixPropertiesNV *)(p + i * size);
            ok = q->MSize == 16 && q->NSize == 16 && q->KSize == 16 && q->AType == 0 &&
                 q->BType == 0 && q->CType == 1 && q->ResultType == 1 &&
                 (khr ? q->scope : (int32_t)v->scope) == 3;
        }
    free(p);
    return ok;
}

/* Tensor-core prompt GEMM (gemm_cm.comp): 16x16x16 fp16 x fp16 + fp32 products
 * in subgroups of 32 and fp16 arithmetic (its 27.7-29.7 KB of shared memory fit
 * the 32 KB r1vk_device_open requires), through VK_KHR_cooperative_matrix or
 * VK_NV_cooperative_matrix (which also needs the Vulkan memory model: its loads
 * use it). Returns the VK_CM_* bits of the extensions that offer it. Detected
 * here and used by default (vk_pipeline.c, R1_VK_CM); R1_VK_NO_CM=1 skips the
 * detection. */
static int query_coopmat(vk_ctx *c, const VkExtensionProperties *e, uint32_t ne) {
    int nv = has_ext(e, ne, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME),
        khr = has_ext(e, ne, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
    if ((!nv && !khr) || r1vk_env_flag("R1_VK_NO_CM") || !c->f.fp16 || c->f.subgroup_size != 32 ||
        c->props.apiVersion < VK_API_VERSION_1_2)
        return 0;
    r1vk_cm_features_khr ck = {.sType = R1VK_STYPE_CM_FEATURES_KHR};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    if (nv) f2.pNext = &cm;
    if (khr) {
        ck.pNext = f2.pNext;
        f2.pNext = &ck;
    }
    vkGetPhysicalDeviceFeatures2(c->pd, &f2);
    int bits = 0;
    if (nv && cm.cooperativeMatrix && c->f.vmm && has_f16_shape(c, 0)) bits |= VK_CM_NV;
    if (khr && ck.cooperativeMatrix && has_f16_shape(c, 1)) bits |= VK_CM_KHR;
    return bits;
}

static r1_status device_new(vk_ctx *c, r1_error *err) {
    r1vk_trace_init(c);
    uint32_t ne = 0;
    vkEnumerateDeviceExtensionProperties(c->pd, NULL, &ne, NULL);
    VkExtensionProperties *e = calloc(ne ? ne : 1, sizeof *e);
    if (!e) return r1__err(err, R1_E_NOMEM, "out of memory");
    vkEnumerateDeviceExtensionProperties(c->pd, NULL, &ne, e);
    VkPhysicalDeviceFeatures2 f2 = {0};
    VkPhysicalDevice16BitStorageFeatures s16 = {0};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {0};
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR idp = {0};
    query_features(c, e, ne, &f2, &s16, &f16, &idp);
    c->f.coopmat = query_coopmat(c, e, ne);
    const char *want[] = {VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME,
                          VK_KHR_EXTERNAL_MEMORY_EXTENSION_NAME,
                          VK_EXT_MEMORY_BUDGET_EXTENSION_NAME,
                          VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME,
                          VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME,
                          "VK_KHR_portability_subset",
                          VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME,
                          VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME,
                          VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME,
                          "VK_KHR_shader_clock",
                          VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME};
    const char *use[12];
    uint32_t nu = 0;
    int sm_on = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int stats = !strcmp(want[i], VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
        if (stats && !r1vk_env_flag("R1_VK_STATS")) continue; /* a tuning aid, off by default */
        if ((!strcmp(want[i], "VK_KHR_shader_clock") ||
             !strcmp(want[i], VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME)) &&
            !c->trace_path[0])
            continue; /* the decode trace's clock and SM numbers (vk_trace.c) */
        if (!strcmp(want[i], VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) && !(c->f.coopmat & VK_CM_NV))
            continue;
        if (!strcmp(want[i], VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) &&
            !(c->f.coopmat & VK_CM_KHR))
            continue;
        if (!has_ext(e, ne, want[i])) continue;
        sm_on = sm_on || !strcmp(want[i], VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
        use[nu++] = want[i];
        if (stats) c->f.exec_stats = 1;
    }
    free(e);
    /* Enable only what the shaders use; a feature chain with everything the device
     * has would also turn on robustness features that cost speed. */
    VkPhysicalDeviceFeatures2 en = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDevice16BitStorageFeatures en16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = s16.storageBuffer16BitAccess};
    VkPhysicalDeviceShaderFloat16Int8Features enf16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = c->f.fp16};
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR enidp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
        .shaderIntegerDotProduct = VK_TRUE};
    en.pNext = &en16;
    if (f16.sType && f16.shaderFloat16) en16.pNext = &enf16;
    if (c->f.int_dot) { /* packed 8-bit dot products (the q4 decode matvec's _dp variant) */
        enidp.pNext = en.pNext;
        en.pNext = &enidp;
    }
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR enst = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
        .pipelineExecutableInfo = VK_TRUE};
    if (c->f.exec_stats) {
        enst.pNext = en.pNext;
        en.pNext = &enst;
    }
    VkPhysicalDeviceCooperativeMatrixFeaturesNV encm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceVulkanMemoryModelFeatures enmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
        .vulkanMemoryModel = VK_TRUE};
    if (c->f.coopmat & VK_CM_NV) {
        encm.pNext = en.pNext;
        en.pNext = &encm;
    }
    if (c->f.vmm) { /* NV matrices need it; the chains' _vmm shaders may use it */
        enmm.pNext = en.pNext;
        en.pNext = &enmm;
    }
    r1vk_cm_features_khr enck = {.sType = R1VK_STYPE_CM_FEATURES_KHR, .cooperativeMatrix = VK_TRUE};
    if (c->f.coopmat & VK_CM_KHR) {
        enck.pNext = en.pNext;
        en.pNext = &enck;
    }
    VkPhysicalDeviceShaderClockFeaturesKHR enclk = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CLOCK_FEATURES_KHR,
        .shaderSubgroupClock = VK_TRUE,
        .shaderDeviceClock = VK_TRUE};
    VkPhysicalDeviceShaderSMBuiltinsFeaturesNV ensm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_FEATURES_NV,
        .shaderSMBuiltins = VK_TRUE};
    if (c->trace_path[0]) { /* the real-time clock of the decode trace (vk_trace.c) */
        enclk.pNext = en.pNext;
        en.pNext = &enclk;
        if (sm_on) { /* ... and SM numbers (NVIDIA) */
            ensm.pNext = en.pNext;
            en.pNext = &ensm;
        }
    }
    en.features.shaderInt16 = f2.features.shaderInt16;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = c->qfam,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &en,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = nu,
                             .ppEnabledExtensionNames = use};
    r1_status st = r1vk_check(vkCreateDevice(c->pd, &ci, NULL, &c->dev), "vkCreateDevice", err);
    if (st) return st;
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);
    if (c->f.host_import)
        c->get_host_ptr_props = (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
            c->dev, "vkGetMemoryHostPointerPropertiesEXT");
    if (!c->get_host_ptr_props) c->f.host_import = 0;
    return R1_OK;
}

r1_status r1vk_device_open(vk_ctx *c, int device, r1_error *err) {
    r1_status st = instance_new(&c->inst, err);
    if (!st) st = pick(c, device, err);
    if (st) return st;
    vkGetPhysicalDeviceProperties(c->pd, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->pd, &c->memp);
    if (c->props.apiVersion < VK_API_VERSION_1_1)
        return r1__err(err, R1_E_DEVICE, "vulkan: %s supports Vulkan %u.%u; 1.1 is needed",
                       c->props.deviceName, VK_API_VERSION_MAJOR(c->props.apiVersion),
                       VK_API_VERSION_MINOR(c->props.apiVersion));
    /* The largest shader workgroup (decode attention, 31 KB) fits the 32 KB that every
     * desktop and laptop GPU offers (Apple's through MoltenVK included). */
    if (c->props.limits.maxComputeSharedMemorySize < 32768)
        return r1__err(err, R1_E_DEVICE,
                       "vulkan: %s offers %u bytes of compute shared memory; 32768 are needed",
                       c->props.deviceName, c->props.limits.maxComputeSharedMemorySize);
    if (!find_queue(c->pd, &c->qfam, &c->f.timestamps))
        return r1__err(err, R1_E_DEVICE, "vulkan: %s has no compute queue", c->props.deviceName);
    return device_new(c, err);
}

void r1vk_device_close(vk_ctx *c) {
    if (c->dev) vkDestroyDevice(c->dev, NULL);
    if (c->inst) vkDestroyInstance(c->inst, NULL);
    c->dev = NULL;
    c->inst = NULL;
}
