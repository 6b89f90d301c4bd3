/*
 * The filter language: what the parser accepts and where it points when
 * it refuses, what the evaluator matches, and that the planner's needs
 * are implied by the filter, so the index can never hide a flow.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

static struct fl_addr
addr(const char *s)
{
    struct fl_addr a;

    cr_assert_eq(fl_addr_parse(s, &a), FL_OK, "bad test address %s", s);
    return a;
}

/* 10.0.0.1:1234 -> 192.0.2.7:443 TCP, 10 packets, 1500 bytes, AS 64512
 * to 64513. */
static struct fl_flow
sample_v4(void)
{
    struct fl_flow f;

    fl_flow_clear(&f);
    f.src_addr = addr("10.0.0.1");
    f.dst_addr = addr("192.0.2.7");
    f.src_port = 1234;
    f.dst_port = 443;
    f.proto = 6;
    f.packets = 10;
    f.bytes = 1500;
    f.src_as = 64512;
    f.dst_as = 64513;
    f.tos = 0;
    return f;
}

static bool
matches(const char *text, const struct fl_flow *f)
{
    struct fl_filter *flt;
    char err[256];
    size_t col;
    bool m;

    cr_assert_eq(fl_filter_parse(text, &flt, err, sizeof(err), &col), FL_OK,
                 "'%s' refused: %s", text, err);
    m = fl_filter_match(flt, f, "s1");
    fl_filter_free(flt);
    return m;
}

/* ---- parser: accepted filters, each with its verdict on sample_v4 ----- */

static const struct {
    const char *text;
    bool match;
} accepted[] = {
    {"", true},
    {"any", true},
    {"host 10.0.0.1", true},
    {"host 10.0.0.2", false},
    {"ip 192.0.2.7", true},
    {"src ip 10.0.0.1", true},
    {"src ip 192.0.2.7", false},
    {"dst ip 192.0.2.7", true},
    {"dst host 10.0.0.1", false},
    {"ip 2001:db8::1", false},
    {"ip ::ffff:10.0.0.1", true},
    {"net 10.0.0.0/8", true},
    {"net 10.0.0.0/255.0.0.0", true},
    {"net 10.0.0.0 255.0.0.0", true},
    {"net 10/8", true},
    {"net 192.0/16", true},
    {"net 10.1.2.3/8", true},
    {"src net 192.0.2.0/24", false},
    {"dst net 192.0.2.0/24", true},
    {"dst net 2001:db8::/32", false},
    {"port 443", true},
    {"port 80", false},
    {"src port 1234", true},
    {"src port 443", false},
    {"dst port 443", true},
    {"port > 1024", true},
    {"port gt 1234", false},
    {"src port <= 1234", true},
    {"dst port >= 444", false},
    {"port = 443", true},
    {"port == 443", true},
    {"port in [ 80 443 ]", true},
    {"dst port in [80,8080]", false},
    {"proto tcp", true},
    {"proto UDP", false},
    {"proto 6", true},
    {"proto icmp", false},
    {"ip in [ 1.2.3.4 10.0.0.0/8 ]", true},
    {"src ip in [1.2.3.4,5.6.7.8]", false},
    {"dst ip in [ 192.0.2.0/24 ]", true},
    {"net in [ 172.16.0.0/12 192.168.0.0/16 ]", false},
    {"not host 10.0.0.1", false},
    {"! host 10.0.0.9", true},
    {"host 10.0.0.1 and port 443", true},
    {"host 10.0.0.1 && port 80", false},
    {"port 80 or port 443", true},
    {"port 80 || port 8080", false},
    {"(port 80 or port 443) and proto tcp", true},
    {"port 80 or port 443 and proto udp", false},
    {"not port 80 and not port 8080", true},
    {"not (src net 10.0.0.0/8 or dst net 10.0.0.0/8)", false},
    {"((((host 10.0.0.1))))", true},
    {"HOST 10.0.0.1 AND PORT 443", true},
    {"Src Ip 10.0.0.1 Or Dst Net 8.8.0.0/16", true},
    {"packets > 9", true},
    {"packets > 10", false},
    {"bytes >= 1k", true},
    {"bytes >= 1M", false},
    {"src as 64512", true},
    {"dst as 64512", false},
    {"as 64513", true},
    {"tos 0", true},
    {"inet", true},
    {"ipv6", false},
    {"host 10.0.0.1 and (port 1 or port 2 or port 443) and not proto udp",
     true},
};

