#include "opts.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void r1cli_usage(FILE *f) {
    fputs(
        "usage: r1run -m DIR -p PROMPT [options]      one answer, streamed\n"
        "       r1run -m DIR -i [options]             interactive chat\n"
        "       r1run perplexity -m DIR -f FILE [--ctx N] [--chunks K] [-b N]\n"
        "       r1run -m DIR --tokenize TEXT | --tokenize-file FILE | --detokenize IDS\n"
        "       r1run -m DIR (--messages FILE | -p PROMPT) --dump-prompt\n"
        "       r1run -m DIR --tokens IDS (--dump-logits FILE | --print-ids)\n"
        "       r1run plan -m DIR [--gpu-layers N|all|auto] [--gpu-mem SIZE] [--ctx N]\n"
        "                                             memory plan, without loading weights\n"
        "       r1run --list-devices                  Vulkan devices and their memory heaps\n"
        "       r1run bench ... | bench-tokenizer ...  (see r1run bench --help)\n"
        "\n"
        "Model\n"
        "  -m, --model DIR          Hugging Face GPTQ-Int4 checkpoint folder\n"
        "\n"
        "Prompt\n"
        "  -p, --prompt TEXT        the user message (rendered with the model's R1 chat\n"
        "                           template: BOS, <｜User｜>TEXT<｜Assistant｜><think>\\n)\n"
        "  --system TEXT            system text placed after BOS (R1 recommends none)\n"
        "  --messages FILE          conversation as JSON: [{\"role\",\"content\"},...] or\n"
        "                           {\"messages\":[...],\"add_generation_prompt\":false}\n"
        "  --raw                    no chat template: the prompt is BOS + the text's tokens\n"
        "  --no-bos                 with --raw, do not prepend BOS either\n"
        "  -i, --interactive        chat keeping the history, one line per turn (from a\n"
        "                           terminal or a pipe); -p gives the first turn; /reset\n"
        "                           clears it, /exit or EOF quits, Ctrl-C stops an answer\n"
        "                           (Ctrl-C at the input prompt quits)\n"
        "\n"
        "Generation\n"
        "  -n, --n-predict N        tokens to generate per answer (default -1: until the\n"
        "                           end-of-sentence token or the context is full)\n"
        "  --stop TEXT              also stop when TEXT is generated (repeatable, up to 16;\n"
        "                           matched on all generated text, not printed)\n"
        "  --hide-think             do not print the reasoning (<think>...</think>); on a\n"
        "                           terminal \"thinking...\" shows on stderr meanwhile\n"
        "  --think-budget N         close the reasoning after N tokens by inserting </think>\n"
        "\n"
        "Sampling (defaults from the model's generation_config.json)\n"
        "  --temp T                 temperature (0 = greedy)\n"
        "  --top-k K                keep the K most likely tokens (0 = off)\n"
        "  --top-p P                keep the smallest set with probability >= P (1 = off)\n"
        "  --min-p P                drop tokens below P times the top probability (0 = off)\n"
        "  --repeat-penalty R       penalize recent tokens (1 = off)\n"
        "  --presence-penalty P     subtract P from the logits of recent tokens (0 = off)\n"
        "  --penalty-last-n N       window of recent tokens for the penalties (default 64)\n"
        "  --seed S                 random seed: same seed, same text (default: random)\n"
        "\n"
        "Context and runtime\n"
        "  -c, --ctx N              context length (default min(model, 4096)); a prompt that\n"
        "                           does not fit with room for one new token is an error,\n"
        "                           never silently cut\n"
        "  -b, --batch N            tokens per forward pass for prompts (default 512)\n"
        "  -t, --threads N          CPU threads (default: physical cores)\n"
        "  --gpu-layers N|all|auto  layers on the GPU (default 0)\n"
        "  --gpu-device N           GPU index in the Vulkan device list (default: best)\n"
        "  --gpu-mem SIZE           GPU budget for --gpu-layers auto, e.g. 12G (default: free)\n"
        "  --lm-head q8|f16         q8: requantize the output head to 8 bit at load (lossy,\n"
        "                           faster; also --lm-head-q8); f16: the published head (default)\n"
        "\n"
        "Tokenizer (these load only the tokenizer, not the weights)\n"
        "  --tokenize TEXT          print TEXT's ids as a JSON array (no BOS added)\n"
        "  --tokenize-file FILE     the same for a file's contents\n"
        "  --detokenize IDS         print the text of ids \"1,2,3\" (or \"[1, 2, 3]\") exactly,\n"
        "                           with no newline added\n"
        "  --dump-prompt            print {\"text\": ..., \"ids\": [...]} of the rendered prompt\n"
        "\n"
        "Perplexity (r1run perplexity, as llama.cpp's perplexity tool)\n"
        "  -f, --file FILE          text to score: windows of BOS + (ctx-1) tokens, each from\n"
        "                           an empty cache; last stdout line \"perplexity: VALUE\"\n"
        "  --chunks K               score only the first K windows (default: all)\n"
        "\n"
        "Checking interface\n"
        "  --tokens IDS             evaluate these token ids (no tokenizer needed)\n"
        "  --dump-logits FILE       write float32 logits of every position [T, vocab]\n"
        "  --print-ids              --tokens: print greedy ids; -p: print the generated ids\n"
        "                           (one line) instead of the text\n"
        "\n"
        "Output\n"
        "  The answer streams to stdout. On a terminal the reasoning is dimmed and its tags\n"
        "  hidden; otherwise it is printed between \"<think>\\n\" and \"</think>\" markers and -p\n"
        "  adds no final newline.\n"
        "  -v, --verbose            backend, memory, seed and per-turn cache use on stderr\n"
        "  -h, --help               this text\n"
        "\n"
        "Timings (load, prompt and generation tokens/s) are printed on stderr at the end.\n"
        "Exit status: 0 ok, 1 runtime error, 2 bad flags.\n",
        f);
}

