/*
 * The per-block index: prefix summaries hold exactly the /24, /16, /48
 * and /32 of the block's addresses in their smallest encoding or are
 * dropped over budget, an entry survives serialization, and the prefix
 * test never rules out a prefix that is present, whatever was dropped.
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

/* Builds an entry over n clustered addresses for a block of length bytes
 * with the given budget (percent of length). */
static void
build_with(struct built *b, size_t n, uint64_t seed, uint32_t length,
           unsigned pct)
{
    struct fl_ixbuild ib;
    struct fl_blk meta = {.offset = 24,
                          .length = length,
                          .records = 7,
                          .time_first = 1000,
                          .time_last = 2000};

    b->addrs = calloc(n, sizeof(*b->addrs));
    b->n = n;
    fl_ixbuild_init(&ib);
    ib.budget_pct = pct;
    cr_assert_eq(fl_ixbuild_reset(&ib, 16), FL_OK);
    for (size_t i = 0; i < n; i++) {
        clustered(&seed, &b->addrs[i]);
        fl_ixbuild_add(&ib, &b->addrs[i]);
        fl_ixbuild_add(&ib, &b->addrs[i]); /* duplicates are free */
    }
    cr_assert_eq(fl_ixbuild_finish(&ib, &meta, &b->e), FL_OK);
    fl_ixbuild_fini(&ib);
}

/* Every summary kept. */
static void
build(struct built *b, size_t n, uint64_t seed)
{
    build_with(b, n, seed, UINT32_MAX / 2, 100);
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

/* Decodes a kept summary as docs/formats.md describes it, not through
 * the code under test; returns the key count. */
static size_t
decode_level(const struct fl_ixlevel *l, unsigned w, uint64_t *out)
{
    size_t k = 0;
    size_t off = 0;

    switch (l->enc) {
    case FL_IXENC_LIST:
        for (uint32_t i = 0; i < l->n; i++) {
            out[k++] = fl_be_uint(l->p + (size_t)i * w, w);
        }
        break;
    case FL_IXENC_BITMAP:
        for (uint32_t v = 0; v < 65536; v++) {
            if (l->p[v / 8] & (1u << (v % 8))) {
                out[k++] = v;
            }
        }
        break;
    case FL_IXENC_DELTA:
        for (uint32_t i = 0; i < l->n; i++) {
            uint64_t x = 0;
            unsigned sh = 0;

            do {
                cr_assert_lt(off, l->len);
                x |= (uint64_t)(l->p[off] & 0x7f) << sh;
                sh += 7;
            } while (l->p[off++] & 0x80);
            out[k] = i == 0 ? x : out[k - 1] + x + 1;
            k++;
        }
        cr_assert_eq(off, l->len);
        break;
    default:
        cr_assert_fail("level %d has no keys", l->enc);
    }
    return k;
}

/* The distinct keys of a level, brute force: sorted, unique. */
static size_t
brute_keys(const struct built *b, int level, uint64_t *out)
{
    size_t k = 0;

    for (size_t i = 0; i < b->n; i++) {
        const uint8_t *a = b->addrs[i].b;
        bool v4 = fl_addr_is_v4(&b->addrs[i]);
        uint64_t x;

        if (v4 != (level == FL_LV_24 || level == FL_LV_16)) {
            continue;
        }
        x = level == FL_LV_24   ? fl_be_uint(a + 12, 3)
            : level == FL_LV_16 ? fl_be_uint(a + 12, 2)
            : level == FL_LV_48 ? fl_be_uint(a, 6)
                                : fl_be_uint(a, 4);
        out[k++] = x;
    }
    /* Insertion sort and unique: small inputs, obviously right. */
    for (size_t i = 1; i < k; i++) {
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            uint64_t t = out[j];

            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u == 0 || out[u - 1] != out[i]) {
            out[u++] = out[i];
        }
    }
    return u;
}

static const unsigned widths[FL_LV_COUNT] = {3, 2, 6, 4};

