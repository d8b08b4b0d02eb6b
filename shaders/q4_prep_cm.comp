#version 450
#extension GL_GOOGLE_include_directive : require
// Operands of the tensor-core prompt GEMM (gemm_cm.comp), written to scratch:
// the GPTQ weight dequantized exactly, s * (q - z), then rounded to fp16
// (W [K, N], row k holds N halves), and x in fp16 in the weight's K order
// (X [T, K]). R1_CM_EXACT also writes the remainders, fp16((v - fp16(v)) *
// 2^12), right after each (see gemm_cm.comp). One invocation per pair of
// columns of one 8-row weight word, then one per 8 elements of x.
layout(local_size_x = 256) in;
#define Q4_PUSH_EXTRA uint woff, xoff; // word offsets in scratch of W and X (remainders follow)
#include "common.glsl"
#include "q4.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 8) writeonly buffer S { uint sc_out[]; };

#define LO_SCALE 4096.0

// An fp16 value from its bits by integer operations: NVIDIA's compiler turns
// v - unpackHalf2x16(packHalf2x16(v)) into 0 even under `precise`.
float h2f(uint h) {
    uint e = (h >> 10) & 31u, m = h & 1023u;
    float v = e == 0u ? float(m) * (1.0 / 16777216.0) : uintBitsToFloat(((e + 112u) << 23) | (m << 13));
    return (h & 0x8000u) != 0u ? -v : v;
}

// fp16 pair of v; the scaled remainder pair at lo_at (the exact variant).
void put(uint at, uint lo_at, vec2 v) {
    uint h = packHalf2x16(v);
    sc_out[at] = h;
#ifdef R1_CM_EXACT
    vec2 r = v - vec2(h2f(h & 0xffffu), h2f(h >> 16));
    sc_out[lo_at] = packHalf2x16(r * LO_SCALE);
#endif
}

void main() {
    uint K = p.K, N = p.N, T = run.n_tokens, nw = (K / 8u) * (N / 2u), nx = T * (K / 8u);
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < nw + nx; i += stride) {
        if (i < nw) {
            uint r = i / (N / 2u), n = (i % (N / 2u)) * 2u, g = r * 8u / p.G;
            uvec2 w = uvec2(qw[p.qoff + r * N + n], qw[p.qoff + r * N + n + 1u]);
            vec2 s = vec2(q4_scale(g, n), q4_scale(g, n + 1u));
            vec2 z = vec2(q4_zero(g, n), q4_zero(g, n + 1u));
            for (uint j = 0u; j < 8u; j++) {
                vec2 q = vec2((w >> (4u * j)) & 15u);
                uint at = (r * 8u + j) * (N / 2u) + n / 2u;
                put(p.woff + at, p.woff + K * N / 2u + at, s * (q - z));
            }
        } else {
            uint e = i - nw, m = e / (K / 8u), k = (e % (K / 8u)) * 8u;
            bool pm = (p.flags & Q4_PERM) != 0u;
            for (uint j = 0u; j < 8u; j += 2u) {
                uint a = m * K + k + j;
                vec2 v = pm ? vec2(x[m * K + perm[k + j]], x[m * K + perm[k + j + 1u]])
                            : vec2(x[a], x[a + 1u]);
                put(p.xoff + a / 2u, p.xoff + T * K / 2u + a / 2u, v);
            }
        }
    }
}
