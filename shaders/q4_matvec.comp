#version 450
#extension GL_GOOGLE_include_directive : require
// GPTQ int4 matrix-vector product for decode: y[t, n] = x[t, :] . W[:, n] + b[n].
//
// Workgroup (x: 64-column tile, y: K split, z: token row). Each invocation owns
// 4 adjacent columns (one 16-byte load per word row) in one of 16 K slices.
// The K split's x is staged in shared memory once (through perm[] for
// act-order), pre-scaled so that nibbles need no int->float conversion: a
// nibble masked in place, OR'ed into the mantissa of 2^23 and minus 2^23 is
// exactly q * 16^j, and x was divided by 16^j (both exact powers of two).
// The zero point is folded out of the loop: per group, s * (sum x*q - z * sum x).
// With several K splits the splits write partial sums; the last workgroup of a
// tile to finish (an atomic counter) adds them in order, so results do not
// depend on scheduling.
#define TC 16u // column invocations (x 4 columns)
#define TS 16u // K slices
#define XMAX 4096u
layout(local_size_x = 256) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer QW { uvec4 qw4[]; };
layout(std430, binding = 4) readonly buffer SC { uvec2 sc2[]; };
layout(std430, binding = 5) readonly buffer QZ { uint qz[]; };
layout(std430, binding = 6) readonly buffer PM { uint perm[]; };
layout(std430, binding = 7) readonly buffer BI { uint bias[]; };
layout(std430, binding = 8) coherent buffer SP { float part[]; };
layout(std430, binding = 8) coherent buffer SN { uint cnt[]; };

#define Q4_BIAS 1u
#define Q4_V2 2u
#define Q4_PERM 4u

layout(push_constant) uniform P {
    uint K, N, G;
    uint flags;
    uint qoff, soff, zoff, boff; // element offsets (qoff, soff multiples of 4)
    uint btype;
    uint ksplit, rps;  // K splits and word rows per split
    uint poff, coff;   // scratch: partial sums and counters (elements)
} p;

shared vec4 xs[XMAX / 4u];
shared float xsum[XMAX / 8u];
shared float red[TS][TC * 4u];
shared bool last_s;

const float M = 8388608.0;
float mq(uint bits) { return uintBitsToFloat(bits | 0x4B000000u) - M; }

float dot8(uint w, vec4 a, vec4 b) {
    uint h = w >> 12;
    return a.x * mq(w & 0xFu) + a.y * mq(w & 0xF0u) + a.z * mq(w & 0xF00u) +
           a.w * mq(w & 0xF000u) + b.x * mq(w & 0xF0000u) + b.y * mq(h & 0xF00u) +
           b.z * mq(h & 0xF000u) + b.w * mq(h & 0xF0000u);
}

float bias_of(uint n) {
    return (p.flags & Q4_BIAS) != 0u ? LOADF(bias, p.boff + n, p.btype) : 0.0;
}

