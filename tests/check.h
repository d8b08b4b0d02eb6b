/* Minimal assertion helpers for the C tests: each failed check prints the
 * location and counts; a test's main returns r1t_finish(). */
#ifndef R1_TEST_CHECK_H
#define R1_TEST_CHECK_H
#include <stdio.h>
#include <math.h>

static int r1t_failures, r1t_checks;
#define CHECK(cond)                                                                     \
    do {                                                                                \
        r1t_checks++;                                                                   \
        if (!(cond)) {                                                                  \
            r1t_failures++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                               \
    } while (0)
#define CHECK_MSG(cond, ...)                                                            \
    do {                                                                                \
        r1t_checks++;                                                                   \
        if (!(cond)) {                                                                  \
            r1t_failures++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)
static inline int r1t_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, r1t_checks, r1t_failures);
    return r1t_failures ? 1 : 0;
}
#endif
