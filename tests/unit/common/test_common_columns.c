/*
 * The columnar batch payload: every field round trips for IPv4 and IPv6,
 * extremes, empty and single-record batches; the decoder refuses wrong
 * counts, truncations, damaged columns and oversize frames, never crashes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common.h"

#define MAX_DECODE (64u << 20)

/* ---- flows to encode ------------------------------------------------- */

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Any value at all, with a bias to 0, small and maximal values. */
static uint64_t
any(uint64_t *s, unsigned bits)
{
    uint64_t mask = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;

    switch (rnd(s) % 4) {
    case 0:
        return 0;
    case 1:
        return mask;
    case 2:
        return rnd(s) % 300;
    default:
        return rnd(s) & mask;
    }
}

static void
any_addr(uint64_t *s, struct fl_addr *a, bool v6)
{
    uint64_t x = rnd(s);
    uint64_t y = rnd(s);

    if (v6) {
        memcpy(a->b, &x, 8);
        memcpy(a->b + 8, &y, 8);
    } else {
        /* Few distinct values, so the dictionary sees repeats. */
        fl_addr_from_v4(a, (uint32_t)(0xc0000200 + x % 40));
    }
}

/* Fills every field, optional ones in about half of the flows. */
static void
any_flow(uint64_t *s, struct fl_flow *f, bool v6, uint8_t *extra)
{
    fl_flow_clear(f);
    f->time_start = any(s, 64);
    f->time_end = any(s, 64);
    any_addr(s, &f->src_addr, v6);
    any_addr(s, &f->dst_addr, v6);
    any_addr(s, &f->next_hop, v6 && rnd(s) % 2);
    any_addr(s, &f->exporter, false);
    f->packets = any(s, 64);
    f->bytes = any(s, 64);
    f->in_if = (uint32_t)any(s, 32);
    f->out_if = (uint32_t)any(s, 32);
    f->src_as = (uint32_t)any(s, 32);
    f->dst_as = (uint32_t)any(s, 32);
    f->mpls = (uint32_t)any(s, 20);
    f->domain = (uint32_t)any(s, 32);
    f->sampling = (uint32_t)any(s, 32);
    f->src_port = (uint16_t)any(s, 16);
    f->dst_port = (uint16_t)any(s, 16);
    f->vlan = (uint16_t)any(s, 16);
    f->proto = (uint8_t)any(s, 8);
    f->tcp_flags = (uint8_t)any(s, 8);
    f->tos = (uint8_t)any(s, 8);
    f->direction = (uint8_t)any(s, 8);
    f->fw_event = (uint8_t)any(s, 8);
    if (rnd(s) % 2) {
        any_addr(s, &f->xlate_src_addr, v6);
        any_addr(s, &f->xlate_dst_addr, v6);
        f->xlate_src_port = (uint16_t)any(s, 16);
        f->xlate_dst_port = (uint16_t)any(s, 16);
    }
    if (rnd(s) % 2) {
        f->rev_packets = any(s, 64);
        f->rev_bytes = any(s, 64);
    }
    if (extra != NULL && rnd(s) % 2) {
        f->extra_len = (uint32_t)(rnd(s) % 40);
        for (uint32_t i = 0; i < f->extra_len; i++) {
            extra[i] = (uint8_t)rnd(s);
        }
        f->extra = extra;
    }
}

/* ---- what the decoder hands out -------------------------------------- */

struct got {
    struct fl_flow *flows;
    uint8_t **extras;
    size_t n;
    size_t cap;
};

static void
on_flow(void *arg, const struct fl_flow *f)
{
    struct got *g = arg;

    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->flows = realloc(g->flows, g->cap * sizeof(*g->flows));
        g->extras = realloc(g->extras, g->cap * sizeof(*g->extras));
        cr_assert(g->flows && g->extras);
    }
    g->flows[g->n] = *f;
    g->extras[g->n] = NULL;
    if (f->extra_len > 0) {
        /* extra is borrowed for the call only: keep a copy. */
        g->extras[g->n] = malloc(f->extra_len);
        memcpy(g->extras[g->n], f->extra, f->extra_len);
        g->flows[g->n].extra = g->extras[g->n];
    }
    g->n++;
}

static void
got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->extras[i]);
    }
    free(g->flows);
    free(g->extras);
    memset(g, 0, sizeof(*g));
}

