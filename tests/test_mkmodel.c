/* r1-mkmodel tests: runs the tool and reads its output back with an independent safetensors
 * reader (header JSON via cJSON, offsets, sizes, dtypes, shapes computed here from the config,
 * index.json), checks the GPTQ conventions (sym qzeros 0x77777777, asym zeros never 0, act-order
 * groups of exactly G rows) and compares elements with mkgen's pure functions.
 *
 * usage: test_mkmodel R1_MKMODEL WORK_DIR CASE
 *   CASE: tiny_small | sharded_asym_actorder | tiny_default | real_shapes | bad_flags | units */
#include "check.h"
#include "mkgen.h"
#include "mklayout.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *g_tool, *g_work;

/* ---- small helpers ------------------------------------------------------------------------ */

/* Runs the tool with args (NULL-terminated); stderr goes to err_path when given. */
static int run_tool(const char *const *args, const char *err_path) {
    const char *argv[64];
    int n = 0;
    argv[n++] = g_tool;
    for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) dup2(fd, 2);
        }
        execv(g_tool, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static cJSON *read_json(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = read_all(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(j != NULL, "cannot parse %s", path);
    return j;
}

static bool file_exists(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "missing number %s", key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int jbool(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsBool(v), "missing bool %s", key);
    return cJSON_IsTrue(v);
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsString(v), "missing string %s", key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- expected checkpoint ------------------------------------------------------------------ */

typedef struct expect {
    mk_model m;
    uint32_t max_pos;
    double theta, eps;
    bool tokenizer, sharded;
} expect;

/* One expected tensor, derived here from the config rules of golden/README.md. */
typedef struct etensor {
    char name[80];
    bool i32;
    int ndim;
    uint64_t shape[2];
    int seen;
    char file[64];
    const uint8_t *data; /* into the mapped file */
} etensor;

typedef struct elist {
    etensor *t;
    size_t n, cap;
} elist;

static void add(elist *l, const char *name, bool i32, uint64_t d0, uint64_t d1) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
    }
    etensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->i32 = i32;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
}

static void expected_tensors(const mk_model *m, elist *l) {
    static const char *lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                "mlp.down_proj"};
    uint32_t hd = m->hidden / m->heads, kvd = m->kv_heads * hd, g = m->group;
    uint32_t K[] = {m->hidden, m->hidden, m->hidden, m->heads * hd, m->hidden, m->hidden, m->inter};
    uint32_t N[] = {m->heads * hd, kvd, kvd, m->hidden, m->inter, m->inter, m->hidden};
    char name[80];
    add(l, "model.embed_tokens.weight", false, m->vocab, m->hidden);
    add(l, "model.norm.weight", false, m->hidden, 0);
    if (!m->tied) add(l, "lm_head.weight", false, m->vocab, m->hidden);
    for (uint32_t i = 0; i < m->layers; i++) {
        snprintf(name, sizeof name, "model.layers.%u.input_layernorm.weight", i);
        add(l, name, false, m->hidden, 0);
        snprintf(name, sizeof name, "model.layers.%u.post_attention_layernorm.weight", i);
        add(l, name, false, m->hidden, 0);
        for (int j = 0; j < 7; j++) {
            snprintf(name, sizeof name, "model.layers.%u.%s.qweight", i, lin[j]);
            add(l, name, true, K[j] / 8, N[j]);
            snprintf(name, sizeof name, "model.layers.%u.%s.qzeros", i, lin[j]);
            add(l, name, true, K[j] / g, N[j] / 8);
            snprintf(name, sizeof name, "model.layers.%u.%s.scales", i, lin[j]);
            add(l, name, false, K[j] / g, N[j]);
            snprintf(name, sizeof name, "model.layers.%u.%s.g_idx", i, lin[j]);
            add(l, name, true, K[j], 0);
            if (j < 3) {
                snprintf(name, sizeof name, "model.layers.%u.%s.bias", i, lin[j]);
                add(l, name, false, N[j], 0);
            }
        }
    }
}

