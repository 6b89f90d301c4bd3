/*
 * The decoder's front door: version dispatch, sources keyed by (exporter,
 * domain) under a ceiling, sequence gaps per version, and statistics.
 */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "test_sensor_msg.h"

TestSuite(sensor_decode, .init = fixture_setup, .fini = fixture_teardown);

/* A v5 datagram of n records, engine 3/7, sampled 1 in 10. */
static void
v5_datagram(uint32_t seq, uint16_t n)
{
    memset(&msg, 0, sizeof(msg));
    mb_u16(&msg, 5);
    mb_u16(&msg, n);
    mb_u32(&msg, 100000);
    mb_u32(&msg, 1700000000);
    mb_u32(&msg, 0);
    mb_u32(&msg, seq);
    mb_u8(&msg, 3);
    mb_u8(&msg, 7);
    mb_u16(&msg, 10);
    for (uint16_t i = 0; i < n; i++) {
        mb_u32(&msg, 0x0a000001);
        mb_u32(&msg, 0x0a000002);
        mb_u32(&msg, 0);
        mb_u16(&msg, 1);
        mb_u16(&msg, 2);
        mb_u32(&msg, 4);    /* packets */
        mb_u32(&msg, 400);  /* bytes */
        mb_u32(&msg, 9000); /* first */
        mb_u32(&msg, 9500); /* last */
        mb_u16(&msg, (uint16_t)(1000 + i));
        mb_u16(&msg, 80);
        mb_u8(&msg, 0);
        mb_u8(&msg, 0x12);
        mb_u8(&msg, 6);
        mb_u8(&msg, 0);
        mb_u32(&msg, 0);
        mb_u32(&msg, 0);
    }
}

Test(sensor_decode, has_the_documented_default_limits)
{
    struct fl_decoder_limits l;

    fl_decoder_limits_default(&l);
    cr_assert_eq(l.max_sources, 4096);
    cr_assert_eq(l.max_templates, 1024);
    cr_assert_eq(l.max_pending, 4096);
    cr_assert_eq(l.max_pending_bytes, 16u << 20);
    cr_assert_eq(l.pending_age_ms, 60000);
}

Test(sensor_decode, names_every_error_kind)
{
    cr_assert_str_eq(fl_decode_error_name(FL_DE_SHORT), "short");
    cr_assert_str_eq(fl_decode_error_name(FL_DE_TEMPLATE_LIMIT),
                     "template_limit");
    for (int e = 0; e < FL_DE_COUNT; e++) {
        cr_assert_not_null(fl_decode_error_name((enum fl_decode_error)e));
        cr_assert_str_neq(fl_decode_error_name((enum fl_decode_error)e),
                          "unknown");
    }
    cr_assert_str_eq(fl_decode_error_name(FL_DE_COUNT), "unknown");
}

Test(sensor_decode, refuses_unknown_versions)
{
    static const uint8_t v3[] = {0, 3, 0, 0, 0, 0, 0, 0};

    cr_assert_eq(fl_decoder_feed(dec, &exp1, v3, sizeof(v3), 0, sink_fn, &snk),
                 FL_EVERSION);
    cr_assert_eq(stats_of(dec).errors[FL_DE_VERSION], 1);
    cr_assert_eq(stats_of(dec).datagrams, 1);
    cr_assert_eq(stats_of(dec).sources, 0);
}

Test(sensor_decode, counts_datagrams_shorter_than_their_header)
{
    static const uint8_t one[] = {0};
    static const uint8_t v9[10] = {0, 9};
    static const uint8_t ipfix[12] = {0, 10, 0, 12};
    static const uint8_t longer[16] = {0, 10, 0, 40};

    cr_assert_eq(fl_decoder_feed(dec, &exp1, one, 1, 0, sink_fn, &snk),
                 FL_ETRUNC);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, v9, 10, 0, sink_fn, &snk),
                 FL_ETRUNC);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, ipfix, 12, 0, sink_fn, &snk),
                 FL_ETRUNC);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, longer, 16, 0, sink_fn, &snk),
                 FL_ETRUNC);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SHORT], 4);
    cr_assert_eq(stats_of(dec).sources, 0);
}

Test(sensor_decode, sends_v5_to_the_v5_decoder_with_the_engine_as_domain)
{
    v5_datagram(0, 2);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk),
                 FL_OK);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].domain, 0x0307);
    cr_assert_eq(snk.f[0].sampling, 10);
    cr_assert_eq(snk.f[1].src_port, 1001);
    cr_assert_eq(memcmp(&snk.f[0].exporter, &exp1, sizeof(exp1)), 0);
    cr_assert_eq(stats_of(dec).flows, 2);
    cr_assert_eq(stats_of(dec).sources, 1);
}

Test(sensor_decode, counts_v5_sequence_gaps_in_flows)
{
    v5_datagram(100, 2);
    fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk);
    v5_datagram(102, 2);
    fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk);
    cr_assert_eq(stats_of(dec).seq_gaps, 0);
    v5_datagram(110, 1);
    fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk);
    cr_assert_eq(stats_of(dec).seq_gaps, 1);
    cr_assert_eq(stats_of(dec).seq_lost, 6);
}

Test(sensor_decode, counts_a_bad_v5_datagram_without_a_source)
{
    v5_datagram(0, 2);
    cr_assert_neq(
        fl_decoder_feed(dec, &exp1, msg.b, msg.len - 1, 0, sink_fn, &snk),
        FL_OK);
    cr_assert_eq(snk.n, 0);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SHORT], 1);
}

