/*
 * The per-block index: prefix summaries hold exactly the /24, /16, /48
 * and /32 of the block's addresses, an entry survives serialization, and
 * the prefix test never rules out a prefix that is present.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Addresses clustered enough that prefixes repeat: v4 in 10.0-3.x.x and
 * 192.0.2.x, v6 in 2001:db8:0-7::/48. */
static void
clustered(uint64_t *s, struct fl_addr *a)
{
    uint64_t x = rnd(s);

    if (x % 3 == 0) {
        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, (uint8_t)(x >> 8 & 7)};

        fl_put_be64(b + 8, rnd(s));
        fl_addr_from_v6(a, b);
    } else if (x % 3 == 1) {
        fl_addr_from_v4(a, 0x0a000000u | (uint32_t)(x >> 16 & 0x3ffff));
    } else {
        fl_addr_from_v4(a, 0xc0000200u | (uint32_t)(x >> 24 & 0xff));
    }
}

struct built {
    struct fl_addr *addrs;
    size_t n;
    struct fl_blk e;
};

static void
build(struct built *b, size_t n, uint64_t seed)
{
    struct fl_ixbuild ib;
    struct fl_blk meta = {.offset = 24,
                          .length = 100,
                          .records = 7,
                          .time_first = 1000,
                          .time_last = 2000};

    b->addrs = calloc(n, sizeof(*b->addrs));
    b->n = n;
    fl_ixbuild_init(&ib);
    cr_assert_eq(fl_ixbuild_reset(&ib, 16), FL_OK);
    for (size_t i = 0; i < n; i++) {
        clustered(&seed, &b->addrs[i]);
        fl_ixbuild_add(&ib, &b->addrs[i]);
        fl_ixbuild_add(&ib, &b->addrs[i]); /* duplicates are free */
    }
    cr_assert_eq(fl_ixbuild_finish(&ib, &meta, &b->e), FL_OK);
    fl_ixbuild_fini(&ib);
}

static bool
brute_has(const struct built *b, const struct fl_prefix *p)
{
    for (size_t i = 0; i < b->n; i++) {
        if (fl_prefix_contains(p, &b->addrs[i])) {
            return true;
        }
    }
    return false;
}

