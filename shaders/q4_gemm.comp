#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// GPTQ int4 matrix-matrix product for prompts on the checkpoint layout:
// Y[T, N] = X[T, K] . W[K, N] + b. Workgroup tile: 64 rows x 128 columns, K in
// steps of 32. Each invocation accumulates 4 rows x 8
// columns (32 products per 3 16-byte shared reads); the next step's x and
// weight words are loaded into registers while the current step is multiplied.
// Weights are dequantized exactly as the reference does, s * (q - z) in float.
// The loops over registers carry [[unroll]] (H200: 115 -> 111 registers, the
// GEMM 502 -> 475 ms on a 512-token 14b prompt).
// Short prompts (few 64-row tiles, so few workgroups) also split K over
// gl_WorkGroupID.z: up to p.ksplit parts when one row tile is live, fewer as
// rows grow (none from p.ksplit row tiles on); the splits write partial tiles
// to scratch and the last to finish (an atomic counter) adds them in order,
// so results do not depend on scheduling.
// (The transposed layout's GEMM is q4t_gemm.comp.)
#define Q4_PUSH_EXTRA uint ksplit, poff, coff;
#define TM 64u
#define TN 128u
#define TK 32u
#define XV (TM * TK / 4u / 256u) // x vec4s loaded per invocation and step
layout(local_size_x = 256) in;
#include "common.glsl"
#include "q4.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 8) coherent buffer SP { float part[]; };
layout(std430, binding = 8) coherent buffer SP4 { vec4 part4[]; };
layout(std430, binding = 8) coherent buffer SN { uint cnt[]; };

shared vec4 xs[TK][TM / 4u + 1u]; // [k][m], padded against bank conflicts on the stores
shared vec4 ws[TK][TN / 4u];      // [k][n], dequantized
shared bool last_s;

// Step k0's x and weights for this invocation, stored as whole vec4s: x of
// rows 4 m4 .. 4 m4 + 3 at one k (XV of them), and for invocations below 128
// one word row r of four columns 4 cq .. 4 cq + 3 with their scales and zeros.
void load_step(uint k0, uint ke, uint m0, uint n0, out vec4 xr[XV], out uvec4 w, out vec4 s,
               out vec4 z) {
    uint l = gl_LocalInvocationIndex, T = run.n_tokens;
    bool pm = (p.flags & Q4_PERM) != 0u;
    for (uint i = 0u; i < XV; i++) {
        uint e = l + i * 256u, m = m0 + 4u * (e / TK), k = k0 + e % TK;
        uint kx = pm && k < p.K ? perm[k] : k;
        for (uint q = 0u; q < 4u; q++)
            xr[i][q] = m + q < T && k < ke ? x[(m + q) * p.K + kx] : 0.0;
    }
    uint r = k0 / 8u + (l / 32u) % 4u, n = n0 + 4u * (l % 32u), R = ke / 8u;
    uint g = r * 8u / p.G;
    for (uint q = 0u; q < 4u; q++) {
        bool ok = l < 128u && r < R && n + q < p.N; // rows past K, columns past N: zeros
        w[q] = ok ? qw[p.qoff + r * p.N + n + q] : 0u;
        s[q] = ok ? q4_scale(g, n + q) : 0.0;
        z[q] = ok ? q4_zero(g, n + q) : 0.0;
    }
}

#ifdef R1_KO_F16 // knock-out (R1_SHADER_DEFS): operands rounded to fp16, as R1_VK_CM=1's
vec4 f16r(vec4 v) {
    return vec4(unpackHalf2x16(packHalf2x16(v.xy)), unpackHalf2x16(packHalf2x16(v.zw)));
}
#else
#define f16r(v) (v)
#endif
void store_step(vec4 xr[XV], uvec4 w, vec4 s, vec4 z) {
    uint l = gl_LocalInvocationIndex;
    for (uint i = 0u; i < XV; i++) {
        uint e = l + i * 256u;
        xs[e % TK][e / TK] = f16r(xr[i]);
    }
    if (l < 128u) {
        uint r = l / 32u, cq = l % 32u;
        for (uint j = 0u; j < 8u; j++)
            ws[r * 8u + j][cq] = f16r(s * (vec4((w >> (4u * j)) & 15u) - z));
    }
}

