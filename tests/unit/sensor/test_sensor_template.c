/*
 * Templates of NetFlow v9 and IPFIX: definition, withdrawal, redefinition,
 * independence across sources, malformed templates and the ceiling.
 */
#include <criterion/criterion.h>

#include "test_sensor_msg.h"

TestSuite(sensor_template, .init = fixture_setup, .fini = fixture_teardown);

Test(sensor_template, decodes_v9_template_and_data_in_one_message)
{
    mb_v9(&msg, 1, 7);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1000, 80, 3, 300);
    mb_basic_record(&msg, 1001, 443, 4, 400);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].src_port, 1000);
    cr_assert_eq(snk.f[1].dst_port, 443);
    cr_assert_eq(snk.f[1].bytes, 400);
    cr_assert_eq(snk.f[0].domain, 7);
    cr_assert_eq(memcmp(&snk.f[0].exporter, &exp1, sizeof(exp1)), 0);
    cr_assert_eq(snk.f[0].sampling, 1);
    cr_assert_eq(stats_of(dec).templates, 1);
}

Test(sensor_template, decodes_v9_data_in_a_later_message)
{
    mb_v9(&msg, 1, 0);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 300);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 0);

    mb_v9(&msg, 2, 0);
    mb_set(&msg, 300);
    mb_basic_record(&msg, 53, 53, 1, 80);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(snk.f[0].proto, 6);
    cr_assert_eq(snk.f[0].packets, 1);
}

Test(sensor_template, decodes_ipfix_template_and_data_in_one_and_two_messages)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 5, 500);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 1);

    mb_ipfix(&msg, 1, 1);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 3, 4, 6, 600);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[1].src_port, 3);
    cr_assert_eq(snk.f[1].bytes, 600);
}

Test(sensor_template, reads_several_templates_in_one_set)
{
    static const uint16_t small[][2] = {{7, 2}, {11, 2}};

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_template(&msg, 257, 2, small);
    mb_set_end(&msg);
    mb_set(&msg, 257);
    mb_u16(&msg, 11);
    mb_u16(&msg, 22);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 33, 44, 1, 1);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(stats_of(dec).templates, 2);
    cr_assert_eq(snk.n, 2);
    cr_assert_eq(snk.f[0].dst_port, 22);
    cr_assert_eq(snk.f[1].dst_port, 44);
}

Test(sensor_template, withdraws_one_ipfix_template)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_basic_template(&msg, 257);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).templates, 2);

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_u16(&msg, 256);
    mb_u16(&msg, 0);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_basic_record(&msg, 1, 2, 1, 1);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    /* The data now waits for a template instead of being decoded. */
    cr_assert_eq(snk.n, 0);
    cr_assert_eq(stats_of(dec).templates, 1);
    cr_assert_eq(stats_of(dec).pending, 1);
}

Test(sensor_template, withdraws_all_templates_of_a_kind)
{
    static const uint16_t opt[][2] = {{149, 4}, {34, 4}};

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_basic_template(&msg, 256);
    mb_basic_template(&msg, 257);
    mb_set_end(&msg);
    mb_set(&msg, 3);
    mb_u16(&msg, 258);
    mb_u16(&msg, 2);
    mb_u16(&msg, 1);
    mb_u16(&msg, opt[0][0]);
    mb_u16(&msg, opt[0][1]);
    mb_u16(&msg, opt[1][0]);
    mb_u16(&msg, opt[1][1]);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).templates, 3);

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_u16(&msg, 2);
    mb_u16(&msg, 0);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).templates, 1);
}

Test(sensor_template, replaces_a_redefined_template)
{
    static const uint16_t ports[][2] = {{11, 2}, {7, 2}};

    mb_v9(&msg, 1, 0);
    mb_set(&msg, 0);
    mb_basic_template(&msg, 400);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    mb_v9(&msg, 2, 0);
    mb_set(&msg, 0);
    mb_template(&msg, 400, 2, ports);
    mb_set_end(&msg);
    mb_set(&msg, 400);
    mb_u16(&msg, 8080);
    mb_u16(&msg, 5555);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(stats_of(dec).templates, 1);
    cr_assert_eq(snk.n, 1);
    cr_assert_eq(snk.f[0].dst_port, 8080);
    cr_assert_eq(snk.f[0].src_port, 5555);
}

/* Sends template 256 with layout f to (exp, domain), then one record. */
static void
send_two_ports(const struct fl_addr *exp, uint32_t domain,
               const uint16_t (*f)[2], uint16_t a, uint16_t b)
{
    mb_ipfix(&msg, 0, domain);
    mb_set(&msg, 2);
    mb_template(&msg, 256, 2, f);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u16(&msg, a);
    mb_u16(&msg, b);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, exp, &msg, 0, &snk), FL_OK);
}

