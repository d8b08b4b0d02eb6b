#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef R1_VMM // the Vulkan memory model: chain.glsl's release / acquire
#extension GL_KHR_memory_scope_semantics : require
#pragma use_vulkan_memory_model
#endif
// GPTQ int4 matrix-vector product for decode: y[t, n] = x[t, :] . W[:, n] + b[n].
//
// Workgroup (x: 64-column tile, y: K split, z: token row; R1_MT: 256 columns
// and 4 K slices, see main). Each invocation owns 4 adjacent columns (one
// 16-byte load per word row) in one of 16 K slices and
// streams its slice in batches of 4 word rows (32 k, within one group since
// G % 32 == 0), the next batch's words, scales and zeros loaded while the
// current one is multiplied: a slice costs about one memory round trip plus its
// bytes, however long it is. The first batch is loaded before x is staged.
// The K split's x is staged in shared memory once (through perm[] for
// act-order), pre-scaled so that nibbles need no int->float conversion: a
// nibble masked in place, OR'ed into the mantissa of 2^23 and minus 2^23 is
// exactly q * 16^j, and x was divided by 16^j (both exact powers of two).
// The zero point is folded out per batch: s * (sum x*q - z * sum x).
//
// R1_DP (devices with VK_KHR_shader_integer_dot_product): x is instead staged
// as three int8 digits per element, x ~ m/127 * (d0 + d1/128 + d2/16384) with
// m the largest |x| of its 32-element block (error below m * 2^-22, float32
// level), packed for 4x8-bit dot products against the nibbles ([k0 k2 k4 k6]
// and [k1 k3 k5 k7] of each word): 9 integer instructions per word instead of
// about 25 float ones, the limit of the float kernel on an H200.
// R1_X2 (the fp16 tensor-core mode, whose prompts already take fp16 operands;
// vk_pipeline.c): two digits, x ~ m/127 * (d0 + d1/128) (error below m * 2^-15,
// golden rel a few 1e-4 against the fp16 bound 2e-2): a third fewer dot
// products and staged words.
// With several K splits the splits write partial sums; the last workgroup of a
// tile to finish (an atomic counter) adds them in order, so results do not
// depend on scheduling.
//
// Fused decode neighbours (vk_plan_q4.c), so a layer needs fewer dispatches
// and barriers:
//   prologue 1 RMSNorm: x is staged as src * w_norm and the sum is scaled by
//     1/sqrt(mean(src^2) + eps) at the end (each K split adds its share of
//     sum(src^2) to the scratch; the finishing workgroup sums them in order);
//   prologue 2 SiLU gate: x is staged as silu(src) * up;
//   epilogue (Q4_EPI): the residual add that follows, y = sum + res;
//   hand-off (Q4_XQOUT -> Q4_PREQ): a residual epilogue whose y feeds the next
//     RMSNorm prologue also writes y * its weight as staged digits, which the
//     next matvecs load instead of staging x themselves (vk_plan_q4.c).
// A dispatch may also cover up to three matrices with the same input (q, k, v
// after one norm; gate and up): workgroups [0, t1) take the first, [t1, t2)
// the second, [t2, ...) the third, each with its own offsets into the weight
// buffer they share and its own output (bindings 2, 6, 10).
#ifdef R1_MT
#define TC 64u // column invocations (x 4 columns): 256-column tiles
#define TS 4u  // K slices
#else
#define TC 16u // column invocations (x 4 columns): 64-column tiles
#define TS 16u // K slices
#endif
#define BR 4u     // word rows per batch (one 32-element block of x)
#define XMAX 4096u // x elements of a K split (vk_plan_q4.c Q4_ROWS_PER_SPLIT * 8)
#define WG 256u
#define XIT (XMAX / 4u / WG) // staging loads per invocation
#ifdef R1_X2
#define ND 2u // int8 digits of x (R1_X2: two, the fp16 tensor-core mode's decode)
#else
#define ND 3u
#endif
#define XD (2u * ND) // packed words per word row of x: per digit, even and odd elements
layout(local_size_x = 256) in;
#include "common.glsl"
#include "reduce.glsl"
#if defined(R1_DP) && defined(R1_SUBGROUP)
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#ifdef R1_DP
#extension GL_EXT_spirv_intrinsics : require
// OpSUDot, packed 4x8-bit: signed bytes of a . unsigned bytes of b
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4452) int sudot(uint a, uint b, spirv_literal int fmt);
#endif

