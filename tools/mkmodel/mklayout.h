/* The tensor list of a Qwen2 GPTQ-Int4 checkpoint (HF names, dtypes, shapes), in the order
 * a Hugging Face state_dict lists them (which is also the order shards are filled in):
 *   model.embed_tokens.weight,
 *   per layer: self_attn.{q,k,v,o}_proj.{qweight,qzeros,scales,g_idx[,bias]},
 *              mlp.{gate,up,down}_proj.{qweight,qzeros,scales,g_idx},
 *              input_layernorm.weight, post_attention_layernorm.weight,
 *   model.norm.weight, lm_head.weight (absent when tied).
 * Shapes follow shared/golden/README.md: qweight [K/8, N], qzeros [K/G, N/8], scales [K/G, N],
 * g_idx [K], bias [N]. Together with mkgen.h this lets a test recompute any element:
 *   mkgen_tensor t; if (mk_layout_find(&m, name, &t)) v = mkgen_value(&t, i); */
#ifndef R1_MKLAYOUT_H
#define R1_MKLAYOUT_H

#include "mkgen.h"

/* Shape and quantization parameters that decide the tensors and their values. */
typedef struct mk_model {
    uint64_t seed;
    uint32_t hidden, inter, layers, heads, kv_heads, vocab, group;
    bool sym, act_order, tied;
} mk_model;

/* Number of tensors in the checkpoint. */
size_t mk_layout_count(const mk_model *m);

/* Fills *t with tensor number idx (0 <= idx < mk_layout_count) in state_dict order. */
void mk_layout_at(const mk_model *m, size_t idx, mkgen_tensor *t);

/* Finds a tensor by its HF name; false if the checkpoint has no such tensor. */
bool mk_layout_find(const mk_model *m, const char *name, mkgen_tensor *t);

/* Sum of the data bytes of all tensors (the index.json "total_size"). */
uint64_t mk_layout_total_bytes(const mk_model *m);

#endif
