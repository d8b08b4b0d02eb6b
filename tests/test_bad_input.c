/* Malformed checkpoints and bad arguments: r1run must print one clear line
 * naming the file/tensor/flag and exit non-zero — never crash.
 *
 * usage: test_bad_input R1RUN GOLDEN_CASE_DIR SHARDED_CASE_DIR
 * Each case copies a good checkpoint into a temp folder and breaks one thing. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static const char *r1run, *good, *sharded;
static char work[256];

static void spit(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

static void fresh_copy(const char *from) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && chmod -R u+w '%s'", work, from,
             work, work);
    if (system(cmd)) fprintf(stderr, "copy failed\n");
}

static char *wpath(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", work, name);
    return p;
}

/* Runs r1run with args; checks a clean non-zero exit and one stderr line containing want. */
static void expect_error(const char *label, const char *args, int want_rc, const char *want) {
    char cmd[2048], errf[300];
    snprintf(errf, sizeof errf, "%s.err", work);
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null 2> '%s'", r1run, args, errf);
    int st = system(cmd);
    size_t n = 0;
    char *msg = r1t_slurp(errf, &n);
    int lines = 0;
    for (size_t i = 0; msg && i < n; i++) lines += msg[i] == '\n';
    int exited = WIFEXITED(st), rc = exited ? WEXITSTATUS(st) : -1;
    printf("%-28s rc=%d  %s", label, rc, msg ? msg : "(no stderr)\n");
    CHECK_MSG(exited && rc != 0 && rc < 128, "%s: r1run did not fail cleanly (status %d)", label,
              st);
    if (want_rc) CHECK_MSG(rc == want_rc, "%s: exit code %d, want %d", label, rc, want_rc);
    CHECK_MSG(msg && strstr(msg, want), "%s: message lacks \"%s\"", label, want);
    CHECK_MSG(lines >= 1 && lines <= 2, "%s: %d lines of error output", label, lines);
    free(msg);
}

static void run_model(const char *label, const char *want) {
    char args[600];
    snprintf(args, sizeof args, "-m '%s' --tokens 1,2,3 -n 2 --print-ids", work);
    expect_error(label, args, 1, want);
}

/* Rewrites a safetensors file after letting edit() change its header JSON. */
static void edit_header(const char *file, void (*edit)(cJSON *hdr)) {
    size_t n;
    char *b = r1t_slurp(wpath(file), &n);
    uint64_t hl;
    memcpy(&hl, b, 8);
    cJSON *h = cJSON_ParseWithLength(b + 8, hl);
    edit(h);
    char *js = cJSON_PrintUnformatted(h);
    size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
    uint64_t nl = jl + pad;
    FILE *f = fopen(wpath(file), "wb");
    fwrite(&nl, 8, 1, f);
    fwrite(js, 1, jl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fwrite(b + 8 + hl, 1, n - 8 - hl, f);
    fclose(f);
    free(js);
    cJSON_Delete(h);
    free(b);
}

static const char *QW = "model.layers.0.self_attn.q_proj.qweight";

static void set_dtype_f32(cJSON *h) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, QW), "dtype", cJSON_CreateString("F32"));
}
static void offsets_past_end(cJSON *h) {
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QW), "data_offsets");
    double b = cJSON_GetArrayItem(o, 0)->valuedouble, e = cJSON_GetArrayItem(o, 1)->valuedouble;
    cJSON_ReplaceItemInArray(o, 0, cJSON_CreateNumber(b + 1e9));
    cJSON_ReplaceItemInArray(o, 1, cJSON_CreateNumber(e + 1e9));
}
static void swap_shape(cJSON *h) {
    cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QW), "shape");
    int a = cJSON_GetArrayItem(s, 0)->valueint, b = cJSON_GetArrayItem(s, 1)->valueint;
    cJSON_ReplaceItemInArray(s, 0, cJSON_CreateNumber(b));
    cJSON_ReplaceItemInArray(s, 1, cJSON_CreateNumber(a));
}
static void rename_tensor(cJSON *h) {
    cJSON *t = cJSON_DetachItemFromObject(h, "model.norm.weight");
    cJSON_AddItemToObject(h, "model.norm.weight_renamed", t);
}

static void edit_config(const char *key, const char *json_value) {
    size_t n;
    char *b = r1t_slurp(wpath("config.json"), &n);
    cJSON *c = cJSON_Parse(b);
    cJSON *q = cJSON_GetObjectItem(c, "quantization_config");
    cJSON *target = cJSON_GetObjectItem(q, key) ? q : c;
    cJSON_ReplaceItemInObject(target, key, cJSON_Parse(json_value));
    char *out = cJSON_Print(c);
    spit(wpath("config.json"), out, strlen(out));
    free(out);
    cJSON_Delete(c);
    free(b);
}

