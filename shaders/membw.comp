#version 450
// Read bandwidth probe (vk_membw.c): every invocation streams uvec4 words of
// a large buffer, grid-strided so that a subgroup's loads are contiguous, with
// four loads in flight per iteration. The XOR of what was read is stored only
// if it equals a constant, so the loads cannot be dropped and nothing is written.
layout(local_size_x = 256) in;

layout(std430, binding = 1) readonly buffer S { uvec4 s[]; };
layout(std430, binding = 2) writeonly buffer O { uint o[]; };

layout(push_constant) uniform P { uint n4; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u, i = gl_GlobalInvocationID.x;
    uvec4 a = uvec4(0u), b = uvec4(0u), c = uvec4(0u), d = uvec4(0u);
    for (; i + 3u * stride < p.n4; i += 4u * stride) {
        a ^= s[i];
        b ^= s[i + stride];
        c ^= s[i + 2u * stride];
        d ^= s[i + 3u * stride];
    }
    for (; i < p.n4; i += stride) a ^= s[i];
    uvec4 r = a ^ b ^ c ^ d;
    uint v = r.x ^ r.y ^ r.z ^ r.w;
    if (v == 0x9E3779B9u) o[0] = v;
}
