/*
 * Walking v9 and IPFIX messages: options data and sampling, data held
 * until its template arrives, padding, and every malformed set length.
 */
#include <criterion/criterion.h>

#include "test_sensor_msg.h"

TestSuite(sensor_ipfix, .init = fixture_setup, .fini = fixture_teardown);

static void
renew(const struct fl_decoder_limits *lim)
{
    fl_decoder_free(dec);
    cr_assert_eq(fl_decoder_new(lim, &dec), FL_OK);
}

/* A v9 options template: one system scope, then the given fields. */
static void
v9_options_template(uint16_t id, size_t n, const uint16_t (*f)[2])
{
    mb_set(&msg, 1);
    mb_u16(&msg, id);
    mb_u16(&msg, 4);
    mb_u16(&msg, (uint16_t)(n * 4));
    mb_u16(&msg, 1); /* scope: system */
    mb_u16(&msg, 4);
    for (size_t i = 0; i < n; i++) {
        mb_u16(&msg, f[i][0]);
        mb_u16(&msg, f[i][1]);
    }
    mb_u16(&msg, 0); /* padding to 32 bits */
    mb_set_end(&msg);
}

Test(sensor_ipfix, applies_v9_options_sampling_to_packets_and_bytes)
{
    static const uint16_t opt[][2] = {{34, 4}, {35, 1}};

    mb_v9(&msg, 1, 0);
    v9_options_template(257, 2, opt);
    mb_set(&msg, 257);
    mb_u32(&msg, 0);   /* system scope */
    mb_u32(&msg, 100); /* one packet in 100 */
    mb_u8(&msg, 2);
    mb_u8(&msg, 0); /* padding */
    mb_u16(&msg, 0);
    mb_set_end(&msg);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 3, 150);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 1);
    cr_assert_eq(snk.f[0].sampling, 100);
    cr_assert_eq(snk.f[0].packets, 300);
    cr_assert_eq(snk.f[0].bytes, 15000);
    cr_assert_eq(stats_of(dec).flows, 1);
}

Test(sensor_ipfix, looks_up_the_interval_of_a_v9_sampler_id)
{
    static const uint16_t opt[][2] = {{48, 1}, {49, 1}, {50, 4}};
    static const uint16_t data[][2] = {{7, 2}, {2, 4}, {48, 1}};

    mb_v9(&msg, 1, 0);
    v9_options_template(257, 3, opt);
    mb_set(&msg, 257);
    mb_u32(&msg, 0);
    mb_u8(&msg, 5); /* sampler 5 */
    mb_u8(&msg, 2);
    mb_u32(&msg, 64); /* one in 64 */
    mb_u16(&msg, 0);
    mb_set_end(&msg);
    mb_set(&msg, 0);
    mb_template(&msg, 256, 3, data);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u16(&msg, 22);
    mb_u32(&msg, 2);
    mb_u8(&msg, 5);
    mb_u16(&msg, 23);
    mb_u32(&msg, 2);
    mb_u8(&msg, 6); /* a sampler nobody announced */
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].packets, 128);
    cr_assert_eq(snk.f[0].sampling, 64);
    cr_assert_eq(snk.f[1].packets, 2);
    cr_assert_eq(snk.f[1].sampling, 1);
}

Test(sensor_ipfix, uses_ipfix_system_init_time_for_uptime_stamps)
{
    static const uint16_t data[][2] = {{7, 2}, {22, 4}, {21, 4}};

    mb_ipfix(&msg, 0, 9);
    mb_set(&msg, 3);
    mb_u16(&msg, 300);
    mb_u16(&msg, 2);
    mb_u16(&msg, 1);
    mb_u16(&msg, 149); /* scope: observation domain */
    mb_u16(&msg, 4);
    mb_u16(&msg, 160); /* systemInitTimeMilliseconds */
    mb_u16(&msg, 8);
    mb_set_end(&msg);
    mb_set(&msg, 300);
    mb_u32(&msg, 9);
    mb_u64(&msg, 1600000000000ull);
    mb_set_end(&msg);
    mb_set(&msg, 2);
    mb_template(&msg, 256, 3, data);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u16(&msg, 1);
    mb_u32(&msg, 1000);
    mb_u32(&msg, 5000);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 1);
    cr_assert_eq(snk.f[0].time_start, 1600000001000ull);
    cr_assert_eq(snk.f[0].time_end, 1600000005000ull);
}

/* One IPFIX message carrying one basic record for template 256. */
static void
data_message(uint32_t seq, uint16_t sport)
{
    mb_ipfix(&msg, seq, 1);
    mb_set(&msg, 256);
    mb_basic_record(&msg, sport, 80, 1, 100);
    mb_set_end(&msg);
}

