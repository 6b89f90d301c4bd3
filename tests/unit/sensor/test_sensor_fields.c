/*
 * Tests for the record decoder: every element mapping, each time and
 * sampling source, extras and truncation, on hand-built templates and
 * records.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sensor_int.h"

#define EXPORT_SECS 1700000000u
#define EXPORT_MS (EXPORT_SECS * 1000ull)
#define NTP_OFFSET 2208988800ull
#define PEN_REV 29305

/* ---- building templates and records ---------------------------------- */

static struct fl_template *tpls[8];
static size_t ntpls;

static void
free_tpls(void)
{
    for (size_t i = 0; i < ntpls; i++) {
        free(tpls[i]);
    }
    ntpls = 0;
}

static struct fl_template *
make_tpl(const struct fl_tfield *fs, size_t n, uint16_t scope)
{
    struct fl_template *t;

    cr_assert(ntpls < sizeof(tpls) / sizeof(tpls[0]));
    t = calloc(1, sizeof(*t) + n * sizeof(fs[0]));
    cr_assert_not_null(t);
    t->id = 256;
    t->nfields = (uint16_t)n;
    t->scope_fields = scope;
    t->options = scope > 0;
    for (size_t i = 0; i < n; i++) {
        t->fields[i] = fs[i];
        t->min_len += fs[i].len == FL_VARLEN ? 1 : fs[i].len;
    }
    tpls[ntpls++] = t;
    return t;
}

#define FIELDS(...) ((const struct fl_tfield[]){__VA_ARGS__})
#define NFIELDS(...) (sizeof(FIELDS(__VA_ARGS__)) / sizeof(struct fl_tfield))
/* A template from (pen, id, len) triples. */
#define TPL(...) make_tpl(FIELDS(__VA_ARGS__), NFIELDS(__VA_ARGS__), 0)
#define OPT_TPL(scope, ...)                                                    \
    make_tpl(FIELDS(__VA_ARGS__), NFIELDS(__VA_ARGS__), scope)

struct rb {
    uint8_t b[2048];
    size_t n;
};

/* Appends v big-endian in n bytes, zero-padded above 8. */
static void
rb_uint(struct rb *r, uint64_t v, size_t n)
{
    cr_assert(r->n + n <= sizeof(r->b));
    for (size_t i = 0; i < n; i++) {
        size_t shift = 8 * (n - 1 - i);

        r->b[r->n + i] = shift < 64 ? (uint8_t)(v >> shift) : 0;
    }
    r->n += n;
}

