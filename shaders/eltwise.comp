#version 450
#extension GL_GOOGLE_include_directive : require
// Element-wise ops over n_tokens rows: op 0 add (a + b), op 1 silu(a) * b.
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint cols;
    uint op;
} p;

void main() {
    uint total = run.n_tokens * p.cols;
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        float u = a[i];
        y[i] = p.op == 0u ? u + b[i] : u / (1.0 + exp(-u)) * b[i];
    }
}
