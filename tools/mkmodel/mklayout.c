/* Tensor list of a Qwen2 GPTQ-Int4 checkpoint: names, dtypes and shapes (see mklayout.h). */
#include "mklayout.h"

#include <stdio.h>
#include <string.h>

/* The seven quantized linears of a decoder layer, in state_dict order. */
enum { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, LIN_COUNT };
static const char *const lin_names[LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

/* q/k/v carry a bias (5 tensors), the others 4; then 2 norms. */
#define LAYER_TENSORS (3 * 5 + 4 * 4 + 2)

size_t mk_layout_count(const mk_model *m) {
    return 1 + (size_t)m->layers * LAYER_TENSORS + 1 + (m->tied ? 0 : 1);
}

static void set_shape(mkgen_tensor *t, mkgen_kind kind, mkgen_dtype dtype, uint64_t d0,
                      uint64_t d1) {
    t->kind = kind;
    t->dtype = dtype;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = d1 ? d0 * d1 : d0;
}

/* K (in_features) and N (out_features) of linear lin. */
static void linear_dims(const mk_model *m, int lin, uint32_t *k, uint32_t *n) {
    uint32_t head_dim = m->hidden / m->heads;
    *k = lin == LIN_DOWN ? m->inter : m->hidden;
    switch (lin) {
    case LIN_K:
    case LIN_V:
        *n = m->kv_heads * head_dim;
        break;
    case LIN_GATE:
    case LIN_UP:
        *n = m->inter;
        break;
    default:
        *n = m->hidden;
        break; /* q (heads * head_dim), o, down */
    }
}

/* Tensor `part` (0 qweight, 1 qzeros, 2 scales, 3 g_idx, 4 bias) of linear lin in layer l. */
static void linear_tensor(const mk_model *m, uint32_t l, int lin, int part, mkgen_tensor *t) {
    static const char *const parts[] = {"qweight", "qzeros", "scales", "g_idx", "bias"};
    uint32_t k, n, g = m->group;
    linear_dims(m, lin, &k, &n);
    snprintf(t->name, sizeof t->name, "model.layers.%u.%s.%s", l, lin_names[lin], parts[part]);
    t->in_f = k;
    t->group = g;
    switch (part) {
    case 0:
        set_shape(t, MKGEN_QWEIGHT, MKGEN_I32, k / 8, n);
        break;
    case 1:
        set_shape(t, MKGEN_QZEROS, MKGEN_I32, k / g, n / 8);
        break;
    case 2:
        set_shape(t, MKGEN_SCALES, MKGEN_F16, k / g, n);
        break;
    case 3:
        set_shape(t, MKGEN_G_IDX, MKGEN_I32, k, 0);
        break;
    default:
        set_shape(t, MKGEN_BIAS, MKGEN_F16, n, 0);
        break;
    }
}

/* Tensor j (0 <= j < LAYER_TENSORS) of layer l. */
static void layer_tensor(const mk_model *m, uint32_t l, size_t j, mkgen_tensor *t) {
    for (int lin = 0; lin < LIN_COUNT; lin++) {
        size_t parts = lin <= LIN_V ? 5 : 4;
        if (j < parts) {
            linear_tensor(m, l, lin, (int)j, t);
            return;
        }
        j -= parts;
    }
    snprintf(t->name, sizeof t->name, "model.layers.%u.%s.weight", l,
             j == 0 ? "input_layernorm" : "post_attention_layernorm");
    set_shape(t, MKGEN_NORM, MKGEN_F16, m->hidden, 0);
}

void mk_layout_at(const mk_model *m, size_t idx, mkgen_tensor *t) {
    memset(t, 0, sizeof *t);
    size_t layer_end = 1 + (size_t)m->layers * LAYER_TENSORS;
    if (idx == 0) {
        snprintf(t->name, sizeof t->name, "model.embed_tokens.weight");
        set_shape(t, MKGEN_EMBED, MKGEN_F16, m->vocab, m->hidden);
    } else if (idx < layer_end) {
        layer_tensor(m, (uint32_t)((idx - 1) / LAYER_TENSORS), (idx - 1) % LAYER_TENSORS, t);
    } else if (idx == layer_end) {
        snprintf(t->name, sizeof t->name, "model.norm.weight");
        set_shape(t, MKGEN_NORM, MKGEN_F16, m->hidden, 0);
    } else {
        snprintf(t->name, sizeof t->name, "lm_head.weight");
        set_shape(t, MKGEN_EMBED, MKGEN_F16, m->vocab, m->hidden);
    }
    t->hidden = m->hidden;
    t->sym = m->sym;
    t->act_order = m->act_order;
    t->key = mkgen_key(m->seed, t->name);
}

bool mk_layout_find(const mk_model *m, const char *name, mkgen_tensor *t) {
    size_t n = mk_layout_count(m);
    for (size_t i = 0; i < n; i++) {
        mk_layout_at(m, i, t);
        if (strcmp(t->name, name) == 0) return true;
    }
    return false;
}

uint64_t mk_layout_total_bytes(const mk_model *m) {
    uint64_t total = 0;
    size_t n = mk_layout_count(m);
    for (size_t i = 0; i < n; i++) {
        mkgen_tensor t;
        mk_layout_at(m, i, &t);
        total += t.numel * mkgen_dtype_size(t.dtype);
    }
    return total;
}
