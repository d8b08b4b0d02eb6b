// The decode attention's bindings, push constants and prologue, shared by
// attn_dec.comp and attn_dec_sg.comp (vk_plan.c attn_dec plans both alike).
// Include after common.glsl, with RMAX (query rows a kv head), HD4 (vec4 of the
// largest head) and WG (invocations) defined.

// Activations are coherent: a chained dispatch (chain.glsl) reads what the one
// before it wrote with no barrier between them.
layout(std430, binding = 1) coherent readonly buffer Q { vec4 q4[]; };
layout(std430, binding = 2) buffer KC { vec4 kc4[]; };
layout(std430, binding = 3) buffer VC { vec4 vc4[]; };
layout(std430, binding = 4) coherent writeonly buffer O { vec4 o4[]; };
layout(std430, binding = 5) coherent buffer SP { float part[]; };
layout(std430, binding = 5) coherent buffer SN { uint cnt[]; };
layout(std430, binding = 6) coherent readonly buffer KN { vec4 kn4[]; }; // rope: this token's k
layout(std430, binding = 7) coherent readonly buffer VN { vec4 vn4[]; }; // rope: this token's v

layout(push_constant) uniform P {
    uint H, KV, hd;  // hd % 4 == 0, hd <= 4 * HD4
    uint poff, coff; // scratch: partials (floats, a multiple of 4) and counters (uints)
    uint nmax;       // chunks the dispatch covers (n_ctx / CH)
    uint rope, toff; // rotate q and k (table at toff in the run buffer); hd % 8 == 0
    layout(offset = 124) uint chain; // chain.glsl
} p;
#include "chain.glsl"

shared vec4 q_s[RMAX * HD4];      // rows of g, scaled (and rotated)
shared vec4 kn_s[HD4], vn_s[HD4]; // rope: key pos, rotated, and its value

// cos and sin of pair elements 4d..4d+3 for this (single) token.
void rope_cs(uint d, out vec4 cs, out vec4 sn) {
    uint b = p.toff + 8u * d;
    cs = vec4(run.rope[b], run.rope[b + 2u], run.rope[b + 4u], run.rope[b + 6u]);
    sn = vec4(run.rope[b + 1u], run.rope[b + 3u], run.rope[b + 5u], run.rope[b + 7u]);
}

// The query rows of g into q_s, scaled by 1/sqrt(hd) and with rope rotated
// (NeoX pairs (i, i + hd/2): vec4 d with vec4 d + hd/8); zeros past the head.
void stage_q(uint l, uint g, uint R, uint h4) {
    float scale = 1.0 / sqrt(float(p.hd));
    uint q4h = h4 / 2u;
    for (uint i = 0u; i < RMAX * HD4 / WG; i++) {
        uint e = l + i * WG, r = e / HD4, d = e % HD4;
        if (r >= R || d >= h4) {
            q_s[e] = vec4(0.0);
        } else if (p.rope == 0u) {
            q_s[e] = q4[(g * R + r) * h4 + d] * scale;
        } else if (d < q4h) { // the pair's second half is written here too
            vec4 a = q4[(g * R + r) * h4 + d], b = q4[(g * R + r) * h4 + d + q4h];
            vec4 cs, sn;
            rope_cs(d, cs, sn);
            q_s[e] = (a * cs - b * sn) * scale;
            q_s[e + q4h] = (b * cs + a * sn) * scale;
        }
    }
}

// Rope: the new key (pos) rotated and its value, kept in kn_s / vn_s and
// stored in the caches.
void store_new_key(uint l, uint g, uint pos, uint h4) {
    uint q4h = h4 / 2u;
    if (l >= q4h) return;
    uint kb = g * h4, cb = pos * p.KV * h4 + g * h4;
    vec4 a = kn4[kb + l], b = kn4[kb + l + q4h], va = vn4[kb + l], vb = vn4[kb + l + q4h];
    vec4 cs, sn;
    rope_cs(l, cs, sn);
    vec4 ra = a * cs - b * sn, rb = b * cs + a * sn;
    kn_s[l] = ra, kn_s[l + q4h] = rb, vn_s[l] = va, vn_s[l + q4h] = vb;
    kc4[cb + l] = ra, kc4[cb + l + q4h] = rb;
    vc4[cb + l] = va, vc4[cb + l + q4h] = vb;
}

