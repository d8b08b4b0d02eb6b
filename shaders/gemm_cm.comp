#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
// Tensor-core prompt GEMM (16x16x16 fp16 products accumulated in float32;
// VK_KHR_cooperative_matrix with R1_KHR, else VK_NV_cooperative_matrix, see
// coopmat.glsl): Y[T, N] = X[T, K] . W[K, N] + b, from the fp16
// operands q4_prep_cm.comp wrote to scratch. SGM x SGN subgroups of 32 share a
// TM x TN tile, FM x FN fragments of 16 x 16 each; K advances in TK steps
// through two shared-memory stages, one barrier a step.
//
// Three variants, recorded side by side for each GEMM by vk_plan_q4.c: each
// runs for prompt lengths T in (p.tlo, p.thi] and exits at once otherwise.
// - R1_CM_SPLIT, short prompts (too few tiles to fill the GPU): K in up to
//   p.ksplit parts when one row tile is live, fewer as rows grow (as
//   q4_gemm.comp); gl_WorkGroupID.x numbers (row tile, split) pairs. The
//   splits write partial tiles to scratch and the last to finish adds them in
//   split order (deterministic), with the bias.
// - The plain variant: 64 x 128 tiles, eight subgroups of 32 x 32, the loads of
//   the next two steps in flight.
// - R1_CM_BIG, long prompts: 128 x 128 tiles, four subgroups of 64 x 64 (half
//   the shared-memory reads per product), loads one step ahead (the registers
//   are spent on accumulators), 38 KB of shared memory.
// H200, 14b, pp128/256/512 tokens/s: plain 2,293/2,984/3,517, big
// 1,390/2,976/4,042. (One shader for split and plain: pp16/64/128
// 247/889/1,591 -> 357/1,095/1,899, but pp512 2,742 -> 2,425, its split code
// costing the long-prompt loop.) 128 x 128 with eight subgroups of 32 x 64:
// 2,791-3,009; 64 x 128 or 128 x 64 with four subgroups: 2,619-2,630.
//
// R1_CM_Q4 (the split and plain variants, fp16 mode): W dequantized from the
// GPTQ words on the way to shared memory (stored by columns) instead of read
// from the prep's fp16 copy, which short prompts spent most of their time on.
// vk_plan_q4.c uses them up to 128 tokens: at 256 the dequantization cost the
// plain variant 11% more than the copy, and the big tile 4,026 -> 3,658 at 512.
//
// R1_CM_EXACT: float32 accuracy from fp16 products. Each operand v also has a
// plane of remainders lo = fp16((v - hi) * 2^12), and x.w = xh.wh +
// 2^-12 (xl.wh + xh.wl) to about 2^-22 (xl.wl, 2^-24 smaller, is dropped).
#ifdef R1_CM_BIG
#define SGM 2u
#define SGN 2u
#define FM 4
#define FN 4
#define AHEAD1
#else
#define SGM 2u
#define SGN 4u
#define FM 2
#define FN 2
#endif
#define NT (32u * SGM * SGN) // invocations
#define TM (SGM * FM * 16u)
#define TN (SGN * FN * 16u)
#if defined(R1_CM_EXACT) || (defined(R1_CM_BIG) && defined(R1_CM_EMU))
#define TK 16u // R1_CM_BIG emulated: within lavapipe's 32 KB of shared memory
#else
#define TK 32u
#endif
#ifdef R1_CM_EXACT
#define NP 2u // operand planes: hi, lo
#else
#define NP 1u
#endif
#define AW ((TK + 8u) / 8u)  // uvec4 per x row in shared memory (8 halves of padding)
#define BW ((TN + 8u) / 8u)  // uvec4 per weight row
#define BT ((TK + 8u) / 8u)  // uvec4 per weight column (R1_CM_Q4: W by columns)
#define A_SZ (TM * AW)
#ifdef R1_CM_Q4
#ifdef R1_CM_EXACT
#error "R1_CM_Q4 has fp16 operands only"
#endif
#define B_SZ (TN * BT)
#define WPI (TK / 8u / (NT / TN)) // GPTQ words an invocation moves per step
#else
#define B_SZ (TK * BW)
#endif
#define STAGE (NP * (A_SZ + B_SZ))
#define AL (NP * TM * TK / 8u / NT) // uvec4 of x each invocation moves per step
#define BL (NP * TK * TN / 8u / NT) // ... of weights
#define LO_SCALE 4096.0
layout(local_size_x = NT) in;
#include "common.glsl"

