#include "json_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *r1__path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

r1_status r1__read_file(const char *path, char **buf, size_t *len, r1_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return r1__err(err, R1_E_IO, "%s: cannot open: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return r1__err(err, R1_E_NOMEM, "%s: out of memory reading file", path);
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return r1__err(err, R1_E_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    if (len) *len = n;
    return R1_OK;
}

r1_status r1__json_load(const char *path, cJSON **out, r1_error *err) {
    char *buf;
    size_t len;
    r1_status st = r1__read_file(path, &buf, &len, err);
    if (st) return st;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        long off = end ? (long)(end - buf) : -1;
        free(buf);
        return r1__err(err, R1_E_FORMAT, "%s: invalid JSON near byte %ld", path, off);
    }
    free(buf);
    *out = j;
    return R1_OK;
}

static r1_status get_num(const cJSON *o, const char *key, const char *what, int required, double *v,
                         r1_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) return r1__err(err, R1_E_FORMAT, "%s: missing field \"%s\"", what, key);
        return R1_E_RANGE; /* signals "absent" to the _opt callers */
    }
    if (!cJSON_IsNumber(it))
        return r1__err(err, R1_E_FORMAT, "%s: field \"%s\" is not a number", what, key);
    *v = it->valuedouble;
    return R1_OK;
}

r1_status r1__json_int(const cJSON *o, const char *key, const char *what, long long *v,
                       r1_error *err) {
    double d = 0;
    r1_status st = get_num(o, key, what, 1, &d, err);
    if (st) return st;
    if (d != floor(d) || fabs(d) > 9e15)
        return r1__err(err, R1_E_FORMAT, "%s: field \"%s\" is not an integer", what, key);
    *v = (long long)d;
    return R1_OK;
}

r1_status r1__json_int_opt(const cJSON *o, const char *key, const char *what, long long dflt,
                           long long *v, r1_error *err) {
    double d = 0;
    r1_status st = get_num(o, key, what, 0, &d, err);
    if (st == R1_E_RANGE) {
        *v = dflt;
        return R1_OK;
    }
    if (st) return st;
    if (d != floor(d) || fabs(d) > 9e15)
        return r1__err(err, R1_E_FORMAT, "%s: field \"%s\" is not an integer", what, key);
    *v = (long long)d;
    return R1_OK;
}

r1_status r1__json_num_opt(const cJSON *o, const char *key, const char *what, double dflt,
                           double *v, r1_error *err) {
    r1_status st = get_num(o, key, what, 0, v, err);
    if (st == R1_E_RANGE) {
        *v = dflt;
        return R1_OK;
    }
    return st;
}

r1_status r1__json_bool_opt(const cJSON *o, const char *key, const char *what, int dflt, int *v,
                            r1_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) {
        *v = dflt;
        return R1_OK;
    }
    if (!cJSON_IsBool(it))
        return r1__err(err, R1_E_FORMAT, "%s: field \"%s\" is not a boolean", what, key);
    *v = cJSON_IsTrue(it);
    return R1_OK;
}
