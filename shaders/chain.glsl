// Chained decode dispatches (vulkan/vk_record.c): a dispatch recorded without
// a barrier after the one it reads waits here until that one's counter reaches
// its count of finished tiles. Include after the push constants `p` (whose
// last word is `chain`) and the coherent scratch array `cnt`.
//
// p.chain: bits 0-15, 1 + this dispatch's index, which is the scratch element
// of its counter (0: not chained); bits 16-31, the count to wait for on the
// previous dispatch's counter, one element before (0: no wait). Element 0 is
// the error flag, set by a wait that gave up.
#define CHAIN_SPIN_OUTER 64u // x 65,535 polls (seconds of them): past this, an error

// Invocation 0 polls cnt[at] until it reaches n, then every invocation may
// read what the counted workgroups wrote. Polls two nested loops deep
// (lavapipe's compiler cuts a loop off at 65,535 iterations); however they
// end, a count not reached sets the error flag. Uniform control flow.
void chain_poll(uint at, uint n) {
    if (gl_LocalInvocationIndex == 0u) {
        uint v = 0u;
        for (uint i = 0u; i < CHAIN_SPIN_OUTER && v < n; i++)
            for (uint j = 0u; j < 65535u; j++) {
                v = atomicOr(cnt[at], 0u);
                if (v >= n) break;
            }
        if (v < n) atomicOr(cnt[0], 1u);
        memoryBarrierBuffer();
    }
    barrier();
    memoryBarrierBuffer();
}

// Before the dispatch's first activation read or write. Uniform control flow.
void chain_wait() {
    uint n = p.chain >> 16;
    if (n != 0u) chain_poll((p.chain & 0xFFFFu) - 1u, n); // uniform
}

// After a tile's last write: one count on this dispatch's counter. Uniform
// control flow.
void chain_signal() {
    uint own = p.chain & 0xFFFFu;
    if (own == 0u) return; // uniform
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) atomicAdd(cnt[own], 1u);
}