// Activations are coherent: a chained dispatch (chain.glsl) reads what the one
// before it wrote with no barrier between them.
layout(std430, binding = 1) coherent readonly buffer X { float x[]; };
layout(std430, binding = 1) coherent readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) coherent writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer QW { uvec4 qw4[]; };
layout(std430, binding = 4) readonly buffer SC { uvec2 sc2[]; };
layout(std430, binding = 5) readonly buffer QZ { uint qz[]; };
layout(std430, binding = 6) readonly buffer PM { uint perm[]; };
layout(std430, binding = 7) readonly buffer BI { uint bias[]; };
layout(std430, binding = 8) coherent buffer SP { float part[]; };
layout(std430, binding = 8) coherent buffer SN { uint cnt[]; };
layout(std430, binding = 9) readonly buffer PW { uint pw[]; };    // norm weight (words)
layout(std430, binding = 9) coherent readonly buffer PB { float pb[]; }; // silu: the up input
layout(std430, binding = 9) coherent readonly buffer PB4 { vec4 pb4[]; };
layout(std430, binding = 10) coherent readonly buffer ER { float er[]; };  // residual
layout(std430, binding = 6) coherent writeonly buffer Y1 { float y1[]; };  // merged: 2nd output
layout(std430, binding = 10) coherent writeonly buffer Y2 { float y2[]; }; // merged: 3rd output
layout(std430, binding = 6) readonly buffer NW { uint nw[]; };     // Q4_XQOUT: next norm weight

#define Q4_BIAS 1u
#define Q4_V2 2u
#define Q4_PERM 4u
#define Q4_EPI 8u
#define Q4_BIAS1 16u // merged matrices 1 and 2 have a bias
#define Q4_BIAS2 32u
#define Q4_PREQ 64u   // decode, int8-dot: x's digits are in scratch (written by Q4_XQOUT)
#define Q4_XQOUT 128u // decode, int8-dot: also write the digits of y * next norm weight
#define PRO_NORM 1u
#define PRO_SILU 2u

layout(push_constant) uniform P {
    uint K, N, G;
    uint flags;
    uint qoff, soff, zoff, boff; // element offsets (qoff, soff multiples of 4)
    uint btype;
    uint ksplit, rps;  // K splits and word rows per split
    uint poff, coff;   // scratch: partial sums and counters (elements)
    uint pro, wtype, woff;
    float eps;
    uint ssoff; // scratch: per-split sums of squares (norm prologue)
    uint nmat, t1, t2;                   // merged: matrices, first tile of the 2nd and 3rd
    uint qoff1, soff1, zoff1, boff1, n1; // the 2nd matrix
    uint qoff2, soff2, zoff2, boff2, n2; // the 3rd
    layout(offset = 124) uint chain;     // chain.glsl
} p;
#include "chain.glsl"

// The matrix of this workgroup: columns, offsets, bias, where its columns start
// among all the dispatch's, and the total (the split partials' row length).
uint mIdx, mN, mQoff, mSoff, mZoff, mBoff, mCol, mAll;
bool mBias;

// Selects the matrix of global tile `tile`; returns the tile within it.
uint select_matrix(uint tile) {
    mIdx = 0u, mN = p.N, mQoff = p.qoff, mSoff = p.soff, mZoff = p.zoff, mBoff = p.boff;
    mCol = 0u, mBias = (p.flags & Q4_BIAS) != 0u;
    mAll = p.N + (p.nmat > 1u ? p.n1 : 0u) + (p.nmat > 2u ? p.n2 : 0u);
    if (p.nmat > 2u && tile >= p.t2) {
        mIdx = 2u, mN = p.n2, mQoff = p.qoff2, mSoff = p.soff2, mZoff = p.zoff2, mBoff = p.boff2;
        mCol = p.N + p.n1, mBias = (p.flags & Q4_BIAS2) != 0u;
        return tile - p.t2;
    }
    if (p.nmat > 1u && tile >= p.t1) {
        mIdx = 1u, mN = p.n1, mQoff = p.qoff1, mSoff = p.soff1, mZoff = p.zoff1, mBoff = p.boff1;
        mCol = p.N, mBias = (p.flags & Q4_BIAS1) != 0u;
        return tile - p.t1;
    }
    return tile;
}

#ifdef R1_DP
shared uint xq[XMAX / 8u * XD]; // per word row: d0 even, d0 odd, d1 even, d1 odd (d2 even, d2 odd)
shared uint bmax[XMAX / 32u];   // per 32-element block: bits of max |x| (>= 0: ordered as uint)
shared int bsum[XMAX / 32u];    // per block: sum of 16384 d0 + 128 d1 + d2
#else
shared vec4 xs[XMAX / 4u];
shared float xsum[XMAX / 8u];
#endif
shared float red[TS][TC * 4u];
shared bool last_s;

