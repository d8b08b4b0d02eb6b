/* Output directory preparation (see mkout.h). */
#include "mkout.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static r1_status mkdir_p(const char *dir, r1_error *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return r1__err(err, R1_E_INVAL, "--out path too long");
    for (char *p = path + 1;; p++) {
        bool end = *p == 0;
        if (*p != '/' && !end) continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return r1__err(err, R1_E_IO, "cannot create directory %s: %s", path, strerror(errno));
        if (end) break;
        *p = '/';
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return r1__err(err, R1_E_IO, "--out %s is not a directory", dir);
    return R1_OK;
}

/* Names this tool writes for weights: model.safetensors, model-00001-of-00003.safetensors, and
 * the index. */
static bool is_weight_file(const char *name) {
    if (strcmp(name, "model.safetensors") == 0) return true;
    if (strcmp(name, "model.safetensors.index.json") == 0) return true;
    unsigned a, b;
    int end = 0;
    return strlen(name) == 32 &&
           sscanf(name, "model-%5u-of-%5u.safetensors%n", &a, &b, &end) == 2 && end == 32;
}

static r1_status remove_stale(const char *dir, r1_error *err) {
    DIR *d = opendir(dir);
    if (!d) return r1__err(err, R1_E_IO, "cannot list %s: %s", dir, strerror(errno));
    r1_status st = R1_OK;
    struct dirent *e;
    while (st == R1_OK && (e = readdir(d))) {
        if (!is_weight_file(e->d_name)) continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            st = r1__err(err, R1_E_IO, "cannot remove old %s: %s", path, strerror(errno));
    }
    closedir(d);
    return st;
}

r1_status mk_out_prepare(const char *dir, uint64_t need, r1_error *err) {
    r1_status st = mkdir_p(dir, err);
    if (st == R1_OK) st = remove_stale(dir, err);
    if (st != R1_OK) return st;
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (avail < need)
            return r1__err(err, R1_E_IO, "not enough disk space in %s: need %.2f GB, %.2f GB free",
                           dir, (double)need / 1e9, (double)avail / 1e9);
    }
    return R1_OK;
}
