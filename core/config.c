#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_util.h"

static r1_status get_int(const cJSON *o, const char *k, const char *what, int *v, r1_error *err) {
    long long x;
    r1_status s = r1__json_int(o, k, what, &x, err);
    if (s) return s;
    if (x < 0 || x > (1ll << 30))
        return r1__err(err, R1_E_FORMAT, "%s: \"%s\" = %lld out of range", what, k, x);
    *v = (int)x;
    return R1_OK;
}

static r1_status check_arch(const cJSON *j, const char *path, r1_error *err) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const cJSON *a0 = cJSON_IsArray(ar) ? cJSON_GetArrayItem(ar, 0) : NULL;
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "qwen2"))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: model_type \"%s\" is not supported (qwen2 only)",
                       path, mt->valuestring);
    if (cJSON_IsString(a0) && strcmp(a0->valuestring, "Qwen2ForCausalLM"))
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: architecture \"%s\" is not supported (Qwen2ForCausalLM only)", path,
                       a0->valuestring);
    if (!cJSON_IsString(mt) && !cJSON_IsString(a0))
        return r1__err(err, R1_E_FORMAT, "%s: neither model_type nor architectures given", path);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu"))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported", path,
                       act->valuestring);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (rs && !cJSON_IsNull(rs))
        return r1__err(err, R1_E_UNSUPPORTED, "%s: rope_scaling is not supported", path);
    return R1_OK;
}

static r1_status parse_shapes(const cJSON *j, const char *p, r1_config *c, r1_error *err) {
    r1_status s;
    if ((s = get_int(j, "hidden_size", p, &c->hidden, err)) ||
        (s = get_int(j, "intermediate_size", p, &c->inter, err)) ||
        (s = get_int(j, "num_hidden_layers", p, &c->n_layers, err)) ||
        (s = get_int(j, "num_attention_heads", p, &c->n_heads, err)) ||
        (s = get_int(j, "vocab_size", p, &c->vocab, err)))
        return s;
    long long kv, mp, hd;
    if ((s = r1__json_int_opt(j, "num_key_value_heads", p, c->n_heads, &kv, err)) ||
        (s = r1__json_int_opt(j, "max_position_embeddings", p, 32768, &mp, err)))
        return s;
    if (c->hidden <= 0 || c->inter <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->vocab <= 0)
        return r1__err(err, R1_E_FORMAT,
                       "%s: hidden_size, intermediate_size, num_hidden_layers, "
                       "num_attention_heads and vocab_size must be positive",
                       p);
    if (c->hidden % c->n_heads)
        return r1__err(err, R1_E_FORMAT,
                       "%s: hidden_size %d is not a multiple of num_attention_heads %d", p,
                       c->hidden, c->n_heads);
    if ((s = r1__json_int_opt(j, "head_dim", p, c->hidden / c->n_heads, &hd, err))) return s;
    c->n_kv_heads = (int)kv;
    c->head_dim = (int)hd;
    c->max_pos = (int)(mp > 1 << 30 ? 1 << 30 : mp);
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads)
        return r1__err(err, R1_E_FORMAT,
                       "%s: num_key_value_heads %d does not divide num_attention_heads %d", p,
                       c->n_kv_heads, c->n_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > 1024)
        return r1__err(err, R1_E_FORMAT, "%s: head_dim %d must be even and at most 1024", p,
                       c->head_dim);
    if (c->max_pos <= 0)
        return r1__err(err, R1_E_FORMAT, "%s: max_position_embeddings must be positive", p);
    if ((s = r1__json_num_opt(j, "rope_theta", p, 10000.0, &c->rope_theta, err)) ||
        (s = r1__json_num_opt(j, "rms_norm_eps", p, 1e-6, &c->rms_eps, err)) ||
        (s = r1__json_bool_opt(j, "tie_word_embeddings", p, 0, &c->tied, err)))
        return s;
    if (!(c->rope_theta > 0) || !(c->rms_eps > 0))
        return r1__err(err, R1_E_FORMAT, "%s: rope_theta and rms_norm_eps must be positive", p);
    long long bos, eos;
    if ((s = r1__json_int_opt(j, "bos_token_id", p, -1, &bos, err)) ||
        (s = r1__json_int_opt(j, "eos_token_id", p, -1, &eos, err)))
        return s;
    c->bos = (int)bos;
    c->eos = (int)eos;
    return R1_OK;
}