Test(sensor_template, keeps_the_same_id_apart_across_domains_and_exporters)
{
    static const uint16_t sd[][2] = {{7, 2}, {11, 2}};
    static const uint16_t ds[][2] = {{11, 2}, {7, 2}};
    struct fl_addr exp2 = exporter_v4(0xc0000202);

    send_two_ports(&exp1, 1, sd, 10, 20);
    send_two_ports(&exp1, 2, ds, 10, 20);
    send_two_ports(&exp2, 1, ds, 10, 20);

    /* Data for domain 1 of exp1 still uses its own layout. */
    mb_ipfix(&msg, 1, 1);
    mb_set(&msg, 256);
    mb_u16(&msg, 30);
    mb_u16(&msg, 40);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 4);
    cr_assert_eq(snk.f[0].src_port, 10);
    cr_assert_eq(snk.f[1].src_port, 20);
    cr_assert_eq(snk.f[1].domain, 2);
    cr_assert_eq(snk.f[2].src_port, 20);
    cr_assert_eq(snk.f[3].src_port, 30);
    cr_assert_eq(stats_of(dec).sources, 3);
    cr_assert_eq(stats_of(dec).templates, 3);
}

/* Feeds one IPFIX message whose template set holds raw bytes. */
static int
feed_template_bytes(const uint8_t *b, size_t n)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    memcpy(msg.b + msg.len, b, n);
    msg.len += n;
    mb_set_end(&msg);
    return feed(dec, &exp1, &msg, 0, &snk);
}

Test(sensor_template, rejects_template_ids_below_256)
{
    static const uint8_t t[] = {0x00, 0xff, 0x00, 0x01, 0x00, 0x07, 0x00, 0x02};

    cr_assert_eq(feed_template_bytes(t, sizeof(t)), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_template, rejects_a_field_count_that_overflows_the_set)
{
    static const uint8_t t[] = {0x01, 0x00, 0x00, 0x05, 0x00, 0x07, 0x00, 0x02};

    cr_assert_eq(feed_template_bytes(t, sizeof(t)), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_template, rejects_an_enterprise_field_cut_before_its_pen)
{
    static const uint8_t t[] = {0x01, 0x00, 0x00, 0x01, 0x80, 0x07, 0x00, 0x02};

    cr_assert_eq(feed_template_bytes(t, sizeof(t)), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
}

Test(sensor_template, rejects_a_field_of_length_zero)
{
    static const uint8_t t[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x07,
                                0x00, 0x02, 0x00, 0x0b, 0x00, 0x00};

    cr_assert_eq(feed_template_bytes(t, sizeof(t)), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_template, rejects_records_that_could_not_fit_a_message)
{
    static const uint8_t t[] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x5f,
                                0x9c, 0x40, 0x00, 0x5f, 0x9c, 0x40};

    cr_assert_eq(feed_template_bytes(t, sizeof(t)), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
}

Test(sensor_template, reads_ipfix_variable_length_fields)
{
    static const uint16_t f[][2] = {{7, 2}, {82, FL_VARLEN}};

    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_template(&msg, 256, 2, f);
    mb_set_end(&msg);
    mb_set(&msg, 256);
    mb_u16(&msg, 1);
    mb_u8(&msg, 3);
    memcpy(msg.b + msg.len, "eth", 3);
    msg.len += 3;
    mb_u16(&msg, 2);
    mb_u8(&msg, 0);
    mb_u16(&msg, 3);
    mb_u8(&msg, 255);
    mb_u16(&msg, 4);
    memcpy(msg.b + msg.len, "eth1", 4);
    msg.len += 4;
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    cr_assert_eq(snk.n, 3);
    cr_assert_eq(snk.f[0].src_port, 1);
    cr_assert_eq(snk.f[1].src_port, 2);
    cr_assert_eq(snk.f[2].src_port, 3);
}

Test(sensor_template, rejects_length_65535_in_v9)
{
    static const uint16_t f[][2] = {{7, 2}, {82, FL_VARLEN}};

    mb_v9(&msg, 0, 0);
    mb_set(&msg, 0);
    mb_template(&msg, 256, 2, f);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_EFORMAT);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 1);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_template, keeps_enterprise_fields_with_their_pen)
{
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_u16(&msg, 256);
    mb_u16(&msg, 2);
    mb_u16(&msg, 7);
    mb_u16(&msg, 2);
    mb_u16(&msg, 0x8000 | 42);
    mb_u16(&msg, 4);
    mb_u32(&msg, 29305 + 1);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);

    const struct fl_source *src = NULL;
    cr_assert_eq(fl_source_get(dec, &exp1, 1, false, (struct fl_source **)&src),
                 FL_OK);
    const struct fl_template *t = fl_template_find(src, 256);
    cr_assert_not_null(t);
    cr_assert_eq(t->nfields, 2);
    cr_assert_eq(t->fields[1].pen, 29306);
    cr_assert_eq(t->fields[1].id, 42);
    cr_assert_eq(t->min_len, 6);
}

Test(sensor_template, rejects_ipfix_options_with_a_bad_scope_count)
{
    static const uint8_t zero[] = {0x01, 0x00, 0x00, 0x01, 0x00,
                                   0x00, 0x00, 0x22, 0x00, 0x04};
    static const uint8_t many[] = {0x01, 0x00, 0x00, 0x01, 0x00,
                                   0x02, 0x00, 0x22, 0x00, 0x04};

    for (int i = 0; i < 2; i++) {
        const uint8_t *t = i == 0 ? zero : many;

        mb_ipfix(&msg, 0, 1);
        mb_set(&msg, 3);
        memcpy(msg.b + msg.len, t, sizeof(zero));
        msg.len += sizeof(zero);
        mb_set_end(&msg);
        cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_EFORMAT);
    }
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE], 2);
    cr_assert_eq(stats_of(dec).templates, 0);
}

