/* CPU matmul kernels, one table per instruction set, chosen at run time.
 *
 * The scalar table is the reference every other kernel (and every other
 * backend) is tested against. R1_CPU=scalar|avx2|avx512|amx|neon forces a table.
 *
 * Every entry works on a column range [n0, n1) so that ops.c can hand columns
 * out in chunks to whichever thread is free. Entries after col_align are
 * optional (NULL in tables that lack them); the r1__cpu_* helpers at the end
 * fall back to portable code, so callers never test for NULL themselves.
 *
 * GPTQ linears run fastest after r1__cpu_q4_prepare (load time): it repacks
 * qweight into column panels (64 columns, 32 for AVX2: the width one kernel
 * pass covers) one after the other, so that a 64-column chunk is one
 * contiguous stream read front to back (column chunks of the checkpoint layout
 * read 256 bytes per 4-KiB page and reach only ~40% of the memory bandwidth),
 * and sorts act-order rows into their groups. A GPTQ matmul for one op then runs as
 *
 *   bytes = r1__cpu_q4_act_bytes(k, q, T, mode)          (0: no buffer needed)
 *   units [0, T * q->n_groups) of r1__cpu_q4_act_prep, split over threads
 *   barrier
 *   r1__cpu_q4_matmul_act(k, q, x, xa, T, mode, y, n0, n1) per column chunk
 *
 * where mode says how activations enter the dot products (r1_q4_act). */
#ifndef R1_CPU_KERNELS_H
#define R1_CPU_KERNELS_H

#include "graph.h"

/* How activations enter a GPTQ matmul. */
typedef enum r1_q4_act {
    /* float32 activations times exactly dequantized weights (the reference) */
    R1_Q4_F32 = 0,
    /* each activation as a 22-bit integer per (row, group) scale, split into three
     * int8 digits for int8 dot products (VNNI/dotprod): error below 5e-6 of the
     * output RMS, i.e. float32-level, at a third of the instructions of F32 */
    R1_Q4_I8X3,
    /* one int8 per activation and (row, group) scale, like llama.cpp's Q8 inputs:
     * about 1% of the output RMS; the fast batched (prompt) path */
    R1_Q4_I8,
} r1_q4_act;

/* Derived layout made by r1__cpu_q4_prepare, kept in r1_qlinear.cpu_extra. */
typedef struct r1_q4_prepared {
    /* qweight as column panels: panel p holds columns [P p, P p + w) with
     * P = pw (the table's panel_cols) and w = min(P, N - P p), stored [K/8][w]
     * words from offset P p * K/8 */
    uint32_t *w;
    int pw;
    /* act-order: row i of w holds input k = perm[i] (groups now contiguous); else NULL */
    int32_t *perm;
    /* Tables that set panel_meta: each panel's scales and zeros beside it, so that a
     * block streams them in order instead of one strided line per group (the
     * checkpoint's [ng][N] rows). Entry (panel p, group g) at (p ng + g) R1_Q4_META(P)
     * bytes: P fp16 scales, then P/8 qzeros words (columns of a narrower last panel
     * first, the rest zero), a block of its own. NULL otherwise. */
    uint8_t *meta;
    size_t bytes; /* allocated for w and perm */
} r1_q4_prepared;
#define R1_Q4_META(P) ((size_t)(P)*5 / 2)

/* An 8-bit copy of a dense [N, K] matrix (the lm_head): W[n][k] ~= d[n] * q[n][k],
 * one scale per row, q in [-127, 127]. Built at load by r1__cpu_q8_rows_new. */
typedef struct r1_q8_rows {
    int64_t N, K;
    int8_t *q; /* [N][K], rows K bytes apart, 64-byte aligned block */
    float *d;  /* [N] */
} r1_q8_rows;

typedef struct r1_cpu_kernels {
    const char *name;
    /* y[t*N + n] = sum_k x[t*K + k] * W[k][n] for t < T, n in [n0, n1), no bias.
     * W is the GPTQ linear q (K inputs, N outputs); n0, n1 are multiples of col_align
     * (n1 may be N). Exact (R1_Q4_F32); reads the prepared layout when q has one. */
    void (*q4_matmul)(const r1_qlinear *q, const float *x, int T, float *y, int n0, int n1);
    /* y[t*N + n] = sum_k x[t*K + k] * w[n][k] for t < T, n in [n0, n1); w is [N, K]
     * F16, BF16 or F32 (w->type). */
    void (*dense_matmul)(const r1_tensor *w, const float *x, int T, float *y, int n0, int n1);
    int col_align;

    /* GPTQ matmul with prepared activations (see the top of this file). act_bytes
     * returns 0 when the mode needs no buffer, (size_t)-1 when this table cannot run
     * the mode on q (then use R1_Q4_F32); a table may ask for more than the shared
     * layout below and keep data of its own after it (amx: digit planes). */
    size_t (*q4_act_bytes)(const r1_qlinear *q, int T, r1_q4_act mode);
    void (*q4_act_prep)(const r1_qlinear *q, const float *x, int T, r1_q4_act mode, int u0, int u1,
                        void *xa);
    void (*q4_matmul_act)(const r1_qlinear *q, const float *x, const void *xa, int T,
                          r1_q4_act mode, float *y, int n0, int n1);
    /* y[t*N + n] = d[n] * sum_k x[t*K + k] * q[n][k] for n in [n0, n1) (--lm-head q8). */
    void (*q8_matmul)(const r1_q8_rows *w, const float *x, int T, float *y, int n0, int n1);
    /* Width of the prepared panels: the columns one pass of the decode kernel
     * covers, so that it reads its panel front to back (0: 64). */
    int panel_cols;
    /* Prompts (R1_CPU_PROMPT_T tokens or more) default to R1_Q4_I8 instead of
     * the exact R1_Q4_I8X3: set where three int8 digits cost about three times
     * one (no VNNI / sdot / AMX), as llama.cpp's 8-bit activations do. */
    int prompt_i8;
    /* Prepare keeps scales and zeros per panel (r1_q4_prepared.meta); the kernels
     * read them through q4p_scales / q4p_zword. */
    int panel_meta;
} r1_cpu_kernels;

