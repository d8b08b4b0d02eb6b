/* GPTQ linears on the device.
 *
 * Without act-order the checkpoint layout is used as it is (qweight [K/8, N]
 * is already coalesced for one-column-per-invocation reads), so qweight,
 * qzeros and scales can even be imported from the mmap. With act-order
 * (g_idx scattered) the rows of K are permuted once here so that each group's
 * G rows are contiguous: the shaders then look a scale up once per group run,
 * and read x through perm[k] instead of looking g_idx up per element. */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* perm[k'] = the input row at sorted position k' (stable by group). */
static uint32_t *act_order_perm(const r1_qlinear *q) {
    const int32_t *gi = q->g_idx->data;
    uint32_t *perm = malloc((size_t)q->K * sizeof *perm);
    int *next = calloc((size_t)q->n_groups, sizeof *next);
    if (!perm || !next) {
        free(perm), free(next);
        return NULL;
    }
    for (int g = 0; g < q->n_groups; g++) next[g] = g * q->G; /* loader checked: G rows each */
    for (int k = 0; k < q->K; k++) perm[next[gi[k]]++] = (uint32_t)k;
    free(next);
    return perm;
}

/* qweight with K rows in perm order, repacked 8 nibbles per word. */
static uint32_t *repack(const r1_qlinear *q, const uint32_t *perm) {
    const uint32_t *qw = q->qweight->data;
    int R = q->K / 8, N = q->N;
    uint32_t *out = malloc((size_t)R * (size_t)N * sizeof *out);
    if (!out) return NULL;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        for (int n = 0; n < N; n++) {
            uint32_t w = 0;
            for (int j = 0; j < 8; j++) {
                uint32_t k = perm[r * 8 + j];
                w |= ((qw[(size_t)(k / 8) * N + n] >> (4 * (k % 8))) & 15u) << (4 * j);
            }
            out[(size_t)r * N + n] = w;
        }
    }
    return out;
}

static r1_status prepare_act_order(vk_ctx *c, r1_qlinear *q, r1_error *err) {
    uint32_t *perm = act_order_perm(q), *qw = perm ? repack(q, perm) : NULL;
    r1_status st = R1_OK;
    if (!qw) st = r1__err(err, R1_E_NOMEM, "out of memory repacking an act-order linear");
    if (!st) st = r1vk_weight_upload(c, q->qweight, qw, r1__tensor_nbytes(q->qweight), 0, err);
    /* (uploads copy into staging at once: the host arrays may go now) */
    if (!st) st = r1vk_weight_upload(c, q->g_idx, perm, (size_t)q->K * sizeof *perm, 0, err);
    free(qw);
    free(perm);
    return st;
}

r1_status r1vk_qlinear_prepare(vk_ctx *c, r1_qlinear *q, r1_error *err) {
    r1_status st = R1_OK;
    if (q->act_order && q->g_idx) st = prepare_act_order(c, q, err);
    r1_tensor *ts[] = {q->qweight, q->qzeros, q->scales, q->bias};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0] && !st; i++)
        if (ts[i]) st = r1vk_weight_resolve(c, ts[i], err);
    return st;
}
