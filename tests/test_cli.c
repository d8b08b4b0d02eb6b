/* r1run's command line, run as a program:
 *   dump_prompt  --messages/-p/--raw --dump-prompt against the chat goldens
 *   tokenize     --tokenize/--detokenize on HF golden strings, --tokenize-file on
 *                the KJV validation text against val_ids.i32
 *   generate     --raw -p on models/kjv-tiny at --temp 0 against golden.json's greedy text
 *   stops        -n, --stop (split over tokens, held-back prefixes)
 *   think        reasoning markers when piped, --think-budget, --hide-think
 *   seed         same seed same text, other seed other text
 *   context      prompt past --ctx, generation reaching the context end
 *   flags        --help lists every flag; bad flags and values exit 2 with one line
 *   chat_pipe    -i reading turns from a pipe: history kept (cache reuse), /reset
 *   perplexity   r1run perplexity on kjv_val.txt, --ctx 256 --chunks 100 = 45.669 +- 0.5%
 * usage: test_cli CASE R1RUN */
#include "check.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KJV R1_SOURCE_ROOT "/models/kjv-tiny"
#define R1TOK R1_SOURCE_ROOT "/models/r1-tokenizer"
#define MAX_ARGS 48

static const char *r1run;
static char tmpdir[64];

typedef struct result {
    int status; /* exit code, or 128 + signal */
    char *out, *err;
    size_t n_out, n_err;
} result;

static void spit(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (f) fputs(s, f), fclose(f);
}

static const char *tmp(const char *name) {
    static char p[8][128];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

/* Runs r1run with the NULL-terminated arguments (no shell: any bytes pass through),
 * stdin from in_file or /dev/null. */
static result run_in(const char *in_file, const char *first, ...) {
    const char *argv[MAX_ARGS + 2] = {r1run};
    int n = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n <= MAX_ARGS; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    const char *out = tmp("stdout"), *err = tmp("stderr");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open(in_file ? in_file : "/dev/null", O_RDONLY);
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, 0), dup2(fo, 1), dup2(fe, 2);
        execv(r1run, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    result r = {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), NULL, NULL, 0, 0};
    r.out = r1t_slurp(out, &r.n_out);
    r.err = r1t_slurp(err, &r.n_err);
    if (!r.out) r.out = calloc(1, 1);
    if (!r.err) r.err = calloc(1, 1);
    return r;
}
#define run(...) run_in(NULL, __VA_ARGS__, (const char *)NULL)

static void done(result *r) {
    free(r->out);
    free(r->err);
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The last line of s (without its newline), in a static buffer. */
static const char *last_line(const char *s) {
    static char buf[256];
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') n--;
    size_t b = n;
    while (b && s[b - 1] != '\n') b--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - b), s + b);
    return buf;
}