const float M = 8388608.0;
float mq(uint bits) { return uintBitsToFloat(bits | 0x4B000000u) - M; }

float dot8(uint w, vec4 a, vec4 b) {
    uint h = w >> 12;
    return a.x * mq(w & 0xFu) + a.y * mq(w & 0xF0u) + a.z * mq(w & 0xF00u) +
           a.w * mq(w & 0xF000u) + b.x * mq(w & 0xF0000u) + b.y * mq(h & 0xF00u) +
           b.z * mq(h & 0xF000u) + b.w * mq(h & 0xF0000u);
}

float bias_of(uint n) {
    return mBias ? LOADF(bias, mBoff + n, p.btype) : 0.0;
}

// Scale and zero point of 4 columns in group g.
void group_sz(uint g, uint n, out vec4 s, out vec4 z) {
    uvec2 s2 = sc2[(mSoff + g * mN + n) >> 2];
    s = vec4(unpackHalf2x16(s2.x), unpackHalf2x16(s2.y));
    uint zw = qz[mZoff + g * (mN >> 3) + (n >> 3)] >> (4u * (n & 7u));
    uvec4 zq = uvec4(zw, zw >> 4, zw >> 8, zw >> 12) & 15u;
    z = vec4((p.flags & Q4_V2) != 0u ? zq : (zq + 1u) & 15u);
}

// What column c adds to its sum: bias and residual, loaded before the weights
// stream so that the finishing workgroup's epilogue waits for no load.
float addend(uint t, uint c) {
    if (c >= mN) return 0.0;
    return bias_of(c) + ((p.flags & Q4_EPI) != 0u ? er[t * mN + c] : 0.0);
}

// Column c's result from its full sum (and the norm prologue's sum of squares)
// and its addend.
float finish(uint t, uint c, float v, float ss, float add) {
    if (p.pro == PRO_NORM) v *= 1.0 / sqrt(ss / float(p.K) + p.eps);
    v += add;
    if (mIdx == 0u)
        y[t * mN + c] = v;
    else if (mIdx == 1u)
        y1[t * mN + c] = v;
    else
        y2[t * mN + c] = v;
    return v;
}

#ifdef R1_DP
uint pack2(int a, int b) { return (uint(a) & 0xFFu) | ((uint(b) & 0xFFu) << 8); }

// ND int8 digits of v against its block's max |x| m (d2 = 0 with two).
void split_digits(vec4 v, float m, out ivec4 d0, out ivec4 d1, out ivec4 d2) {
    vec4 a = v * (m > 0.0 ? 127.0 / m : 0.0);
    d0 = ivec4(round(a));
    a = (a - vec4(d0)) * 128.0;
    d1 = ivec4(round(a));
    d2 = ND == 3u ? ivec4(round((a - vec4(d1)) * 128.0)) : ivec4(0);
}

// Half h of word row r (x k4h..k4h+3 in v): ND int8 digits per element
// against its block's max |x|, OR'ed into the row's packed words (even
// elements [k0 k2 k4 k6], odd [k1 k3 k5 k7]: this half's two bytes of each),
// and their sum into the block's digit sum. From registers: x itself never
// goes through shared memory.
void digits(uint r, uint h, vec4 v) {
    ivec4 d0, d1, d2;
    split_digits(v, uintBitsToFloat(bmax[r / BR]), d0, d1, d2);
    uint sh = 16u * h;
    atomicOr(xq[r * XD], pack2(d0.x, d0.z) << sh);
    atomicOr(xq[r * XD + 1u], pack2(d0.y, d0.w) << sh);
    atomicOr(xq[r * XD + 2u], pack2(d1.x, d1.z) << sh);
    atomicOr(xq[r * XD + 3u], pack2(d1.y, d1.w) << sh);
    if (ND == 3u) {
        atomicOr(xq[r * XD + 4u], pack2(d2.x, d2.z) << sh);
        atomicOr(xq[r * XD + 5u], pack2(d2.y, d2.w) << sh);
    }
    ivec4 t = d0 * 16384 + d1 * 128 + d2;
    atomicAdd(bsum[r / BR], t.x + t.y + t.z + t.w);
}
#endif

