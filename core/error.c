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
    snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
}

const char *r1_status_str(r1_status s) {
    switch (s) {
    case R1_OK: return "ok";
    case R1_E_INVAL: return "invalid argument";
    case R1_E_IO: return "i/o error";
    case R1_E_FORMAT: return "malformed input";
    case R1_E_NOMEM: return "out of memory";
    case R1_E_UNSUPPORTED: return "unsupported";
    case R1_E_RANGE: return "out of range";
    case R1_E_DEVICE: return "device error";
    case R1_E_CANCELLED: return "cancelled";
    }
    return "unknown status";
}