static int ids_equal(const cJSON *a, const cJSON *b) {
    if (!cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
        return 0;
    for (const cJSON *x = a->child, *y = b->child; x; x = x->next, y = y->next)
        if (x->valueint != y->valueint) return 0;
    return 1;
}

static cJSON *golden_kjv(void) {
    char *js = r1t_slurp(R1_TEST_DATA "/kjv/golden.json", NULL);
    cJSON *g = js ? cJSON_Parse(js) : NULL;
    free(js);
    CHECK_MSG(g != NULL, "cannot read kjv/golden.json");
    return g;
}

/* ---- dump_prompt ------------------------------------------------------------ */

/* Runs --dump-prompt with extra args and compares text and ids. */
static void expect_prompt(const char *label, const char *model, const char *text, const cJSON *ids,
                          const char *a1, const char *a2, const char *a3, const char *a4) {
    result r = run("-m", model, "--dump-prompt", a1, a2, a3, a4);
    cJSON *j = cJSON_Parse(r.out);
    CHECK_MSG(r.status == 0 && j, "%s: status %d, stderr %s", label, r.status, r.err);
    CHECK_MSG(lines(r.out) == 1, "%s: want one JSON line", label);
    const cJSON *t = cJSON_GetObjectItem(j, "text");
    CHECK_MSG(cJSON_IsString(t) && !strcmp(t->valuestring, text), "%s: text %s", label,
              cJSON_IsString(t) ? t->valuestring : "(none)");
    if (ids) CHECK_MSG(ids_equal(cJSON_GetObjectItem(j, "ids"), ids), "%s: ids differ", label);
    cJSON_Delete(j);
    done(&r);
}

static void chat_goldens(const char *file, int need_ids) {
    char *all = r1t_slurp(file, NULL);
    CHECK_MSG(all != NULL, "cannot read %s", file);
    int n = 0;
    for (char *line = all ? strtok(all, "\n") : NULL; line; line = strtok(NULL, "\n"), n++) {
        cJSON *c = cJSON_Parse(line);
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *msgs = cJSON_GetObjectItem(c, "messages");
        const cJSON *gen = cJSON_GetObjectItem(c, "add_generation_prompt");
        const cJSON *ids = cJSON_GetObjectItem(c, "ids");
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        CHECK(!need_ids || ids);
        /* the object form */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "messages", cJSON_Duplicate(msgs, 1));
        cJSON_AddBoolToObject(o, "add_generation_prompt", cJSON_IsTrue(gen));
        char *s = cJSON_Print(o);
        spit(tmp("messages.json"), s);
        expect_prompt(name, R1TOK, text, ids, "--messages", tmp("messages.json"), NULL, NULL);
        free(s);
        cJSON_Delete(o);
        /* the plain array form adds the generation prompt */
        if (cJSON_IsTrue(gen)) {
            s = cJSON_Print(msgs);
            spit(tmp("messages.json"), s);
            expect_prompt(name, R1TOK, text, ids, "--messages", tmp("messages.json"), NULL, NULL);
            free(s);
        }
        cJSON_Delete(c);
    }
    printf("%s: %d conversations\n", file, n);
    free(all);
}

static void test_dump_prompt(void) {
    chat_goldens(R1_TEST_DATA "/tokenizer/chat_golden.jsonl", 1);
    chat_goldens(R1_TEST_DATA "/tokenizer/chat_extra.jsonl", 0);
    /* -p and --system build the same conversation */
    expect_prompt("-p", R1TOK,
                  "<｜begin▁of▁sentence｜><｜User｜>What is 17*23?<｜Assistant｜><think>\n", NULL,
                  "-p", "What is 17*23?", NULL, NULL);
    expect_prompt("--system", R1TOK,
                  "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>\n", NULL,
                  "--system", "Be brief.", "-p", "Hi");
    /* the KJV model's own tokenizer (R1 special tokens at other ids) */
    cJSON *g = golden_kjv();
    const cJSON *ex = cJSON_GetObjectItem(g, "chat_template_example");
    char *s = cJSON_Print(cJSON_GetObjectItem(ex, "messages"));
    spit(tmp("messages.json"), s);
    free(s);
    expect_prompt("kjv chat example", KJV, cJSON_GetObjectItem(ex, "text")->valuestring,
                  cJSON_GetObjectItem(ex, "ids_raw_tokenizers"), "--messages", tmp("messages.json"),
                  NULL, NULL);
    /* --raw: [BOS] + encode(text), as golden.json's prompt ids */
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "prompts"), 0);
    const char *text = cJSON_GetObjectItem(p0, "text")->valuestring;
    const cJSON *ids = cJSON_GetObjectItem(p0, "ids");
    expect_prompt("--raw", KJV, text, ids, "--raw", "-p", text, NULL);
    cJSON *nobos = cJSON_Duplicate(ids, 1);
    cJSON_DeleteItemFromArray(nobos, 0);
    expect_prompt("--raw --no-bos", KJV, text, nobos, "--raw", "--no-bos", "-p", text);
    cJSON_Delete(nobos);
    cJSON_Delete(g);
    /* a bad file is one clear line */
    spit(tmp("messages.json"), "[{\"role\": \"user\"}]");
    result r = run("-m", R1TOK, "--messages", tmp("messages.json"), "--dump-prompt");
    CHECK_MSG(r.status == 1 && lines(r.err) == 1 && strstr(r.err, "content"), "bad messages: %s",
              r.err);
    done(&r);
}

