#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
// Causal GQA attention for prompts on tensor cores (coopmat.glsl: KHR, NV or
// emulated), head dim 128, for the fp16 tensor-core mode (R1_VK_CM=1; the
// float32 modes keep attn_tiled.comp). A workgroup takes QB query rows of kv
// head g, flattened as t*R + r (R = H / KV); subgroup sg owns rows 16 sg to
// 16 sg + 15. Per tile of KB keys, K and V come through shared memory in fp16
// and S = Q.K^T is formed by 16x16x16 products into float32.
//
// The softmax takes two passes over the keys: the first finds each row's
// maximum m and sum l of exp(s - m); the second forms P = exp(S - m) / l in
// fp16 and accumulates O += P.V in the accumulators. The accumulators' element
// layout is the driver's, so a per-row rescale (the one-pass online softmax)
// would cost a round trip through shared memory each tile; the second pass
// costs S once more instead.
//
// Shared memory, uvec4 units (8 halves): Q [QB][HW], K [KB][HW], V [KB][HW],
// and per subgroup S [16][SW] floats, whose rows P [16][PW] halves overwrite
// once read. Rows are padded so that a column of lanes hits distinct banks.
// The softmax work is split between two lanes a row (H200 14b pp512: 9.4 ms
// with one lane a row). The next tile's K and V load into registers while the
// current one is multiplied (pp512 7.9 -> 6.4 ms; 162 -> 228 registers, two
// workgroups an SM still).
#define HD 128u
#ifdef R1_CM_EMU
#define SGS 2u // subgroups: lavapipe offers 32 KB of shared memory
#define KB 16u
#define SFR(X) X(0) // S fragments, KB / 16
#else
#define SGS 4u
#define KB 32u
#define SFR(X) X(0) X(1)
#endif
#define NT (32u * SGS)
#define QB (16u * SGS)
#define HW (HD / 8u + 1u) // uvec4 per Q, K, V row
#define SW (KB / 4u + 1u) // uvec4 per S row (floats)
#define PW (KB / 8u + 1u) // uvec4 per P row (halves), within an S row
#define K_OFF (QB * HW)
#define V_OFF (K_OFF + KB * HW)
#define S_OFF (V_OFF + KB * HW)
#define SM_SZ (S_OFF + SGS * 16u * SW) // KHR: 44 KB; emulated: 20 KB
#define HK (KB / 2u)                   // keys a lane scores in a tile
layout(local_size_x = NT) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { vec4 kc[]; };
layout(std430, binding = 3) readonly buffer VC { vec4 vc[]; };
layout(std430, binding = 4) writeonly buffer O { float o[]; };

// xh: where nonzero, the output goes to scratch word xh on in fp16 instead, as
// the next GEMM's x (its prep then has nothing to do; vk_plan_q4.c
// r1vk_cm_x_direct)
layout(std430, binding = 8) writeonly buffer XH { uint xh[]; };

layout(push_constant) uniform P {
    uint H, KV, hd; // hd == HD
    uint xh;
} p;

shared uvec4 sm[SM_SZ]; // with ms_s, checked in vk_pipeline.c fp16_only_ok
shared vec2 ms_s[SGS * 32u]; // pass 1: each lane's (max, sum) over its half tile

#include "coopmat.glsl"

#define OFR(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

uvec4 pack8(vec4 a, vec4 b) {
    return uvec4(packHalf2x16(a.xy), packHalf2x16(a.zw), packHalf2x16(b.xy), packHalf2x16(b.zw));
}

// Keys [k0, k0 + KB) of head g (K, and V with both) into registers: the next
// tile's loads are in flight while the current one is multiplied. Zeros past
// kmax: values there meet P = 0, and must not be NaN.
#define LKV (KB * HD / 8u / NT) // 8-element pieces an invocation moves per tile
void fetch_kv(uint k0, uint kmax, uint g, bool both, out vec4 kr[2u * LKV],
              out vec4 vr[2u * LKV]) {
    uint row4 = p.KV * (HD / 4u);
    [[unroll]] for (uint i = 0u; i < LKV; i++) {
        uint e = gl_LocalInvocationIndex + i * NT, j = e / (HD / 8u), c = e % (HD / 8u);
        uint key = k0 + j, at = key * row4 + g * (HD / 4u) + 2u * c;
        bool ok = key <= kmax;
        kr[2u * i] = ok ? kc[at] : vec4(0.0);
        kr[2u * i + 1u] = ok ? kc[at + 1u] : vec4(0.0);
        vr[2u * i] = ok && both ? vc[at] : vec4(0.0);
        vr[2u * i + 1u] = ok && both ? vc[at + 1u] : vec4(0.0);
    }
}

