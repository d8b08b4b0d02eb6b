/* Whole-model check through r1run itself against Hugging Face transformers'
 * logits and greedy tokens (tests/data/golden, tests/data/kjv).
 *
 * usage: test_golden R1RUN MODEL_DIR GOLDEN_DIR REL_TOL [r1run args...]
 * For every prompt: logits of all positions evaluated as one batch and token by
 * token (--batch 1) within REL_TOL * max|logit|, and the greedy continuation
 * identical up to the first step whose recorded top-1/top-2 margin is below
 * twice the absolute tolerance (exactly all steps for float32 paths). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char extra_args[2048];

static int run_r1(const char *r1, const char *model, const char *ids, const char *more,
                  const char *out) {
    static char cmd[1 << 17];
    snprintf(cmd, sizeof cmd, "%s -m '%s' --tokens %s %s %s > '%s'", r1, model, ids, more,
             extra_args, out);
    int rc = system(cmd);
    if (rc) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void ids_csv(const cJSON *ids, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (const cJSON *it = ids->child; it && o + 16 < cap; it = it->next)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", o ? "," : "", it->valueint);
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs((double)a[i] - b[i]) > m ? fabs((double)a[i] - b[i]) : m;
    return m;
}

static void check_logits(const char *r1, const char *model, const char *ids, const float *want,
                         size_t n, double scale, double tol, const char *mode, int p) {
    char tmp[] = "/tmp/r1golden_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    char more[512];
    snprintf(more, sizeof more, "--dump-logits %s %s", tmp, mode);
    CHECK(run_r1(r1, model, ids, more, "/dev/null") == 0);
    size_t len = 0;
    float *got = (float *)r1t_slurp(tmp, &len);
    unlink(tmp);
    CHECK_MSG(got && len == n * sizeof(float), "prompt %d %s: logits file has %zu bytes, want %zu",
              p, mode, len, n * sizeof(float));
    if (got && len == n * sizeof(float)) {
        double rel = max_diff(got, want, n) / scale;
        printf("prompt %d %-10s rel err %.3g (tol %.3g)\n", p, *mode ? mode : "batch", rel, tol);
        CHECK_MSG(rel <= tol, "prompt %d %s: rel err %g > %g", p, mode, rel, tol);
    }
    free(got);
}

static void check_greedy(const char *r1, const char *model, const char *ids, const cJSON *greedy,
                         const cJSON *margin, double tol_abs, int p) {
    int n = cJSON_GetArraySize(greedy);
    char more[64], tmp[] = "/tmp/r1greedy_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    snprintf(more, sizeof more, "-n %d --temp 0 --print-ids", n);
    CHECK(run_r1(r1, model, ids, more, tmp) == 0);
    char *out = r1t_slurp(tmp, NULL);
    unlink(tmp);
    char *s = out;
    int i = 0, matched = 0, first_tie = n;
    for (int j = 0; j < n; j++)
        if (margin && cJSON_GetArrayItem(margin, j)->valuedouble < 2 * tol_abs && first_tie == n)
            first_tie = j;
    for (const cJSON *it = greedy->child; it && s; it = it->next, i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        s = end;
        if (v != it->valueint) break;
        matched++;
    }
    /* at the first near-tie another token is a valid choice: the steps before it must match */
    int need = first_tie;
    printf("prompt %d greedy: %d/%d identical (must match %d)\n", p, matched, n, need);
    CHECK_MSG(matched >= need, "prompt %d greedy: first mismatch at step %d", p, matched);
    free(out);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s R1RUN MODEL_DIR GOLDEN_DIR REL_TOL [r1run args...]\n", argv[0]);
        return 2;
    }
    const char *r1 = argv[1], *model = argv[2], *gdir = argv[3];
    double tol = atof(argv[4]);
    /* CPU layers take prompts with exact activations here, whatever the table's
     * default (AVX2: int8); the golden_cpu_i8prompt tests set R1_CPU_ACT_BATCH=i8 */
    setenv("R1_CPU_ACT_BATCH", "i8x3", 0);
    for (int i = 5; i < argc; i++) {
        strncat(extra_args, " ", sizeof extra_args - strlen(extra_args) - 1);
        strncat(extra_args, argv[i], sizeof extra_args - strlen(extra_args) - 1);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/golden.json", gdir);
    char *js = r1t_slurp(path, NULL);
    cJSON *g = js ? cJSON_Parse(js) : NULL;
    CHECK_MSG(g != NULL, "cannot read %s", path);
    if (!g) return r1t_finish("golden");
    int p = 0;
    for (const cJSON *pr = cJSON_GetObjectItem(g, "prompts")->child; pr; pr = pr->next, p++) {
        static char ids[1 << 16];
        ids_csv(cJSON_GetObjectItem(pr, "ids"), ids, sizeof ids);
        snprintf(path, sizeof path, "%s/%s", gdir,
                 cJSON_GetObjectItem(pr, "logits_file")->valuestring);
        size_t len = 0;
        float *want = (float *)r1t_slurp(path, &len);
        size_t n = len / sizeof(float);
        double scale = max_abs(want, n);
        check_logits(r1, model, ids, want, n, scale, tol, "", p);
        check_logits(r1, model, ids, want, n, scale, tol, "--batch 1", p);
        const cJSON *gr = cJSON_GetObjectItem(pr, "greedy");
        const cJSON *mg = cJSON_GetObjectItem(pr, "greedy_margin");
        if (!gr)
            gr = cJSON_GetObjectItem(pr, "greedy_ids"),
            mg = cJSON_GetObjectItem(pr, "greedy_top2_margin");
        check_greedy(r1, model, ids, gr, mg, tol * scale, p);
        free(want);
    }
    cJSON_Delete(g);
    free(js);
    return r1t_finish("golden");
}
