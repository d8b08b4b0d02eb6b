/* Minimal assertion helpers for the C tests: each failed check prints the
 * location and counts; a test's main returns r1t_finish(). */
#ifndef R1_TEST_CHECK_H
#define R1_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

static int r1t_failures, r1t_checks;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        r1t_checks++;                                                                              \
        if (!(cond)) {                                                                             \
            r1t_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)
#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        r1t_checks++;                                                                              \
        if (!(cond)) {                                                                             \
            r1t_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)
/* Reads a whole file into a malloc'd, NUL-terminated buffer (NULL if unreadable);
 * *len (optional) gets its size. */
static inline char *r1t_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)(n < 0 ? 0 : n) + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (p) p[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return p;
}

static inline int r1t_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, r1t_checks, r1t_failures);
    return r1t_failures ? 1 : 0;
}
#endif
