#!/usr/bin/env python3
"""Summarises a Vulkan decode trace.

Usage: R1_VK_TRACE=tr.txt r1run bench ... (shaders built with
-DR1_SHADER_DEFS=R1_TRACE, or R1_TRACE,R1_TRACE_SM on NVIDIA for SM numbers),
then: python3 bench/vk_trace.py tr.txt

The file (vulkan/vk_trace.c) lists the last decode pass's dispatches ("D index
counter shader grid") and one record per workgroup ("R counter workgroup kind
t0..t7 end", chain.glsl): kind 1 q4_matvec, 2 attn_dec, 3 attn_combine, the SM
in bits 8 and up. Marks (microseconds here): 0 start, 1 waited, 2 staged,
3 streamed, 4 x arrived, 5 x quantized, 6 split counted, 7 finished.

For each dispatch shape (shaders and workgroups of one chain counter), the
median over the layers of: its duration (end of the counter before to its own
end), and for the GPTQ matvecs when the median workgroup had waited, staged
and streamed, and the last one streamed, from the same origin. With SM
numbers, the matvecs' median streaming time for workgroups alone on their SM
and sharing it with others of the dispatch.
"""
import statistics as st
import sys
from collections import Counter, defaultdict


def main(path):
    names, recs = defaultdict(set), []
    for line in open(path):
        f = line.split()
        if f[0] == 'D':
            names[int(f[2])].add(f[3])
        elif f[0] == 'R':
            recs.append([int(x) for x in f[1:]])
    if not recs:
        sys.exit('no records: shaders built without -DR1_SHADER_DEFS=R1_TRACE?')
    t0 = min(r[3] for r in recs)
    us = lambda v: ((v - t0) & 0xFFFFFFFF) / 1000.0
    groups = defaultdict(list)
    for r in recs:
        groups[r[0]].append(r)
    order = sorted(groups, key=lambda g: max(us(r[11]) for r in groups[g]))
    rows, sm_rows, prev = defaultdict(list), defaultdict(lambda: defaultdict(list)), None
    for g in order:
        rs, end = groups[g], max(us(r[11]) for r in groups[g])
        shape = ('/'.join(sorted(names[g])), len(rs))
        if prev is not None:
            q = [r for r in rs if r[2] & 0xFF == 1]
            row = {'dur': end - prev}
            if q:
                med = lambda i: st.median(us(r[i]) - prev for r in q)
                row.update(waited=med(4), staged=med(5), streamed=med(6),
                           last=max(us(r[6]) for r in q) - prev)
                per_sm = Counter(r[2] >> 8 for r in q)
                for r in q:
                    sm_rows[shape][per_sm[r[2] >> 8]].append(us(r[6]) - us(r[5]))
            rows[shape].append(row)
        prev = end
    total = max(us(r[11]) for r in recs) - min(us(r[3]) for r in recs)
    print('decode pass %.1f us, %d workgroup records' % (total, len(recs)))
    cols = ['dur', 'waited', 'staged', 'streamed', 'last']
    print('%-34s %5s %5s ' % ('shape', 'wgs', 'count') + ' '.join('%8s' % c for c in cols))
    for shape, v in sorted(rows.items(), key=lambda kv: -sum(x['dur'] for x in kv[1])):
        cell = lambda c: '%8.2f' % st.median(x[c] for x in v) if c in v[0] else '%8s' % '-'
        print('%-34s %5d %5d ' % (shape[0][:34], shape[1], len(v)) + ' '.join(cell(c) for c in cols))
    if any(r[2] >> 8 for r in recs):
        print('streaming (us, median) by workgroups of the dispatch on the SM:')
        for shape, by in sm_rows.items():
            print('  %-32s %5d: ' % (shape[0][:32], shape[1]) +
                  ', '.join('%d: %.2f (%d)' % (k, st.median(by[k]), len(by[k])) for k in sorted(by)))


if __name__ == '__main__':
    main(sys.argv[1])