static r1_status parse_quant(const cJSON *q, const char *p, r1_config *c, r1_error *err) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    if (cJSON_IsString(m) && strcmp(m->valuestring, "gptq"))
        return r1__err(err, R1_E_UNSUPPORTED,
                       "%s: quant_method \"%s\" is not supported (gptq only)", p, m->valuestring);
    long long bits, gs;
    r1_status s;
    if ((s = r1__json_int(q, "bits", p, &bits, err)) ||
        (s = r1__json_int_opt(q, "group_size", p, -1, &gs, err)) ||
        (s = r1__json_bool_opt(q, "desc_act", p, 0, &c->desc_act, err)) ||
        (s = r1__json_bool_opt(q, "sym", p, 1, &c->sym, err)) ||
        (s = r1__json_bool_opt(q, "lm_head", p, 0, &c->lm_head_quantized, err)))
        return s;
    if (bits != 4)
        return r1__err(err, R1_E_UNSUPPORTED, "%s: GPTQ bits = %lld is not supported (4-bit only)",
                       p, bits);
    if (gs != -1 && gs <= 0)
        return r1__err(err, R1_E_FORMAT, "%s: group_size %lld is invalid", p, gs);
    if (c->lm_head_quantized)
        return r1__err(err, R1_E_UNSUPPORTED, "%s: a quantized lm_head is not supported yet", p);
    c->bits = (int)bits;
    c->group_size = (int)gs;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(q, "checkpoint_format");
    if (!cJSON_IsString(f)) f = cJSON_GetObjectItemCaseSensitive(q, "format");
    c->zeros_v2 = 0;
    if (cJSON_IsString(f)) {
        if (!strcmp(f->valuestring, "gptq_v2"))
            c->zeros_v2 = 1;
        else if (strcmp(f->valuestring, "gptq"))
            return r1__err(err, R1_E_UNSUPPORTED, "%s: checkpoint_format \"%s\" is not supported",
                           p, f->valuestring);
    }
    return R1_OK;
}

/* quantization_config inside config.json, else quantize_config.json. */
static r1_status load_quant(const char *dir, const cJSON *cfg, const char *cpath, r1_config *c,
                            r1_error *err) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization_config");
    if (q) {
        if (!cJSON_IsObject(q))
            return r1__err(err, R1_E_FORMAT, "%s: quantization_config is not an object", cpath);
        return parse_quant(q, cpath, c, err);
    }
    char *qp = r1__path_join(dir, "quantize_config.json");
    if (!qp) return r1__err(err, R1_E_NOMEM, "out of memory");
    r1_status s;
    if (access(qp, F_OK) != 0) {
        s = r1__err(err, R1_E_UNSUPPORTED,
                    "%s: no quantization_config and no quantize_config.json: "
                    "only GPTQ-Int4 checkpoints are supported",
                    cpath);
    } else {
        cJSON *j;
        s = r1__json_load(qp, &j, err);
        if (!s) {
            s = parse_quant(j, qp, c, err);
            cJSON_Delete(j);
        }
    }
    free(qp);
    return s;
}

static r1_status load_generation(const char *dir, r1_config *c, r1_error *err) {
    c->gen_temperature = 1.0;
    c->gen_top_p = 1.0;
    c->gen_top_k = 0;
    c->gen_do_sample = 0;
    char *gp = r1__path_join(dir, "generation_config.json");
    if (!gp) return r1__err(err, R1_E_NOMEM, "out of memory");
    r1_status s = R1_OK;
    if (access(gp, F_OK) == 0) {
        cJSON *j = NULL;
        s = r1__json_load(gp, &j, err);
        long long bos, eos, tk;
        if (!s && !(s = r1__json_int_opt(j, "bos_token_id", gp, c->bos, &bos, err)) &&
            !(s = r1__json_int_opt(j, "eos_token_id", gp, c->eos, &eos, err)) &&
            !(s = r1__json_num_opt(j, "temperature", gp, 1.0, &c->gen_temperature, err)) &&
            !(s = r1__json_num_opt(j, "top_p", gp, 1.0, &c->gen_top_p, err)) &&
            !(s = r1__json_int_opt(j, "top_k", gp, 0, &tk, err)) &&
            !(s = r1__json_bool_opt(j, "do_sample", gp, 0, &c->gen_do_sample, err))) {
            c->bos = (int)bos;
            c->eos = (int)eos;
            c->gen_top_k = (int)tk;
        }
        cJSON_Delete(j);
    }
    free(gp);
    return s;
}

r1_status r1__config_load(const char *dir, r1_config *c, r1_error *err) {
    memset(c, 0, sizeof *c);
    char *cp = r1__path_join(dir, "config.json");
    if (!cp) return r1__err(err, R1_E_NOMEM, "out of memory");
    cJSON *j = NULL;
    r1_status s = r1__json_load(cp, &j, err);
    if (!s && !cJSON_IsObject(j)) s = r1__err(err, R1_E_FORMAT, "%s: not a JSON object", cp);
    if (!s) s = check_arch(j, cp, err);
    if (!s) s = parse_shapes(j, cp, c, err);
    if (!s) s = load_quant(dir, j, cp, c, err);
    if (!s) s = load_generation(dir, c, err);
    cJSON_Delete(j);
    free(cp);
    return s;
}