// xoff, woff: word offsets of X and W in scratch (multiples of 4); ksplit, poff,
// coff: K splits for one row tile, their partials and counters; (tlo, thi]: the
// prompt lengths this variant runs for; wst: W's row length (N, or where the
// linears of one input have their weights side by side, all their columns:
// vk_plan_q4.c r1vk_plan_cm, woff then at this one's first)
#define Q4_PUSH_EXTRA uint xoff, woff, ksplit, poff, coff, tlo, thi, wst;
#include "q4.glsl" // the GPTQ weight (R1_CM_Q4 reads it), the bias

layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
layout(std430, binding = 8) readonly buffer S { uvec4 op[]; };
layout(std430, binding = 8) coherent buffer SP { float part[]; };
layout(std430, binding = 8) coherent buffer SP4 { vec4 part4[]; };
layout(std430, binding = 8) coherent buffer SN { uint cnt[]; };

shared bool last_s;

// fp16 operands; the epilogue reuses it for float results. Its size (with
// last_s) for R1_CM_BIG and R1_CM_Q4 is checked in vk_pipeline.c fp16_only_ok.
shared uvec4 sm[2u * STAGE];

#include "coopmat.glsl"

#ifdef R1_CM_Q4
// An invocation's share of a step's weights: column n0 + l % TN, WPI words
// from word l / TN * WPI of the step, and the group's scale and zero
// (vk_plan_q4.c: G % TK == 0, so a step lies in one group).
struct wreg {
    uint w[WPI];
    float s, z;
};
#else
struct wreg {
    uvec4 v[BL];
};
#endif

void load_step(uint k0, uint m0, uint n0, out uvec4 ra[AL], out wreg rb) {
    uint l = gl_LocalInvocationIndex, T = run.n_tokens, K = p.K, N = p.N;
    [[unroll]] for (uint i = 0u; i < AL; i++) {
        uint e = l + i * NT, pl = e / (TM * TK / 8u), r = e % (TM * TK / 8u);
        uint m = m0 + r / (TK / 8u), k = k0 + (r % (TK / 8u)) * 8u;
        uint at = (p.xoff + pl * T * K / 2u) / 4u + m * (K / 8u) + k / 8u;
        ra[i] = m < T && k < K ? op[at] : uvec4(0u);
    }
#ifdef R1_CM_Q4
    uint n = n0 + l % TN, g = k0 / p.G;
    bool ok = n < N;
    [[unroll]] for (uint i = 0u; i < WPI; i++) {
        uint kw = k0 / 8u + (l / TN) * WPI + i; // past K: x is zero there, and the products
        rb.w[i] = ok && kw < K / 8u ? qw[p.qoff + kw * N + n] : 0u;
    }
    rb.s = ok ? q4_scale(g, n) : 0.0;
    rb.z = ok ? q4_zero(g, n) : 0.0;
#else
    [[unroll]] for (uint i = 0u; i < BL; i++) {
        uint e = l + i * NT, pl = e / (TK * TN / 8u), r = e % (TK * TN / 8u);
        uint k = k0 + r / (TN / 8u), n = n0 + (r % (TN / 8u)) * 8u;
        uint at = (p.woff + pl * K * p.wst / 2u) / 4u + k * (p.wst / 8u) + n / 8u;
        rb.v[i] = k < K && n < N ? op[at] : uvec4(0u);
    }
#endif
}

