/* Model hyper-parameters from config.json (+ quantize_config.json and
 * generation_config.json), validated before any weight is touched. */
#ifndef R1_CONFIG_H
#define R1_CONFIG_H

#include "error.h"

typedef struct r1_config {
    int hidden, inter, n_layers, n_heads, n_kv_heads, head_dim, vocab;
    int max_pos;
    double rope_theta, rms_eps;
    int tied;
    int bos, eos; /* generation_config.json wins over config.json */
    /* quantization */
    int bits, group_size; /* group_size -1 in the file → one group (= K) per linear */
    int desc_act, sym, zeros_v2, lm_head_quantized;
    /* sampling defaults from generation_config.json (0 / 1 when absent) */
    int gen_do_sample;
    double gen_temperature, gen_top_p;
    int gen_top_k;
} r1_config;

r1_status r1__config_load(const char *dir, r1_config *c, r1_error *err);

#endif