void main() {
    uint l = gl_LocalInvocationIndex, tc = l % TC, ts = l / TC;
    uint tile = gl_WorkGroupID.x, ky = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    if (t >= run.n_tokens) return; // uniform across the workgroup
    uint R = p.K / 8u, r0 = ky * p.rps, r1 = min(R, r0 + p.rps), nr = r1 - r0;
    uint xo = t * p.K;
    const float sc[8] = float[8](1.0, 0.0625, 0.00390625, 0.000244140625, 0.0000152587890625,
                                 0.00390625, 0.000244140625, 0.0000152587890625);
    for (uint i = l; i < nr * 2u; i += 256u) {
        uint k = r0 * 8u + i * 4u;
        vec4 v;
        if ((p.flags & Q4_PERM) != 0u)
            v = vec4(x[xo + perm[k]], x[xo + perm[k + 1u]], x[xo + perm[k + 2u]], x[xo + perm[k + 3u]]);
        else
            v = vec4(x[xo + k], x[xo + k + 1u], x[xo + k + 2u], x[xo + k + 3u]);
        uint j = (i & 1u) * 4u;
        xs[i] = v * vec4(sc[j], sc[j + 1u], sc[j + 2u], sc[j + 3u]);
    }
    barrier();
    for (uint i = l; i < nr; i += 256u) {
        vec4 a = xs[2u * i], b = xs[2u * i + 1u];
        xsum[i] = a.x + a.y * 16.0 + a.z * 256.0 + a.w * 4096.0 + b.x * 65536.0 + b.y * 256.0 +
                  b.z * 4096.0 + b.w * 65536.0;
    }
    barrier();
    uint n = tile * (TC * 4u) + tc * 4u;
    vec4 acc = vec4(0.0);
    if (n < p.N) {
        uint rs = r0 + ts * nr / TS, re = r0 + (ts + 1u) * nr / TS;
        uint N4 = p.N >> 2, rowq = (p.qoff >> 2) + (n >> 2);
        uint r = rs;
        while (r < re) {
            uint g = r * 8u / p.G;
            uint ge = min(re, (g + 1u) * p.G / 8u);
            vec4 dq = vec4(0.0);
            float sx = 0.0;
            // four rows per step, loads first: independent loads in flight together
            for (; r + 4u <= ge; r += 4u) {
                uvec4 wr[4];
                for (uint i = 0u; i < 4u; i++) wr[i] = qw4[rowq + (r + i) * N4];
                for (uint i = 0u; i < 4u; i++) {
                    uvec4 w = wr[i];
                    vec4 a = xs[2u * (r + i - r0)], b = xs[2u * (r + i - r0) + 1u];
                    sx += xsum[r + i - r0];
                    dq += vec4(dot8(w.x, a, b), dot8(w.y, a, b), dot8(w.z, a, b), dot8(w.w, a, b));
                }
            }
            for (; r < ge; r++) {
                uvec4 w = qw4[rowq + r * N4];
                vec4 a = xs[2u * (r - r0)], b = xs[2u * (r - r0) + 1u];
                sx += xsum[r - r0];
                dq += vec4(dot8(w.x, a, b), dot8(w.y, a, b), dot8(w.z, a, b), dot8(w.w, a, b));
            }
            uvec2 s2 = sc2[(p.soff + g * p.N + n) >> 2];
            vec4 s = vec4(unpackHalf2x16(s2.x), unpackHalf2x16(s2.y));
            uint zw = qz[p.zoff + g * (p.N >> 3) + (n >> 3)] >> (4u * (n & 7u));
            uvec4 zq = uvec4(zw, zw >> 4, zw >> 8, zw >> 12) & 15u;
            vec4 z = vec4((p.flags & Q4_V2) != 0u ? zq : (zq + 1u) & 15u);
            acc += s * (dq - z * sx);
        }
    }
    red[ts][tc * 4u] = acc.x;
    red[ts][tc * 4u + 1u] = acc.y;
    red[ts][tc * 4u + 2u] = acc.z;
    red[ts][tc * 4u + 3u] = acc.w;
    barrier();
    uint c = tile * (TC * 4u) + l;
    float v = 0.0;
    if (l < TC * 4u)
        for (uint i = 0u; i < TS; i++) v += red[i][l];
    if (p.ksplit == 1u) {
        if (l < TC * 4u && c < p.N) y[t * p.N + c] = v + bias_of(c);
        return;
    }
    uint tiles = gl_NumWorkGroups.x;
    if (l < TC * 4u && c < p.N) part[p.poff + (t * p.ksplit + ky) * p.N + c] = v;
    memoryBarrierBuffer();
    barrier();
    if (l == 0u) {
        uint prev = atomicAdd(cnt[p.coff + t * tiles + tile], 1u);
        last_s = prev == p.ksplit - 1u;
        if (last_s) cnt[p.coff + t * tiles + tile] = 0u; // ready for the next call
    }
    barrier();
    if (!last_s) return;
    memoryBarrierBuffer();
    if (l < TC * 4u && c < p.N) {
        float s = 0.0;
        for (uint k = 0u; k < p.ksplit; k++) s += part[p.poff + (t * p.ksplit + k) * p.N + c];
        y[t * p.N + c] = s + bias_of(c);
    }
}