// ... and from registers into shared memory in fp16.
void store_kv(bool both, vec4 kr[2u * LKV], vec4 vr[2u * LKV]) {
    [[unroll]] for (uint i = 0u; i < LKV; i++) {
        uint e = gl_LocalInvocationIndex + i * NT, j = e / (HD / 8u), c = e % (HD / 8u);
        sm[K_OFF + j * HW + c] = pack8(kr[2u * i], kr[2u * i + 1u]);
        if (both) sm[V_OFF + j * HW + c] = pack8(vr[2u * i], vr[2u * i + 1u]);
    }
}

// S = Q.K^T for subgroup sg's 16 rows and the tile's KB keys, stored to its S
// rows in shared memory (K read by columns: K^T).
void scores(uint sg) {
    uint qa = sg * 16u * HW, so = S_OFF + sg * 16u * SW;
#define S_DECL(j) ACC s##j = CM_ZERO;
    SFR(S_DECL)
    [[unroll]] for (uint kk = 0u; kk < HD; kk += 16u) {
        HALF_A a;
        CM_LOAD_A(a, sm, qa + kk / 8u, HW);
#define S_MMA(j)                                                 \
    {                                                            \
        HALF_B b;                                                \
        CM_LOAD_BT(b, sm, K_OFF + (j) * 16u * HW + kk / 8u, HW); \
        s##j = CM_MMA(a, b, s##j);                               \
    }
        SFR(S_MMA)
    }
#define S_STORE(j) CM_STORE(s##j, sm, so + (j) * 4u, SW);
    SFR(S_STORE)
    SG_BARRIER();
}

float s_at(uint sg, uint r, uint j) {
    return uintBitsToFloat(sm[S_OFF + (sg * 16u + r) * SW + j / 4u][j % 4u]);
}

