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
// (The transposed layout's GEMM is q4t_gemm.comp.)
#define TM 64u
#define TN 128u
#define TK 32u
#define XV (TM * TK / 4u / 256u) // x vec4s loaded per invocation and step
layout(local_size_x = 256) in;
#include "common.glsl"
#include "q4.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

shared vec4 xs[TK][TM / 4u + 1u]; // [k][m], padded against bank conflicts on the stores
shared vec4 ws[TK][TN / 4u];      // [k][n], dequantized

// Step k0's x and weights for this invocation, stored as whole vec4s: x of
// rows 4 m4 .. 4 m4 + 3 at one k (XV of them), and for invocations below 128
// one word row r of four columns 4 cq .. 4 cq + 3 with their scales and zeros.
void load_step(uint k0, uint m0, uint n0, out vec4 xr[XV], out uvec4 w, out vec4 s,
               out vec4 z) {
    uint l = gl_LocalInvocationIndex, T = run.n_tokens;
    bool pm = (p.flags & Q4_PERM) != 0u;
    for (uint i = 0u; i < XV; i++) {
        uint e = l + i * 256u, m = m0 + 4u * (e / TK), k = k0 + e % TK;
        uint kx = pm && k < p.K ? perm[k] : k;
        for (uint q = 0u; q < 4u; q++)
            xr[i][q] = m + q < T && k < p.K ? x[(m + q) * p.K + kx] : 0.0;
    }
    uint r = k0 / 8u + (l / 32u) % 4u, n = n0 + 4u * (l % 32u), R = p.K / 8u;
    uint g = r * 8u / p.G;
    for (uint q = 0u; q < 4u; q++) {
        bool ok = l < 128u && r < R && n + q < p.N; // rows past K, columns past N: zeros
        w[q] = ok ? qw[p.qoff + r * p.N + n + q] : 0u;
        s[q] = ok ? q4_scale(g, n + q) : 0.0;
        z[q] = ok ? q4_zero(g, n + q) : 0.0;
    }
}

void store_step(vec4 xr[XV], uvec4 w, vec4 s, vec4 z) {
    uint l = gl_LocalInvocationIndex;
    for (uint i = 0u; i < XV; i++) {
        uint e = l + i * 256u;
        xs[e % TK][e / TK] = xr[i];
    }
    if (l < 128u) {
        uint r = l / 32u, cq = l % 32u;
        for (uint j = 0u; j < 8u; j++)
            ws[r * 8u + j][cq] = s * (vec4((w >> (4u * j)) & 15u) - z);
    }
}

void main() {
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u;
    uint n0 = gl_WorkGroupID.x * TN, m0 = gl_WorkGroupID.y * TM;
    uint T = run.n_tokens;
    if (m0 >= T) return; // uniform across the workgroup
    vec4 acc[4][2];
    [[unroll]] for (uint i = 0u; i < 4u; i++) acc[i][0] = acc[i][1] = vec4(0.0);

    vec4 xr[XV], s, z;
    uvec4 w;
    load_step(0u, m0, n0, xr, w, s, z);
    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        store_step(xr, w, s, z);
        barrier();
        if (k0 + TK < p.K) load_step(k0 + TK, m0, n0, xr, w, s, z); // in flight meanwhile
        [[unroll]] for (uint kk = 0u; kk < TK; kk++) {
            vec4 a = xs[kk][ty], b0 = ws[kk][tx], b1 = ws[kk][16u + tx];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                acc[i][0] += a[i] * b0;
                acc[i][1] += a[i] * b1;
            }
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint h = 0u; h < 2u; h++)
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint m = m0 + ty * 4u + i, n = n0 + h * 64u + tx * 4u + j;
                if (n >= p.N) continue;
                float b = q4_bias(n);
                if (m < T) y[m * p.N + n] = acc[i][h][j] + b;
            }
}
