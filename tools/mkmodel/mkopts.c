/* r1-mkmodel command line: presets, flags, validation. */
#include "mkopts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct preset {
    const char *name;
    uint32_t hidden, inter, layers, heads, kv_heads, vocab, max_pos, group;
    uint32_t max_window_layers, sliding_window; /* 0: follow layers / max_pos */
    double rope_theta, rms_eps;
} preset;

/* Shapes of the real models (MODEL.md §1.1, §1.2); tiny matches golden tiny-sym-g32 except for
 * the vocabulary, which is the R1 one so the tokenizer fits. */
static const preset presets[] = {
    {"14b", 5120, 13824, 48, 40, 8, 152064, 131072, 128, 48, 131072, 1e6, 1e-5},
    {"1.5b", 1536, 8960, 28, 12, 2, 151936, 131072, 128, 21, 4096, 10000.0, 1e-6},
    {"tiny", 128, 384, 2, 4, 2, 151936, 131072, 32, 0, 0, 1e6, 1e-6},
};

typedef enum flag_id {
    F_PRESET,
    F_OUT,
    F_HIDDEN,
    F_INTER,
    F_LAYERS,
    F_HEADS,
    F_KV,
    F_VOCAB,
    F_MAXPOS,
    F_THETA,
    F_EPS,
    F_GROUP,
    F_SYM,
    F_ASYM,
    F_ACT,
    F_NOACT,
    F_TIED,
    F_UNTIED,
    F_SHARD,
    F_SEED,
    F_TOK,
    F_NOTOK,
    F_QUIET,
    F_HELP,
} flag_id;

static const struct flag {
    const char *name;
    flag_id id;
    bool has_value;
} flags[] = {
    {"--preset", F_PRESET, true},    {"--out", F_OUT, true},
    {"--hidden", F_HIDDEN, true},    {"--inter", F_INTER, true},
    {"--layers", F_LAYERS, true},    {"--heads", F_HEADS, true},
    {"--kv-heads", F_KV, true},      {"--vocab", F_VOCAB, true},
    {"--max-pos", F_MAXPOS, true},   {"--rope-theta", F_THETA, true},
    {"--eps", F_EPS, true},          {"--group", F_GROUP, true},
    {"--sym", F_SYM, false},         {"--asym", F_ASYM, false},
    {"--act-order", F_ACT, false},   {"--no-act-order", F_NOACT, false},
    {"--tied", F_TIED, false},       {"--untied", F_UNTIED, false},
    {"--shard-size", F_SHARD, true}, {"--seed", F_SEED, true},
    {"--tokenizer", F_TOK, true},    {"--no-tokenizer", F_NOTOK, false},
    {"--quiet", F_QUIET, false},     {"--help", F_HELP, false},
    {"-h", F_HELP, false},
};

void mk_opts_usage(FILE *f) {
    fputs("usage: r1-mkmodel --preset 14b|1.5b|tiny --out DIR [flags]\n"
          "Writes a random-weight Qwen2 GPTQ-Int4 checkpoint in the Hugging Face layout\n"
          "(config.json, quantize_config.json, generation_config.json, safetensors shards,\n"
          "model.safetensors.index.json when sharded, R1 tokenizer files).\n"
          "  --hidden N --inter N --layers N --heads N --kv-heads N --vocab N\n"
          "  --max-pos N --rope-theta X --eps X     override the preset's shape/config fields\n"
          "  --group G                 GPTQ group size (multiple of 8 dividing hidden and inter)\n"
          "  --sym | --asym            symmetric (default) or asymmetric zero points\n"
          "  --act-order | --no-act-order   desc_act with a scattered g_idx (default off)\n"
          "  --tied | --untied         share lm_head with embed_tokens (default untied)\n"
          "  --shard-size BYTES        max tensor bytes per shard (default 4G); suffixes\n"
          "                            K/M/G (x1000, as HF \"4GB\") or Ki/Mi/Gi (x1024)\n"
          "  --seed N                  random seed (default 1); same flags -> same bytes\n"
          "  --tokenizer DIR           where tokenizer.json/tokenizer_config.json are read\n"
          "                            (default: the project's models/r1-tokenizer)\n"
          "  --no-tokenizer            write no tokenizer files (allows a small --vocab)\n"
          "  --quiet                   no progress output\n",
          f);
}

static bool fail(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *msg, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
    return false;
}

/* Strict unsigned decimal: digits only, no sign, no trailing text. */
static bool parse_u64(const char *s, uint64_t *v, const char **end) {
    if (!isdigit((unsigned char)s[0])) return false;
    errno = 0;
    char *e;
    unsigned long long x = strtoull(s, &e, 10);
    if (errno) return false;
    *v = x;
    if (end)
        *end = e;
    else if (*e)
        return false;
    return true;
}

