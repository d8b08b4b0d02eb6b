#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef R1_VMM // the Vulkan memory model: chain.glsl's release / acquire
#extension GL_KHR_memory_scope_semantics : require
#pragma use_vulkan_memory_model
#endif
#extension GL_KHR_shader_subgroup_shuffle : require
// Decode attention, subgroup form (devices with shuffles and subgroups of 8 or
// more; attn_dec.comp is the fallback). Same plan, bindings, push constants,
// prologue (attn_dec.glsl) and partials as attn_dec.comp, whose comment
// describes the split over the cache:
// workgroup (x: chunk of CH keys, y: kv head g) for the R = H/KV query rows of
// g; attn_combine.comp merges the chunks' partials.
//
// A decode step's attention is latency, not arithmetic (H200 14b, attn_dec.comp:
// 13 us for a full 64-key chunk, 7 us for one key: 16 keys a step, four
// barriers and serial per-row loops a step). Here:
// - the chunk's keys and values, written by earlier passes, load before the
//   chain wait: keys into registers (a quad of invocations per key, each with
//   every fourth vec4 of it), values into shared memory (first half) and
//   registers (second half);
// - after the wait a query row's 64 scores take 8 products and two shuffles
//   per invocation, a row's softmax is 8 invocations with shuffles, and the
//   weighted sum of values reads shared memory 32 keys at a time;
// - five barriers in all, three when the chunk holds at most 32 keys.
#define CH 64u   // keys per workgroup (vk_plan.c ATTN_CH)
#define HALF 32u // keys of V in shared memory at a time
#define RMAX 16u
#define HD4 32u // vec4 of the largest head (128)
#define WG 256u
#define KI (HD4 / 4u)        // vec4 of a key per quad invocation
#define VI (HALF * HD4 / WG) // vec4 of V per invocation and half
layout(local_size_x = 256) in;
#include "common.glsl"

#include "attn_dec.glsl"

shared vec4 v_s[HALF * HD4]; // values of half a chunk
shared float p_s[RMAX * CH]; // scores, then probabilities
shared float m_s[RMAX], l_s[RMAX];
// 29 KB of shared memory in all, within the 32 KB that Apple GPUs offer.

