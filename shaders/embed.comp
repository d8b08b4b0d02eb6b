#version 450
#extension GL_GOOGLE_include_directive : require
// Embedding lookup: y[t, :] = w[id_t, :] in float32, w F32/F16/BF16 [V, D].
// The ids are the call's tokens, which the host writes at the start of the run
// buffer's tables (vk_record.c) with the rest of the call's parameters, so a
// pass needs no upload of its input rows. Workgroup (x: 1024 elements of a
// row, y: row); rows past n_tokens exit.
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer W { uint w[]; };

layout(push_constant) uniform P {
    uint D, V;   // row length, rows of w
    uint wtype;  // r1_dtype of w
    uint woff;   // element offset of w in its binding
} p;

void main() {
    uint t = gl_WorkGroupID.y, l = gl_LocalInvocationIndex;
    if (t >= run.n_tokens) return; // uniform across the workgroup
    // the session checked every id against the vocabulary; the bound only keeps
    // a bad one's read inside w
    uint id = min(floatBitsToUint(run.rope[t]), p.V - 1u);
    uint d1 = min(p.D, gl_WorkGroupID.x * 1024u + 1024u);
    for (uint d = gl_WorkGroupID.x * 1024u + l; d < d1; d += 256u)
        y[t * p.D + d] = LOADF(w, p.woff + id * p.D + d, p.wtype);
}
