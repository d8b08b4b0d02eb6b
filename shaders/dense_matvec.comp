#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// Dense matrix-vector product for the output head: y[r, n] = x[first + r, :] . w[n, :]
// with w [N, K] row-major F32/F16/BF16. A workgroup owns NR rows of w; its
// invocations stride along K (coalesced) and reuse each x element NR times.
// The NR rows' loads of a step issue together (a loop that could break between
// rows issued them one by one: H200 14b head 0.423 -> 0.371 ms, the probe's rate).
#define WG 256u
#define NR 8u
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X2 { vec2 x2[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 3) readonly buffer W { uint w[]; };
layout(std430, binding = 3) readonly buffer W4 { uvec4 w4[]; };

layout(push_constant) uniform P {
    uint K, N;
    uint mode;
    uint wtype, woff;
    uint clo, chi; // runs for row counts in (clo, chi] (vk_plan.c matmul)
} p;

shared float red[NR][WG];

vec2 unpack2(uint wd) {
    return p.wtype == 1u ? unpackHalf2x16(wd)
                         : vec2(uintBitsToFloat(wd << 16), uintBitsToFloat(wd & 0xffff0000u));
}

void main() {
    uint first, cnt;
    rows_of(p.mode, first, cnt);
    uint r = gl_WorkGroupID.y, l = gl_LocalInvocationIndex;
    if (r >= cnt || cnt <= p.clo || cnt > p.chi) return; // uniform across the workgroup
    uint n0 = gl_WorkGroupID.x * NR, xo = (first + r) * p.K;
    float acc[NR];
    for (uint j = 0u; j < NR; j++) acc[j] = 0.0;
    // 16-bit weights whose rows start on 16 bytes: 8 elements per load
    bool vec8 = p.wtype != 0u && (p.K & 7u) == 0u && (p.woff & 7u) == 0u;
    // 16-bit weights whose rows start on a word: two elements per load
    bool pairs = p.wtype != 0u && (p.K & 1u) == 0u && (p.woff & 1u) == 0u;
    if (vec8) {
        uint K8 = p.K / 8u;
        for (uint k8 = l; k8 < K8; k8 += WG) {
            // the rows' loads all issue before the first is used
            uvec4 wd[NR];
            [[unroll]] for (uint j = 0u; j < NR; j++)
                wd[j] = n0 + j < p.N ? w4[(p.woff >> 3) + (n0 + j) * K8 + k8] : uvec4(0u);
            vec4 a = x4[(xo >> 2) + 2u * k8], b = x4[(xo >> 2) + 2u * k8 + 1u];
            [[unroll]] for (uint j = 0u; j < NR; j++)
                acc[j] += dot(a, vec4(unpack2(wd[j].x), unpack2(wd[j].y))) +
                          dot(b, vec4(unpack2(wd[j].z), unpack2(wd[j].w)));
        }
    } else if (pairs) {
        uint K2 = p.K / 2u;
        for (uint k2 = l; k2 < K2; k2 += WG) {
            vec2 a = x2[(xo >> 1) + k2];
            for (uint j = 0u; j < NR; j++) {
                uint n = n0 + j;
                if (n >= p.N) break;
                vec2 b = unpack2(w[(p.woff >> 1) + n * K2 + k2]);
                acc[j] += a.x * b.x + a.y * b.y;
            }
        }
    } else {
        for (uint k = l; k < p.K; k += WG) {
            float a = x[xo + k];
            for (uint j = 0u; j < NR; j++) {
                uint n = n0 + j;
                if (n >= p.N) break;
                acc[j] += a * LOADF(w, p.woff + n * p.K + k, p.wtype);
            }
        }
    }
#ifdef R1_SUBGROUP
    for (uint j = 0u; j < NR; j++) acc[j] = subgroupAdd(acc[j]);
    if (subgroupElect())
        for (uint j = 0u; j < NR; j++) red[j][gl_SubgroupID] = acc[j];
    barrier();
    if (l < NR && n0 + l < p.N) {
        float v = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) v += red[l][i];
        y[r * p.N + n0 + l] = v;
    }
#else
    for (uint j = 0u; j < NR; j++) red[j][l] = acc[j];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s)
            for (uint j = 0u; j < NR; j++) red[j][l] += red[j][l + s];
        barrier();
    }
    if (l < NR && n0 + l < p.N) y[r * p.N + n0 + l] = red[l][0];
#endif
}