static void
rb_bytes(struct rb *r, const void *p, size_t n)
{
    cr_assert(r->n + n <= sizeof(r->b));
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

/* Appends an address in wire form: 4 bytes for IPv4, 16 for IPv6. */
static void
rb_addr(struct rb *r, const char *text)
{
    struct fl_addr a;

    cr_assert_eq(fl_addr_parse(text, &a), FL_OK, "bad test address %s", text);
    if (fl_addr_is_v4(&a)) {
        rb_bytes(r, a.b + 12, 4);
    } else {
        rb_bytes(r, a.b, 16);
    }
}

/* NTP 64-bit time for ms since the Unix epoch. */
static void
rb_ntp(struct rb *r, uint64_t ms)
{
    uint64_t frac = ((ms % 1000) << 32) / 1000 + 1; /* +1: round-trip safe */

    rb_uint(r, ms / 1000 + NTP_OFFSET, 4);
    rb_uint(r, frac, 4);
}

/* ---- decoding -------------------------------------------------------- */

static uint8_t extra[FL_EXTRA_MAX];

static struct fl_msg_ctx
ctx_ipfix(void)
{
    struct fl_msg_ctx x;

    memset(&x, 0, sizeof(x));
    x.version = 10;
    x.domain = 7;
    x.export_secs = EXPORT_SECS;
    x.sampling = 1;
    fl_addr_from_v4(&x.exporter, 0xc0000201);
    return x;
}

static struct fl_msg_ctx
ctx_v9(uint32_t uptime_ms)
{
    struct fl_msg_ctx x = ctx_ipfix();

    x.version = 9;
    x.sys_uptime_ms = uptime_ms;
    return x;
}

/* Decodes r with t and checks that exactly the record was consumed. */
static void
decode_cap(const struct fl_template *t, const struct fl_msg_ctx *x,
           const struct rb *r, struct fl_flow *f, size_t cap)
{
    struct fl_cursor c;
    int rc;

    fl_cursor_init(&c, r->b, r->n);
    rc = fl_fields_decode(t, x, &c, f, cap > 0 ? extra : NULL, cap);
    cr_assert_eq(rc, FL_OK, "decode failed: %d", rc);
    cr_assert_eq(c.left, 0, "record not consumed: %zu left", c.left);
}

static void
decode(const struct fl_template *t, const struct fl_msg_ctx *x,
       const struct rb *r, struct fl_flow *f)
{
    decode_cap(t, x, r, f, sizeof(extra));
}

static void
decode_ipfix(const struct fl_template *t, const struct rb *r, struct fl_flow *f)
{
    struct fl_msg_ctx x = ctx_ipfix();

    decode(t, &x, r, f);
}

static void
assert_addr(const struct fl_addr *a, const char *text)
{
    struct fl_addr want;
    char got[FL_ADDR_STRLEN];

    cr_assert_eq(fl_addr_parse(text, &want), FL_OK);
    cr_assert_eq(memcmp(a, &want, sizeof(want)), 0, "got %s, want %s",
                 fl_addr_format(a, got), text);
}

/* Finds the n-th (0-based) extra entry with (pen, id). */
static bool
find_extra_nth(const struct fl_flow *f, uint32_t pen, uint16_t id, int nth,
               const uint8_t **v, uint16_t *len)
{
    struct fl_cursor c;
    uint32_t p;
    uint16_t i;
    uint16_t n;
    const uint8_t *b;

    fl_cursor_init(&c, f->extra, f->extra_len);
    while (fl_cursor_u32(&c, &p) && fl_cursor_u16(&c, &i) &&
           fl_cursor_u16(&c, &n) && fl_cursor_bytes(&c, n, &b)) {
        if (p == pen && i == id && nth-- == 0) {
            *v = b;
            *len = n;
            return true;
        }
    }
    cr_assert_eq(c.left, 0, "extra is malformed");
    return false;
}

static bool
find_extra(const struct fl_flow *f, uint32_t pen, uint16_t id,
           const uint8_t **v, uint16_t *len)
{
    return find_extra_nth(f, pen, id, 0, v, len);
}

static bool
has_extra(const struct fl_flow *f, uint32_t pen, uint16_t id)
{
    const uint8_t *v;
    uint16_t n;

    return find_extra(f, pen, id, &v, &n);
}

static void
assert_extra_uint(const struct fl_flow *f, uint32_t pen, uint16_t id,
                  uint16_t len, uint64_t value)
{
    const uint8_t *v;
    uint16_t n;

    cr_assert(find_extra(f, pen, id, &v, &n), "extra %u/%u missing", pen, id);
    cr_assert_eq(n, len, "extra %u/%u length %u", pen, id, n);
    cr_assert_eq(fl_be_uint(v, n), value);
}

TestSuite(sensor_fields, .fini = free_tpls);

/* ---- addresses, ports and the rest of the key ------------------------ */

Test(sensor_fields, maps_the_ipv4_five_tuple_and_interfaces)
{
    struct fl_template *t =
        TPL({0, 8, 4}, {0, 12, 4}, {0, 7, 2}, {0, 11, 2}, {0, 4, 1}, {0, 5, 1},
            {0, 6, 1}, {0, 10, 4}, {0, 14, 2}, {0, 16, 4}, {0, 17, 2},
            {0, 61, 1}, {0, 1, 8}, {0, 2, 4});
    struct rb r = {0};
    struct fl_flow f;

    rb_addr(&r, "192.0.2.1");
    rb_addr(&r, "198.51.100.7");
    rb_uint(&r, 51000, 2);
    rb_uint(&r, 443, 2);
    rb_uint(&r, 6, 1);
    rb_uint(&r, 0xb8, 1);
    rb_uint(&r, 0x1b, 1);
    rb_uint(&r, 100000, 4);
    rb_uint(&r, 12, 2);
    rb_uint(&r, 4200000000u, 4);
    rb_uint(&r, 64512, 2);
    rb_uint(&r, 1, 1);
    rb_uint(&r, 0x123456789aull, 8);
    rb_uint(&r, 77, 4);
    decode_ipfix(t, &r, &f);

    assert_addr(&f.src_addr, "192.0.2.1");
    assert_addr(&f.dst_addr, "198.51.100.7");
    cr_assert_eq(f.src_port, 51000);
    cr_assert_eq(f.dst_port, 443);
    cr_assert_eq(f.proto, 6);
    cr_assert_eq(f.tos, 0xb8);
    cr_assert_eq(f.tcp_flags, 0x1b);
    cr_assert_eq(f.in_if, 100000);
    cr_assert_eq(f.out_if, 12);
    cr_assert_eq(f.src_as, 4200000000u);
    cr_assert_eq(f.dst_as, 64512);
    cr_assert_eq(f.direction, 1);
    cr_assert_eq(f.bytes, 0x123456789aull);
    cr_assert_eq(f.packets, 77);
    cr_assert_eq(f.sampling, 1);
    cr_assert_eq(f.extra_len, 0);
    cr_assert_null(f.extra);
}

Test(sensor_fields, copies_exporter_and_domain_and_clears_the_flow_first)
{
    struct fl_template *t = TPL({0, 4, 1});
    struct fl_msg_ctx x = ctx_ipfix();
    struct rb r = {0};
    struct fl_flow f;

    memset(&f, 0xa5, sizeof(f));
    rb_uint(&r, 17, 1);
    decode(t, &x, &r, &f);
    assert_addr(&f.exporter, "192.0.2.1");
    cr_assert_eq(f.domain, 7);
    cr_assert_eq(f.proto, 17);
    cr_assert_eq(f.src_port, 0);
    cr_assert_eq(f.bytes, 0);
    cr_assert(fl_addr_is_zero(&f.src_addr));
    cr_assert_eq(f.fw_event, 0);
}

Test(sensor_fields, maps_ipv6_addresses_and_ipv6_next_hop)
{
    struct fl_template *t = TPL({0, 27, 16}, {0, 28, 16}, {0, 62, 16});
    struct rb r = {0};
    struct fl_flow f;

    rb_addr(&r, "2001:db8::1");
    rb_addr(&r, "2001:db8:ffff::2");
    rb_addr(&r, "fe80::1");
    decode_ipfix(t, &r, &f);
    assert_addr(&f.src_addr, "2001:db8::1");
    assert_addr(&f.dst_addr, "2001:db8:ffff::2");
    assert_addr(&f.next_hop, "fe80::1");
}

Test(sensor_fields, uses_bgp_next_hop_only_without_ip_next_hop)
{
    struct fl_template *both = TPL({0, 18, 4}, {0, 15, 4});
    struct fl_template *bgp = TPL({0, 63, 16});
    struct rb r = {0};
    struct rb r6 = {0};
    struct fl_flow f;
    const uint8_t *v;
    uint16_t n;

    rb_addr(&r, "203.0.113.9");
    rb_addr(&r, "10.0.0.1");
    decode_ipfix(both, &r, &f);
    assert_addr(&f.next_hop, "10.0.0.1");
    cr_assert(find_extra(&f, 0, 18, &v, &n));
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(v, r.b, 4), 0);

    rb_addr(&r6, "2001:db8::99");
    decode_ipfix(bgp, &r6, &f);
    assert_addr(&f.next_hop, "2001:db8::99");
    cr_assert_eq(f.extra_len, 0);
}

Test(sensor_fields, keeps_addresses_of_the_wrong_size_as_extra)
{
    struct fl_template *t = TPL({0, 8, 3}, {0, 27, 4}, {0, 12, 16});
    struct rb r = {0};
    struct fl_flow f;
    const uint8_t *v;
    uint16_t n;

    rb_bytes(&r, "\x0a\x01\x02", 3);
    rb_bytes(&r, "\x20\x01\x0d\xb8", 4);
    rb_addr(&r, "2001:db8::5");
    decode_ipfix(t, &r, &f);
    cr_assert(fl_addr_is_zero(&f.src_addr));
    cr_assert(fl_addr_is_zero(&f.dst_addr));
    cr_assert(find_extra(&f, 0, 8, &v, &n));
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(v, "\x0a\x01\x02", 3), 0);
    cr_assert(find_extra(&f, 0, 27, &v, &n));
    cr_assert_eq(n, 4);
    cr_assert(find_extra(&f, 0, 12, &v, &n));
    cr_assert_eq(n, 16);
    cr_assert_eq(memcmp(v, r.b + 7, 16), 0);
}

Test(sensor_fields, takes_the_low_byte_of_two_byte_tcp_flags)
{
    struct fl_template *t = TPL({0, 6, 2});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 0x0112, 2); /* NS bit plus SYN|ACK|... */
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.tcp_flags, 0x12);
}

Test(sensor_fields, reads_the_mpls_label_from_the_top_twenty_bits)
{
    struct fl_template *t = TPL({0, 70, 3});
    struct rb r = {0};
    struct fl_flow f;

    /* label 0x12345, traffic class 5, bottom of stack set */
    rb_uint(&r, (0x12345u << 4) | (5 << 1) | 1, 3);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.mpls, 0x12345);
}

