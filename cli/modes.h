/* r1run's modes, one file each. Each returns the process exit code. */
#ifndef R1_CLI_MODES_H
#define R1_CLI_MODES_H

#include "opts.h"

int r1cli_eval_ids(const r1cli_opts *o);

#endif