#ifdef R1_DP
// Q4_PREQ (decode): the K split's digits, block maxima and digit sums as the
// producing matvec wrote them (Q4_XQOUT: x * norm weight, already quantized),
// and the whole vector's sum of squares from its blocks' parts. Scratch layout
// at p.woff (words): digits [R][XD], maxima [R/4], digit sums [R/4], sums of
// squares [R/4] (p.ssoff of them, at most WG). All loads issue before the
// first store.
#define XQW (XMAX / 8u * XD / WG)
float stage_preq(uint r0, uint nr) {
    uint l = gl_LocalInvocationIndex, R = p.K / 8u, b = p.woff;
    uint v[XQW];
    [[unroll]] for (uint j = 0u; j < XQW; j++) {
        uint i = l + j * WG;
        v[j] = i < nr * XD ? cnt[b + r0 * XD + i] : 0u;
    }
    bool blk = l < nr / 4u;
    uint mx = blk ? cnt[b + R * XD + r0 / 4u + l] : 0u;
    uint sm = blk ? cnt[b + R * XD + R / 4u + r0 / 4u + l] : 0u;
    float ss = l < p.ssoff ? part[b + R * XD + R / 2u + l] : 0.0;
    [[unroll]] for (uint j = 0u; j < XQW; j++) {
        uint i = l + j * WG;
        if (i < nr * XD) xq[i] = v[j];
    }
    if (blk) bmax[l] = mx, bsum[l] = int(sm);
    ss = wg_sum(ss); // uniform; its barriers also publish xq, bmax, bsum
    return ss;
}

// Q4_XQOUT (decode, one tile per workgroup): this tile's final outputs h (one
// per invocation below TC * 4) become the next matvec's staged x: u = h * wn
// (wn: the next RMSNorm's weight at p.soff1, type p.zoff1) as ND int8 digits
// per element against its 32-element block's max |u|, packed as stage()
// packs them, plus each block's digit sum and sum of h^2, into the scratch
// region at p.qoff1 (layout: stage_preq). Uniform control flow. With
// subgroups of 32 or more a block is 32 lanes: xor-shuffle reductions, no
// shared memory and no barrier (they sit on the dispatch's tail).
void emit_digits(uint tile, bool has, float h, float wn) {
    uint l = gl_LocalInvocationIndex, c0 = tile * (TC * 4u), c = c0 + l;
    uint b = p.qoff1, R = mN / 8u, rows = TC * 4u / 8u, nb = TC * 4u / 32u;
    float u = has ? h * wn : 0.0, m = abs(u), hh = h * h;
    ivec4 d0, d1, d2;
#if defined(R1_SUBGROUP)
    if (gl_SubgroupSize >= 32u) { // uniform
        for (uint s = 1u; s < 32u; s <<= 1) {
            m = max(m, subgroupShuffleXor(m, s));
            hh += subgroupShuffleXor(hh, s);
        }
        split_digits(vec4(u, 0.0, 0.0, 0.0), m, d0, d1, d2);
        int bs = d0.x * 16384 + d1.x * 128 + d2.x;
        for (uint s = 1u; s < 32u; s <<= 1) bs += subgroupShuffleXor(bs, s);
        uint sh = 8u * ((l >> 1) & 3u), o = b + (c / 8u) * XD + (l & 1u);
        uvec3 w = (uvec3(uint(d0.x), uint(d1.x), uint(d2.x)) & 0xFFu) << sh;
        w |= subgroupShuffleXor(w, 2u);
        w |= subgroupShuffleXor(w, 4u);
        if (has && (l & 6u) == 0u) {
            cnt[o] = w.x, cnt[o + 2u] = w.y;
            if (ND == 3u) cnt[o + 4u] = w.z;
        }
        if (has && (l & 31u) == 0u) {
            cnt[b + R * XD + c / 32u] = floatBitsToUint(m);
            cnt[b + R * XD + R / 4u + c / 32u] = uint(bs);
            part[b + R * XD + R / 2u + c / 32u] = hh;
        }
        return;
    }
#endif
    barrier(); // red[] was read by the reduction
    if (l < TC * 4u) red[0][l] = m, red[1][l] = hh;
    for (uint i = l; i < rows * XD; i += WG) xq[i] = 0u;
    if (l < nb) bsum[l] = 0;
    barrier();
    if (has) {
        uint q0 = l & ~31u;
        m = 0.0, hh = 0.0;
        for (uint j = 0u; j < 32u; j++) m = max(m, red[0][q0 + j]), hh += red[1][q0 + j];
        split_digits(vec4(u, 0.0, 0.0, 0.0), m, d0, d1, d2);
        uint e = l % 8u, o = (l / 8u) * XD + (e & 1u), sh = 8u * (e / 2u);
        atomicOr(xq[o], (uint(d0.x) & 0xFFu) << sh);
        atomicOr(xq[o + 2u], (uint(d1.x) & 0xFFu) << sh);
        if (ND == 3u) atomicOr(xq[o + 4u], (uint(d2.x) & 0xFFu) << sh);
        atomicAdd(bsum[l / 32u], d0.x * 16384 + d1.x * 128 + d2.x);
        if ((l & 31u) == 0u) {
            cnt[b + R * XD + c / 32u] = floatBitsToUint(m);
            part[b + R * XD + R / 2u + c / 32u] = hh;
        }
    }
    barrier();
    uint rl = min(rows, R - min(R, c0 / 8u)); // word rows of this tile inside the vector
    for (uint i = l; i < rl * XD; i += WG) cnt[b + (c0 / 8u) * XD + i] = xq[i];
    if (l < rl / 4u) cnt[b + R * XD + R / 4u + c0 / 32u + l] = uint(bsum[l]);
}
#endif