Test(sensor_fields, maps_vlan_from_either_element_preferring_vlan_id)
{
    struct fl_template *one = TPL({0, 243, 2});
    struct fl_template *both = TPL({0, 243, 2}, {0, 58, 2});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 100, 2);
    decode_ipfix(one, &r, &f);
    cr_assert_eq(f.vlan, 100);

    rb_uint(&r, 200, 2);
    decode_ipfix(both, &r, &f);
    cr_assert_eq(f.vlan, 200);
    assert_extra_uint(&f, 0, 243, 2, 100);
}

/* ---- ICMP ------------------------------------------------------------ */

Test(sensor_fields, puts_icmp_type_and_code_into_the_destination_port)
{
    struct fl_template *v4 = TPL({0, 4, 1}, {0, 11, 2}, {0, 32, 2});
    struct fl_template *v6 = TPL({0, 4, 1}, {0, 139, 2});
    struct rb r = {0};
    struct rb r6 = {0};
    struct fl_flow f;

    rb_uint(&r, 1, 1);
    rb_uint(&r, 0, 2);
    rb_uint(&r, 3 * 256 + 1, 2);
    decode_ipfix(v4, &r, &f);
    cr_assert_eq(f.dst_port, 3 * 256 + 1);
    cr_assert_eq(f.extra_len, 0);

    rb_uint(&r6, 58, 1);
    rb_uint(&r6, 128 * 256, 2);
    decode_ipfix(v6, &r6, &f);
    cr_assert_eq(f.dst_port, 128 * 256);
}

Test(sensor_fields, combines_separate_icmp_type_and_code_elements)
{
    struct fl_template *v4 = TPL({0, 4, 1}, {0, 176, 1}, {0, 177, 1});
    struct fl_template *v6 = TPL({0, 4, 1}, {0, 179, 1}, {0, 178, 1});
    struct rb r = {0};
    struct rb r6 = {0};
    struct fl_flow f;

    rb_bytes(&r, "\x01\x0b\x01", 3);
    decode_ipfix(v4, &r, &f);
    cr_assert_eq(f.dst_port, 11 * 256 + 1);

    rb_bytes(&r6, "\x3a\x04\x01", 3);
    decode_ipfix(v6, &r6, &f);
    cr_assert_eq(f.dst_port, 1 * 256 + 4);
}

Test(sensor_fields, leaves_the_port_of_non_icmp_flows_alone)
{
    struct fl_template *t =
        TPL({0, 4, 1}, {0, 11, 2}, {0, 176, 1}, {0, 177, 1});
    struct rb zero = {0};
    struct rb odd = {0};
    struct fl_flow f;

    rb_bytes(&zero, "\x06\x01\xbb\x00\x00", 5);
    decode_ipfix(t, &zero, &f);
    cr_assert_eq(f.dst_port, 443);
    cr_assert_eq(f.extra_len, 0, "zero ICMP fields of a TCP flow are noise");

    rb_bytes(&odd, "\x06\x01\xbb\x03\x00", 5);
    decode_ipfix(t, &odd, &f);
    cr_assert_eq(f.dst_port, 443);
    assert_extra_uint(&f, 0, 176, 1, 3);
    assert_extra_uint(&f, 0, 177, 1, 0);
}

/* ---- counters ---------------------------------------------------------- */

Test(sensor_fields, reads_counters_in_every_reduced_size)
{
    struct rb r;
    struct fl_flow f;

    for (uint16_t len = 1; len <= 8; len++) {
        struct fl_template *t = TPL({0, 1, len}, {0, 2, len});
        uint64_t v = len == 8 ? 0xfedcba9876543210ull : (1ull << (8 * len)) - 3;

        memset(&r, 0, sizeof(r));
        rb_uint(&r, v, len);
        rb_uint(&r, len, len);
        decode_ipfix(t, &r, &f);
        cr_assert_eq(f.bytes, v, "len %u", len);
        cr_assert_eq(f.packets, len);
        free_tpls();
    }
}

Test(sensor_fields, keeps_a_counter_wider_than_eight_bytes_as_extra)
{
    struct fl_template *t = TPL({0, 1, 9});
    struct rb r = {0};
    struct fl_flow f;
    const uint8_t *v;
    uint16_t n;

    rb_uint(&r, 0, 1);
    rb_uint(&r, 1000, 8);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.bytes, 0);
    cr_assert(find_extra(&f, 0, 1, &v, &n));
    cr_assert_eq(n, 9);
}

Test(sensor_fields, uses_totals_only_when_the_delta_is_absent)
{
    struct fl_template *tot = TPL({0, 85, 8}, {0, 86, 4});
    struct fl_template *both =
        TPL({0, 85, 8}, {0, 1, 4}, {0, 86, 4}, {0, 2, 4});
    struct rb r = {0};
    struct rb rb2 = {0};
    struct fl_flow f;

    rb_uint(&r, 5000, 8);
    rb_uint(&r, 50, 4);
    decode_ipfix(tot, &r, &f);
    cr_assert_eq(f.bytes, 5000);
    cr_assert_eq(f.packets, 50);
    cr_assert_eq(f.extra_len, 0);

    rb_uint(&rb2, 90000, 8);
    rb_uint(&rb2, 1200, 4);
    rb_uint(&rb2, 900, 4);
    rb_uint(&rb2, 12, 4);
    decode_ipfix(both, &rb2, &f);
    cr_assert_eq(f.bytes, 1200);
    cr_assert_eq(f.packets, 12);
    assert_extra_uint(&f, 0, 85, 8, 90000);
    assert_extra_uint(&f, 0, 86, 4, 900);
}

Test(sensor_fields, keeps_v9_out_bytes_and_out_packets_as_extra)
{
    struct fl_template *t = TPL({0, 1, 4}, {0, 23, 4}, {0, 24, 4});
    struct fl_msg_ctx x = ctx_v9(0);
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 10, 4);
    rb_uint(&r, 20, 4);
    rb_uint(&r, 30, 4);
    decode(t, &x, &r, &f);
    cr_assert_eq(f.bytes, 10);
    assert_extra_uint(&f, 0, 23, 4, 20);
    assert_extra_uint(&f, 0, 24, 4, 30);
}

Test(sensor_fields, maps_biflow_reverse_counters_and_keeps_other_reverse)
{
    struct fl_template *t =
        TPL({0, 1, 8}, {0, 2, 8}, {PEN_REV, 1, 8}, {PEN_REV, 2, 4},
            {PEN_REV, 6, 1}, {PEN_REV, 85, 8});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 1000, 8);
    rb_uint(&r, 10, 8);
    rb_uint(&r, 3000, 8);
    rb_uint(&r, 30, 4);
    rb_uint(&r, 0x12, 1);
    rb_uint(&r, 99999, 8);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.bytes, 1000);
    cr_assert_eq(f.packets, 10);
    cr_assert_eq(f.rev_bytes, 3000);
    cr_assert_eq(f.rev_packets, 30);
    cr_assert_eq(f.tcp_flags, 0);
    assert_extra_uint(&f, PEN_REV, 6, 1, 0x12);
    assert_extra_uint(&f, PEN_REV, 85, 8, 99999);
}

