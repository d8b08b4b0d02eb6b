/* r1-spvpatch: build-time helper that completes VK_KHR_cooperative_matrix types
 * in SPIR-V from Debian 12's glslang (12), then writes the module as a C header
 * the way `glslangValidator --vn` does.
 *
 * Why: glslang 12 has no GL_KHR_cooperative_matrix, and its GL_EXT_spirv_intrinsics
 * `spirv_type` takes only literal parameters, while OpTypeCooperativeMatrixKHR's
 * operands are all <id>s (a component type, then constants for scope, rows,
 * columns and use). The shaders (shaders/coopmat.glsl) declare the type with
 * literals and a placeholder component type; this tool rewrites each such
 * operand to an <id>: the placeholder to the module's float16 or float32 type
 * (adding float16 and its capability where the module has none), the others to
 * new uint constants (one per value). Scalar types and those constants move to
 * the start of the declarations, before any type that could use them. Anything
 * unexpected is a build error.
 *
 * usage: r1-spvpatch IN.spv ARRAY_NAME OUT.h */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_CAPABILITY = 17,
    CAP_FLOAT16 = 9,
    OP_TYPE_INT = 21,
    OP_TYPE_FLOAT = 22,
    OP_CONSTANT = 43,
    OP_TYPE_COOPMAT_KHR = 4456,
    PH_BASE = 0x7770, /* placeholders: 0x7771 float16, 0x7772 float32 */
};

typedef struct {
    uint32_t *w;
    size_t n, cap;
} words;

static void die(const char *in, const char *msg) {
    fprintf(stderr, "r1-spvpatch: %s: %s\n", in, msg);
    exit(1);
}

static void push(words *v, uint32_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4096;
        v->w = realloc(v->w, v->cap * sizeof *v->w);
        if (!v->w) die("memory", "out of memory");
    }
    v->w[v->n++] = x;
}

static words read_spv(const char *in) {
    words v = {0};
    FILE *f = fopen(in, "rb");
    if (!f) die(in, "cannot open");
    uint32_t x;
    size_t got;
    while ((got = fread(&x, 1, 4, f)) == 4) push(&v, x);
    int bad = ferror(f) || got != 0;
    fclose(f);
    if (bad) die(in, "read error, or a size not a multiple of 4 bytes");
    if (v.n < 5 || v.w[0] != 0x07230203u) die(in, "not a SPIR-V module");
    return v;
}

static int is_scalar_type(uint32_t op) {
    return op == OP_TYPE_INT || op == OP_TYPE_FLOAT;
}

/* The declarations section starts at the first type (OpTypeVoid 19 ..
 * OpTypeForwardPointer 39, or a cooperative matrix type). */
static int is_type(uint32_t op) {
    return (op >= 19 && op <= 39) || op == OP_TYPE_COOPMAT_KHR;
}

/* The scalar types a placeholder names (by placeholder - PH_BASE), and uint32;
 * has_f16cap: the module declares the Float16 capability. */
typedef struct {
    uint32_t ty[3], uint_ty;
    int has_f16cap;
} decls;

static decls scan(const words *v, const char *in) {
    decls d = {0};
    for (size_t i = 5; i < v->n;) {
        uint32_t len = v->w[i] >> 16, op = v->w[i] & 0xffff;
        if (!len || i + len > v->n) die(in, "malformed instruction stream");
        const uint32_t *o = v->w + i + 1;
        if (op == OP_CAPABILITY && len == 2 && o[0] == CAP_FLOAT16) d.has_f16cap = 1;
        if (op == OP_TYPE_FLOAT && len == 3) {
            if (o[1] == 16) d.ty[1] = o[0];
            if (o[1] == 32) d.ty[2] = o[0];
        }
        if (op == OP_TYPE_INT && len == 4 && o[1] == 32 && o[2] == 0) d.uint_ty = o[0];
        i += len;
    }
    return d;
}

