/* Safetensors shards of a generated checkpoint: planning and streaming them to disk.
 *
 * Sharding follows Hugging Face's max_shard_size rule: tensors are taken in state_dict order and
 * a new shard starts when the next tensor would push a non-empty shard past shard_size. Inside a
 * file tensors are laid out like the safetensors library does (I32 first, then F16, each sorted
 * by name), after an 8-byte little-endian header length and a JSON header padded with spaces to
 * a multiple of 8 that ends with "__metadata__":{"format":"pt"}. One shard is written as
 * model.safetensors; several as model-0000i-of-0000N.safetensors plus
 * model.safetensors.index.json ({"metadata":{"total_size":N},"weight_map":{name: file}}). */
#ifndef R1_MKST_H
#define R1_MKST_H

#include "mklayout.h"
#include "error.h"

typedef struct mk_shard {
    char file[48];
    size_t n;                   /* tensors in this shard */
    const mkgen_tensor **items; /* in file order */
    uint64_t *offsets;          /* data_offsets begin of each item */
    uint64_t data_bytes;        /* sum of the items' sizes */
    char *header;               /* JSON header, padded */
    size_t header_len;          /* multiple of 8 */
} mk_shard;

typedef struct mk_plan {
    mkgen_tensor *tensors; /* state_dict order */
    size_t n;
    size_t *shard_of; /* shard index of each tensor */
    mk_shard *shards;
    size_t nshards;
    uint64_t total_data; /* index.json total_size */
    uint64_t total_file; /* bytes of all shard files */
} mk_plan;

/* Lays out m's tensors in shards of at most shard_size data bytes (a bigger tensor gets a shard
 * of its own). Nothing is generated or written yet. */
r1_status mk_plan_build(const mk_model *m, uint64_t shard_size, mk_plan *p, r1_error *err);
void mk_plan_free(mk_plan *p);

/* Generates and writes every shard (and the index when sharded) into dir, streaming each
 * tensor in chunks of a few MB; memory use does not depend on the model size. */
r1_status mk_plan_write(const mk_plan *p, const char *dir, bool quiet, r1_error *err);

#endif