/* ---- tokenize --------------------------------------------------------------- */

static void test_tokenize(void) {
    char *all = r1t_slurp(R1_TEST_DATA "/tokenizer/tokenizer_golden.jsonl", NULL);
    CHECK(all != NULL);
    int n = 0, tested = 0;
    /* every 5th string: each run loads the 151k-token vocabulary */
    for (char *line = all ? strtok(all, "\n") : NULL; line; line = strtok(NULL, "\n"), n++) {
        if (n % 5) continue;
        cJSON *c = cJSON_Parse(line);
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(c, "ids");
        result r = run("-m", R1TOK, "--tokenize", text);
        cJSON *got = cJSON_Parse(r.out);
        CHECK_MSG(r.status == 0 && ids_equal(got, ids), "--tokenize case %d: %s", n, r.out);
        if (cJSON_GetArraySize(ids)) {
            /* feed --tokenize's own output back: the JSON array form */
            result d = run("-m", R1TOK, "--detokenize", r.out);
            const char *want = cJSON_GetObjectItem(c, "decoded")->valuestring;
            CHECK_MSG(d.status == 0 && d.n_out == strlen(want) && !memcmp(d.out, want, d.n_out),
                      "--detokenize case %d: \"%s\"", n, d.out);
            done(&d);
        }
        cJSON_Delete(got);
        cJSON_Delete(c);
        done(&r);
        tested++;
    }
    printf("tokenizer golden: %d strings round-tripped\n", tested);
    free(all);
    result d = run("-m", R1TOK, "--detokenize", "9707,11,1879,0");
    CHECK(d.status == 0 && !strcmp(d.out, "Hello, world!"));
    done(&d);
    d = run("-m", R1TOK, "--detokenize", "1,x");
    CHECK(d.status == 2 && strstr(d.err, "--detokenize"));
    done(&d);
    d = run("-m", R1TOK, "--detokenize", "99999999");
    CHECK(d.status == 1 && lines(d.err) == 1);
    done(&d);
    /* the KJV validation text gives exactly the golden's ids */
    result r = run("-m", KJV, "--tokenize-file", R1_TEST_DATA "/kjv/kjv_val.txt");
    size_t len = 0;
    unsigned char *raw = (unsigned char *)r1t_slurp(R1_TEST_DATA "/kjv/val_ids.i32", &len);
    cJSON *got = cJSON_Parse(r.out);
    int count = cJSON_GetArraySize(got), same = raw && count == (int)(len / 4), first_diff = -1;
    const cJSON *x = got ? got->child : NULL;
    for (int i = 0; raw && x && i < (int)(len / 4); i++, x = x->next) {
        int32_t want = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                                 (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
        if (x->valueint != want && first_diff < 0) first_diff = i, same = 0;
    }
    printf("kjv_val.txt: %d ids, golden %zu, first difference %d\n", count, len / 4, first_diff);
    CHECK_MSG(r.status == 0 && same, "kjv_val.txt tokenization differs from val_ids.i32");
    cJSON_Delete(got);
    free(raw);
    done(&r);
}

/* ---- generation on the KJV model -------------------------------------------- */

/* Golden greedy ids must match up to the first step whose top-1/top-2 margin is
 * within our logit error; returns how many steps that is. */
static int trusted_steps(const cJSON *p) {
    const cJSON *m = cJSON_GetObjectItem(p, "greedy_top2_margin");
    int n = cJSON_GetArraySize(m), k = 0;
    while (k < n && cJSON_GetArrayItem(m, k)->valuedouble > 1e-3) k++;
    return k < n ? k + 1 : n;
}

static int count_ids(const char *s, int32_t *out, int cap) {
    int n = 0;
    char *end;
    for (long v; n < cap && (v = strtol(s, &end, 10), end != s); s = end) out[n++] = (int32_t)v;
    return n;
}

static void test_generate(void) {
    cJSON *g = golden_kjv();
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(g, "prompts")) {
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        const cJSON *greedy = cJSON_GetObjectItem(p, "greedy_ids");
        const char *want = cJSON_GetObjectItem(p, "greedy_text")->valuestring;
        int k = trusted_steps(p), n = cJSON_GetArraySize(greedy);
        result r = run("-m", KJV, "-t", "1", "--raw", "-p", text, "-n", "48", "--temp", "0",
                       "--print-ids");
        int32_t ids[64];
        int got = count_ids(r.out, ids, 64), same = 0;
        while (same < got && same < n && ids[same] == cJSON_GetArrayItem(greedy, same)->valueint)
            same++;
        printf("\"%s\": %d/%d greedy ids as golden (must %d)\n", text, same, n, k);
        CHECK_MSG(r.status == 0 && got == 48 && same >= k, "\"%s\": %s %s", text, r.out, r.err);
        done(&r);
        /* the streamed text, exactly (piped: no newline added) */
        r = run("-m", KJV, "-t", "1", "--raw", "-p", text, "-n", "48", "--temp", "0");
        if (same == n)
            CHECK_MSG(r.status == 0 && !strcmp(r.out, want), "\"%s\" text: %s", text, r.out);
        else
            CHECK(r.status == 0 && !strncmp(r.out, want, 8));
        /* timings on stderr */
        CHECK_MSG(strstr(r.err, "load time") && strstr(r.err, "prompt") &&
                      strstr(r.err, "tokens/s") && strstr(r.err, "generation"),
                  "stats: %s", r.err);
        done(&r);
    }
    /* --verbose adds the backend and memory */
    result r = run("-m", KJV, "-t", "1", "--raw", "-p", "Blessed are", "-n", "2", "-v");
    CHECK_MSG(r.status == 0 && strstr(r.err, "model:") && strstr(r.err, "MiB") &&
                  strstr(r.err, "seed"),
              "verbose: %s", r.err);
    done(&r);
    cJSON_Delete(g);
}

