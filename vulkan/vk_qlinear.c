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

/* Transposed layout (discrete GPUs): qt[n][K/8] holds column n's K words in
 * (act-order) sorted order, so a column reads like a dense row; szt[n][g] =
 * f16 scale | true zero << 16 (v1's +1 applied), one load per column and group. */
static void transpose_q(const r1_qlinear *q, const uint32_t *perm, uint32_t *qt) {
    const uint32_t *qw = q->qweight->data;
    int R = q->K / 8, N = q->N;
#pragma omp parallel
    {
        uint32_t *col = malloc((size_t)R * 64 * sizeof *col);
#pragma omp for schedule(dynamic, 1)
        for (int nb = 0; nb < N; nb += 64) {
            int nn = N - nb < 64 ? N - nb : 64;
            if (!col) continue;
            for (int r = 0; r < R; r++)
                for (int j = 0; j < nn; j++) col[(size_t)j * R + r] = qw[(size_t)r * N + nb + j];
            for (int j = 0; j < nn; j++) {
                const uint32_t *cj = col + (size_t)j * R;
                uint32_t *o = qt + (size_t)(nb + j) * R;
                if (!perm) {
                    memcpy(o, cj, (size_t)R * sizeof *o);
                    continue;
                }
                for (int r = 0; r < R; r++) {
                    uint32_t w = 0;
                    for (int b = 0; b < 8; b++) {
                        uint32_t k = perm[r * 8 + b];
                        w |= ((cj[k / 8] >> (4 * (k % 8))) & 15u) << (4 * b);
                    }
                    o[r] = w;
                }
            }
        }
        free(col);
    }
}

static void transpose_sz(const r1_qlinear *q, uint32_t *szt) {
    const uint16_t *sc = q->scales->data;
    const uint32_t *qz = q->qzeros->data;
    int N = q->N, ng = q->n_groups;
    for (int g = 0; g < ng; g++)
        for (int n = 0; n < N; n++) {
            uint32_t zq = (qz[(size_t)g * (N / 8) + n / 8] >> (4 * (n % 8))) & 15u;
            uint32_t z = q->zeros_v2 ? zq : (zq + 1) & 15u;
            szt[(size_t)n * ng + g] = sc[(size_t)g * N + n] | z << 16;
        }
}

static r1_status prepare_t(vk_ctx *c, r1_qlinear *q, r1_error *err) {
    size_t R = (size_t)q->K / 8, N = (size_t)q->N, ng = (size_t)q->n_groups;
    uint32_t *perm = q->act_order && q->g_idx ? act_order_perm(q) : NULL;
    uint32_t *qt = malloc(R * N * sizeof *qt), *szt = malloc(N * ng * sizeof *szt);
    r1_status st = R1_OK;
    if (!qt || !szt || (q->act_order && q->g_idx && !perm))
        st = r1__err(err, R1_E_NOMEM, "out of memory repacking a GPTQ linear");
    if (!st) {
        transpose_q(q, perm, qt);
        transpose_sz(q, szt);
        q->qweight->extra = q->scales->extra = NULL;
        st = r1vk_weight_upload(c, q->qweight, qt, R * N * sizeof *qt, 0, err);
    }
    if (!st) st = r1vk_weight_upload(c, q->scales, szt, N * ng * sizeof *szt, 0, err);
    if (!st && perm)
        st = r1vk_weight_upload(c, q->g_idx, perm, (size_t)q->K * sizeof *perm, 0, err);
    if (!st) {
        ((vk_ref *)q->qweight->extra)->layout_t = 1;
        ((vk_ref *)q->scales->extra)->layout_t = 1;
        q->qzeros->extra = q->scales->extra; /* folded into szt */
    }
    free(qt), free(szt), free(perm);
    return st;
}

r1_status r1vk_qlinear_prepare(vk_ctx *c, r1_qlinear *q, r1_error *err) {
    r1_status st = R1_OK;
    if (c->layout_t && q->K % 32 == 0 && q->G % 32 == 0) {
        st = prepare_t(c, q, err);
        if (!st && q->bias) st = r1vk_weight_resolve(c, q->bias, err);
        return st;
    }
    if (q->act_order && q->g_idx) st = prepare_act_order(c, q, err);
    r1_tensor *ts[] = {q->qweight, q->qzeros, q->scales, q->bias};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0] && !st; i++)
        if (ts[i]) st = r1vk_weight_resolve(c, ts[i], err);
    return st;
}
