#version 450
#extension GL_GOOGLE_include_directive : require
// GPTQ int4 matrix-vector product for decode on the transposed layout that
// discrete GPUs use (vk_qlinear.c): qw[n][K/8] words, so each output column's
// K is contiguous like a dense row, and sz[n][g] = f16 scale | zero << 16
// (the true zero, the v1 +1 already applied). A workgroup of 64 invocations
// owns NR columns; invocations stride along K in 32-element chunks (one 16-byte
// load per column), and each x chunk is reused for the NR columns.
//
// Nibbles become floats without int->float conversions: masked in place and
// OR'ed into the mantissa of 2^23, minus 2^23, they are exactly q * 16^j, and x
// was divided by 16^j (exact powers of two). Per chunk (one group, G % 32 == 0)
// the zero folds out: s * (sum x*q - z * sum x).
//
// Fused prologues (push constant pro), each written back by workgroup 0 so the
// node it replaces still produces its tensor:
//   1 RMSNorm: x = src * w_norm, and y is scaled by 1/sqrt(mean(src^2) + eps)
//   2 SiLU gate: x = silu(src) * b
// Fused epilogue (EPI): the residual add that follows, s = y + res.
#define WG 64u
#define NR 8u
layout(local_size_x = 64) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer QW { uvec4 qw4[]; };
layout(std430, binding = 4) readonly buffer SZ { uint sz[]; };
layout(std430, binding = 5) readonly buffer PM { uint perm[]; };
layout(std430, binding = 6) readonly buffer BI { uint bias[]; };
layout(std430, binding = 7) readonly buffer PW { uint pw[]; };   // norm weight (words)
layout(std430, binding = 7) readonly buffer PW4 { uvec4 pw4[]; };
layout(std430, binding = 7) readonly buffer PB4 { vec4 pb4[]; }; // silu: the up input
layout(std430, binding = 8) writeonly buffer PO { float po[]; }; // prologue's own output
layout(std430, binding = 8) writeonly buffer PO4 { vec4 po4[]; };
layout(std430, binding = 9) readonly buffer ER { float er[]; };  // residual
layout(std430, binding = 10) writeonly buffer EO { float eo[]; }; // y + residual

#define F_BIAS 1u
#define F_PERM 4u
#define F_EPI 8u
#define F_PO 16u // this dispatch writes the prologue's output
#define PRO_NORM 1u
#define PRO_SILU 2u

layout(push_constant) uniform P {
    uint K, N, G;
    uint flags;
    uint btype, boff;
    uint pro;
    uint wtype, woff; // norm weight
    float eps;
} p;

shared float red[NR + 1u][WG];
shared float inv_s;

const float M = 8388608.0;
float mq(uint bits) { return uintBitsToFloat(bits | 0x4B000000u) - M; }

float dot8(uint w, vec4 a, vec4 b) {
    uint h = w >> 12;
    return a.x * mq(w & 0xFu) + a.y * mq(w & 0xF0u) + a.z * mq(w & 0xF00u) +
           a.w * mq(w & 0xF000u) + b.x * mq(w & 0xF0000u) + b.y * mq(h & 0xF00u) +
           b.z * mq(h & 0xF000u) + b.w * mq(h & 0xF0000u);
}

float xin(uint xo, uint k) {
    return x[xo + ((p.flags & F_PERM) != 0u ? perm[k] : k)];
}

