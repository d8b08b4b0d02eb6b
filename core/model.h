/* Internal view of a loaded model and of a session (one sequence). */
#ifndef R1_MODEL_H
#define R1_MODEL_H

#include "backend.h"
#include "config.h"
#include "graph.h"
#include "safetensors.h"
#include "scheduler.h"

typedef struct r1_layer_weights {
    r1_tensor *attn_norm, *ffn_norm;
    r1_qlinear q, k, v, o, gate, up, down;
} r1_layer_weights;

struct r1_model {
    char *dir;
    r1_config cfg;
    r1_model_params params;
    r1_st *st;
    r1_tensor *wt; /* one r1_tensor per checkpoint entry, same order as st->t */
    r1_tensor *embed, *norm, *lm_head;
    r1_layer_weights *layers;
    r1_backend *be[R1_MAX_BACKENDS];
    int n_be;
    int *layer_backend; /* [n_layers + 2]: backend of layer l at index l + 1 */
    r1_tokenizer *tok;
    uint64_t weight_bytes;              /* bytes of weights read per decoded token */
    uint64_t be_bytes[R1_MAX_BACKENDS]; /* weight bytes placed on each backend */
    char desc[256];
    r1_plan plan;
    void *head_copy; /* the CPU head's 2 MiB-page copy, if made */
};

struct r1_session {
    r1_model *m;
    int n_ctx, n_batch, n_out_max;
    int pos;
    r1_graph *g;
    r1_sched *sched;
    r1_tensor *logits_t; /* [n_out_max, vocab] graph output */
    float *logits;       /* host copy: rows of the last eval */
    int n_logit_rows, cap_logit_rows;
    int (*abort_cb)(void *user);
    void *abort_user;
};

/* models/qwen2.c: binds checkpoint tensors to the model (validating names,
 * shapes and dtypes against the config) and builds the forward graph. */
/* core/plan.c */
uint64_t r1__layer_weight_bytes(const r1_model *m, int l);
/* *embed_gpu (where given): whether the token embedding goes to the GPU too. */
r1_status r1__plan_make(const r1_model *m, uint64_t gpu_free, r1_plan *p, int *embed_gpu,
                        r1_error *err);

r1_status r1__qwen2_bind(r1_model *m, r1_error *err);
r1_status r1__qwen2_build(r1_model *m, r1_graph *g, int n_ctx, int n_out_max, r1_tensor **logits,
                          r1_error *err);

#endif
