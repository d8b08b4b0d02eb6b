#version 450
#extension GL_GOOGLE_include_directive : require
// Decode attention (one token) split over the cache: workgroup (x: chunk of
// CH keys, y: kv head g) scores the R = H/KV query heads of g against its keys
// and writes a partial softmax state (max, sum, weighted values) per head; the
// last chunk of g to finish (atomic counter) combines the partials in chunk
// order. Work per token is spread over pos/CH * KV workgroups instead of KV.
#define CH 16u
#define RMAX 16u
#define HDMAX 128u
layout(local_size_x = 128) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { float kc[]; };
layout(std430, binding = 3) readonly buffer VC { float vc[]; };
layout(std430, binding = 4) writeonly buffer O { float o[]; };
layout(std430, binding = 5) coherent buffer SP { float part[]; };
layout(std430, binding = 5) coherent buffer SN { uint cnt[]; };

layout(push_constant) uniform P {
    uint H, KV, hd;
    uint poff, coff; // scratch: partials (floats) and counters (uints)
    uint nmax;       // chunks the dispatch covers (n_ctx / CH)
} p;

shared float q_s[RMAX * HDMAX];
shared float k_s[CH * HDMAX];
shared float v_s[CH * HDMAX];
shared float s_s[RMAX * CH];
shared float m_s[RMAX], l_s[RMAX];
shared bool last_s;

void main() {
    uint l = gl_LocalInvocationIndex, hd = p.hd, R = p.H / p.KV, g = gl_WorkGroupID.y;
    uint c = gl_WorkGroupID.x, pos = run.pos, k0 = c * CH;
    if (k0 > pos) return; // uniform: this chunk is past the last key
    uint nch = pos / CH + 1u, row = p.KV * hd, stride = hd + 2u;
    float scale = 1.0 / sqrt(float(hd));
    for (uint e = l; e < R * hd; e += 128u) q_s[e] = q[(g * R) * hd + e];
    for (uint e = l; e < CH * hd; e += 128u) {
        uint j = e / hd, d = e % hd, key = k0 + j;
        k_s[e] = key <= pos ? kc[key * row + g * hd + d] : 0.0;
        v_s[e] = key <= pos ? vc[key * row + g * hd + d] : 0.0;
    }
    barrier();
    for (uint e = l; e < R * CH; e += 128u) {
        uint r = e / CH, j = e % CH;
        float sc = 0.0;
        for (uint d = 0u; d < hd; d++) sc += q_s[r * hd + d] * k_s[j * hd + d];
        s_s[e] = sc * scale;
    }
    barrier();
    if (l < R) {
        float mx = -1e30;
        for (uint j = 0u; j < CH; j++)
            if (k0 + j <= pos) mx = max(mx, s_s[l * CH + j]);
        float sum = 0.0;
        for (uint j = 0u; j < CH; j++) {
            float pr = k0 + j <= pos ? exp(s_s[l * CH + j] - mx) : 0.0;
            s_s[l * CH + j] = pr;
            sum += pr;
        }
        m_s[l] = mx;
        l_s[l] = sum;
    }
    barrier();
    uint base = p.poff + (g * p.nmax + c) * R * stride;
    for (uint e = l; e < R * hd; e += 128u) {
        uint r = e / hd, d = e % hd;
        float a = 0.0;
        for (uint j = 0u; j < CH; j++) a += s_s[r * CH + j] * v_s[j * hd + d];
        part[base + r * stride + 2u + d] = a;
    }
    if (l < R) {
        part[base + l * stride] = m_s[l];
        part[base + l * stride + 1u] = l_s[l];
    }
    memoryBarrierBuffer();
    barrier();
    if (l == 0u) {
        uint prev = atomicAdd(cnt[p.coff + g], 1u);
        last_s = prev == nch - 1u;
        if (last_s) cnt[p.coff + g] = 0u; // ready for the next call
    }
    barrier();
    if (!last_s) return;
    memoryBarrierBuffer();
    for (uint e = l; e < R * hd; e += 128u) {
        uint r = e / hd, d = e % hd;
        float mx = -1e30;
        for (uint i = 0u; i < nch; i++) mx = max(mx, part[p.poff + (g * p.nmax + i) * R * stride + r * stride]);
        float sum = 0.0, a = 0.0;
        for (uint i = 0u; i < nch; i++) {
            uint b = p.poff + (g * p.nmax + i) * R * stride + r * stride;
            float w = exp(part[b] - mx);
            sum += part[b + 1u] * w;
            a += part[b + 2u + d] * w;
        }
        o[(g * R + r) * hd + d] = a / sum;
    }
}
