// GPTQ int4 weight access (layout: see the golden README). qweight [K/8, N]
// words packed along K, qzeros [K/G, N/8] packed along N, scales [K/G, N] f16.
// For act-order linears the host has already permuted K so that groups are
// contiguous (row k' is in group k'/G) and perm[k'] names the input column.
layout(std430, binding = 3) readonly buffer QW { uint qw[]; };
layout(std430, binding = 4) readonly buffer SC { uint sc[]; };
layout(std430, binding = 5) readonly buffer QZ { uint qz[]; };
layout(std430, binding = 6) readonly buffer PM { uint perm[]; };
layout(std430, binding = 7) readonly buffer BI { uint bias[]; };

#define Q4_BIAS 1u
#define Q4_V2 2u
#define Q4_PERM 4u

layout(push_constant) uniform P {
    uint K, N, G;
    uint flags;
    uint qoff, soff, zoff, boff; // element offsets of the weights in their bindings
    uint btype;                  // bias dtype
#ifdef Q4_PUSH_EXTRA
    Q4_PUSH_EXTRA                // a shader's own trailing fields
#endif
} p;

float q4_scale(uint g, uint n) {
    return LOADH(sc, p.soff + g * p.N + n);
}

// The zero point of group g, column n: v1 checkpoints store zero-1, and
// (zq + 1) & 15 matches exllama/vLLM for the 15 nibble.
float q4_zero(uint g, uint n) {
    uint zq = (qz[p.zoff + g * (p.N >> 3) + (n >> 3)] >> (4u * (n & 7u))) & 15u;
    return float((p.flags & Q4_V2) != 0u ? zq : (zq + 1u) & 15u);
}

float q4_bias(uint n) {
    return (p.flags & Q4_BIAS) != 0u ? LOADF(bias, p.boff + n, p.btype) : 0.0;
}

// K splits of a prompt GEMM with tm-row, tk-deep tiles (q4_gemm.comp,
// gemm_cm.comp's split variants): up to ksplit while one row tile is live,
// fewer as rows grow, in chunks of kc (returned; a multiple of tk) such that
// every one of the ks splits is non-empty. Split kz takes [kz kc, kz kc + kc) of K.
uint q4_k_chunk(uint T, uint tm, uint tk, uint ksplit, out uint ks) {
    uint rt = (T + tm - 1u) / tm, want = max(1u, ksplit / rt);
    uint kc = ((p.K + tk - 1u) / tk + want - 1u) / want * tk;
    ks = (p.K + kc - 1u) / kc;
    return kc;
}
