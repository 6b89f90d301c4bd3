/*
 * A growable string for building output and files.  It grows by doubling
 * and refuses to pass 1 GiB, the ceiling for anything built in memory.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

#define STR_CEILING ((size_t)1 << 30)

static int
reserve(struct fl_str *s, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (extra > STR_CEILING - s->len - 1) {
        return FL_ELIMIT;
    }
    need = s->len + extra + 1;
    if (need <= s->cap) {
        return FL_OK;
    }
    cap = s->cap > 0 ? s->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(s->p, cap);
    if (p == NULL) {
        return FL_ENOMEM;
    }
    s->p = p;
    s->cap = cap;
    return FL_OK;
}

void
fl_str_fini(struct fl_str *s)
{
    free(s->p);
    s->p = NULL;
    s->len = 0;
    s->cap = 0;
}

int
fl_str_append(struct fl_str *s, const void *data, size_t n)
{
    int rc = reserve(s, n);

    if (rc != FL_OK) {
        return rc;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
    return FL_OK;
}

int
fl_str_printf(struct fl_str *s, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return FL_EINVAL;
    }
    rc = reserve(s, (size_t)n);
    if (rc != FL_OK) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
    return FL_OK;
}
