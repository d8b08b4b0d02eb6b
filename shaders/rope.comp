#version 450
#extension GL_GOOGLE_include_directive : require
// NeoX rotate-hh RoPE in place on x [T, H*hd]. The cos/sin table is written
// by the host per call from double-precision angles, as the CPU reference does:
// pos * theta^(-2i/hd) reaches 1e5 radians, beyond float accuracy.
// With R1_KV the fused form also stores the rotated k and the v rows in the
// caches (ROPE q, ROPE k, KV_STORE in one dispatch).
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) buffer X { float x[]; };
#ifdef R1_KV
layout(std430, binding = 2) buffer K { float k[]; };
layout(std430, binding = 3) readonly buffer V { float v[]; };
layout(std430, binding = 4) writeonly buffer KC { float kc[]; };
layout(std430, binding = 5) writeonly buffer VC { float vc[]; };
#endif

layout(push_constant) uniform P {
    uint H;    // heads of x
    uint hd;   // head dim
    uint toff; // table offset in floats
    uint KVH;  // R1_KV: heads of k and v
} p;

void rot(uint t, uint base, uint i, uint hh) {
    float c = run.rope[p.toff + (t * hh + i) * 2u];
    float s = run.rope[p.toff + (t * hh + i) * 2u + 1u];
    float a = x[base + i], b = x[base + i + hh];
    x[base + i] = a * c - b * s;
    x[base + i + hh] = b * c + a * s;
}

void main() {
    uint hh = p.hd / 2u;
    uint per_t = p.H * hh;
#ifdef R1_KV
    uint per_tk = p.KVH * hh;
    uint total = run.n_tokens * (per_t + per_tk);
#else
    uint total = run.n_tokens * per_t;
#endif
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint e = gl_GlobalInvocationID.x; e < total; e += stride) {
#ifdef R1_KV
        if (e >= run.n_tokens * per_t) {
            // k head pair: rotate, then store k and v rows at pos + t
            uint f = e - run.n_tokens * per_t;
            uint t = f / per_tk, h = (f / hh) % p.KVH, i = f % hh;
            uint base = (t * p.KVH + h) * p.hd;
            float c = run.rope[p.toff + (t * hh + i) * 2u];
            float s = run.rope[p.toff + (t * hh + i) * 2u + 1u];
            float a = k[base + i], b = k[base + i + hh];
            float ra = a * c - b * s, rb = b * c + a * s;
            k[base + i] = ra;
            k[base + i + hh] = rb;
            uint row = p.KVH * p.hd, cb = (run.pos + t) * row + h * p.hd;
            kc[cb + i] = ra;
            kc[cb + i + hh] = rb;
            vc[cb + i] = v[base + i];
            vc[cb + i + hh] = v[base + i + hh];
            continue;
        }
#endif
        uint t = e / per_t, h = (e / hh) % p.H, i = e % hh;
        rot(t, (t * p.H + h) * p.hd, i, hh);
    }
}
