#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Operands of the tensor-core prompt GEMM (gemm_cm.comp), written to scratch:
// the GPTQ weight dequantized exactly, s * (q - z), then rounded to fp16
// (W [K, N], row k holds N halves), and x in fp16 in the weight's K order
// (X [T, K]). R1_CM_EXACT also writes the remainders, fp16((v - fp16(v)) *
// 2^12), right after each (see gemm_cm.comp). One invocation per 8 columns of
// one 8-row weight word, then one per 8 elements of x.
layout(local_size_x = 256) in;
// woff, xoff: word offsets in scratch of W and X (remainders follow); W only for
// prompts longer than wmin tokens (gemm_cm's R1_CM_Q4 variants, which take the
// shorter ones, read the GPTQ words themselves); wst: W's row length (N, or for
// linears of one input prepared together all their columns, woff then at this
// one's first: vk_plan_q4.c r1vk_plan_cm); nox: no X (W alone: for a group's
// later linears, or written ahead beside the GEMM before it; wmin ~0: X alone);
// silu: x is silu(gate) * up, gate at binding 1 and up at 9 (the SiLU gate
// before down, whose own pass over the rows this saves: vk_plan_q4.c silu_cm)
#define Q4_PUSH_EXTRA uint woff, xoff, wmin, wst, nox, silu;
#include "common.glsl"
#include "q4.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 9) readonly buffer U { float up[]; };
layout(std430, binding = 8) writeonly buffer S { uint sc_out[]; };
layout(std430, binding = 8) writeonly buffer S4 { uvec4 sc_out4[]; }; // woff % 4 == 0

#define LO_SCALE 4096.0

// An fp16 value from its bits by integer operations: NVIDIA's compiler turns
// v - unpackHalf2x16(packHalf2x16(v)) into 0 even under `precise`.
float h2f(uint h) {
    uint e = (h >> 10) & 31u, m = h & 1023u;
    float v = e == 0u ? float(m) * (1.0 / 16777216.0) : uintBitsToFloat(((e + 112u) << 23) | (m << 13));
    return (h & 0x8000u) != 0u ? -v : v;
}

// The scaled remainders of pair v, whose fp16 pair is h (the exact variant).
uint lo_of(vec2 v, uint h) {
    return packHalf2x16((v - vec2(h2f(h & 0xffffu), h2f(h >> 16))) * LO_SCALE);
}

// fp16 pair of v; the scaled remainder pair at lo_at (the exact variant).
void put(uint at, uint lo_at, vec2 v) {
    uint h = packHalf2x16(v);
    sc_out[at] = h;
#ifdef R1_CM_EXACT
    sc_out[lo_at] = lo_of(v, h);
#endif
}

// Columns n .. n + 7 of weight word row r (the loader holds N % 8 == 0): 8
// words in, one uvec4 out per row of W (an invocation per pair of columns took
// 13.3 ms of a 512-token 14b pass on the H200).
void weight8(uint r, uint n) {
    uint N = p.N, g = r * 8u / p.G;
    uint w[8];
    vec2 s[4], z[4];
    [[unroll]] for (uint c = 0u; c < 8u; c++) w[c] = qw[p.qoff + r * N + n + c];
    [[unroll]] for (uint c = 0u; c < 4u; c++) {
        s[c] = vec2(q4_scale(g, n + 2u * c), q4_scale(g, n + 2u * c + 1u));
        z[c] = vec2(q4_zero(g, n + 2u * c), q4_zero(g, n + 2u * c + 1u));
    }
    [[unroll]] for (uint j = 0u; j < 8u; j++) {
        uvec4 h, lo;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            vec2 v = s[c] * (vec2((uvec2(w[2u * c], w[2u * c + 1u]) >> (4u * j)) & 15u) - z[c]);
            h[c] = packHalf2x16(v);
#ifdef R1_CM_EXACT
            lo[c] = lo_of(v, h[c]);
#endif
        }
        uint at = (p.woff + (r * 8u + j) * (p.wst / 2u) + n / 2u) / 4u;
        sc_out4[at] = h;
#ifdef R1_CM_EXACT
        sc_out4[at + p.K * p.wst / 8u] = lo;
#endif
    }
}

void main() {
    uint K = p.K, N = p.N, T = run.n_tokens, nx = p.nox != 0u ? 0u : T * (K / 8u);
    uint nw = T > p.wmin ? (K / 8u) * (N / 8u) : 0u;
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < nw + nx; i += stride) {
        if (i < nw) {
            weight8(i / (N / 8u), (i % (N / 8u)) * 8u);
        } else {
            uint e = i - nw, m = e / (K / 8u), k = (e % (K / 8u)) * 8u;
            bool pm = (p.flags & Q4_PERM) != 0u;
            [[unroll]] for (uint j = 0u; j < 8u; j += 2u) {
                uint a = m * K + k + j;
                uvec2 at = pm ? m * K + uvec2(perm[k + j], perm[k + j + 1u]) : uvec2(a, a + 1u);
                vec2 v = vec2(x[at.x], x[at.y]);
                if (p.silu != 0u) // as eltwise.comp
                    v = v / (1.0 + exp(-v)) * vec2(up[at.x], up[at.y]);
                put(p.xoff + a / 2u, p.xoff + T * K / 2u + a / 2u, v);
            }
        }
    }
}