// Batch b (word rows b..b+3) of columns n..n+3: words, scales and zeros.
void load_batch(uint b, uint n, uint rowq, uint N4, out uvec4 w[BR], out vec4 s, out vec4 z) {
    [[unroll]] for (uint i = 0u; i < BR; i++) w[i] = qw4[rowq + (b + i) * N4];
    group_sz(b * 8u / p.G, n, s, z);
}

// The staging's loads of x and of the prologue's second input for elements
// [4i, 4i + 4) of the K split, i = l + it * WG: every load first (trip counts
// known at compile time: one memory round trip instead of one per iteration).
void stage_load(uint t, uint r0, uint nr, uint l, out vec4 xv[XIT], out vec4 uv[XIT]) {
    uint xo = t * p.K;
    bool pm = (p.flags & Q4_PERM) != 0u;
    [[unroll]] for (uint it = 0u; it < XIT; it++) {
        xv[it] = vec4(0.0), uv[it] = vec4(1.0);
        if (it * WG >= nr * 2u) continue; // uniform: the split ends before this pass
        uint i = l + it * WG, k = r0 * 8u + (i < nr * 2u ? i : 0u) * 4u;
        uvec4 kk = pm ? uvec4(perm[k], perm[k + 1u], perm[k + 2u], perm[k + 3u])
                      : uvec4(k, k + 1u, k + 2u, k + 3u);
        xv[it] = pm ? vec4(x[xo + kk.x], x[xo + kk.y], x[xo + kk.z], x[xo + kk.w])
                    : x4[(xo + k) >> 2];
        if (p.pro == PRO_NORM)
            uv[it] = vec4(LOADF(pw, p.woff + kk.x, p.wtype), LOADF(pw, p.woff + kk.y, p.wtype),
                          LOADF(pw, p.woff + kk.z, p.wtype), LOADF(pw, p.woff + kk.w, p.wtype));
        else if (p.pro == PRO_SILU)
            uv[it] = pm ? vec4(pb[xo + kk.x], pb[xo + kk.y], pb[xo + kk.z], pb[xo + kk.w])
                        : pb4[(xo + k) >> 2];
    }
}

// x through the prologue (norm: times its weight, the sum of squares kept;
// gate: silu(x) * up).
vec4 prologue(vec4 v, vec4 u, inout float ss) {
    if (p.pro == PRO_NORM) {
        ss += dot(v, v);
        v *= u;
    } else if (p.pro == PRO_SILU) {
        v = v / (1.0 + exp(-v)) * u;
    }
    return v;
}

#if defined(R1_DP) && defined(R1_SUBGROUP)
// Subgroup form (subgroups of 8 or more invocations with shuffles): element
// group i is invocation i of its subgroups' numbering, so a 32-element block
// is 8 neighbouring lanes and its max |x| and digit sum are xor-shuffle
// reductions, and each packed word is written whole by one lane of a pair: no
// shared atomics, no zeroing, one barrier instead of four. (H200: dispatch
// times as with atomics, tg64 +1%; the staging as a whole, knocked out, is
// worth 2-6 us a matvec: its loads and barriers, not the atomics.)
uint max8(uint v) {
    v = max(v, subgroupShuffleXor(v, 1u));
    v = max(v, subgroupShuffleXor(v, 2u));
    return max(v, subgroupShuffleXor(v, 4u));
}
int add8(int v) {
    v += subgroupShuffleXor(v, 1u);
    v += subgroupShuffleXor(v, 2u);
    return v + subgroupShuffleXor(v, 4u);
}

