#version 450
#extension GL_GOOGLE_include_directive : require
// GPTQ int4 matrix-matrix product for prompts on the checkpoint layout:
// Y[T, N] = X[T, K] . W[K, N] + b. Workgroup tile: 64 rows x 128 columns, K in
// steps of 32. Each invocation accumulates 4 rows x 8
// columns (32 products per 3 16-byte shared reads); the next step's x and
// weight words are loaded into registers while the current step is multiplied.
// Weights are dequantized exactly as the reference does, s * (q - z) in float.
// (The transposed layout's GEMM is q4t_gemm.comp.)
#define TM 64u
#define TN 128u
#define TK 32u
#define XL (TM * TK / 256u) // x elements loaded per invocation and step
layout(local_size_x = 256) in;
#include "common.glsl"
#include "q4.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

shared vec4 xs[TK][TM / 4u + 1u]; // [k][m], padded against bank conflicts on the stores
shared vec4 ws[TK][TN / 4u];      // [k][n], dequantized

// Step k0's x (rows m0.., zeros past T) and weight words of this invocation:
// columns c = l % TN, word rows l / TN and l / TN + 2 of the step's four.
void load_step(uint k0, uint m0, uint n0, out float xr[XL], out uint w0, out uint w1,
               out vec2 s, out vec2 z) {
    uint l = gl_LocalInvocationIndex, T = run.n_tokens;
    bool pm = (p.flags & Q4_PERM) != 0u;
    for (uint i = 0u; i < XL; i++) {
        uint e = l + i * 256u, m = e / TK, k = k0 + e % TK;
        xr[i] = m0 + m < T && k < p.K ? x[(m0 + m) * p.K + (pm ? perm[k] : k)] : 0.0;
    }
    uint n = n0 + l % TN, r = k0 / 8u + l / TN, R = p.K / 8u;
    bool ok0 = n < p.N && r < R, ok1 = n < p.N && r + 2u < R; // rows past K: zeros
    w0 = ok0 ? qw[p.qoff + r * p.N + n] : 0u;
    w1 = ok1 ? qw[p.qoff + (r + 2u) * p.N + n] : 0u;
    uint g0 = r * 8u / p.G, g1 = (r + 2u) * 8u / p.G; // G may be below 32
    s = vec2(ok0 ? q4_scale(g0, n) : 0.0, ok1 ? q4_scale(g1, n) : 0.0);
    z = vec2(ok0 ? q4_zero(g0, n) : 0.0, ok1 ? q4_zero(g1, n) : 0.0);
}

void store_step(float xr[XL], uint w0, uint w1, vec2 s, vec2 z) {
    uint l = gl_LocalInvocationIndex, c = l % TN, r = l / TN;
    for (uint i = 0u; i < XL; i++) {
        uint e = l + i * 256u, m = e / TK, kk = e % TK;
        xs[kk][m >> 2][m & 3u] = xr[i];
    }
    for (uint j = 0u; j < 8u; j++) {
        ws[r * 8u + j][c >> 2][c & 3u] = s.x * (float((w0 >> (4u * j)) & 15u) - z.x);
        ws[(r + 2u) * 8u + j][c >> 2][c & 3u] = s.y * (float((w1 >> (4u * j)) & 15u) - z.y);
    }
}

void main() {
    uint l = gl_LocalInvocationIndex, tx = l % 16u, ty = l / 16u;
    uint n0 = gl_WorkGroupID.x * TN, m0 = gl_WorkGroupID.y * TM;
    uint T = run.n_tokens;
    if (m0 >= T) return; // uniform across the workgroup
    vec4 acc[4][2];
    for (uint i = 0u; i < 4u; i++) acc[i][0] = acc[i][1] = vec4(0.0);
    float xr[XL];
    uint w0, w1;
    vec2 s, z;
    load_step(0u, m0, n0, xr, w0, w1, s, z);
    for (uint k0 = 0u; k0 < p.K; k0 += TK) {
        store_step(xr, w0, w1, s, z);
        barrier();
        if (k0 + TK < p.K) load_step(k0 + TK, m0, n0, xr, w0, w1, s, z); // in flight meanwhile
        for (uint kk = 0u; kk < TK; kk++) {
            vec4 a = xs[kk][ty], b0 = ws[kk][tx], b1 = ws[kk][16u + tx];
            for (uint i = 0u; i < 4u; i++) {
                acc[i][0] += a[i] * b0;
                acc[i][1] += a[i] * b1;
            }
        }
        barrier();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + ty * 4u + i;
        if (m >= T) continue;
        for (uint h = 0u; h < 2u; h++)
            for (uint j = 0u; j < 4u; j++) {
                uint n = n0 + h * 64u + tx * 4u + j;
                if (n < p.N) y[m * p.N + n] = acc[i][h][j] + q4_bias(n);
            }
    }
}
