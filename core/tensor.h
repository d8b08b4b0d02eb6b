/* Tensors: typed, row-major arrays that live on one backend.
 *
 * Shapes follow PyTorch/safetensors order: ne[0] is the outermost dimension.
 * Activations are 2-D [rows, cols] float32 with rows = tokens; at run time only
 * the first n rows are used. Weights point into the mmap'd checkpoint (`data`),
 * and a non-CPU backend keeps its own copy or import handle in `extra`. */
#ifndef R1_TENSOR_H
#define R1_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define R1_MAX_DIMS 4

typedef enum r1_dtype { R1_F32 = 0, R1_F16, R1_BF16, R1_I32, R1_I8, R1_DTYPE_COUNT } r1_dtype;

typedef struct r1_tensor {
    const char *name; /* borrowed: checkpoint name or a static label */
    r1_dtype type;
    int ndim;
    int64_t ne[R1_MAX_DIMS];
    void *data;  /* host address (mmap, host buffer) or NULL when device-only */
    void *extra; /* backend-private handle (device buffer + offset) */
    int backend; /* index of the backend whose memory holds it (activations, KV) */
    int is_weight;
    int persistent;  /* KV cache: lives as long as the graph, never reused for scratch */
    void *cpu_extra; /* CPU backend's derived copy of a weight (8-bit head), owned by it */
} r1_tensor;

size_t r1__dtype_size(r1_dtype t);
const char *r1__dtype_name(r1_dtype t);
int64_t r1__tensor_nelem(const r1_tensor *t);
size_t r1__tensor_nbytes(const r1_tensor *t);
/* Number of elements of one row (all dims but the first). */
int64_t r1__tensor_row(const r1_tensor *t);

/* Scalar conversions used by reference kernels and the loader. */
static inline float r1__bf16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}
float r1__f16_to_f32(uint16_t h);
uint16_t r1__f32_to_f16(float f);
/* Element i of a float-typed (F32/F16/BF16) array. */
float r1__get_f(const void *data, r1_dtype t, int64_t i);

#endif
