/* Several sessions share one loaded model from several threads at once: each
 * must give exactly the logits a lone session gives (no shared mutable state),
 * and truncating a session's cache must replay identically.
 *
 * usage: test_sessions MODEL_DIR */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "r1run.h"

#define N_TOK 12
#define N_THREADS 3

static r1_model *model;
static int32_t ids[N_TOK];

typedef struct job {
    float *out; /* last-position logits after N_TOK tokens, fed in uneven chunks */
    int chunk;
    r1_status st;
} job;

static void *run(void *arg) {
    job *j = arg;
    r1_session *s = NULL;
    r1_error err = {0};
    r1_session_params sp = {.n_ctx = 64, .n_batch = 8};
    j->st = r1_session_new(model, &sp, &s, &err);
    for (int done = 0; !j->st && done < N_TOK; done += j->chunk) {
        int n = N_TOK - done < j->chunk ? N_TOK - done : j->chunk;
        j->st = r1_session_eval(s, ids + done, n, 0, &err);
    }
    if (!j->st)
        memcpy(j->out, r1_session_logits(s, 0), sizeof(float) * (size_t)r1_model_n_vocab(model));
    if (j->st) fprintf(stderr, "session: %s\n", err.msg);
    r1_session_free(s);
    return NULL;
}

static int abort_after_one(void *user) {
    return (*(int *)user)++ >= 1;
}

/* abort_cb stops a long evaluation between forward passes, keeping what was done */
static void check_abort(void) {
    int calls = 0;
    r1_error err = {0};
    r1_session *s = NULL;
    r1_session_params sp = {
        .n_ctx = 64, .n_batch = 4, .abort_cb = abort_after_one, .abort_user = &calls};
    CHECK(r1_session_new(model, &sp, &s, &err) == R1_OK);
    CHECK(s && r1_session_eval(s, ids, N_TOK, 0, &err) == R1_E_CANCELLED);
    CHECK(s && r1_session_pos(s) == 4);
    CHECK(strstr(err.msg, "cancelled") != NULL);
    CHECK(s && r1_session_kv_bytes(s) > 0);
    r1_session_free(s);
}

static double max_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fabs((double)a[i] - b[i]) > m ? fabs((double)a[i] - b[i]) : m;
    return m;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL_DIR [GPU_LAYERS]\n", argv[0]), 2;
    /* Chunkings are compared to 1e-4: on GPUs with tensor cores the prompt GEMM
     * takes fp16 operands by default and a one-token chunk does not (H200:
     * 3.1e-3 apart), so the float32-accurate form, as lavapipe runs anyway. */
    setenv("R1_VK_CM", "exact", 0);
    r1_error err = {0};
    r1_model_params mp;
    r1_model_params_default(&mp);
    mp.n_threads = 2;
    /* with GPU layers the sessions' forward calls share one Vulkan queue */
    if (argc > 2) mp.gpu_layers = !strcmp(argv[2], "all") ? R1_GPU_LAYERS_ALL : atoi(argv[2]);
    CHECK_MSG(r1_model_load(argv[1], &mp, &model, &err) == R1_OK, "%s", err.msg);
    if (!model) return r1t_finish("sessions");
    int V = r1_model_n_vocab(model);
    for (int i = 0; i < N_TOK; i++) ids[i] = (i * 37 + 5) % V;
    job ref = {.out = malloc(sizeof(float) * (size_t)V), .chunk = N_TOK};
    run(&ref);
    CHECK(ref.st == R1_OK);
    job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (job){.out = malloc(sizeof(float) * (size_t)V), .chunk = i + 1};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].st == R1_OK);
        double d = max_diff(ref.out, jobs[i].out, V);
        printf("thread %d (chunks of %d): max diff %.3g\n", i, jobs[i].chunk, d);
        CHECK_MSG(d < 1e-4, "thread %d differs by %g", i, d);
        free(jobs[i].out);
    }
    /* truncate and replay: the cache rows past the cut are recomputed identically */
    r1_session *s = NULL;
    CHECK(r1_session_new(model, NULL, &s, &err) == R1_OK);
    CHECK(r1_session_eval(s, ids, N_TOK, 0, &err) == R1_OK);
    CHECK(r1_session_truncate(s, 4, &err) == R1_OK && r1_session_pos(s) == 4);
    CHECK(r1_session_eval(s, ids + 4, N_TOK - 4, 0, &err) == R1_OK);
    CHECK(max_diff(ref.out, r1_session_logits(s, 0), V) < 1e-4);
    CHECK(r1_session_truncate(s, 99, &err) == R1_E_RANGE);
    r1_session_free(s);
    check_abort();
    free(ref.out);
    r1_model_free(model);
    return r1t_finish("sessions");
}
