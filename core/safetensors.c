#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_util.h"

/* Header dtype strings and element sizes; types the runtime reads map to r1_dtype. */
static const struct {
    const char *s;
    r1_dtype t;
    size_t size;
} dtypes[] = {
    {"F32", R1_F32, 4},
    {"F16", R1_F16, 2},
    {"BF16", R1_BF16, 2},
    {"I32", R1_I32, 4},
    {"I8", R1_I8, 1},
    {"F64", R1_DTYPE_COUNT, 8},
    {"I64", R1_DTYPE_COUNT, 8},
    {"U64", R1_DTYPE_COUNT, 8},
    {"U32", R1_DTYPE_COUNT, 4},
    {"I16", R1_DTYPE_COUNT, 2},
    {"U16", R1_DTYPE_COUNT, 2},
    {"U8", R1_DTYPE_COUNT, 1},
    {"BOOL", R1_DTYPE_COUNT, 1},
    {"F8_E4M3", R1_DTYPE_COUNT, 1},
    {"F8_E5M2", R1_DTYPE_COUNT, 1},
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static r1_status st_add_entry(r1_st *st, r1_st_entry *e, r1_error *err) {
    if (st->n % 256 == 0) {
        r1_st_entry *nt = realloc(st->t, (size_t)(st->n + 256) * sizeof *nt);
        if (!nt) return r1__err(err, R1_E_NOMEM, "out of memory reading safetensors header");
        st->t = nt;
    }
    st->t[st->n++] = *e;
    return R1_OK;
}

static r1_status map_file(const char *path, r1_st_file *f, r1_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return r1__err(err, R1_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return r1__err(err, R1_E_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        return r1__err(err, R1_E_FORMAT, "%s: truncated: %zu bytes, no safetensors header", path,
                       f->size);
    }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return r1__err(err, R1_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    return R1_OK;
}

static r1_status parse_shape(const cJSON *shape, const char *path, const char *name, r1_st_entry *e,
                             r1_error *err) {
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > R1_MAX_DIMS)
        return r1__err(err, R1_E_FORMAT, "%s: tensor %s: bad shape", path, name);
    e->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12)
            return r1__err(err, R1_E_FORMAT, "%s: tensor %s: bad shape value", path, name);
        e->ne[e->ndim++] = (int64_t)d->valuedouble;
    }
    return R1_OK;
}

/* Validates one header entry: dtype known, shape sane, offsets inside the data area. */
static r1_status parse_entry(const cJSON *it, const char *path, size_t data_size, int file,
                             const uint8_t *data, r1_st_entry *e, r1_error *err) {
    const char *name = it->string;
    memset(e, 0, sizeof *e);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !shape || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return r1__err(err, R1_E_FORMAT,
                       "%s: tensor %s: header entry lacks dtype/shape/data_offsets", path, name);
    size_t esize = 0;
    e->type = R1_DTYPE_COUNT;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dt->valuestring, dtypes[i].s)) e->type = dtypes[i].t, esize = dtypes[i].size;
    if (!esize)
        return r1__err(err, R1_E_FORMAT, "%s: tensor %s: unknown dtype \"%s\"", path, name,
                       dt->valuestring);
    snprintf(e->dtype_str, sizeof e->dtype_str, "%s", dt->valuestring);
    r1_status st = parse_shape(shape, path, name, e, err);
    if (st) return st;
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble,
           en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!(b >= 0 && en >= b && en <= (double)data_size))
        return r1__err(
            err, R1_E_FORMAT,
            "%s: tensor %s: data_offsets [%.0f, %.0f] out of range (data area %zu bytes; "
            "file truncated?)",
            path, name, b, en, data_size);
    uint64_t nelem = 1;
    for (int i = 0; i < e->ndim; i++) nelem *= (uint64_t)e->ne[i];
    if ((uint64_t)(en - b) != nelem * esize)
        return r1__err(err, R1_E_FORMAT,
                       "%s: tensor %s: byte range %.0f does not match shape and dtype %s (%llu)",
                       path, name, en - b, e->dtype_str, (unsigned long long)(nelem * esize));
    e->data = data + (size_t)b;
    e->nbytes = (size_t)(en - b);
    e->file = file;
    e->name = strdup(name);
    return e->name ? R1_OK : r1__err(err, R1_E_NOMEM, "out of memory");
}

static r1_status parse_file(r1_st *st, int file, r1_error *err) {
    r1_st_file *f = &st->files[file];
    uint64_t hlen;
    memcpy(&hlen, f->map, 8);
    if (hlen > f->size - 8)
        return r1__err(err, R1_E_FORMAT,
                       "%s: header length %llu runs past the end of the file (%zu bytes)", f->path,
                       (unsigned long long)hlen, f->size);
    const char *hdr = (const char *)f->map + 8;
    cJSON *j = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return r1__err(err, R1_E_FORMAT, "%s: invalid safetensors header JSON", f->path);
    }
    const uint8_t *data = (const uint8_t *)f->map + 8 + hlen;
    size_t data_size = f->size - 8 - (size_t)hlen;
    r1_status s = R1_OK;
    for (const cJSON *it = j->child; it && !s; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) continue;
        r1_st_entry e;
        s = parse_entry(it, f->path, data_size, file, data, &e, err);
        if (!s) s = st_add_entry(st, &e, err);
    }
    cJSON_Delete(j);
    return s;
}

