/*
 * libFuzzer target for the columnar batch payload decoder: any bytes in,
 * with the record count the payload claims as the expected one.  Inputs
 * opening with 'R' are a count and a column block that the target
 * compresses itself, so mutations reach the column checks, not only zstd.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the field reads from being optimised away. */
static volatile uint64_t sink;

struct seen {
    uint32_t flows;
    uint64_t sum;
};

/* Reads every field, extra included, so ASan sees any bad memory. */
static void
on_flow(void *arg, const struct fl_flow *f)
{
    uint8_t canon[FL_CANON_MAX + 4096];
    struct seen *s = arg;
    int len;

    s->flows++;
    if (f->extra_len > 0 && f->extra == NULL) {
        abort();
    }
    for (uint32_t i = 0; i < f->extra_len; i++) {
        s->sum += f->extra[i];
    }
    /* The canonical form reads every fixed field. */
    len = fl_flow_canon(f, canon, sizeof(canon));
    if (len > 0) {
        s->sum += canon[len - 1] + canon[FL_CANON_MAX / 2];
    }
}

/* 'R', u32 count, block -> version 1, count, zero secret, zstd(block). */
static uint8_t *
wrap_block(const uint8_t *data, size_t size, size_t *len)
{
    size_t head = 1 + 4 + FL_BATCH_SECRET_LEN;
    size_t bound = ZSTD_compressBound(size - 5);
    uint8_t *p = calloc(1, head + bound);
    size_t z;

    if (p == NULL) {
        return NULL;
    }
    p[0] = 1;
    memcpy(p + 1, data + 1, 4);
    z = ZSTD_compress(p + head, bound, data + 5, size - 5, 1);
    if (ZSTD_isError(z)) {
        free(p);
        return NULL;
    }
    *len = head + z;
    return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    struct seen s = {0, 0};
    uint32_t expect = 0;
    uint8_t *wrapped = NULL;
    int rc;

    if (size >= 5 && data[0] == 'R') {
        wrapped = wrap_block(data, size, &size);
        if (wrapped == NULL) {
            return 0;
        }
        data = wrapped;
    }
    if (size >= 5) {
        expect = (uint32_t)fl_be_uint(data + 1, 4);
    }
    rc = fl_columns_decode(data, size, expect, 16u << 20, secret, on_flow, &s);
    free(wrapped);

    /* Success delivers exactly the promised records. */
    if (rc == FL_OK && s.flows != expect) {
        abort();
    }
    if (rc != FL_OK && rc != FL_EFORMAT && rc != FL_EVERSION &&
        rc != FL_ELIMIT && rc != FL_ENOMEM) {
        abort();
    }
    sink = s.sum;
    return 0;
}