// Split ks > 1: this tile's partial sums to scratch; the last split to finish
// adds all of them in split order. Returns whether this workgroup holds the
// sums in acc (uniform).
bool reduce_splits(uint T, uint ks, uint m0, uint n0, inout vec4 acc[4][2]) {
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u, kz = gl_WorkGroupID.z;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint h = 0u; h < 2u; h++)
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint m = m0 + ty * 4u + i, n = n0 + h * 64u + tx * 4u + j;
                if (m < T && n < p.N) part[p.poff + (kz * T + m) * p.N + n] = acc[i][h][j];
            }
    memoryBarrierBuffer();
    barrier();
    uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (l == 0u) {
        uint prev = atomicAdd(cnt[p.coff + tile], 1u);
        last_s = prev == ks - 1u;
        if (last_s) cnt[p.coff + tile] = 0u; // ready for the next call
    }
    barrier();
    if (!last_s) return false;
    memoryBarrierBuffer();
    // a split's eight vec4s loaded together (N % 8 == 0, poff % 4 == 0: vk_plan.c),
    // not one memory round trip per element and split
    [[unroll]] for (uint i = 0u; i < 4u; i++) acc[i][0] = acc[i][1] = vec4(0.0);
    for (uint k = 0u; k < ks; k++) {
        vec4 v[4][2];
        [[unroll]] for (uint i = 0u; i < 4u; i++)
            [[unroll]] for (uint h = 0u; h < 2u; h++) {
                uint m = m0 + ty * 4u + i, n = n0 + h * 64u + tx * 4u;
                bool ok = m < T && n < p.N;
                v[i][h] = ok ? part4[(p.poff + (k * T + m) * p.N + n) / 4u] : vec4(0.0);
            }
        [[unroll]] for (uint i = 0u; i < 4u; i++) acc[i][0] += v[i][0], acc[i][1] += v[i][1];
    }
    return true;
}

void main() {
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u;
    uint n0 = gl_WorkGroupID.x * TN, m0 = gl_WorkGroupID.y * TM;
    uint T = run.n_tokens, ks, kc = q4_k_chunk(T, TM, TK, p.ksplit, ks); // uniform
    uint kb = min(p.K, gl_WorkGroupID.z * kc), ke = min(p.K, kb + kc);
    if (m0 >= T || gl_WorkGroupID.z >= ks) return; // uniform across the workgroup
    vec4 acc[4][2];
    [[unroll]] for (uint i = 0u; i < 4u; i++) acc[i][0] = acc[i][1] = vec4(0.0);

    vec4 xr[XV], s, z;
    uvec4 w;
    load_step(kb, ke, m0, n0, xr, w, s, z);
    for (uint k0 = kb; k0 < ke; k0 += TK) {
        store_step(xr, w, s, z);
        barrier();
        if (k0 + TK < ke) load_step(k0 + TK, ke, m0, n0, xr, w, s, z); // in flight meanwhile
        [[unroll]] for (uint kk = 0u; kk < TK; kk++) {
            vec4 a = xs[kk][ty], b0 = ws[kk][tx], b1 = ws[kk][16u + tx];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                acc[i][0] += a[i] * b0;
                acc[i][1] += a[i] * b1;
            }
        }
        barrier();
    }
    if (ks > 1u && !reduce_splits(T, ks, m0, n0, acc)) return;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint h = 0u; h < 2u; h++)
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint m = m0 + ty * 4u + i, n = n0 + h * 64u + tx * 4u + j;
                if (n >= p.N) continue;
                float b = q4_bias(n);
                if (m < T) y[m * p.N + n] = acc[i][h][j] + b;
            }
}