static void test_stops(void) {
    cJSON *g = golden_kjv();
    const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "prompts"), 0);
    const char *text = cJSON_GetObjectItem(p0, "text")->valuestring;
    const char *want = cJSON_GetObjectItem(p0, "greedy_text")->valuestring;
#define GREEDY(...) run("-m", KJV, "-t", "1", "--raw", "-p", text, "--temp", "0", __VA_ARGS__)
    /* -n counts generated tokens */
    result r = GREEDY("-n", "5", "--print-ids");
    int32_t ids[64];
    CHECK_MSG(r.status == 0 && count_ids(r.out, ids, 64) == 5, "-n 5: %s", r.out);
    done(&r);
    r = GREEDY("-n", "0");
    CHECK_MSG(r.status == 0 && r.n_out == 0, "-n 0: %s", r.out);
    done(&r);
    /* a stop string inside one token, one across tokens and words, one across lines:
     * the output is the text before it, nothing of it shown */
    const char *stops[] = {"Jews", "Christ was made", "joy.\nAnd", "e"};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        r = GREEDY("-n", "48", "--stop", stops[i]);
        size_t cut = (size_t)(strstr(want, stops[i]) - want);
        CHECK_MSG(r.status == 0 && r.n_out == cut && !strncmp(r.out, want, cut),
                  "--stop \"%s\": \"%s\"", stops[i], r.out);
        done(&r);
    }
    /* two stops: the first in the text wins; a prefix that never completes is
     * released at the end */
    r = GREEDY("-n", "48", "--stop", "house", "--stop", "healed");
    CHECK(r.status == 0 && !strncmp(r.out, want, r.n_out) &&
          strstr(want, "healed") == want + r.n_out);
    done(&r);
    r = GREEDY("-n", "48", "--stop", "he wasX");
    CHECK_MSG(r.status == 0 && !strcmp(r.out, want), "held-back prefix: \"%s\"", r.out);
    done(&r);
    r = GREEDY("-n", "48", "--stop", "");
    CHECK(r.status == 2 && strstr(r.err, "--stop"));
    done(&r);
