/* Scalar reference kernels: plain loops, exact float32 dequantization. */
#include <string.h>

#include "kernels.h"

/* v1 checkpoints store zero-1; (zq + 1) & 15 matches exllama/vLLM for the 15 nibble. */
static inline int q4_zero(const r1_qlinear *q, int g, int n) {
    const uint32_t *qz = q->qzeros->data;
    int zq = (int)((qz[(size_t)g * (q->N / 8) + n / 8] >> (4 * (n % 8))) & 15);
    return q->zeros_v2 ? zq : (zq + 1) & 15;
}

static inline int q4_group(const r1_qlinear *q, int k) {
    return q->g_idx ? ((const int32_t *)q->g_idx->data)[k] : k / q->G;
}

float r1__q4_weight(const r1_qlinear *q, int k, int n) {
    const uint32_t *qw = q->qweight->data;
    const uint16_t *sc = q->scales->data;
    int g = q4_group(q, k);
    int v = (int)((qw[(size_t)(k / 8) * q->N + n] >> (4 * (k % 8))) & 15);
    return r1__f16_to_f32(sc[(size_t)g * q->N + n]) * (float)(v - q4_zero(q, g, n));
}

/* Streams qweight row-block by row-block so each block's words are contiguous. */
static void q4_matmul_scalar(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1) {
    const uint32_t *qw = q->qweight->data;
    const uint16_t *sc = q->scales->data;
    int K = q->K, N = q->N;
    for (int t = 0; t < T; t++)
        memset(y + (size_t)t * N + n0, 0, (size_t)(n1 - n0) * sizeof(float));
    for (int r = 0; r < K / 8; r++) {
        const uint32_t *row = qw + (size_t)r * N;
        for (int j = 0; j < 8; j++) {
            int k = r * 8 + j, g = q4_group(q, k);
            for (int n = n0; n < n1; n++) {
                int v = (int)((row[n] >> (4 * j)) & 15);
                float w = r1__f16_to_f32(sc[(size_t)g * N + n]) * (float)(v - q4_zero(q, g, n));
                for (int t = 0; t < T; t++) y[(size_t)t * N + n] += x[(size_t)t * K + k] * w;
            }
        }
    }
}

static void dense_matmul_scalar(const r1_tensor *w, const float *x, int T, float *y, int n0,
                                int n1) {
    int64_t K = w->ne[1], N = w->ne[0];
    for (int n = n0; n < n1; n++) {
        for (int t = 0; t < T; t++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)x[t * K + k] * r1__get_f(w->data, w->type, n * K + k);
            y[t * N + n] = (float)acc;
        }
    }
}

const r1_cpu_kernels r1__cpu_kernels_scalar = {
    .name = "scalar",
    .q4_matmul = q4_matmul_scalar,
    .dense_matmul = dense_matmul_scalar,
    .col_align = 8,
};
