/* Status codes and error messages shared by every r1run module.
 *
 * Library functions never exit(): they return an r1_status and, when the
 * caller passes a non-NULL r1_error, fill it with one line naming the file,
 * tensor or flag at fault. The r1_error is owned by the caller; its message
 * stays valid until the caller reuses the struct. */
#ifndef R1_ERROR_H
#define R1_ERROR_H

#include "r1run.h"

/* Sets err (if non-NULL) to code and a printf-style message; returns code so
 * callers can write `return r1__err(err, R1_E_FORMAT, "...")`. */
r1_status r1__err(r1_error *err, r1_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with "prefix: " (used to add file context). */
void r1__err_prefix(r1_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