/* Each level's count is exact; a kept level holds exactly the keys. */
static void
check_levels(const struct built *b)
{
    uint64_t *want = calloc(b->n + 65536, sizeof(*want));
    uint64_t *got = calloc(b->n + 65536, sizeof(*got));

    for (int l = 0; l < FL_LV_COUNT; l++) {
        size_t nw = brute_keys(b, l, want);

        cr_assert_eq(b->e.lv[l].n, nw, "level %d", l);
        if (b->e.lv[l].enc == FL_IXENC_ABSENT) {
            cr_assert_eq(b->e.lv[l].len, 0);
            continue;
        }
        cr_assert_eq(decode_level(&b->e.lv[l], widths[l], got), nw);
        cr_assert_arr_eq(got, want, nw * sizeof(*got), "level %d", l);
    }
    free(want);
    free(got);
}

/* Bytes of the LEB128 gap encoding of a level, from its keys. */
static size_t
delta_bytes(const uint64_t *v, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = i == 0 ? v[0] : v[i] - v[i - 1] - 1;

        do {
            len++;
            x >>= 7;
        } while (x != 0);
    }
    return len;
}

Test(storage_index, summaries_hold_each_prefix_once)
{
    struct built b;

    build(&b, 3000, 42);
    check_levels(&b);
    cr_assert_eq(b.e.lv[FL_LV_16].n, 5); /* 10.0-3 and 192.0 */
    cr_assert_eq(b.e.lv[FL_LV_32].n, 1);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        cr_assert_neq(b.e.lv[l].enc, FL_IXENC_ABSENT, "level %d", l);
    }
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, each_level_takes_its_smallest_encoding)
{
    struct built b;
    uint64_t *keys = calloc(40000, sizeof(*keys));

    build(&b, 3000, 42);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        size_t n = brute_keys(&b, l, keys);
        size_t best = n * widths[l];

        if (l == FL_LV_16 && best > 8192) {
            best = 8192;
        }
        if (delta_bytes(keys, n) < best) {
            best = delta_bytes(keys, n);
        }
        cr_assert_eq(b.e.lv[l].len, best, "level %d", l);
    }
    /* 10.0-3.x.x fills about a thousand /24s in a row: gaps of one. */
    cr_assert_eq(b.e.lv[FL_LV_24].enc, FL_IXENC_DELTA);
    /* One /32, 2001:db8: four bytes as a list, five as a varint. */
    cr_assert_eq(b.e.lv[FL_LV_32].enc, FL_IXENC_LIST);
    fl_blk_fini(&b.e);
    free(b.addrs);
    free(keys);
}