void main() {
    // roles by subgroup lane, so that a quad (and an octet) is one subgroup's
    uint l = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
    trace_begin();
    uint h4 = p.hd / 4u, R = p.H / p.KV, row4 = p.KV * h4;
    uint g = gl_WorkGroupID.y, c = gl_WorkGroupID.x, pos = run.pos, k0 = c * CH;
    if (k0 > pos) return; // uniform: this chunk is past the last key
    uint nch = pos / CH + 1u, kend = min(k0 + CH, pos + 1u), stride = p.hd + 2u;
    // rope: key pos is this dispatch's to rotate and store (not read from the cache)
    uint kn = p.rope != 0u && c == pos / CH ? pos : 0xFFFFFFFFu;
    // without rope a KV_STORE dispatch of this pass wrote key pos, so first
    if (p.rope == 0u) chain_wait();

    // keys and values of earlier passes: all loads issue together
    uint j = l / 4u, s = l % 4u, kj = k0 + j;
    bool kok = kj < kend && kj != kn;
    vec4 kr[KI], v0[VI], v1[VI];
    [[unroll]] for (uint i = 0u; i < KI; i++) {
        uint d = s + 4u * i;
        kr[i] = kok && d < h4 ? kc4[kj * row4 + g * h4 + d] : vec4(0.0);
    }
    [[unroll]] for (uint i = 0u; i < VI; i++) {
        uint e = l + i * WG, d = e % HD4, k = k0 + e / HD4;
        v0[i] = d < h4 && k < kend && k != kn ? vc4[k * row4 + g * h4 + d] : vec4(0.0);
        k += HALF;
        v1[i] = d < h4 && k < kend && k != kn ? vc4[k * row4 + g * h4 + d] : vec4(0.0);
    }
    [[unroll]] for (uint i = 0u; i < VI; i++) v_s[l + i * WG] = v0[i];
    if (p.rope != 0u) chain_wait();

    stage_q(l, g, R, h4);
    if (kn != 0xFFFFFFFFu) store_new_key(l, g, pos, h4);
    barrier(); // q_s, kn_s, vn_s
    if (kn != 0xFFFFFFFFu) { // uniform: the new key into the registers and v_s
        if (kj == kn)
            [[unroll]] for (uint i = 0u; i < KI; i++) {
                uint d = s + 4u * i;
                if (d < h4) kr[i] = kn_s[d];
            }
        [[unroll]] for (uint i = 0u; i < VI; i++) {
            uint e = l + i * WG, d = e % HD4, k = k0 + e / HD4;
            if (d < h4 && k == kn) v_s[e] = vn_s[d];
            if (d < h4 && k + HALF == kn) v1[i] = vn_s[d];
        }
    }

    // scores: quad j's four partial products, summed by two shuffles
    for (uint r = 0u; r < R; r++) { // uniform
        vec4 a = vec4(0.0);
        [[unroll]] for (uint i = 0u; i < KI; i++) a += q_s[r * HD4 + s + 4u * i] * kr[i];
        float sc = (a.x + a.y) + (a.z + a.w);
        sc += subgroupShuffleXor(sc, 1u);
        sc += subgroupShuffleXor(sc, 2u);
        if (s == 0u) p_s[r * CH + j] = kj < kend ? sc : -1e30;
    }
    barrier();

    // softmax of row l / 8 over its 64 scores: 8 each for an octet
    {
        uint r = min(l / 8u, R - 1u), t = l % 8u;
        float sv[8], mx = -1e30, sum = 0.0;
        [[unroll]] for (uint m = 0u; m < 8u; m++) {
            sv[m] = p_s[r * CH + t + 8u * m];
            mx = max(mx, sv[m]);
        }
        mx = max(mx, subgroupShuffleXor(mx, 1u));
        mx = max(mx, subgroupShuffleXor(mx, 2u));
        mx = max(mx, subgroupShuffleXor(mx, 4u));
        [[unroll]] for (uint m = 0u; m < 8u; m++) {
            sv[m] = exp(sv[m] - mx);
            sum += sv[m];
        }
        sum += subgroupShuffleXor(sum, 1u);
        sum += subgroupShuffleXor(sum, 2u);
        sum += subgroupShuffleXor(sum, 4u);
        if (l / 8u < R) {
            [[unroll]] for (uint m = 0u; m < 8u; m++) p_s[r * CH + t + 8u * m] = sv[m];
            if (t == 0u) m_s[r] = mx, l_s[r] = sum;
        }
    }
    barrier();

    // weighted values: invocation (row slot rs, vec4 d), rows rs and rs + 8,
    // over the chunk's keys in steps of 8 (past the last key p and v are 0)
    uint d = l % HD4, rs = l / HD4, nk = kend - k0;
    bool ra = rs < R, rb = rs + 8u < R;
    vec4 acc0 = vec4(0.0), acc1 = vec4(0.0);
    for (uint j0 = 0u; ra && j0 < min(nk, HALF); j0 += 8u)
        [[unroll]] for (uint u = 0u; u < 8u; u++) {
            vec4 vv = v_s[(j0 + u) * HD4 + d];
            acc0 += p_s[rs * CH + j0 + u] * vv;
            if (rb) acc1 += p_s[(rs + 8u) * CH + j0 + u] * vv;
        }
    if (nk > HALF) { // uniform
        barrier(); // v_s is rewritten
        [[unroll]] for (uint i = 0u; i < VI; i++) v_s[l + i * WG] = v1[i];
        barrier();
        for (uint j0 = 0u; ra && j0 < nk - HALF; j0 += 8u)
            [[unroll]] for (uint u = 0u; u < 8u; u++) {
                vec4 vv = v_s[(j0 + u) * HD4 + d];
                acc0 += p_s[rs * CH + HALF + j0 + u] * vv;
                if (rb) acc1 += p_s[(rs + 8u) * CH + HALF + j0 + u] * vv;
            }
    }

    if (nch == 1u) { // this chunk saw every key
        if (ra && d < h4) o4[(g * R + rs) * h4 + d] = acc0 / l_s[rs];
        if (rb && d < h4) o4[(g * R + rs + 8u) * h4 + d] = acc1 / l_s[rs + 8u];
        chain_signal();
        trace_flush(2u);
        return;
    }
    uint base = p.poff + (g * p.nmax + c) * R * stride;
    if (d < h4) {
        uint b = base + rs * stride + 2u + 4u * d;
        if (ra) part[b] = acc0.x, part[b + 1u] = acc0.y, part[b + 2u] = acc0.z, part[b + 3u] = acc0.w;
        b += 8u * stride;
        if (rb) part[b] = acc1.x, part[b + 1u] = acc1.y, part[b + 2u] = acc1.z, part[b + 3u] = acc1.w;
    }
    if (l < R) part[base + l * stride] = m_s[l], part[base + l * stride + 1u] = l_s[l];
    FENCE_BUF();
    BAR_BUF();
    if (l == 0u) CNT_SIGNAL(p.coff + g); // for attn_combine.comp
    if (c == 0u) chain_signal(); // always: vk_plan.c's count does not depend on pos
    trace_flush(2u);
}
