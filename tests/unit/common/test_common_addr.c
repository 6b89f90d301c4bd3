/*
 * Addresses and prefixes: text round trips against RFC 5952, rejected
 * texts, prefix parsing in all its forms, and prefix containment checked
 * bit by bit against a brute-force comparison.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

/* A fixed-seed generator, so a failing case can be replayed exactly. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void
random_addr(struct fl_addr *a)
{
    uint64_t hi = rng_next();
    uint64_t lo = rng_next();

    fl_put_be64(a->b, hi);
    fl_put_be64(a->b + 8, lo);
}

/* Bit i of a, counted from the most significant bit of byte 0. */
static unsigned
bit_at(const struct fl_addr *a, unsigned i)
{
    return (a->b[i / 8] >> (7 - i % 8)) & 1u;
}

static bool
same_first_bits(const struct fl_addr *a, const struct fl_addr *b, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        if (bit_at(a, i) != bit_at(b, i)) {
            return false;
        }
    }
    return true;
}

static void
flip_bit(struct fl_addr *a, unsigned i)
{
    a->b[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
}

static struct fl_addr
addr_of(const char *s)
{
    struct fl_addr a;

    cr_assert_eq(fl_addr_parse(s, &a), FL_OK, "parse %s", s);
    return a;
}

static void
assert_formats_as(const char *in, const char *want)
{
    struct fl_addr a;
    struct fl_addr again;
    char text[FL_ADDR_STRLEN];

    cr_assert_eq(fl_addr_parse(in, &a), FL_OK, "parse %s", in);
    cr_assert_str_eq(fl_addr_format(&a, text), want, "format of %s", in);
    /* The canonical text must parse back to the very same bytes. */
    cr_assert_eq(fl_addr_parse(text, &again), FL_OK, "reparse %s", text);
    cr_assert_eq(fl_addr_cmp(&a, &again), 0, "round trip of %s", in);
}

/* ---- addresses ------------------------------------------------------ */

Test(common_addr, round_trips_dotted_ipv4)
{
    static const char *const cases[] = {
        "0.0.0.1",   "1.2.3.4",         "10.0.0.0",
        "127.0.0.1", "192.0.2.255",     "198.51.100.7",
        "224.0.0.1", "255.255.255.255", "203.0.113.100",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_addr a = addr_of(cases[i]);

        cr_assert(fl_addr_is_v4(&a), "%s is IPv4", cases[i]);
        assert_formats_as(cases[i], cases[i]);
    }
}

Test(common_addr, stores_ipv4_mapped_in_network_order)
{
    static const uint8_t want[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                     0, 0, 0xff, 0xff, 192, 0, 2, 1};
    static const uint8_t bytes[4] = {192, 0, 2, 1};
    struct fl_addr parsed = addr_of("192.0.2.1");
    struct fl_addr from_int;
    struct fl_addr from_bytes;

    fl_addr_from_v4(&from_int, 0xc0000201u);
    fl_addr_from_v4_bytes(&from_bytes, bytes);
    cr_assert_arr_eq(parsed.b, want, 16);
    cr_assert_arr_eq(from_int.b, want, 16);
    cr_assert_arr_eq(from_bytes.b, want, 16);
}

Test(common_addr, formats_ipv6_as_rfc5952)
{
    static const char *const cases[][2] = {
        /* lower case, leading zeros dropped */
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
        {"2001:0db8:00AB:0001:0000:0000:0000:0001", "2001:db8:ab:1::1"},
        /* the longest run of zero fields is the one compressed */
        {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},
        {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
        /* of two equal runs, the first is compressed */
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
        {"1:0:0:1:1:0:0:1", "1::1:1:0:0:1"},
        /* a single zero field is never compressed */
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
        {"0:1:0:1:0:1:0:1", "0:1:0:1:0:1:0:1"},
        {"1:1:1:1:1:1:1:0", "1:1:1:1:1:1:1:0"},
        /* runs at either end */
        {"0:0:0:0:0:0:0:0", "::"},
        {"0:0:0:0:0:0:0:1", "::1"},
        {"1:0:0:0:0:0:0:0", "1::"},
        {"fe80:0:0:0:0:0:0:0", "fe80::"},
        {"FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        /* IPv4-mapped prints as plain dotted, however it was written */
        {"::ffff:192.0.2.1", "192.0.2.1"},
        {"::FFFF:c000:0201", "192.0.2.1"},
        {"0:0:0:0:0:ffff:0a00:0001", "10.0.0.1"},
        /* only ::ffff:0:0/96 is mapped; its neighbours are plain IPv6 */
        {"::ffff:0:1:2", "::ffff:0:1:2"},
        {"::fffe:102:304", "::fffe:102:304"},
        {"1::ffff:102:304", "1::ffff:102:304"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_formats_as(cases[i][0], cases[i][1]);
    }
}

Test(common_addr, treats_mapped_unspecified_as_ipv4_zero)
{
    struct fl_addr mapped = addr_of("::ffff:0:0");
    struct fl_addr dotted = addr_of("0.0.0.0");
    char text[FL_ADDR_STRLEN];

    cr_assert(fl_addr_is_v4(&mapped));
    cr_assert_eq(fl_addr_cmp(&mapped, &dotted), 0);
    cr_assert_str_eq(fl_addr_format(&mapped, text), "0.0.0.0");
    cr_assert(fl_addr_is_zero(&mapped));
}

Test(common_addr, rejects_malformed_text)
{
    static const char *const bad[] = {
        "",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4x",
        "x1.2.3.4",
        "1.2.3.4.",
        "256.1.1.1",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4.5",
        "1..2.3",
        "-1.2.3.4",
        ":::",
        "::1::",
        "1::2::3",
        ":1::2",
        "1::2:",
        "12345::",
        "::g",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "::ffff:1.2.3.256",
        "::1 ",
        " ::1",
        "fe80::1%eth0",
        "[::1]",
        "1.2.3.4/24",
        "localhost",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fl_addr a;

        cr_assert_eq(fl_addr_parse(bad[i], &a), FL_EFORMAT, "accepted \"%s\"",
                     bad[i]);
    }
}

Test(common_addr, orders_addresses_bytewise)
{
    /* Ascending: IPv6 below the mapped range, IPv4 numerically, then up. */
    static const char *const sorted[] = {
        "::",
        "::1",
        "::fffe:ffff:ffff",
        "0.0.0.0",
        "1.2.3.4",
        "1.2.3.5",
        "9.255.255.255",
        "10.0.0.0",
        "192.0.2.1",
        "255.255.255.255",
        "::1:0:0:0",
        "2001:db8::",
        "2001:db8::1",
        "fe80::1",
        "ffff::",
    };
    size_t n = sizeof(sorted) / sizeof(sorted[0]);

    for (size_t i = 0; i < n; i++) {
        struct fl_addr a = addr_of(sorted[i]);

        for (size_t j = 0; j < n; j++) {
            struct fl_addr b = addr_of(sorted[j]);
            int c = fl_addr_cmp(&a, &b);

            if (i < j) {
                cr_assert_lt(c, 0, "%s < %s", sorted[i], sorted[j]);
            } else if (i > j) {
                cr_assert_gt(c, 0, "%s > %s", sorted[i], sorted[j]);
            } else {
                cr_assert_eq(c, 0, "%s == %s", sorted[i], sorted[j]);
            }
        }
    }
}

Test(common_addr, is_zero_only_for_unspecified_in_either_family)
{
    struct fl_addr zeroed;
    struct fl_addr a;

    memset(&zeroed, 0, sizeof(zeroed));
    cr_assert(fl_addr_is_zero(&zeroed));
    cr_assert(!fl_addr_is_v4(&zeroed));

    a = addr_of("::");
    cr_assert(fl_addr_is_zero(&a));
    a = addr_of("0.0.0.0");
    cr_assert(fl_addr_is_zero(&a));

    static const char *const nonzero[] = {
        "::1",        "1::",          "0.0.0.1", "128.0.0.0",
        "::ffff:0:1", "::ffff:0:0:0", "::1:0:0",
    };
    for (size_t i = 0; i < sizeof(nonzero) / sizeof(nonzero[0]); i++) {
        a = addr_of(nonzero[i]);
        cr_assert(!fl_addr_is_zero(&a), "%s is not zero", nonzero[i]);
    }
    /* Any single set bit makes an address non-zero. */
    for (unsigned i = 0; i < 128; i++) {
        a = zeroed;
        flip_bit(&a, i);
        cr_assert(!fl_addr_is_zero(&a), "bit %u set", i);
    }
}

/* ---- prefixes ------------------------------------------------------- */

static void
assert_prefix(const char *in, const char *addr, unsigned len, const char *text)
{
    struct fl_prefix p;
    struct fl_addr want = addr_of(addr);
    char buf[FL_ADDR_STRLEN + 4];

    cr_assert_eq(fl_prefix_parse(in, &p), FL_OK, "parse %s", in);
    cr_assert_eq(p.len, len, "length of %s: %u", in, p.len);
    cr_assert_eq(fl_addr_cmp(&p.addr, &want), 0, "network of %s", in);
    cr_assert_str_eq(fl_prefix_format(&p, buf), text, "format of %s", in);
}

Test(common_addr, parses_ipv4_prefixes_with_length)
{
    assert_prefix("192.0.2.0/24", "192.0.2.0", 96 + 24, "192.0.2.0/24");
    assert_prefix("10.0.0.0/8", "10.0.0.0", 96 + 8, "10.0.0.0/8");
    assert_prefix("203.0.113.7/32", "203.0.113.7", 128, "203.0.113.7/32");
    assert_prefix("0.0.0.0/0", "0.0.0.0", 96, "0.0.0.0/0");
}

Test(common_addr, clears_host_bits)
{
    assert_prefix("192.0.2.77/24", "192.0.2.0", 120, "192.0.2.0/24");
    assert_prefix("10.255.255.255/9", "10.128.0.0", 105, "10.128.0.0/9");
    assert_prefix("1.2.3.4/0", "0.0.0.0", 96, "0.0.0.0/0");
    assert_prefix("2001:db8:1:2:3:4:5:6/48", "2001:db8:1::", 48,
                  "2001:db8:1::/48");
    assert_prefix("2001:db8:ffff::/33", "2001:db8:8000::", 33,
                  "2001:db8:8000::/33");
    assert_prefix("ffff::1/0", "::", 0, "::/0");
}

Test(common_addr, parses_dotted_netmasks)
{
    assert_prefix("10.1.2.3/255.255.0.0", "10.1.0.0", 112, "10.1.0.0/16");
    assert_prefix("10.1.2.3/255.255.255.255", "10.1.2.3", 128, "10.1.2.3/32");
    assert_prefix("10.1.2.3/255.255.255.254", "10.1.2.2", 127, "10.1.2.2/31");
    assert_prefix("10.1.2.3/0.0.0.0", "0.0.0.0", 96, "0.0.0.0/0");
    assert_prefix("172.16.5.4/255.240.0.0", "172.16.0.0", 108, "172.16.0.0/12");
    assert_prefix("192.168.1.1/128.0.0.0", "128.0.0.0", 97, "128.0.0.0/1");
}

Test(common_addr, rejects_non_contiguous_netmasks)
{
    static const char *const bad[] = {
        "10.0.0.0/255.0.255.0",     "10.0.0.0/0.255.255.255",
        "10.0.0.0/255.255.255.253", "10.0.0.0/1.0.0.0",
        "10.0.0.0/255.255.0.1",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fl_prefix p;

        cr_assert_eq(fl_prefix_parse(bad[i], &p), FL_EFORMAT, "accepted %s",
                     bad[i]);
    }
}

Test(common_addr, takes_a_bare_address_as_a_host_prefix)
{
    assert_prefix("192.0.2.1", "192.0.2.1", 128, "192.0.2.1/32");
    assert_prefix("2001:db8::1", "2001:db8::1", 128, "2001:db8::1/128");
    assert_prefix("::", "::", 128, "::/128");
}

Test(common_addr, parses_ipv6_prefixes)
{
    assert_prefix("2001:db8::/32", "2001:db8::", 32, "2001:db8::/32");
    assert_prefix("::/0", "::", 0, "::/0");
    assert_prefix("fe80::/10", "fe80::", 10, "fe80::/10");
    assert_prefix("2001:db8::1/128", "2001:db8::1", 128, "2001:db8::1/128");
    assert_prefix("2001:db8::1/127", "2001:db8::", 127, "2001:db8::/127");
    /* Written as IPv6 with a 128-bit length, a mapped prefix is IPv4. */
    assert_prefix("::ffff:10.0.0.0/104", "10.0.0.0", 104, "10.0.0.0/8");
}

Test(common_addr, rejects_malformed_prefixes)
{
    static const char *const bad[] = {
        "",
        "/24",
        "1.2.3.4/",
        "1.2.3.4/33",
        "1.2.3.4/-1",
        "1.2.3.4/+24",
        "1.2.3.4/ 24",
        "1.2.3.4/24 ",
        "1.2.3.4/24x",
        "1.2.3.4/24/",
        "1.2.3.4/255.255.0",
        "1.2.3.4/256.0.0.0",
        "1.2.3/24",
        "::/129",
        "::/1000000000000000000000",
        "2001:db8::/255.255.0.0",
        "2001:db8::/",
        "2001:db8:::/32",
        "2001:db8::/0x20",
        "not-an-address/8",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fl_prefix p;

        cr_assert_eq(fl_prefix_parse(bad[i], &p), FL_EFORMAT, "accepted \"%s\"",
                     bad[i]);
    }
}

Test(common_addr, ipv4_zero_prefix_holds_only_ipv4)
{
    struct fl_prefix v4_all;
    struct fl_prefix all;
    struct fl_addr v4 = addr_of("203.0.113.9");
    struct fl_addr v6 = addr_of("2001:db8::9");

    cr_assert_eq(fl_prefix_parse("0.0.0.0/0", &v4_all), FL_OK);
    cr_assert_eq(fl_prefix_parse("::/0", &all), FL_OK);
    cr_assert(fl_prefix_contains(&v4_all, &v4));
    cr_assert(!fl_prefix_contains(&v4_all, &v6));
    cr_assert(fl_prefix_contains(&all, &v4));
    cr_assert(fl_prefix_contains(&all, &v6));
}

/*
 * For every length and every bit position: flipping a bit inside the
 * prefix takes the address out, flipping one outside keeps it in, and an
 * unrelated random address is in exactly when its first len bits agree.
 */
static void
check_contains_exhaustively(const struct fl_addr *a, unsigned len,
                            const struct fl_prefix *p)
{
    struct fl_addr other;

    for (unsigned i = 0; i < 128; i++) {
        struct fl_addr b = *a;

        flip_bit(&b, i);
        cr_assert_eq(fl_prefix_contains(p, &b), i >= len,
                     "len %u, bit %u flipped", len, i);
    }
    cr_assert(fl_prefix_contains(p, a), "len %u holds its own address", len);
    for (int k = 0; k < 8; k++) {
        random_addr(&other);
        /* Share a random number of leading bits to hit near misses. */
        unsigned keep = (unsigned)(rng_next() % 129);

        for (unsigned i = 0; i < keep; i++) {
            if (bit_at(&other, i) != bit_at(a, i)) {
                flip_bit(&other, i);
            }
        }
        cr_assert_eq(fl_prefix_contains(p, &other),
                     same_first_bits(a, &other, len),
                     "len %u, %u leading bits shared", len, keep);
    }
}

Test(common_addr, contains_matches_bitwise_comparison_for_ipv6)
{
    for (int round = 0; round < 16; round++) {
        struct fl_addr a;

        random_addr(&a);
        a.b[0] = 0x20 | (a.b[0] & 0x0f); /* global unicast, never mapped */
        for (unsigned len = 0; len <= 128; len++) {
            char text[FL_ADDR_STRLEN + 8];
            char addr[FL_ADDR_STRLEN];
            struct fl_prefix p;

            snprintf(text, sizeof(text), "%s/%u", fl_addr_format(&a, addr),
                     len);
            cr_assert_eq(fl_prefix_parse(text, &p), FL_OK, "parse %s", text);
            cr_assert_eq(p.len, len);
            /* The stored network is a with every bit past len cleared. */
            for (unsigned i = 0; i < 128; i++) {
                cr_assert_eq(bit_at(&p.addr, i), i < len ? bit_at(&a, i) : 0u,
                             "%s: bit %u", text, i);
            }
            check_contains_exhaustively(&a, len, &p);
        }
    }
}

Test(common_addr, contains_matches_bitwise_comparison_for_ipv4)
{
    for (int round = 0; round < 16; round++) {
        struct fl_addr a;

        fl_addr_from_v4(&a, (uint32_t)rng_next());
        for (unsigned len = 0; len <= 32; len++) {
            char text[FL_ADDR_STRLEN + 8];
            char addr[FL_ADDR_STRLEN];
            struct fl_prefix p;

            snprintf(text, sizeof(text), "%s/%u", fl_addr_format(&a, addr),
                     len);
            cr_assert_eq(fl_prefix_parse(text, &p), FL_OK, "parse %s", text);
            cr_assert_eq(p.len, 96 + len);
            check_contains_exhaustively(&a, 96 + len, &p);
        }
    }
}
