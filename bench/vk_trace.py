#!/usr/bin/env python3
# Summarises a decode trace (R1_VK_TRACE=file, shaders built with
# -DR1_SHADER_DEFS=R1_TRACE; vulkan/vk_trace.c): per dispatch shape, the median
# over the layers of each phase, in microseconds. Records: counter, workgroup,
# kind, t0..t7, end (chain.glsl); "waited" and "sdmax" (the last workgroup done
# streaming) and "end" count from the end of the dispatch before.
# t0 start, t1 waited, t4 x arrived, t5 staged (before barrier), t2 staged,
# t3 streamed, t6 split counted, t7 finished, tf flushed.
import sys, statistics as st
from collections import defaultdict
D, R = [], []
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == 'D': D.append((int(f[1]), int(f[2]), f[3]))
    else: R.append(tuple(int(x) for x in f[1:]))
t0 = min(r[3] for r in R)
rel = lambda v: ((v - t0) & 0xFFFFFFFF) / 1000.0
names = defaultdict(set)
for i, g, n in D: names[g].add(n)
G = defaultdict(list)
for r in R: G[(r[0], r[2])].append(r)
keys = sorted(G, key=lambda k: min(rel(r[3]) for r in G[k]))
prev_end, agg = 0.0, defaultdict(list)
for k in keys:
    rs = G[k]
    T = lambda i: [rel(r[i]) for r in rs]
    med = lambda a: st.median(a)
    e = max(T(11))
    row = dict(waited=med(T(4)) - prev_end, arrived=med([b - a for a, b in zip(T(4), T(7))]),
               comp=med([b - a for a, b in zip(T(7), T(8))]), bar=med([b - a for a, b in zip(T(8), T(5))]),
               stage=med([b - a for a, b in zip(T(4), T(5))]), stream=med([b - a for a, b in zip(T(5), T(6))]),
               sdmax=max(T(6)) - prev_end, count=med([b - a for a, b in zip(T(6), T(9))]),
               fin=med([b - a for a, b in zip(T(9), T(10))]), tail=med([b - a for a, b in zip(T(10), T(11))]),
               end=e - prev_end)
    agg[('/'.join(sorted(names[k[0]])), k[1], len(rs))].append(row)
    prev_end = e
cols = ['waited', 'arrived', 'comp', 'bar', 'stage', 'stream', 'sdmax', 'count', 'fin', 'tail', 'end']
print('%-30s %4s %4s ' % ('shape', 'n', 'x') + ' '.join('%7s' % c for c in cols))
for k, v in sorted(agg.items(), key=lambda kv: -len(kv[1])):
    print('%-30s %4d %4d ' % ((k[0][:26] + ' k%d' % k[1]), k[2], len(v)) + ' '.join('%7.1f' % st.median(x[c] for x in v) for c in cols))