/* Same record, field for field: compares the canonical encodings. */
static void
assert_same_flow(const struct fl_flow *a, const struct fl_flow *b, size_t i)
{
    static uint8_t ca[FL_CANON_MAX + 2048];
    static uint8_t cb[FL_CANON_MAX + 2048];
    int la = fl_flow_canon(a, ca, sizeof(ca));
    int lb = fl_flow_canon(b, cb, sizeof(cb));

    cr_assert_gt(la, 0);
    cr_assert_eq(la, lb, "record %zu: length %d, want %d", i, lb, la);
    for (int k = 0; k < la; k++) {
        cr_assert_eq(ca[k], cb[k], "record %zu: canon byte %d differs", i, k);
    }
}

static void
secret_fill(uint8_t secret[FL_BATCH_SECRET_LEN], uint8_t seed)
{
    for (size_t i = 0; i < FL_BATCH_SECRET_LEN; i++) {
        secret[i] = (uint8_t)(seed + i * 7);
    }
}

/* Encodes, decodes and checks every record and the secret. */
static void
round_trip(const struct fl_flow *flows, size_t n, int level)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    uint8_t back[FL_BATCH_SECRET_LEN];
    struct got g = {0};
    uint8_t *payload;
    size_t len;

    secret_fill(secret, (uint8_t)n);
    cr_assert_eq(fl_columns_encode(flows, n, secret, level, &payload, &len),
                 FL_OK);
    cr_assert_eq(fl_columns_decode(payload, len, (uint32_t)n, MAX_DECODE, back,
                                   on_flow, &g),
                 FL_OK);
    cr_assert_eq(memcmp(secret, back, sizeof(secret)), 0);
    cr_assert_eq(g.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_same_flow(&flows[i], &g.flows[i], i);
    }
    got_free(&g);
    free(payload);
}

static void
round_trip_random(uint64_t seed, size_t n, int v6_every)
{
    struct fl_flow *flows = calloc(n, sizeof(*flows));
    uint8_t *extras = malloc(n * 40);
    uint64_t s = seed;

    cr_assert(flows && extras);
    for (size_t i = 0; i < n; i++) {
        any_flow(&s, &flows[i], v6_every > 0 && i % (size_t)v6_every == 0,
                 extras + i * 40);
    }
    round_trip(flows, n, 1);
    round_trip(flows, n, 3);
    free(flows);
    free(extras);
}

/* ---- round trips ------------------------------------------------------ */

Test(common_columns, round_trips_every_field_of_ipv4_flows)
{
    round_trip_random(1, 3000, 0);
}

Test(common_columns, round_trips_every_field_of_ipv6_flows)
{
    round_trip_random(2, 3000, 1);
}

Test(common_columns, round_trips_mixed_ipv4_and_ipv6_flows)
{
    round_trip_random(3, 5000, 3);
}

/* Every field at 0, then at its maximum, with no extra, then 1024 bytes. */
Test(common_columns, round_trips_zero_and_maximal_values)
{
    static uint8_t extra[1024];
    struct fl_flow f[4];

    memset(extra, 0xff, sizeof(extra));
    memset(&f[0], 0, sizeof(f[0]));
    memset(&f[1], 0xff, sizeof(f[1]));
    f[1].extra = extra;
    f[1].extra_len = sizeof(extra);
    f[2] = f[0];
    f[2].extra = extra;
    f[2].extra_len = 1;
    f[3] = f[1];
    f[3].extra = NULL;
    f[3].extra_len = 0;
    round_trip(f, 4, 1);
    round_trip(&f[1], 1, 1);
}

Test(common_columns, keeps_an_end_before_the_start_as_stored)
{
    struct fl_flow f[3];

    fl_flow_clear(&f[0]);
    f[0].time_start = 1700000000000ull;
    f[0].time_end = 5;
    f[1] = f[0];
    f[1].time_start = UINT64_MAX;
    f[1].time_end = 0;
    f[2] = f[0];
    f[2].time_start = 0;
    f[2].time_end = UINT64_MAX;
    round_trip(f, 3, 1);
}

Test(common_columns, encodes_an_empty_batch_as_a_heartbeat)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    uint8_t back[FL_BATCH_SECRET_LEN] = {0};
    struct got g = {0};
    uint8_t *payload;
    size_t len;

    secret_fill(secret, 9);
    cr_assert_eq(fl_columns_encode(NULL, 0, secret, 3, &payload, &len), FL_OK);
    cr_assert_lt(len, 120, "an empty batch is small: %zu bytes", len);
    cr_assert_eq(
        fl_columns_decode(payload, len, 0, MAX_DECODE, back, on_flow, &g),
        FL_OK);
    cr_assert_eq(g.n, 0);
    cr_assert_eq(memcmp(secret, back, sizeof(secret)), 0);
    cr_assert_eq(
        fl_columns_decode(payload, len, 1, MAX_DECODE, back, on_flow, &g),
        FL_EFORMAT);
    free(payload);
}