Test(sensor_fields, uses_reverse_totals_when_the_reverse_delta_is_absent)
{
    struct fl_template *t =
        TPL({0, 85, 8}, {0, 86, 8}, {PEN_REV, 85, 8}, {PEN_REV, 86, 8});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 100, 8);
    rb_uint(&r, 1, 8);
    rb_uint(&r, 200, 8);
    rb_uint(&r, 2, 8);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.bytes, 100);
    cr_assert_eq(f.rev_bytes, 200);
    cr_assert_eq(f.rev_packets, 2);
}

/* ---- NSEL, NAT and firewall events --------------------------------- */

Test(sensor_fields, maps_an_nsel_v9_record)
{
    struct fl_template *t =
        TPL({0, 8, 4}, {0, 12, 4}, {0, 40001, 4}, {0, 40002, 4}, {0, 40003, 2},
            {0, 40004, 2}, {0, 40005, 1}, {0, 33002, 2}, {0, 33000, 12},
            {0, 231, 4}, {0, 232, 4}, {0, 298, 4}, {0, 299, 4}, {0, 152, 8},
            {0, 323, 8});
    struct fl_msg_ctx x = ctx_v9(5000);
    struct rb r = {0};
    struct fl_flow f;
    const uint8_t *v;
    uint16_t n;

    rb_addr(&r, "10.1.1.1");
    rb_addr(&r, "8.8.8.8");
    rb_addr(&r, "198.51.100.1");
    rb_addr(&r, "8.8.4.4");
    rb_uint(&r, 40000, 2);
    rb_uint(&r, 53, 2);
    rb_uint(&r, 2, 1);
    rb_uint(&r, 2030, 2);
    rb_bytes(&r, "aclaclaclacl", 12);
    rb_uint(&r, 600, 4);
    rb_uint(&r, 1500, 4);
    rb_uint(&r, 6, 4);
    rb_uint(&r, 15, 4);
    rb_uint(&r, EXPORT_MS - 60000, 8);
    rb_uint(&r, EXPORT_MS - 1000, 8);
    decode(t, &x, &r, &f);

    assert_addr(&f.xlate_src_addr, "198.51.100.1");
    assert_addr(&f.xlate_dst_addr, "8.8.4.4");
    cr_assert_eq(f.xlate_src_port, 40000);
    cr_assert_eq(f.xlate_dst_port, 53);
    cr_assert_eq(f.fw_event, FL_FW_DELETE);
    cr_assert_eq(f.bytes, 600);
    cr_assert_eq(f.rev_bytes, 1500);
    cr_assert_eq(f.packets, 6);
    cr_assert_eq(f.rev_packets, 15);
    cr_assert_eq(f.time_start, EXPORT_MS - 60000);
    cr_assert_eq(f.time_end, EXPORT_MS - 1000, "event time ends the flow");
    assert_extra_uint(&f, 0, 33002, 2, 2030);
    cr_assert(find_extra(&f, 0, 33000, &v, &n));
    cr_assert_eq(n, 12);
    cr_assert_eq(memcmp(v, "aclaclaclacl", 12), 0);
}

Test(sensor_fields, treats_nsel_ids_as_vendor_specific_outside_v9)
{
    struct fl_template *t = TPL({0, 40001, 4}, {0, 40005, 1});
    struct rb r = {0};
    struct fl_flow f;

    rb_addr(&r, "198.51.100.1");
    rb_uint(&r, 1, 1);
    decode_ipfix(t, &r, &f);
    cr_assert(fl_addr_is_zero(&f.xlate_src_addr));
    cr_assert_eq(f.fw_event, 0);
    cr_assert(has_extra(&f, 0, 40001));
    assert_extra_uint(&f, 0, 40005, 1, 1);
}

Test(sensor_fields, maps_ipfix_post_nat_addresses_and_ports)
{
    struct fl_template *v4 =
        TPL({0, 225, 4}, {0, 226, 4}, {0, 227, 2}, {0, 228, 2});
    struct fl_template *v6 = TPL({0, 281, 16}, {0, 282, 16});
    struct rb r = {0};
    struct rb r6 = {0};
    struct fl_flow f;

    rb_addr(&r, "100.64.0.1");
    rb_addr(&r, "203.0.113.80");
    rb_uint(&r, 1024, 2);
    rb_uint(&r, 8080, 2);
    decode_ipfix(v4, &r, &f);
    assert_addr(&f.xlate_src_addr, "100.64.0.1");
    assert_addr(&f.xlate_dst_addr, "203.0.113.80");
    cr_assert_eq(f.xlate_src_port, 1024);
    cr_assert_eq(f.xlate_dst_port, 8080);

    rb_addr(&r6, "64:ff9b::1");
    rb_addr(&r6, "2001:db8::80");
    decode_ipfix(v6, &r6, &f);
    assert_addr(&f.xlate_src_addr, "64:ff9b::1");
    assert_addr(&f.xlate_dst_addr, "2001:db8::80");
}

static uint8_t
fw_of(uint16_t id, uint8_t v, struct fl_flow *f)
{
    struct fl_template *t = TPL({0, id, 1});
    struct fl_msg_ctx x = ctx_v9(0);
    struct rb r = {0};

    rb_uint(&r, v, 1);
    decode(t, &x, &r, f);
    free_tpls();
    return f->fw_event;
}

Test(sensor_fields, normalises_firewall_and_nat_events)
{
    struct fl_flow f;

    for (uint8_t v = 0; v <= 5; v++) {
        cr_assert_eq(fw_of(233, v, &f), v);
        cr_assert_eq(f.extra_len, 0);
        cr_assert_eq(fw_of(40005, v, &f), v);
    }
    cr_assert_eq(fw_of(233, 9, &f), FL_FW_NONE);
    assert_extra_uint(&f, 0, 233, 1, 9);

    cr_assert_eq(fw_of(230, 1, &f), FL_FW_CREATE);
    cr_assert_eq(f.extra_len, 0);
    cr_assert_eq(fw_of(230, 2, &f), FL_FW_DELETE);
    cr_assert_eq(fw_of(230, 4, &f), FL_FW_CREATE);
    assert_extra_uint(&f, 0, 230, 1, 4);
    cr_assert_eq(fw_of(230, 7, &f), FL_FW_DELETE);
    cr_assert_eq(fw_of(230, 16, &f), FL_FW_CREATE);
    cr_assert_eq(fw_of(230, 17, &f), FL_FW_DELETE);
    cr_assert_eq(fw_of(230, 3, &f), FL_FW_ALERT);
    cr_assert_eq(fw_of(230, 13, &f), FL_FW_ALERT);
    cr_assert_eq(fw_of(230, 200, &f), FL_FW_NONE);
}

