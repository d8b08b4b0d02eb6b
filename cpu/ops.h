/* CPU implementations of the graph ops. Called from inside an OpenMP parallel
 * region: each op shares its work with orphaned `omp for` loops (dynamic
 * chunks, so a thread that was descheduled does not hold up the others). */
#ifndef R1_CPU_OPS_H
#define R1_CPU_OPS_H

#include "kernels.h"

void r1__cpu_node(const r1_node *n, const r1_run *run, const r1_cpu_kernels *k);

#endif
