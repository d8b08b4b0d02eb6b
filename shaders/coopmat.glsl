// Cooperative matrices (tensor cores) for gemm_cm.comp, attn_cm.comp and mma_probe.comp, as
// 16x16x16 fp16 x fp16 + float32 products in subgroup scope, through either
// extension behind one set of names:
//   HALF_A, HALF_B, ACC       operand and accumulator types
//   CM_ZERO / CM_SPLAT_A/B(v) a matrix filled with v
//   CM_LOAD_A/B(m, arr, i, s) m = rows of arr[i...], row stride s elements of arr
//   CM_LOAD_BT(m, arr, i, s)  B from columns of arr[i...], column stride s
//   CM_STORE(m, arr, i, s)    the reverse, row-major
//   CM_MMA(a, b, c)           a.b + c
//   CM_AXPY(c, d, s)          c + d * s
//   CM_ELEM0(m)               one element, to make a result observable
// R1_KHR: VK_KHR_cooperative_matrix (vendor-neutral). Debian 12's glslang lacks
// GL_KHR_cooperative_matrix, so the type and instructions come through
// GL_EXT_spirv_intrinsics. Its spirv_type takes only literals where the SPIR-V
// type wants <id>s: the placeholders below (0x7771 float16, 0x7772 float32) and
// literals are turned into <id>s by tools/spvpatch at build time.
// R1_CM_EMU: no extension, for testing the GEMM on devices without cooperative
// matrices (lavapipe, in CI): see below.
// Otherwise VK_NV_cooperative_matrix through GL_NV_cooperative_matrix.
//
// SG_ID, SG_LANE, SG_BARRIER: the 32-invocation group a fragment belongs to
// (the subgroup, or a fixed group of 32 under R1_CM_EMU).
#ifdef R1_CM_EMU
#define SG_ID (gl_LocalInvocationIndex / 32u)
#define SG_LANE (gl_LocalInvocationIndex % 32u)
#define SG_BARRIER() \
    memoryBarrierShared(); \
    barrier()
#else
#define SG_ID gl_SubgroupID
#define SG_LANE gl_SubgroupInvocationID
#define SG_BARRIER() \
    subgroupMemoryBarrierShared(); \
    subgroupBarrier()
#endif
#ifdef R1_CM_EMU
// Emulated, slowly, for tests: an operand fragment is where it lies in the
// shared array `sm` (declared before this file is included): uvec2(first
// uvec4, row stride in uvec4; with the top bit set, column stride), and a
// product reads it there, so sm must not change between a load and its
// products (true of gemm_cm.comp's stages and attn_cm.comp's tiles). An
// accumulator is 8 floats a lane: lane L holds row L / 2, columns 8 (L % 2) to
// 8 (L % 2) + 7. Products are of the fp16 operands in float32, as on tensor
// cores (the summation order differs). Every call site is in uniform control
// flow, as with the real thing, so SG_BARRIER can be a workgroup barrier.
#define HALF_A uvec2
#define HALF_B uvec2
#define ACC mat2x4
float cm_half(uvec2 f, uint r, uint c) { // element (r, c) of a 16 x 16 fp16 fragment
    if ((f.y & 0x80000000u) != 0u) { // CM_LOAD_BT: stored by columns
        uint t = r;
        r = c, c = t;
    }
    return unpackHalf2x16(sm[f.x + r * (f.y & 0x7fffffffu) + c / 8u][(c % 8u) / 2u])[c % 2u];
}
ACC cm_mma(uvec2 a, uvec2 b, ACC c) {
    uint r = SG_LANE / 2u, c0 = (SG_LANE % 2u) * 8u;
    for (uint k = 0u; k < 16u; k++) {
        float x = cm_half(a, r, k);
        for (uint j = 0u; j < 8u; j++) c[j / 4u][j % 4u] += x * cm_half(b, k, c0 + j);
    }
    return c;
}
#define CM_ZERO mat2x4(0.0)
#define CM_LOAD_A(m, arr, i, s) m = uvec2(i, s)
#define CM_LOAD_B(m, arr, i, s) m = uvec2(i, s)
#define CM_LOAD_BT(m, arr, i, s) m = uvec2(i, (s) | 0x80000000u)
#define CM_STORE(m, arr, i, s)                                                        \
    {                                                                                 \
        uint at_ = (i) + (SG_LANE / 2u) * (s) + (SG_LANE % 2u) * 2u;                  \
        arr[at_] = floatBitsToUint((m)[0]), arr[at_ + 1u] = floatBitsToUint((m)[1]); \
    }
