/* The KHR cooperative-matrix shaders as r1-spvpatch left them (tools/spvpatch):
 * lavapipe has no cooperative matrices, so no test here can run them, but
 * their SPIR-V can be checked against what SPV_KHR_cooperative_matrix asks:
 * every OpTypeCooperativeMatrixKHR names a float16/float32 type and uint
 * constants (scope Subgroup 3, 16 rows, 16 columns, use 0/1/2) declared before
 * it; the loads and stores name a constant layout; the module declares the
 * capabilities and extension; no <id> is defined twice or reaches the bound. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "r1spv/gemm_cm_exact_khr.h"
#include "r1spv/gemm_cm_khr.h"
#include "r1spv/gemm_cm_split_khr.h"
#include "r1spv/mma_probe_khr.h"

#define MAXID 8192

typedef struct {
    int32_t def_at[MAXID]; /* instruction index that defines the id, -1 none */
    uint32_t op[MAXID];    /* its opcode */
    const uint32_t *ins[MAXID];
} ids;

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s: ", name);                                                    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Opcodes whose first operand is a result <id> (no result type). */
static int result_first(uint32_t op) {
    return (op >= 19 && op <= 33) || op == 39 || op == 4456 || op == 11 || op == 248;
}
/* ... and those whose second operand is (after a result type). */
static int result_second(uint32_t op) {
    return op == 43 || op == 41 || op == 42 || op == 44 || op == 46 || op == 59 || op == 61 ||
           op == 65 || op == 80 || op == 81 || op == 4457 || op == 4459 || op == 54 || op == 55 ||
           (op >= 109 && op <= 200);
}

static int is_uint_const(const ids *d, uint32_t id, uint32_t want, int32_t before) {
    if (id >= MAXID || d->def_at[id] < 0 || d->def_at[id] >= before || d->op[id] != 43) return 0;
    uint32_t ty = d->ins[id][1];
    return ty < MAXID && d->op[ty] == 21 && d->ins[ty][2] == 32 && d->ins[ty][3] == 0 &&
           d->ins[id][3] == want;
}

static void check(const char *name, const uint32_t *w, size_t n) {
    static ids d;
    memset(d.def_at, 0xff, sizeof d.def_at);
    CHECK(n > 5 && w[0] == 0x07230203u && w[3] <= MAXID, "header");
    if (failures) return;
    int caps_f16 = 0, caps_cm = 0, ext = 0, types = 0, mma = 0;
    for (size_t i = 5; i < n;) {
        uint32_t len = w[i] >> 16, op = w[i] & 0xffff;
        CHECK(len && i + len <= n, "instruction at word %zu", i);
        if (!len || i + len > n) return;
        const uint32_t *o = w + i + 1;
        uint32_t res = result_first(op) ? o[0] : result_second(op) && len > 2 ? o[1] : 0;
        if (res) {
            CHECK(res < w[3], "id %u at or past the bound %u", res, w[3]);
            CHECK(res < MAXID && d.def_at[res] < 0, "id %u defined twice", res);
            if (res < MAXID) {
                d.def_at[res] = (int32_t)i;
                d.op[res] = op;
                d.ins[res] = w + i;
            }
        }
        if (op == 17) caps_f16 |= o[0] == 9, caps_cm |= o[0] == 6022;
        if (op == 10) ext |= !strcmp((const char *)o, "SPV_KHR_cooperative_matrix");
        if (op == 4456) {
            types++;
            uint32_t ct = o[1];
            CHECK(ct < MAXID && d.def_at[ct] >= 0 && d.op[ct] == 22 &&
                      (d.ins[ct][2] == 16 || d.ins[ct][2] == 32),
                  "matrix %u: component type %u is not a float declared before it", res, ct);
            CHECK(is_uint_const(&d, o[2], 3, (int32_t)i), "matrix %u: scope", res);
            CHECK(is_uint_const(&d, o[3], 16, (int32_t)i), "matrix %u: rows", res);
            CHECK(is_uint_const(&d, o[4], 16, (int32_t)i), "matrix %u: columns", res);
            CHECK(is_uint_const(&d, o[5], 0, (int32_t)i) ||
                      is_uint_const(&d, o[5], 1, (int32_t)i) ||
                      is_uint_const(&d, o[5], 2, (int32_t)i),
                  "matrix %u: use", res);
        }
        if (op == 4457) /* load: type, result, pointer, layout, stride */
            CHECK(is_uint_const(&d, o[3], 0, (int32_t)i), "load at word %zu: layout", i);
        if (op == 4458) /* store: pointer, object, layout, stride */
            CHECK(is_uint_const(&d, o[2], 0, (int32_t)i), "store at word %zu: layout", i);
        mma += op == 4459;
        i += len;
    }
    CHECK(caps_f16 && caps_cm && ext,
          "capabilities Float16 %d CooperativeMatrixKHR %d, extension %d", caps_f16, caps_cm, ext);
    CHECK(types == 3, "%d cooperative matrix types, 3 expected (A, B, accumulator)", types);
    CHECK(mma > 0, "no OpCooperativeMatrixMulAddKHR");
    printf("%-20s %6zu words, %d matrix types, %d products: %s\n", name, n, types, mma,
           failures ? "FAIL" : "ok");
}

int main(void) {
    check("gemm_cm_khr", r1vk_spv_gemm_cm_khr, sizeof r1vk_spv_gemm_cm_khr / 4);
    check("gemm_cm_exact_khr", r1vk_spv_gemm_cm_exact_khr, sizeof r1vk_spv_gemm_cm_exact_khr / 4);
    check("gemm_cm_split_khr", r1vk_spv_gemm_cm_split_khr, sizeof r1vk_spv_gemm_cm_split_khr / 4);
    check("mma_probe_khr", r1vk_spv_mma_probe_khr, sizeof r1vk_spv_mma_probe_khr / 4);
    return failures ? 1 : 0;
}
