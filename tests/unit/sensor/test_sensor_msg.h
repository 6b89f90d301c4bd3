/*
 * Helpers the decoder tests share: building NetFlow v9 and IPFIX messages
 * by hand, byte by byte, collecting the flows a decoder delivers, and the
 * common fixture.
 */
#ifndef FL_TEST_SENSOR_MSG_H
#define FL_TEST_SENSOR_MSG_H

#include "sensor_int.h"

#include <criterion/criterion.h>
#include <string.h>

/* A message under construction; set_at is where the open set begins. */
struct mb {
    uint8_t b[65536];
    size_t len;
    size_t set_at;
    uint16_t version;
};

static inline void
mb_u8(struct mb *m, uint8_t v)
{
    m->b[m->len++] = v;
}

static inline void
mb_u16(struct mb *m, uint16_t v)
{
    fl_put_be16(m->b + m->len, v);
    m->len += 2;
}

static inline void
mb_u32(struct mb *m, uint32_t v)
{
    fl_put_be32(m->b + m->len, v);
    m->len += 4;
}

static inline void
mb_u64(struct mb *m, uint64_t v)
{
    fl_put_be64(m->b + m->len, v);
    m->len += 8;
}

static inline void
mb_v9(struct mb *m, uint32_t seq, uint32_t source_id)
{
    memset(m, 0, sizeof(*m));
    m->version = 9;
    mb_u16(m, 9);
    mb_u16(m, 0);          /* count: left 0 unless a test sets it */
    mb_u32(m, 100000);     /* sysUptime */
    mb_u32(m, 1700000000); /* unix secs */
    mb_u32(m, seq);
    mb_u32(m, source_id);
}

static inline void
mb_ipfix(struct mb *m, uint32_t seq, uint32_t domain)
{
    memset(m, 0, sizeof(*m));
    m->version = 10;
    mb_u16(m, 10);
    mb_u16(m, 0); /* length: patched by mb_end */
    mb_u32(m, 1700000000);
    mb_u32(m, seq);
    mb_u32(m, domain);
}

static inline void
mb_set(struct mb *m, uint16_t id)
{
    m->set_at = m->len;
    mb_u16(m, id);
    mb_u16(m, 0);
}

static inline void
mb_set_end(struct mb *m)
{
    fl_put_be16(m->b + m->set_at + 2, (uint16_t)(m->len - m->set_at));
}

static inline size_t
mb_end(struct mb *m)
{
    if (m->version == 10) {
        fl_put_be16(m->b + 2, (uint16_t)m->len);
    }
    return m->len;
}

/* A template record: id, count, then (id, len) pairs, no enterprise. */
static inline void
mb_template(struct mb *m, uint16_t id, size_t n, const uint16_t (*f)[2])
{
    mb_u16(m, id);
    mb_u16(m, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        mb_u16(m, f[i][0]);
        mb_u16(m, f[i][1]);
    }
}

/* The layout most tests use: v4 addresses, ports, proto, counters. */
static const uint16_t basic_fields[][2] = {
    {8, 4},  /* source address */
    {12, 4}, /* destination address */
    {7, 2},  /* source port */
    {11, 2}, /* destination port */
    {4, 1},  /* protocol */
    {2, 8},  /* packets */
    {1, 8},  /* bytes */
};
#define BASIC_N (sizeof(basic_fields) / sizeof(basic_fields[0]))
#define BASIC_LEN 29

static inline void
mb_basic_template(struct mb *m, uint16_t id)
{
    mb_template(m, id, BASIC_N, basic_fields);
}

/* One record of the basic layout: 10.0.0.1:sport -> 10.0.0.2:dport. */
static inline void
mb_basic_record(struct mb *m, uint16_t sport, uint16_t dport, uint64_t pkts,
                uint64_t bytes)
{
    mb_u32(m, 0x0a000001);
    mb_u32(m, 0x0a000002);
    mb_u16(m, sport);
    mb_u16(m, dport);
    mb_u8(m, 6);
    mb_u64(m, pkts);
    mb_u64(m, bytes);
}

/* What a decoder delivered. */
#define SINK_MAX 256
struct sink {
    struct fl_flow f[SINK_MAX];
    size_t n;
};

static inline void
sink_fn(void *arg, const struct fl_flow *flow)
{
    struct sink *s = arg;

    if (s->n < SINK_MAX) {
        s->f[s->n] = *flow;
        s->f[s->n].extra = NULL;
    }
    s->n++;
}

static inline struct fl_addr
exporter_v4(uint32_t a)
{
    struct fl_addr x;

    fl_addr_from_v4(&x, a);
    return x;
}

static inline int
feed(struct fl_decoder *d, const struct fl_addr *exp, struct mb *m,
     uint64_t now_ms, struct sink *s)
{
    size_t len = mb_end(m);

    return fl_decoder_feed(d, exp, m->b, len, now_ms, sink_fn, s);
}

static inline struct fl_decoder_stats
stats_of(const struct fl_decoder *d)
{
    struct fl_decoder_stats st;

    fl_decoder_get_stats(d, &st);
    return st;
}

/* The fixture most decoder tests share: a decoder with default limits,
 * one IPv4 exporter, a sink for flows and a message being built. */
static struct fl_decoder *dec;
static struct fl_addr exp1;
static struct sink snk;
static struct mb msg;

static inline void
fixture_setup(void)
{
    cr_assert_eq(fl_decoder_new(NULL, &dec), FL_OK);
    exp1 = exporter_v4(0xc0000201);
    memset(&snk, 0, sizeof(snk));
}

static inline void
fixture_teardown(void)
{
    fl_decoder_free(dec);
}

#endif /* FL_TEST_SENSOR_MSG_H */