void store_step(uint st, uvec4 ra[AL], wreg rb) {
    uint l = gl_LocalInvocationIndex, b = st * STAGE;
    [[unroll]] for (uint i = 0u; i < AL; i++) {
        uint e = l + i * NT, pl = e / (TM * TK / 8u), r = e % (TM * TK / 8u);
        sm[b + pl * A_SZ + (r / (TK / 8u)) * AW + r % (TK / 8u)] = ra[i];
    }
#ifdef R1_CM_Q4
    // s * (q - z) in float32, then fp16: as q4_prep_cm.comp, bit for bit
    [[unroll]] for (uint i = 0u; i < WPI; i++) {
        uvec4 h;
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            vec2 q = vec2((rb.w[i] >> (8u * j)) & 15u, (rb.w[i] >> (8u * j + 4u)) & 15u);
            h[j] = packHalf2x16(rb.s * (q - rb.z));
        }
        sm[b + A_SZ + (l % TN) * BT + (l / TN) * WPI + i] = h;
    }
#else
    [[unroll]] for (uint i = 0u; i < BL; i++) {
        uint e = l + i * NT, pl = e / (TK * TN / 8u), r = e % (TK * TN / 8u);
        sm[b + NP * A_SZ + pl * B_SZ + (r / (TN / 8u)) * BW + r % (TN / 8u)] = rb.v[i];
    }
#endif
}

// Fragments are named variables, not arrays: with arrays c[4][2] NVIDIA's
// compiler kept the accumulators in local memory (256 bytes a thread), which
// held the GEMM to ~30 TFLOPS. FRAGS(X) expands X(i, j) over a subgroup's FM x FN
// output fragments of 16 x 16.
#if FN == 2
#define FROW(X, i) X(i, 0) X(i, 1)
#define COLS(X) X(0) X(1)
#else
#define FROW(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define COLS(X) X(0) X(1) X(2) X(3)
#endif
#if FM == 2
#define FRAGS(X) FROW(X, 0) FROW(X, 1)
#define ROWS(X) X(0) X(1)
#else
#define FRAGS(X) FROW(X, 0) FROW(X, 1) FROW(X, 2) FROW(X, 3)
#define ROWS(X) X(0) X(1) X(2) X(3)
#endif

// Each subgroup stages one 16 x 16 fragment in its own 1 KB of shared memory,
// then writes the rows below T with the bias: 8 elements a lane, unrolled.
// R1_CM_SPLIT: to split kz's partial tile instead, without the bias.
void put_frag(ACC f, uint so, uint m0, uint n0, uint kz) {
    uint lane = SG_LANE, T = run.n_tokens;
    CM_STORE(f, sm, so, 4u);
    SG_BARRIER();
    [[unroll]] for (uint t = 0u; t < 8u; t++) {
        uint e = lane + t * 32u, m = m0 + e / 16u, n = n0 + e % 16u;
        float v = uintBitsToFloat(sm[so + e / 4u][e % 4u]);
#ifdef R1_CM_SPLIT
        if (m < T && n < p.N) part[p.poff + (kz * T + m) * p.N + n] = v;
#else
        if (m < T && n < p.N) y[m * p.N + n] = v + q4_bias(n);
#endif
    }
    SG_BARRIER();
}

