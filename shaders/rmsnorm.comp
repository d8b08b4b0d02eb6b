#version 450
#extension GL_GOOGLE_include_directive : require
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

layout(push_constant) uniform P {
    uint D;
    uint mode;
    float eps;
    uint wtype;
    uint woff;
} p;

void main() {
    uint first, cnt;
    rows_of(p.mode, first, cnt);
    uint r = gl_WorkGroupID.x;
    if (r >= cnt) return; // uniform across the workgroup
    uint xo = (first + r) * p.D, yo = r * p.D, l = gl_LocalInvocationIndex;
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