void main() {
    uint l = gl_LocalInvocationIndex, n0 = gl_WorkGroupID.x * NR, t = gl_WorkGroupID.y;
    if (t >= run.n_tokens) return; // uniform across the workgroup
    uint xo = t * p.K, C = p.K / 32u, R = p.K / 8u, ng = p.K / p.G;
    bool w0 = gl_WorkGroupID.x == 0u;
    const vec4 sa = vec4(1.0, 0.0625, 0.00390625, 0.000244140625);
    const vec4 sb = vec4(0.0000152587890625, 0.00390625, 0.000244140625, 0.0000152587890625);
    float acc[NR];
    for (uint j = 0u; j < NR; j++) acc[j] = 0.0;
    float ss = 0.0;
    bool pm = (p.flags & F_PERM) != 0u;
    // f16 norm weights on 16 bytes: 8 per load (else one at a time)
    bool wvec = p.pro == PRO_NORM && p.wtype == 1u && (p.woff & 7u) == 0u && !pm;
    for (uint c = l; c < C; c += WG) {
        uint k0 = c * 32u, g = k0 / p.G;
        // all of this chunk's weight loads first: they are independent, and
        // issuing them together keeps NR x 16 bytes in flight per invocation
        uvec4 wq[NR];
        uint wz[NR];
        for (uint j = 0u; j < NR; j++) {
            wq[j] = qw4[(n0 + j) * C + c];
            wz[j] = sz[(n0 + j) * ng + g];
        }
        vec4 xv[8];
        if (pm) {
            for (uint i = 0u; i < 8u; i++) {
                uint k = k0 + i * 4u;
                xv[i] = vec4(xin(xo, k), xin(xo, k + 1u), xin(xo, k + 2u), xin(xo, k + 3u));
            }
        } else {
            for (uint i = 0u; i < 8u; i++) xv[i] = x4[(xo + k0) / 4u + i];
        }
        if (p.pro == PRO_NORM) {
            for (uint i = 0u; i < 8u; i++) ss += dot(xv[i], xv[i]);
            if (wvec) {
                for (uint i = 0u; i < 4u; i++) {
                    uvec4 h = pw4[(p.woff + k0) / 8u + i];
                    xv[2u * i] *= vec4(unpackHalf2x16(h.x), unpackHalf2x16(h.y));
                    xv[2u * i + 1u] *= vec4(unpackHalf2x16(h.z), unpackHalf2x16(h.w));
                }
            } else {
                for (uint i = 0u; i < 8u; i++)
                    for (uint e = 0u; e < 4u; e++) {
                        uint k = k0 + i * 4u + e;
                        xv[i][e] *= LOADF(pw, p.woff + (pm ? perm[k] : k), p.wtype);
                    }
            }
        } else if (p.pro == PRO_SILU) {
            for (uint i = 0u; i < 8u; i++) {
                vec4 u = pb4[(xo + k0) / 4u + i];
                vec4 v = xv[i] / (1.0 + exp(-xv[i])) * u;
                xv[i] = v;
                if (w0 && (p.flags & F_PO) != 0u) po4[(xo + k0) / 4u + i] = v;
            }
        }
        float sx = 0.0;
        for (uint i = 0u; i < 8u; i++) {
            sx += (xv[i].x + xv[i].y) + (xv[i].z + xv[i].w);
            xv[i] *= (i & 1u) == 0u ? sa : sb;
        }
        for (uint j = 0u; j < NR; j++) {
            float d = dot8(wq[j].x, xv[0], xv[1]) + dot8(wq[j].y, xv[2], xv[3]) +
                      dot8(wq[j].z, xv[4], xv[5]) + dot8(wq[j].w, xv[6], xv[7]);
            acc[j] += unpackHalf2x16(wz[j]).x * (d - float(wz[j] >> 16) * sx);
        }
    }
#ifdef R1_SUBGROUP
    for (uint j = 0u; j < NR; j++) acc[j] = subgroupAdd(acc[j]);
    ss = subgroupAdd(ss);
    if (subgroupElect()) {
        for (uint j = 0u; j < NR; j++) red[j][gl_SubgroupID] = acc[j];
        red[NR][gl_SubgroupID] = ss;
    }
    barrier();
    uint nred = gl_NumSubgroups;
#else
    for (uint j = 0u; j < NR; j++) red[j][l] = acc[j];
    red[NR][l] = ss;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s)
            for (uint j = 0u; j <= NR; j++) red[j][l] += red[j][l + s];
        barrier();
    }
    uint nred = 1u;
#endif
    if (l == 0u) {
        float tot = 0.0;
        for (uint i = 0u; i < nred; i++) tot += red[NR][i];
        inv_s = p.pro == PRO_NORM ? 1.0 / sqrt(tot / float(p.K) + p.eps) : 1.0;
    }
    barrier();
    float inv = inv_s;
    if (l < NR) {
        uint n = n0 + l;
        float v = 0.0;
        for (uint i = 0u; i < nred; i++) v += red[l][i];
        v = v * inv + ((p.flags & F_BIAS) != 0u ? LOADF(bias, p.boff + n, p.btype) : 0.0);
        y[t * p.N + n] = v;
        if ((p.flags & F_EPI) != 0u) eo[t * p.N + n] = v + er[t * p.N + n];
    }
    if (w0 && p.pro == PRO_NORM && (p.flags & F_PO) != 0u) // the norm's output, for other readers
        for (uint k = l; k < p.K; k += WG) po[xo + k] = x[xo + k] * inv * LOADF(pw, p.woff + k, p.wtype);
}