#ifdef R1_CM_SPLIT
// After every split wrote its partial tile: the last to finish adds them in
// split order, with the bias, and readies the counter for the next call. Its
// loads are issued eight at a time (a plain loop waits for each in turn: one
// memory round trip per split and element).
void reduce_splits(uint T, uint ks, uint m0, uint n0) {
    uint l = gl_LocalInvocationIndex;
    memoryBarrierBuffer();
    barrier();
    uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + m0 / TM;
    if (l == 0u) {
        last_s = atomicAdd(cnt[p.coff + tile], 1u) == ks - 1u;
        if (last_s) cnt[p.coff + tile] = 0u;
    }
    barrier();
    if (!last_s) return; // uniform
    memoryBarrierBuffer();
    // rows of whole vec4s: N % 8 == 0 (models/qwen2.c), poff % 4 == 0 (vk_plan.c)
    uint sk = T * p.N / 4u, po = p.poff / 4u;
    for (uint e = l; e < TM * TN / 4u; e += 2u * NT) {
        uint e1 = e + NT, ma = m0 + e / (TN / 4u), na = n0 + (e % (TN / 4u)) * 4u;
        uint mb = m0 + e1 / (TN / 4u), nb = n0 + (e1 % (TN / 4u)) * 4u;
        bool oka = ma < T && na < p.N, okb = e1 < TM * TN / 4u && mb < T && nb < p.N;
        vec4 sa = vec4(0.0), sb = vec4(0.0);
        for (uint k0 = 0u; k0 < ks; k0 += 4u) { // four splits of both at a time, in order
            vec4 va[4], vb[4];
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint k = k0 + j;
                va[j] = oka && k < ks ? part4[po + (ma * p.N + na) / 4u + k * sk] : vec4(0.0);
                vb[j] = okb && k < ks ? part4[po + (mb * p.N + nb) / 4u + k * sk] : vec4(0.0);
            }
            [[unroll]] for (uint j = 0u; j < 4u; j++) sa += va[j], sb += vb[j];
        }
        if (oka)
            y4[(ma * p.N + na) / 4u] =
                sa + vec4(q4_bias(na), q4_bias(na + 1u), q4_bias(na + 2u), q4_bias(na + 3u));
        if (okb)
            y4[(mb * p.N + nb) / 4u] =
                sb + vec4(q4_bias(nb), q4_bias(nb + 1u), q4_bias(nb + 2u), q4_bias(nb + 3u));
    }
}
#endif