#undef GREEDY
    cJSON_Delete(g);
}

/* ---- reasoning display ------------------------------------------------------ */

static void test_think(void) {
    /* The template's prompt ends in "<think>\n": the output starts in reasoning.
     * kjv-tiny never writes </think> itself, so the budget is what closes it. */
#define CHAT(...) run("-m", KJV, "-t", "1", "-p", "Who was Moses?", "--temp", "0", __VA_ARGS__)
    result r = CHAT("-n", "20", "--think-budget", "5", "--print-ids");
    int32_t ids[64];
    int n = count_ids(r.out, ids, 64), close_at = -1;
    for (int i = 0; i < n; i++)
        if (ids[i] == 4095 && close_at < 0) close_at = i;
    printf("--think-budget 5: %d ids, </think> (4095) at %d\n", n, close_at);
    CHECK_MSG(r.status == 0 && n == 20 && close_at == 5, "think budget: %s", r.out);
    done(&r);
    r = CHAT("-n", "20", "--think-budget", "5");
    const char *close = strstr(r.out, "</think>");
    CHECK_MSG(r.status == 0 && !strncmp(r.out, "<think>\n", 8) && close && close > r.out + 8 &&
                  !strstr(close + 1, "</think>") && !strstr(r.out + 1, "<think>"),
              "piped markers: \"%s\"", r.out);
    char *answer = close ? strdup(close + 8) : strdup("");
    done(&r);
    /* --hide-think: only the answer, its leading blank space dropped */
    r = CHAT("-n", "20", "--think-budget", "5", "--hide-think");
    const char *a = answer;
    while (*a == '\n' || *a == ' ') a++;
    CHECK_MSG(r.status == 0 && !strcmp(r.out, a), "--hide-think: \"%s\" want \"%s\"", r.out, a);
    free(answer);
    done(&r);
    /* budget 0 closes at once; no budget keeps reasoning */
    r = CHAT("-n", "3", "--think-budget", "0", "--print-ids");
    CHECK_MSG(r.status == 0 && count_ids(r.out, ids, 64) == 3 && ids[0] == 4095, "budget 0: %s",
              r.out);
    done(&r);
    r = CHAT("-n", "12");
    CHECK_MSG(r.status == 0 && !strncmp(r.out, "<think>\n", 8) && !strstr(r.out, "</think>"),
              "no budget: \"%s\"", r.out);
    /* --messages gives the same conversation as -p */
    spit(tmp("messages.json"), "[{\"role\": \"user\", \"content\": \"Who was Moses?\"}]");
    result m =
        run("-m", KJV, "-t", "1", "--messages", tmp("messages.json"), "--temp", "0", "-n", "12");
    CHECK_MSG(m.status == 0 && !strcmp(m.out, r.out), "--messages: \"%s\"", m.out);
    done(&m);
    done(&r);
#undef CHAT
}

static void test_seed(void) {
#define SAMPLE(seed)                                                                               \
    run("-m", KJV, "-t", "1", "--raw", "-p", "And the LORD said", "-n", "32", "--temp", "1",       \
        "--seed", seed)
    result a = SAMPLE("7"), b = SAMPLE("7"), c = SAMPLE("8");
    printf("seed 7: \"%s\"\nseed 8: \"%s\"\n", a.out, c.out);
    CHECK(a.status == 0 && b.status == 0 && c.status == 0);
    CHECK_MSG(a.n_out > 0 && !strcmp(a.out, b.out), "same seed, different text");
    CHECK_MSG(strcmp(a.out, c.out) != 0, "seeds 7 and 8 gave the same text");
    done(&a), done(&b), done(&c);
#undef SAMPLE
    /* generation_config.json's defaults (temperature 0.7, top-p 0.95) are used */
    result r = run("-m", KJV, "-t", "1", "--raw", "-p", "Amen", "-n", "1", "-v");
    CHECK_MSG(strstr(r.err, "temp 0.7") && strstr(r.err, "top-p 0.95"), "defaults: %s", r.err);
    done(&r);
}

