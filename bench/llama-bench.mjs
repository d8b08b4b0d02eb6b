// llama.cpp's CPU speed on a GGUF file (bench/mkgguf.py), measured as `r1run bench` and
// llama-bench measure: pp = one batch of P random tokens into an empty cache, tg = N single
// token decodes from an empty cache, each the median of R runs after one warm-up.
// llama.cpp comes from npm's node-llama-cpp prebuilt binaries (its CPU variants are picked
// by CPU features at load); nothing here is part of r1run's build or tests:
//   npm install --prefix /tmp/llnpm node-llama-cpp@3.22.1
//   NODE_PATH=/tmp/llnpm/node_modules node bench/llama-bench.mjs -m m.gguf -t 2 -p 64,512 -n 32 -r 3
import { createRequire } from "node:module";
import path from "node:path";

const args = process.argv.slice(2);
const opt = { m: null, t: 2, p: "64", n: 32, r: 3 };
for (let i = 0; i < args.length; i += 2) {
    const k = args[i].replace(/^-+/, "");
    if (!(k in opt) || i + 1 >= args.length) {
        console.error(`llama-bench.mjs: bad flag '${args[i]}' (expected -m FILE -t N -p LIST -n N -r N)`);
        process.exit(2);
    }
    opt[k] = args[i + 1];
}
if (!opt.m) {
    console.error("llama-bench.mjs: -m FILE.gguf is required");
    process.exit(2);
}
// node resolves NODE_PATH only for require(), so resolve the package from there
const require = createRequire(path.join((process.env.NODE_PATH || "").split(":")[0] || process.cwd(), "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const threads = Number(opt.t), runs = Number(opt.r), ntg = Number(opt.n);
const pps = String(opt.p).split(",").map(Number).filter((x) => x > 0);
const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.warn });
const model = await llama.loadModel({ modelPath: opt.m });
const maxp = Math.max(64, ...pps);
const ctx = await model.createContext({
    contextSize: Math.max(512, maxp + ntg + 16), batchSize: maxp, threads: { ideal: threads, min: threads },
});
const seq = ctx.getSequence();
const rnd = (n) => Array.from({ length: n }, () => 1000 + Math.floor(Math.random() * 100000));
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

async function once(kind, n) {
    await seq.clearHistory();
    const toks = rnd(n);
    const t0 = process.hrtime.bigint();
    if (kind === "pp") await seq.evaluateWithoutGeneratingNewTokens(toks);
    else for (const t of toks) await seq.evaluateWithoutGeneratingNewTokens([t]);
    return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function test(kind, n) {
    await once(kind, n); // warm-up: page faults, weight repacking, thread start
    const r = [];
    for (let i = 0; i < runs; i++) r.push(await once(kind, n));
    const line = { test: `${kind}${n}`, tokens_per_s: +median(r).toFixed(2), runs: r.map((x) => +x.toFixed(2)), threads };
    console.log(JSON.stringify(line));
}

console.error(`llama.cpp (node-llama-cpp ${llama.buildType ?? ""}) cpu ${llama.cpuMathCores ?? "?"} cores, ${opt.m}`);
for (const p of pps) await test("pp", p);
if (ntg > 0) await test("tg", ntg);
await ctx.dispose();
await model.dispose();
