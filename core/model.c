/* r1_model: loading a checkpoint folder and placing layers on backends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_util.h"
#include "model.h"

void r1_free(void *p) {
    free(p);
}

void r1_model_params_default(r1_model_params *p) {
    memset(p, 0, sizeof *p);
    p->gpu_device = -1;
}

static r1_status wrap_tensors(r1_model *m, r1_error *err) {
    m->wt = calloc((size_t)m->st->n + 1, sizeof *m->wt);
    if (!m->wt) return r1__err(err, R1_E_NOMEM, "out of memory");
    for (int i = 0; i < m->st->n; i++) {
        const r1_st_entry *e = &m->st->t[i];
        r1_tensor *t = &m->wt[i];
        t->name = e->name;
        t->type = e->type;
        t->ndim = e->ndim;
        memcpy(t->ne, e->ne, sizeof t->ne);
        t->data = (void *)e->data;
        t->is_weight = 1;
    }
    return R1_OK;
}

#ifndef R1_HAVE_VULKAN
r1_status r1__vulkan_backend_new(int device, r1_backend **out, r1_error *err) {
    (void)device;
    *out = NULL;
    return r1__err(err, R1_E_DEVICE, "--gpu-layers: this build of r1run has no Vulkan backend");
}
r1_status r1__vulkan_list_devices(FILE *f, r1_error *err) {
    (void)f;
    return r1__err(err, R1_E_DEVICE, "this build of r1run has no Vulkan backend");
}
#endif

/* Layers [L - n_gpu, L) go to the GPU: the last layers first, as llama.cpp does,
 * so the activation crosses the boundary once on the way in; the output head
 * joins them only when every layer is on the GPU (one transfer out: the logits),
 * and the token embedding (layer -1) where the plan puts it there too. */
static void assign_layers(r1_model *m, int n_gpu, int head_on_gpu, int embed_on_gpu) {
    int L = m->cfg.n_layers;
    for (int l = -1; l <= L; l++) {
        int gpu = l < 0 ? embed_on_gpu : l < L ? l >= L - n_gpu : head_on_gpu;
        m->layer_backend[l + 1] = gpu ? 1 : 0;
    }
}

static r1_status load_weight(r1_model *m, r1_backend *be, r1_tensor *w, r1_error *err) {
    m->be_bytes[be->index] += r1__tensor_nbytes(w);
    return be->i->weight_load(be, w, err);
}

static r1_status load_linear(r1_model *m, r1_backend *be, r1_qlinear *q, r1_error *err) {
    r1_tensor *ts[] = {q->qweight, q->qzeros, q->scales, q->g_idx, q->bias};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (!ts[i]) continue;
        r1_status st = load_weight(m, be, ts[i], err);
        if (st) return st;
    }
    return be->i->qlinear_prepare ? be->i->qlinear_prepare(be, q, err) : R1_OK;
}

static int progress(r1_model *m, float f) {
    return m->params.progress && m->params.progress(f, m->params.progress_user);
}

