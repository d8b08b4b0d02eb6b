/* The JSON side files of a generated checkpoint (see mkconfig.h). */
#include "mkconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mk_py_float(double v, char *buf, size_t size) {
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) { /* shortest digits that read back as v, like repr() */
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    const char *p = tmp, *sign = "";
    if (*p == '-') {
        sign = "-";
        p++;
    }
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int e = atoi(p + 1);
    if (e < -4 || e >= 16) { /* Python switches to exponent notation outside [1e-4, 1e16) */
        snprintf(buf, size, "%s%c%s%.*se%c%02d", sign, digits[0], nd > 1 ? "." : "", (int)nd - 1,
                 digits + 1, e < 0 ? '-' : '+', abs(e));
    } else if (e < 0) {
        snprintf(buf, size, "%s0.%.*s%s", sign, -e - 1, "0000", digits);
    } else {
        char ip[40], fp[24];
        size_t ni = (size_t)e + 1;
        for (size_t i = 0; i < ni; i++) ip[i] = i < nd ? digits[i] : '0';
        ip[ni] = 0;
        snprintf(fp, sizeof fp, "%s", nd > ni ? digits + ni : "0");
        snprintf(buf, size, "%s%s.%s", sign, ip, fp);
    }
}

/* The ids written to config.json (bos = eos = EOS, as in the real file) and
 * generation_config.json (the tokenizer's real BOS). A vocabulary too small for the R1
 * tokenizer gets its last two ids instead, like the golden cases. */
static uint32_t eos_id(const mk_model *m) {
    return m->vocab >= MK_R1_TOKENIZER_SIZE ? MK_R1_EOS : m->vocab - 1;
}

static uint32_t bos_id(const mk_model *m) {
    if (m->vocab >= MK_R1_TOKENIZER_SIZE) return MK_R1_BOS;
    return m->vocab >= 2 ? m->vocab - 2 : 0;
}

static FILE *open_out(const char *dir, const char *name, r1_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) r1__err(err, R1_E_IO, "cannot create %s: %s", path, strerror(errno));
    return f;
}

static r1_status close_out(FILE *f, const char *name, r1_error *err) {
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return r1__err(err, R1_E_IO, "cannot write %s", name);
    return R1_OK;
}

/* The quantization dict; in_config: nested in config.json (sorted keys, as transformers
 * saves it), otherwise the AutoGPTQ-style quantize_config.json order of the golden cases. */
static void put_quant(FILE *f, const mk_model *m, const char *ind, bool in_config) {
    const char *sym = m->sym ? "true" : "false", *act = m->act_order ? "true" : "false";
    if (in_config)
        fprintf(f,
                "{\n%s  \"bits\": 4,\n%s  \"checkpoint_format\": \"gptq\",\n"
                "%s  \"damp_percent\": 0.01,\n%s  \"desc_act\": %s,\n%s  \"group_size\": %u,\n"
                "%s  \"quant_method\": \"gptq\",\n%s  \"static_groups\": false,\n"
                "%s  \"sym\": %s,\n%s  \"true_sequential\": true\n%s}",
                ind, ind, ind, ind, act, ind, m->group, ind, ind, ind, sym, ind, ind);
    else
        fprintf(f,
                "{\n%s  \"quant_method\": \"gptq\",\n%s  \"bits\": 4,\n%s  \"group_size\": %u,\n"
                "%s  \"desc_act\": %s,\n%s  \"sym\": %s,\n%s  \"checkpoint_format\": \"gptq\",\n"
                "%s  \"true_sequential\": true,\n%s  \"damp_percent\": 0.01,\n"
                "%s  \"static_groups\": false\n%s}",
                ind, ind, ind, m->group, ind, act, ind, sym, ind, ind, ind, ind, ind);
}

/* Keys sorted as transformers' save_pretrained writes them. */
static r1_status write_config(const mk_opts *o, r1_error *err) {
    const mk_model *m = &o->model;
    FILE *f = open_out(o->out_dir, "config.json", err);
    if (!f) return err ? err->code : R1_E_IO;
    uint32_t eos = eos_id(m);
    char theta[40], eps[40];
    mk_py_float(o->rope_theta, theta, sizeof theta);
    mk_py_float(o->rms_eps, eps, sizeof eps);
    fprintf(f,
            "{\n  \"architectures\": [\n    \"Qwen2ForCausalLM\"\n  ],\n"
            "  \"attention_dropout\": 0.0,\n  \"bos_token_id\": %u,\n  \"eos_token_id\": %u,\n"
            "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %u,\n"
            "  \"initializer_range\": 0.02,\n  \"intermediate_size\": %u,\n"
            "  \"max_position_embeddings\": %u,\n  \"max_window_layers\": %u,\n"
            "  \"model_type\": \"qwen2\",\n  \"num_attention_heads\": %u,\n"
            "  \"num_hidden_layers\": %u,\n  \"num_key_value_heads\": %u,\n"
            "  \"quantization_config\": ",
            eos, eos, m->hidden, m->inter, o->max_pos, o->max_window_layers, m->heads, m->layers,
            m->kv_heads);
    put_quant(f, m, "  ", true);
    fprintf(f,
            ",\n  \"rms_norm_eps\": %s,\n  \"rope_scaling\": null,\n  \"rope_theta\": %s,\n"
            "  \"sliding_window\": %u,\n  \"tie_word_embeddings\": %s,\n"
            "  \"torch_dtype\": \"float16\",\n  \"transformers_version\": \"4.43.1\",\n"
            "  \"use_cache\": true,\n  \"use_sliding_window\": false,\n  \"vocab_size\": %u\n}\n",
            eps, theta, o->sliding_window, m->tied ? "true" : "false", m->vocab);
    return close_out(f, "config.json", err);
}

static r1_status write_quantize_config(const mk_opts *o, r1_error *err) {
    FILE *f = open_out(o->out_dir, "quantize_config.json", err);
    if (!f) return err ? err->code : R1_E_IO;
    put_quant(f, &o->model, "", false);
    fputc('\n', f);
    return close_out(f, "quantize_config.json", err);
}

/* The official R1-Distill generation_config.json (MODEL.md §2), 181 bytes for R1 ids. */
static r1_status write_generation_config(const mk_opts *o, r1_error *err) {
    FILE *f = open_out(o->out_dir, "generation_config.json", err);
    if (!f) return err ? err->code : R1_E_IO;
    fprintf(f,
            "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": %u,\n"
            "  \"eos_token_id\": %u,\n  \"do_sample\": true,\n  \"temperature\": 0.6,\n"
            "  \"top_p\": 0.95,\n  \"transformers_version\": \"4.39.3\"\n}\n",
            bos_id(&o->model), eos_id(&o->model));
    return close_out(f, "generation_config.json", err);
}

r1_status mk_write_configs(const mk_opts *o, r1_error *err) {
    r1_status s = write_config(o, err);
    if (s == R1_OK) s = write_quantize_config(o, err);
    if (s == R1_OK) s = write_generation_config(o, err);
    return s;
}
