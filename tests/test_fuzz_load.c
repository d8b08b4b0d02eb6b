/* Random corruption of a checkpoint must give an error code with a message (or a
 * clean load when the damage is harmless), never a crash or a sanitizer report:
 * byte flips in the safetensors header and data, truncation at random lengths,
 * and mangled config.json, each loaded and (when it loads) run once.
 *
 * usage: test_fuzz_load CASE_DIR WORK_DIR [iterations] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "r1run.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void spit(const char *path, const char *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) fwrite(d, 1, n, f), fclose(f);
}

static char *path_in(const char *dir, const char *name) {
    static char p[2][1024];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* Loads dir; a model that loads must also evaluate or fail cleanly. */
static int try_load(const char *dir) {
    r1_model *m = NULL;
    r1_error err = {0};
    r1_model_params mp;
    r1_model_params_default(&mp);
    mp.n_threads = 1;
    r1_status st = r1_model_load(dir, &mp, &m, &err);
    if (st) {
        CHECK_MSG(err.msg[0] != 0 && m == NULL, "status %d without a message", st);
        return 0;
    }
    r1_session *s = NULL;
    int32_t ids[3] = {1, 2, 3};
    if (!r1_session_new(m, NULL, &s, &err)) r1_session_eval(s, ids, 3, 0, &err);
    r1_session_free(s);
    r1_model_free(m);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s CASE_DIR WORK_DIR [n]\n", argv[0]), 2;
    const char *src = argv[1], *dir = argv[2];
    int iters = argc > 3 ? atoi(argv[3]) : 300;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s'/config.json '%s'/", dir, dir,
             src, dir);
    if (system(cmd)) return 1;
    size_t n_st, n_cfg;
    char *st = r1t_slurp(path_in(src, "model.safetensors"), &n_st);
    char *cfg = r1t_slurp(path_in(src, "config.json"), &n_cfg);
    CHECK(st && cfg);
    if (!st || !cfg) return r1t_finish("fuzz_load");
    uint64_t hl;
    memcpy(&hl, st, 8);
    char *buf = malloc(n_st + n_cfg);
    int loaded = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(buf, st, n_st);
        size_t len = n_st;
        int kind = (int)(next() % 4);
        if (kind == 0) { /* flips inside the JSON header */
            for (int k = 0; k < 1 + (int)(next() % 4); k++)
                buf[8 + next() % hl] ^= (char)(1 + next() % 255);
        } else if (kind == 1) { /* the length field */
            buf[next() % 8] ^= (char)(1 + next() % 255);
        } else if (kind == 2) { /* truncation */
            len = (size_t)(next() % n_st);
        } else { /* data bytes: g_idx/qzeros/scales may become anything */
            for (int k = 0; k < 64; k++)
                buf[8 + hl + next() % (n_st - 8 - hl)] ^= (char)(next() % 256);
        }
        spit(path_in(dir, "model.safetensors"), buf, len);
        spit(path_in(dir, "config.json"), cfg, n_cfg);
        loaded += try_load(dir);
        /* config.json: flip a byte or cut it short, with the checkpoint intact */
        memcpy(buf, cfg, n_cfg);
        size_t cl = n_cfg;
        if (next() % 2)
            buf[next() % n_cfg] = "{}[]\":,0-9e.x "[next() % 15];
        else
            cl = (size_t)(next() % n_cfg);
        spit(path_in(dir, "model.safetensors"), st, n_st);
        spit(path_in(dir, "config.json"), buf, cl);
        loaded += try_load(dir);
    }
    printf("%d corrupted checkpoints, %d loaded anyway (harmless damage), none crashed\n",
           2 * iters, loaded);
    free(buf), free(st), free(cfg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return r1t_finish("fuzz_load");
}
