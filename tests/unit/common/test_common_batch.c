/*
 * Signed batches: build, open and read back; heartbeats; the chain; and
 * the refusal of every single flipped byte and of a stranger's key.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static char dir[256];
static struct fl_seckey *key;
static struct fl_seckey *other;

static struct fl_seckey *
make_key(const char *name)
{
    struct fl_seckey *k = NULL;
    char path[300];
    char err[256] = "";

    cr_assert_eq(fl_key_generate(name, dir, err, sizeof(err)), FL_OK, "%s",
                 err);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    cr_assert_eq(fl_seckey_load(path, &k, err, sizeof(err)), FL_OK, "%s", err);
    return k;
}

static void
setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/fl-batch-XXXXXX", tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    key = make_key("edge-1");
    other = make_key("edge-2");
}

static void
teardown(void)
{
    char cmd[300];

    fl_seckey_free(key);
    fl_seckey_free(other);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(common_batch, .init = setup, .fini = teardown);

static const uint8_t extra_bytes[] = {0, 0, 0, 9, 0, 200, 0, 3, 'a', 'b', 'c'};

/* Deterministic, varied flows: v4 and v6, extremes, some with extra. */
static void
make_flows(struct fl_flow *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};

        fl_flow_clear(&f[i]);
        f[i].time_start = 1700000000000 + i * 10;
        f[i].time_end = f[i].time_start + (i % 7) * 1000;
        if (i % 3 == 0) {
            v6[15] = (uint8_t)i;
            fl_addr_from_v6(&f[i].src_addr, v6);
            fl_addr_from_v6(&f[i].dst_addr, v6);
        } else {
            fl_addr_from_v4(&f[i].src_addr, 0x0a000000u + (uint32_t)i);
            fl_addr_from_v4(&f[i].dst_addr, 0xc0000200u + (uint32_t)(i % 50));
        }
        fl_addr_from_v4(&f[i].exporter, 0xc0000201u);
        f[i].packets = i == 1 ? UINT64_MAX : i + 1;
        f[i].bytes = (i + 1) * 1500;
        f[i].src_port = (uint16_t)(1024 + i);
        f[i].dst_port = 443;
        f[i].proto = i % 2 ? 6 : 17;
        f[i].tcp_flags = (uint8_t)i;
        f[i].sampling = 1;
        f[i].in_if = (uint32_t)i;
        if (i % 4 == 1) {
            f[i].extra = extra_bytes;
            f[i].extra_len = sizeof(extra_bytes);
        }
    }
}

struct collect {
    uint8_t (*canon)[FL_CANON_MAX + 64];
    int *lens;
    size_t n;
    size_t cap;
};

static void
collect_one(void *arg, const struct fl_flow *f)
{
    struct collect *c = arg;

    cr_assert_lt(c->n, c->cap);
    c->lens[c->n] = fl_flow_canon(f, c->canon[c->n], sizeof(c->canon[0]));
    c->n++;
}

/* Records of batch b equal flows: their canonical forms, which cover
 * every field, are the same bytes. */
static void
check_round_trip(const uint8_t *b, size_t len, const struct fl_flow *flows,
                 size_t n)
{
    struct fl_batch_view v;
    struct collect c = {0};
    char err[256] = "";
    uint8_t want[FL_CANON_MAX + 64];

    cr_assert_eq(
        fl_batch_open(b, len, fl_seckey_public(key), &v, err, sizeof(err)),
        FL_OK, "%s", err);
    cr_assert_eq(v.st.records, n);
    c.cap = n + 1;
    c.canon = calloc(c.cap, sizeof(*c.canon));
    c.lens = calloc(c.cap, sizeof(*c.lens));
    cr_assert_eq(fl_batch_records(&v, collect_one, &c), FL_OK);
    cr_assert_eq(c.n, n);
    for (size_t i = 0; i < n; i++) {
        int wl = fl_flow_canon(&flows[i], want, sizeof(want));

        cr_assert_eq(c.lens[i], wl, "flow %zu", i);
        cr_assert_eq(memcmp(c.canon[i], want, (size_t)wl), 0, "flow %zu", i);
    }
    free(c.canon);
    free(c.lens);
}

Test(common_batch, round_trips_flows_through_build_open_and_records)
{
    size_t n = 1000;
    struct fl_flow *flows = calloc(n, sizeof(*flows));
    struct fl_chain chain;
    struct fl_statement losses = {0};
    struct fl_batch_view v;
    uint8_t *b = NULL;
    size_t len;

    make_flows(flows, n);
    fl_chain_init(&chain, "edge-1");
    losses.lost_socket = 7;
    losses.lost_spool = 2;
    cr_assert_eq(fl_batch_build(key, &chain, flows, n, &losses, &b, &len),
                 FL_OK);
    check_round_trip(b, len, flows, n);
    cr_assert_eq(fl_batch_open(b, len, fl_seckey_public(key), &v, NULL, 0),
                 FL_OK);
    cr_assert_eq(v.st.lost_socket, 7);
    cr_assert_eq(v.st.lost_spool, 2);
    cr_assert_eq(v.st.hash, FL_HASH_BATCH);
    cr_assert_eq(v.st.time_first, 1700000000000);
    {
        uint64_t last = 0;

        for (size_t i = 0; i < n; i++) {
            last = flows[i].time_end > last ? flows[i].time_end : last;
        }
        cr_assert_eq(v.st.time_last, last);
    }
    free(b);
    free(flows);
}