static etensor *find(elist *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- config files ------------------------------------------------------------------------- */

static void check_configs(const char *dir, const expect *e) {
    const mk_model *m = &e->m;
    cJSON *c = read_json(dir, "config.json");
    if (!c) return;
    CHECK(strcmp(jstr(c, "model_type"), "qwen2") == 0);
    CHECK(strcmp(jstr(c, "torch_dtype"), "float16") == 0);
    CHECK(strcmp(jstr(c, "hidden_act"), "silu") == 0);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(c, "architectures");
    CHECK(cJSON_GetArraySize(arch) == 1 &&
          strcmp(cJSON_GetArrayItem(arch, 0)->valuestring, "Qwen2ForCausalLM") == 0);
    CHECK(jnum(c, "hidden_size") == m->hidden);
    CHECK(jnum(c, "intermediate_size") == m->inter);
    CHECK(jnum(c, "num_hidden_layers") == m->layers);
    CHECK(jnum(c, "num_attention_heads") == m->heads);
    CHECK(jnum(c, "num_key_value_heads") == m->kv_heads);
    CHECK(jnum(c, "vocab_size") == m->vocab);
    CHECK(jnum(c, "max_position_embeddings") == e->max_pos);
    CHECK(jnum(c, "rope_theta") == e->theta);
    CHECK(jnum(c, "rms_norm_eps") == e->eps);
    CHECK(jbool(c, "tie_word_embeddings") == m->tied);
    CHECK(jbool(c, "use_sliding_window") == 0);
    bool r1 = m->vocab >= 151665;
    CHECK(jnum(c, "bos_token_id") == (r1 ? 151643 : m->vocab - 1));
    CHECK(jnum(c, "eos_token_id") == (r1 ? 151643 : m->vocab - 1));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantization_config");
    CHECK(cJSON_IsObject(q));
    CHECK(strcmp(jstr(q, "quant_method"), "gptq") == 0);
    CHECK(strcmp(jstr(q, "checkpoint_format"), "gptq") == 0);
    CHECK(jnum(q, "bits") == 4);
    CHECK(jnum(q, "group_size") == m->group);
    CHECK(jbool(q, "desc_act") == m->act_order);
    CHECK(jbool(q, "sym") == m->sym);
    CHECK(jbool(q, "true_sequential") == 1);
    CHECK(jbool(q, "static_groups") == 0);
    CHECK(jnum(q, "damp_percent") == 0.01);
    cJSON *qc = read_json(dir, "quantize_config.json");
    CHECK_MSG(qc && cJSON_Compare(q, qc, true), "quantize_config.json differs from config's");
    cJSON *g = read_json(dir, "generation_config.json");
    if (g) {
        CHECK(jnum(g, "bos_token_id") == (r1 ? 151646 : m->vocab - 2));
        CHECK(jnum(g, "eos_token_id") == (r1 ? 151643 : m->vocab - 1));
        CHECK(jbool(g, "do_sample") == 1);
        CHECK(jnum(g, "temperature") == 0.6);
        CHECK(jnum(g, "top_p") == 0.95);
    }
    cJSON_Delete(c);
    cJSON_Delete(qc);
    cJSON_Delete(g);
}

static void check_tokenizer(const char *dir, bool expected) {
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        if (!expected) {
            CHECK_MSG(!file_exists(dir, files[i]), "unexpected %s", files[i]);
            continue;
        }
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/models/r1-tokenizer/%s", R1_SOURCE_ROOT, files[i]);
        size_t na = 0, nb = 0;
        char *x = read_all(a, &na), *y = read_all(b, &nb);
        CHECK_MSG(x && y && na == nb && memcmp(x, y, na) == 0, "%s not a copy of %s", a, b);
        free(x);
        free(y);
    }
}

/* ---- safetensors reader ------------------------------------------------------------------- */

typedef struct mapped {
    uint8_t *p;
    size_t len;
} mapped;