int r1cli_bad(const char *flag, const char *why) {
    fprintf(stderr, "r1run: %s: %s (see r1run --help)\n", flag, why);
    return 2;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s) return r1cli_bad(flag, "expects an integer");
    if (v < lo || v > hi) return r1cli_bad(flag, "value out of range");
    *out = (int)v;
    return 0;
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = s ? strtof(s, &end) : 0;
    if (!s || errno || *end || end == s) return r1cli_bad(flag, "expects a number");
    if (!(v >= lo && v <= hi)) return r1cli_bad(flag, "value out of range");
    *out = v;
    return 0;
}

/* "12G", "512M", "1048576": bytes with an optional K/M/G (powers of 1024). */
static int parse_size(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || *s == '-' || errno || end == s) return r1cli_bad(flag, "expects a size like 12G");
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "B"))) end += strlen(end); /* 4GiB, 4GB */
    if (*end || v > (~0ull >> shift)) return r1cli_bad(flag, "expects a size like 12G or 4GiB");
    *out = (uint64_t)v << shift;
    return 0;
}

/* Flags that take a string value: where it goes, and what the error says when absent. */
static const char **text_flag(r1cli_opts *o, const char *a, const char **what) {
    static const struct {
        const char *s, *l, *what;
        size_t off;
    } map[] = {
        {"-m", "--model", "expects a folder", offsetof(r1cli_opts, model_dir)},
        {"-p", "--prompt", "expects text", offsetof(r1cli_opts, prompt)},
        {NULL, "--system", "expects text", offsetof(r1cli_opts, system)},
        {NULL, "--messages", "expects a JSON file", offsetof(r1cli_opts, messages)},
        {NULL, "--tokenize", "expects text", offsetof(r1cli_opts, tokenize)},
        {NULL, "--tokenize-file", "expects a file name", offsetof(r1cli_opts, tokenize_file)},
        {NULL, "--detokenize", "expects ids like 1,2,3", offsetof(r1cli_opts, detokenize)},
        {"-f", "--file", "expects a file name", offsetof(r1cli_opts, file)},
        {NULL, "--tokens", "expects ids like 1,2,3", offsetof(r1cli_opts, tokens)},
        {NULL, "--dump-logits", "expects a file name", offsetof(r1cli_opts, dump_logits)},
        {"-ngl", "--gpu-layers", "expects N, all or auto", offsetof(r1cli_opts, gpu_layers)},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if ((map[i].s && !strcmp(a, map[i].s)) || !strcmp(a, map[i].l)) {
            *what = map[i].what;
            return (const char **)((char *)o + map[i].off);
        }
    return NULL;
}

/* Sampling flags; returns -1 when a is not one of them. */
static int sampling_flag(r1cli_opts *o, const char *a, const char *v) {
    r1_sampler_params *p = &o->sp;
    int r;
    if (!strcmp(a, "--temp"))
        r = parse_float(a, v, 0, 100, &p->temperature), o->sp_set |= R1CLI_SET_TEMP;
    else if (!strcmp(a, "--top-p")) {
        /* the sampler wants (0, 1]: 0 would keep nothing */
        r = parse_float(a, v, 0, 1, &p->top_p), o->sp_set |= R1CLI_SET_TOP_P;
        if (!r && !(p->top_p > 0)) r = r1cli_bad(a, "value out of range (0 < P <= 1)");
    } else if (!strcmp(a, "--top-k"))
        r = parse_int(a, v, 0, 1 << 30, &p->top_k), o->sp_set |= R1CLI_SET_TOP_K;
    else if (!strcmp(a, "--min-p"))
        r = parse_float(a, v, 0, 1, &p->min_p), o->sp_set |= R1CLI_SET_MIN_P;
    else if (!strcmp(a, "--repeat-penalty")) {
        r = parse_float(a, v, 0, 100, &p->repeat_penalty), o->sp_set |= R1CLI_SET_REPEAT;
        if (!r && !(p->repeat_penalty > 0)) r = r1cli_bad(a, "value out of range (R > 0)");
    } else if (!strcmp(a, "--presence-penalty"))
        r = parse_float(a, v, -100, 100, &p->presence_penalty), o->sp_set |= R1CLI_SET_PRESENCE;
    else if (!strcmp(a, "--penalty-last-n"))
        r = parse_int(a, v, 0, 1 << 20, &p->penalty_last_n), o->sp_set |= R1CLI_SET_LAST_N;
    else if (!strcmp(a, "--seed")) {
        /* the full 64 bits, so the random seed --verbose prints can be given back */
        char *end;
        errno = 0;
        unsigned long long s = v && *v != '-' ? strtoull(v, &end, 10) : 0;
        r = !v || *v == '-' || errno || *end || end == v ? r1cli_bad(a, "expects an integer >= 0")
                                                         : 0;
        p->seed = (uint64_t)s;
        o->sp_set |= R1CLI_SET_SEED;
    } else
        return -1;
    return r;
}

/* Integer-valued flags; returns -1 when a is not one of them. */
static int int_flag(r1cli_opts *o, const char *a, const char *v) {
    if (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))
        return parse_int(a, v, -1, 1 << 30, &o->n_predict);
    if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) return parse_int(a, v, 1, 1 << 30, &o->n_ctx);
    if (!strcmp(a, "-b") || !strcmp(a, "--batch")) return parse_int(a, v, 1, 1 << 20, &o->n_batch);
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) return parse_int(a, v, 1, 1024, &o->n_threads);
    if (!strcmp(a, "--think-budget")) return parse_int(a, v, 0, 1 << 30, &o->think_budget);
    if (!strcmp(a, "--chunks")) return parse_int(a, v, 1, 1 << 30, &o->chunks);
    if (!strcmp(a, "--gpu-device")) return parse_int(a, v, 0, 1024, &o->gpu_device);
    if (!strcmp(a, "--gpu-mem")) return parse_size(a, v, &o->gpu_mem);
    if (!strcmp(a, "--lm-head")) { /* as r1run bench spells it; --lm-head-q8 too */
        if (v && (!strcmp(v, "q8") || !strcmp(v, "f16")))
            return o->lm_head_q8 = !strcmp(v, "q8"), 0;
        return r1cli_bad(a, "expects q8 or f16");
    }
    if (!strcmp(a, "--stop")) {
        if (!v || !*v) return r1cli_bad(a, "expects non-empty text");
        if (o->n_stops == R1CLI_MAX_STOPS) return r1cli_bad(a, "at most 16 stop strings");
        o->stops[o->n_stops++] = v;
        return 0;
    }
    return -1;
}

