/* r1-mkmodel output loaded back through the runtime's own loader: every
 * dequantized weight of every linear equals what the generator meant to write
 * (recomputed from mkgen's pure functions), norms/biases/embeddings too, and a
 * forward pass gives finite logits of the expected magnitude.
 *
 * usage: test_mkmodel_load R1_MKMODEL WORKDIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels.h"
#include "mkgen.h"
#include "model.h"

static const uint64_t SEED = 7;

/* What mkgen meant W[k][n] to be, from its value rules. */
static float want_weight(const char *prefix, int K, int N, int G, int sym, int act, int k, int n) {
    char name[200];
    snprintf(name, sizeof name, "%s.qweight", prefix);
    uint32_t word = mkgen_qweight(mkgen_key(SEED, name), (uint64_t)(k / 8) * N + n);
    int q = (int)((word >> (4 * (k % 8))) & 15);
    snprintf(name, sizeof name, "%s.g_idx", prefix);
    int g = mkgen_g_idx(mkgen_key(SEED, name), (uint32_t)k, (uint32_t)K, (uint32_t)G, act);
    snprintf(name, sizeof name, "%s.qzeros", prefix);
    uint32_t zw = mkgen_qzeros(mkgen_key(SEED, name), (uint64_t)g * (N / 8) + n / 8, sym);
    int z = (int)((zw >> (4 * (n % 8))) & 15) + 1;
    snprintf(name, sizeof name, "%s.scales", prefix);
    float s =
        mkgen_f16_to_f32(mkgen_scale(mkgen_key(SEED, name), (uint64_t)g * N + n, (uint32_t)K, sym));
    return s * (float)(q - z);
}

static void check_linear(const r1_qlinear *q, const char *prefix, int sym, int act) {
    int bad = 0;
    for (int k = 0; k < q->K; k++)
        for (int n = 0; n < q->N; n++)
            bad += r1__q4_weight(q, k, n) != want_weight(prefix, q->K, q->N, q->G, sym, act, k, n);
    CHECK_MSG(bad == 0, "%s: %d of %d weights differ from the generator's", prefix, bad,
              q->K * q->N);
    CHECK(q->act_order == act);
    if (q->bias) {
        char name[200];
        snprintf(name, sizeof name, "%s.bias", prefix);
        uint64_t key = mkgen_key(SEED, name);
        for (int n = 0; n < q->N; n++)
            CHECK(((const uint16_t *)q->bias->data)[n] == mkgen_bias(key, (uint64_t)n));
    }
}

static void check_model(const char *dir, int sym, int act) {
    r1_model *m = NULL;
    r1_error err = {0};
    CHECK_MSG(r1_model_load(dir, NULL, &m, &err) == R1_OK, "%s", err.msg);
    if (!m) return;
    const char *names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                           "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                           "mlp.down_proj"};
    for (int l = 0; l < m->cfg.n_layers; l++) {
        r1_layer_weights *L = &m->layers[l];
        const r1_qlinear *lin[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (int i = 0; i < 7; i++) {
            char prefix[128];
            snprintf(prefix, sizeof prefix, "model.layers.%d.%s", l, names[i]);
            check_linear(lin[i], prefix, sym, act);
        }
        CHECK(((const uint16_t *)L->attn_norm->data)[0] == mkgen_norm());
    }
    uint64_t ek = mkgen_key(SEED, "model.embed_tokens.weight");
    int bad = 0;
    for (int64_t i = 0; i < m->embed->ne[0] * m->embed->ne[1]; i++)
        bad += ((const uint16_t *)m->embed->data)[i] !=
               mkgen_embed(ek, (uint64_t)i, (uint32_t)m->cfg.hidden);
    CHECK_MSG(bad == 0, "%d embedding values differ", bad);
    /* a forward pass over the random weights stays finite and unit-scale */
    r1_session *s = NULL;
    int32_t ids[5] = {1, 2, 3, 4, 5};
    CHECK(r1_session_new(m, NULL, &s, &err) == R1_OK);
    CHECK_MSG(s && r1_session_eval(s, ids, 5, 1, &err) == R1_OK, "%s", err.msg);
    double ss = 0;
    int finite = 1;
    for (int t = 0; s && t < 5; t++) {
        const float *l = r1_session_logits(s, t);
        for (int v = 0; v < m->cfg.vocab; v++) finite &= isfinite(l[v]), ss += (double)l[v] * l[v];
    }
    double rms = sqrt(ss / (5.0 * m->cfg.vocab));
    printf("%s: logits rms %.3f\n", dir, rms);
    CHECK(finite);
    CHECK(rms > 0.05 && rms < 50);
    r1_session_free(s);
    r1_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s R1_MKMODEL WORKDIR\n", argv[0]), 2;
    char cmd[4096], dir[1024];
    struct {
        const char *name, *flags;
        int sym, act;
    } cases[] = {
        {"sym", "--group 32", 1, 0},
        {"asym_act_sharded", "--asym --act-order --group 64 --shard-size 200K --kv-heads 1", 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(dir, sizeof dir, "%s/load_%s", argv[2], cases[i].name);
        snprintf(
            cmd, sizeof cmd,
            "rm -rf '%s' && %s --preset tiny --vocab 384 --no-tokenizer --quiet --seed %llu %s "
            "--out '%s'",
            dir, argv[1], (unsigned long long)SEED, cases[i].flags, dir);
        CHECK_MSG(system(cmd) == 0, "%s", cmd);
        check_model(dir, cases[i].sym, cases[i].act);
    }
    return r1t_finish("mkmodel_load");
}
