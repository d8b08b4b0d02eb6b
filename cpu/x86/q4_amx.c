/* GPTQ prompt matmuls on Intel AMX (the "amx" table: the AVX-512 table with
 * the batched I8X3 path on tiles).
 *
 * TDPBSUD multiplies a tile of signed bytes (16 tokens x 64 inputs) by a tile
 * of unsigned bytes in the VNNI layout (16 quads of inputs x 16 columns x 4)
 * into 16 x 16 int32 sums. The prepared panels give the second operand almost
 * as they are: the low nibbles of 16 columns' words of one row are one tile row
 * (inputs k0 k2 k4 k6 of each column) and the high nibbles the next (k1 k3 k5
 * k7), the slot order the I8X3 activations already use. Each of the three
 * activation digits has its own accumulator, so sums stay exact integers; per
 * group they are scaled into y as the AVX-512 kernel does (exact I8X3 results,
 * float32-level). Tiles: C0-C5 = 3 digits x 2 blocks of 16 columns, A = one
 * digit plane of 16 tokens, B = 16 columns of 8 weight rows.
 *
 * The first operand is loaded straight from digit planes ([3][T][K] bytes in
 * slot order) that this table's activation preparation writes after the usual
 * I8X3 buffer (which the AVX-512 code used for edge columns still reads).
 *
 * Linux hands out AMX state only on request (arch_prctl), done once when the
 * table is chosen; decode (T < AMX_MIN_T), other activation modes and layouts
 * the tiles do not cover run the AVX-512 code. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels.h"
#include "q4_avx512_common.h"
#include "q4_layout.h"

#define AMX_MIN_T 8 /* fewer tokens leave most of a 16-row tile empty */

extern const r1_cpu_kernels r1__cpu_kernels_avx512;

typedef struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* Whether a T-token matmul of q in `mode` takes the tile path (and its planes). */
static int amx_mode(const r1_qlinear *q, int T, r1_q4_act mode) {
    return mode == R1_Q4_I8X3 && T >= AMX_MIN_T && q->cpu_extra && q->G % 64 == 0;
}

static size_t planes_offset(const r1_qlinear *q, int T, r1_q4_act mode) {
    return (r1__q4_act_bytes_std(q, T, mode) + 63) & ~(size_t)63;
}

static size_t act_bytes_amx(const r1_qlinear *q, int T, r1_q4_act mode) {
    size_t std = r1__q4_act_bytes_std(q, T, mode);
    if (std == (size_t)-1 || !amx_mode(q, T, mode)) return std;
    return planes_offset(q, T, mode) + 3 * (size_t)T * q->K;
}

/* The AVX-512 preparation, then unit (t, g)'s digits copied into the planes. */
static void act_prep_amx(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0, int u1,
                         void *xa) {
    r1__cpu_kernels_avx512.q4_act_prep(q, x, T, mode, u0, u1, xa);
    if (!amx_mode(q, T, mode)) return;
    int K = q->K, ng = q->n_groups, rpg = q->G / 8;
    int8_t *planes = (int8_t *)xa + planes_offset(q, T, mode);
    for (int u = u0; u < u1; u++) {
        int t = u / ng, g = u % ng;
        for (int r = g * rpg; r < (g + 1) * rpg; r++) {
            const int8_t *s = (const int8_t *)xa + ((size_t)t * (K / 8) + r) * 24;
            for (int pl = 0; pl < 3; pl++)
                memcpy(planes + ((size_t)pl * T + t) * K + 8 * r, s + 8 * pl, 8);
        }
    }
}

/* Second operand for 16 columns: 8 rows of words (stride st) -> 16 rows of nibbles. */
static void build_b(const uint32_t *w, size_t st, int8_t *b) {
    for (int i = 0; i < 8; i++) {
        __m512i lo, hi;
        nibbles16(_mm512_loadu_si512(w + (size_t)i * st), &lo, &hi);
        _mm512_storeu_si512(b + (2 * i) * 64, lo);
        _mm512_storeu_si512(b + (2 * i + 1) * 64, hi);
    }
}

/* y for tokens t0..t0+tb, columns n..n+31, group g, from the digit sums c[6][16][16]. */
static void scale_out(const q4p *p, const int32_t *c, const float *dx, const float *sv, int t0,
                      int tb, int g, int n, float *y) {
    for (int s = 0; s < 2; s++) {
        __m512 sc = scales16(p, g, n + 16 * s, 0xFFFF);
        __m512 z = _mm512_cvtepi32_ps(zeros16(p, g, n + 16 * s, 0xFFFF));
        const int32_t *ca = c + (3 * s) * 256, *cb = ca + 256, *cc = cb + 256;
        for (int t = 0; t < tb; t++) {
            size_t i = (size_t)(t0 + t) * p->ng + g;
            __m512 f = x3_value(_mm512_loadu_si512(ca + 16 * t), _mm512_loadu_si512(cb + 16 * t),
                                _mm512_loadu_si512(cc + 16 * t), z, sv[i], dx[i]);
            float *yp = y + (size_t)(t0 + t) * p->N + n + 16 * s;
            __m512 yv = g ? _mm512_loadu_ps(yp) : _mm512_setzero_ps();
            _mm512_storeu_ps(yp, _mm512_fmadd_ps(sc, f, yv));
        }
    }
}

/* tb tokens (the tile rows configured) x 32 columns (n, n+16 inside one panel)
 * over every group; planes: the digit planes at token t0. */