typedef struct range {
    uint64_t begin, end;
    bool i32;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Checks one tensor entry of a header against the expected list; returns its byte range. */
static bool check_entry(const cJSON *item, elist *l, const char *file, const uint8_t *data,
                        range *r) {
    etensor *t = find(l, item->string);
    CHECK_MSG(t != NULL, "unexpected tensor %s in %s", item->string, file);
    if (!t) return false;
    CHECK_MSG(t->seen == 0, "tensor %s stored twice", t->name);
    t->seen++;
    snprintf(t->file, sizeof t->file, "%s", file);
    const char *dt = jstr(item, "dtype");
    CHECK_MSG(strcmp(dt, t->i32 ? "I32" : "F16") == 0, "%s dtype %s", t->name, dt);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    CHECK_MSG(cJSON_GetArraySize(shape) == t->ndim, "%s rank", t->name);
    for (int d = 0; d < t->ndim && d < cJSON_GetArraySize(shape); d++)
        CHECK_MSG(cJSON_GetArrayItem(shape, d)->valuedouble == (double)t->shape[d],
                  "%s dim %d is %g, expected %llu", t->name, d,
                  cJSON_GetArrayItem(shape, d)->valuedouble, (unsigned long long)t->shape[d]);
    if (cJSON_GetArraySize(off) != 2) {
        CHECK_MSG(0, "%s data_offsets", t->name);
        return false;
    }
    r->begin = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    r->end = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    r->i32 = t->i32;
    uint64_t numel = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
    CHECK_MSG(r->end - r->begin == numel * (t->i32 ? 4 : 2), "%s byte size", t->name);
    CHECK_MSG(r->begin % 4 == 0, "%s offset %llu not 4-aligned", t->name,
              (unsigned long long)r->begin);
    t->data = data + r->begin;
    return true;
}

/* Parses one safetensors file; returns its data bytes. */
static uint64_t check_file(const char *dir, const char *file, elist *l, mapped *map) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDONLY);
    struct stat st;
    CHECK_MSG(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 8, "cannot open %s", path);
    if (fd < 0) return 0;
    map->len = (size_t)st.st_size;
    map->p = mmap(NULL, map->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map->p == MAP_FAILED) {
        map->p = NULL;
        CHECK_MSG(0, "cannot map %s", path);
        return 0;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)map->p[i] << (8 * i);
    CHECK_MSG(hlen % 8 == 0 && 8 + hlen <= map->len, "%s header length %llu", file,
              (unsigned long long)hlen);
    const char *h = (const char *)map->p + 8;
    size_t jlen = hlen;
    while (jlen > 0 && h[jlen - 1] == ' ') jlen--; /* padding must be spaces */
    CHECK_MSG(jlen > 0 && h[jlen - 1] == '}', "%s header not JSON + spaces", file);
    cJSON *j = cJSON_ParseWithLength(h, jlen);
    CHECK_MSG(j != NULL, "%s header JSON", file);
    if (!j) return 0;
    const uint8_t *data = map->p + 8 + hlen;
    uint64_t data_len = map->len - 8 - hlen;
    range *rs = calloc((size_t)cJSON_GetArraySize(j) + 1, sizeof *rs);
    size_t nr = 0;
    bool meta = false;
    for (const cJSON *it = j->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            meta = cJSON_GetArraySize(it) == 1 && strcmp(jstr(it, "format"), "pt") == 0;
            continue;
        }
        if (check_entry(it, l, file, data, &rs[nr])) nr++;
    }
    CHECK_MSG(meta, "%s: __metadata__ must be {\"format\":\"pt\"}", file);
    qsort(rs, nr, sizeof *rs, cmp_range);
    uint64_t pos = 0;
    bool contiguous = true, i32_first = true;
    for (size_t i = 0; i < nr; i++) {
        contiguous = contiguous && rs[i].begin == pos;
        i32_first = i32_first && (i == 0 || rs[i].i32 <= rs[i - 1].i32);
        pos = rs[i].end;
    }
    CHECK_MSG(contiguous && pos == data_len, "%s: data not contiguous / not filling the file",
              file);
    CHECK_MSG(i32_first, "%s: I32 tensors must come before F16", file);
    free(rs);
    cJSON_Delete(j);
    return data_len;
}