/* Rewrites each cooperative matrix type's operands to <id>s, collecting the
 * uint constants to declare (deduplicated among themselves) in `consts`. */
static void patch_types(words *v, decls *d, words *consts, uint32_t *bound, const char *in) {
    uint32_t val[64], id[64];
    int nc = 0;
    for (size_t i = 5; i < v->n; i += v->w[i] >> 16) {
        if ((v->w[i] & 0xffff) != OP_TYPE_COOPMAT_KHR) continue;
        if ((v->w[i] >> 16) != 7) die(in, "OpTypeCooperativeMatrixKHR without 5 operands");
        uint32_t *o = v->w + i + 2, ph = o[0] - PH_BASE;
        if (ph == 1 && !d->ty[1]) { /* fp16 matrices in a shader with no fp16 scalar */
            d->ty[1] = (*bound)++;
            push(consts, (3u << 16) | OP_TYPE_FLOAT);
            push(consts, d->ty[1]);
            push(consts, 16);
        }
        if (ph < 1 || ph > 2 || !d->ty[ph])
            die(in, "cooperative matrix component placeholder unknown, or its type missing");
        if (!d->uint_ty) die(in, "no uint type in the module");
        o[0] = d->ty[ph];
        for (int k = 1; k < 5; k++) {
            int j = 0;
            while (j < nc && val[j] != o[k]) j++;
            if (j == nc) {
                if (nc == 64) die(in, "too many constants");
                val[nc] = o[k];
                id[nc++] = *bound;
                push(consts, (4u << 16) | OP_CONSTANT);
                push(consts, d->uint_ty);
                push(consts, (*bound)++);
                push(consts, o[k]);
            }
            o[k] = id[j];
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: r1-spvpatch IN.spv ARRAY_NAME OUT.h\n");
        return 2;
    }
    const char *in = argv[1];
    words v = read_spv(in), out = {0}, consts = {0};
    decls d = scan(&v, in);
    uint32_t bound = v.w[3];
    patch_types(&v, &d, &consts, &bound, in);
    /* Scalar types depend on nothing, so they and the new constants move to the
     * start of the declarations, before any type that could use them. */
    size_t tstart = 0;
    for (size_t i = 5; i < v.n && !tstart; i += v.w[i] >> 16)
        if (is_type(v.w[i] & 0xffff)) tstart = i;
    for (size_t i = 0; i < 5; i++) push(&out, i == 3 ? bound : v.w[i]);
    if (d.ty[1] && !d.has_f16cap) { /* capabilities come first */
        push(&out, (2u << 16) | OP_CAPABILITY);
        push(&out, CAP_FLOAT16);
    }
    for (size_t i = 5; i < v.n;) {
        uint32_t len = v.w[i] >> 16, op = v.w[i] & 0xffff;
        if (i == tstart && consts.n) {
            for (size_t j = tstart; j < v.n; j += v.w[j] >> 16)
                if (is_scalar_type(v.w[j] & 0xffff))
                    for (uint32_t k = 0; k < (v.w[j] >> 16); k++) push(&out, v.w[j + k]);
            for (size_t k = 0; k < consts.n; k++) push(&out, consts.w[k]);
        }
        if (!(consts.n && i >= tstart && is_scalar_type(op)))
            for (uint32_t k = 0; k < len; k++) push(&out, v.w[i + k]);
        i += len;
    }
    FILE *f = fopen(argv[3], "w");
    if (!f) die(argv[3], "cannot write");
    fprintf(f, "\t// patched by r1-spvpatch\n\t #pragma once\nconst uint32_t %s[] = {\n", argv[2]);
    for (size_t i = 0; i < out.n; i++)
        fprintf(f, "%s0x%08x%s", i % 8 ? "" : "\t", out.w[i],
                i + 1 == out.n ? "\n};\n"
                : i % 8 == 7   ? ",\n"
                               : ",");
    if (fclose(f)) die(argv[3], "write failed");
    free(v.w);
    free(out.w);
    free(consts.w);
    return 0;
}