Test(aggregator_filter, accepts_the_nfdump_forms_and_matches_as_expected)
{
    struct fl_flow f = sample_v4();

    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        cr_expect_eq(matches(accepted[i].text, &f), accepted[i].match,
                     "'%s' should %s", accepted[i].text,
                     accepted[i].match ? "match" : "not match");
    }
}

/* ---- parser: refused filters and the column they point at ------------- */

static const struct {
    const char *text;
    size_t column;
    const char *what;
} refused[] = {
    {"src ip", 7, "expected an address"},
    {"host 1.2.3", 6, "expected an address"},
    {"host 1.2.3.4.5", 6, "expected an address"},
    {"ip 10.0.0.0/8", 4, "use net for a prefix"},
    {"host example.com", 6, "expected an address"},
    {"ip 1.2.3.4 and", 15, "expected a filter expression"},
    {"ip 1.2.3.4 or or port 1", 15, "expected a filter expression"},
    {"and port 1", 1, "expected a filter expression"},
    {"(ip 1.2.3.4", 12, "expected ')'"},
    {"(ip 1.2.3.4 ]", 13, "expected ')'"},
    {"ip 1.2.3.4)", 11, "expected 'and' or 'or'"},
    {"ip 1.2.3.4 port 80", 12, "expected 'and' or 'or'"},
    {"foo", 1, "unknown filter word 'foo'"},
    {"port 80 and bar 1", 13, "unknown filter word 'bar'"},
    {"src proto tcp", 5, "proto takes no src or dst"},
    {"dst packets > 1", 5, "packets takes no src or dst"},
    {"src foo 1.2.3.4", 5, "expected ip, host, net, port or as"},
    {"src", 4, "expected ip, host, net, port or as"},
    {"port 65536", 6, "expected a port number"},
    {"port http", 6, "expected a port number"},
    {"port", 5, "expected a port number"},
    {"port > ", 8, "expected a port number"},
    {"src port -1", 10, "expected a port number"},
    {"proto xyz", 7, "expected a protocol"},
    {"proto 256", 7, "expected a protocol"},
    {"ip in [ 1.2.3.4 bad ]", 17, "expected an address or prefix"},
    {"ip in [ ]", 9, "empty list"},
    {"ip in [ 1.2.3.4", 16, "expected ']'"},
    {"ip in 1.2.3.4", 7, "expected '['"},
    {"port in [ 80 x ]", 14, "expected a port number"},
    {"net 10.0.0.0", 5, "expected a network"},
    {"net 10.0.0.0/33", 5, "expected a network"},
    {"net 10.0.0.0 255.0.255.0", 5, "expected a network"},
    {"net 2001:db8::/129", 5, "expected a network"},
    {"net in [ 10.0.0.0/8 x ]", 21, "expected a network"},
    {"ip 1.2.3.4 & port 80", 12, "unexpected character '&'"},
    {"port 80 | port 81", 9, "unexpected character '|'"},
    {"not", 4, "expected a filter expression"},
    {"!", 2, "expected a filter expression"},
    {"()", 2, "expected a filter expression"},
    {"packets > lots", 11, "expected a packet count"},
    {"bytes 1X", 7, "expected a byte count"},
    {"as 4294967296", 4, "expected an AS number"},
    {"tos 300", 5, "expected a ToS value"},
    {"ip 1.2.3.4 and\tnot", 19, "expected a filter expression"},
};

Test(aggregator_filter, refuses_bad_filters_pointing_at_the_column)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct fl_filter *flt = (struct fl_filter *)1;
        char err[256];
        char want[128];
        size_t col = 0;
        int rc = fl_filter_parse(refused[i].text, &flt, err, sizeof(err), &col);

        snprintf(want, sizeof(want), " at column %zu", refused[i].column);
        cr_expect_eq(rc, FL_EFORMAT, "'%s' accepted", refused[i].text);
        cr_expect_null(flt, "'%s': filter handed out", refused[i].text);
        cr_expect_eq(col, refused[i].column, "'%s': column %zu, want %zu (%s)",
                     refused[i].text, col, refused[i].column, err);
        cr_expect_not_null(strstr(err, refused[i].what), "'%s': '%s'",
                           refused[i].text, err);
        cr_expect_not_null(strstr(err, want), "'%s': '%s'", refused[i].text,
                           err);
    }
}