Test(common_columns, round_trips_one_record)
{
    uint64_t s = 77;
    uint8_t extra[40];
    struct fl_flow f;

    any_flow(&s, &f, true, extra);
    round_trip(&f, 1, 1);
    any_flow(&s, &f, false, extra);
    round_trip(&f, 1, 19);
}

Test(common_columns, refuses_more_records_than_the_maximum)
{
    static struct fl_flow one;
    uint8_t secret[FL_BATCH_SECRET_LEN] = {0};
    uint8_t *payload = (uint8_t *)&one;
    size_t len = 1;

    /* Refused before any flow is read, so one flow stands for them all. */
    cr_assert_eq(fl_columns_encode(&one, FL_BATCH_MAX_RECORDS + 1, secret, 1,
                                   &payload, &len),
                 FL_ELIMIT);
    cr_assert_null(payload);
    cr_assert_eq(len, 0);
}

/* ---- refusals ---------------------------------------------------------- */

/* A payload of n random flows, freed by the caller. */
static uint8_t *
sample_payload(size_t n, uint64_t seed, size_t *len)
{
    struct fl_flow *flows = calloc(n + 1, sizeof(*flows));
    uint8_t *extras = malloc((n + 1) * 40);
    uint8_t secret[FL_BATCH_SECRET_LEN];
    uint8_t *payload;
    uint64_t s = seed;

    for (size_t i = 0; i < n; i++) {
        any_flow(&s, &flows[i], i % 2 == 1, extras + i * 40);
    }
    secret_fill(secret, 1);
    cr_assert_eq(fl_columns_encode(flows, n, secret, 1, &payload, len), FL_OK);
    free(flows);
    free(extras);
    return payload;
}

/* Decodes damaged bytes: an error, or exactly n records; never a crash. */
static int
decode_damaged(const uint8_t *p, size_t len, uint32_t n)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    struct got g = {0};
    int rc = fl_columns_decode(p, len, n, MAX_DECODE, secret, on_flow, &g);

    cr_assert(rc == FL_OK || rc == FL_EFORMAT || rc == FL_EVERSION ||
                  rc == FL_ELIMIT,
              "unexpected %d", rc);
    if (rc == FL_OK) {
        cr_assert_eq(g.n, n);
    }
    got_free(&g);
    return rc;
}

Test(common_columns, refuses_a_wrong_expected_count)
{
    size_t len;
    uint8_t *p = sample_payload(20, 5, &len);
    uint8_t secret[FL_BATCH_SECRET_LEN];
    struct got g = {0};

    cr_assert_eq(fl_columns_decode(p, len, 19, MAX_DECODE, secret, on_flow, &g),
                 FL_EFORMAT);
    cr_assert_eq(fl_columns_decode(p, len, 21, MAX_DECODE, secret, on_flow, &g),
                 FL_EFORMAT);
    cr_assert_eq(g.n, 0, "nothing is delivered from a refused batch");
    cr_assert_eq(decode_damaged(p, len, 20), FL_OK);
    free(p);
}

Test(common_columns, refuses_every_truncation)
{
    size_t len;
    uint8_t *p = sample_payload(30, 6, &len);

    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *q = malloc(cut + 1);

        memcpy(q, p, cut);
        cr_assert_neq(decode_damaged(q, cut, 30), FL_OK, "cut at %zu", cut);
        free(q);
    }
    free(p);
}

Test(common_columns, refuses_an_unknown_version_and_trailing_bytes)
{
    size_t len;
    uint8_t *p = sample_payload(3, 8, &len);
    uint8_t *q = malloc(len + 1);

    memcpy(q, p, len);
    q[len] = 0;
    cr_assert_eq(decode_damaged(q, len + 1, 3), FL_EFORMAT);
    q[0] = 2;
    cr_assert_eq(decode_damaged(q, len, 3), FL_EVERSION);
    free(q);
    free(p);
}

Test(common_columns, survives_random_flips_of_the_compressed_bytes)
{
    size_t len;
    uint8_t *p = sample_payload(40, 10, &len);
    uint64_t s = 12345;
    int refused = 0;

    for (int trial = 0; trial < 3000; trial++) {
        uint8_t *q = malloc(len);
        int flips = 1 + (int)(rnd(&s) % 3);

        memcpy(q, p, len);
        for (int k = 0; k < flips; k++) {
            q[rnd(&s) % len] ^= (uint8_t)(1 + rnd(&s) % 255);
        }
        refused += decode_damaged(q, len, 40) != FL_OK;
        free(q);
    }
    cr_assert_gt(refused, 0, "some damage must be noticed");
    free(p);
}

