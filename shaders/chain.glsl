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

#ifdef R1_TRACE
// The decode trace (vulkan/vk_trace.c), a diagnostic built with
// -DR1_SHADER_DEFS=R1_TRACE: invocation 0 notes the real-time clock at marks
// 0-7 (trace_begin sets them all to the start) and, at the end, appends a
// record to the trace region of the scratch (at run.trace): counter, workgroup, kind
// (1 q4_matvec, 2 attn_dec, 3 attn_combine), the marks, the end time. Marks:
// 0 start, 1 waited, 2 staged, 3 streamed, 4 x arrived, 5 x quantized, 6 split
// counted, 7 finished (q4_matvec.comp).
#extension GL_EXT_shader_realtime_clock : require
#ifdef R1_TRACE_SM // NVIDIA (VK_NV_shader_sm_builtins): the SM in the kind word's bits 8+
#extension GL_NV_shader_sm_builtins : require
#define TRACE_SM (gl_SMIDNV << 8)
#else
#define TRACE_SM 0u
#endif
#define TRACE_MAX 300000u
shared uint tr_t[8];
void trace_mark(uint k) {
    if (gl_LocalInvocationIndex == 0u) tr_t[k] = clockRealtime2x32EXT().x;
}
void trace_begin() {
    trace_mark(0u);
    trace_mark(1u);
    trace_mark(2u);
    trace_mark(3u);
    trace_mark(4u);
    trace_mark(5u);
    trace_mark(6u);
    trace_mark(7u);
}
void trace_flush(uint kind) {
    uint b = run.trace;
    if (gl_LocalInvocationIndex == 0u && b != 0u) {
        uint t = clockRealtime2x32EXT().x;
        uint i = atomicAdd(cnt[b], 1u);
        if (i < TRACE_MAX) {
            uint o = b + 16u + i * 12u;
            cnt[o] = p.chain & 0xFFFFu;
            cnt[o + 1u] = gl_WorkGroupID.x + gl_NumWorkGroups.x * (gl_WorkGroupID.y + gl_NumWorkGroups.y * gl_WorkGroupID.z);
            cnt[o + 2u] = kind | TRACE_SM;
            for (uint k = 0u; k < 8u; k++) cnt[o + 3u + k] = tr_t[k];
            cnt[o + 11u] = t;
        }
    }
}
#else
#define trace_mark(k)
#define trace_begin()
#define trace_flush(k)
#endif

// Release and acquire around the counters. GLSL's own memory model has only
// memoryBarrierBuffer(), a full fence each invocation executes, which NVIDIA's
// compiler makes wait for every memory operation in flight, the weight loads
// issued before a chain wait included (H200 14b, knocked out, results wrong:
// tg64 266 -> 279 without the release fences, -> 284 without the acquire
// ones). With R1_VMM (the Vulkan memory model; vk_pipeline.c picks these
// variants for chained decode where the device has it) the counter atomics
// carry release / acquire semantics themselves, and workgroup barriers that
// include buffer memory pass them on between a workgroup's invocations:
// tg64 267 -> 284-285, results as with the fences.
#ifdef R1_VMM
#define CNT_POLL(at) atomicLoad(cnt[at], gl_ScopeQueueFamily, gl_StorageSemanticsBuffer, gl_SemanticsAcquire)
#define CNT_SIGNAL(at) atomicAdd(cnt[at], 1u, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer, gl_SemanticsRelease)
#define CNT_ARRIVE(at) atomicAdd(cnt[at], 1u, gl_ScopeQueueFamily, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease)
#define BAR_BUF() controlBarrier(gl_ScopeWorkgroup, gl_ScopeWorkgroup, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared, gl_SemanticsAcquireRelease)
#define FENCE_BUF()
#else
#define CNT_POLL(at) atomicOr(cnt[at], 0u)
#define CNT_SIGNAL(at) atomicAdd(cnt[at], 1u)
#define CNT_ARRIVE(at) atomicAdd(cnt[at], 1u)
#define BAR_BUF() barrier()
#define FENCE_BUF() memoryBarrierBuffer()
#endif

// Invocation 0 polls cnt[at] until it reaches n, then every invocation may
// read what the counted workgroups wrote. Polls two nested loops deep
// (lavapipe's compiler cuts a loop off at 65,535 iterations); however they
// end, a count not reached sets the error flag. Uniform control flow.
void chain_poll(uint at, uint n) {
    if (gl_LocalInvocationIndex == 0u) {
        uint v = 0u;
        for (uint i = 0u; i < CHAIN_SPIN_OUTER && v < n; i++)
            for (uint j = 0u; j < 65535u; j++) {
                v = CNT_POLL(at);
                if (v >= n) break;
            }
        if (v < n) atomicOr(cnt[0], 1u);
        FENCE_BUF();
    }
    BAR_BUF();
    FENCE_BUF();
}

// Before the dispatch's first activation read or write. Uniform control flow.
void chain_wait() {
    uint n = p.chain >> 16;
    if (n != 0u) chain_poll((p.chain & 0xFFFFu) - 1u, n); // uniform
    trace_mark(1u);
}

// After a tile's last write: one count on this dispatch's counter. Uniform
// control flow.
void chain_signal() {
    uint own = p.chain & 0xFFFFu;
    if (own == 0u) return; // uniform
    FENCE_BUF();
    BAR_BUF();
    if (gl_LocalInvocationIndex == 0u) CNT_SIGNAL(own);
}
