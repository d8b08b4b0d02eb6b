/* r1run bench: llama-bench style throughput measurements (code in bench/). */
#ifndef R1_BENCH_H
#define R1_BENCH_H

#include <stddef.h>

/* Streaming read bandwidth in bytes/s with n_threads threads over `bytes` of memory
 * (median of `reps` passes). */
double r1__bench_membw(int n_threads, size_t bytes, int reps);
int r1__bench_main(int argc, char **argv);
int r1__bench_tokenizer_main(int argc, char **argv);

#endif