// Stages the K split's x (rows [r0, r0 + nr) of token t) in shared memory for
// every tile of the workgroup; returns the norm prologue's sum of squares.
float stage(uint t, uint r0, uint nr) {
    uint l = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
    vec4 xv[XIT], uv[XIT];
    stage_load(t, r0, nr, l, xv, uv);
    float ss = 0.0;
    [[unroll]] for (uint it = 0u; it < XIT; it++) {
        if (it * WG >= nr * 2u) break; // uniform: (H200 o and down: 2 of 4 passes)
        uint i = l + it * WG;
        bool on = i < nr * 2u; // whole blocks: nr is a multiple of 4 rows
        vec4 v = prologue(on ? xv[it] : vec4(0.0), uv[it], ss), av = abs(v);
        if (it == 0u && v.x != 1e-37) trace_mark(4u); // after x arrived
        uint mb = max8(floatBitsToUint(max(max(av.x, av.y), max(av.z, av.w))));
        ivec4 d0, d1, d2;
        split_digits(v, uintBitsToFloat(mb), d0, d1, d2);
        // per digit: this half's even-element bytes (low 16 bits) and odd ones
        uvec3 pw3 = uvec3(pack2(d0.x, d0.z) | pack2(d0.y, d0.w) << 16,
                          pack2(d1.x, d1.z) | pack2(d1.y, d1.w) << 16,
                          pack2(d2.x, d2.z) | pack2(d2.y, d2.w) << 16);
        uvec3 qw3 = subgroupShuffleXor(pw3, 1u); // the other half of the row
        ivec4 ds = d0 * 16384 + d1 * 128 + d2;
        int bs = add8(ds.x + ds.y + ds.z + ds.w);
        if (on) {
            uint r = i / 2u;
            if ((i & 1u) == 0u)
                [[unroll]] for (uint j = 0u; j < ND; j++)
                    xq[r * XD + 2u * j] = (pw3[j] & 0xFFFFu) | (qw3[j] << 16);
            else
                [[unroll]] for (uint j = 0u; j < ND; j++)
                    xq[r * XD + 2u * j + 1u] = (qw3[j] >> 16) | (pw3[j] & 0xFFFF0000u);
            if ((i & 7u) == 0u) bmax[i / 8u] = mb, bsum[i / 8u] = bs;
        }
    }
    trace_mark(5u);
    if (p.pro == PRO_NORM) ss = wg_sum(ss); // uniform branch: every invocation reduces
    barrier();
    return ss;
}
#else
// Stages the K split's x (rows [r0, r0 + nr) of token t) in shared memory for
// every tile of the workgroup; returns the norm prologue's sum of squares.
float stage(uint t, uint r0, uint nr) {
    uint l = gl_LocalInvocationIndex;
    const float sc[8] = float[8](1.0, 0.0625, 0.00390625, 0.000244140625, 0.0000152587890625,
                                 0.00390625, 0.000244140625, 0.0000152587890625);
    float ss = 0.0;
#ifdef R1_DP
    for (uint i = l; i < XMAX / 32u; i += 256u) bmax[i] = 0u, bsum[i] = 0;
    for (uint i = l; i < XMAX / 8u * XD; i += 256u) xq[i] = 0u;
    barrier();
#endif
    vec4 xv[XIT], uv[XIT];
    stage_load(t, r0, nr, l, xv, uv);
    [[unroll]] for (uint it = 0u; it < XIT; it++) {
        uint i = l + it * WG;
        if (i >= nr * 2u) break;
        vec4 v = prologue(xv[it], uv[it], ss);
#ifdef R1_DP
        xv[it] = v; // digits once the block maxima are known
        vec4 av = abs(v);
        atomicMax(bmax[i / 8u], floatBitsToUint(max(max(av.x, av.y), max(av.z, av.w))));
#else
        uint j = (i & 1u) * 4u;
        xs[i] = v * vec4(sc[j], sc[j + 1u], sc[j + 2u], sc[j + 3u]);
#endif
    }
    if (p.pro == PRO_NORM) ss = wg_sum(ss); // uniform branch: every invocation reduces
    barrier();
#ifdef R1_DP
    [[unroll]] for (uint it = 0u; it < XIT; it++) {
        uint i = l + it * WG;
        if (i >= nr * 2u) break;
        digits(i / 2u, i & 1u, xv[it]);
    }
#else
    for (uint i = l; i < nr; i += 256u) {
        vec4 a = xs[2u * i], b = xs[2u * i + 1u];
        xsum[i] = a.x + a.y * 16.0 + a.z * 256.0 + a.w * 4096.0 + b.x * 65536.0 + b.y * 256.0 +
                  b.z * 4096.0 + b.w * 65536.0;
    }
#endif
    barrier();
    return ss;
}
#endif