static size_t
brute_count(const struct built *b, bool v4, unsigned len)
{
    size_t k = 0;

    for (size_t i = 0; i < b->n; i++) {
        bool seen = false;

        if (fl_addr_is_v4(&b->addrs[i]) != v4) {
            continue;
        }
        for (size_t j = 0; j < i && !seen; j++) {
            struct fl_prefix p = {.addr = b->addrs[j], .len = (uint8_t)len};

            if (fl_addr_is_v4(&b->addrs[j]) == v4) {
                /* Clear the host bits so contains() compares the net. */
                for (unsigned bit = len; bit < 128; bit++) {
                    p.addr.b[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
                }
                seen = fl_prefix_contains(&p, &b->addrs[i]);
            }
        }
        k += !seen;
    }
    return k;
}

Test(storage_index, summaries_hold_each_prefix_once)
{
    struct built b;

    build(&b, 3000, 42);
    cr_assert_eq(b.e.n24, brute_count(&b, true, 120));
    cr_assert_eq(b.e.n16, brute_count(&b, true, 112));
    cr_assert_eq(b.e.n48, brute_count(&b, false, 48));
    cr_assert_eq(b.e.n32, brute_count(&b, false, 32));
    cr_assert_eq(b.e.n16, 5); /* 10.0-3 and 192.0 */
    cr_assert_eq(b.e.n32, 1);
    for (uint32_t i = 1; i < b.e.n24; i++) {
        cr_assert_lt(fl_be_uint(b.e.p24 + (i - 1) * 3, 3),
                     fl_be_uint(b.e.p24 + i * 3, 3));
    }
    for (uint32_t i = 1; i < b.e.n48; i++) {
        cr_assert_lt(fl_be_uint(b.e.p48 + (i - 1) * 6, 6),
                     fl_be_uint(b.e.p48 + i * 6, 6));
    }
    fl_blk_fini(&b.e);
    free(b.addrs);
}

/* A random prefix around a random present or absent address. */
static void
random_prefix(uint64_t *s, const struct built *b, struct fl_prefix *p)
{
    uint64_t x = rnd(s);
    struct fl_addr a = b->addrs[x % b->n];
    unsigned len;

    if (x >> 40 & 1) {
        clustered(s, &a); /* probably absent */
    }
    if (fl_addr_is_v4(&a)) {
        len = 96 + (unsigned)(rnd(s) % 33);
    } else {
        len = (unsigned)(rnd(s) % 129);
    }
    p->addr = a;
    p->len = (uint8_t)len;
    for (unsigned bit = len; bit < 128; bit++) {
        p->addr.b[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    }
}

Test(storage_index, never_rules_out_a_present_prefix)
{
    struct built b;
    uint64_t s = 7;
    size_t exact_checked = 0;

    build(&b, 2000, 99);
    for (int i = 0; i < 50000; i++) {
        struct fl_prefix p;
        bool has;
        bool may;
        bool v4;
        unsigned l;

        random_prefix(&s, &b, &p);
        has = brute_has(&b, &p);
        may = fl_blk_may_have_prefix(&b.e, &p);
        cr_assert(!has || may, "missed a present prefix, len %u", p.len);
        /* Up to /24 (IPv4) and /48 (IPv6) the summaries are exact. */
        v4 = p.len >= 96 && fl_addr_is_v4(&p.addr);
        l = v4 ? p.len - 96u : p.len;
        if (l > 0 && l <= (v4 ? 24u : 48u) && !(p.len <= 96 && !v4)) {
            cr_assert_eq(has, may, "len %u", p.len);
            exact_checked++;
        }
    }
    cr_assert_gt(exact_checked, 1000);
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, short_prefixes_over_the_mapped_space_keep_ipv4)
{
    struct built b;
    struct fl_prefix p;

    build(&b, 100, 5);
    cr_assert_eq(fl_prefix_parse("::/0", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&b.e, &p));
    cr_assert_eq(fl_prefix_parse("::ffff:0:0/96", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&b.e, &p));
    cr_assert_eq(fl_prefix_parse("::/64", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&b.e, &p));
    cr_assert_eq(fl_prefix_parse("2001:db9::/32", &p), FL_OK);
    cr_assert_not(fl_blk_may_have_prefix(&b.e, &p));
    cr_assert_eq(fl_prefix_parse("11.0.0.0/8", &p), FL_OK);
    cr_assert_not(fl_blk_may_have_prefix(&b.e, &p));
    cr_assert_eq(fl_prefix_parse("10.0.0.0/8", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&b.e, &p));
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, entry_survives_serialization)
{
    struct built b;
    struct fl_cursor c;
    struct fl_blk back;
    uint64_t s = 11;

    build(&b, 500, 1234);
    fl_cursor_init(&c, b.e.blob, b.e.bloblen);
    cr_assert_eq(fl_blk_parse(&c, &back), FL_OK);
    cr_assert_eq(c.left, 0);
    cr_assert_eq(back.offset, 24);
    cr_assert_eq(back.length, 100);
    cr_assert_eq(back.records, 7);
    cr_assert_eq(back.time_first, 1000);
    cr_assert_eq(back.time_last, 2000);
    cr_assert_eq(back.bloom_m, b.e.bloom_m);
    cr_assert_eq(back.n24, b.e.n24);
    cr_assert_eq(back.n48, b.e.n48);
    for (int i = 0; i < 5000; i++) {
        struct fl_prefix p;

        random_prefix(&s, &b, &p);
        cr_assert_eq(fl_blk_may_have_prefix(&back, &p),
                     fl_blk_may_have_prefix(&b.e, &p));
    }
    /* Every truncation of the entry is refused, never overread. */
    for (size_t cut = 0; cut < b.e.bloblen; cut++) {
        fl_cursor_init(&c, b.e.blob, cut);
        cr_assert_neq(fl_blk_parse(&c, &back), FL_OK, "cut %zu", cut);
    }
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, needs_match_when_any_prefix_may)
{
    struct built b;
    struct fl_prefix ps[2];
    struct fl_scan_need need = {FL_SIDE_ANY, ps, 2};

    build(&b, 100, 77);
    cr_assert_eq(fl_prefix_parse("11.0.0.0/8", &ps[0]), FL_OK);
    cr_assert_eq(fl_prefix_parse("2001:db9::/32", &ps[1]), FL_OK);
    cr_assert_not(fl_blk_may_match(&b.e, &need));
    ps[1].addr = b.addrs[3];
    ps[1].len = 128;
    cr_assert(fl_blk_may_match(&b.e, &need));
    fl_blk_fini(&b.e);
    free(b.addrs);
}
