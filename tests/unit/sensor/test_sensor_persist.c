/*
 * Saving and loading templates: a round trip that lets a new decoder read
 * data at once, and refusal of every damaged or truncated state file.
 */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "test_sensor_msg.h"

static uint8_t *saved;
static size_t saved_len;

/* Teaches dec a v9 source with sampling and an IPFIX source. */
static void
learn(void)
{
    static const uint16_t opt[][2] = {{34, 4}};

    mb_v9(&msg, 0, 5);
    mb_set(&msg, 1);
    mb_u16(&msg, 257);
    mb_u16(&msg, 4);
    mb_u16(&msg, 4);
    mb_u16(&msg, 1);
    mb_u16(&msg, 4);
    mb_u16(&msg, opt[0][0]);
    mb_u16(&msg, opt[0][1]);
    mb_set_end(&msg);
    mb_set(&msg, 257);
    mb_u32(&msg, 0);
    mb_u32(&msg, 10);
    mb_set_end(&msg);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    mb_ipfix(&msg, 0, 6);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 300);
    mb_u16(&msg, 301);
    mb_u16(&msg, 1);
    mb_u16(&msg, 0x8000 | 7);
    mb_u16(&msg, 2);
    mb_u32(&msg, 9);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).templates, 4);
}

static void
setup(void)
{
    cr_assert_eq(fl_decoder_new(NULL, &dec), FL_OK);
    exp1 = exporter_v4(0xc0000201);
    memset(&snk, 0, sizeof(snk));
    learn();
    cr_assert_eq(fl_decoder_templates_save(dec, &saved, &saved_len), FL_OK);
    fl_decoder_free(dec);
    cr_assert_eq(fl_decoder_new(NULL, &dec), FL_OK);
}

static void
teardown(void)
{
    fl_decoder_free(dec);
    free(saved);
}

TestSuite(sensor_persist, .init = setup, .fini = teardown);

static uint64_t
fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Re-seals buf after a deliberate change, so only the content is wrong. */
static void
reseal(uint8_t *buf, size_t len)
{
    fl_put_be64(buf + len - 8, fnv(buf, len - 8));
}

static void
assert_untouched(void)
{
    cr_assert_eq(stats_of(dec).sources, 0);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_persist, decodes_data_only_messages_after_a_round_trip)
{
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_OK);
    cr_assert_eq(stats_of(dec).sources, 2);
    cr_assert_eq(stats_of(dec).templates, 4);

    mb_v9(&msg, 1, 5);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 3, 300);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    mb_ipfix(&msg, 1, 6);
    mb_set(&msg, 300);
    mb_basic_record(&msg, 3, 4, 5, 500);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].sampling, 10);
    cr_assert_eq(snk.f[0].packets, 30);
    cr_assert_eq(snk.f[0].bytes, 3000);
    cr_assert_eq(snk.f[1].sampling, 1);
    cr_assert_eq(snk.f[1].bytes, 500);
    cr_assert_eq(stats_of(dec).pending, 0);
}

Test(sensor_persist, saves_the_same_bytes_after_a_round_trip)
{
    uint8_t *again;
    size_t len;

    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_OK);
    cr_assert_eq(fl_decoder_templates_save(dec, &again, &len), FL_OK);
    cr_assert_eq(len, saved_len);
    free(again);
}

Test(sensor_persist, refuses_every_truncation)
{
    for (size_t n = 0; n < saved_len; n++) {
        cr_assert_eq(fl_decoder_templates_load(dec, saved, n), FL_EFORMAT,
                     "length %zu", n);
    }
    assert_untouched();
}

Test(sensor_persist, refuses_every_flipped_byte)
{
    uint8_t *copy = malloc(saved_len);

    for (size_t i = 0; i < saved_len; i++) {
        memcpy(copy, saved, saved_len);
        copy[i] ^= 0x20;
        cr_assert_eq(fl_decoder_templates_load(dec, copy, saved_len),
                     FL_EFORMAT, "byte %zu", i);
    }
    free(copy);
    assert_untouched();
}

Test(sensor_persist, tells_a_newer_format_apart)
{
    saved[7] = '2';
    reseal(saved, saved_len);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_EVERSION);
    assert_untouched();
}

Test(sensor_persist, refuses_a_sealed_file_with_a_bad_template)
{
    /* The last field of the last template: give it length 0. */
    fl_put_be16(saved + saved_len - 8 - 2, 0);
    reseal(saved, saved_len);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_EFORMAT);
    assert_untouched();
}

Test(sensor_persist, refuses_a_sealed_file_with_trailing_bytes)
{
    uint8_t *big = malloc(saved_len + 4);

    memcpy(big, saved, saved_len - 8);
    memset(big + saved_len - 8, 0, 4);
    reseal(big, saved_len + 4);
    cr_assert_eq(fl_decoder_templates_load(dec, big, saved_len + 4),
                 FL_EFORMAT);
    free(big);
    assert_untouched();
}

Test(sensor_persist, respects_the_source_ceiling)
{
    struct fl_decoder_limits lim;

    fl_decoder_free(dec);
    fl_decoder_limits_default(&lim);
    lim.max_sources = 1;
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_ELIMIT);
    assert_untouched();
}

Test(sensor_persist, respects_the_template_ceiling_after_merging)
{
    struct fl_decoder_limits lim;

    fl_decoder_free(dec);
    fl_decoder_limits_default(&lim);
    lim.max_templates = 2;
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_OK);

    /* A live template of another id leaves no room for the saved ones. */
    fl_decoder_free(dec);
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);
    mb_ipfix(&msg, 0, 6);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 999);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_ELIMIT);
    cr_assert_eq(stats_of(dec).templates, 1);
    cr_assert_eq(stats_of(dec).sources, 1);
}

Test(sensor_persist, round_trips_an_empty_decoder)
{
    uint8_t *buf;
    size_t len;

    cr_assert_eq(fl_decoder_templates_save(dec, &buf, &len), FL_OK);
    cr_assert_eq(len, 20);
    cr_assert_eq(memcmp(buf, "FL0WTPL1", 8), 0);
    cr_assert_eq(fl_decoder_templates_load(dec, buf, len), FL_OK);
    free(buf);
    assert_untouched();
}

Test(sensor_persist, releases_held_data_when_a_loaded_template_is_resent)
{
    mb_ipfix(&msg, 0, 6);
    mb_set(&msg, 300);
    mb_basic_record(&msg, 7, 8, 1, 100);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).pending, 1);
    cr_assert_eq(fl_decoder_templates_load(dec, saved, saved_len), FL_OK);

    /* The exporter's periodic resend changes nothing, yet frees the data. */
    mb_ipfix(&msg, 1, 6);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 300);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(snk.f[0].src_port, 7);
    cr_assert_eq(stats_of(dec).pending, 0);
}