/* Flags without a value; returns -1 when a is not one of them. */
static int switch_flag(r1cli_opts *o, const char *a) {
    static const struct {
        const char *s, *l;
        size_t off;
    } map[] = {
        {NULL, "--print-ids", offsetof(r1cli_opts, print_ids)},
        {"-v", "--verbose", offsetof(r1cli_opts, verbose)},
        {"-i", "--interactive", offsetof(r1cli_opts, interactive)},
        {NULL, "--raw", offsetof(r1cli_opts, raw)},
        {NULL, "--no-bos", offsetof(r1cli_opts, no_bos)},
        {NULL, "--hide-think", offsetof(r1cli_opts, hide_think)},
        {NULL, "--dump-prompt", offsetof(r1cli_opts, dump_prompt)},
        {NULL, "--lm-head-q8", offsetof(r1cli_opts, lm_head_q8)},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if ((map[i].s && !strcmp(a, map[i].s)) || !strcmp(a, map[i].l)) {
            *(int *)((char *)o + map[i].off) = 1;
            return 0;
        }
    return -1;
}

int r1cli_parse(int argc, char **argv, r1cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->gpu_device = -1;
    o->think_budget = -1;
    r1_sampler_params_default(&o->sp);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL, *what = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            r1cli_usage(stdout);
            return 1;
        }
        const char **text = text_flag(o, a, &what);
        int r;
        if (text) {
            r = (*text = v) ? 0 : r1cli_bad(a, what);
        } else if ((r = sampling_flag(o, a, v)) < 0 && (r = int_flag(o, a, v)) < 0) {
            r = switch_flag(o, a);
            if (r < 0) return r1cli_bad(a, "unknown option");
            continue; /* takes no value */
        }
        if (r) return r;
        i++;
    }
    if (!o->model_dir) return r1cli_bad("-m", "a model folder is required");
    if (o->no_bos && !o->raw) return r1cli_bad("--no-bos", "only applies with --raw");
    return 0;
}

