#!/usr/bin/env python3
"""Random-weight GGUF files with r1-mkmodel's shapes, for a side-by-side with llama.cpp.

The issue's llama.cpp figures come from random weights of the same shapes; this writes
such a file (Q4_0 linears, the head in Q6_K, Q8_0 or F16) with the R1 tokenizer, so that
llama.cpp and `r1run bench` can be run in one sitting on one machine (bench/llama-bench.mjs).
Only the Python standard library: the data is random bytes with every block's scale set.

  python3 bench/mkgguf.py --preset 14b --head q6_k --out /tmp/m14b-q4_0.gguf
"""
import argparse
import json
import os
import struct
import sys

PRESETS = {  # hidden, ffn, layers, heads, kv heads, vocab, rope theta, eps
    "14b": (5120, 13824, 48, 40, 8, 152064, 1e6, 1e-5),
    "1.5b": (1536, 8960, 28, 12, 2, 151936, 1e4, 1e-6),
}
# ggml type: (id, elements per block, bytes per block, offset of the fp16 scale or None)
TYPES = {
    "f32": (0, 1, 4, None),
    "f16": (1, 1, 2, None),
    "q4_0": (2, 32, 18, 0),
    "q8_0": (8, 32, 34, 0),
    "q6_k": (14, 256, 210, 208),
}
ALIGN = 32


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    """One metadata pair; typ is a GGUF value type name."""
    codes = {"u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "bool": (7, "<?")}
    if typ == "str":
        return s(key) + struct.pack("<I", 8) + s(val)
    if typ == "strs":
        return s(key) + struct.pack("<IIQ", 9, 8, len(val)) + b"".join(s(v) for v in val)
    if typ == "i32s":
        return s(key) + struct.pack("<IIQ", 9, 5, len(val)) + struct.pack(f"<{len(val)}i", *val)
    code, fmt = codes[typ]
    return s(key) + struct.pack("<I", code) + struct.pack(fmt, val)


def tokenizer(path, n_vocab):
    """tokens, types and merges as llama.cpp's converter writes them for Qwen2."""
    t = json.load(open(path, encoding="utf-8"))
    toks = [None] * n_vocab
    types = [5] * n_vocab  # UNUSED padding rows
    for tok, i in t["model"]["vocab"].items():
        toks[i], types[i] = tok, 1
    for a in t["added_tokens"]:
        toks[a["id"]], types[a["id"]] = a["content"], 3 if a["special"] else 4
    toks = [x if x is not None else f"[PAD{i}]" for i, x in enumerate(toks)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]]
    return toks, types, merges


def tensors(p, head, tied):
    d, f, n_layers, nh, nkv, v = p[:6]
    kvd = d // nh * nkv
    out = [("token_embd.weight", [d, v], head if tied else "q4_0")]
    for i in range(n_layers):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", [d], "f32"),
            (b + "attn_q.weight", [d, d], "q4_0"), (b + "attn_q.bias", [d], "f32"),
            (b + "attn_k.weight", [d, kvd], "q4_0"), (b + "attn_k.bias", [kvd], "f32"),
            (b + "attn_v.weight", [d, kvd], "q4_0"), (b + "attn_v.bias", [kvd], "f32"),
            (b + "attn_output.weight", [d, d], "q4_0"),
            (b + "ffn_norm.weight", [d], "f32"),
            (b + "ffn_gate.weight", [d, f], "q4_0"), (b + "ffn_up.weight", [d, f], "q4_0"),
            (b + "ffn_down.weight", [f, d], "q4_0"),
        ]
    out.append(("output_norm.weight", [d], "f32"))
    if not tied:
        out.append(("output.weight", [d, v], head))
    return out


def nbytes(dims, typ):
    _, per, size, _ = TYPES[typ]
    n = 1
    for x in dims:
        n *= x
    return n // per * size


CHUNK = 1 << 22  # bytes of pattern per type, written over and over


def filler(typ):
    """Whole blocks of random data with sane scales (no NaN or Inf anywhere); f32 (the
    norms and biases) is all ones."""
    _, per, size, sc = TYPES[typ]
    if typ == "f32":
        return struct.pack(f"<{CHUNK // 4}f", *([1.0] * (CHUNK // 4)))
    n = CHUNK // size
    buf = bytearray(os.urandom(n * size))
    if typ == "f16":
        buf[1::2] = bytes(b & 0xAF for b in buf[1::2])  # exponent <= 15 - 4: |x| < 1
        return bytes(buf)
    scale = struct.pack("<e", 0.002)
    buf[sc::size] = scale[0:1] * n
    buf[sc + 1::size] = scale[1:2] * n
    return bytes(buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=PRESETS, required=True)
    ap.add_argument("--head", choices=["f16", "q8_0", "q6_k"], default="f16")
    ap.add_argument("--tied", action="store_true", help="embedding and head share one tensor")
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..",
                                                        "models", "r1-tokenizer", "tokenizer.json"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    p = PRESETS[a.preset]
    d, f, n_layers, nh, nkv, v, theta, eps = p
    toks, types, merges = tokenizer(a.tokenizer, v)
    meta = [
        kv("general.architecture", "str", "qwen2"),
        kv("general.name", "str", f"random {a.preset} Q4_0 + {a.head} head"),
        kv("general.alignment", "u32", ALIGN),
        kv("qwen2.context_length", "u32", 131072),
        kv("qwen2.embedding_length", "u32", d),
        kv("qwen2.feed_forward_length", "u32", f),
        kv("qwen2.block_count", "u32", n_layers),
        kv("qwen2.attention.head_count", "u32", nh),
        kv("qwen2.attention.head_count_kv", "u32", nkv),
        kv("qwen2.rope.freq_base", "f32", theta),
        kv("qwen2.attention.layer_norm_rms_epsilon", "f32", eps),
        kv("tokenizer.ggml.model", "str", "gpt2"),
        kv("tokenizer.ggml.pre", "str", "deepseek-r1-qwen"),
        kv("tokenizer.ggml.tokens", "strs", toks),
        kv("tokenizer.ggml.token_type", "i32s", types),
        kv("tokenizer.ggml.merges", "strs", merges),
        kv("tokenizer.ggml.bos_token_id", "u32", 151646),
        kv("tokenizer.ggml.eos_token_id", "u32", 151643),
        kv("tokenizer.ggml.add_bos_token", "bool", True),
    ]
    ts = tensors(p, a.head, a.tied)
    infos, off = [], 0
    for name, dims, typ in ts:
        infos.append(s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                     + struct.pack("<IQ", TYPES[typ][0], off))
        off += (nbytes(dims, typ) + ALIGN - 1) // ALIGN * ALIGN
    head = b"GGUF" + struct.pack("<IQQ", 3, len(ts), len(meta)) + b"".join(meta) + b"".join(infos)
    fills = {}
    with open(a.out, "wb") as fo:
        fo.write(head + b"\0" * (-len(head) % ALIGN))
        for name, dims, typ in ts:
            n = nbytes(dims, typ)
            pat = fills.setdefault(typ, filler(typ))
            while n > 0:
                k = min(n, len(pat))
                fo.write(pat[:k])
                n -= k
            fo.write(b"\0" * (-nbytes(dims, typ) % ALIGN))
    print(f"{a.out}: {len(ts)} tensors, {off / 1e9:.2f} GB of tensor data", file=sys.stderr)


if __name__ == "__main__":
    main()