Test(common_batch, accepts_a_heartbeat_without_records)
{
    struct fl_chain chain;
    struct fl_batch_view v;
    uint8_t *b = NULL;
    size_t len;
    char sensor[65];
    uint8_t id[FL_KEYID_LEN];

    fl_chain_init(&chain, "edge-1");
    cr_assert_eq(fl_batch_build(key, &chain, NULL, 0, NULL, &b, &len), FL_OK);
    check_round_trip(b, len, NULL, 0);
    cr_assert_eq(fl_batch_open(b, len, fl_seckey_public(key), &v, NULL, 0),
                 FL_OK);
    cr_assert_eq(v.st.records, 0);
    cr_assert_eq(fl_batch_peek(b, len, sensor, id), FL_OK);
    cr_assert_str_eq(sensor, "edge-1");
    cr_assert_eq(memcmp(id, fl_seckey_public(key)->id, FL_KEYID_LEN), 0);
    free(b);
}

static void
count_one(void *arg, const struct fl_flow *f)
{
    (void)f;
    (*(int *)arg)++;
}

Test(common_batch, refuses_every_single_flipped_byte)
{
    struct fl_flow flows[6];
    struct fl_chain chain;
    struct fl_batch_view v;
    uint8_t *b = NULL;
    size_t len;
    int seen;

    make_flows(flows, 6);
    fl_chain_init(&chain, "edge-1");
    cr_assert_eq(fl_batch_build(key, &chain, flows, 6, NULL, &b, &len), FL_OK);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            int rc;

            b[i] ^= (uint8_t)(1u << bit);
            rc = fl_batch_open(b, len, fl_seckey_public(key), &v, NULL, 0);
            if (rc == FL_OK) {
                seen = 0;
                rc = fl_batch_records(&v, count_one, &seen);
                cr_assert_eq(seen, 0, "byte %zu: records leaked", i);
            }
            cr_assert_neq(rc, FL_OK, "byte %zu bit %d accepted", i, bit);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Truncated or extended by one byte: refused too. */
    cr_assert_neq(fl_batch_open(b, len - 1, fl_seckey_public(key), &v, NULL, 0),
                  FL_OK);
    cr_assert_eq(fl_batch_open(b, len, fl_seckey_public(key), &v, NULL, 0),
                 FL_OK);
    free(b);
}

Test(common_batch, refuses_another_sensors_key)
{
    struct fl_flow flows[3];
    struct fl_chain chain;
    struct fl_batch_view v;
    uint8_t *b = NULL;
    size_t len;
    char err[256] = "";

    make_flows(flows, 3);
    fl_chain_init(&chain, "edge-1");
    cr_assert_eq(fl_batch_build(key, &chain, flows, 3, NULL, &b, &len), FL_OK);
    cr_assert_eq(
        fl_batch_open(b, len, fl_seckey_public(other), &v, err, sizeof(err)),
        FL_EAUTH);
    cr_assert_not_null(strstr(err, "signature"), "%s", err);
    free(b);

    /* Signed by edge-2's key while claiming to be edge-1: the signature
     * holds, but the statement names another sensor. */
    fl_chain_init(&chain, "edge-1");
    cr_assert_eq(fl_batch_build(other, &chain, flows, 3, NULL, &b, &len),
                 FL_OK);
    cr_assert_eq(
        fl_batch_open(b, len, fl_seckey_public(other), &v, err, sizeof(err)),
        FL_EAUTH);
    cr_assert_not_null(strstr(err, "names sensor edge-1"), "%s", err);
    free(b);
}

Test(common_batch, chains_sequence_and_previous_statement)
{
    struct fl_flow flows[4];
    struct fl_chain chain;
    struct fl_batch_view v[3];
    uint8_t *b[3];
    size_t len[3];
    uint8_t id[FL_HASH_LEN];
    uint8_t zero[FL_HASH_LEN] = {0};

    make_flows(flows, 4);
    fl_chain_init(&chain, "edge-1");
    chain.next_sequence = 41;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(fl_batch_build(key, &chain, flows, (size_t)i + 1, NULL,
                                    &b[i], &len[i]),
                     FL_OK);
        cr_assert_eq(
            fl_batch_open(b[i], len[i], fl_seckey_public(key), &v[i], NULL, 0),
            FL_OK);
    }
    cr_assert_eq(memcmp(v[0].st.previous, zero, FL_HASH_LEN), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(v[i].st.sequence, 41u + (unsigned)i);
        cr_assert_eq(memcmp(v[i].st.session, v[0].st.session, 16), 0);
        fl_batch_id(&v[i], id);
        if (i < 2) {
            cr_assert_eq(memcmp(v[i + 1].st.previous, id, FL_HASH_LEN), 0);
        } else {
            cr_assert_eq(memcmp(chain.previous, id, FL_HASH_LEN), 0);
        }
    }
    /* The id is the hash of the statement's exact bytes. */
    fl_hash(FL_HASH_BATCH, v[1].statement, v[1].statement_len, id);
    cr_assert_eq(memcmp(v[2].st.previous, id, FL_HASH_LEN), 0);
    cr_assert_eq(chain.next_sequence, 44);
    for (int i = 0; i < 3; i++) {
        free(b[i]);
    }
}