/* ---- values ------------------------------------------------------------------------------- */

static uint32_t elem(const etensor *t, uint64_t i) {
    return t->i32 ? rd32(t->data + 4 * i) : rd16(t->data + 2 * i);
}

static void check_qzeros(const etensor *t, const mk_model *m, int *nib_min, int *nib_max) {
    uint64_t n = t->shape[0] * t->shape[1];
    bool ok = true;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t w = elem(t, i);
        if (m->sym) ok = ok && w == 0x77777777u;
        for (int j = 0; j < 8; j++) {
            int nib = (int)((w >> (4 * j)) & 15);
            ok = ok && nib != 15; /* stored 15 = zero 16/0: never generated */
            if (nib < *nib_min) *nib_min = nib;
            if (nib > *nib_max) *nib_max = nib;
        }
    }
    CHECK_MSG(ok, "%s: bad zero points", t->name);
}

/* Codes 1..15, symmetric around 8 (the generator never writes 0): mean code 8. */
static void check_qweight(const etensor *t, double *sum, uint64_t *count) {
    uint64_t n = t->shape[0] * t->shape[1];
    if (n > (1u << 20)) n = 1u << 20;
    bool ok = true;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t w = elem(t, i);
        for (int j = 0; j < 8; j++) {
            uint32_t q = (w >> (4 * j)) & 15;
            ok = ok && q != 0;
            *sum += q;
        }
    }
    *count += 8 * n;
    CHECK_MSG(ok, "%s: code 0 present", t->name);
}

static bool check_g_idx(const etensor *t, const mk_model *m) {
    uint32_t K = (uint32_t)t->shape[0], G = m->group, ng = K / G;
    uint32_t *count = calloc(ng, sizeof *count);
    bool ok = true, monotone = true;
    for (uint32_t k = 0; k < K; k++) {
        int32_t g = (int32_t)elem(t, k);
        if (g < 0 || (uint32_t)g >= ng) {
            ok = false;
            continue;
        }
        count[g]++;
        if (!m->act_order) ok = ok && (uint32_t)g == k / G;
        if (k && g < (int32_t)elem(t, k - 1)) monotone = false;
    }
    for (uint32_t g = 0; g < ng; g++) ok = ok && count[g] == G;
    CHECK_MSG(ok, "%s: every group must have exactly %u rows%s", t->name, G,
              m->act_order ? "" : " in order k/G");
    free(count);
    return monotone;
}

/* Float sanity of F16 tensors: finite, in the range the generator promises. */
static void check_f16(const etensor *t) {
    uint64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
    bool norm = ends_with(t->name, "layernorm.weight") || strcmp(t->name, "model.norm.weight") == 0;
    bool scales = ends_with(t->name, ".scales");
    bool ok = true;
    for (uint64_t i = 0; i < n; i++) {
        float v = mkgen_f16_to_f32((uint16_t)elem(t, i));
        if (norm)
            ok = ok && v == 1.0f;
        else if (scales)
            ok = ok && v > 0 && v < 0.5f;
        else
            ok = ok && v > -1.0f && v < 1.0f && v == v;
    }
    CHECK_MSG(ok, "%s: values out of range", t->name);
}

/* Compares a sample of elements (all of a small tensor) with mkgen. */
static void check_mkgen(const etensor *t, const mk_model *m) {
    mkgen_tensor g;
    CHECK_MSG(mk_layout_find(m, t->name, &g), "mklayout lacks %s", t->name);
    uint64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
    CHECK(g.numel == n && g.shape[0] == t->shape[0] && g.ndim == t->ndim);
    uint64_t step = n <= 4096 ? 1 : n / 509, bad = 0, first_bad = 0;
    for (uint64_t i = 0; i < n; i += step) {
        if (elem(t, i) != mkgen_value(&g, i) && !bad++) first_bad = i;
    }
    if (elem(t, n - 1) != mkgen_value(&g, n - 1) && !bad++) first_bad = n - 1;
    CHECK_MSG(bad == 0, "%s: %llu sampled elements differ from mkgen (first at %llu)", t->name,
              (unsigned long long)bad, (unsigned long long)first_bad);
}