/* Sets g_idx[0] of layer 0 q_proj to a group that does not exist. */
static void corrupt_gidx(void) {
    size_t n;
    char *b = r1t_slurp(wpath("model.safetensors"), &n);
    uint64_t hl;
    memcpy(&hl, b, 8);
    cJSON *h = cJSON_ParseWithLength(b + 8, hl);
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "model.layers.0.self_attn.q_proj.g_idx"),
                                   "data_offsets");
    int32_t bad = 9999;
    memcpy(b + 8 + hl + (size_t)cJSON_GetArrayItem(o, 0)->valuedouble, &bad, 4);
    spit(wpath("model.safetensors"), b, n);
    cJSON_Delete(h);
    free(b);
}

static void checkpoint_cases(void) {
    size_t n;
    char *b;
    fresh_copy(good);
    b = r1t_slurp(wpath("model.safetensors"), &n);
    spit(wpath("model.safetensors"), b, n / 2);
    free(b);
    run_model("truncated shard", "model.safetensors");

    fresh_copy(good);
    b = r1t_slurp(wpath("model.safetensors"), &n);
    uint64_t big = (uint64_t)n;
    memcpy(b, &big, 8);
    spit(wpath("model.safetensors"), b, n);
    free(b);
    run_model("header length past EOF", "header length");

    fresh_copy(good);
    edit_header("model.safetensors", offsets_past_end);
    run_model("offsets out of range", "data_offsets");

    fresh_copy(good);
    edit_header("model.safetensors", set_dtype_f32);
    run_model("wrong dtype", "dtype F32");

    fresh_copy(good);
    edit_header("model.safetensors", swap_shape);
    run_model("shape vs config", "has shape");

    fresh_copy(good);
    edit_header("model.safetensors", rename_tensor);
    run_model("missing tensor", "missing tensor model.norm.weight");

    fresh_copy(good);
    corrupt_gidx();
    run_model("g_idx out of range", "g_idx");

    fresh_copy(good);
    edit_config("bits", "3");
    run_model("3-bit GPTQ", "bits = 3");
    fresh_copy(good);
    edit_config("bits", "8");
    run_model("8-bit GPTQ", "bits = 8");

    fresh_copy(good);
    edit_config("hidden_size", "96");
    run_model("config hidden_size", "shape");

    fresh_copy(good);
    unlink(wpath("config.json"));
    run_model("missing config.json", "config.json");

    fresh_copy(good);
    spit(wpath("config.json"), "{\"hidden_size\": 12,", 19);
    run_model("invalid config.json", "invalid JSON");

    fresh_copy(sharded);
    unlink(wpath("model-00002-of-00002.safetensors"));
    run_model("missing shard", "model-00002-of-00002.safetensors");

    fresh_copy(sharded);
    spit(wpath("model.safetensors.index.json"), "{\"weight_map\": 3}", 17);
    run_model("bad index.json", "weight_map");
}

static void argument_cases(void) {
    char a[600];
    snprintf(a, sizeof a, "-m '%s' --tokens 1,99999 --dump-logits /dev/null", good);
    expect_error("token id past vocab", a, 1, "outside the vocabulary");
    snprintf(a, sizeof a, "-m '%s' --tokens 1,2,3,4 --ctx 3 --print-ids", good);
    expect_error("prompt past context", a, 1, "context");
    snprintf(a, sizeof a, "-m '%s' --tokens 1,x", good);
    expect_error("bad --tokens", a, 2, "--tokens");
    snprintf(a, sizeof a, "-m '%s' --tokens 1 --threads zero", good);
    expect_error("bad --threads", a, 2, "--threads");
    snprintf(a, sizeof a, "-m '%s' --frobnicate", good);
    expect_error("unknown flag", a, 2, "--frobnicate");
    expect_error("missing folder", "-m /nonexistent/model --tokens 1", 1, "/nonexistent/model");
}

int main(int argc, char **argv) {
    if (argc < 4) return fprintf(stderr, "usage: %s R1RUN CASE SHARDED_CASE\n", argv[0]), 2;
    r1run = argv[1], good = argv[2], sharded = argv[3];
    snprintf(work, sizeof work, "/tmp/r1bad_%d", (int)getpid());
    checkpoint_cases();
    argument_cases();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.err'", work, work);
    if (system(cmd)) return 1;
    return r1t_finish("bad_input");
}
