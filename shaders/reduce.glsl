// Workgroup sum of one float per invocation (WG: the workgroup size, a power of
// two). With subgroup arithmetic the subgroups reduce in registers and only
// their partial sums go through shared memory.
#ifdef R1_SUBGROUP
shared float red_s[WG];
float wg_sum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) red_s[gl_SubgroupID] = v;
    barrier();
    float s = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) s += red_s[i];
    barrier();
    return s;
}
#else
shared float red_s[WG];
float wg_sum(float v) {
    uint l = gl_LocalInvocationIndex;
    red_s[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_s[l] += red_s[l + s];
        barrier();
    }
    float r = red_s[0];
    barrier();
    return r;
}
#endif
