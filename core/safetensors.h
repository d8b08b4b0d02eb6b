/* Memory-mapped safetensors checkpoints (one file or shards with an index).
 *
 * Every tensor's dtype, shape and byte range is validated against the file
 * size when the header is read, so later code can read `data` without checks.
 * Data stays in the read-only mapping: nothing is copied. */
#ifndef R1_SAFETENSORS_H
#define R1_SAFETENSORS_H

#include "error.h"
#include "tensor.h"

typedef struct r1_st_file {
    char *path;
    void *map;
    size_t size;
} r1_st_file;

typedef struct r1_st_entry {
    char *name;
    r1_dtype type;     /* R1_DTYPE_COUNT for dtypes the runtime never reads (F64, U8, ...) */
    char dtype_str[8]; /* as written in the header, for messages */
    int ndim;
    int64_t ne[R1_MAX_DIMS];
    const void *data;
    size_t nbytes;
    int file;
} r1_st_entry;

typedef struct r1_st {
    r1_st_file *files;
    int n_files;
    r1_st_entry *t;
    int n;
    int *hash; /* open addressing over t, size hash_cap */
    int hash_cap;
} r1_st;

/* Opens dir/model.safetensors.index.json and its shards, or dir/model.safetensors. */
r1_status r1__st_open_dir(const char *dir, r1_st **out, r1_error *err);
const r1_st_entry *r1__st_find(const r1_st *st, const char *name);
const char *r1__st_file_name(const r1_st *st, const r1_st_entry *e);
uint64_t r1__st_total_bytes(const r1_st *st);
void r1__st_close(r1_st *st);

#endif
