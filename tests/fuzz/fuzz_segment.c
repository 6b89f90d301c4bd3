/*
 * libFuzzer target for the segment reader: the file header, the footer
 * and index, the block walk with its resynchronisation, and the batches
 * inside each good block, all on bytes straight from the fuzzer.
 */
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
count_flow(void *arg, const struct fl_flow *f)
{
    (void)f;
    (*(size_t *)arg)++;
}

static int
one_batch(void *arg, const uint8_t *batch, size_t len, uint32_t records)
{
    char sensor[65];
    uint8_t key_id[FL_KEYID_LEN];
    uint8_t secret[FL_BATCH_SECRET_LEN];
    const uint8_t *payload;
    size_t plen;

    (void)fl_batch_peek(batch, len, sensor, key_id);
    if (fl_seg_batch_payload(batch, len, &payload, &plen) == FL_OK &&
        records <= 4096) {
        (void)fl_columns_decode(payload, plen, records, 1u << 22, secret,
                                count_flow, arg);
    }
    return FL_OK;
}

static int
good(void *arg, uint64_t off, const uint8_t *blk, size_t len)
{
    (void)off;
    return fl_seg_block_batches(blk + FL_BLK_HEADER_LEN,
                                len - FL_BLK_HEADER_LEN, one_batch,
                                arg) == FL_ENOMEM
               ? FL_ENOMEM
               : FL_OK;
}

static int
bad(void *arg, uint64_t off, uint64_t len)
{
    (void)arg;
    (void)off;
    (void)len;
    return FL_OK;
}

/* Probes every parsed index entry with a few prefixes. */
static void
probe_index(const uint8_t *ix, size_t len)
{
    static const char *ps[] = {"0.0.0.0/0",  "10.1.2.3",      "10.1.0.0/20",
                               "10.0.0.0/8", "2001:db8::/40", "2001:db8::1",
                               "::/64"};
    struct fl_blk *blks;
    size_t n;

    if (fl_seg_index_parse(ix, len, &blks, &n) != FL_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof(ps) / sizeof(ps[0]); j++) {
            struct fl_prefix p;

            if (fl_prefix_parse(ps[j], &p) == FL_OK) {
                (void)fl_blk_may_have_prefix(&blks[i], &p);
            }
        }
    }
    free(blks);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t flows = 0;
    struct fl_walk_ops ops = {good, bad, &flows};
    uint64_t hour;
    uint64_t ixoff;
    uint64_t ixlen;
    uint64_t tail;
    size_t end = size;
    int footer;

    fl_log_set_level(FL_LOG_ERR - 1);
    if (fl_seg_header_parse(data, size, &hour) != FL_OK) {
        return 0;
    }
    footer = fl_seg_footer_parse(data, size, &ixoff, &ixlen);
    if (footer == FL_OK) {
        probe_index(data + ixoff, (size_t)ixlen);
        end = (size_t)ixoff;
    } else if (footer == FL_EFORMAT) {
        end = size - FL_FOOT_LEN;
    }
    (void)fl_seg_walk(data, FL_SEG_HEADER_LEN, end, &ops, &tail);
    return 0;
}