static void test_context(void) {
    /* 4 prompt tokens cannot leave room in --ctx 4: one line naming --ctx, exit 1 */
    result r = run("-m", KJV, "-t", "1", "--raw", "-p", "In the beginning", "--ctx", "4");
    CHECK_MSG(r.status == 1 && lines(r.err) == 1 && strstr(r.err, "--ctx") && !r.n_out,
              "prompt past ctx: %d %s", r.status, r.err);
    done(&r);
    /* generation stops at the context end with a notice: 8 - 4 evaluated + 1 sampled */
    r = run("-m", KJV, "-t", "1", "--raw", "-p", "In the beginning", "--ctx", "8", "--temp", "0",
            "--print-ids");
    int32_t ids[64];
    CHECK_MSG(r.status == 0 && count_ids(r.out, ids, 64) == 5 && strstr(r.err, "full"),
              "context end: %s %s", r.out, r.err);
    done(&r);
}

/* ---- flags ------------------------------------------------------------------- */

static void expect_bad(const char *label, int want, const char *needle, result r) {
    CHECK_MSG(r.status == want && lines(r.err) == 1 && strstr(r.err, needle) &&
                  (want != 2 || strstr(r.err, "see r1run --help")),
              "%s: status %d, stderr \"%s\"", label, r.status, r.err);
    done(&r);
}

static void test_flags(void) {
    result r = run("--help");
    const char *flags[] = {"-m, --model",
                           "-p, --prompt",
                           "--system",
                           "--messages",
                           "--raw",
                           "--no-bos",
                           "-i, --interactive",
                           "-n, --n-predict",
                           "--stop",
                           "--hide-think",
                           "--think-budget",
                           "--temp",
                           "--top-k",
                           "--top-p",
                           "--min-p",
                           "--repeat-penalty",
                           "--presence-penalty",
                           "--penalty-last-n",
                           "--seed",
                           "-c, --ctx",
                           "-b, --batch",
                           "-t, --threads",
                           "--gpu-layers",
                           "--gpu-device",
                           "--gpu-mem",
                           "--lm-head q8|f16",
                           "--tokenize",
                           "--tokenize-file",
                           "--detokenize",
                           "--dump-prompt",
                           "-f, --file",
                           "--chunks",
                           "--tokens",
                           "--dump-logits",
                           "--print-ids",
                           "-v, --verbose",
                           "-h, --help",
                           "perplexity",
                           "bench"};
    CHECK(r.status == 0);
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        CHECK_MSG(strstr(r.out, flags[i]), "--help lacks %s", flags[i]);
    done(&r);
    expect_bad("unknown", 2, "--frobnicate", run("-m", KJV, "--frobnicate"));
    expect_bad("no model", 2, "-m", run("-p", "hi"));
    expect_bad("temp", 2, "--temp", run("-m", KJV, "-p", "x", "--temp", "hot"));
    expect_bad("top-p 0", 2, "--top-p", run("-m", KJV, "-p", "x", "--top-p", "0"));
    expect_bad("top-k", 2, "--top-k", run("-m", KJV, "-p", "x", "--top-k", "-3"));
    expect_bad("seed", 2, "--seed", run("-m", KJV, "-p", "x", "--seed", "-1"));
    expect_bad("ctx", 2, "--ctx", run("-m", KJV, "-p", "x", "--ctx", "0"));
    expect_bad("n", 2, "-n", run("-m", KJV, "-p", "x", "-n"));
    expect_bad("think-budget", 2, "--think-budget",
               run("-m", KJV, "-p", "x", "--think-budget", "-2"));
    expect_bad("gpu-mem", 2, "--gpu-mem", run("-m", KJV, "-p", "x", "--gpu-mem", "12Q"));
    expect_bad("lm-head", 2, "--lm-head", run("-m", KJV, "-p", "x", "--lm-head", "q4"));
    expect_bad("two modes", 2, "choose one",
               run("-m", KJV, "--tokenize", "a", "--detokenize", "1"));
    expect_bad("-f outside perplexity", 2, "-f", run("-m", KJV, "-p", "x", "-f", "a.txt"));
    expect_bad("perplexity without -f", 2, "-f", run("perplexity", "-m", KJV));
    expect_bad("--no-bos without --raw", 2, "--no-bos", run("-m", KJV, "-p", "x", "--no-bos"));
    expect_bad("nothing to do", 2, "nothing to do", run("-m", KJV));
    expect_bad("missing model", 1, "/nonexistent", run("-m", "/nonexistent", "-p", "x"));
    expect_bad("ctx past model", 1, "--ctx", run("-m", KJV, "-p", "x", "--ctx", "99999"));
}

