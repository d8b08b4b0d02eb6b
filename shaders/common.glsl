// Shared declarations for every r1run compute shader.
//
// Binding 0 is the per-call run buffer: the host rewrites it before each
// forward call, so command buffers recorded once serve every call. Tensors
// are bound at 1..8; float weights (F32/F16/BF16) are read as 32-bit words so
// that no 16-bit storage feature is needed, and weights carry an element
// offset because an imported mmap page range starts before the tensor.
#ifdef R1_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(std430, binding = 0) readonly buffer Run {
    uint n_tokens; // rows in this call
    uint pos;      // position of row 0
    uint n_out;    // rows for PICK/OUT ops
    uint trace;    // decode trace region in the scratch (vulkan/vk_trace.c), 0: none
    float rope[];  // cos/sin tables, [t][i][2] per RoPE configuration
} run;

#define ROWS_ALL 0u
#define ROWS_PICK 1u
#define ROWS_OUT 2u

// First source row and row count of an op (graph.h r1_rows).
void rows_of(uint mode, out uint first, out uint count) {
    first = mode == ROWS_PICK ? run.n_tokens - run.n_out : 0u;
    count = mode == ROWS_ALL ? run.n_tokens : run.n_out;
}

// Element i of a float weight stored as words; dt: 0 F32, 1 F16, 2 BF16 (r1_dtype).
#define LOADF(buf, i, dt)                                                     \
    ((dt) == 0u ? uintBitsToFloat(buf[i])                                     \
     : (dt) == 1u ? unpackHalf2x16(buf[(i) >> 1])[(i) & 1u]                   \
                  : uintBitsToFloat((buf[(i) >> 1] >> (((i) & 1u) * 16u)) << 16))

// An f16 element i of a word array.
#define LOADH(buf, i) unpackHalf2x16(buf[(i) >> 1])[(i) & 1u]