static void check_values(elist *l, const mk_model *m) {
    int nib_min = 99, nib_max = -1;
    bool any_scattered = false;
    double code_sum = 0;
    uint64_t codes = 0;
    for (size_t i = 0; i < l->n; i++) {
        const etensor *t = &l->t[i];
        if (!t->data) continue;
        if (ends_with(t->name, ".qzeros")) check_qzeros(t, m, &nib_min, &nib_max);
        if (ends_with(t->name, ".qweight")) check_qweight(t, &code_sum, &codes);
        if (ends_with(t->name, ".g_idx")) any_scattered |= !check_g_idx(t, m);
        if (!t->i32) check_f16(t);
        check_mkgen(t, m);
    }
    if (m->sym)
        CHECK(nib_min == 7 && nib_max == 7);
    else
        CHECK_MSG(nib_min == 0 && nib_max == 14, "asym zeros span %d..%d", nib_min, nib_max);
    CHECK_MSG(any_scattered == m->act_order, "act-order g_idx must be scattered, plain sorted");
}

/* ---- whole checkpoint --------------------------------------------------------------------- */

/* Files listed by the index (checking weight_map/total_size later) or model.safetensors. */
static int list_files(const char *dir, const expect *e, cJSON **index, char files[][64]) {
    *index = NULL;
    if (!e->sharded) {
        CHECK_MSG(!file_exists(dir, "model.safetensors.index.json"), "unexpected index");
        snprintf(files[0], 64, "model.safetensors");
        return 1;
    }
    CHECK_MSG(!file_exists(dir, "model.safetensors"), "sharded model has model.safetensors");
    *index = read_json(dir, "model.safetensors.index.json");
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(*index, "weight_map");
    int nf = 0;
    for (const cJSON *it = wm ? wm->child : NULL; it; it = it->next) {
        int k = 0;
        while (k < nf && strcmp(files[k], it->valuestring) != 0) k++;
        if (k == nf && nf < 64) snprintf(files[nf++], 64, "%s", it->valuestring);
    }
    CHECK_MSG(nf > 1, "sharded index names %d files", nf);
    for (int k = 0; k < nf; k++) {
        char want[64];
        snprintf(want, sizeof want, "model-%05d-of-%05d.safetensors", k + 1, nf);
        CHECK_MSG(file_exists(dir, want), "missing shard %s", want);
        snprintf(files[k], 64, "%s", want);
    }
    return nf;
}

static void check_index(const cJSON *index, elist *l, uint64_t total) {
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(index, "metadata");
    CHECK_MSG(jnum(meta, "total_size") == (double)total, "total_size %g != %llu",
              jnum(meta, "total_size"), (unsigned long long)total);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    CHECK((size_t)cJSON_GetArraySize(wm) == l->n);
    for (size_t i = 0; i < l->n; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(wm, l->t[i].name);
        CHECK_MSG(cJSON_IsString(f) && strcmp(f->valuestring, l->t[i].file) == 0,
                  "weight_map[%s] wrong", l->t[i].name);
    }
}

static void check_checkpoint(const char *dir, const expect *e) {
    check_configs(dir, e);
    check_tokenizer(dir, e->tokenizer);
    elist l = {0};
    expected_tensors(&e->m, &l);
    cJSON *index;
    char files[64][64];
    int nf = list_files(dir, e, &index, files);
    mapped maps[64] = {{0}};
    uint64_t total = 0;
    for (int k = 0; k < nf; k++) total += check_file(dir, files[k], &l, &maps[k]);
    for (size_t i = 0; i < l.n; i++)
        CHECK_MSG(l.t[i].seen == 1, "tensor %s stored %d times", l.t[i].name, l.t[i].seen);
    if (index) check_index(index, &l, total);
    check_values(&l, &e->m);
    for (int k = 0; k < nf; k++)
        if (maps[k].p) munmap(maps[k].p, maps[k].len);
    cJSON_Delete(index);
    free(l.t);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void out_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_work, name);
    rm_rf(buf);
}

