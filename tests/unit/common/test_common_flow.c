/*
 * The flow record as NDJSON: exact lines for known flows, every field
 * read back out of the text, optional fields, extra elements, short
 * buffers and the RFC 3339 time text.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

/* ---- a reader for the flat objects the formatter writes ------------- */

#define MAX_KEYS 64

struct member {
    char key[32];
    const char *val; /* points into the line */
    size_t val_len;
};

struct object {
    struct member m[MAX_KEYS];
    int n;
};

/* Length of a JSON value at p: a plain string, a number or an array. */
static size_t
value_len(const char *p)
{
    size_t i = 0;
    int depth = 0;
    bool in_str = false;

    do {
        char ch = p[i];

        cr_assert_neq(ch, '\0', "value runs off the line");
        cr_assert_neq(ch, '\\', "no escapes expected");
        if (in_str) {
            in_str = ch != '"';
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '[' || ch == '{') {
            depth++;
        } else if (ch == ']' || ch == '}') {
            depth--;
        } else if ((ch == ',' || ch == '\n') && depth == 0) {
            return i;
        }
        i++;
    } while (depth > 0 || in_str || (p[i] != ',' && p[i] != '}'));
    return i;
}

/* Splits one NDJSON line into its top-level members; asserts its shape. */
static void
read_object(const char *line, struct object *o)
{
    const char *p = line;
    size_t len = strlen(line);

    cr_assert_geq(len, 3);
    cr_assert_eq(line[0], '{');
    cr_assert_str_eq(line + len - 2, "}\n");
    cr_assert_eq(strchr(line, '\n'), line + len - 1, "one line only");
    o->n = 0;
    p++;
    while (*p != '}') {
        struct member *m = &o->m[o->n];
        const char *colon;

        cr_assert_lt(o->n, MAX_KEYS);
        cr_assert_eq(*p, '"', "key at: %s", p);
        colon = strstr(p, "\":");
        cr_assert_not_null(colon);
        cr_assert_lt((size_t)(colon - p - 1), sizeof(m->key));
        memcpy(m->key, p + 1, (size_t)(colon - p - 1));
        m->key[colon - p - 1] = '\0';
        for (int i = 0; i < o->n; i++) {
            cr_assert_str_neq(o->m[i].key, m->key, "duplicate key");
        }
        m->val = colon + 2;
        m->val_len = value_len(m->val);
        p = m->val + m->val_len;
        cr_assert(*p == ',' || *p == '}', "after %s: %s", m->key, p);
        if (*p == ',') {
            p++;
        }
        o->n++;
    }
    cr_assert_str_eq(p, "}\n");
}

static const struct member *
find(const struct object *o, const char *key)
{
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->m[i].key, key) == 0) {
            return &o->m[i];
        }
    }
    return NULL;
}

static uint64_t
num(const struct object *o, const char *key)
{
    const struct member *m = find(o, key);
    char text[32];
    char *end;
    uint64_t v;

    cr_assert_not_null(m, "%s missing", key);
    cr_assert_lt(m->val_len, sizeof(text));
    memcpy(text, m->val, m->val_len);
    text[m->val_len] = '\0';
    cr_assert(text[0] >= '0' && text[0] <= '9', "%s: %s", key, text);
    v = strtoull(text, &end, 10);
    cr_assert_eq(*end, '\0', "%s: %s", key, text);
    return v;
}

/* Copies a string member's text without its quotes. */
static void
str(const struct object *o, const char *key, char *buf, size_t cap)
{
    const struct member *m = find(o, key);

    cr_assert_not_null(m, "%s missing", key);
    cr_assert_geq(m->val_len, 2);
    cr_assert_eq(m->val[0], '"');
    cr_assert_eq(m->val[m->val_len - 1], '"');
    cr_assert_lt(m->val_len - 2, cap);
    memcpy(buf, m->val + 1, m->val_len - 2);
    buf[m->val_len - 2] = '\0';
}

static struct fl_addr
addr_member(const struct object *o, const char *key)
{
    char text[FL_ADDR_STRLEN];
    struct fl_addr a;

    str(o, key, text, sizeof(text));
    cr_assert_eq(fl_addr_parse(text, &a), FL_OK, "%s: %s", key, text);
    return a;
}

