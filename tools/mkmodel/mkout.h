/* The output directory of r1-mkmodel. */
#ifndef R1_MKOUT_H
#define R1_MKOUT_H

#include "error.h"

#include <stdint.h>

/* Creates dir (and missing parents), removes weight files an earlier run may have left there
 * (model.safetensors, model-NNNNN-of-NNNNN.safetensors, model.safetensors.index.json: a stale
 * extra shard or index would make the directory inconsistent), then checks that `need` bytes
 * fit on its file system. Other files are left alone. */
r1_status mk_out_prepare(const char *dir, uint64_t need, r1_error *err);

#endif
