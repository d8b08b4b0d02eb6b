#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
// Tensor-core throughput probe (vk_mma_probe.c, R1_VK_MMA_PROBE=1 with
// R1_VK_CM): each of the 8 subgroups of a workgroup chains p.iters x ACC
// 16x16x16 fp16 products into ACC independent accumulators (float32, or fp16
// with R1_ACC16, VK_NV_cooperative_matrix only; R1_KHR: VK_KHR_cooperative_matrix,
// see coopmat.glsl). R1_SHARED: the operands are loaded from shared memory
// before every group of products, as a GEMM's inner loop does. Nothing is stored unless
// an accumulator holds an impossible value, so the work cannot be dropped: the
// whole matrix is stored, or a compiler could compute only the element tested
// (a scalar-value test alone showed over 1,000 "TFLOPS" on the H200).
#ifndef ACC_N
#define ACC_N 8u
#endif
layout(local_size_x = 256) in;

layout(std430, binding = 2) writeonly buffer O { uvec4 o[]; };
layout(push_constant) uniform P { uint iters; } p;

#include "coopmat.glsl"
#ifdef R1_ACC16
#undef ACC
#undef CM_ZERO
#define ACC fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_ZERO ACC(float16_t(0.0))
#endif

#ifdef R1_SHARED
shared uvec4 sm[8u * 4u * 32u]; // per subgroup: 4 fragments of 16 x 16 halves (2 uvec4 a row)
#endif

void main() {
    HALF_A a = CM_SPLAT_A(float16_t(0.5));
    HALF_B b = CM_SPLAT_B(float16_t(0.25));
    ACC c[ACC_N];
    [[unroll]] for (uint i = 0u; i < ACC_N; i++) c[i] = CM_ZERO;
#ifdef R1_SHARED
    uint base = gl_SubgroupID * 4u * 32u;
    for (uint i = gl_SubgroupInvocationID; i < 4u * 32u; i += gl_SubgroupSize)
        sm[base + i] = uvec4(0x34003800u); // halves 0.5 and 0.25
    barrier();
#endif
    for (uint it = 0u; it < p.iters; it++) {
#ifdef R1_SHARED
        uint f = base + (it & 1u) * 64u; // two of the four fragments, alternating
        CM_LOAD_A(a, sm, f, 2u);
        CM_LOAD_B(b, sm, f + 32u, 2u);
#endif
        [[unroll]] for (uint i = 0u; i < ACC_N; i++) c[i] = CM_MMA(a, b, c[i]);
    }
    [[unroll]] for (uint i = 0u; i < ACC_N; i++)
        if (CM_ELEM0(c[i]) == -1234.5) CM_STORE(c[i], o, 0u, 4u); // all of it is live
}
