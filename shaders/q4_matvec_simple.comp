#version 450
#extension GL_GOOGLE_include_directive : require
// GPTQ int4 matrix-vector product, simple form (used when an imported weight is
// not 16-byte aligned for the fast q4_matvec): y[t, n] = x[t, :] . W[:, n] + b[n].
// A workgroup owns 32 consecutive columns (one per invocation, so each word
// row is one coalesced 128-byte read) and splits K into 8 contiguous slices;
// the slices' partial sums meet in shared memory. The zero point is folded out
// of the inner loop: per group, s * (sum x*q - z * sum x).
#define CW 32u
#define KS 8u
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
#include "q4.glsl"

shared float part[KS][CW];

float dot8(uint w, vec4 a, vec4 b) {
    return a.x * float(w & 15u) + a.y * float((w >> 4) & 15u) + a.z * float((w >> 8) & 15u) +
           a.w * float((w >> 12) & 15u) + b.x * float((w >> 16) & 15u) +
           b.y * float((w >> 20) & 15u) + b.z * float((w >> 24) & 15u) + b.w * float(w >> 28);
}

void main() {
    uint c = gl_LocalInvocationIndex % CW, s = gl_LocalInvocationIndex / CW;
    uint n = gl_WorkGroupID.x * CW + c, t = gl_WorkGroupID.y;
    if (t >= run.n_tokens) return; // uniform across the workgroup
    uint R = p.K / 8u, r0 = s * R / KS, r1 = (s + 1u) * R / KS;
    uint xo = t * p.K;
    float acc = 0.0;
    if (n < p.N) {
        uint r = r0;
        while (r < r1) {
            uint g = r * 8u / p.G;
            uint rend = min(r1, (g + 1u) * p.G / 8u);
            float dq = 0.0, sx = 0.0;
            for (; r < rend; r++) {
                vec4 a, b;
                if ((p.flags & Q4_PERM) != 0u) {
                    uint k = r * 8u;
                    a = vec4(x[xo + perm[k]], x[xo + perm[k + 1u]], x[xo + perm[k + 2u]],
                             x[xo + perm[k + 3u]]);
                    b = vec4(x[xo + perm[k + 4u]], x[xo + perm[k + 5u]], x[xo + perm[k + 6u]],
                             x[xo + perm[k + 7u]]);
                } else {
                    a = x4[(xo >> 2) + r * 2u];
                    b = x4[(xo >> 2) + r * 2u + 1u];
                }
                dq += dot8(qw[p.qoff + r * p.N + n], a, b);
                sx += (a.x + a.y + a.z + a.w) + (b.x + b.y + b.z + b.w);
            }
            acc += q4_scale(g, n) * (dq - q4_zero(g, n) * sx);
        }
    }
    part[s][c] = acc;
    barrier();
    if (s == 0u && n < p.N) {
        float v = 0.0;
        for (uint i = 0u; i < KS; i++) v += part[i][c];
        y[t * p.N + n] = v + q4_bias(n);
    }
}