#define CM_MMA(a, b, c) cm_mma(a, b, c)
#define CM_AXPY(c, d, s) ((c) + (d) * (s))
#define CM_ELEM0(m) ((m)[0][0])
#elif defined(R1_KHR)
#extension GL_EXT_spirv_intrinsics : require
#define CM_T(ct, use) \
    spirv_type(extensions = ["SPV_KHR_cooperative_matrix"], capabilities = [6022], id = 4456, \
               ct, 3, 16, 16, use) // component, scope Subgroup, rows, columns, use A/B/Acc
#define HALF_A CM_T(0x7771, 0)
#define HALF_B CM_T(0x7771, 1)
#define ACC CM_T(0x7772, 2)
spirv_instruction(id = 80) HALF_A cm_splat_a(float16_t v); // OpCompositeConstruct
spirv_instruction(id = 80) HALF_B cm_splat_b(float16_t v);
spirv_instruction(id = 80) ACC cm_splat_acc(float v);
spirv_instruction(id = 81) float cm_elem(ACC m, spirv_literal uint i); // OpCompositeExtract
spirv_instruction(id = 4457) HALF_A cm_load_a(spirv_by_reference uvec4 p, uint lay, uint stride);
spirv_instruction(id = 4457) HALF_B cm_load_b(spirv_by_reference uvec4 p, uint lay, uint stride);
spirv_instruction(id = 4458) void cm_store(spirv_by_reference uvec4 p, ACC m, uint lay,
                                           uint stride);
spirv_instruction(id = 4459) ACC cm_mma(HALF_A a, HALF_B b, ACC c); // OpCooperativeMatrixMulAddKHR
spirv_instruction(id = 129) ACC cm_add(ACC a, ACC b);                // OpFAdd
spirv_instruction(id = 143) ACC cm_scale(ACC a, float s);            // OpMatrixTimesScalar
#define CM_ZERO cm_splat_acc(0.0)
#define CM_SPLAT_A(v) cm_splat_a(v)
#define CM_SPLAT_B(v) cm_splat_b(v)
#define CM_LOAD_A(m, arr, i, s) m = cm_load_a(arr[i], 0u, s) // 0: RowMajorKHR
#define CM_LOAD_B(m, arr, i, s) m = cm_load_b(arr[i], 0u, s)
#define CM_LOAD_BT(m, arr, i, s) m = cm_load_b(arr[i], 1u, s) // 1: ColumnMajorKHR
#define CM_STORE(m, arr, i, s) cm_store(arr[i], m, 0u, s)
#define CM_MMA(a, b, c) cm_mma(a, b, c)
#define CM_AXPY(c, d, s) cm_add(c, cm_scale(d, s))
#define CM_ELEM0(m) cm_elem(m, 0u)
#else
#extension GL_KHR_memory_scope_semantics : require
#extension GL_NV_cooperative_matrix : require
#define HALF_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define HALF_B HALF_A
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define CM_ZERO ACC(0.0)
#define CM_SPLAT_A(v) HALF_A(v)
#define CM_SPLAT_B(v) HALF_B(v)
#define CM_LOAD_A(m, arr, i, s) coopMatLoadNV(m, arr, i, s, false)
#define CM_LOAD_B(m, arr, i, s) coopMatLoadNV(m, arr, i, s, false)
#define CM_LOAD_BT(m, arr, i, s) coopMatLoadNV(m, arr, i, s, true)
#define CM_STORE(m, arr, i, s) coopMatStoreNV(m, arr, i, s, false)
#define CM_MMA(a, b, c) coopMatMulAddNV(a, b, c)
#define CM_AXPY(c, d, s) ((c) + (d) * (s))
#define CM_ELEM0(m) float((m)[0])
#endif
