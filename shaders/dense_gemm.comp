#version 450
#extension GL_GOOGLE_include_directive : require
// Dense matrix-matrix product for the output head with several rows:
// Y[r, n] = X[first + r, :] . w[n, :], 64x64 tiles through shared memory.
#define TM 64u
#define TN 64u
#define TK 32u
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer W { uint w[]; };

layout(push_constant) uniform P {
    uint K, N;
    uint mode;
    uint wtype, woff;
    uint clo, chi; // runs for row counts in (clo, chi] (vk_plan.c matmul)
} p;

shared float xs[TK][TM + 4u];
shared float ws[TK][TN + 4u];

void main() {
    uint first, cnt;
    rows_of(p.mode, first, cnt);
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u;
    uint n0 = gl_WorkGroupID.x * TN, m0 = gl_WorkGroupID.y * TM;
    if (m0 >= cnt || cnt <= p.clo || cnt > p.chi) return; // uniform across the workgroup
    float acc[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        for (uint e = l; e < TM * TK; e += 256u) {
            uint m = e / TK, kk = e % TK, k = k0 + kk;
            xs[kk][m] = m0 + m < cnt && k < p.K ? x[(first + m0 + m) * p.K + k] : 0.0;
            uint n = n0 + m; // the same walk covers the weight tile: TN == TM
            ws[kk][m] = n < p.N && k < p.K ? LOADF(w, p.woff + n * p.K + k, p.wtype) : 0.0;
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
        if (m >= cnt) continue;
        for (uint j = 0u; j < 4u; j++) {
            uint n = n0 + tx * 4u + j;
            if (n < p.N) y[m * p.N + n] = acc[i][j];
        }
    }
}