static bool parse_dim(const char *flag, const char *s, uint32_t max, uint32_t *out, char *msg,
                      size_t n) {
    uint64_t v;
    if (!parse_u64(s, &v, NULL) || v < 1 || v > max)
        return fail(msg, n, "%s '%s' must be an integer in 1..%u", flag, s, max);
    *out = (uint32_t)v;
    return true;
}

static bool parse_pos_real(const char *flag, const char *s, double *out, char *msg, size_t n) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !isfinite(v) || v <= 0)
        return fail(msg, n, "%s '%s' must be a positive finite number", flag, s);
    *out = v;
    return true;
}

static bool parse_size(const char *s, uint64_t *out, char *msg, size_t n) {
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},         {"K", 1000},       {"KB", 1000},       {"M", 1000000},
                 {"MB", 1000000}, {"G", 1000000000}, {"GB", 1000000000}, {"KiB", 1024},
                 {"Ki", 1024},    {"MiB", 1 << 20},  {"Mi", 1 << 20},    {"GiB", 1 << 30},
                 {"Gi", 1 << 30}};
    uint64_t v;
    const char *e;
    if (parse_u64(s, &v, &e) && v > 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcasecmp(e, units[i].suffix) == 0 && v <= UINT64_MAX / units[i].mult) {
                *out = v * units[i].mult;
                return true;
            }
        }
    }
    return fail(msg, n,
                "--shard-size '%s' must be a positive byte count (suffix K, M, G, Ki, "
                "Mi or Gi)",
                s);
}

static const preset *find_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

static void apply_preset(const preset *p, mk_opts *o) {
    mk_model *m = &o->model;
    m->hidden = p->hidden;
    m->inter = p->inter;
    m->layers = p->layers;
    m->heads = p->heads;
    m->kv_heads = p->kv_heads;
    m->vocab = p->vocab;
    m->group = p->group;
    m->sym = true;
    m->act_order = false;
    m->tied = false;
    m->seed = 1;
    o->max_pos = p->max_pos;
    o->rope_theta = p->rope_theta;
    o->rms_eps = p->rms_eps;
    o->shard_size = 4000000000ull;
}

/* One parsed "--flag [value]" occurrence. */
typedef struct arg {
    flag_id id;
    const char *name, *value;
} arg;

/* Splits argv into flag/value pairs, checking only the syntax. */
static bool split_args(int argc, char **argv, arg *args, int *nargs, char *msg, size_t n) {
    *nargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t len = eq && strncmp(a, "--", 2) == 0 ? (size_t)(eq - a) : strlen(a);
        const struct flag *f = NULL;
        for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++)
            if (strlen(flags[j].name) == len && strncmp(flags[j].name, a, len) == 0) f = &flags[j];
        if (!f) return fail(msg, n, "unknown argument '%s'", a);
        arg *out = &args[(*nargs)++];
        out->id = f->id;
        out->name = f->name;
        out->value = NULL;
        if (a[len] == '=' && !f->has_value) return fail(msg, n, "%s takes no value", f->name);
        if (f->has_value) {
            if (a[len] == '=')
                out->value = a + len + 1;
            else if (i + 1 < argc)
                out->value = argv[++i];
            else
                return fail(msg, n, "%s needs a value", f->name);
        }
    }
    return true;
}