static r1_status build_hash(r1_st *st, r1_error *err) {
    st->hash_cap = 16;
    while (st->hash_cap < st->n * 2) st->hash_cap *= 2;
    st->hash = malloc((size_t)st->hash_cap * sizeof(int));
    if (!st->hash) return r1__err(err, R1_E_NOMEM, "out of memory");
    for (int i = 0; i < st->hash_cap; i++) st->hash[i] = -1;
    for (int i = 0; i < st->n; i++) {
        uint64_t h = hash_str(st->t[i].name) & (uint64_t)(st->hash_cap - 1);
        while (st->hash[h] >= 0) {
            if (!strcmp(st->t[st->hash[h]].name, st->t[i].name))
                return r1__err(err, R1_E_FORMAT, "%s: tensor %s appears twice in the checkpoint",
                               st->files[st->t[i].file].path, st->t[i].name);
            h = (h + 1) & (uint64_t)(st->hash_cap - 1);
        }
        st->hash[h] = i;
    }
    return R1_OK;
}

const r1_st_entry *r1__st_find(const r1_st *st, const char *name) {
    uint64_t h = hash_str(name) & (uint64_t)(st->hash_cap - 1);
    while (st->hash[h] >= 0) {
        if (!strcmp(st->t[st->hash[h]].name, name)) return &st->t[st->hash[h]];
        h = (h + 1) & (uint64_t)(st->hash_cap - 1);
    }
    return NULL;
}

const char *r1__st_file_name(const r1_st *st, const r1_st_entry *e) {
    return st->files[e->file].path;
}

uint64_t r1__st_total_bytes(const r1_st *st) {
    uint64_t s = 0;
    for (int i = 0; i < st->n; i++) s += st->t[i].nbytes;
    return s;
}

static r1_status add_file(r1_st *st, const char *path, r1_error *err) {
    r1_st_file *nf = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *nf);
    if (!nf) return r1__err(err, R1_E_NOMEM, "out of memory");
    st->files = nf;
    r1_st_file *f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    st->n_files++;
    if (!f->path) return r1__err(err, R1_E_NOMEM, "out of memory");
    r1_status s = map_file(path, f, err);
    return s ? s : parse_file(st, st->n_files - 1, err);
}

/* Shard names come from the index; reject paths that leave the folder. */
static int bad_shard_name(const char *s) {
    return !*s || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, ".");
}

static r1_status open_index(r1_st *st, const char *dir, const char *index_path, r1_error *err) {
    cJSON *j;
    r1_status s = r1__json_load(index_path, &j, err);
    if (s) return s;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(j);
        return r1__err(err, R1_E_FORMAT, "%s: missing \"weight_map\" object", index_path);
    }
    for (const cJSON *it = wm->child; it && !s; it = it->next) {
        if (!cJSON_IsString(it) || bad_shard_name(it->valuestring)) {
            s = r1__err(err, R1_E_FORMAT, "%s: weight_map entry %s: bad file name", index_path,
                        it->string);
            break;
        }
        int seen = 0;
        for (int i = 0; i < st->n_files && !seen; i++) {
            const char *base = strrchr(st->files[i].path, '/');
            seen = !strcmp(base ? base + 1 : st->files[i].path, it->valuestring);
        }
        if (seen) continue;
        char *p = r1__path_join(dir, it->valuestring);
        s = p ? add_file(st, p, err) : r1__err(err, R1_E_NOMEM, "out of memory");
        free(p);
    }
    if (!s) s = build_hash(st, err);
    /* Every tensor the index names must be in the shard it names. */
    for (const cJSON *it = wm->child; it && !s; it = it->next) {
        const r1_st_entry *e = r1__st_find(st, it->string);
        const char *fn = e ? strrchr(st->files[e->file].path, '/') : NULL;
        if (!e || strcmp(fn ? fn + 1 : st->files[e->file].path, it->valuestring))
            s = r1__err(err, R1_E_FORMAT, "%s: tensor %s is not in %s", index_path, it->string,
                        it->valuestring);
    }
    cJSON_Delete(j);
    return s;
}

r1_status r1__st_open_dir(const char *dir, r1_st **out, r1_error *err) {
    *out = NULL;
    r1_st *st = calloc(1, sizeof *st);
    if (!st) return r1__err(err, R1_E_NOMEM, "out of memory");
    char *index = r1__path_join(dir, "model.safetensors.index.json");
    char *single = r1__path_join(dir, "model.safetensors");
    r1_status s;
    if (!index || !single) {
        s = r1__err(err, R1_E_NOMEM, "out of memory");
    } else if (access(index, F_OK) == 0) {
        s = open_index(st, dir, index, err);
    } else if (access(single, F_OK) == 0) {
        s = add_file(st, single, err);
        if (!s) s = build_hash(st, err);
    } else {
        s = r1__err(err, R1_E_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(index);
    free(single);
    if (s) {
        r1__st_close(st);
        return s;
    }
    *out = st;
    return R1_OK;
}

void r1__st_close(r1_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->t);
    free(st->files);
    free(st->hash);
    free(st);
}