/* Batches of fewer tokens (decode steps of several sequences) stay exact. */
#define R1_CPU_PROMPT_T 16

extern const r1_cpu_kernels r1__cpu_kernels_scalar;

/* The table for this machine (or the one R1_CPU names); NULL name if R1_CPU is unknown. */
const r1_cpu_kernels *r1__cpu_kernels_select(const char **error_name);
/* Table by name ("scalar", "avx2", ...), NULL if not built or not supported here. */
const r1_cpu_kernels *r1__cpu_kernels_get(const char *name);

/* Dequantizes W[k][n] exactly as the checkpoint defines it (reference helper;
 * reads the checkpoint layout, never the prepared one). */
float r1__q4_weight(const r1_qlinear *q, int k, int n);

/* ---- GPTQ: load-time preparation and the prepared-activation path ---- */

/* Repacks q for table k (a no-op for tables without q4_matmul_act, e.g. scalar):
 * K/8 * N * 4 bytes (+ 4K for act-order, + the scales and zeros for tables with
 * panel_meta), the size of what it replaces, in 2-MiB pages.
 * drop_source: the tensors live in a read-only file mapping, whose pages are then
 * released (madvise DONTNEED; the file stays the backing store) so that the
 * process holds one copy; pass 0 for heap memory. Runs its own OpenMP loop:
 * call it outside parallel regions. */
r1_status r1__cpu_q4_prepare(const r1_cpu_kernels *k, r1_qlinear *q, int drop_source,
                             r1_error *err);
void r1__cpu_q4_release(r1_qlinear *q);

size_t r1__cpu_q4_act_bytes(const r1_cpu_kernels *k, const r1_qlinear *q, int T, r1_q4_act mode);
void r1__cpu_q4_act_prep(const r1_cpu_kernels *k, const r1_qlinear *q, const float *x, int T,
                         r1_q4_act mode, int u0, int u1, void *xa);
void r1__cpu_q4_matmul_act(const r1_cpu_kernels *k, const r1_qlinear *q, const float *x,
                           const void *xa, int T, r1_q4_act mode, float *y, int n0, int n1);

/* Activation buffer layouts (shared by every ISA; the scalar code in kernels.c
 * defines them). ng = n_groups, "slot" order inside every 8 inputs is
 * k = 0,2,4,6,1,3,5,7: the low and the high nibbles of a GPTQ word's bytes.
 *   F32 (act-order prepared only): float [T][K], x gathered through perm.
 *   I8:   int8 [T][K] in slot order | pad to 64 | float dx[T][ng] | float dxs[T][ng]
 *         (x ~= dx * q, dxs = dx * sum of q over the group)
 *   I8X3: per (t, 8-input block) 24 bytes: digits a, b, c, each 8 in slot order,
 *         v = a*2^14 + b*2^7 + c = round(x * 127*2^14 / max|x| over the group)
 *         | pad to 64 | float dx[T][ng] | float sv[T][ng] (sum of v over the group)
 * Unit u of act_prep covers row t = u / ng, group g = u % ng. */
size_t r1__q4_act_tail_offset(const r1_qlinear *q, int T, r1_q4_act mode);
/* The q4_act_bytes rule every table shares: I8/I8X3 need natural or prepared groups. */
size_t r1__q4_act_bytes_std(const r1_qlinear *q, int T, r1_q4_act mode);

/* ---- work chunks: columns handed to whichever thread is free ---- */

/* Int4 matmuls: 64 columns (or the ISA's alignment), one panel stream each. */
static inline int r1__cpu_col_chunk(int N, int align) {
    int c = 64;
    while (c < align) c *= 2;
    return c > N ? N : c;
}

/* Dense rows (the head, fp16 or 8-bit) in chunks of at least 512 KiB: each
 * chunk restarts the prefetch stream, and 64 short rows (1.5b: 1536 bytes of
 * 8-bit weights) are too little to amortize that. test_kernels bench head, 2
 * threads: 1.5b q8 23.0 -> 26.5 GB/s, fp16 23.5 -> 25.0; 14b q8 27.5 -> 29.4,
 * fp16 +2%. Int4 panels gain nothing from longer chunks. */
static inline int r1__cpu_row_chunk(int N, size_t row_bytes, int align) {
    int c = r1__cpu_col_chunk(N, align);
    while (c < N && (size_t)c * row_bytes < ((size_t)512 << 10) && N / (2 * c) >= 64) c *= 2;
    return c;
}

/* ---- 8-bit rows (lm_head) ---- */

void r1__cpu_q8_matmul(const r1_cpu_kernels *k, const r1_q8_rows *w, const float *x, int T,
                       float *y, int n0, int n1);
/* Requantizes an F16/BF16/F32 [N, K] tensor to 8 bits per row (call outside any
 * OpenMP region; it uses its own parallel loop). N*K bytes + 4*N. */
r1_status r1__cpu_q8_rows_new(const r1_tensor *w, r1_q8_rows **out, r1_error *err);
void r1__cpu_q8_rows_free(r1_q8_rows *w);

#endif