static bool apply_arg(const arg *a, mk_opts *o, char *msg, size_t n) {
    mk_model *m = &o->model;
    switch (a->id) {
    case F_PRESET:
    case F_HELP:
        return true; /* handled before */
    case F_OUT:
        if (!a->value[0]) return fail(msg, n, "--out needs a directory");
        o->out_dir = a->value;
        return true;
    case F_HIDDEN:
        return parse_dim(a->name, a->value, 65536, &m->hidden, msg, n);
    case F_INTER:
        return parse_dim(a->name, a->value, 262144, &m->inter, msg, n);
    case F_LAYERS:
        return parse_dim(a->name, a->value, 1000, &m->layers, msg, n);
    case F_HEADS:
        return parse_dim(a->name, a->value, 65536, &m->heads, msg, n);
    case F_KV:
        return parse_dim(a->name, a->value, 65536, &m->kv_heads, msg, n);
    case F_VOCAB:
        return parse_dim(a->name, a->value, 4194304, &m->vocab, msg, n);
    case F_MAXPOS:
        return parse_dim(a->name, a->value, 1u << 30, &o->max_pos, msg, n);
    case F_GROUP:
        return parse_dim(a->name, a->value, 65536, &m->group, msg, n);
    case F_THETA:
        return parse_pos_real(a->name, a->value, &o->rope_theta, msg, n);
    case F_EPS:
        return parse_pos_real(a->name, a->value, &o->rms_eps, msg, n);
    case F_SYM:
        m->sym = true;
        return true;
    case F_ASYM:
        m->sym = false;
        return true;
    case F_ACT:
        m->act_order = true;
        return true;
    case F_NOACT:
        m->act_order = false;
        return true;
    case F_TIED:
        m->tied = true;
        return true;
    case F_UNTIED:
        m->tied = false;
        return true;
    case F_SHARD:
        return parse_size(a->value, &o->shard_size, msg, n);
    case F_SEED:
        if (!parse_u64(a->value, &m->seed, NULL))
            return fail(msg, n, "--seed '%s' must be a non-negative integer", a->value);
        return true;
    case F_TOK:
        if (!a->value[0]) return fail(msg, n, "--tokenizer needs a directory");
        o->tokenizer_dir = a->value;
        return true;
    case F_NOTOK:
        o->no_tokenizer = true;
        return true;
    case F_QUIET:
        o->quiet = true;
        return true;
    }
    return fail(msg, n, "internal: unhandled flag %s", a->name);
}

/* Shape rules of the Qwen2 forward pass and of the GPTQ packing (golden/README.md). */
static bool validate(const mk_opts *o, char *msg, size_t n) {
    const mk_model *m = &o->model;
    if (m->hidden % m->heads)
        return fail(msg, n, "--heads %u does not divide hidden size %u", m->heads, m->hidden);
    uint32_t hd = m->hidden / m->heads;
    if (hd % 2)
        return fail(msg, n, "head_dim = hidden/heads = %u must be even (RoPE rotates pairs)", hd);
    if (m->heads % m->kv_heads)
        return fail(msg, n, "--kv-heads %u does not divide heads %u", m->kv_heads, m->heads);
    if (m->group % 8)
        return fail(msg, n, "--group %u must be a multiple of 8 (qweight packs 8 rows)", m->group);
    if (m->hidden % m->group)
        return fail(msg, n, "--group %u does not divide hidden size %u", m->group, m->hidden);
    if (m->inter % m->group)
        return fail(msg, n, "--group %u does not divide intermediate size %u", m->group, m->inter);
    if ((m->kv_heads * hd) % 8)
        return fail(msg, n,
                    "kv_heads*head_dim = %u must be a multiple of 8 (qzeros packs 8 columns)",
                    m->kv_heads * hd);
    if (!o->out_dir) return fail(msg, n, "--out DIR is required");
    if (!o->no_tokenizer && m->vocab < MK_R1_TOKENIZER_SIZE)
        return fail(msg, n,
                    "--vocab %u is smaller than the R1 tokenizer (%u ids): add --no-tokenizer",
                    m->vocab, MK_R1_TOKENIZER_SIZE);
    return true;
}

/* Config fields that follow the final shapes unless the preset fixes them. */
static void finish(const preset *p, mk_opts *o) {
    uint32_t mwl = p->max_window_layers ? p->max_window_layers : o->model.layers;
    o->max_window_layers = mwl < o->model.layers ? mwl : o->model.layers;
    o->sliding_window = p->sliding_window ? p->sliding_window : o->max_pos;
}

mk_parse_result mk_opts_parse(int argc, char **argv, mk_opts *o, char *msg, size_t n) {
    memset(o, 0, sizeof *o);
    arg *args = calloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    mk_parse_result res = MK_PARSE_ERROR;
    if (!args) {
        fail(msg, n, "out of memory");
        return res;
    }
    if (!split_args(argc, argv, args, &nargs, msg, n)) goto done;
    const preset *p = NULL;
    for (int i = 0; i < nargs; i++) {
        if (args[i].id == F_HELP) {
            res = MK_PARSE_HELP;
            goto done;
        }
        if (args[i].id == F_PRESET && !(p = find_preset(args[i].value))) {
            fail(msg, n, "unknown --preset '%s' (expected 14b, 1.5b or tiny)", args[i].value);
            goto done;
        }
    }
    if (!p) {
        fail(msg, n, "--preset NAME is required (14b, 1.5b or tiny)");
        goto done;
    }
    apply_preset(p, o);
    o->preset = p->name;
    for (int i = 0; i < nargs; i++)
        if (!apply_arg(&args[i], o, msg, n)) goto done;
    if (!validate(o, msg, n)) goto done;
    finish(p, o);
    res = MK_PARSE_OK;
done:
    free(args);
    return res;
}
