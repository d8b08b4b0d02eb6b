#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// RMSNorm, one workgroup per row: y = x / sqrt(mean(x^2) + eps) * w.
// With R1_ADD (the fused residual add), x = a + b is computed and stored
// first: the add that precedes every norm in the graph costs no extra pass.
#define WG 256u
layout(local_size_x = 256) in;
#include "common.glsl"
#include "reduce.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer W { uint w[]; };
#ifdef R1_ADD
layout(std430, binding = 4) readonly buffer B { float b[]; };
layout(std430, binding = 5) writeonly buffer S { float s[]; }; // a + b
#endif

// xh: where nonzero (rows in registers only), y goes to scratch word xh on in
// fp16 instead, as the next GEMM's x (its prep then has nothing to do;
// vk_plan_q4.c r1vk_cm_x_direct)
layout(std430, binding = 8) writeonly buffer XH { uvec2 xh2[]; };

layout(push_constant) uniform P {
    uint D;
    uint mode;
    float eps;
    uint wtype;
    uint woff;
    uint xh;
} p;

// Rows of up to VPT * 4 * WG elements (D % 4 == 0) stay in registers: their
// loads are issued together and read once, so a single-row norm (decode) costs
// about one memory round trip per pass instead of D / WG dependent ones.
#define VPT 8u
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
#ifdef R1_ADD
layout(std430, binding = 4) readonly buffer B4 { vec4 b4[]; };
layout(std430, binding = 5) writeonly buffer S4 { vec4 s4[]; };
#endif

void row_in_registers(uint xo, uint yo, uint l) {
    uint D4 = p.D / 4u;
    vec4 v[VPT];
    float ss = 0.0;
    [[unroll]] for (uint i = 0u; i < VPT; i++) { // unrolled: the loads issue together
        uint j = l + i * WG;
        v[i] = vec4(0.0);
        if (j < D4) {
#ifdef R1_ADD
            v[i] = x4[xo / 4u + j] + b4[xo / 4u + j];
            s4[xo / 4u + j] = v[i];
#else
            v[i] = x4[xo / 4u + j];
#endif
        }
        ss += dot(v[i], v[i]);
    }
    ss = wg_sum(ss);
    float inv = 1.0 / sqrt(ss / float(p.D) + p.eps);
    [[unroll]] for (uint i = 0u; i < VPT; i++) {
        uint j = l + i * WG, d = j * 4u;
        if (j >= D4) continue;
        vec4 o = v[i] * inv *
                 vec4(LOADF(w, p.woff + d, p.wtype), LOADF(w, p.woff + d + 1u, p.wtype),
                      LOADF(w, p.woff + d + 2u, p.wtype), LOADF(w, p.woff + d + 3u, p.wtype));
        if (p.xh != 0u) // xh and yo even: D % 4 == 0
            xh2[p.xh / 2u + yo / 4u + j] = uvec2(packHalf2x16(o.xy), packHalf2x16(o.zw));
        else
            y4[yo / 4u + j] = o;
    }
}

void main() {
    uint first, cnt;
    rows_of(p.mode, first, cnt);
    uint r = gl_WorkGroupID.x;
    if (r >= cnt) return; // uniform across the workgroup
    uint xo = (first + r) * p.D, yo = r * p.D, l = gl_LocalInvocationIndex;
    if ((p.D & 3u) == 0u && p.D <= VPT * 4u * WG) {
        row_in_registers(xo, yo, l);
        return;
    }
    float ss = 0.0;
    for (uint d = l; d < p.D; d += WG) {
#ifdef R1_ADD
        float v = x[xo + d] + b[xo + d];
        s[xo + d] = v;
#else
        float v = x[xo + d];
#endif
        ss += v * v;
    }
    ss = wg_sum(ss);
    float inv = 1.0 / sqrt(ss / float(p.D) + p.eps);
    for (uint d = l; d < p.D; d += WG) {
#ifdef R1_ADD
        float v = x[xo + d] + b[xo + d];
#else
        float v = x[xo + d];
#endif
        y[yo + d] = v * inv * LOADF(w, p.woff + d, p.wtype);
    }
}