// This invocation's 4 columns over word rows [rs, re) of its slice; wa, sa, za
// hold the first batch, already loaded (the loads of the next batch are issued
// before the current one is multiplied).
vec4 stream(uint r0, uint rs, uint re, uint n, uint rowq, uint N4, bool live, uvec4 wa[BR],
            vec4 sa, vec4 za) {
    vec4 acc = vec4(0.0);
    for (uint b = rs; live && b < re; b += BR) {
        uvec4 wb[BR];
        vec4 sb = vec4(0.0), zb = vec4(0.0);
        if (b + BR < re) load_batch(b + BR, n, rowq, N4, wb, sb, zb); // in flight meanwhile
#ifdef R1_DP
        ivec4 s0 = ivec4(0), s1 = ivec4(0), s2 = ivec4(0);
        [[unroll]] for (uint i = 0u; i < BR; i++) { // unrolled: wa[] stays in registers
            uint r = (b + i - r0) * XD;
            uvec4 w = wa[i];
            uvec4 lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                s0[j] += sudot(xq[r], lo[j], 0) + sudot(xq[r + 1u], hi[j], 0);
                s1[j] += sudot(xq[r + 2u], lo[j], 0) + sudot(xq[r + 3u], hi[j], 0);
                if (ND == 3u)
                    s2[j] += sudot(xq[r + 4u], lo[j], 0) + sudot(xq[r + 5u], hi[j], 0);
            }
        }
        uint blk = (b - r0) / BR;
        float xscale = uintBitsToFloat(bmax[blk]) * (1.0 / 127.0);
        vec4 dq = xscale * (vec4(s0) + vec4(s1) * (1.0 / 128.0) + vec4(s2) * (1.0 / 16384.0));
        float sx = xscale * float(bsum[blk]) * (1.0 / 16384.0);
#else
        vec4 dq = vec4(0.0);
        float sx = 0.0;
        [[unroll]] for (uint i = 0u; i < BR; i++) { // unrolled: wa[] stays in registers
            uint r = b + i - r0;
            uvec4 w = wa[i];
            vec4 xa = xs[2u * r], xb = xs[2u * r + 1u];
            sx += xsum[r];
            dq += vec4(dot8(w.x, xa, xb), dot8(w.y, xa, xb), dot8(w.z, xa, xb), dot8(w.w, xa, xb));
        }
#endif
        acc += sa * (dq - za * sx);
        wa = wb;
        sa = sb;
        za = zb;
    }
    return acc;
}

// part[o + k * stride] summed for k = 0 .. ksplit - 1 in order, eight loads
// issued before the first is added (a plain loop waits for each in turn: one
// memory round trip per split).
float sum_parts(uint o, uint stride) {
    float s = 0.0;
    for (uint k0 = 0u; k0 < p.ksplit; k0 += 8u) {
        float v[8];
        [[unroll]] for (uint j = 0u; j < 8u; j++)
            v[j] = k0 + j < p.ksplit ? part[o + (k0 + j) * stride] : 0.0;
        [[unroll]] for (uint j = 0u; j < 8u; j++) s += v[j];
    }
    return s;
}

// Sums the slices of one tile and, with several K splits, the splits: the last
// workgroup of the tile to finish (an atomic counter) adds the partials in
// order, so results do not depend on scheduling. Uniform control flow.
void reduce_tile(uint t, uint ky, uint gt, uint tile, uint ntile, float ss, vec4 acc, float add,
                 float wn) {
    uint l = gl_LocalInvocationIndex, tc = l % TC, ts = l / TC;
    red[ts][tc * 4u] = acc.x;
    red[ts][tc * 4u + 1u] = acc.y;
    red[ts][tc * 4u + 2u] = acc.z;
    red[ts][tc * 4u + 3u] = acc.w;
    barrier();
    uint c = tile * (TC * 4u) + l;
    float v = 0.0;
    if (l < TC * 4u)
        [[unroll]] for (uint i = 0u; i < TS; i++) v += red[i][l];
    bool has = l < TC * 4u && c < mN;
    float h = 0.0;
    if (p.ksplit == 1u) {
        if (has) h = finish(t, c, v, ss, add);
#ifdef R1_DP
        if ((p.flags & Q4_XQOUT) != 0u) emit_digits(tile, has, h, wn);
#endif
        barrier(); // red[] is rewritten by the next tile
        chain_signal();
        return;
    }
    bool preq = (p.flags & Q4_PREQ) != 0u; // then ss is the whole vector's already
    if (has) part[p.poff + (t * p.ksplit + ky) * mAll + mCol + c] = v;
    if (l == 0u && p.pro == PRO_NORM && !preq)
        part[p.ssoff + (t * ntile + gt) * p.ksplit + ky] = ss;
    FENCE_BUF();
    BAR_BUF();
    if (l == 0u) {
        uint prev = CNT_ARRIVE(p.coff + t * ntile + gt);
        last_s = prev == p.ksplit - 1u;
        if (last_s) cnt[p.coff + t * ntile + gt] = 0u; // ready for the next call
    }
    BAR_BUF();
    trace_mark(6u);
    if (!last_s) return; // uniform: last_s is shared
    FENCE_BUF();
    if (has) {
        uint po = p.poff + t * p.ksplit * mAll + mCol + c, so = p.ssoff + (t * ntile + gt) * p.ksplit;
        float sst = p.pro != PRO_NORM ? 0.0 : preq ? ss : sum_parts(so, 1u);
        h = finish(t, c, sum_parts(po, mAll), sst, add);
    }
    trace_mark(7u);
#ifdef R1_DP
    if ((p.flags & Q4_XQOUT) != 0u) emit_digits(tile, has, h, wn);
#endif
    chain_signal();
}

