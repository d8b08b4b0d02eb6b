#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void r1cli_usage(FILE *f) {
    fputs("usage: r1run -m DIR [options]\n"
          "\n"
          "  -m, --model DIR        Hugging Face GPTQ-Int4 checkpoint folder\n"
          "  --tokens 1,2,3         evaluate these token ids (no tokenizer needed)\n"
          "  --dump-logits FILE     write float32 logits of every position [T, vocab] and exit\n"
          "  --print-ids            print generated token ids on one line\n"
          "  -n N                   tokens to generate (default: until end of sentence)\n"
          "  --temp T               temperature (0 = greedy)\n"
          "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --presence-penalty P,\n"
          "  --seed S               sampling (defaults from generation_config.json)\n"
          "  -c, --ctx N            context length (default min(model, 4096))\n"
          "  -b, --batch N          tokens per forward pass for prompts (default 512)\n"
          "  -t, --threads N        CPU threads (default: physical cores)\n"
          "  --gpu-layers N|all|auto  layers on the GPU (default 0)\n"
          "  -v, --verbose          print the memory plan and timings\n"
          "  -h, --help             this text\n",
          f);
}

static int bad(const char *flag, const char *why) {
    fprintf(stderr, "r1run: %s: %s (see r1run --help)\n", flag, why);
    return 2;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s) return bad(flag, "expects an integer");
    if (v < lo || v > hi) return bad(flag, "value out of range");
    *out = (int)v;
    return 0;
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = s ? strtof(s, &end) : 0;
    if (!s || errno || *end || end == s) return bad(flag, "expects a number");
    if (!(v >= lo && v <= hi)) return bad(flag, "value out of range");
    *out = v;
    return 0;
}

int r1cli_parse(int argc, char **argv, r1cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->gpu_device = -1;
    r1_sampler_params_default(&o->sp);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0, takes = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            r1cli_usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model_dir = v)) r = bad(a, "expects a folder");
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o->prompt = v)) r = bad(a, "expects text");
        } else if (!strcmp(a, "--tokens")) {
            if (!(o->tokens = v)) r = bad(a, "expects ids like 1,2,3");
        } else if (!strcmp(a, "--dump-logits")) {
            if (!(o->dump_logits = v)) r = bad(a, "expects a file name");
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            r = parse_int(a, v, -1, 1 << 30, &o->n_predict);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            r = parse_int(a, v, 1, 1 << 30, &o->n_ctx);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            r = parse_int(a, v, 1, 1 << 20, &o->n_batch);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            r = parse_int(a, v, 1, 1024, &o->n_threads);
        } else if (!strcmp(a, "--temp")) {
            r = parse_float(a, v, 0, 100, &o->sp.temperature);
            o->temp_set = 1;
        } else if (!strcmp(a, "--top-p")) {
            r = parse_float(a, v, 0, 1, &o->sp.top_p);
            o->top_p_set = 1;
        } else if (!strcmp(a, "--top-k")) {
            r = parse_int(a, v, 0, 1 << 30, &o->sp.top_k);
            o->top_k_set = 1;
        } else if (!strcmp(a, "--min-p")) {
            r = parse_float(a, v, 0, 1, &o->sp.min_p);
        } else if (!strcmp(a, "--repeat-penalty")) {
            r = parse_float(a, v, 0, 100, &o->sp.repeat_penalty);
        } else if (!strcmp(a, "--presence-penalty")) {
            r = parse_float(a, v, -100, 100, &o->sp.presence_penalty);
        } else if (!strcmp(a, "--seed")) {
            int s;
            r = parse_int(a, v, 0, 0x7fffffff, &s);
            o->sp.seed = (uint64_t)s;
        } else if (!strcmp(a, "--gpu-layers") || !strcmp(a, "-ngl")) {
            if (!(o->gpu_layers = v)) r = bad(a, "expects N, all or auto");
        } else {
            takes = 0;
            if (!strcmp(a, "--print-ids"))
                o->print_ids = 1;
            else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
                o->verbose = 1;
            else
                r = bad(a, "unknown option");
        }
        if (r) return r;
        i += takes;
    }
    if (!o->model_dir) return bad("-m", "a model folder is required");
    return 0;
}

static int gpu_layers_value(const char *s, int *out) {
    if (!s) return *out = 0, 0;
    if (!strcmp(s, "all")) return *out = R1_GPU_LAYERS_ALL, 0;
    if (!strcmp(s, "auto")) return *out = R1_GPU_LAYERS_AUTO, 0;
    return parse_int("--gpu-layers", s, 0, 1 << 20, out);
}

int r1cli_load(const r1cli_opts *o, r1_model **m) {
    r1_model_params mp;
    r1_model_params_default(&mp);
    mp.n_threads = o->n_threads;
    mp.gpu_device = o->gpu_device;
    mp.gpu_mem = o->gpu_mem;
    mp.lm_head_q8 = o->lm_head_q8;
    mp.verbose = o->verbose;
    mp.max_ctx = o->n_ctx;
    if (gpu_layers_value(o->gpu_layers, &mp.gpu_layers)) return 2;
    r1_error err = {0};
    if (r1_model_load(o->model_dir, &mp, m, &err)) {
        fprintf(stderr, "r1run: %s\n", err.msg);
        return 1;
    }
    return 0;
}