/* Hands each layer's weights to the backend that runs it (upload or prepare). */
static r1_status load_weights(r1_model *m, r1_error *err) {
    int L = m->cfg.n_layers;
    r1_status st = R1_OK;
    for (int l = 0; l < L && !st; l++) {
        r1_backend *be = m->be[m->layer_backend[l + 1]];
        r1_layer_weights *w = &m->layers[l];
        r1_qlinear *lin[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        if (!(st = load_weight(m, be, w->attn_norm, err)))
            st = load_weight(m, be, w->ffn_norm, err);
        for (size_t i = 0; i < sizeof lin / sizeof lin[0] && !st; i++)
            st = load_linear(m, be, lin[i], err);
        if (!st && progress(m, 0.05f + 0.9f * (float)(l + 1) / (float)L))
            st = r1__err(err, R1_E_CANCELLED, "load cancelled");
    }
    r1_backend *hb = m->be[m->layer_backend[L + 1]];
    if (!st) st = load_weight(m, hb, m->norm, err);
    if (!st) st = load_weight(m, hb, m->lm_head, err);
    if (!st && m->lm_head != m->embed)
        st = load_weight(m, m->be[m->layer_backend[0]], m->embed, err);
    /* the 8-bit head is a CPU kernel; a GPU head stays exact */
    if (!st && m->params.lm_head_q8 && hb == m->be[0]) {
        st = r1__cpu_head_q8(m->lm_head, err);
        /* bytes read per token: the head as int8 rows with a float scale each */
        uint64_t n = (uint64_t)m->lm_head->ne[0], k = (uint64_t)m->lm_head->ne[1];
        if (!st) m->weight_bytes -= r1__tensor_nbytes(m->lm_head) - (n * k + 4 * n);
    }
    /* the exact head is read whole every token: stream it from 2 MiB pages
     * (measured on 14b: 88 ms/token instead of 106-250 ms from page-cache pages) */
    else if (!st && hb == m->be[0] && !(m->head_copy = r1__cpu_weight_to_huge(m->lm_head, err)))
        st = err ? err->code : R1_E_NOMEM;
    return st;
}

/* Creates the GPU backend when layers are asked for; reports its free memory. */
static r1_status open_gpu(r1_model *m, uint64_t *free_mem, r1_error *err) {
    *free_mem = 0;
    if (m->params.gpu_layers == 0) return R1_OK;
    r1_status st = r1__vulkan_backend_new(m->params.gpu_device, &m->be[1], err);
    if (st) return st;
    m->be[1]->index = 1;
    m->n_be = 2;
    if (m->be[1]->i->free_memory) *free_mem = m->be[1]->i->free_memory(m->be[1]);
    snprintf(m->plan.device, sizeof m->plan.device, "%s", m->be[1]->i->name);
    return R1_OK;
}

static void close_gpu(r1_model *m) {
    if (m->be[1]) m->be[1]->i->free(m->be[1]);
    m->be[1] = NULL;
    m->n_be = 1;
}

static r1_status place_layers(r1_model *m, r1_error *err) {
    int L = m->cfg.n_layers;
    uint64_t free_mem = 0;
    m->layer_backend = calloc((size_t)L + 2, sizeof(int));
    if (!m->layer_backend) return r1__err(err, R1_E_NOMEM, "out of memory");
    r1_status st = r1__cpu_backend_new(m->params.n_threads, &m->be[0], err);
    if (st) return st;
    m->n_be = 1;
    if ((st = open_gpu(m, &free_mem, err))) return st;
    char dev[sizeof m->plan.device];
    memcpy(dev, m->plan.device, sizeof dev);
    int embed_gpu = 0;
    if ((st = r1__plan_make(m, free_mem, &m->plan, &embed_gpu, err))) return st;
    memcpy(m->plan.device, dev, sizeof dev);
    if (m->plan.gpu_layers == 0) close_gpu(m);
    if (m->params.lm_head_q8 && m->plan.head_on_gpu && !*m->plan.note)
        snprintf(m->plan.note, sizeof m->plan.note,
                 "--lm-head q8 applies to a head on the CPU; the GPU's head stays exact (fp16)");
    if (*m->plan.note) fprintf(stderr, "r1run: %s\n", m->plan.note);
    if (m->params.verbose) {
        char buf[1024];
        r1_plan_format(&m->plan, buf, sizeof buf);
        fputs(buf, stderr);
    }
    assign_layers(m, m->plan.gpu_layers, m->plan.head_on_gpu, m->n_be > 1 && embed_gpu);
    if ((st = load_weights(m, err))) return st;
    snprintf(m->desc, sizeof m->desc, "CPU %s %d threads%s%s, %d/%d layers on the GPU",
             r1__cpu_backend_kernels(m->be[0]), r1__cpu_backend_threads(m->be[0]),
             m->n_be > 1 ? ", GPU " : "", m->n_be > 1 ? m->be[1]->i->name : "", m->plan.gpu_layers,
             L);
    return R1_OK;
}

static r1_status load_tokenizer(r1_model *m, r1_error *err) {
    char *p = r1__path_join(m->dir, "tokenizer.json");
    if (!p) return r1__err(err, R1_E_NOMEM, "out of memory");
    int have = access(p, F_OK) == 0;
    free(p);
    return have ? r1_tokenizer_load(m->dir, &m->tok, err) : R1_OK;
}

/* Reads config and safetensors headers and binds the weights (no backend yet). */
static r1_status model_open(const char *dir, const r1_model_params *p, r1_model **out,
                            r1_error *err) {
    *out = NULL;
    if (!dir) return r1__err(err, R1_E_INVAL, "r1_model_load: no model folder given");
    r1_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return r1__err(err, R1_E_NOMEM, "out of memory");
    }
    if (p)
        m->params = *p;
    else
        r1_model_params_default(&m->params);
    r1_status st = r1__config_load(dir, &m->cfg, err);
    if (!st) st = r1__st_open_dir(dir, &m->st, err);
    if (!st) st = wrap_tensors(m, err);
    if (!st) st = r1__qwen2_bind(m, err);
    if (st) {
        r1_model_free(m);
        return st;
    }
    *out = m;
    return R1_OK;
}