Test(sensor_template, stops_template_churn_at_the_ceiling)
{
    struct fl_decoder_limits lim;
    static const uint16_t ports[][2] = {{11, 2}, {7, 2}};

    fl_decoder_free(dec);
    fl_decoder_limits_default(&lim);
    lim.max_templates = 8;
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);

    for (uint16_t id = 256; id < 356; id++) {
        mb_ipfix(&msg, 0, 1);
        mb_set(&msg, 2);
        mb_basic_template(&msg, id);
        mb_set_end(&msg);
        feed(dec, &exp1, &msg, 0, &snk);
    }
    cr_assert_eq(stats_of(dec).templates, 8);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE_LIMIT], 92);

    /* At the ceiling a known id may still change its layout. */
    mb_ipfix(&msg, 0, 1);
    mb_set(&msg, 2);
    mb_template(&msg, 256, 2, ports);
    mb_set_end(&msg);
    cr_assert_eq(feed(dec, &exp1, &msg, 0, &snk), FL_OK);
    cr_assert_eq(stats_of(dec).errors[FL_DE_TEMPLATE_LIMIT], 92);
}

Test(sensor_template, bounds_template_memory_across_sources)
{
    struct fl_decoder_limits lim;
    struct fl_source *src;
    struct fl_template *t = dec->scratch;
    size_t big = sizeof(struct fl_template) + 1000 * sizeof(struct fl_tfield);
    uint32_t kept = 0;

    fl_decoder_free(dec);
    fl_decoder_limits_default(&lim);
    lim.max_template_bytes = 10 * big;
    cr_assert_eq(fl_decoder_new(&lim, &dec), FL_OK);
    t = dec->scratch;

    /* Many sources, each under its count ceiling: memory still stops. */
    for (uint32_t domain = 0; domain < 40; domain++) {
        cr_assert_eq(fl_source_get(dec, &exp1, domain, true, &src), FL_OK);
        src->version = 10;
        t->id = 256;
        t->nfields = 1000;
        t->scope_fields = 0;
        t->options = false;
        for (uint16_t i = 0; i < 1000; i++) {
            t->fields[i] = (struct fl_tfield){0, 7, 2};
        }
        cr_assert_eq(fl_template_check(t, 10), FL_OK);
        if (fl_template_put(dec, src, t) == FL_OK) {
            kept++;
        }
    }
    cr_assert_eq(kept, 10);
    cr_assert_leq(dec->template_bytes, lim.max_template_bytes);

    /* Freeing a source's templates gives the memory back. */
    cr_assert_eq(fl_source_get(dec, &exp1, 0, false, &src), FL_OK);
    fl_template_free_all(dec, src);
    cr_assert_eq(dec->template_bytes, 9 * big);
}

Test(sensor_template, finds_every_template_left_after_removals)
{
    struct fl_source *src;
    struct fl_template *t = dec->scratch;

    cr_assert_eq(fl_source_get(dec, &exp1, 0, true, &src), FL_OK);
    src->version = 10;
    for (uint32_t i = 0; i < 600; i++) {
        t->id = (uint16_t)(256 + i * 37);
        t->nfields = 1;
        t->scope_fields = 0;
        t->options = false;
        t->fields[0] = (struct fl_tfield){0, 7, 2};
        cr_assert_eq(fl_template_check(t, 10), FL_OK);
        cr_assert_eq(fl_template_put(dec, src, t), FL_OK);
    }
    for (uint32_t i = 0; i < 600; i += 3) {
        fl_template_remove(dec, src, (uint16_t)(256 + i * 37));
    }
    cr_assert_eq(src->ntemplates, 400);
    for (uint32_t i = 0; i < 600; i++) {
        const struct fl_template *f =
            fl_template_find(src, (uint16_t)(256 + i * 37));

        if (i % 3 == 0) {
            cr_assert_null(f, "id %u", 256 + i * 37);
        } else {
            cr_assert_not_null(f, "id %u", 256 + i * 37);
        }
    }
}
