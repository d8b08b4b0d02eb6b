#version 450
#extension GL_GOOGLE_include_directive : require
// Rows pos..pos+T-1 of the K and V caches = k, v rows 0..T-1.
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer KC { float kc[]; };
layout(std430, binding = 4) writeonly buffer VC { float vc[]; };

layout(push_constant) uniform P {
    uint row; // kv heads * head dim
} p;

void main() {
    uint total = run.n_tokens * p.row, base = run.pos * p.row;
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        kc[base + i] = k[i];
        vc[base + i] = v[i];
    }
}