Test(sensor_fields, prefers_the_firewall_event_over_the_nat_event)
{
    struct fl_template *t = TPL({0, 230, 1}, {0, 233, 1});
    struct rb r = {0};
    struct fl_flow f;

    rb_bytes(&r, "\x01\x03", 2);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.fw_event, FL_FW_DENY);
    assert_extra_uint(&f, 0, 230, 1, 1);
}

/* ---- time ------------------------------------------------------------ */

static void
assert_times(const struct fl_flow *f, uint64_t start, uint64_t end)
{
    cr_assert_eq(f->time_start, start, "start %llu want %llu",
                 (unsigned long long)f->time_start, (unsigned long long)start);
    cr_assert_eq(f->time_end, end, "end %llu want %llu",
                 (unsigned long long)f->time_end, (unsigned long long)end);
}

Test(sensor_fields, reads_seconds_and_milliseconds)
{
    struct fl_template *s = TPL({0, 150, 4}, {0, 151, 4});
    struct fl_template *ms = TPL({0, 152, 8}, {0, 153, 8});
    struct rb r = {0};
    struct rb r2 = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_SECS - 30, 4);
    rb_uint(&r, EXPORT_SECS - 2, 4);
    decode_ipfix(s, &r, &f);
    assert_times(&f, EXPORT_MS - 30000, EXPORT_MS - 2000);

    rb_uint(&r2, EXPORT_MS - 1234, 8);
    rb_uint(&r2, EXPORT_MS - 5, 8);
    decode_ipfix(ms, &r2, &f);
    assert_times(&f, EXPORT_MS - 1234, EXPORT_MS - 5);
}

Test(sensor_fields, reads_ntp_micro_and_nanosecond_times)
{
    struct fl_template *us = TPL({0, 154, 8}, {0, 155, 8});
    struct fl_template *ns = TPL({0, 156, 8}, {0, 157, 8});
    struct rb r = {0};
    struct rb r2 = {0};
    struct fl_flow f;

    /* 1700000000.250 s: NTP seconds 3908988800, fraction 2^30 */
    rb_uint(&r, 3908988800u, 4);
    rb_uint(&r, 0x40000000u, 4);
    rb_ntp(&r, EXPORT_MS + 999);
    decode_ipfix(us, &r, &f);
    assert_times(&f, EXPORT_MS + 250, EXPORT_MS + 999);

    rb_ntp(&r2, EXPORT_MS - 1);
    rb_uint(&r2, 3908988800u, 4);
    rb_uint(&r2, 0x80000000u, 4);
    decode_ipfix(ns, &r2, &f);
    assert_times(&f, EXPORT_MS - 1, EXPORT_MS + 500);
}

Test(sensor_fields, reads_delta_microseconds_before_the_export_time)
{
    struct fl_template *t = TPL({0, 158, 4}, {0, 159, 4});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 2500000, 4);
    rb_uint(&r, 1000, 4);
    decode_ipfix(t, &r, &f);
    assert_times(&f, EXPORT_MS - 2500, EXPORT_MS - 1);
}

Test(sensor_fields, dates_v9_uptime_times_by_the_header)
{
    struct fl_template *t = TPL({0, 22, 4}, {0, 21, 4});
    struct fl_msg_ctx x = ctx_v9(100000);
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 90000, 4);
    rb_uint(&r, 99000, 4);
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 10000, EXPORT_MS - 1000);
}

Test(sensor_fields, dates_v9_uptime_times_across_the_uptime_wrap)
{
    struct fl_template *t = TPL({0, 22, 4}, {0, 21, 4});
    struct fl_msg_ctx x = ctx_v9(1000);
    struct rb r = {0};
    struct fl_flow f;

    /* Started 256 ms before the 32-bit uptime wrapped, ended at 500. */
    rb_uint(&r, 0xffffff00u, 4);
    rb_uint(&r, 500, 4);
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 1256, EXPORT_MS - 500);
}

Test(sensor_fields, dates_ipfix_uptime_times_by_each_known_clock)
{
    struct fl_template *t = TPL({0, 22, 4}, {0, 21, 4});
    struct fl_template *rec = TPL({0, 160, 8}, {0, 22, 4}, {0, 21, 4});
    struct fl_msg_ctx x = ctx_ipfix();
    struct rb r = {0};
    struct rb r2 = {0};
    struct fl_flow f;

    rb_uint(&r, 1000, 4);
    rb_uint(&r, 3000, 4);

    /* Nothing known: the flow ends at export and keeps its length. */
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 2000, EXPORT_MS);

    /* An uptime the caller learned: the v9 rule. */
    x.sys_uptime_ms = 10000;
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 9000, EXPORT_MS - 7000);

    /* systemInitTimeMilliseconds from options wins over an uptime. */
    x.system_init_ms = EXPORT_MS - 100000;
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 99000, EXPORT_MS - 97000);

    /* ... and the record's own wins over the options'. */
    rb_uint(&r2, EXPORT_MS - 50000, 8);
    rb_bytes(&r2, r.b, r.n);
    decode(rec, &x, &r2, &f);
    assert_times(&f, EXPORT_MS - 49000, EXPORT_MS - 47000);
}

Test(sensor_fields, completes_one_end_from_a_duration)
{
    struct fl_template *ms = TPL({0, 152, 8}, {0, 161, 4});
    struct fl_template *us = TPL({0, 162, 4}, {0, 151, 4});
    struct fl_template *none = TPL({0, 161, 4});
    struct rb r = {0};
    struct rb r2 = {0};
    struct rb r3 = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_MS - 5000, 8);
    rb_uint(&r, 1500, 4);
    decode_ipfix(ms, &r, &f);
    assert_times(&f, EXPORT_MS - 5000, EXPORT_MS - 3500);

    rb_uint(&r2, 2500000, 4);
    rb_uint(&r2, EXPORT_SECS - 1, 4);
    decode_ipfix(us, &r2, &f);
    assert_times(&f, EXPORT_MS - 3500, EXPORT_MS - 1000);

    rb_uint(&r3, 700, 4);
    decode_ipfix(none, &r3, &f);
    assert_times(&f, EXPORT_MS - 700, EXPORT_MS);
}