Test(storage_index, many_sixteens_take_the_bitmap)
{
    struct fl_ixbuild ib;
    struct built b = {.n = 40000};
    struct fl_blk meta = {.length = 1u << 30};
    uint64_t s = 3;

    b.addrs = calloc(b.n, sizeof(*b.addrs));
    fl_ixbuild_init(&ib);
    cr_assert_eq(fl_ixbuild_reset(&ib, b.n), FL_OK);
    for (size_t i = 0; i < b.n; i++) {
        /* Every /16 in use skips one: gaps of two cost a byte each. */
        fl_addr_from_v4(&b.addrs[i], (uint32_t)(rnd(&s) % 32768) << 17 |
                                         (uint32_t)(rnd(&s) & 0xffff));
        fl_ixbuild_add(&ib, &b.addrs[i]);
    }
    cr_assert_eq(fl_ixbuild_finish(&ib, &meta, &b.e), FL_OK);
    fl_ixbuild_fini(&ib);
    cr_assert_eq(b.e.lv[FL_LV_16].enc, FL_IXENC_BITMAP);
    cr_assert_eq(b.e.lv[FL_LV_16].len, 8192);
    check_levels(&b);
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, a_tight_budget_drops_levels_but_keeps_counts)
{
    struct built b;

    /* 3000 addresses in a 30,000-byte block: 9 % is 2700 bytes, the
     * Bloom filter alone is about 3600: only FL_IX_FLOOR remains. */
    build_with(&b, 3000, 42, 30000, FL_IX_BUDGET_PCT);
    check_levels(&b);
    cr_assert_eq(b.e.lv[FL_LV_24].enc, FL_IXENC_ABSENT);
    cr_assert_neq(b.e.lv[FL_LV_16].enc, FL_IXENC_ABSENT);
    cr_assert_neq(b.e.lv[FL_LV_32].enc, FL_IXENC_ABSENT);
    cr_assert_leq(b.e.lv[FL_LV_16].len + b.e.lv[FL_LV_32].len +
                      b.e.lv[FL_LV_48].len,
                  FL_IX_FLOOR);
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

/* Probes random prefixes: never a present one ruled out; with every
 * level kept, exact up to /24 and /48.  Returns prefixes ruled out. */
static size_t
probe(const struct built *b, bool exact)
{
    uint64_t s = 7;
    size_t exact_checked = 0;
    size_t ruled_out = 0;

    for (int i = 0; i < 50000; i++) {
        struct fl_prefix p;
        bool has;
        bool may;
        bool v4;
        unsigned l;

        random_prefix(&s, b, &p);
        has = brute_has(b, &p);
        may = fl_blk_may_have_prefix(&b->e, &p);
        cr_assert(!has || may, "missed a present prefix, len %u", p.len);
        ruled_out += !may;
        v4 = p.len >= 96 && fl_addr_is_v4(&p.addr);
        l = v4 ? p.len - 96u : p.len;
        if (exact && l > 0 && l <= (v4 ? 24u : 48u) && !(p.len <= 96 && !v4)) {
            cr_assert_eq(has, may, "len %u", p.len);
            exact_checked++;
        }
    }
    cr_assert(!exact || exact_checked > 1000);
    return ruled_out;
}

Test(storage_index, never_rules_out_a_present_prefix)
{
    struct built b;

    build(&b, 2000, 99);
    cr_assert_gt(probe(&b, true), 1000);
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, dropped_levels_fall_back_and_stay_sound)
{
    static const uint32_t lengths[] = {0, 20000, 60000, 200000};
    size_t full;
    struct built b;

    build(&b, 2000, 99);
    full = probe(&b, true);
    fl_blk_fini(&b.e);
    free(b.addrs);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t some;

        build_with(&b, 2000, 99, lengths[i], FL_IX_BUDGET_PCT);
        some = probe(&b, false);
        /* Fewer levels prove less, never more. */
        cr_assert_leq(some, full, "length %u", lengths[i]);
        fl_blk_fini(&b.e);
        free(b.addrs);
    }
    /* Every level dropped: only the Bloom filter (hosts) and the exact
     * per-family counts rule anything out. */
    build(&b, 2000, 99);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        b.e.lv[l].enc = FL_IXENC_ABSENT;
    }
    cr_assert_gt(probe(&b, false), 0);
    {
        struct fl_prefix p;

        /* A /24 that is absent cannot be proven so any more. */
        cr_assert_eq(fl_prefix_parse("10.200.0.0/24", &p), FL_OK);
        cr_assert(fl_blk_may_have_prefix(&b.e, &p));
        cr_assert_eq(fl_prefix_parse("10.200.0.1", &p), FL_OK);
        cr_assert_not(fl_blk_may_have_prefix(&b.e, &p));
    }
    fl_blk_fini(&b.e);
    free(b.addrs);
}

Test(storage_index, a_block_without_ipv6_rules_out_every_ipv6_prefix)
{
    struct fl_ixbuild ib;
    struct fl_blk meta = {.length = 0};
    struct fl_blk e;
    struct fl_addr a;
    struct fl_prefix p;

    fl_ixbuild_init(&ib);
    cr_assert_eq(fl_ixbuild_reset(&ib, 4), FL_OK);
    fl_addr_from_v4(&a, 0xc0000201u);
    fl_ixbuild_add(&ib, &a);
    cr_assert_eq(fl_ixbuild_finish(&ib, &meta, &e), FL_OK);
    fl_ixbuild_fini(&ib);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        e.lv[l].enc = FL_IXENC_ABSENT;
    }
    cr_assert_eq(fl_prefix_parse("2000::/3", &p), FL_OK);
    cr_assert_not(fl_blk_may_have_prefix(&e, &p));
    cr_assert_eq(fl_prefix_parse("::/0", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&e, &p));
    cr_assert_eq(fl_prefix_parse("::/64", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&e, &p));
    cr_assert_eq(fl_prefix_parse("192.0.2.1", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&e, &p));
    fl_blk_fini(&e);
}

