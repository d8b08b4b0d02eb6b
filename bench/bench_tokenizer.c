/* `r1run bench-tokenizer`: tokenizer throughput.
 *   -m DIR      folder with tokenizer.json (+ tokenizer_config.json)
 *   -f FILE     UTF-8 text to encode; default: a built-in ~1 MB mix of the
 *               golden test strings (English, code, CJK, emoji, digits, ...)
 *   -r REPEATS  timed runs, best one reported (default 5)
 * Prints load time, encode MB/s and tokens/s, decode MB/s, and the time to
 * encode a 32k-token prompt (a prefix of the text). The built-in text
 * repeats itself, which flatters the per-call word cache: use -f with
 * natural text for representative numbers. */
#include "bench.h"
#include "r1run.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A selection of tests/data/tokenizer/cases.txt. */
static const char *const MIX[] = {
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "I'm sure it's what they're doing, isn't it? We'll see; you'd've thought I've won.",
    "3.14159265358979 and -42 and +7 and 1e-10 and 0x1F and 1,000,000.00",
    "In 2024 there were 366 days; 12:30:45 on 2025-01-20.",
    "  two leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e",
    "\t\tTabs\tinside\t\t",
    "line1\nline2\n\nline4\n\n\n",
    "windows\r\nline\r\n\r\nend",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\n\nint main(void) {\n\tfor (int i = 0; i < 10; ++i) "
    "{\n\t\tprintf(\"%d\\n\", "
    "i);\n\t}\n\treturn 0;\n}\n",
    "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
    "$$\\frac{a}{b} + \\sqrt{x^2 + y^2} = \\sum_{i=1}^{n} i$$ and \\boxed{42}",
    "你好，世界！",
    "人工智能正在改变世界。我们需要认真思考它的影响，并且负责任地使用它。",
    "こんにちは、世界。東京は日本の首都です。カタカナとひらがな、漢字。",
    "안녕하세요 세계! 한국어 토크나이저 테스트입니다.",
    "مرحبا بالعالم! هذا اختبار للغة العربية.",
    "Привет, мир! Ελληνικά γράμματα. שלום עולם",
    "😀😃😄 👍🏽 👋🏿",
    "Café vs Café; ñ vs ñ",
    "∑∫√∞≠≤≥ ± × ÷ → ⇒ ∀x∃y €100 £50 ¥1000 ₹20",
    "<｜User｜>hi<｜Assistant｜><think>\nOkay, 2+2=4.\n</think>\n\n",
    "Please reason step by step, and put your final answer within \\boxed{}. What is 17*23?",
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *builtin_text(size_t target, size_t *len) {
    char *p = malloc(target + 4096);
    size_t n = 0;
    for (size_t i = 0; p && n < target; i++) {
        const char *s = MIX[i % (sizeof MIX / sizeof MIX[0])];
        memcpy(p + n, s, strlen(s));
        n += strlen(s);
        p[n++] = (i % 3 == 2) ? '\n' : ' ';
    }
    *len = n;
    return p;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0, got;
    char *p = malloc(cap);
    while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) p = realloc(p, cap *= 2);
    }
    fclose(f);
    *len = n;
    return p;
}

/* Best-of-repeats encode time of text[0..len); the last ids are kept. */
static double time_encode(const r1_tokenizer *t, const char *text, size_t len, int reps,
                          int32_t **ids, size_t *n) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        r1_free(*ids), *ids = NULL;
        r1_error err = {0};
        double t0 = now_s();
        if (r1_tokenize(t, text, len, ids, n, &err) != R1_OK) {
            fprintf(stderr, "bench-tokenizer: %s\n", err.msg);
            return -1;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* Largest prefix of about n_tok tokens, cut on a UTF-8 character boundary. */
static size_t prefix_for_tokens(const char *text, size_t len, size_t n_ids, size_t n_tok) {
    if (n_ids <= n_tok) return len;
    size_t cut = (size_t)((double)len * (double)n_tok / (double)n_ids);
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) cut--;
    return cut;
}

static int usage(void) {
    fprintf(stderr, "usage: r1run bench-tokenizer -m DIR [-f FILE] [-r REPEATS]\n");
    return 2;
}

static int run(const r1_tokenizer *t, const char *text, size_t len, int reps) {
    int32_t *ids = NULL;
    size_t n = 0;
    double enc = time_encode(t, text, len, reps, &ids, &n);
    if (enc < 0) return 1;
    double dec = 1e30;
    for (int r = 0; r < reps; r++) {
        char *out = NULL;
        double t0 = now_s();
        r1_detokenize(t, ids, n, &out, NULL);
        double dt = now_s() - t0;
        r1_free(out);
        if (dt < dec) dec = dt;
    }
    printf("text: %zu bytes, %zu tokens (%.2f bytes/token)\n", len, n,
           n ? (double)len / (double)n : 0.0);
    printf("encode: %.1f MB/s, %.0f tokens/s (%.1f ms)\n", (double)len / enc / 1e6, (double)n / enc,
           enc * 1e3);
    printf("decode: %.1f MB/s (%.2f ms)\n", (double)len / dec / 1e6, dec * 1e3);
    size_t plen = prefix_for_tokens(text, len, n, 32768), pn = 0;
    int32_t *pids = NULL;
    double pt = time_encode(t, text, plen, reps, &pids, &pn);
    if (pt >= 0) printf("32k-token prompt: %zu tokens, %zu bytes, %.1f ms\n", pn, plen, pt * 1e3);
    r1_free(pids), r1_free(ids);
    return pt < 0;
}

int r1__bench_tokenizer_main(int argc, char **argv) {
    const char *dir = NULL, *file = NULL;
    int reps = 5;
    for (int i = 0; i < argc; i++) { /* argv holds the options only */
        if (i + 1 < argc && strcmp(argv[i], "-m") == 0)
            dir = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-f") == 0)
            file = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-r") == 0)
            reps = atoi(argv[++i]);
        else
            return usage();
    }
    if (!dir || reps < 1) return usage();
    r1_tokenizer *t = NULL;
    r1_error err = {0};
    double t0 = now_s();
    if (r1_tokenizer_load(dir, &t, &err) != R1_OK) {
        fprintf(stderr, "bench-tokenizer: %s\n", err.msg);
        return 1;
    }
    printf("load: %.1f ms (%d tokens)\n", (now_s() - t0) * 1e3, r1_tokenizer_n_vocab(t));
    size_t len = 0;
    char *text = file ? read_all(file, &len) : builtin_text(1 << 20, &len);
    if (!text) {
        fprintf(stderr, "bench-tokenizer: cannot read %s\n", file);
        r1_tokenizer_free(t);
        return 1;
    }
    int rc = run(t, text, len, reps);
    free(text);
    r1_tokenizer_free(t);
    return rc;
}
