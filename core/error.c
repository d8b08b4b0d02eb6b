#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

r1_status r1__err(r1_error *err, r1_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void r1__err_prefix(r1_error *err, const char *fmt, ...) {
    if (!err) return;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* keep the prefix whole and truncate the old message if needed */
    size_t np = strlen(pre), cap = sizeof err->msg - 1;
    if (np + 2 > cap) np = cap - 2;
    memcpy(err->msg, pre, np);
    memcpy(err->msg + np, ": ", 2);
    size_t no = strnlen(old, sizeof old - 1);
    if (np + 2 + no > cap) no = cap - np - 2;
    memcpy(err->msg + np + 2, old, no);
    err->msg[np + 2 + no] = 0;
}

const char *r1_status_str(r1_status s) {
    switch (s) {
    case R1_OK:
        return "ok";
    case R1_E_INVAL:
        return "invalid argument";
    case R1_E_IO:
        return "i/o error";
    case R1_E_FORMAT:
        return "malformed input";
    case R1_E_NOMEM:
        return "out of memory";
    case R1_E_UNSUPPORTED:
        return "unsupported";
    case R1_E_RANGE:
        return "out of range";
    case R1_E_DEVICE:
        return "device error";
    case R1_E_CANCELLED:
        return "cancelled";
    }
    return "unknown status";
}
