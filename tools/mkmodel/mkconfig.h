/* config.json, quantize_config.json and generation_config.json of a generated checkpoint,
 * formatted like Hugging Face writes them (2-space indent, Python float repr). */
#ifndef R1_MKCONFIG_H
#define R1_MKCONFIG_H

#include "mkopts.h"
#include "error.h"

/* Writes the three JSON files into o->out_dir. */
r1_status mk_write_configs(const mk_opts *o, r1_error *err);

/* Formats v like Python's repr(float) ("1000000.0", "1e-05", "0.95") into buf. */
void mk_py_float(double v, char *buf, size_t size);

#endif
