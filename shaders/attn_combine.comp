#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef R1_VMM // the Vulkan memory model: chain.glsl's release / acquire
#extension GL_KHR_memory_scope_semantics : require
#pragma use_vulkan_memory_model
#endif
// Decode attention's combine (after attn_dec.comp, when the cache spans more
// than one of its chunks): workgroup (x: query head r of kv head g, y: g) waits
// until g's counter shows that all nch chunks wrote their partial states, then
// invocation d sums output d over the chunks in chunk order, each chunk's
// weighted values scaled by exp(m_j - max) and the whole divided by the
// weighted sums, with CW partial rows in flight. Before, the last chunk of each
// kv head combined all R heads alone (H200 14b, 4,000 positions: 21 of the
// attention's 54 us a layer).
//
// Chained (vk_record.c) it joins attn_dec's group, with no barrier or wait
// between them: at nch == 1 it has nothing to do and signals at once, so a short
// cache pays only its launch (tg64 about 1%); otherwise it polls g's counter. That relies on attn_dec's
// workgroups being launched before its own (chain.glsl's assumption; lavapipe
// runs the dispatches one after the other). Unchained, a barrier separates
// them and the count is already there.
#define WG 128u
#define CW 16u         // partial rows in flight per invocation
#define NW 512u        // chunk weights per pass
layout(local_size_x = 128) in;
#include "common.glsl"

layout(std430, binding = 4) coherent writeonly buffer O { float o[]; };
layout(std430, binding = 5) coherent buffer SP { float part[]; };
layout(std430, binding = 5) coherent buffer SN { uint cnt[]; };

layout(push_constant) uniform P {
    uint H, KV, hd;  // as attn_dec.comp
    uint poff, coff; // scratch: its partials and its counters ([KV] chunks; this
                     // attention's own, zeroed at the start of the pass, see vk_plan.c)
    uint nmax;       // chunks of a kv head's partial region
    layout(offset = 124) uint chain; // chain.glsl
} p;
#include "chain.glsl"

#define CH 64u // attn_dec.comp's keys per chunk

shared float red_s[WG];
shared float w_s[NW];

float wg_reduce(float v, bool mx) {
    uint l = gl_LocalInvocationIndex;
    red_s[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_s[l] = mx ? max(red_s[l], red_s[l + s]) : red_s[l] + red_s[l + s];
        barrier();
    }
    v = red_s[0];
    barrier();
    return v;
}

void main() {
    uint l = gl_LocalInvocationIndex, r = gl_WorkGroupID.x, g = gl_WorkGroupID.y;
    uint nch = run.pos / CH + 1u, R = p.H / p.KV;
    trace_begin();
    if (nch == 1u) { // attn_dec's chunk 0 wrote the output
        chain_signal();
        trace_flush(3u);
        return;
    }
    chain_poll(p.coff + g, nch);
    uint stride = p.hd + 2u, rs = R * stride, b0 = p.poff + g * p.nmax * rs + r * stride;
    float mx = -1e30;
    for (uint j = l; j < nch; j += WG) mx = max(mx, part[b0 + j * rs]);
    mx = wg_reduce(mx, true);
    float lsum = 0.0, a = 0.0;
    for (uint c0 = 0u; c0 < nch; c0 += NW) { // uniform
        uint np = min(NW, nch - c0);
        float ls = 0.0;
        for (uint j = l; j < np; j += WG) {
            uint b = b0 + (c0 + j) * rs;
            float w = exp(part[b] - mx);
            ls += w * part[b + 1u];
            w_s[j] = w;
        }
        lsum += wg_reduce(ls, false); // its barriers also publish w_s
        for (uint j0 = 0u; l < p.hd && j0 < np; j0 += CW) {
            float v[CW];
            [[unroll]] for (uint u = 0u; u < CW; u++) // compile-time: loads issue together
                v[u] = part[b0 + (c0 + min(j0 + u, np - 1u)) * rs + 2u + l];
            [[unroll]] for (uint u = 0u; u < CW; u++)
                a += (j0 + u < np ? w_s[min(j0 + u, np - 1u)] : 0.0) * v[u];
        }
        barrier(); // w_s is rewritten by the next pass
    }
    if (l < p.hd) o[(g * R + r) * p.hd + l] = a / lsum;
    chain_signal();
    trace_flush(3u);
}
