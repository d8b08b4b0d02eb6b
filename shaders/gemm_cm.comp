#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
// Tensor-core prompt GEMM (VK_NV_cooperative_matrix, 16x16x16 fp16 products
// accumulated in float32): Y[T, N] = X[T, K] . W[K, N] + b, from the fp16
// operands q4_prep_cm.comp wrote to scratch. Eight subgroups of 32 share a
// TM x 128 tile; K advances in TK steps through two shared-memory stages, so
// one barrier per step and the next step's loads fly during the products.
//
// R1_CM_EXACT: float32 accuracy from fp16 products. Each operand v also has a
// plane of remainders lo = fp16((v - hi) * 2^12), and x.w = xh.wh +
// 2^-12 (xl.wh + xh.wl) to about 2^-22 (xl.wl, 2^-24 smaller, is dropped).
// Loops over fragments carry [[unroll]], so that arrays of cooperative
// matrices are never indexed at run time.
// Opt-in (R1_VK_CM): on the H200 the products themselves ran at ~30 TFLOPS
// (knock-outs: 507 ms of GEMM, 486 without fragment loads, 463 without global
// loads), no faster than q4_gemm.comp.
#ifdef R1_CM_EXACT
#define TM 64u
#define TK 16u
#define FM 2u // 16-row fragments per subgroup
#define NP 2u // operand planes: hi, lo
#else
#define TM 128u
#define TK 32u
#define FM 4u
#define NP 1u
#endif
#define TN 128u
#define FN 2u                // 16-column fragments per subgroup
#define AW ((TK + 8u) / 8u)  // uvec4 per x row in shared memory (8 halves of padding)
#define BW ((TN + 8u) / 8u)  // uvec4 per weight row
#define A_SZ (TM * AW)
#define B_SZ (TK * BW)
#define STAGE (NP * (A_SZ + B_SZ))
#define AL (NP * TM * TK / 8u / 256u) // uvec4 of x each invocation moves per step
#define BL (NP * TK * TN / 8u / 256u) // ... of weights
#define LO_SCALE 4096.0
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 7) readonly buffer BI { uint bias[]; };
layout(std430, binding = 8) readonly buffer S { uvec4 op[]; };

layout(push_constant) uniform P {
    uint K, N, flags; // flags: 1 bias
    uint boff, btype;
    uint xoff, woff; // word offsets of X and W in scratch (multiples of 4)
} p;

shared uvec4 sm[2u * STAGE]; // fp16 operands; the epilogue reuses it for float results

#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

void load_step(uint k0, uint m0, uint n0, out uvec4 ra[AL], out uvec4 rb[BL]) {
    uint l = gl_LocalInvocationIndex, T = run.n_tokens, K = p.K, N = p.N;
    [[unroll]] for (uint i = 0u; i < AL; i++) {
        uint e = l + i * 256u, pl = e / (TM * TK / 8u), r = e % (TM * TK / 8u);
        uint m = m0 + r / (TK / 8u), k = k0 + (r % (TK / 8u)) * 8u;
        uint at = (p.xoff + pl * T * K / 2u) / 4u + m * (K / 8u) + k / 8u;
        ra[i] = m < T && k < K ? op[at] : uvec4(0u);
    }
    [[unroll]] for (uint i = 0u; i < BL; i++) {
        uint e = l + i * 256u, pl = e / (TK * TN / 8u), r = e % (TK * TN / 8u);
        uint k = k0 + r / (TN / 8u), n = n0 + (r % (TN / 8u)) * 8u;
        uint at = (p.woff + pl * K * N / 2u) / 4u + k * (N / 8u) + n / 8u;
        rb[i] = k < K && n < N ? op[at] : uvec4(0u);
    }
}