Test(aggregator_filter, limits_nesting_so_the_stack_cannot_overflow)
{
    char text[2000];
    struct fl_filter *flt;
    char err[256];
    size_t col;
    size_t n = 0;

    for (int i = 0; i < 300; i++) {
        text[n++] = '(';
    }
    strcpy(text + n, "any");
    n += 3;
    for (int i = 0; i < 300; i++) {
        text[n++] = ')';
    }
    text[n] = '\0';
    cr_assert_eq(fl_filter_parse(text, &flt, err, sizeof(err), &col),
                 FL_ELIMIT);
    cr_assert_eq(col, FL_FILTER_MAX_DEPTH + 1, "column %zu", col);

    /* At the limit it still parses. */
    n = 0;
    for (int i = 0; i < FL_FILTER_MAX_DEPTH; i++) {
        text[n++] = '!';
    }
    strcpy(text + n, "port 443");
    cr_assert_eq(fl_filter_parse(text, &flt, err, sizeof(err), &col), FL_OK,
                 "%s", err);
    struct fl_flow f = sample_v4();
    cr_assert(fl_filter_match(flt, &f, NULL)); /* an even count of nots */
    fl_filter_free(flt);
}

Test(aggregator_filter, long_and_chains_do_not_nest)
{
    struct fl_str s = {NULL, 0, 0};
    struct fl_filter *flt;
    struct fl_flow f = sample_v4();
    char err[256];
    size_t col;

    /* 80000 operands (just under the text ceiling): a nested tree would
     * exhaust the stack when matched or freed. */
    for (int i = 0; i < 80000; i++) {
        cr_assert_eq(
            fl_str_printf(&s, "%s!port %d", i ? "&&" : "", i % 400 + 2000),
            FL_OK);
    }
    cr_assert_eq(fl_filter_parse(s.p, &flt, err, sizeof(err), &col), FL_OK,
                 "%s", err);
    cr_assert(fl_filter_match(flt, &f, NULL));
    f.dst_port = 2200;
    cr_assert_not(fl_filter_match(flt, &f, NULL));
    fl_filter_free(flt);
    fl_str_fini(&s);
}

/* ---- evaluator on hand-made flows ------------------------------------- */

Test(aggregator_filter, matches_ipv6_flows_by_address_and_prefix)
{
    struct fl_flow f;

    fl_flow_clear(&f);
    f.src_addr = addr("2001:db8:1::5");
    f.dst_addr = addr("2001:db8:ff::1");
    f.src_port = 53;
    f.dst_port = 40000;
    f.proto = 17;
    cr_expect(matches("src ip 2001:db8:1::5", &f));
    cr_expect(matches("host 2001:DB8:FF:0::1", &f));
    cr_expect(matches("dst net 2001:db8:ff::/48", &f));
    cr_expect_not(matches("src net 2001:db8:ff::/48", &f));
    cr_expect(matches("net 2001:db8::/32 and proto udp and src port 53", &f));
    cr_expect(matches("inet6 and not inet", &f));
    /* IPv4 prefixes never cover IPv6 addresses. */
    cr_expect_not(matches("net 0.0.0.0/0", &f));
    cr_expect(matches("net ::/0", &f));
}

Test(aggregator_filter, the_any_side_means_source_or_destination)
{
    struct fl_flow f = sample_v4();

    cr_expect(matches("ip in [ 192.0.2.7 ]", &f));
    cr_expect(matches("ip in [ 10.0.0.1 ]", &f));
    cr_expect_not(matches("dst ip in [ 10.0.0.1 ]", &f));
    cr_expect(matches("port 1234 and port 443", &f));
    cr_expect_not(matches("src port 443 or dst port 1234", &f));
}

