#version 450
#extension GL_GOOGLE_include_directive : require
// GPTQ int4 matrix-matrix product for prompts on the transposed layout
// (R1_VK_LAYOUT=t, see q4t_matvec.comp): Y[T, N] = X[T, K] . W[K, N] + b.
// 64x64 output tiles, K in steps of 32: the x tile and the dequantized weight
// tile go through shared memory, each invocation accumulates a 4x4 block.
// Weights are dequantized exactly as the reference does, s * (q - z) in float.
#define TM 64u
#define TN 64u
#define TK 32u
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer QW { uvec4 qw4[]; };
layout(std430, binding = 4) readonly buffer SZ { uint sz[]; };
layout(std430, binding = 5) readonly buffer PM { uint perm[]; };
layout(std430, binding = 6) readonly buffer BI { uint bias[]; };
#define Q4_BIAS 1u
#define Q4_PERM 4u
layout(push_constant) uniform P {
    uint K, N, G;
    uint flags;
    uint btype, boff;
} p;
float q4_bias(uint n) {
    return (p.flags & Q4_BIAS) != 0u ? LOADF(bias, p.boff + n, p.btype) : 0.0;
}

shared float xs[TK][TM + 4u];
shared float ws[TK][TN + 4u];

void main() {
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u;
    uint n0 = gl_WorkGroupID.x * TN, m0 = gl_WorkGroupID.y * TM;
    uint T = run.n_tokens;
    if (m0 >= T) return; // uniform across the workgroup
    float acc[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint e = l; e < TM * TK; e += 256u) {
            uint m = e / TK, kk = e % TK, k = k0 + kk;
            float v = 0.0;
            if (m0 + m < T && k < p.K)
                v = x[(m0 + m) * p.K + ((p.flags & Q4_PERM) != 0u ? perm[k] : k)];
            xs[kk][m] = v;
        }
        if (l < TN) { // one 32-element chunk of column n (K % 32 == 0, G % 32 == 0)
            uint n = n0 + l;
            if (n < p.N) {
                uint C = p.K / 32u, szw = sz[n * (p.K / p.G) + k0 / p.G];
                uvec4 w = qw4[n * C + k0 / 32u];
                float s = unpackHalf2x16(szw).x, z = float(szw >> 16);
                for (uint j = 0u; j < 32u; j++)
                    ws[j][l] = s * (float((w[j / 8u] >> (4u * (j % 8u))) & 15u) - z);
            } else {
                for (uint j = 0u; j < 32u; j++) ws[j][l] = 0.0;
            }
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            vec4 a = vec4(xs[kk][ty * 4u], xs[kk][ty * 4u + 1u], xs[kk][ty * 4u + 2u], xs[kk][ty * 4u + 3u]);
            vec4 b = vec4(ws[kk][tx * 4u], ws[kk][tx * 4u + 1u], ws[kk][tx * 4u + 2u], ws[kk][tx * 4u + 3u]);
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + ty * 4u + i;
        if (m >= T) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint n = n0 + tx * 4u + j;
            if (n < p.N) y[m * p.N + n] = acc[i][j] + q4_bias(n);
        }
    }
}