Test(sensor_fields, uses_observation_time_when_nothing_else_dates_the_flow)
{
    struct fl_template *ms = TPL({0, 323, 8});
    struct fl_template *us = TPL({0, 324, 8});
    struct fl_template *ns = TPL({0, 4, 1}, {0, 325, 8});
    struct fl_template *both = TPL({0, 152, 8}, {0, 153, 8}, {0, 323, 8});
    struct rb r = {0};
    struct rb r2 = {0};
    struct rb r3 = {0};
    struct rb r4 = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_MS - 77, 8);
    decode_ipfix(ms, &r, &f);
    assert_times(&f, EXPORT_MS - 77, EXPORT_MS - 77);

    rb_ntp(&r2, EXPORT_MS - 88);
    decode_ipfix(us, &r2, &f);
    assert_times(&f, EXPORT_MS - 88, EXPORT_MS - 88);

    rb_uint(&r3, 6, 1);
    rb_ntp(&r3, EXPORT_MS - 99);
    decode_ipfix(ns, &r3, &f);
    assert_times(&f, EXPORT_MS - 99, EXPORT_MS - 99);

    /* With both ends known, the observation time is kept as extra. */
    rb_uint(&r4, EXPORT_MS - 900, 8);
    rb_uint(&r4, EXPORT_MS - 800, 8);
    rb_uint(&r4, EXPORT_MS - 10, 8);
    decode_ipfix(both, &r4, &f);
    assert_times(&f, EXPORT_MS - 900, EXPORT_MS - 800);
    assert_extra_uint(&f, 0, 323, 8, EXPORT_MS - 10);
}

Test(sensor_fields, uses_the_export_time_without_any_time_element)
{
    struct fl_template *t = TPL({0, 8, 4});
    struct rb r = {0};
    struct fl_flow f;

    rb_addr(&r, "192.0.2.55");
    decode_ipfix(t, &r, &f);
    assert_times(&f, EXPORT_MS, EXPORT_MS);
}

Test(sensor_fields, fills_a_missing_end_with_the_start)
{
    struct fl_template *s = TPL({0, 152, 8});
    struct fl_template *e = TPL({0, 153, 8});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_MS - 42, 8);
    decode_ipfix(s, &r, &f);
    assert_times(&f, EXPORT_MS - 42, EXPORT_MS - 42);
    decode_ipfix(e, &r, &f);
    assert_times(&f, EXPORT_MS - 42, EXPORT_MS - 42);
}

Test(sensor_fields, never_ends_a_flow_before_it_starts)
{
    struct fl_template *t = TPL({0, 152, 8}, {0, 153, 8});
    struct fl_template *up = TPL({0, 22, 4}, {0, 21, 4});
    struct fl_msg_ctx x = ctx_v9(100000);
    struct rb r = {0};
    struct rb r2 = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_MS - 10, 8);
    rb_uint(&r, EXPORT_MS - 5000, 8);
    decode_ipfix(t, &r, &f);
    assert_times(&f, EXPORT_MS - 10, EXPORT_MS - 10);

    rb_uint(&r2, 99000, 4);
    rb_uint(&r2, 98000, 4);
    decode(up, &x, &r2, &f);
    cr_assert_geq(f.time_end, f.time_start);
    cr_assert_eq(f.time_start, EXPORT_MS - 1000);
}

Test(sensor_fields, prefers_finer_time_encodings_and_keeps_the_others)
{
    struct fl_template *t =
        TPL({0, 150, 4}, {0, 152, 8}, {0, 22, 4}, {0, 153, 8});
    struct fl_msg_ctx x = ctx_v9(100000);
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, EXPORT_SECS - 3, 4);
    rb_uint(&r, EXPORT_MS - 2999, 8);
    rb_uint(&r, 97000, 4);
    rb_uint(&r, EXPORT_MS - 1, 8);
    decode(t, &x, &r, &f);
    assert_times(&f, EXPORT_MS - 2999, EXPORT_MS - 1);
    assert_extra_uint(&f, 0, 150, 4, EXPORT_SECS - 3);
    assert_extra_uint(&f, 0, 22, 4, 97000);
}

/* ---- sampling -------------------------------------------------------- */

static uint32_t
lookup_sampler(const void *arg, uint32_t id)
{
    const uint32_t *table = arg; /* pairs of (id, interval), 0-terminated */

    for (; table[0] != 0; table += 2) {
        if (table[0] == id) {
            return table[1];
        }
    }
    return 0;
}

static const uint32_t samplers[] = {5, 64, 0x01020304, 1000, 0, 0};

/* Decodes one record of (field, value) with x and returns the flow. */
static void
sampled(struct fl_msg_ctx *x, uint16_t id, uint16_t len, uint64_t v,
        struct fl_flow *f)
{
    struct fl_template *t = TPL({0, 1, 4}, {0, 2, 4}, {PEN_REV, 1, 4},
                                {PEN_REV, 2, 4}, {0, id, len});
    struct rb r = {0};

    rb_uint(&r, 1500, 4);
    rb_uint(&r, 3, 4);
    rb_uint(&r, 700, 4);
    rb_uint(&r, 2, 4);
    rb_uint(&r, v, len);
    decode(t, x, &r, f);
    free_tpls();
}

static void
assert_scaled(const struct fl_flow *f, uint32_t iv)
{
    cr_assert_eq(f->sampling, iv);
    cr_assert_eq(f->bytes, 1500ull * iv);
    cr_assert_eq(f->packets, 3ull * iv);
    cr_assert_eq(f->rev_bytes, 700ull * iv);
    cr_assert_eq(f->rev_packets, 2ull * iv);
}

Test(sensor_fields, multiplies_counters_by_the_records_own_interval)
{
    struct fl_msg_ctx x = ctx_ipfix();
    struct fl_flow f;

    x.sampling = 7; /* the record's own interval wins */
    sampled(&x, 34, 4, 100, &f);
    assert_scaled(&f, 100);
    sampled(&x, 50, 2, 512, &f);
    assert_scaled(&f, 512);
    sampled(&x, 305, 4, 20, &f);
    assert_scaled(&f, 20);
}

Test(sensor_fields, derives_the_interval_from_packet_interval_and_space)
{
    struct fl_template *t = TPL({0, 2, 4}, {0, 306, 4}, {0, 305, 4});
    struct rb r = {0};
    struct rb r2 = {0};
    struct rb r3 = {0};
    struct fl_flow f;

    rb_uint(&r, 10, 4);
    rb_uint(&r, 99, 4);
    rb_uint(&r, 1, 4);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.sampling, 100);
    cr_assert_eq(f.packets, 1000);

    rb_uint(&r2, 10, 4);
    rb_uint(&r2, 6, 4);
    rb_uint(&r2, 4, 4); /* 4 of every 10 taken: 2.5, rounded to 3 */
    decode_ipfix(t, &r2, &f);
    cr_assert_eq(f.sampling, 3);

    rb_uint(&r3, 10, 4);
    rb_uint(&r3, 0, 4);
    rb_uint(&r3, 4, 4); /* nothing skipped: unsampled */
    decode_ipfix(t, &r3, &f);
    cr_assert_eq(f.sampling, 1);
    cr_assert_eq(f.packets, 10);
}