void store_step(uint st, uvec4 ra[AL], uvec4 rb[BL]) {
    uint l = gl_LocalInvocationIndex, b = st * STAGE;
    [[unroll]] for (uint i = 0u; i < AL; i++) {
        uint e = l + i * 256u, pl = e / (TM * TK / 8u), r = e % (TM * TK / 8u);
        sm[b + pl * A_SZ + (r / (TK / 8u)) * AW + r % (TK / 8u)] = ra[i];
    }
    [[unroll]] for (uint i = 0u; i < BL; i++) {
        uint e = l + i * 256u, pl = e / (TK * TN / 8u), r = e % (TK * TN / 8u);
        sm[b + NP * A_SZ + pl * B_SZ + (r / (TN / 8u)) * BW + r % (TN / 8u)] = rb[i];
    }
}

void main() {
    // x walks the row tiles: workgroups that run together share a weight tile in L2
    uint m0 = gl_WorkGroupID.x * TM, n0 = gl_WorkGroupID.y * TN, T = run.n_tokens;
    if (m0 >= T) return; // uniform across the workgroup
    uint sg = gl_SubgroupID, wm = (sg >> 2u) * (TM / 2u), wn = (sg & 3u) * 32u;
    ACC c[FM][FN];
#ifdef R1_CM_EXACT
    ACC d[FM][FN];
#endif
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            c[i][j] = ACC(0.0);
#ifdef R1_CM_EXACT
            d[i][j] = ACC(0.0);
#endif
        }
    uvec4 ra[AL], rb[BL];
    load_step(0u, m0, n0, ra, rb);
    store_step(0u, ra, rb);
    barrier();
    uint st = 0u;
    for (uint k0 = 0u; k0 < p.K; k0 += TK, st ^= 1u) {
        bool more = k0 + TK < p.K;
        if (more) load_step(k0 + TK, m0, n0, ra, rb); // in flight during the products
        uint a0 = st * STAGE, b0 = a0 + NP * A_SZ;
        [[unroll]] for (uint kk = 0u; kk < TK; kk += 16u) {
            HALF a[NP][FM], b[NP][FN];
            [[unroll]] for (uint q = 0u; q < NP; q++) {
                [[unroll]] for (uint i = 0u; i < FM; i++)
                    coopMatLoadNV(a[q][i], sm, a0 + q * A_SZ + (wm + i * 16u) * AW + kk / 8u, AW,
                                  false);
                [[unroll]] for (uint j = 0u; j < FN; j++)
                    coopMatLoadNV(b[q][j], sm, b0 + q * B_SZ + kk * BW + (wn + j * 16u) / 8u, BW,
                                  false);
            }
            [[unroll]] for (uint i = 0u; i < FM; i++)
                [[unroll]] for (uint j = 0u; j < FN; j++) {
                    c[i][j] = coopMatMulAddNV(a[0][i], b[0][j], c[i][j]);
#ifdef R1_CM_EXACT
                    d[i][j] = coopMatMulAddNV(a[1][i], b[0][j], d[i][j]);
                    d[i][j] = coopMatMulAddNV(a[0][i], b[1][j], d[i][j]);
#endif
                }
        }
        if (more) store_step(st ^ 1u, ra, rb);
        barrier();
    }
    // Epilogue: each subgroup stages one 16 x 16 fragment at a time in its own
    // 1 KB of shared memory, then writes the rows below T with the bias.
    uint lane = gl_SubgroupInvocationID, so = sg * 64u;
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
#ifdef R1_CM_EXACT
            coopMatStoreNV(c[i][j] + d[i][j] * float(1.0 / LO_SCALE), sm, so, 4u, false);
#else
            coopMatStoreNV(c[i][j], sm, so, 4u, false);
#endif
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += gl_SubgroupSize) {
                uint m = m0 + wm + i * 16u + e / 16u, n = n0 + wn + j * 16u + e % 16u;
                if (m >= T || n >= p.N) continue;
                float b = (p.flags & 1u) != 0u ? LOADF(bias, p.boff + n, p.btype) : 0.0;
                y[m * p.N + n] = uintBitsToFloat(sm[so + e / 4u][e % 4u]) + b;
            }
            subgroupBarrier();
        }
}
