/* Safetensors shard planning and streaming writer (see mkst.h). */
#include "mkst.h"
#include "mkprogress.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 4 MiB chunks: large enough for full-speed write(2), small enough to be irrelevant for RSS. */
#define CHUNK_BYTES (4u << 20)

/* A growable string for the JSON headers. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static uint64_t tensor_bytes(const mkgen_tensor *t) {
    return t->numel * mkgen_dtype_size(t->dtype);
}

/* safetensors order: larger alignment (I32) first, then by name. */
static int cmp_file_order(const void *a, const void *b) {
    const mkgen_tensor *x = *(const mkgen_tensor *const *)a, *y = *(const mkgen_tensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype == MKGEN_I32 ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const mkgen_tensor *const *)a)->name, (*(const mkgen_tensor *const *)b)->name);
}

static r1_status build_header(mk_shard *s, r1_error *err) {
    sbuf b = {0};
    sb_printf(&b, "{");
    for (size_t i = 0; i < s->n; i++) {
        const mkgen_tensor *t = s->items[i];
        sb_printf(&b, "\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu", t->name,
                  t->dtype == MKGEN_I32 ? "I32" : "F16", (unsigned long long)t->shape[0]);
        if (t->ndim == 2) sb_printf(&b, ",%llu", (unsigned long long)t->shape[1]);
        sb_printf(&b, "],\"data_offsets\":[%llu,%llu]},", (unsigned long long)s->offsets[i],
                  (unsigned long long)(s->offsets[i] + tensor_bytes(t)));
    }
    sb_printf(&b, "\"__metadata__\":{\"format\":\"pt\"}}");
    while (!b.oom && b.len % 8) sb_printf(&b, " "); /* keeps the data 8-byte aligned */
    if (b.oom) {
        free(b.s);
        return r1__err(err, R1_E_NOMEM, "out of memory building the safetensors header");
    }
    s->header = b.s;
    s->header_len = b.len;
    return R1_OK;
}

/* HF max_shard_size rule over the state_dict order; returns the shard count. */
static size_t assign_shards(mk_plan *p, uint64_t shard_size) {
    size_t shard = 0;
    uint64_t cur = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t sz = tensor_bytes(&p->tensors[i]);
        if (cur > 0 && cur + sz > shard_size) {
            shard++;
            cur = 0;
        }
        cur += sz;
        p->shard_of[i] = shard;
    }
    return shard + 1;
}

static r1_status fill_shard(mk_plan *p, size_t si, r1_error *err) {
    mk_shard *s = &p->shards[si];
    for (size_t i = 0; i < p->n; i++) s->n += p->shard_of[i] == si;
    s->items = calloc(s->n, sizeof *s->items);
    s->offsets = calloc(s->n, sizeof *s->offsets);
    if (!s->items || !s->offsets) return r1__err(err, R1_E_NOMEM, "out of memory planning shards");
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->shard_of[i] == si) s->items[k++] = &p->tensors[i];
    qsort(s->items, s->n, sizeof *s->items, cmp_file_order);
    for (size_t i = 0; i < s->n; i++) {
        s->offsets[i] = s->data_bytes;
        s->data_bytes += tensor_bytes(s->items[i]);
    }
    if (p->nshards == 1)
        snprintf(s->file, sizeof s->file, "model.safetensors");
    else
        snprintf(s->file, sizeof s->file, "model-%05zu-of-%05zu.safetensors", si + 1, p->nshards);
    r1_status st = build_header(s, err);
    if (st == R1_OK) p->total_file += 8 + s->header_len + s->data_bytes;
    return st;
}

r1_status mk_plan_build(const mk_model *m, uint64_t shard_size, mk_plan *p, r1_error *err) {
    memset(p, 0, sizeof *p);
    p->n = mk_layout_count(m);
    p->tensors = calloc(p->n, sizeof *p->tensors);
    p->shard_of = calloc(p->n, sizeof *p->shard_of);
    if (!p->tensors || !p->shard_of) {
        mk_plan_free(p);
        return r1__err(err, R1_E_NOMEM, "out of memory planning %zu tensors", p->n);
    }
    for (size_t i = 0; i < p->n; i++) {
        mk_layout_at(m, i, &p->tensors[i]);
        p->total_data += tensor_bytes(&p->tensors[i]);
    }
    p->nshards = assign_shards(p, shard_size);
    p->shards = calloc(p->nshards, sizeof *p->shards);
    if (!p->shards) {
        mk_plan_free(p);
        return r1__err(err, R1_E_NOMEM, "out of memory planning shards");
    }
    for (size_t si = 0; si < p->nshards; si++) {
        r1_status st = fill_shard(p, si, err);
        if (st != R1_OK) {
            mk_plan_free(p);
            return st;
        }
    }
    return R1_OK;
}

