/* The memory planner: with --gpu-layers auto and a budget of exactly k layers
 * (plus scratch), it must pick k; explicit counts that cannot fit are refused
 * before anything is allocated; a budget below one layer leaves all on the CPU.
 *
 * usage: test_plan MODEL_DIR   (needs a Vulkan device; lavapipe in CI) */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "r1run.h"

static r1_status plan(const char *dir, int layers, uint64_t budget, r1_plan *p, r1_error *err) {
    r1_model_params mp;
    r1_model_params_default(&mp);
    mp.gpu_layers = layers;
    mp.gpu_mem = budget;
    mp.max_ctx = 256;
    return r1_plan_model(dir, &mp, p, err);
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]), 2;
    const char *dir = argv[1];
    r1_plan all;
    r1_error err = {0};
    r1_status st = plan(dir, R1_GPU_LAYERS_ALL, 1ull << 40, &all, &err);
    if (st == R1_E_DEVICE) {
        printf("skipped: %s\n", err.msg);
        return 77;
    }
    CHECK_MSG(st == R1_OK, "%s", err.msg);
    int L = all.n_layers;
    CHECK(all.gpu_layers == L && all.head_on_gpu);
    char buf[1024];
    r1_plan_format(&all, buf, sizeof buf);
    printf("%s", buf);
    /* Layer k's bytes; the goldens' layers are all the same size. */
    r1_plan one;
    CHECK(plan(dir, 1, 1ull << 40, &one, &err) == R1_OK && one.gpu_layers == 1 && !one.head_on_gpu);
    uint64_t layer = all.layer_bytes, scratch = one.scratch[1];
    for (int k = 1; k < L; k++) {
        r1_plan p;
        uint64_t budget = scratch + (uint64_t)k * layer + layer / 2;
        CHECK_MSG(plan(dir, R1_GPU_LAYERS_AUTO, budget, &p, &err) == R1_OK, "%s", err.msg);
        printf("budget %llu -> %d layers\n", (unsigned long long)budget, p.gpu_layers);
        CHECK_MSG(p.gpu_layers == k, "budget for %d layers gave %d", k, p.gpu_layers);
        CHECK(!p.head_on_gpu);
        CHECK(p.weights[1] + p.kv[1] == (uint64_t)k * layer);
        /* asking for one more layer than fits is an error before allocation */
        CHECK(plan(dir, k + 1, budget, &p, &err) == R1_E_NOMEM);
        CHECK(strstr(err.msg, "--gpu-layers") != NULL);
    }
    r1_plan p;
    CHECK(plan(dir, R1_GPU_LAYERS_AUTO, layer / 2, &p, &err) == R1_OK);
    CHECK(p.gpu_layers == 0 && strstr(p.note, "all layers on the CPU"));
    CHECK(plan(dir, L + 1, 0, &p, &err) == R1_E_INVAL);
    return r1t_finish("plan");
}
