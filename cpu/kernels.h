/* CPU matmul kernels, one table per instruction set, chosen at run time.
 *
 * The scalar table is the reference every other kernel (and every other
 * backend) is tested against. R1_CPU=scalar|avx2|avx512|neon forces a table. */
#ifndef R1_CPU_KERNELS_H
#define R1_CPU_KERNELS_H

#include "graph.h"

typedef struct r1_cpu_kernels {
    const char *name;
    /* y[t*N + n] = sum_k x[t*K + k] * W[k][n] for t < T, n in [n0, n1), no bias.
     * W is the GPTQ linear q (K inputs, N outputs); n0, n1 are multiples of col_align
     * (n1 may be N). */
    void (*q4_matmul)(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1);
    /* y[t*N + n] = sum_k x[t*K + k] * w[n][k] for t < T, n in [n0, n1); w is [N, K]
     * F16, BF16 or F32 (w->type). */
    void (*dense_matmul)(const r1_tensor *w, const float *x, int T, float *y, int n0, int n1);
    int col_align;
} r1_cpu_kernels;

extern const r1_cpu_kernels r1__cpu_kernels_scalar;

/* The table for this machine (or the one R1_CPU names); NULL name if R1_CPU is unknown. */
const r1_cpu_kernels *r1__cpu_kernels_select(const char **error_name);
/* Table by name ("scalar", "avx2", ...), NULL if not built or not supported here. */
const r1_cpu_kernels *r1__cpu_kernels_get(const char *name);

/* Dequantizes W[k][n] exactly as the checkpoint defines it (reference helper). */
float r1__q4_weight(const r1_qlinear *q, int k, int n);

#endif