/* Reads "YYYY-MM-DDTHH:MM:SS.mmmZ" back into ms, independently of libc. */
static uint64_t
time_member(const struct object *o, const char *key)
{
    char text[FL_TIME_STRLEN];
    struct tm tm;
    unsigned ms;
    int used = 0;

    memset(&tm, 0, sizeof(tm));
    str(o, key, text, sizeof(text));
    cr_assert_eq(strlen(text), 24, "%s: %s", key, text);
    cr_assert_eq(sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3uZ%n", &tm.tm_year,
                        &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                        &tm.tm_sec, &ms, &used),
                 7, "%s: %s", key, text);
    cr_assert_eq(used, 24);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (uint64_t)timegm(&tm) * 1000 + ms;
}

/* ---- flows ---------------------------------------------------------- */

static struct fl_addr
addr_of(const char *s)
{
    struct fl_addr a;

    cr_assert_eq(fl_addr_parse(s, &a), FL_OK, "parse %s", s);
    return a;
}

static void
known_v4_flow(struct fl_flow *f)
{
    fl_flow_clear(f);
    f->time_start = 1700000000123ull; /* 2023-11-14T22:13:20.123Z */
    f->time_end = 1700000001000ull;
    f->src_addr = addr_of("192.0.2.1");
    f->dst_addr = addr_of("198.51.100.7");
    f->exporter = addr_of("192.0.2.254");
    f->src_port = 49152;
    f->dst_port = 443;
    f->proto = 6;
    f->tcp_flags = 0x1b;
    f->packets = 10;
    f->bytes = 1500;
    f->in_if = 3;
    f->out_if = 5;
    f->src_as = 64500;
    f->dst_as = 64501;
}

static int
format(const struct fl_flow *f, const char *sensor, char *buf)
{
    int n = fl_flow_format_ndjson(f, sensor, buf, FL_FLOW_NDJSON_MAX);

    cr_assert_gt(n, 0, "format failed: %d", n);
    cr_assert_eq((size_t)n, strlen(buf), "returned length");
    return n;
}

Test(common_flow, formats_a_known_ipv4_flow_exactly)
{
    struct fl_flow f;
    char buf[FL_FLOW_NDJSON_MAX];

    known_v4_flow(&f);
    format(&f, "edge-1", buf);
    cr_assert_str_eq(buf, "{\"time_start\":\"2023-11-14T22:13:20.123Z\","
                          "\"time_end\":\"2023-11-14T22:13:21.000Z\","
                          "\"src_addr\":\"192.0.2.1\","
                          "\"dst_addr\":\"198.51.100.7\","
                          "\"src_port\":49152,\"dst_port\":443,"
                          "\"proto\":6,\"tcp_flags\":27,\"tos\":0,"
                          "\"packets\":10,\"bytes\":1500,"
                          "\"in_if\":3,\"out_if\":5,"
                          "\"src_as\":64500,\"dst_as\":64501,"
                          "\"vlan\":0,\"mpls\":0,\"direction\":0,"
                          "\"exporter\":\"192.0.2.254\","
                          "\"domain\":0,\"sampling\":1,"
                          "\"sensor\":\"edge-1\"}\n");
}

Test(common_flow, formats_a_known_ipv6_flow_exactly)
{
    struct fl_flow f;
    char buf[FL_FLOW_NDJSON_MAX];

    fl_flow_clear(&f);
    f.time_start = 951868799999ull; /* 2000-02-29T23:59:59.999Z */
    f.time_end = 951868800000ull;
    f.src_addr = addr_of("2001:DB8:0:0:0:0:0:1");
    f.dst_addr = addr_of("2001:db8:0:1:0:0:0:35");
    f.exporter = addr_of("fe80::1");
    f.src_port = 0;
    f.dst_port = 128 * 256; /* ICMPv6 echo request, code 0 */
    f.proto = 58;
    f.tos = 0xb8;
    f.packets = 1;
    f.bytes = 104;
    f.vlan = 100;
    f.mpls = 0xfffff;
    f.direction = 1;
    f.domain = 4096;
    f.sampling = 1000;
    format(&f, NULL, buf);
    cr_assert_str_eq(buf, "{\"time_start\":\"2000-02-29T23:59:59.999Z\","
                          "\"time_end\":\"2000-03-01T00:00:00.000Z\","
                          "\"src_addr\":\"2001:db8::1\","
                          "\"dst_addr\":\"2001:db8:0:1::35\","
                          "\"src_port\":0,\"dst_port\":32768,"
                          "\"proto\":58,\"tcp_flags\":0,\"tos\":184,"
                          "\"packets\":1,\"bytes\":104,"
                          "\"in_if\":0,\"out_if\":0,"
                          "\"src_as\":0,\"dst_as\":0,"
                          "\"vlan\":100,\"mpls\":1048575,\"direction\":1,"
                          "\"exporter\":\"fe80::1\","
                          "\"domain\":4096,\"sampling\":1000}\n");
}