void main() {
    // x walks the row tiles: workgroups that run together share a weight tile in L2
    uint T = run.n_tokens, kb = 0u, ke = p.K, ks = 1u, kz = 0u, mt = gl_WorkGroupID.x;
    if (T <= p.tlo || T > p.thi) return; // uniform: another variant's length
#ifdef R1_CM_SPLIT
    uint kc = q4_k_chunk(T, TM, TK, p.ksplit, ks); // uniform
    mt = gl_WorkGroupID.x / ks, kz = gl_WorkGroupID.x % ks;
    kb = min(p.K, kz * kc), ke = min(p.K, kb + kc);
#endif
    uint m0 = mt * TM, n0 = gl_WorkGroupID.y * TN;
    if (m0 >= T) return; // uniform across the workgroup
    uint sg = SG_ID, wm = (sg / SGN) * (FM * 16u), wn = (sg % SGN) * (FN * 16u);
#define DECL(i, j) ACC c##i##j = CM_ZERO;
    FRAGS(DECL)
#ifdef R1_CM_EXACT
#define DECL_D(i, j) ACC d##i##j = CM_ZERO;
    FRAGS(DECL_D)
#endif
#ifdef R1_CM_Q4
#define CM_LOAD_W(m, sb, kk, n) CM_LOAD_BT(m, sm, sb + (n) * BT + (kk) / 8u, BT)
#else
#define CM_LOAD_W(m, sb, kk, n) CM_LOAD_B(m, sm, sb + (kk) * BW + (n) / 8u, BW)
#endif
#define KK_LOOP [[unroll]] for (uint kk = 0u; kk < TK; kk += 16u)
#define LOAD_A(i) \
    HALF_A a##i;  \
    CM_LOAD_A(a##i, sm, sa + (wm + i * 16u) * AW + kk / 8u, AW);
#define LOAD_B(j) \
    HALF_B b##j;  \
    CM_LOAD_W(b##j, sb, kk, wn + j * 16u);
#ifdef R1_CM_EXACT
#define LOAD_AL(i) \
    HALF_A al##i;  \
    CM_LOAD_A(al##i, sm, sa + A_SZ + (wm + i * 16u) * AW + kk / 8u, AW);
#define LOAD_BL(j) \
    HALF_B bl##j;  \
    CM_LOAD_B(bl##j, sm, sb + B_SZ + kk * BW + (wn + j * 16u) / 8u, BW);
#define LOAD_LO ROWS(LOAD_AL) COLS(LOAD_BL)
#define MMA(i, j)                           \
    c##i##j = CM_MMA(a##i, b##j, c##i##j);  \
    d##i##j = CM_MMA(al##i, b##j, d##i##j); \
    d##i##j = CM_MMA(a##i, bl##j, d##i##j);
#else
#define LOAD_LO
#define MMA(i, j) c##i##j = CM_MMA(a##i, b##j, c##i##j);
#endif
    // the products of one K step, from shared-memory stage st
#define PRODUCTS(st)                                                    \
    {                                                                   \
        uint sa = (st) * STAGE, sb = sa + NP * A_SZ;                    \
        KK_LOOP {                                                       \
            ROWS(LOAD_A) COLS(LOAD_B) LOAD_LO FRAGS(MMA)                \
        }                                                               \
    }
    uint nst = (ke - kb + TK - 1u) / TK;
#ifdef AHEAD1
    // Loads one step ahead (R1_CM_BIG: its 16 accumulators leave no registers
    // for a second set; with two, 3,716 against 4,042 tokens/s at pp512).
    uvec4 ra0[AL];
    wreg rb0;
    load_step(kb, m0, n0, ra0, rb0);
    store_step(0u, ra0, rb0);
    barrier();
    for (uint s = 0u; s < nst; s++) {
        if (s + 1u < nst) load_step(kb + (s + 1u) * TK, m0, n0, ra0, rb0);
        PRODUCTS(s & 1u)
        if (s + 1u < nst) store_step((s + 1u) & 1u, ra0, rb0);
        barrier();
    }
#else
    // Loads two steps ahead, in two register sets used in turn (the loop does
    // two steps a turn so that each set has a fixed name): the weights come
    // from DRAM, and one step of products did not cover their latency.
    uvec4 ra0[AL], ra1[AL];
    wreg rb0, rb1;
    load_step(kb, m0, n0, ra0, rb0);
    if (nst > 1u) load_step(kb + TK, m0, n0, ra1, rb1);
    store_step(0u, ra0, rb0);
    barrier();
    if (nst > 2u) load_step(kb + 2u * TK, m0, n0, ra0, rb0);
    for (uint s = 0u; s < nst; s += 2u) {
        PRODUCTS(0u)
        if (s + 1u < nst) store_step(1u, ra1, rb1);
        barrier();
        if (s + 1u >= nst) break;
        if (s + 3u < nst) load_step(kb + (s + 3u) * TK, m0, n0, ra1, rb1);
        PRODUCTS(1u)
        if (s + 2u < nst) store_step(0u, ra0, rb0);
        barrier();
        if (s + 4u < nst) load_step(kb + (s + 4u) * TK, m0, n0, ra0, rb0);
    }
#endif
    uint so = sg * 64u, fm = m0 + wm, fn = n0 + wn;
#ifdef R1_CM_EXACT
#define PUT(i, j) \
    put_frag(CM_AXPY(c##i##j, d##i##j, float(1.0 / LO_SCALE)), so, fm + i * 16u, fn + j * 16u, \
             kz);
#else
#define PUT(i, j) put_frag(c##i##j, so, fm + i * 16u, fn + j * 16u, kz);
#endif
    FRAGS(PUT)
#ifdef R1_CM_SPLIT
    reduce_splits(T, ks, m0, n0);
#endif
}