/* A long list with every prefix length checked against a linear scan. */
Test(aggregator_filter, address_lists_agree_with_a_linear_scan)
{
    struct fl_str s = {NULL, 0, 0};
    struct fl_prefix list[600];
    struct fl_filter *flt;
    char err[256];
    char text[FL_ADDR_STRLEN + 4];
    size_t col;

    srandom(7);
    fl_str_printf(&s, "ip in [");
    for (size_t i = 0; i < 600; i++) {
        list[i].len = (uint8_t)(96 + 8 + random() % 25);
        fl_addr_from_v4(&list[i].addr, (uint32_t)random() & 0x0affffffu);
        cr_assert_eq(
            fl_prefix_parse(fl_prefix_format(&list[i], text), &list[i]), FL_OK);
        fl_str_printf(&s, " %s", text);
    }
    fl_str_printf(&s, " ]");
    cr_assert_eq(fl_filter_parse(s.p, &flt, err, sizeof(err), &col), FL_OK,
                 "%s", err);
    size_t hits = 0;
    for (int k = 0; k < 200000; k++) {
        struct fl_flow f;
        bool want = false;

        fl_flow_clear(&f);
        fl_addr_from_v4(&f.src_addr, (uint32_t)random() & 0x0affffffu);
        fl_addr_from_v4(&f.dst_addr, 0xc0000201u);
        for (size_t i = 0; i < 600 && !want; i++) {
            want = fl_prefix_contains(&list[i], &f.src_addr);
        }
        hits += want;
        cr_assert_eq(fl_filter_match(flt, &f, NULL), want, "flow %d", k);
    }
    cr_expect_gt(hits, 1000, "too few hits (%zu) to mean anything", hits);
    fl_filter_free(flt);
    fl_str_fini(&s);
}

/* ---- planner ----------------------------------------------------------- */

static bool
need_holds(const struct fl_scan_need *n, const struct fl_flow *f)
{
    for (size_t i = 0; i < n->n; i++) {
        if ((n->side != FL_SIDE_DST &&
             fl_prefix_contains(&n->prefixes[i], &f->src_addr)) ||
            (n->side != FL_SIDE_SRC &&
             fl_prefix_contains(&n->prefixes[i], &f->dst_addr))) {
            return true;
        }
    }
    return false;
}

static struct fl_filter *
parse_ok(const char *text)
{
    struct fl_filter *flt;
    char err[256];
    size_t col;

    cr_assert_eq(fl_filter_parse(text, &flt, err, sizeof(err), &col), FL_OK,
                 "'%s': %s", text, err);
    return flt;
}

Test(aggregator_filter, plans_needs_through_and_or_and_not)
{
    static const struct {
        const char *text;
        size_t nneeds;
        enum fl_side side0;
        size_t nprefixes0;
    } cases[] = {
        {"host 10.0.0.1", 1, FL_SIDE_ANY, 1},
        {"src ip 10.0.0.1 and dst net 10.0.0.0/8", 2, FL_SIDE_SRC, 1},
        {"port 80 and (proto tcp and dst ip in [1.1.1.1 2.2.2.2])", 1,
         FL_SIDE_DST, 2},
        {"src ip 1.1.1.1 or src net 10.0.0.0/8", 1, FL_SIDE_SRC, 2},
        {"src ip 1.1.1.1 or dst ip 2.2.2.2", 1, FL_SIDE_ANY, 2},
        {"src ip 1.1.1.1 or port 80", 0, FL_SIDE_ANY, 0},
        {"not host 1.1.1.1", 0, FL_SIDE_ANY, 0},
        {"proto tcp", 0, FL_SIDE_ANY, 0},
        {"", 0, FL_SIDE_ANY, 0},
        /* From each branch the most selective need. */
        {"(src ip in [1.1.1.1 3.3.3.3] and dst ip 4.4.4.4) or dst ip 2.2.2.2",
         1, FL_SIDE_DST, 2},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_filter *flt = parse_ok(cases[i].text);
        const struct fl_scan_need *needs;
        size_t n;

        fl_filter_needs(flt, &needs, &n);
        cr_expect_eq(n, cases[i].nneeds, "'%s': %zu needs", cases[i].text, n);
        if (n > 0 && cases[i].nneeds > 0) {
            cr_expect_eq(needs[0].side, cases[i].side0, "'%s'", cases[i].text);
            cr_expect_eq(needs[0].n, cases[i].nprefixes0, "'%s'",
                         cases[i].text);
        }
        fl_filter_free(flt);
    }
}

