#include "kernels.h"

#include <stdlib.h>
#include <string.h>

/* ISA tables are defined in cpu/x86/ and cpu/arm/ when built; weak so a build
 * without them still links. */
extern const r1_cpu_kernels r1__cpu_kernels_avx2 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_avx512 __attribute__((weak));
extern const r1_cpu_kernels r1__cpu_kernels_neon __attribute__((weak));

static int cpu_has(const char *feature) {
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(feature, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (!strcmp(feature, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx512dq");
    return 0;
#elif defined(__aarch64__)
    return !strcmp(feature, "neon");
#else
    (void)feature;
    return 0;
#endif
}

const r1_cpu_kernels *r1__cpu_kernels_get(const char *name) {
    if (!strcmp(name, "scalar")) return &r1__cpu_kernels_scalar;
    if (!strcmp(name, "avx2") && &r1__cpu_kernels_avx2 && cpu_has("avx2"))
        return &r1__cpu_kernels_avx2;
    if (!strcmp(name, "avx512") && &r1__cpu_kernels_avx512 && cpu_has("avx512"))
        return &r1__cpu_kernels_avx512;
    if (!strcmp(name, "neon") && &r1__cpu_kernels_neon && cpu_has("neon"))
        return &r1__cpu_kernels_neon;
    return NULL;
}

const r1_cpu_kernels *r1__cpu_kernels_select(const char **error_name) {
    const char *env = getenv("R1_CPU");
    *error_name = NULL;
    if (env && *env) {
        const r1_cpu_kernels *k = r1__cpu_kernels_get(env);
        if (!k) *error_name = env;
        return k;
    }
    static const char *order[] = {"avx512", "avx2", "neon", "scalar"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const r1_cpu_kernels *k = r1__cpu_kernels_get(order[i]);
        if (k) return k;
    }
    return &r1__cpu_kernels_scalar;
}