// Tiles of the whole dispatch (all its matrices).
uint tiles_total() {
    uint tn = TC * 4u, n0 = (p.N + tn - 1u) / tn;
    if (p.nmat > 2u) return p.t2 + (p.n2 + tn - 1u) / tn;
    if (p.nmat > 1u) return p.t1 + (p.n1 + tn - 1u) / tn;
    return n0;
}

// Workgroup (x: a tile, or with R1_MT p.flags >> 8 consecutive tiles; y: K
// split; z: token row). R1_MT, for large dispatches, has 256-column tiles (64
// column invocations x 4 K slices, so each slice streams 4x longer without a
// restart and a warp reads 512 contiguous bytes a row) and may loop over
// several after one staging of x, so that the dispatch fits one wave of
// resident workgroups; it is a variant of its own because the loop costs
// registers (occupancy) that the one-tile form does not need. H200 14b
// gate+up: 64-column tiles, 4 a workgroup, 40.3 us; 256-column tiles 33.0 us.
void main() {
    trace_begin();
    uint l = gl_LocalInvocationIndex, tc = l % TC, ts = l / TC;
    uint ky = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    // uniform across the workgroup; a one-row grid (decode) skips the run buffer,
    // whose load would hold back the weight loads by a memory round trip
    if (gl_NumWorkGroups.z > 1u && t >= run.n_tokens) return;
    uint ntile = tiles_total();
#ifdef R1_MT
    uint tpw = max(1u, p.flags >> 8), gt = gl_WorkGroupID.x * tpw;
#else
    uint tpw = 1u, gt = gl_WorkGroupID.x;
#endif
    // rps and R are multiples of BR, so are slices and batches
    uint R = p.K / 8u, r0 = ky * p.rps, r1 = min(R, r0 + p.rps), nr = r1 - r0;
    uint per = (nr + TS * BR - 1u) / (TS * BR) * BR;
    uint rs = min(r1, r0 + ts * per), re = min(r1, rs + per);
    float ss = 0.0;
    for (uint i = 0u; i < tpw && gt + i < ntile; i++) { // uniform
        uint tile = select_matrix(gt + i);
        uint n = tile * (TC * 4u) + tc * 4u, N4 = mN >> 2, rowq = (mQoff >> 2) + (n >> 2);
        bool live = n < mN && rs < re;
        uvec4 wa[BR];
        vec4 sa = vec4(0.0), za = vec4(0.0);
        [[unroll]] for (uint j = 0u; j < BR; j++) wa[j] = uvec4(0u);
        if (live) load_batch(rs, n, rowq, N4, wa, sa, za); // in flight during the staging
        uint cl = tile * (TC * 4u) + l;
        // Q4_XQOUT: the next norm's weight of this column, also loaded early
        float wn = (p.flags & Q4_XQOUT) != 0u && l < TC * 4u && cl < mN
                       ? LOADF(nw, p.soff1 + cl, p.zoff1)
                       : 0.0;
        if (i == 0u) chain_wait(); // weights only above: activations below
        float add = l < TC * 4u ? addend(t, cl) : 0.0;
#ifdef R1_DP
        if (i == 0u) ss = (p.flags & Q4_PREQ) != 0u ? stage_preq(r0, nr) : stage(t, r0, nr);
#else
        if (i == 0u) ss = stage(t, r0, nr);
#endif
        if (i == 0u) trace_mark(2u);
        vec4 acc = stream(r0, rs, re, n, rowq, N4, live, wa, sa, za);
        if (i == 0u) trace_mark(3u);
        reduce_tile(t, ky, gt + i, tile, ntile, ss, acc, add, wn);
    }
    trace_flush(1u);
}