void mk_plan_free(mk_plan *p) {
    for (size_t i = 0; p->shards && i < p->nshards; i++) {
        free(p->shards[i].items);
        free(p->shards[i].offsets);
        free(p->shards[i].header);
    }
    free(p->shards);
    free(p->tensors);
    free(p->shard_of);
    memset(p, 0, sizeof *p);
}

static r1_status write_bytes(FILE *f, const void *data, size_t n, const char *path, r1_error *err) {
    if (fwrite(data, 1, n, f) != n)
        return r1__err(err, R1_E_IO, "cannot write %s: %s", path, strerror(errno));
    return R1_OK;
}

static r1_status write_tensor(FILE *f, const mkgen_tensor *t, uint8_t *buf, const char *path,
                              const char *file, mk_progress *prog, r1_error *err) {
    size_t esz = mkgen_dtype_size(t->dtype);
    uint64_t per_chunk = CHUNK_BYTES / esz;
    for (uint64_t first = 0; first < t->numel; first += per_chunk) {
        uint64_t count = t->numel - first < per_chunk ? t->numel - first : per_chunk;
        mkgen_fill(t, first, count, buf);
        r1_status st = write_bytes(f, buf, (size_t)(count * esz), path, err);
        if (st != R1_OK) return st;
        mk_progress_add(prog, count * esz, file);
    }
    return R1_OK;
}

static r1_status write_shard(const mk_shard *s, const char *dir, uint8_t *buf, mk_progress *prog,
                             r1_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->file);
    FILE *f = fopen(path, "wb");
    if (!f) return r1__err(err, R1_E_IO, "cannot create %s: %s", path, strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)s->header_len >> (8 * i));
    r1_status st = write_bytes(f, len, 8, path, err);
    if (st == R1_OK) st = write_bytes(f, s->header, s->header_len, path, err);
    mk_progress_add(prog, 8 + s->header_len, s->file);
    for (size_t i = 0; st == R1_OK && i < s->n; i++)
        st = write_tensor(f, s->items[i], buf, path, s->file, prog, err);
    if (fclose(f) != 0 && st == R1_OK) /* delayed write errors (ENOSPC) show up here */
        st = r1__err(err, R1_E_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

/* model.safetensors.index.json with weight_map sorted by name, as transformers writes it. */
static r1_status write_index(const mk_plan *p, const char *dir, r1_error *err) {
    const mkgen_tensor **byname = calloc(p->n, sizeof *byname);
    if (!byname) return r1__err(err, R1_E_NOMEM, "out of memory writing the index");
    for (size_t i = 0; i < p->n; i++) byname[i] = &p->tensors[i];
    qsort(byname, p->n, sizeof *byname, cmp_name);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(byname);
        return r1__err(err, R1_E_IO, "cannot create %s: %s", path, strerror(errno));
    }
    fprintf(f, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
            (unsigned long long)p->total_data);
    for (size_t i = 0; i < p->n; i++) {
        size_t ti = (size_t)(byname[i] - p->tensors);
        fprintf(f, "    \"%s\": \"%s\"%s\n", byname[i]->name, p->shards[p->shard_of[ti]].file,
                i + 1 < p->n ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    free(byname);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return r1__err(err, R1_E_IO, "cannot write %s", path);
    return R1_OK;
}

r1_status mk_plan_write(const mk_plan *p, const char *dir, bool quiet, r1_error *err) {
    uint8_t *buf = malloc(CHUNK_BYTES);
    if (!buf) return r1__err(err, R1_E_NOMEM, "out of memory (write buffer)");
    mk_progress prog;
    mk_progress_start(&prog, p->total_file, quiet);
    r1_status st = R1_OK;
    for (size_t i = 0; st == R1_OK && i < p->nshards; i++)
        st = write_shard(&p->shards[i], dir, buf, &prog, err);
    free(buf);
    if (st == R1_OK)
        mk_progress_end(&prog);
    else if (!quiet && prog.tty)
        fputc('\n', stderr); /* end the in-place line */
    if (st == R1_OK && p->nshards > 1) st = write_index(p, dir, err);
    return st;
}