static void tile_block(const q4p *p, const int8_t *planes, size_t plane_bytes, const float *dx,
                       const float *sv, int t0, int tb, int n, float *y) {
    _Alignas(64) int8_t b[2 * 16 * 64];
    _Alignas(64) int32_t c[6 * 256];
    size_t st;
    const uint32_t *base = block_base(p, n, &st);
    const int rpg = p->G / 8, K = p->K;
    const int8_t *pa = planes, *pb = planes + plane_bytes, *pc = planes + 2 * plane_bytes;
    for (int g = 0; g < p->ng; g++) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        _tile_zero(4);
        _tile_zero(5);
        for (int r = g * rpg; r < (g + 1) * rpg; r += 8) {
            build_b(base + (size_t)r * st, st, b);
            build_b(base + (size_t)r * st + 16, st, b + 1024);
            _tile_loadd(7, b, 64);
            _tile_loadd(6, pa + 8 * r, K);
            _tile_dpbsud(0, 6, 7);
            _tile_loadd(6, pb + 8 * r, K);
            _tile_dpbsud(1, 6, 7);
            _tile_loadd(6, pc + 8 * r, K);
            _tile_dpbsud(2, 6, 7);
            _tile_loadd(7, b + 1024, 64);
            _tile_dpbsud(5, 6, 7);
            _tile_loadd(6, pb + 8 * r, K);
            _tile_dpbsud(4, 6, 7);
            _tile_loadd(6, pa + 8 * r, K);
            _tile_dpbsud(3, 6, 7);
        }
        _tile_stored(0, c, 64);
        _tile_stored(1, c + 256, 64);
        _tile_stored(2, c + 512, 64);
        _tile_stored(3, c + 768, 64);
        _tile_stored(4, c + 1024, 64);
        _tile_stored(5, c + 1280, 64);
        scale_out(p, c, dx, sv, t0, tb, g, n, y);
    }
}

/* Tiles 0-5 (sums) and 6 (activations) with `rows` rows, 7 (weights) with 16. */
static void tile_config(int rows) {
    tilecfg cfg = {.palette = 1};
    for (int i = 0; i < 8; i++) cfg.rows[i] = (uint8_t)(i == 7 ? 16 : rows), cfg.colsb[i] = 64;
    _tile_loadconfig(&cfg);
}

static void matmul_act_amx(const r1_qlinear *q, const float *x, const void *xa, int T,
                           r1_q4_act mode, float *y, int n0, int n1) {
    q4p p = q4p_of(q);
    const r1_cpu_kernels *k = &r1__cpu_kernels_avx512;
    /* tiles need whole 32-column blocks of a panel */
    int n32 = n0 + (n1 - n0) / 32 * 32;
    if (!amx_mode(q, T, mode) || n32 == n0 || n0 % 32) {
        k->q4_matmul_act(q, x, xa, T, mode, y, n0, n1);
        return;
    }
    const float *tail = (const float *)((const char *)xa + r1__q4_act_tail_offset(q, T, mode));
    const int8_t *planes = (const int8_t *)xa + planes_offset(q, T, mode);
    size_t plane_bytes = (size_t)T * q->K;
    int rows = -1;
    for (int n = n0; n < n32; n += 32) {
        /* a block must not straddle a panel (a last panel narrower than 64) */
        int e = q4p_panel_end(&p, n);
        if (n + 32 > (e < p.N ? e : p.N)) {
            n32 = n;
            break;
        }
        for (int t0 = 0; t0 < T; t0 += 16) {
            int tb = T - t0 < 16 ? T - t0 : 16;
            if (tb != rows) tile_config(rows = tb);
            tile_block(&p, planes + (size_t)t0 * q->K, plane_bytes, tail, tail + (size_t)T * p.ng,
                       t0, tb, n, y);
        }
    }
    if (rows > 0) _tile_release();
    if (n32 < n1) k->q4_matmul_act(q, x, xa, T, mode, y, n32, n1);
}

/* The other entries are the AVX-512 table's (a const table cannot copy them). */
static void q4_matmul_fwd(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1) {
    r1__cpu_kernels_avx512.q4_matmul(q, x, T, y, n0, n1);
}
static void dense_fwd(const r1_tensor *w, const float *x, int T, float *y, int n0, int n1) {
    r1__cpu_kernels_avx512.dense_matmul(w, x, T, y, n0, n1);
}
static void q8_fwd(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1) {
    r1__cpu_kernels_avx512.q8_matmul(w, x, T, y, n0, n1);
}

/* Whether the CPU has AMX-INT8 (and VBMI for the gathers) and Linux lets this
 * process use the tile data (requested here, once). */
int r1__cpu_amx_usable(void) {
    static int state = -1;
    if (state >= 0) return state;
    unsigned a, b, c, d;
    int has = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        has = (d >> 24 & 1) && (d >> 25 & 1) && (c >> 1 & 1); /* AMX-TILE, AMX-INT8, VBMI */
    }
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18) */
    state = has && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    return state;
}

const r1_cpu_kernels r1__cpu_kernels_amx = {
    .name = "amx",
    .q4_matmul = q4_matmul_fwd,
    .dense_matmul = dense_fwd,
    .col_align = 16,
    .q4_act_bytes = act_bytes_amx,
    .q4_act_prep = act_prep_amx,
    .q4_matmul_act = matmul_act_amx,
    .q8_matmul = q8_fwd,
};