static void
template_message(uint32_t seq)
{
    mb_ipfix(&msg, seq, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
}

Test(sensor_ipfix, holds_data_until_its_template_arrives_in_arrival_order)
{
    data_message(0, 1);
    cr_assert_eq(feed(dec, &exp1, &msg, 1000, &snk), FL_OK);
    data_message(1, 2);
    cr_assert_eq(feed(dec, &exp1, &msg, 1001, &snk), FL_OK);
    cr_assert_eq(snk.n, 0);
    cr_assert_eq(stats_of(dec).pending, 2);

    template_message(2);
    cr_assert_eq(feed(dec, &exp1, &msg, 1002, &snk), FL_OK);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].src_port, 1);
    cr_assert_eq(snk.f[1].src_port, 2);
    cr_assert_eq(stats_of(dec).pending, 0);
    cr_assert_eq(stats_of(dec).errors[FL_DE_PENDING_DROP], 0);
}

Test(sensor_ipfix, releases_data_held_earlier_in_the_same_message)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 80, 1, 100);
    mb_set_end(&msg);
    mb_set(&msg, 257);
    mb_basic_record(&msg, 2, 80, 1, 100);
    mb_set_end(&msg);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 3, 80, 1, 100);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].src_port, 1);
    cr_assert_eq(snk.f[1].src_port, 3);
    /* The set for 257 still waits in the same held datagram. */
    cr_assert_eq(stats_of(dec).pending, 1);

    mb_ipfix(&msg, 3, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 257);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 3);
    cr_assert_eq(snk.f[2].src_port, 2);
    cr_assert_eq(stats_of(dec).pending, 0);
}

Test(sensor_ipfix, expires_held_data_and_counts_it)
{
    struct fl_decoder_limits lim;

    fl_decoder_limits_default(&lim);
    lim.pending_age_ms = 1000;
    renew(&lim);
    data_message(0, 1);
    feed(dec, &exp1, &msg, 10000, &snk);
    cr_assert_eq(stats_of(dec).pending, 1);

    fl_decoder_expire(dec, 10500);
    cr_assert_eq(stats_of(dec).pending, 1);
    fl_decoder_expire(dec, 11001);
    cr_assert_eq(stats_of(dec).pending, 0);
    cr_assert_eq(stats_of(dec).errors[FL_DE_PENDING_DROP], 1);

    template_message(1);
    feed(dec, &exp1, &msg, 11002, &snk);
    cr_assert_eq(snk.n, 0);
}

Test(sensor_ipfix, drops_the_oldest_held_data_when_full)
{
    struct fl_decoder_limits lim;

    fl_decoder_limits_default(&lim);
    lim.max_pending = 2;
    renew(&lim);
    for (uint16_t i = 0; i < 3; i++) {
        data_message(i, (uint16_t)(100 + i));
        feed(dec, &exp1, &msg, 0, &snk);
    }
    cr_assert_eq(stats_of(dec).pending, 2);
    cr_assert_eq(stats_of(dec).errors[FL_DE_PENDING_DROP], 1);

    template_message(3);
    feed(dec, &exp1, &msg, 0, &snk);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].src_port, 101);
    cr_assert_eq(snk.f[1].src_port, 102);
}

Test(sensor_ipfix, bounds_held_bytes)
{
    struct fl_decoder_limits lim;

    fl_decoder_limits_default(&lim);
    lim.max_pending_bytes = 2 * (4 + BASIC_LEN) + 10;
    renew(&lim);
    for (uint16_t i = 0; i < 5; i++) {
        data_message(i, i);
        feed(dec, &exp1, &msg, 0, &snk);
    }
    cr_assert_eq(stats_of(dec).pending, 2);
    cr_assert_eq(stats_of(dec).errors[FL_DE_PENDING_DROP], 3);
    cr_assert_leq(dec->pending_bytes, lim.max_pending_bytes);
}

Test(sensor_ipfix, skips_padding_after_the_last_record)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_basic_record(&msg, 3, 4, 1, 1);
    mb_u16(&msg, 0);
    mb_u8(&msg, 0);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 2);
    for (int e = 0; e < FL_DE_COUNT; e++) {
        cr_assert_eq(stats_of(dec).errors[e], 0, "%s",
                     fl_decode_error_name((enum fl_decode_error)e));
    }
}

/* Template set plus one good data set, then raw bytes. */
static int
feed_good_then(const uint8_t *tail, size_t n, uint16_t version)
{
    if (version == 10) {
        mb_ipfix(&msg, 0, 1);
        mb_set(&msg, 2);
    } else {
        mb_v9(&msg, 0, 1);
        mb_set(&msg, 0);
    }
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_set_end(&msg);
    memcpy(msg.b + msg.len, tail, n);
    msg.len += n;
    return feed(dec, &exp1, &msg, 0, &snk);
}

