/* The R1 tokenizer files copied next to a generated checkpoint.
 *
 * Source directory, first that holds tokenizer.json and tokenizer_config.json:
 *   1. --tokenizer DIR;
 *   2. R1_SOURCE_ROOT/models/r1-tokenizer when the build defines R1_SOURCE_ROOT;
 *   3. models/r1-tokenizer in the executable's directory or up to 4 levels above it
 *      (build-dir/r1-mkmodel finds <repo>/models/r1-tokenizer);
 *   4. the same relative to the current directory. */
#ifndef R1_MKTOK_H
#define R1_MKTOK_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* Finds the tokenizer directory (explicit may be NULL) into out; R1_E_IO if none exists. */
r1_status mk_tok_find(const char *explicit_dir, char *out, size_t size, r1_error *err);

/* Copies tokenizer.json and tokenizer_config.json from src_dir into out_dir byte for byte. */
r1_status mk_tok_copy(const char *src_dir, const char *out_dir, r1_error *err);

#endif