/* ---- chat from a pipe ------------------------------------------------------- */

/* "[turn N: prompt P tokens, R reused" -> P and R */
static int turn_info(const char *err, int turn, int *prompt, int *reused) {
    char key[32];
    snprintf(key, sizeof key, "[turn %d: prompt ", turn);
    const char *s = strstr(err, key);
    return s && sscanf(s + strlen(key), "%d tokens, %d reused", prompt, reused) == 2;
}

static void test_chat_pipe(void) {
    spit(tmp("turns.txt"),
         "Who was Moses?\nAnd who was Aaron?\n\n/reset\nBlessed are\n/exit\nnot read\n");
    result r = run_in(tmp("turns.txt"), "-m", KJV, "-t", "1", "-i", "-n", "12", "--temp", "0", "-v",
                      "--think-budget", "4", (const char *)NULL);
    int p1, r1, p2, r2, p3, r3;
    int ok = turn_info(r.err, 1, &p1, &r1) && turn_info(r.err, 2, &p2, &r2);
    /* after /reset the turns count from 1 again: find the third answer's line */
    const char *third = ok ? strstr(r.err, "[history cleared]") : NULL;
    third = third ? strstr(third, "[turn 1:") : NULL;
    ok = ok && third && turn_info(third, 1, &p3, &r3);
    printf("pipe chat: turn 1 %d/%d, turn 2 %d/%d, after reset %d/%d (prompt/reused)\n",
           ok ? p1 : 0, ok ? r1 : 0, ok ? p2 : 0, ok ? r2 : 0, ok ? p3 : 0, ok ? r3 : 0);
    CHECK_MSG(r.status == 0 && ok, "pipe chat: status %d, stderr %s", r.status, r.err);
    /* turn 2 re-renders turn 1 (its answer without the reasoning) and reuses the
     * cached prefix of it; after /reset nothing is reused */
    CHECK(ok && r1 == 0 && p2 > p1 && r2 > 0 && r2 < p1 && r3 == 0);
    /* three answers, each starting with the reasoning marker, no prompt decoration */
    int answers = 0;
    for (const char *s = r.out; (s = strstr(s, "<think>\n")); s++) answers++;
    CHECK_MSG(answers == 3 && !strstr(r.out, "> "), "pipe chat stdout: %s", r.out);
    done(&r);

    /* a turn that does not fit the context is refused with a hint; the chat goes on
     * with the history as it was */
    spit(tmp("turns.txt"), "Who was Moses?\nIn the beginning God created the heaven and the "
                           "earth. And the earth was without form, and void; and darkness was "
                           "upon the face of the deep.\nAmen\n");
    r = run_in(tmp("turns.txt"), "-m", KJV, "-t", "1", "-i", "-n", "8", "--temp", "0", "-v",
               "--think-budget", "2", "--ctx", "32", (const char *)NULL);
    ok = turn_info(r.err, 1, &p1, &r1) && turn_info(r.err, 2, &p2, &r2);
    CHECK_MSG(r.status == 0 && ok && r2 > 0 && !turn_info(r.err, 3, &p3, &r3) &&
                  strstr(r.err, "--ctx") && strstr(r.err, "/reset"),
              "turn past the context: %s", r.err);
    done(&r);
    /* an answer that fills the context stops with a notice, and the chat goes on */
    spit(tmp("turns.txt"), "Who was Moses?\n");
    r = run_in(tmp("turns.txt"), "-m", KJV, "-t", "1", "-i", "--temp", "0", "--ctx", "16",
               (const char *)NULL);
    CHECK_MSG(r.status == 0 && strstr(r.err, "is full") && strstr(r.err, "/reset"),
              "answer to the context end: %s", r.err);
    done(&r);
}