void main() {
    // Workgroups in launch order (x fastest) take the row blocks from the last,
    // which sees the most keys, to the first, kv heads fastest: the long ones
    // start in the first wave instead of the tail (H200 14b, 512 tokens: 131 ->
    // 98 us a layer, with the grid sized to the call's rows).
    uint l = gl_LocalInvocationIndex, R = p.H / p.KV, nb = gl_NumWorkGroups.x;
    uint w = gl_WorkGroupID.y * nb + gl_WorkGroupID.x, g = w % p.KV;
    uint F = run.n_tokens * R, f0 = (nb - 1u - w / p.KV) * QB;
    if (f0 >= F) return; // uniform across the workgroup
    uint sg = SG_ID, lane = SG_LANE;
    float scale = 1.0 / sqrt(float(HD));
    for (uint e = l; e < QB * HD / 8u; e += NT) { // Q, pre-scaled, in fp16
        uint r = e / (HD / 8u), c = e % (HD / 8u), f = f0 + r;
        uint qo = ((f / R) * p.H + g * R + f % R) * HD + 8u * c;
        vec4 a = vec4(0.0), b = vec4(0.0);
        if (f < F) {
            a = vec4(q[qo], q[qo + 1u], q[qo + 2u], q[qo + 3u]) * scale;
            b = vec4(q[qo + 4u], q[qo + 5u], q[qo + 6u], q[qo + 7u]) * scale;
        }
        sm[r * HW + c] = pack8(a, b);
    }
    // Lanes rl and rl + 16 both keep the softmax state of row 16 sg + rl, each
    // scoring half of a tile's keys (from jb).
    uint kmax = run.pos + (min(f0 + QB, F) - 1u) / R, rl = lane % 16u, jb = (lane / 16u) * HK;
    uint fr = f0 + sg * 16u + rl, ms = sg * 32u;
    int lim = fr < F ? int(run.pos + fr / R) : -1; // last key the row sees
    float m = -1e30, lsum = 0.0;
    vec4 kr[2u * LKV], vr[2u * LKV];
    fetch_kv(0u, kmax, g, false, kr, vr);
    for (uint k0 = 0u; k0 <= kmax; k0 += KB) { // pass 1: m and l
        barrier(); // the previous tile is used up (and Q is written)
        store_kv(false, kr, vr);
        barrier();
        // the next tile; after the last one, pass 2's first with its values
        bool last = k0 + KB > kmax;
        fetch_kv(last ? 0u : k0 + KB, kmax, g, last, kr, vr);
        scores(sg);
        float mx = m, sum = 0.0;
        for (uint j = jb; j < jb + HK; j++)
            if (int(k0 + j) <= lim) mx = max(mx, s_at(sg, rl, j));
        for (uint j = jb; j < jb + HK; j++)
            if (int(k0 + j) <= lim) sum += exp(s_at(sg, rl, j) - mx);
        ms_s[ms + lane] = vec2(mx, sum);
        SG_BARRIER();
        // both lanes merge the two halves in one order: the same state in each
        vec2 a = ms_s[ms + rl], b = ms_s[ms + rl + 16u];
        float mn = max(a.x, b.x);
        lsum = lsum * exp(m - mn) + (a.y * exp(a.x - mn) + b.y * exp(b.x - mn));
        m = mn;
    }
    float inv = lsum > 0.0 ? 1.0 / lsum : 0.0;
#define O_DECL(i) ACC o##i = CM_ZERO;
    OFR(O_DECL)
    uint pa = S_OFF + sg * 16u * SW; // P rows, over the S rows
    for (uint k0 = 0u; k0 <= kmax; k0 += KB) { // pass 2: O = P.V
        barrier();
        store_kv(true, kr, vr);
        barrier();
        if (k0 + KB <= kmax) fetch_kv(k0 + KB, kmax, g, true, kr, vr); // uniform
        scores(sg);
        float pr[HK];
        for (uint j = 0u; j < HK; j++)
            pr[j] = int(k0 + jb + j) <= lim ? exp(s_at(sg, rl, jb + j) - m) * inv : 0.0;
        SG_BARRIER(); // every lane has read its S row: P may overwrite them
        for (uint j = 0u; j < HK; j += 2u) {
            uint c = jb + j;
            sm[pa + rl * PW + c / 8u][(c % 8u) / 2u] = packHalf2x16(vec2(pr[j], pr[j + 1u]));
        }
        SG_BARRIER();
        [[unroll]] for (uint kk = 0u; kk < KB; kk += 16u) {
            HALF_A a;
            CM_LOAD_A(a, sm, pa + kk / 8u, PW);
#define O_MMA(i)                                                \
    {                                                           \
        HALF_B b;                                               \
        CM_LOAD_B(b, sm, V_OFF + kk * HW + (i) * 2u, HW);       \
        o##i = CM_MMA(a, b, o##i);                              \
    }
            OFR(O_MMA)
        }
    }
    // the output through shared memory: 16 x 128 floats a subgroup
    barrier(); // every subgroup is done with K, V and P
    uint ob = sg * 16u * (HD / 4u);
#define O_STORE(i) CM_STORE(o##i, sm, ob + (i) * 4u, HD / 4u);
    OFR(O_STORE)
    SG_BARRIER();
    if (p.xh != 0u) { // fp16 pairs
        for (uint e = lane; e < 8u * HD; e += 32u) {
            uint r = e / (HD / 2u), d = (e % (HD / 2u)) * 2u, f = f0 + sg * 16u + r;
            uvec4 v = sm[ob + r * (HD / 4u) + d / 4u];
            vec2 pr = uintBitsToFloat(d % 4u == 0u ? v.xy : v.zw);
            if (f < F) xh[p.xh + (((f / R) * p.H + g * R + f % R) * HD + d) / 2u] = packHalf2x16(pr);
        }
        return;
    }
    for (uint e = lane; e < 16u * HD; e += 32u) {
        uint r = e / HD, d = e % HD, f = f0 + sg * 16u + r;
        if (f < F)
            o[((f / R) * p.H + g * R + f % R) * HD + d] =
                uintBitsToFloat(sm[ob + r * (HD / 4u) + d / 4u][d % 4u]);
    }
}
