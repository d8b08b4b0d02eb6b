#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef R1_VMM // the Vulkan memory model: chain.glsl's release / acquire
#extension GL_KHR_memory_scope_semantics : require
#pragma use_vulkan_memory_model
#endif
// Decode attention (one token) split over the cache: workgroup (x: chunk of CH
// keys, y: kv head g) scores the R = H/KV query heads of g against its keys in
// steps of SUB keys with an online softmax, the next step's keys and values
// loaded into registers while the current step is computed. A chunk that holds
// every key (pos < CH) writes the output itself; otherwise each chunk writes a
// partial state (max, sum, weighted values) per head and counts itself on g's
// counter, and attn_combine.comp (a workgroup per query head) waits for that
// count and combines the partials in chunk order.
//
// With p.rope (the decode step's ROPE q, ROPE k and KV_STORE fused in) q and
// this token's k arrive unrotated: every workgroup rotates q, and the chunk
// holding pos rotates k, stores the new k and v rows in the caches and uses
// them from shared memory for key pos.
//
// Latency, not arithmetic, is what a decode step costs here, so every loop that
// loads has a compile-time trip count (all of its loads issue together) and
// shared rows are padded so that the 16 keys of a step sit in distinct banks.
#define CH 64u  // keys per workgroup (vk_plan.c ATTN_CH)
#define SUB 16u // keys per step
#define RMAX 16u
#define HDMAX 128u
#define HD4 (HDMAX / 4u)
#define KP4 (HD4 + 1u) // padded k_s row, in vec4
#define WG 128u
#define LD (SUB * HD4 / WG)  // vec4 loads of K (and of V) per invocation and step
#define QV (RMAX * HD4 / WG) // q vec4 per invocation; also output vec4 per invocation
#define SC (RMAX * SUB / WG) // scores per invocation
layout(local_size_x = 128) in;
#include "common.glsl"

#include "attn_dec.glsl"

shared vec4 k_s[SUB * KP4];
shared vec4 v_s[SUB * HD4];
shared float s_s[RMAX * SUB];
shared float m_s[RMAX], l_s[RMAX], f_s[RMAX];
// 27 KB of shared memory in all, within the 32 KB that Apple GPUs offer.

// Keys [k, k + SUB) of head g into registers (zeros past the last key).
void load_step(uint k, uint g, uint pos, out vec4 kr[LD], out vec4 vr[LD]) {
    uint h4 = p.hd / 4u, row4 = p.KV * h4;
    for (uint i = 0u; i < LD; i++) {
        uint e = gl_LocalInvocationIndex + i * WG, j = e / HD4, d = e % HD4;
        bool ok = d < h4 && k + j <= pos;
        uint a = (k + j) * row4 + g * h4 + d;
        kr[i] = ok ? kc4[a] : vec4(0.0);
        vr[i] = ok ? vc4[a] : vec4(0.0);
    }
}

