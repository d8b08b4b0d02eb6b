#version 450
#extension GL_GOOGLE_include_directive : require
// Causal GQA attention with an online softmax (no T x T scores in memory).
// A workgroup takes QB query rows that share one kv head g: rows are the
// (token t, head h) pairs of that head's query heads, flattened as t*R + r
// (R = H / KV), so in decode the R heads of a group read K and V once. Keys
// are walked in tiles of KB through shared memory; row (t, h) sees cache rows
// 0..pos+t.
#define QB 16u
#define KB 16u
#define HDMAX 128u
#define ACC (QB * HDMAX / 128u)
layout(local_size_x = 128) in;
#include "common.glsl"

layout(std430, binding = 1) readonly buffer Q { float q[]; };
layout(std430, binding = 2) readonly buffer KC { float kc[]; };
layout(std430, binding = 3) readonly buffer VC { float vc[]; };
layout(std430, binding = 4) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint H, KV, hd;
} p;

shared float q_s[QB * HDMAX];
shared float k_s[KB * HDMAX];
shared float v_s[KB * HDMAX];
shared float s_s[QB * KB];
shared float corr_s[QB];
shared float l_s[QB];
shared int lim_s[QB]; // last key a row may see, -1 for padding rows

void main() {
    uint l = gl_LocalInvocationIndex, hd = p.hd, R = p.H / p.KV, g = gl_WorkGroupID.y;
    uint T = run.n_tokens, f0 = gl_WorkGroupID.x * QB;
    if (f0 >= T * R) return; // uniform across the workgroup
    uint row = p.KV * hd;
    float scale = 1.0 / sqrt(float(hd));
    for (uint e = l; e < QB * hd; e += 128u) {
        uint r = e / hd, d = e % hd, f = f0 + r;
        q_s[e] = f < T * R ? q[((f / R) * p.H + g * R + f % R) * hd + d] : 0.0;
    }
    if (l < QB) lim_s[l] = f0 + l < T * R ? int(run.pos + (f0 + l) / R) : -1;
    uint kmax = run.pos + (min(f0 + QB, T * R) - 1u) / R;
    float m = -1e30, lsum = 0.0; // row state, kept by invocation r < QB
    float acc[ACC];
    uint nacc = QB * hd / 128u;
    for (uint i = 0u; i < ACC; i++) acc[i] = 0.0;
    for (uint k0 = 0u; k0 <= kmax; k0 += KB) {
        barrier(); // previous tile fully used (and q_s/lim_s written on the first pass)
        for (uint e = l; e < KB * hd; e += 128u) {
            uint j = e / hd, d = e % hd, key = k0 + j;
            bool in_range = key <= kmax;
            k_s[e] = in_range ? kc[key * row + g * hd + d] : 0.0;
            v_s[e] = in_range ? vc[key * row + g * hd + d] : 0.0;
        }
        barrier();
        for (uint e = l; e < QB * KB; e += 128u) {
            uint r = e / KB, j = e % KB;
            float sc = 0.0;
            for (uint d = 0u; d < hd; d++) sc += q_s[r * hd + d] * k_s[j * hd + d];
            s_s[e] = sc * scale;
        }
        barrier();
        if (l < QB) {
            int lim = lim_s[l];
            float mx = m;
            for (uint j = 0u; j < KB; j++)
                if (int(k0 + j) <= lim) mx = max(mx, s_s[l * KB + j]);
            float c = exp(m - mx), sum = 0.0;
            for (uint j = 0u; j < KB; j++) {
                float pr = int(k0 + j) <= lim ? exp(s_s[l * KB + j] - mx) : 0.0;
                s_s[l * KB + j] = pr;
                sum += pr;
            }
            lsum = lsum * c + sum;
            m = mx;
            corr_s[l] = c;
        }
        barrier();
        for (uint i = 0u; i < nacc; i++) {
            uint e = l + 128u * i, r = e / hd, d = e % hd;
            float a = acc[i] * corr_s[r];
            for (uint j = 0u; j < KB; j++) a += s_s[r * KB + j] * v_s[j * hd + d];
            acc[i] = a;
        }
    }
    if (l < QB) l_s[l] = lsum;
    barrier();
    for (uint i = 0u; i < nacc; i++) {
        uint e = l + 128u * i, r = e / hd, d = e % hd, f = f0 + r;
        if (f < T * R) o[((f / R) * p.H + g * R + f % R) * hd + d] = acc[i] / l_s[r];
    }
}
