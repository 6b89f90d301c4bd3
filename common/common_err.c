/*
 * Error descriptions for enum fl_err.  One table so that every message a
 * user sees for a code reads the same.
 */
#include "common.h"

const char *
fl_strerror(int err)
{
    switch (err) {
    case FL_OK:
        return "success";
    case FL_ENOMEM:
        return "out of memory";
    case FL_EINVAL:
        return "invalid argument";
    case FL_ETRUNC:
        return "truncated input";
    case FL_EFORMAT:
        return "malformed input";
    case FL_EVERSION:
        return "unsupported version";
    case FL_ELIMIT:
        return "limit reached";
    case FL_EIO:
        return "input/output error";
    case FL_ENOENT:
        return "not found";
    case FL_EEXIST:
        return "already exists";
    case FL_EAUTH:
        return "authentication failed";
    case FL_EAGAIN:
        return "try again";
    case FL_ENET:
        return "network error";
    default:
        return "unknown error";
    }
}

void
fl_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