static int gpu_layers_value(const char *s, int *out) {
    if (!s) return *out = 0, 0;
    if (!strcmp(s, "all")) return *out = R1_GPU_LAYERS_ALL, 0;
    if (!strcmp(s, "auto")) return *out = R1_GPU_LAYERS_AUTO, 0;
    return parse_int("--gpu-layers", s, 0, 1 << 20, out);
}

int r1cli_model_params(const r1cli_opts *o, r1_model_params *mp) {
    r1_model_params_default(mp);
    mp->n_threads = o->n_threads;
    mp->gpu_device = o->gpu_device;
    mp->gpu_mem = o->gpu_mem;
    mp->lm_head_q8 = o->lm_head_q8;
    mp->verbose = o->verbose;
    mp->max_ctx = o->n_ctx;
    return gpu_layers_value(o->gpu_layers, &mp->gpu_layers) ? 2 : 0;
}

int r1cli_load(const r1cli_opts *o, r1_model **m) {
    r1_model_params mp;
    if (r1cli_model_params(o, &mp)) return 2;
    r1_error err = {0};
    if (r1_model_load(o->model_dir, &mp, m, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    return 0;
}

void r1cli_sampler_params(const r1cli_opts *o, const r1_model *m, r1_sampler_params *p) {
    r1_model_sampler_defaults(m, p);
    const r1_sampler_params *f = &o->sp;
    unsigned set = o->sp_set;
    if (set & R1CLI_SET_TEMP) p->temperature = f->temperature;
    if (set & R1CLI_SET_TOP_K) p->top_k = f->top_k;
    if (set & R1CLI_SET_TOP_P) p->top_p = f->top_p;
    if (set & R1CLI_SET_MIN_P) p->min_p = f->min_p;
    if (set & R1CLI_SET_REPEAT) p->repeat_penalty = f->repeat_penalty;
    if (set & R1CLI_SET_PRESENCE) p->presence_penalty = f->presence_penalty;
    if (set & R1CLI_SET_LAST_N) p->penalty_last_n = f->penalty_last_n;
    if (set & R1CLI_SET_SEED) p->seed = f->seed;
}