/* Re-compresses a damaged column block, so the column checks are reached
 * and not only zstd's. */
static uint8_t *
repack(const uint8_t *head, const uint8_t *raw, size_t rawlen, size_t *len)
{
    size_t bound = ZSTD_compressBound(rawlen);
    uint8_t *q = malloc(37 + bound);
    size_t z;

    memcpy(q, head, 37);
    z = ZSTD_compress(q + 37, bound, raw, rawlen, 1);
    cr_assert(!ZSTD_isError(z));
    *len = 37 + z;
    return q;
}

Test(common_columns, survives_random_flips_of_the_column_block)
{
    size_t len;
    uint8_t *p = sample_payload(40, 11, &len);
    unsigned long long rawlen = ZSTD_getFrameContentSize(p + 37, len - 37);
    uint8_t *raw = malloc(rawlen);
    uint8_t *bad = malloc(rawlen);
    uint64_t s = 999;
    int refused = 0;

    cr_assert_eq(ZSTD_decompress(raw, rawlen, p + 37, len - 37), rawlen);
    for (int trial = 0; trial < 4000; trial++) {
        int flips = 1 + (int)(rnd(&s) % 3);
        uint8_t *q;
        size_t qlen;

        memcpy(bad, raw, rawlen);
        for (int k = 0; k < flips; k++) {
            bad[rnd(&s) % rawlen] ^= (uint8_t)(1 + rnd(&s) % 255);
        }
        /* Cutting the block short is damage too. */
        q = repack(p, bad, trial % 5 ? rawlen : rnd(&s) % rawlen, &qlen);
        refused += decode_damaged(q, qlen, 40) != FL_OK;
        free(q);
    }
    cr_assert_gt(refused, 2000, "most damage is noticed: %d", refused);
    free(raw);
    free(bad);
    free(p);
}

Test(common_columns, refuses_to_decompress_past_the_limit)
{
    size_t len;
    uint8_t *p = sample_payload(100, 12, &len);
    unsigned long long rawlen = ZSTD_getFrameContentSize(p + 37, len - 37);
    uint8_t secret[FL_BATCH_SECRET_LEN];
    struct got g = {0};

    cr_assert_eq(
        fl_columns_decode(p, len, 100, (size_t)rawlen - 1, secret, on_flow, &g),
        FL_ELIMIT);
    cr_assert_eq(
        fl_columns_decode(p, len, 100, (size_t)rawlen, secret, on_flow, &g),
        FL_OK);
    cr_assert_eq(g.n, 100);
    got_free(&g);
    free(p);
}

Test(common_columns, refuses_a_frame_that_claims_a_terabyte)
{
    /* Version, count 0, secret, then a zstd frame declaring 2^40 bytes
     * of content in a single one-byte RLE block. */
    uint8_t p[37 + 4 + 1 + 8 + 3 + 1] = {1};
    uint8_t *z = p + 37;
    uint8_t secret[FL_BATCH_SECRET_LEN];
    struct got g = {0};

    memcpy(z, "\x28\xb5\x2f\xfd\xe0", 5);
    memcpy(z + 5, "\x00\x00\x00\x00\x00\x01\x00\x00", 8);
    memcpy(z + 13, "\x0b\x00\x00\x00", 4);
    cr_assert_eq(ZSTD_getFrameContentSize(z, sizeof(p) - 37), 1ull << 40);
    cr_assert_eq(
        fl_columns_decode(p, sizeof(p), 0, MAX_DECODE, secret, on_flow, &g),
        FL_ELIMIT);
    cr_assert_eq(g.n, 0);
}

/* ---- threads ----------------------------------------------------------- */

struct job {
    uint64_t seed;
    uint8_t *payload;
    size_t len;
};

static void *
encode_job(void *arg)
{
    struct job *j = arg;

    j->payload = sample_payload(500, j->seed, &j->len);
    return NULL;
}

Test(common_columns, encodes_the_same_bytes_on_every_thread)
{
    struct job a = {21, NULL, 0};
    struct job b = {21, NULL, 0};
    pthread_t ta;
    pthread_t tb;
    size_t len;
    uint8_t *p;

    cr_assert_eq(pthread_create(&ta, NULL, encode_job, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, encode_job, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    p = sample_payload(500, 21, &len);
    cr_assert_eq(a.len, len);
    cr_assert_eq(b.len, len);
    cr_assert_eq(memcmp(a.payload, p, len), 0);
    cr_assert_eq(memcmp(b.payload, p, len), 0);
    cr_assert_eq(decode_damaged(p, len, 500), FL_OK);
    free(a.payload);
    free(b.payload);
    free(p);
}
