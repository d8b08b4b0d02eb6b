/* Deterministic element values of r1-mkmodel's random GPTQ-Int4 checkpoints.
 *
 * Every element of every tensor is a pure function of (seed, tensor name, flat row-major element
 * index) and a few shape parameters of the tensor, so a test can recompute exactly what was meant
 * to be written without reading the file, and two runs with the same flags write identical bytes.
 *
 * Random stream: key = mkgen_key(seed, name); the i-th 64-bit word of a tensor is
 * mkgen_rand(key, i) = splitmix64 output number i of the state `key` (a counter-based generator,
 * so any element can be computed on its own). "u" below is the top 24 bits of that word as a
 * float in [0, 1): u = (rand >> 40) * 2^-24.
 *
 * Value rules (chosen so a deep random model keeps unit-scale, token-dependent activations:
 * every quantized linear maps a unit-RMS input to a roughly unit-RMS output, norms are 1, logits
 * have std ~2). The weight codes are symmetric around the zero point, like real GPTQ codes: with
 * plain uniform nibbles 0..15 and zero 8 every weight would carry a -0.5*scale offset, and that
 * common-mode part grows layer by layer until all positions give the same logits.
 *   qweight  I32: 32-bit half (i & 1) of mkgen_rand(key, i >> 1), low half first, with every
 *                 nibble 0 replaced by 8: codes 1..15, each 1/16 likely, 8 twice that (mean 8).
 *   qzeros   I32: sym: 0x77777777 (every zero 8, stored as 8-1). asym: the low 32 bits of rand
 *                 with every nibble 15 replaced by 7: stored zeros 0..14 (true zero 1..15, mean
 *                 8, never the unrepresentable 0).
 *   scales   F16: (0.5 + u) / (sigma * sqrt(K)), sigma = RMS of (q - zero) = sqrt(17.5) for sym,
 *                 sqrt(35) for asym.
 *   g_idx    I32: desc_act false: k / G. desc_act true: mkgen_perm(key, K, k) / G, i.e. the
 *                 group of input row k is its position in a random permutation of 0..K-1 divided
 *                 by G, so every group has exactly G rows, scattered (as GPTQ act-order makes).
 *   bias     F16: (2u - 1) * 0.05 (q/k/v_proj only).
 *   norm     F16: 1.0 (0x3c00), every input/post_attention layernorm and model.norm.
 *   embed    F16: ((2j + 1) / 65536 - 1) * sqrt(3) * 2 / sqrt(hidden), where j is 16-bit field
 *                 (i & 3) of mkgen_rand(key, i >> 2) (low field first): 65536 evenly spaced
 *                 levels, for embed_tokens and lm_head alike.
 * All float math is IEEE single precision; F16 values are rounded to nearest-even.
 */
#ifndef R1_MKGEN_H
#define R1_MKGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest tensor name (including the NUL) a checkpoint of mklayout.h can have. */
#define MKGEN_NAME_MAX 64

typedef enum mkgen_dtype { MKGEN_I32, MKGEN_F16 } mkgen_dtype;

typedef enum mkgen_kind {
    MKGEN_EMBED,   /* model.embed_tokens.weight and lm_head.weight */
    MKGEN_NORM,    /* every RMSNorm weight */
    MKGEN_QWEIGHT, /* <linear>.qweight */
    MKGEN_QZEROS,  /* <linear>.qzeros */
    MKGEN_SCALES,  /* <linear>.scales */
    MKGEN_G_IDX,   /* <linear>.g_idx */
    MKGEN_BIAS,    /* <linear>.bias (q/k/v_proj) */
} mkgen_kind;

/* One tensor with everything its values depend on. mklayout.h fills these. */
typedef struct mkgen_tensor {
    char name[MKGEN_NAME_MAX];
    mkgen_kind kind;
    mkgen_dtype dtype;
    int ndim;          /* 1 or 2 */
    uint64_t shape[2]; /* shape[1] unused when ndim == 1 */
    uint64_t numel;    /* product of the shape */
    uint32_t in_f;     /* K of the quantized linear (0 for non-linear tensors) */
    uint32_t group;    /* G of the quantized linear (0 for non-linear tensors) */
    uint32_t hidden;   /* hidden size, sets the embedding amplitude */
    bool sym;          /* symmetric quantization (qzeros, scales) */
    bool act_order;    /* desc_act (g_idx) */
    uint64_t key;      /* mkgen_key(seed, name) */
} mkgen_tensor;

/* Per-tensor stream key: splitmix64 mix of the FNV-1a hash of name and the seed. */
uint64_t mkgen_key(uint64_t seed, const char *name);

/* The i-th random 64-bit word of the stream `key` (splitmix64 at state key + (i+1)*gamma). */
uint64_t mkgen_rand(uint64_t key, uint64_t i);

/* Element generators of the value rules above; i is the flat row-major element index. */
uint32_t mkgen_qweight(uint64_t key, uint64_t i);
uint32_t mkgen_qzeros(uint64_t key, uint64_t i, bool sym);
uint16_t mkgen_scale(uint64_t key, uint64_t i, uint32_t in_f, bool sym);
int32_t mkgen_g_idx(uint64_t key, uint32_t k, uint32_t in_f, uint32_t group, bool act_order);
uint16_t mkgen_bias(uint64_t key, uint64_t i);
uint16_t mkgen_norm(void);
uint16_t mkgen_embed(uint64_t key, uint64_t i, uint32_t hidden);

/* A bijection of 0..n-1 (n >= 1, n <= 2^30) chosen by key: a 4-round Feistel network on the
 * smallest even-bit power-of-two domain >= n, cycle-walked back into range. */
uint32_t mkgen_perm(uint64_t key, uint32_t n, uint32_t x);

/* Element i of t as raw bits: the I32 word, or the F16 bits in the low 16 bits. */
uint32_t mkgen_value(const mkgen_tensor *t, uint64_t i);

/* Writes elements [first, first+count) of t little-endian into out (count * 4 or count * 2
 * bytes, by dtype). This is what r1-mkmodel streams to disk. */
void mkgen_fill(const mkgen_tensor *t, uint64_t first, uint64_t count, uint8_t *out);

/* Bytes per element of a dtype. */
size_t mkgen_dtype_size(mkgen_dtype d);

/* IEEE half <-> single conversions (round to nearest-even; NaN and infinities kept). */
uint16_t mkgen_f32_to_f16(float f);
float mkgen_f16_to_f32(uint16_t h);

#endif