Test(common_flow, every_field_reads_back_from_the_text)
{
    struct fl_flow f;
    struct fl_addr a;
    struct object o;
    char buf[FL_FLOW_NDJSON_MAX];
    char sensor[64];

    fl_flow_clear(&f);
    f.time_start = 4102444799000ull; /* 2099-12-31T23:59:59Z */
    f.time_end = 4102444800001ull;
    f.src_addr = addr_of("2001:db8::a:b:c:d");
    f.dst_addr = addr_of("203.0.113.250");
    f.exporter = addr_of("2001:db8:ffff::2");
    f.packets = UINT64_MAX;
    f.bytes = UINT64_MAX - 1;
    f.in_if = UINT32_MAX;
    f.out_if = UINT32_MAX - 1;
    f.src_as = 4200000000u;
    f.dst_as = 65536;
    f.mpls = 16;
    f.domain = UINT32_MAX;
    f.sampling = 512;
    f.src_port = 65535;
    f.dst_port = 1;
    f.vlan = 4095;
    f.proto = 255;
    f.tcp_flags = 255;
    f.tos = 255;
    f.direction = 1;
    format(&f, "site.A_2", buf);
    read_object(buf, &o);

    cr_assert_eq(time_member(&o, "time_start"), f.time_start);
    cr_assert_eq(time_member(&o, "time_end"), f.time_end);
    a = addr_member(&o, "src_addr");
    cr_assert_eq(fl_addr_cmp(&a, &f.src_addr), 0);
    a = addr_member(&o, "dst_addr");
    cr_assert_eq(fl_addr_cmp(&a, &f.dst_addr), 0);
    a = addr_member(&o, "exporter");
    cr_assert_eq(fl_addr_cmp(&a, &f.exporter), 0);
    cr_assert_eq(num(&o, "packets"), f.packets);
    cr_assert_eq(num(&o, "bytes"), f.bytes);
    cr_assert_eq(num(&o, "in_if"), f.in_if);
    cr_assert_eq(num(&o, "out_if"), f.out_if);
    cr_assert_eq(num(&o, "src_as"), f.src_as);
    cr_assert_eq(num(&o, "dst_as"), f.dst_as);
    cr_assert_eq(num(&o, "mpls"), f.mpls);
    cr_assert_eq(num(&o, "domain"), f.domain);
    cr_assert_eq(num(&o, "sampling"), f.sampling);
    cr_assert_eq(num(&o, "src_port"), f.src_port);
    cr_assert_eq(num(&o, "dst_port"), f.dst_port);
    cr_assert_eq(num(&o, "vlan"), f.vlan);
    cr_assert_eq(num(&o, "proto"), f.proto);
    cr_assert_eq(num(&o, "tcp_flags"), f.tcp_flags);
    cr_assert_eq(num(&o, "tos"), f.tos);
    cr_assert_eq(num(&o, "direction"), f.direction);
    str(&o, "sensor", sensor, sizeof(sensor));
    cr_assert_str_eq(sensor, "site.A_2");
    /* 21 always-present fields plus the sensor and nothing else. */
    cr_assert_eq(o.n, 22);
}

/* ---- optional fields ------------------------------------------------ */

static const char *const optional_keys[] = {
    "next_hop",       "xlate_src_addr", "xlate_dst_addr", "xlate_src_port",
    "xlate_dst_port", "rev_packets",    "rev_bytes",      "fw_event",
    "extra",          "sensor",
};

/* Formats f and asserts which optional keys appear: exactly those named. */
static void
assert_optional(const struct fl_flow *f, const char *sensor,
                const char *const *present, size_t n_present, struct object *o,
                char *buf)
{
    format(f, sensor, buf);
    read_object(buf, o);
    for (size_t i = 0; i < sizeof(optional_keys) / sizeof(optional_keys[0]);
         i++) {
        bool want = false;

        for (size_t j = 0; j < n_present; j++) {
            want = want || strcmp(present[j], optional_keys[i]) == 0;
        }
        cr_assert_eq(find(o, optional_keys[i]) != NULL, want, "%s in %s",
                     optional_keys[i], buf);
    }
}