Test(sensor_ipfix, stops_at_a_zero_length_set_keeping_what_was_decoded)
{
    static const uint8_t tail[] = {0x01, 0x00, 0x00, 0x00, 0x01, 0x00};

    cr_assert_eq(feed_good_then(tail, sizeof(tail), 10), FL_EFORMAT);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SET], 1);
}

Test(sensor_ipfix, stops_at_a_set_longer_than_the_message)
{
    static const uint8_t tail[] = {0x01, 0x00, 0x00, 0x40, 0x00, 0x00};

    cr_assert_eq(feed_good_then(tail, sizeof(tail), 10), FL_EFORMAT);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SET], 1);

    cr_assert_eq(feed_good_then(tail, sizeof(tail), 9), FL_EFORMAT);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SET], 2);
}

Test(sensor_ipfix, stops_at_a_set_shorter_than_its_header)
{
    static const uint8_t len2[] = {0x01, 0x00, 0x00, 0x02};
    static const uint8_t stub[] = {0x01, 0x00};

    cr_assert_eq(feed_good_then(len2, sizeof(len2), 10), FL_EFORMAT);
    cr_assert_eq(feed_good_then(stub, sizeof(stub), 10), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_SET], 2);
    cr_assert_eq(snk.n, 2);
}

Test(sensor_ipfix, tolerates_v9_padding_after_the_last_flowset)
{
    static const uint8_t pad[] = {0x00, 0x00};

    cr_assert_eq(feed_good_then(pad, sizeof(pad), 9), FL_OK);
    cr_assert_eq(snk.n, 1);
}

Test(sensor_ipfix, counts_a_record_shorter_than_its_template)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u32(&msg, 0x0a000001);
    mb_u32(&msg, 0x0a000002);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_EFORMAT);
    cr_assert_eq(snk.n, 0);
    cr_assert_eq(stats_of(dec).errors[FL_DE_RECORD], 1);
}

Test(sensor_ipfix, counts_a_variable_length_field_running_past_its_set)
{
    static const uint16_t f[][2] = {{7, 2}, {82, FL_VARLEN}};

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_template(&msg, 256, 2, f);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u16(&msg, 1);
    mb_u8(&msg, 0);
    mb_u16(&msg, 2);
    mb_u8(&msg, 200);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_EFORMAT);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(stats_of(dec).errors[FL_DE_RECORD], 1);
}

/* Builds a v9 message of one template and two data records. */
static void
v9_two_records(void)
{
    mb_v9(&msg, 0, 0);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_basic_record(&msg, 3, 4, 1, 1);
    mb_set_end(&msg);
}

Test(sensor_ipfix, keeps_records_but_counts_a_wrong_v9_header_count)
{
    v9_two_records();
    fl_put_be16(msg.b + 2, 40);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(stats_of(dec).errors[FL_DE_V9_COUNT], 1);
}

Test(sensor_ipfix, accepts_a_v9_count_of_records_or_of_flowsets)
{
    /* RFC 3954 counts records (1 template + 2 data); FortiOS flowsets. */
    v9_two_records();
    fl_put_be16(msg.b + 2, 3);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    v9_two_records();
    fl_put_be16(msg.b + 2, 2);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 4);
    cr_assert_eq(stats_of(dec).errors[FL_DE_V9_COUNT], 0);
}

Test(sensor_ipfix, ignores_bytes_past_the_ipfix_message_length)
{
    template_message(0);
    mb_end(&msg);
    mb_u32(&msg, 0xdeadbeef);
    cr_assert_eq(fl_decoder_feed(dec, &exp1, msg.b, msg.len, 0, sink_fn, &snk),
                 FL_OK);
    cr_assert_eq(stats_of(dec).templates, 1);
}

Test(sensor_ipfix, skips_reserved_set_ids)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 4);
    mb_u32(&msg, 0x01020304);
    mb_set_end(&msg);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).templates, 1);
}

Test(sensor_ipfix, survives_every_truncation_of_a_message)
{
    struct mb whole;

    template_message(0);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_set_end(&msg);
    mb_end(&msg);
    whole = msg;
    for (size_t n = 0; n < whole.len; n++) {
        fl_put_be16(whole.b + 2, (uint16_t)n);
        fl_decoder_feed(dec, &exp1, whole.b, n, 0, sink_fn, &snk);
    }
    cr_assert_eq(snk.n, 0);
    cr_assert_gt(stats_of(dec).errors[FL_DE_SHORT], 0);
    cr_assert_gt(stats_of(dec).errors[FL_DE_SET], 0);
}
