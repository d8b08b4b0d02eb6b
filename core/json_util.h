/* Small helpers over cJSON that turn missing or mistyped fields into one-line errors. */
#ifndef R1_JSON_UTIL_H
#define R1_JSON_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

/* Reads a whole file into a malloc'd NUL-terminated buffer. */
r1_status r1__read_file(const char *path, char **buf, size_t *len, r1_error *err);
/* Parses a JSON file; the caller frees *out with cJSON_Delete. */
r1_status r1__json_load(const char *path, cJSON **out, r1_error *err);
/* Field getters: return R1_OK and set *v, R1_E_FORMAT with a message naming
 * `what` (usually the file) and the key when the field is missing (unless a default
 * is allowed, see the _opt variants) or has the wrong type. */
r1_status r1__json_int(const cJSON *o, const char *key, const char *what, long long *v,
                       r1_error *err);
r1_status r1__json_int_opt(const cJSON *o, const char *key, const char *what, long long dflt,
                           long long *v, r1_error *err);
r1_status r1__json_num_opt(const cJSON *o, const char *key, const char *what, double dflt,
                           double *v, r1_error *err);
r1_status r1__json_bool_opt(const cJSON *o, const char *key, const char *what, int dflt, int *v,
                            r1_error *err);
/* Joins dir and name into a malloc'd path. */
char *r1__path_join(const char *dir, const char *name);

#endif