Test(common_flow, leaves_out_unset_optional_fields)
{
    struct fl_flow f;
    struct object o;
    char buf[FL_FLOW_NDJSON_MAX];

    known_v4_flow(&f);
    assert_optional(&f, NULL, NULL, 0, &o, buf);
    cr_assert_eq(o.n, 21);
    /* The unspecified address of either family counts as unset. */
    f.next_hop = addr_of("0.0.0.0");
    f.xlate_src_addr = addr_of("::");
    assert_optional(&f, NULL, NULL, 0, &o, buf);
}

Test(common_flow, prints_optional_fields_only_when_set)
{
    static const char *const nh[] = {"next_hop"};
    static const char *const nat[] = {"xlate_src_addr", "xlate_dst_addr",
                                      "xlate_src_port", "xlate_dst_port"};
    static const char *const rev[] = {"rev_packets", "rev_bytes"};
    static const char *const fw[] = {"fw_event", "sensor"};
    struct fl_flow f;
    struct object o;
    char buf[FL_FLOW_NDJSON_MAX];
    char text[FL_ADDR_STRLEN];

    known_v4_flow(&f);
    f.next_hop = addr_of("2001:db8::fe");
    assert_optional(&f, NULL, nh, 1, &o, buf);
    str(&o, "next_hop", text, sizeof(text));
    cr_assert_str_eq(text, "2001:db8::fe");

    known_v4_flow(&f);
    f.xlate_src_addr = addr_of("100.64.0.1");
    f.xlate_dst_addr = addr_of("198.51.100.7");
    f.xlate_src_port = 1024;
    assert_optional(&f, NULL, nat, 4, &o, buf);
    str(&o, "xlate_src_addr", text, sizeof(text));
    cr_assert_str_eq(text, "100.64.0.1");
    cr_assert_eq(num(&o, "xlate_src_port"), 1024);
    cr_assert_eq(num(&o, "xlate_dst_port"), 0);

    known_v4_flow(&f);
    f.rev_bytes = 9000;
    assert_optional(&f, NULL, rev, 2, &o, buf);
    cr_assert_eq(num(&o, "rev_packets"), 0);
    cr_assert_eq(num(&o, "rev_bytes"), 9000);

    known_v4_flow(&f);
    f.fw_event = FL_FW_DENY;
    assert_optional(&f, "fw", fw, 2, &o, buf);
    cr_assert_eq(num(&o, "fw_event"), FL_FW_DENY);
}

Test(common_flow, prints_extra_elements_as_hex)
{
    static const uint8_t extra[] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x59, 0x00, 0x02, 0xab, 0xcd, /* */
        0x00, 0x00, 0x9e, 0x6d, 0x01, 0x00, 0x00, 0x01, 0x0f,       /* */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,             /* */
    };
    static const char *const ex[] = {"extra"};
    struct fl_flow f;
    struct object o;
    char buf[FL_FLOW_NDJSON_MAX];
    const struct member *m;
    const char *want = "[{\"pen\":0,\"id\":89,\"hex\":\"abcd\"},"
                       "{\"pen\":40557,\"id\":256,\"hex\":\"0f\"},"
                       "{\"pen\":4294967295,\"id\":65535,\"hex\":\"\"}]";

    known_v4_flow(&f);
    f.extra = extra;
    f.extra_len = sizeof(extra);
    assert_optional(&f, NULL, ex, 1, &o, buf);
    m = find(&o, "extra");
    cr_assert_eq(m->val_len, strlen(want), "%s", buf);
    cr_assert_eq(memcmp(m->val, want, m->val_len), 0, "%s", buf);
    /* extra is the last member, right before the closing brace. */
    cr_assert_str_eq(m->val + m->val_len, "}\n");
}

Test(common_flow, prints_every_byte_value_of_extra_in_lower_case_hex)
{
    uint8_t extra[8 + 256];
    struct fl_flow f;
    struct object o;
    char buf[FL_FLOW_NDJSON_MAX];
    const struct member *m;
    const char *hex;

    fl_put_be32(extra, 29305);
    fl_put_be16(extra + 4, 12);
    fl_put_be16(extra + 6, 256);
    for (int i = 0; i < 256; i++) {
        extra[8 + i] = (uint8_t)i;
    }
    known_v4_flow(&f);
    f.extra = extra;
    f.extra_len = sizeof(extra);
    format(&f, NULL, buf);
    read_object(buf, &o);
    m = find(&o, "extra");
    cr_assert_not_null(m);
    hex = strstr(m->val, "\"hex\":\"");
    cr_assert_not_null(hex);
    hex += 7;
    for (int i = 0; i < 256; i++) {
        char two[3];

        snprintf(two, sizeof(two), "%02x", i);
        cr_assert_eq(memcmp(hex + 2 * i, two, 2), 0, "byte %d", i);
    }
    cr_assert_eq(hex[512], '"');
}