Test(storage_index, a_malformed_delta_list_proves_nothing)
{
    struct built b;
    struct fl_prefix p;
    uint8_t *copy;

    build(&b, 3000, 42);
    cr_assert_eq(b.e.lv[FL_LV_24].enc, FL_IXENC_DELTA);
    /* Every byte a continuation byte: the first key never ends. */
    copy = malloc(b.e.bloblen);
    memcpy(copy, b.e.blob, b.e.bloblen);
    memset(copy + (b.e.lv[FL_LV_24].p - b.e.blob), 0xff, b.e.lv[FL_LV_24].len);
    b.e.lv[FL_LV_24].p = copy + (b.e.lv[FL_LV_24].p - b.e.blob);
    cr_assert_eq(fl_prefix_parse("10.200.0.0/24", &p), FL_OK);
    cr_assert(fl_blk_may_have_prefix(&b.e, &p));
    free(copy);
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
    cr_assert_eq(back.length, UINT32_MAX / 2);
    cr_assert_eq(back.records, 7);
    cr_assert_eq(back.time_first, 1000);
    cr_assert_eq(back.time_last, 2000);
    cr_assert_eq(back.bloom_m, b.e.bloom_m);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        cr_assert_eq(back.lv[l].enc, b.e.lv[l].enc);
        cr_assert_eq(back.lv[l].n, b.e.lv[l].n);
        cr_assert_eq(back.lv[l].len, b.e.lv[l].len);
    }
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

/* An index of the given version holding entry e. */
static size_t
index_bytes(uint8_t *p, uint32_t version, const struct fl_blk *e)
{
    memcpy(p, FL_IDX_MAGIC, 4);
    fl_put_be32(p + 4, version);
    fl_put_be32(p + 8, 1);
    memcpy(p + 12, e->blob, e->bloblen);
    return 12 + e->bloblen;
}

Test(storage_index, an_index_of_another_version_is_refused)
{
    struct built b;
    uint8_t *p;
    size_t len;
    struct fl_blk *blks;
    size_t n;

    build_with(&b, 500, 1234, 20000, FL_IX_BUDGET_PCT);
    p = malloc(b.e.bloblen + 12);
    len = index_bytes(p, FL_IDX_VERSION, &b.e);
    cr_assert_eq(fl_seg_index_parse(p, len, &blks, &n), FL_OK);
    cr_assert_eq(n, 1);
    for (int l = 0; l < FL_LV_COUNT; l++) {
        cr_assert_eq(blks[0].lv[l].enc, b.e.lv[l].enc);
    }
    free(blks);
    for (uint32_t v = 0; v < 8; v++) {
        if (v != FL_IDX_VERSION) {
            index_bytes(p, v, &b.e);
            cr_assert_eq(fl_seg_index_parse(p, len, &blks, &n), FL_EVERSION,
                         "version %u", v);
            cr_assert_null(blks);
        }
    }
    /* Version 1 had its entry count where the version is: a one-block
     * version-1 index is refused as a version, not misread. */
    fl_put_be32(p + 4, 1);
    cr_assert_eq(fl_seg_index_parse(p, len, &blks, &n), FL_EVERSION);
    /* An unknown encoding of a level is damage. */
    index_bytes(p, FL_IDX_VERSION, &b.e);
    p[12 + 41] = 9;
    cr_assert_eq(fl_seg_index_parse(p, len, &blks, &n), FL_EFORMAT);
    free(p);
    fl_blk_fini(&b.e);
    free(b.addrs);
}
