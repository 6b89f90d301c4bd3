/*
 * The Bloom filter of block addresses: its measured false positive rate
 * stays at the 1% it was sized for, and it never forgets an address.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

/* xorshift64*: deterministic streams of test addresses. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* The tag is the first byte of an IPv4 address or the second of an
 * IPv6 one, so inserted (tag 1) and probed (tag 3) streams never meet
 * and "absent" addresses are really absent. */
static void
addr_of(uint64_t *s, uint8_t tag, bool v4, struct fl_addr *a)
{
    uint64_t x = rnd(s);
    uint64_t y = rnd(s);

    if (v4) {
        fl_addr_from_v4(a, (uint32_t)x);
        a->b[12] = tag;
        return;
    }
    fl_put_be64(a->b, y);
    fl_put_be64(a->b + 8, x);
    a->b[0] = 0x20;
    a->b[1] = tag;
}

struct filter {
    uint8_t *bits;
    uint32_t m;
    uint8_t k;
};

static void
filter_fill(struct filter *f, size_t n, uint64_t seed, bool v4)
{
    struct fl_addr a;
    uint64_t h1;
    uint64_t h2;

    f->m = fl_bloom_bits(n);
    f->k = fl_bloom_k(f->m, n);
    f->bits = calloc((f->m + 7) / 8, 1);
    cr_assert_not_null(f->bits);
    for (size_t i = 0; i < n; i++) {
        addr_of(&seed, 1, v4, &a);
        fl_bloom_hash(&a, &h1, &h2);
        fl_bloom_set(f->bits, f->m, f->k, h1, h2);
    }
}

static double
measured_fp(const struct filter *f, size_t probes, uint64_t seed, bool v4)
{
    struct fl_addr a;
    uint64_t h1;
    uint64_t h2;
    size_t hits = 0;

    for (size_t i = 0; i < probes; i++) {
        addr_of(&seed, 3, v4, &a);
        fl_bloom_hash(&a, &h1, &h2);
        hits += fl_bloom_test(f->bits, f->m, f->k, h1, h2);
    }
    return (double)hits / (double)probes;
}

Test(storage_bloom, sizes_for_one_percent)
{
    cr_assert_eq(fl_bloom_bits(0), 64);
    cr_assert_eq(fl_bloom_bits(1000), 9586);
    cr_assert_eq(fl_bloom_k(fl_bloom_bits(1000), 1000), 7);
    cr_assert_eq(fl_bloom_k(fl_bloom_bits(1000000), 1000000), 7);
    cr_assert_leq(fl_bloom_k(64, 1), 16);
}

/* The hash is part of the stored format: these values are in the spec. */
Test(storage_bloom, hash_matches_the_specified_vectors)
{
    struct fl_addr a;
    uint64_t h1;
    uint64_t h2;

    cr_assert_eq(fl_addr_parse("192.0.2.1", &a), FL_OK);
    fl_bloom_hash(&a, &h1, &h2);
    cr_assert_eq(h1, 0xaf547d1ba5b23157ull);
    cr_assert_eq(h2, 0x5f66926cf3b6d50bull);
    cr_assert_eq(fl_addr_parse("2001:db8::1", &a), FL_OK);
    fl_bloom_hash(&a, &h1, &h2);
    cr_assert_eq(h1, 0x8f46bb85516de784ull);
    cr_assert_eq(h2, 0xf778a321c0fd6e5bull);
}

Test(storage_bloom, false_positive_rate_is_within_one_percent)
{
    static const size_t sizes[] = {100, 1000, 20000, 300000};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int v4 = 0; v4 <= 1; v4++) {
            struct filter f;
            double fp;

            filter_fill(&f, sizes[i], 0x1234567ull + i * 2, v4);
            fp = measured_fp(&f, 1000000, 0xabcdefull + i, v4);
            cr_log_info("n=%zu v4=%d m=%u k=%u fp=%.5f", sizes[i], v4, f.m, f.k,
                        fp);
            cr_expect_leq(fp, 0.0115, "n=%zu v4=%d fp=%.5f", sizes[i], v4, fp);
            cr_expect_geq(fp, 0.005,
                          "n=%zu v4=%d fp=%.5f (too good: unused "
                          "bits?)",
                          sizes[i], v4, fp);
            free(f.bits);
        }
    }
}

Test(storage_bloom, never_forgets_over_two_million_inserts)
{
    for (int v4 = 0; v4 <= 1; v4++) {
        struct filter f;
        uint64_t seed = 0x5eed5eedull + (uint64_t)v4;
        struct fl_addr a;
        uint64_t h1;
        uint64_t h2;
        size_t missing = 0;

        filter_fill(&f, 2000000, seed, v4);
        for (size_t i = 0; i < 2000000; i++) {
            addr_of(&seed, 1, v4, &a);
            fl_bloom_hash(&a, &h1, &h2);
            missing += !fl_bloom_test(f.bits, f.m, f.k, h1, h2);
        }
        cr_assert_eq(missing, 0, "v4=%d", v4);
        free(f.bits);
    }
}