Test(common_flow, reports_a_buffer_too_small_at_every_size)
{
    static const uint8_t extra[] = {0, 0, 0, 1, 0, 2, 0, 1, 0x7f};
    struct fl_flow f;
    char full[FL_FLOW_NDJSON_MAX];
    char buf[FL_FLOW_NDJSON_MAX + 16];
    int len;

    known_v4_flow(&f);
    f.next_hop = addr_of("192.0.2.253");
    f.rev_packets = 3;
    f.extra = extra;
    f.extra_len = sizeof(extra);
    len = format(&f, "edge-1", full);

    /* The line and its terminating NUL must both fit. */
    for (size_t cap = 0; cap <= (size_t)len; cap++) {
        memset(buf, 'Z', sizeof(buf));
        cr_assert_eq(fl_flow_format_ndjson(&f, "edge-1", buf, cap), FL_ELIMIT,
                     "cap %zu", cap);
        for (size_t i = cap; i < sizeof(buf); i++) {
            cr_assert_eq(buf[i], 'Z', "cap %zu: wrote at %zu", cap, i);
        }
    }
    memset(buf, 'Z', sizeof(buf));
    cr_assert_eq(fl_flow_format_ndjson(&f, "edge-1", buf, (size_t)len + 1),
                 len);
    cr_assert_str_eq(buf, full);
}

Test(common_flow, clear_zeroes_the_record_and_sets_sampling_to_one)
{
    struct fl_flow f;
    struct fl_flow zero;

    memset(&f, 0xa5, sizeof(f));
    fl_flow_clear(&f);
    cr_assert_eq(f.sampling, 1);
    cr_assert_eq(f.packets, 0);
    cr_assert_eq(f.time_start, 0);
    cr_assert_null(f.extra);
    cr_assert_eq(f.extra_len, 0);
    cr_assert(fl_addr_is_zero(&f.src_addr));
    memset(&zero, 0, sizeof(zero));
    zero.sampling = 1;
    cr_assert_eq(memcmp(&f, &zero, sizeof(f)), 0);
}

/* ---- time text ------------------------------------------------------ */

static void
assert_time(uint64_t ms, const char *want)
{
    char buf[FL_TIME_STRLEN];

    fl_time_format(ms, buf);
    cr_assert_str_eq(buf, want, "%llu ms", (unsigned long long)ms);
}

Test(common_flow, formats_time_as_rfc3339_with_milliseconds)
{
    assert_time(0, "1970-01-01T00:00:00.000Z");
    assert_time(1, "1970-01-01T00:00:00.001Z");
    assert_time(5, "1970-01-01T00:00:00.005Z");
    assert_time(50, "1970-01-01T00:00:00.050Z");
    assert_time(999, "1970-01-01T00:00:00.999Z");
    assert_time(1000, "1970-01-01T00:00:01.000Z");
    assert_time(86399999, "1970-01-01T23:59:59.999Z");
    /* Leap days: a plain leap year, a century leap year, a non-leap one. */
    assert_time(1709210096789ull, "2024-02-29T12:34:56.789Z");
    assert_time(951868799999ull, "2000-02-29T23:59:59.999Z");
    assert_time(4107542400000ull - 1, "2100-02-28T23:59:59.999Z");
    assert_time(4107542400000ull, "2100-03-01T00:00:00.000Z");
    assert_time(4294967296000ull, "2106-02-07T06:28:16.000Z");
}

Test(common_flow, time_text_reads_back_to_the_same_ms)
{
    uint64_t state = 12345;

    for (int i = 0; i < 1000; i++) {
        char buf[FL_TIME_STRLEN];
        struct tm tm;
        unsigned ms;
        uint64_t t;

        state = state * 6364136223846793005ull + 1442695040888963407ull;
        t = (state >> 20) % 4102444800000ull; /* before 2100 */
        fl_time_format(t, buf);
        memset(&tm, 0, sizeof(tm));
        cr_assert_eq(sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d.%3uZ", &tm.tm_year,
                            &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                            &tm.tm_sec, &ms),
                     7, "%s", buf);
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        cr_assert_eq((uint64_t)timegm(&tm) * 1000 + ms, t, "%s", buf);
    }
}