static expect tiny_expect(void) {
    expect e = {.m = {.seed = 1,
                      .hidden = 128,
                      .inter = 384,
                      .layers = 2,
                      .heads = 4,
                      .kv_heads = 2,
                      .vocab = 151936,
                      .group = 32,
                      .sym = true},
                .max_pos = 131072,
                .theta = 1e6,
                .eps = 1e-6};
    return e;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void case_tiny_small(void) {
    char d1[900], d2[900], d3[900], f1[1024], f2[1024], f3[1024];
    out_dir(d1, sizeof d1, "tiny_small");
    const char *args[] = {"--preset", "tiny",  "--vocab", "1000", "--no-tokenizer", "--seed", "7",
                          "--quiet",  "--out", d1,        NULL};
    CHECK(run_tool(args, NULL) == 0);
    expect e = tiny_expect();
    e.m.vocab = 1000;
    e.m.seed = 7;
    check_checkpoint(d1, &e);
    /* same flags -> same bytes; another seed -> other bytes */
    out_dir(d2, sizeof d2, "tiny_small_again");
    out_dir(d3, sizeof d3, "tiny_small_seed8");
    args[9] = d2;
    CHECK(run_tool(args, NULL) == 0);
    args[6] = "8";
    args[9] = d3;
    CHECK(run_tool(args, NULL) == 0);
    snprintf(f1, sizeof f1, "%s/model.safetensors", d1);
    snprintf(f2, sizeof f2, "%s/model.safetensors", d2);
    snprintf(f3, sizeof f3, "%s/model.safetensors", d3);
    CHECK_MSG(same_file(f1, f2), "same seed gave different files");
    CHECK_MSG(!same_file(f1, f3), "different seeds gave identical files");
    rm_rf(d2);
    rm_rf(d3);
}

static void case_sharded(void) {
    char d[900];
    out_dir(d, sizeof d, "sharded_asym_actorder");
    const char *args[] = {"--preset",
                          "tiny",
                          "--hidden",
                          "256",
                          "--inter",
                          "640",
                          "--layers",
                          "3",
                          "--heads",
                          "8",
                          "--kv-heads",
                          "2",
                          "--vocab",
                          "777",
                          "--group",
                          "64",
                          "--asym",
                          "--act-order",
                          "--tied",
                          "--shard-size=300K",
                          "--no-tokenizer",
                          "--rope-theta",
                          "10000",
                          "--eps",
                          "1e-5",
                          "--max-pos",
                          "4096",
                          "--seed",
                          "3",
                          "--out",
                          d,
                          NULL};
    CHECK(run_tool(args, NULL) == 0);
    expect e = {.m = {.seed = 3,
                      .hidden = 256,
                      .inter = 640,
                      .layers = 3,
                      .heads = 8,
                      .kv_heads = 2,
                      .vocab = 777,
                      .group = 64,
                      .sym = false,
                      .act_order = true,
                      .tied = true},
                .max_pos = 4096,
                .theta = 10000,
                .eps = 1e-5,
                .sharded = true};
    check_checkpoint(d, &e);
    /* A rerun into the same folder as one file must not leave the old shards or index. */
    args[19] = "--shard-size=1G";
    CHECK(run_tool(args, NULL) == 0);
    e.sharded = false;
    check_checkpoint(d, &e);
    CHECK(!file_exists(d, "model-00001-of-00004.safetensors"));
}

static void case_tiny_default(void) {
    char d[900], log[1024];
    out_dir(d, sizeof d, "tiny_default");
    snprintf(log, sizeof log, "%s/tiny_default.log", g_work);
    const char *args[] = {"--preset", "tiny", "--out", d, NULL};
    CHECK(run_tool(args, log) == 0);
    expect e = tiny_expect();
    e.tokenizer = true;
    check_checkpoint(d, &e);
    char *text = read_all(log, NULL);
    CHECK_MSG(text && strstr(text, "100.0%") && strstr(text, "MB/s"), "no progress output");
    free(text);
    /* Python-repr floats as transformers writes them. */
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    text = read_all(cfg, NULL);
    CHECK(text && strstr(text, "\"rope_theta\": 1000000.0,") &&
          strstr(text, "\"rms_norm_eps\": 1e-06,"));
    free(text);
}

/* One decoder layer of each real preset: real tensor sizes (K = 13824 for the 14b down_proj,
 * 108 act-order groups), small vocabulary, several shards. */
static void case_real_shapes(void) {
    char d[900];
    out_dir(d, sizeof d, "real_14b_layer");
    const char *a14[] = {
        "--preset",       "14b",          "--layers", "1",       "--vocab", "1024", "--act-order",
        "--no-tokenizer", "--shard-size", "40M",      "--quiet", "--out",   d,      NULL};
    CHECK(run_tool(a14, NULL) == 0);
    expect e = {.m = {.seed = 1,
                      .hidden = 5120,
                      .inter = 13824,
                      .layers = 1,
                      .heads = 40,
                      .kv_heads = 8,
                      .vocab = 1024,
                      .group = 128,
                      .sym = true,
                      .act_order = true},
                .max_pos = 131072,
                .theta = 1e6,
                .eps = 1e-5,
                .sharded = true};
    check_checkpoint(d, &e);
    rm_rf(d);
    out_dir(d, sizeof d, "real_1p5b_layer");
    const char *a15[] = {"--preset", "1.5b",           "--layers", "2",     "--vocab", "2048",
                         "--asym",   "--no-tokenizer", "--quiet",  "--out", d,         NULL};
    CHECK(run_tool(a15, NULL) == 0);
    expect f = {.m = {.seed = 1,
                      .hidden = 1536,
                      .inter = 8960,
                      .layers = 2,
                      .heads = 12,
                      .kv_heads = 2,
                      .vocab = 2048,
                      .group = 128,
                      .sym = false},
                .max_pos = 131072,
                .theta = 10000,
                .eps = 1e-6};
    check_checkpoint(d, &f);
    rm_rf(d);
}

static void case_bad_flags(void) {
    char d[900], log[1024];
    out_dir(d, sizeof d, "bad_flags_out");
    snprintf(log, sizeof log, "%s/bad_flags.log", g_work);
    const char *T = "--no-tokenizer";
    const char *bad[][12] = {
        {NULL},
        {"--preset", "nope", "--out", d, NULL},
        {"--preset", "tiny", NULL},
        {"--out", d, NULL},
        {"--preset", "tiny", "--out", d, "--group", "48", T, NULL},
        {"--preset", "tiny", "--out", d, "--group", "12", T, NULL},
        {"--preset", "tiny", "--out", d, "--heads", "3", T, NULL},
        {"--preset", "tiny", "--out", d, "--kv-heads", "3", T, NULL},
        {"--preset", "tiny", "--out", d, "--heads", "128", "--kv-heads", "1", T, NULL},
        {"--preset", "tiny", "--out", d, "--inter", "100", T, NULL},
        {"--preset", "tiny", "--out", d, "--hidden", "abc", T, NULL},
        {"--preset", "tiny", "--out", d, "--hidden", "-5", T, NULL},
        {"--preset", "tiny", "--out", d, "--layers", "0", T, NULL},
        {"--preset", "tiny", "--out", d, "--shard-size", "0", T, NULL},
        {"--preset", "tiny", "--out", d, "--shard-size", "12X", T, NULL},
        {"--preset", "tiny", "--out", d, "--rope-theta", "-1", T, NULL},
        {"--preset", "tiny", "--out", d, "--eps", "nan", T, NULL},
        {"--preset", "tiny", "--out", d, "--bogus", T, NULL},
        {"--preset", "tiny", "--out", d, "--vocab", "1000", NULL},
        {"--preset", "tiny", "--out", d, "--seed", NULL},
        {"--preset", "tiny", "--out", d, "--sym=yes", T, NULL},
        {"--preset", "tiny", "--out", d, "stray", T, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_tool(bad[i], log);
        char *text = read_all(log, NULL);
        const char *nl = text ? strchr(text, '\n') : NULL;
        CHECK_MSG(rc == 2, "bad case %zu: exit %d, expected 2", i, rc);
        CHECK_MSG(text && strncmp(text, "r1-mkmodel: ", 12) == 0 && nl &&
                      strncmp(nl + 1, "usage: ", 7) == 0,
                  "bad case %zu: stderr must be one line then usage, got: %.200s", i,
                  text ? text : "(none)");
        free(text);
        CHECK_MSG(access(d, F_OK) != 0, "bad case %zu created the output folder", i);
    }
    const char *help[] = {"--help", NULL};
    CHECK(run_tool(help, log) == 0);
}

/* Pure generator functions: fp16 conversion, the act-order permutation, value ranges. */
static void case_units(void) {
    CHECK(mkgen_f32_to_f16(1.0f) == 0x3c00 && mkgen_f32_to_f16(-2.0f) == 0xc000);
    CHECK(mkgen_f32_to_f16(65504.0f) == 0x7bff && mkgen_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(mkgen_f32_to_f16(0x1p-24f) == 0x0001 && mkgen_f32_to_f16(0x1p-26f) == 0);
    CHECK(mkgen_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);     /* tie -> even */
    CHECK(mkgen_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02); /* tie -> even (up) */
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half survives a round trip */
        if (mkgen_f32_to_f16(mkgen_f16_to_f32((uint16_t)h)) != h) {
            CHECK_MSG(0, "half 0x%04x round trip", h);
            break;
        }
    static const uint32_t ns[] = {1, 2, 7, 128, 1536, 5120, 13824};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        uint32_t n = ns[c];
        uint8_t *hit = calloc(n, 1);
        bool ok = true;
        for (uint32_t x = 0; x < n; x++) {
            uint32_t y = mkgen_perm(0x1234 + c, n, x);
            ok = ok && y < n && !hit[y];
            if (y < n) hit[y] = 1;
        }
        CHECK_MSG(ok, "mkgen_perm is not a bijection of 0..%u", n - 1);
        free(hit);
    }
    /* the sym qzeros word and the scale range of a 14b-sized linear */
    CHECK(mkgen_qzeros(5, 0, true) == 0x77777777u);
    for (uint64_t i = 0; i < 1000; i++) {
        float s = mkgen_f16_to_f32(mkgen_scale(9, i, 5120, true));
        CHECK(s > 0.5f * 0.00334f && s < 1.5f * 0.00335f); /* (0.5..1.5) / (sqrt(17.5) * 71.55) */
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s R1_MKMODEL WORK_DIR CASE\n", argv[0]);
        return 2;
    }
    g_tool = argv[1];
    g_work = argv[2];
    mkdir(g_work, 0777);
    const char *c = argv[3];
    if (strcmp(c, "tiny_small") == 0)
        case_tiny_small();
    else if (strcmp(c, "sharded_asym_actorder") == 0)
        case_sharded();
    else if (strcmp(c, "tiny_default") == 0)
        case_tiny_default();
    else if (strcmp(c, "real_shapes") == 0)
        case_real_shapes();
    else if (strcmp(c, "bad_flags") == 0)
        case_bad_flags();
    else if (strcmp(c, "units") == 0)
        case_units();
    else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    char name[128];
    snprintf(name, sizeof name, "mkmodel_%s", c);
    return r1t_finish(name);
}