Test(sensor_fields, looks_up_the_interval_of_the_records_sampler)
{
    struct fl_msg_ctx x = ctx_v9(0);
    struct fl_flow f;

    x.sampler_lookup = lookup_sampler;
    x.sampler_arg = samplers;
    x.sampling = 7;
    sampled(&x, 48, 1, 5, &f);
    assert_scaled(&f, 64);
    x.version = 10;
    sampled(&x, 302, 8, 0x01020304, &f);
    assert_scaled(&f, 1000);

    /* An unknown sampler falls back to the source's interval. */
    sampled(&x, 302, 4, 6, &f);
    assert_scaled(&f, 7);
    /* Without a lookup a sampler id means nothing. */
    x.sampler_lookup = NULL;
    x.sampling = 9;
    sampled(&x, 48, 2, 5, &f);
    assert_scaled(&f, 9);
}

Test(sensor_fields, falls_back_to_the_sources_interval_and_then_to_one)
{
    struct fl_msg_ctx x = ctx_ipfix();
    struct fl_flow f;

    x.sampling = 10;
    sampled(&x, 4, 1, 6, &f);
    assert_scaled(&f, 10);
    cr_assert_eq(f.proto, 6);

    /* A zero interval in the record says nothing. */
    sampled(&x, 34, 4, 0, &f);
    assert_scaled(&f, 10);

    x.sampling = 0;
    sampled(&x, 4, 1, 6, &f);
    assert_scaled(&f, 1);
}

Test(sensor_fields, saturates_counters_instead_of_overflowing)
{
    struct fl_template *t = TPL({0, 1, 8}, {0, 34, 4});
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, UINT64_MAX / 3, 8);
    rb_uint(&r, 4, 4);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.bytes, UINT64_MAX);
    cr_assert_eq(f.sampling, 4);
}

/* ---- variable length, extras, truncation ---------------------------- */

Test(sensor_fields, reads_variable_length_fields_of_both_length_forms)
{
    struct fl_template *t = TPL({0, 82, FL_VARLEN}, {0, 8, FL_VARLEN},
                                {9, 1000, FL_VARLEN}, {0, 4, 1});
    struct rb r = {0};
    struct fl_flow f;
    uint8_t big[300];
    const uint8_t *v;
    uint16_t n;

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)i;
    }
    rb_uint(&r, 5, 1);
    rb_bytes(&r, "eth0x", 5);
    rb_uint(&r, 4, 1);
    rb_addr(&r, "192.0.2.200");
    rb_uint(&r, 255, 1);
    rb_uint(&r, sizeof(big), 2);
    rb_bytes(&r, big, sizeof(big));
    rb_uint(&r, 17, 1);
    decode_ipfix(t, &r, &f);

    assert_addr(&f.src_addr, "192.0.2.200");
    cr_assert_eq(f.proto, 17);
    cr_assert(find_extra(&f, 0, 82, &v, &n));
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(v, "eth0x", 5), 0);
    cr_assert(find_extra(&f, 9, 1000, &v, &n));
    cr_assert_eq(n, sizeof(big));
    cr_assert_eq(memcmp(v, big, sizeof(big)), 0);
}

Test(sensor_fields, accepts_an_empty_variable_length_field)
{
    struct fl_template *t = TPL({0, 82, FL_VARLEN}, {0, 4, 1});
    struct rb r = {0};
    struct fl_flow f;
    const uint8_t *v;
    uint16_t n;

    rb_bytes(&r, "\x00\x06", 2);
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.proto, 6);
    cr_assert(find_extra(&f, 0, 82, &v, &n));
    cr_assert_eq(n, 0);
}

Test(sensor_fields, keeps_enterprise_elements_with_their_bytes_in_order)
{
    struct fl_template *t = TPL({6876, 890, 4}, {0, 4, 1}, {6876, 888, 2},
                                {0, 136, 1}, {0, 210, 3});
    struct rb r = {0};
    struct fl_flow f;
    /* clang-format off */
    static const uint8_t want[] = {
        0, 0, 0x1a, 0xdc, 0x03, 0x7a, 0, 4, 0xde, 0xad, 0xbe, 0xef,
        0, 0, 0x1a, 0xdc, 0x03, 0x78, 0, 2, 0x12, 0x34,
        0, 0, 0,    0,    0,    136,  0, 1, 0x02,
    };
    /* clang-format on */

    rb_uint(&r, 0xdeadbeef, 4);
    rb_uint(&r, 6, 1);
    rb_uint(&r, 0x1234, 2);
    rb_uint(&r, 2, 1);
    rb_uint(&r, 0, 3); /* paddingOctets mean nothing and are dropped */
    decode_ipfix(t, &r, &f);
    cr_assert_eq(f.extra, extra);
    cr_assert_eq(f.extra_len, sizeof(want));
    cr_assert_eq(memcmp(f.extra, want, sizeof(want)), 0);
    cr_assert_eq(f.proto, 6);
}

Test(sensor_fields, drops_extras_that_do_not_fit_but_never_the_record)
{
    struct fl_template *t = TPL({9, 1, 4}, {9, 2, 20}, {9, 3, 1}, {0, 8, 4});
    struct fl_msg_ctx x = ctx_ipfix();
    struct rb r = {0};
    struct fl_flow f;

    rb_uint(&r, 1, 4);
    rb_uint(&r, 0, 20);
    rb_uint(&r, 3, 1);
    rb_addr(&r, "192.0.2.9");

    decode_cap(t, &x, &r, &f, (8 + 4) + (8 + 1));
    cr_assert_eq(f.extra_len, 12, "the second extra does not fit");
    assert_extra_uint(&f, 9, 1, 4, 1);
    cr_assert_not(has_extra(&f, 9, 3), "the third would fit but is dropped");
    assert_addr(&f.src_addr, "192.0.2.9");

    decode_cap(t, &x, &r, &f, 0);
    cr_assert_eq(f.extra_len, 0);
    cr_assert_null(f.extra);
    assert_addr(&f.src_addr, "192.0.2.9");
}

Test(sensor_fields, consumes_exactly_one_record_at_a_time)
{
    struct fl_template *t = TPL({0, 7, 2}, {0, 82, FL_VARLEN});
    struct fl_msg_ctx x = ctx_ipfix();
    struct rb r = {0};
    struct fl_cursor c;
    struct fl_flow f;

    rb_bytes(&r, "\x00\x01\x02xy\x00\x02\x00", 8);
    fl_cursor_init(&c, r.b, r.n);
    cr_assert_eq(fl_fields_decode(t, &x, &c, &f, extra, sizeof(extra)), FL_OK);
    cr_assert_eq(f.src_port, 1);
    cr_assert_eq(c.left, 3);
    cr_assert_eq(fl_fields_decode(t, &x, &c, &f, extra, sizeof(extra)), FL_OK);
    cr_assert_eq(f.src_port, 2);
    cr_assert_eq(c.left, 0);
}