/* Random filters over a small pool of addresses, so that they match. */
static const char *pool_addrs[] = {
    "10.0.0.1",    "10.0.0.2",    "10.0.1.9",        "192.0.2.1",
    "192.0.2.200", "2001:db8::1", "2001:db8:0:1::7", "198.51.100.3",
};
static const char *pool_nets[] = {
    "10.0.0.0/24",   "10.0.0.0/8", "192.0.2.0/25",    "2001:db8::/64",
    "2001:db8::/32", "0.0.0.0/0",  "198.51.100.0/30", "10.0.1.0/255.255.255.0",
};

static void
random_filter(struct fl_str *s, int depth)
{
    static const char *sides[] = {"", "src ", "dst "};
    int pick = (int)(random() % (depth > 3 ? 6 : 10));

    switch (pick) {
    case 0:
    case 1:
        fl_str_printf(s, "%s%s %s", sides[random() % 3],
                      random() % 2 ? "ip" : "host", pool_addrs[random() % 8]);
        break;
    case 2:
        fl_str_printf(s, "%snet %s", sides[random() % 3],
                      pool_nets[random() % 8]);
        break;
    case 3:
        fl_str_printf(s, "%sip in [ %s %s ]", sides[random() % 3],
                      pool_addrs[random() % 8], pool_nets[random() % 8]);
        break;
    case 4:
        fl_str_printf(s, "%sport %d", sides[random() % 3],
                      random() % 2 ? 53 : 443);
        break;
    case 5:
        fl_str_printf(s, "proto %s", random() % 2 ? "tcp" : "udp");
        break;
    case 6:
        fl_str_printf(s, "not ");
        random_filter(s, depth + 1);
        break;
    default:
        fl_str_printf(s, "(");
        random_filter(s, depth + 1);
        fl_str_printf(s, pick == 7 ? " or " : " and ");
        random_filter(s, depth + 1);
        if (random() % 3 == 0) {
            fl_str_printf(s, pick == 7 ? " or " : " and ");
            random_filter(s, depth + 1);
        }
        fl_str_printf(s, ")");
        break;
    }
}

static void
random_flow(struct fl_flow *f)
{
    static const char *extra[] = {"10.0.0.77", "192.0.2.130", "2001:db9::1",
                                  "203.0.113.5"};
    const char *all[12];

    for (int i = 0; i < 8; i++) {
        all[i] = pool_addrs[i];
    }
    for (int i = 0; i < 4; i++) {
        all[8 + i] = extra[i];
    }
    fl_flow_clear(f);
    f->src_addr = addr(all[random() % 12]);
    f->dst_addr = addr(all[random() % 12]);
    f->src_port = random() % 2 ? 53 : 443;
    f->dst_port = random() % 2 ? 53 : 443;
    f->proto = random() % 2 ? 6 : 17;
}

Test(aggregator_filter, needs_hold_for_every_flow_the_filter_matches,
     .timeout = 120)
{
    enum { FILTERS = 300, FLOWS = 100000 };
    static struct fl_flow flows[FLOWS];
    uint64_t matched = 0;
    uint64_t checked_needs = 0;
    size_t with_needs = 0;

    srandom(20240501);
    for (size_t i = 0; i < FLOWS; i++) {
        random_flow(&flows[i]);
    }
    for (int k = 0; k < FILTERS; k++) {
        struct fl_str s = {NULL, 0, 0};
        struct fl_filter *flt;
        const struct fl_scan_need *needs;
        size_t n;

        random_filter(&s, 0);
        flt = parse_ok(s.p);
        fl_filter_needs(flt, &needs, &n);
        with_needs += n > 0;
        for (size_t i = 0; i < FLOWS; i++) {
            if (!fl_filter_match(flt, &flows[i], NULL)) {
                continue;
            }
            matched++;
            for (size_t j = 0; j < n; j++) {
                checked_needs++;
                cr_assert(need_holds(&needs[j], &flows[i]),
                          "filter '%s' matched flow %zu but need %zu fails",
                          s.p, i, j);
            }
        }
        fl_filter_free(flt);
        fl_str_fini(&s);
    }
    /* The property must have been exercised, not passed vacuously. */
    cr_expect_gt(with_needs, FILTERS / 4, "only %zu filters had needs",
                 with_needs);
    cr_expect_gt(checked_needs, 1000000, "only %llu needs checked",
                 (unsigned long long)checked_needs);
    cr_expect_gt(matched, 1000000);
}