void main() {
    uint l = gl_LocalInvocationIndex, hd = p.hd, h4 = hd / 4u, R = p.H / p.KV;
    uint g = gl_WorkGroupID.y, c = gl_WorkGroupID.x, pos = run.pos, k0 = c * CH;
    trace_begin();
    if (k0 > pos) return; // uniform: this chunk is past the last key
    uint nch = pos / CH + 1u, kend = min(k0 + CH, pos + 1u), stride = hd + 2u;
    vec4 kr[LD], vr[LD];
    // chained (chain.glsl): the keys of earlier passes load before the wait;
    // without rope a KV_STORE dispatch of this pass wrote key pos, so first
    if (p.rope == 0u) chain_wait();
    load_step(k0, g, pos, kr, vr);
    if (p.rope != 0u) chain_wait();
    stage_q(l, g, R, h4);
    if (p.rope != 0u && c == pos / CH) store_new_key(l, g, pos, h4); // the new key
    if (l < RMAX) m_s[l] = -1e30, l_s[l] = 0.0;
    vec4 acc[QV];
    for (uint i = 0u; i < QV; i++) acc[i] = vec4(0.0);
    for (uint k = k0; k < kend; k += SUB) {
        if (k == k0) barrier(); // the prologue's kn_s, vn_s
        for (uint i = 0u; i < LD; i++) {
            uint e = l + i * WG, j = e / HD4, d = e % HD4;
            bool nk = p.rope != 0u && k + j == pos && d < h4;
            k_s[j * KP4 + d] = nk ? kn_s[d] : kr[i];
            v_s[e] = nk ? vn_s[d] : vr[i];
        }
        barrier();
        if (k + SUB < kend) load_step(k + SUB, g, pos, kr, vr); // in flight meanwhile
        for (uint i = 0u; i < SC; i++) {
            uint e = l + i * WG, r = e / SUB, j = e % SUB;
            if (r >= R) break; // padding rows: no score to compute (e grows with i)
            vec4 s4 = vec4(0.0); // four independent sums: a quarter of the dependent chain
            for (uint d = 0u; d < HD4; d += 4u)
                s4 += vec4(dot(q_s[r * HD4 + d], k_s[j * KP4 + d]),
                           dot(q_s[r * HD4 + d + 1u], k_s[j * KP4 + d + 1u]),
                           dot(q_s[r * HD4 + d + 2u], k_s[j * KP4 + d + 2u]),
                           dot(q_s[r * HD4 + d + 3u], k_s[j * KP4 + d + 3u]));
            s_s[e] = k + j < kend ? (s4.x + s4.y) + (s4.z + s4.w) : -1e30;
        }
        barrier();
        if (l < R) { // online softmax: new max, rescale of what came before
            float mo = m_s[l], mx = mo;
            for (uint j = 0u; j < SUB; j++) mx = max(mx, s_s[l * SUB + j]);
            float f = exp(mo - mx), sum = 0.0;
            for (uint j = 0u; j < SUB; j++) {
                float pr = k + j < kend ? exp(s_s[l * SUB + j] - mx) : 0.0;
                s_s[l * SUB + j] = pr;
                sum += pr;
            }
            m_s[l] = mx, l_s[l] = l_s[l] * f + sum, f_s[l] = f;
        }
        barrier();
        for (uint i = 0u; i < QV; i++) {
            uint e = l + i * WG, r = e / HD4, d = e % HD4;
            if (r >= R) continue;
            vec4 a = acc[i] * f_s[r];
            for (uint j = 0u; j < SUB; j++) a += s_s[r * SUB + j] * v_s[j * HD4 + d];
            acc[i] = a;
        }
        barrier(); // k_s, v_s and s_s are rewritten by the next step
    }
    if (nch == 1u) { // this chunk saw every key
        for (uint i = 0u; i < QV; i++) {
            uint e = l + i * WG, r = e / HD4, d = e % HD4;
            if (r < R && d < h4) o4[(g * R + r) * h4 + d] = acc[i] / l_s[r];
        }
        chain_signal();
        trace_flush(2u);
        return;
    }
    uint base = p.poff + (g * p.nmax + c) * R * stride;
    for (uint i = 0u; i < QV; i++) {
        uint e = l + i * WG, r = e / HD4, d = e % HD4;
        if (r < R && d < h4) {
            uint b = base + r * stride + 2u + 4u * d;
            part[b] = acc[i].x, part[b + 1u] = acc[i].y, part[b + 2u] = acc[i].z,
            part[b + 3u] = acc[i].w;
        }
    }
    if (l < R) part[base + l * stride] = m_s[l], part[base + l * stride + 1u] = l_s[l];
    FENCE_BUF();
    BAR_BUF();
    if (l == 0u) CNT_SIGNAL(p.coff + g); // for attn_combine.comp
    if (c == 0u) chain_signal(); // always: vk_plan.c's count does not depend on pos
    trace_flush(2u);
}