static void
assert_truncated_everywhere(const struct fl_template *t, const struct rb *r,
                            bool options)
{
    struct fl_msg_ctx x = ctx_ipfix();
    struct fl_cursor c;
    struct fl_flow f;
    struct fl_options_info o;
    int rc;

    for (size_t cut = 0; cut < r->n; cut++) {
        fl_cursor_init(&c, r->b, cut);
        rc = options ? fl_fields_options(t, &x, &c, &o)
                     : fl_fields_decode(t, &x, &c, &f, extra, sizeof(extra));
        cr_assert_eq(rc, FL_ETRUNC, "cut at %zu: %d", cut, rc);
        cr_assert_eq(c.p, r->b, "cursor moved at cut %zu", cut);
        cr_assert_eq(c.left, cut);
    }
    fl_cursor_init(&c, r->b, r->n);
    rc = options ? fl_fields_options(t, &x, &c, &o)
                 : fl_fields_decode(t, &x, &c, &f, extra, sizeof(extra));
    cr_assert_eq(rc, FL_OK);
}

Test(sensor_fields, refuses_a_record_cut_at_any_byte_without_moving)
{
    struct fl_template *t = TPL({0, 8, 4}, {0, 82, FL_VARLEN}, {0, 1, 8},
                                {9, 5, FL_VARLEN}, {0, 4, 1});
    struct rb r = {0};

    rb_addr(&r, "192.0.2.1");
    rb_uint(&r, 3, 1);
    rb_bytes(&r, "abc", 3);
    rb_uint(&r, 1000, 8);
    rb_uint(&r, 255, 1);
    rb_uint(&r, 260, 2);
    for (int i = 0; i < 260; i++) {
        rb_uint(&r, (uint64_t)i, 1);
    }
    rb_uint(&r, 6, 1);
    assert_truncated_everywhere(t, &r, false);
}

Test(sensor_fields, refuses_a_variable_length_that_runs_past_the_end)
{
    struct fl_template *t = TPL({0, 82, FL_VARLEN});
    struct fl_msg_ctx x = ctx_ipfix();
    struct rb r = {0};
    struct fl_cursor c;
    struct fl_flow f;

    rb_bytes(&r, "\xff\x01\x00short", 8);
    fl_cursor_init(&c, r.b, r.n);
    cr_assert_eq(fl_fields_decode(t, &x, &c, &f, extra, sizeof(extra)),
                 FL_ETRUNC);
    cr_assert_eq(c.p, r.b);
    cr_assert_eq(c.left, r.n);
}

/* ---- options records ------------------------------------------------- */

Test(sensor_fields, reads_v9_sampler_options_behind_a_system_scope)
{
    /* Scope type 1 (system) shares its number with octetDeltaCount. */
    struct fl_template *t =
        OPT_TPL(1, {0, 1, 4}, {0, 48, 2}, {0, 49, 1}, {0, 50, 4}, {0, 141, 4});
    struct fl_msg_ctx x = ctx_v9(0);
    struct fl_options_info o;
    struct rb r = {0};
    struct fl_cursor c;

    rb_uint(&r, 0x0a000001, 4);
    rb_uint(&r, 3, 2);
    rb_uint(&r, 2, 1);
    rb_uint(&r, 1000, 4);
    rb_uint(&r, 77, 4);
    fl_cursor_init(&c, r.b, r.n);
    cr_assert_eq(fl_fields_options(t, &x, &c, &o), FL_OK);
    cr_assert_eq(c.left, 0);
    cr_assert(o.has_sampling);
    cr_assert_eq(o.sampling, 1000);
    cr_assert_eq(o.algorithm, 2);
    cr_assert(o.has_sampler_id);
    cr_assert_eq(o.sampler_id, 3, "lineCardId is not a sampler id");
    cr_assert_not(o.has_system_init);
}

Test(sensor_fields, reads_ipfix_selector_options_and_system_init_time)
{
    struct fl_template *t = OPT_TPL(1, {0, 302, 8}, {0, 304, 2}, {0, 305, 4},
                                    {0, 306, 4}, {0, 160, 8}, {9, 34, 4});
    struct fl_msg_ctx x = ctx_ipfix();
    struct fl_options_info o;
    struct rb r = {0};
    struct fl_cursor c;

    rb_uint(&r, 42, 8);
    rb_uint(&r, 1, 2);
    rb_uint(&r, 1, 4);
    rb_uint(&r, 511, 4);
    rb_uint(&r, EXPORT_MS - 86400000ull, 8);
    rb_uint(&r, 5, 4); /* enterprise 34 is not samplingInterval */
    fl_cursor_init(&c, r.b, r.n);
    cr_assert_eq(fl_fields_options(t, &x, &c, &o), FL_OK);
    cr_assert_eq(c.left, 0);
    cr_assert(o.has_sampler_id);
    cr_assert_eq(o.sampler_id, 42);
    cr_assert_eq(o.algorithm, 1);
    cr_assert(o.has_sampling);
    cr_assert_eq(o.sampling, 512);
    cr_assert(o.has_system_init);
    cr_assert_eq(o.system_init_ms, EXPORT_MS - 86400000ull);
}

Test(sensor_fields, reads_the_sampling_interval_of_ipfix_options)
{
    struct fl_template *t = OPT_TPL(1, {0, 141, 4}, {0, 34, 4}, {0, 35, 1});
    struct fl_msg_ctx x = ctx_ipfix();
    struct fl_options_info o;
    struct rb r = {0};
    struct fl_cursor c;

    rb_uint(&r, 8, 4);
    rb_uint(&r, 2000, 4);
    rb_uint(&r, 1, 1);
    fl_cursor_init(&c, r.b, r.n);
    cr_assert_eq(fl_fields_options(t, &x, &c, &o), FL_OK);
    cr_assert(o.has_sampling);
    cr_assert_eq(o.sampling, 2000);
    cr_assert_eq(o.algorithm, 1);
    cr_assert_not(o.has_sampler_id);
}

Test(sensor_fields, refuses_an_options_record_cut_at_any_byte)
{
    struct fl_template *t =
        OPT_TPL(1, {0, 302, 4}, {0, 82, FL_VARLEN}, {0, 34, 4});
    struct rb r = {0};

    rb_uint(&r, 1, 4);
    rb_uint(&r, 2, 1);
    rb_bytes(&r, "ab", 2);
    rb_uint(&r, 100, 4);
    assert_truncated_everywhere(t, &r, true);
}