/* ---- perplexity -------------------------------------------------------------- */

static void test_perplexity(void) {
    result r = run("perplexity", "-m", KJV, "-t", "1", "-f", R1_TEST_DATA "/kjv/kjv_val.txt",
                   "--ctx", "256", "--chunks", "100", "-b", "128");
    double ppl = 0;
    int ok = sscanf(last_line(r.out), "perplexity: %lf", &ppl) == 1;
    printf("perplexity %.4f (golden 45.669)\n", ppl);
    CHECK_MSG(r.status == 0 && ok, "status %d, stdout \"%s\", stderr %s", r.status, r.out, r.err);
    CHECK_MSG(ppl > 45.669 * 0.995 && ppl < 45.669 * 1.005, "perplexity %.4f", ppl);
    CHECK(strstr(r.err, "[100/100] ppl"));
    done(&r);
}

/* r1run bench -o json: one object per test, the tg test after a prompt of -d
 * tokens named tg N @d D; bad values of -d refused. */
static void test_bench(void) {
    result r = run("bench", "-m", KJV, "-t", "1", "-p", "8", "-n", "4", "-d", "40", "-r", "1", "-o",
                   "json");
    CHECK_MSG(r.status == 0, "status %d, stderr %s", r.status, r.err);
    CHECK_MSG(strstr(r.out, "{\"test\": \"pp8\", \"tokens_per_s\": "), "stdout %s", r.out);
    CHECK_MSG(strstr(r.out, "{\"test\": \"tg4@d40\", \"tokens_per_s\": "), "stdout %s", r.out);
    done(&r);
    static const struct {
        const char *d, *n, *needle;
        int status;
    } bad[] = {{"-3", "4", "-d: expects", 2},
               {"abc", "4", "-d abc: expects a whole number", 2},
               {"5000", "4", "needs 5005 positions; the model has 2048", 1}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = run("bench", "-m", KJV, "-p", "0", "-n", bad[i].n, "-d", bad[i].d, "-o", "json");
        CHECK_MSG(r.status == bad[i].status && lines(r.err) == 1 && strstr(r.err, bad[i].needle),
                  "-d %s: status %d, stderr %s", bad[i].d, r.status, r.err);
        done(&r);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s CASE R1RUN\n", argv[0]), 2;
    r1run = argv[2];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/r1cli.XXXXXX");
    if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"dump_prompt", test_dump_prompt},
                 {"tokenize", test_tokenize},
                 {"generate", test_generate},
                 {"stops", test_stops},
                 {"think", test_think},
                 {"seed", test_seed},
                 {"context", test_context},
                 {"flags", test_flags},
                 {"chat_pipe", test_chat_pipe},
                 {"perplexity", test_perplexity},
                 {"bench", test_bench}};
    int found = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!strcmp(argv[1], cases[i].name)) cases[i].fn(), found = 1;
    CHECK_MSG(found, "unknown case %s", argv[1]);
    const char *names[] = {"stdout", "stderr", "messages.json", "turns.txt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(tmp(names[i]));
    rmdir(tmpdir);
    return r1t_finish(argv[1]);
}
