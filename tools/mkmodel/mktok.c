/* Locating and copying the R1 tokenizer files (see mktok.h). */
#include "mktok.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json"};

static bool has_tokenizer(const char *dir) {
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, tok_files[i]);
        if (access(path, R_OK) != 0) return false;
    }
    return true;
}

/* Tries base/models/r1-tokenizer for base and up to 4 of its parents. */
static bool search_up(const char *start, char *out, size_t size) {
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", start);
    for (int level = 0; level <= 4; level++) {
        bool root = strcmp(base, "/") == 0;
        snprintf(out, size, "%s/models/r1-tokenizer", root ? "" : base);
        if (has_tokenizer(out)) return true;
        char *slash = strrchr(base, '/');
        if (!slash || root) return false;
        slash[slash == base ? 1 : 0] = 0; /* drop the last component, keeping "/" */
    }
    return false;
}

r1_status mk_tok_find(const char *explicit_dir, char *out, size_t size, r1_error *err) {
    if (explicit_dir) {
        snprintf(out, size, "%s", explicit_dir);
        if (has_tokenizer(out)) return R1_OK;
        return r1__err(err, R1_E_IO,
                       "--tokenizer %s: no readable tokenizer.json and "
                       "tokenizer_config.json there",
                       explicit_dir);
    }
#ifdef R1_SOURCE_ROOT
    snprintf(out, size, "%s/models/r1-tokenizer", R1_SOURCE_ROOT);
    if (has_tokenizer(out)) return R1_OK;
#endif
    char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n > 0) {
        dir[n] = 0;
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        if (search_up(dir, out, size)) return R1_OK;
    }
    if (getcwd(dir, sizeof dir) && search_up(dir, out, size)) return R1_OK;
    return r1__err(err, R1_E_IO,
                   "cannot find the R1 tokenizer (models/r1-tokenizer near the "
                   "executable or the current directory): pass --tokenizer DIR "
                   "or --no-tokenizer");
}

static r1_status copy_file(const char *src, const char *dst, r1_error *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return r1__err(err, R1_E_IO, "cannot open %s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return r1__err(err, R1_E_IO, "cannot create %s: %s", dst, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    bool bad = false;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, n, out) != n;
    bad = bad || ferror(in);
    fclose(in);
    if (fclose(out) != 0 || bad) return r1__err(err, R1_E_IO, "cannot copy %s to %s", src, dst);
    return R1_OK;
}

r1_status mk_tok_copy(const char *src_dir, const char *out_dir, r1_error *err) {
    for (size_t i = 0; i < 2; i++) {
        char src[PATH_MAX + 64], dst[PATH_MAX + 64];
        snprintf(src, sizeof src, "%s/%s", src_dir, tok_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out_dir, tok_files[i]);
        r1_status st = copy_file(src, dst, err);
        if (st != R1_OK) return st;
    }
    return R1_OK;
}