r1_status r1_model_load(const char *dir, const r1_model_params *p, r1_model **out, r1_error *err) {
    if (!out) return r1__err(err, R1_E_INVAL, "r1_model_load: out is NULL");
    r1_model *m;
    r1_status st = model_open(dir, p, &m, err);
    if (st) return st;
    if (progress(m, 0.0f)) st = r1__err(err, R1_E_CANCELLED, "load cancelled");
    if (!st) st = load_tokenizer(m, err);
    if (!st) st = place_layers(m, err);
    if (!st && progress(m, 1.0f)) st = r1__err(err, R1_E_CANCELLED, "load cancelled");
    if (st) {
        r1_model_free(m);
        return st;
    }
    *out = m;
    return R1_OK;
}

r1_status r1_plan_model(const char *dir, const r1_model_params *p, r1_plan *plan, r1_error *err) {
    r1_model *m;
    uint64_t free_mem = 0;
    r1_status st = model_open(dir, p, &m, err);
    if (st) return st;
    if (!(st = open_gpu(m, &free_mem, err))) {
        char dev[sizeof plan->device];
        memcpy(dev, m->plan.device, sizeof dev);
        if (!(st = r1__plan_make(m, free_mem, plan, NULL, err)))
            memcpy(plan->device, dev, sizeof dev);
    }
    r1_model_free(m);
    return st;
}

r1_status r1_list_devices(FILE *f, r1_error *err) {
    return r1__vulkan_list_devices(f, err);
}

const r1_plan *r1_model_plan(const r1_model *m) {
    return &m->plan;
}

/* Gives each backend back the derived data it made for its layers. */
static void release_weights(r1_model *m) {
    for (int l = 0; m->layers && m->layer_backend && l < m->cfg.n_layers; l++) {
        r1_backend *be = m->be[m->layer_backend[l + 1]];
        r1_layer_weights *w = &m->layers[l];
        r1_qlinear *lin[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        for (size_t i = 0; be && be->i->qlinear_release && i < sizeof lin / sizeof lin[0]; i++)
            be->i->qlinear_release(be, lin[i]);
    }
    if (m->lm_head && m->lm_head->cpu_extra) r1__cpu_head_q8_free(m->lm_head);
}

void r1_model_free(r1_model *m) {
    if (!m) return;
    release_weights(m);
    free(m->head_copy);
    for (int i = R1_MAX_BACKENDS - 1; i >= 0; i--)
        if (m->be[i]) m->be[i]->i->free(m->be[i]);
    r1_tokenizer_free(m->tok);
    free(m->layers);
    free(m->layer_backend);
    free(m->wt);
    r1__st_close(m->st);
    free(m->dir);
    free(m);
}

int r1_model_n_vocab(const r1_model *m) {
    return m->cfg.vocab;
}
int r1_model_n_layers(const r1_model *m) {
    return m->cfg.n_layers;
}
int r1_model_max_ctx(const r1_model *m) {
    return m->cfg.max_pos;
}
int r1_model_bos(const r1_model *m) {
    int b = m->tok ? r1_tokenizer_bos(m->tok) : -1;
    return b >= 0 ? b : m->cfg.bos;
}
int r1_model_eos(const r1_model *m) {
    return m->cfg.eos;
}
uint64_t r1_model_weight_bytes(const r1_model *m) {
    return m->weight_bytes;
}
void r1_model_sampler_defaults(const r1_model *m, r1_sampler_params *p) {
    r1_sampler_params_default(p);
    const r1_config *c = &m->cfg;
    p->temperature = c->gen_do_sample ? (float)c->gen_temperature : 0.0f;
    p->top_p = (float)c->gen_top_p;
    p->top_k = c->gen_top_k;
}

const char *r1_model_backend_desc(const r1_model *m) {
    return m->desc;
}
uint64_t r1_model_backend_bytes(const r1_model *m, int b) {
    return b >= 0 && b < R1_MAX_BACKENDS ? m->be_bytes[b] : 0;
}
double r1_model_backend_bandwidth(r1_model *m, int b) {
    if (b < 0 || b >= R1_MAX_BACKENDS || !m->be[b] || !m->be[b]->i->mem_bandwidth) return 0;
    return m->be[b]->i->mem_bandwidth(m->be[b]);
}
const r1_tokenizer *r1_model_tokenizer(const r1_model *m) {
    return m->tok;
}