/* An IPFIX message for template 256 with n basic records. */
static void
ipfix_records(uint32_t seq, uint32_t domain, int n, bool with_template)
{
    mb_ipfix(&msg, seq, domain);
    if (with_template) {
        mb_set(&msg, 2);
        mb_basic_template(&msg, 256);
        mb_set_end(&msg);
    }
    mb_set(&msg, 256);
    for (int i = 0; i < n; i++) {
        mb_basic_record(&msg, (uint16_t)i, 80, 1, 1);
    }
    mb_set_end(&msg);
}

Test(sensor_decode, counts_ipfix_sequence_gaps_in_records)
{
    ipfix_records(0, 1, 3, true);
    feed(dec, &exp1, &msg, 0, &snk);
    ipfix_records(3, 1, 2, false);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(stats_of(dec).seq_gaps, 0);
    ipfix_records(10, 1, 1, false);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(stats_of(dec).seq_gaps, 1);
    cr_assert_eq(stats_of(dec).seq_lost, 5);
    cr_assert_eq(snk.n, 6);
}

Test(sensor_decode, counts_v9_sequence_gaps_in_packets)
{
    for (uint32_t seq = 10; seq < 12; seq++) {
        mb_v9(&msg, seq, 0);
        mb_set(&msg, 0);
        mb_basic_template(&msg, 256);
        mb_set_end(&msg);
        mb_set(&msg, 256);
        mb_basic_record(&msg, 1, 2, 1, 1);
        mb_basic_record(&msg, 1, 2, 1, 1);
        mb_set_end(&msg);
        feed(dec, &exp1, &msg, 0, &snk);
    }
    cr_assert_eq(stats_of(dec).seq_gaps, 0);
    mb_v9(&msg, 14, 0);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(stats_of(dec).seq_gaps, 1);
    cr_assert_eq(stats_of(dec).seq_lost, 2);
}

Test(sensor_decode, refuses_datagrams_from_too_many_sources)
{
    struct fl_decoder_limits lim;

    fl_decoder_free(dec);
    fl_decoder_limits_default(&lim);
    lim.max_sources = 2;
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);

    for (uint32_t i = 0; i < 3; i++) {
        struct fl_addr e = exporter_v4(0xc0000201 + i);

        ipfix_records(0, 1, 1, true);
        cr_assert_eq(feed(dec, &e, &msg, 0, &snk), i < 2 ? FL_OK : FL_ELIMIT);
    }
    /* A new domain of a known exporter is a new source too. */
    ipfix_records(0, 2, 1, true);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_ELIMIT);
    v5_datagram(0, 1);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk),
                 FL_ELIMIT);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(stats_of(dec).sources, 2);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SOURCE_LIMIT], 3);
    cr_assert_eq(stats_of(dec).datagrams, 5);
}

struct seen {
    int n;
    uint64_t flows[4];
    uint32_t domains[4];
    uint32_t templates[4];
};

static void
each(void *arg, const struct fl_source_stats *s)
{
    struct seen *w = arg;

    if (w->n < 4) {
        w->flows[w->n] = s->flows;
        w->domains[w->n] = s->domain;
        w->templates[w->n] = s->templates;
    }
    w->n++;
}

Test(sensor_decode, reports_counters_per_source)
{
    struct seen w = {0};

    ipfix_records(0, 1, 3, true);
    feed(dec, &exp1, &msg, 0, &snk);
    ipfix_records(0, 2, 1, true);
    feed(dec, &exp1, &msg, 0, &snk);
    fl_decoder_each_source(dec, each, &w);

    cr_assert_eq(w.n, 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(w.flows[i], w.domains[i] == 1 ? 3 : 1);
        cr_assert_eq(w.templates[i], 1);
    }
    cr_assert_eq(stats_of(dec).flows, 4);
    cr_assert_eq(stats_of(dec).templates, 2);
}

Test(sensor_decode, keeps_many_sources_apart)
{
    for (uint32_t i = 0; i < 1000; i++) {
        struct fl_addr e = exporter_v4(0x0a000000 + i % 250);

        ipfix_records(0, i / 250, 1, true);
        cr_assert_eq(feed(dec, &e, &msg, 0, &snk), FL_OK);
    }
    cr_assert_eq(stats_of(dec).sources, 1000);
    for (uint32_t i = 0; i < 1000; i++) {
        struct fl_addr e = exporter_v4(0x0a000000 + i % 250);
        struct fl_source *s;

        cr_assert_eq(fl_source_get(dec, &e, i / 250, false, &s), FL_OK);
        cr_assert_eq(s->domain, i / 250);
        cr_assert_eq(s->flows, 1);
    }
}

Test(sensor_decode, forgets_templates_when_a_source_changes_version)
{
    ipfix_records(0, 1, 1, true);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(stats_of(dec).templates, 1);

    /* v9 source id 1 of the same exporter is the same source. */
    mb_v9(&msg, 0, 1);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_set_end(&msg);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(stats_of(dec).templates, 0);
    cr_assert_eq(stats_of(dec).sources, 1);
    cr_assert_eq(stats_of(dec).pending, 1);
}

Test(sensor_decode, saves_no_v5_sources)
{
    uint8_t *buf;
    size_t len;

    v5_datagram(0, 1);
    fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk);
    cr_assert_eq(fl_decoder_templates_save(dec, &buf, &len), FL_OK);
    cr_assert_eq(len, 20);
    cr_assert_eq(fl_decoder_templates_load(dec, buf, len), FL_OK);
    free(buf);
}
