/*
 * The index of one block: its distinct addresses gathered in a hash set,
 * then written as a Bloom filter and sorted prefix summaries (IPv4 /24
 * and /16, IPv6 /48 and /32); and the test a scan runs against it.
 */
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

void
fl_ixbuild_init(struct fl_ixbuild *b)
{
    memset(b, 0, sizeof(*b));
}

void
fl_ixbuild_fini(struct fl_ixbuild *b)
{
    free(b->addrs);
    free(b->h1);
    free(b->h2);
    free(b->slots);
    memset(b, 0, sizeof(*b));
}

static int
grow_slots(struct fl_ixbuild *b, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));

    if (slots == NULL) {
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        size_t j = b->h1[i] & (nslots - 1);

        while (slots[j] != 0) {
            j = (j + 1) & (nslots - 1);
        }
        slots[j] = (uint32_t)(i + 1);
    }
    free(b->slots);
    b->slots = slots;
    b->nslots = nslots;
    return FL_OK;
}

static int
grow_addrs(struct fl_ixbuild *b, size_t cap)
{
    struct fl_addr *a = realloc(b->addrs, cap * sizeof(*a));
    uint64_t *h1;
    uint64_t *h2;

    if (a == NULL) {
        return FL_ENOMEM;
    }
    b->addrs = a;
    h1 = realloc(b->h1, cap * sizeof(*h1));
    if (h1 == NULL) {
        return FL_ENOMEM;
    }
    b->h1 = h1;
    h2 = realloc(b->h2, cap * sizeof(*h2));
    if (h2 == NULL) {
        return FL_ENOMEM;
    }
    b->h2 = h2;
    b->cap = cap;
    return FL_OK;
}

int
fl_ixbuild_reset(struct fl_ixbuild *b, size_t naddrs)
{
    size_t nslots = 64;

    b->n = 0;
    b->failed = false;
    while (nslots < naddrs * 2) {
        nslots *= 2;
    }
    if (naddrs > b->cap && grow_addrs(b, naddrs) != FL_OK) {
        return FL_ENOMEM;
    }
    if (nslots > b->nslots || b->slots == NULL) {
        return grow_slots(b, nslots);
    }
    memset(b->slots, 0, b->nslots * sizeof(*b->slots));
    return FL_OK;
}

void
fl_ixbuild_add(struct fl_ixbuild *b, const struct fl_addr *a)
{
    uint64_t h1;
    uint64_t h2;
    size_t j;

    if (b->failed) {
        return;
    }
    fl_bloom_hash(a, &h1, &h2);
    j = h1 & (b->nslots - 1);
    while (b->slots[j] != 0) {
        uint32_t i = b->slots[j] - 1;

        if (b->h1[i] == h1 && memcmp(&b->addrs[i], a, 16) == 0) {
            return;
        }
        j = (j + 1) & (b->nslots - 1);
    }
    if (b->n == b->cap && grow_addrs(b, b->cap ? b->cap * 2 : 1024) != 0) {
        b->failed = true;
        return;
    }
    b->addrs[b->n] = *a;
    b->h1[b->n] = h1;
    b->h2[b->n] = h2;
    b->slots[j] = (uint32_t)(b->n + 1);
    b->n++;
    /* Keep the table at most half full so probes stay short. */
    if (b->n * 2 > b->nslots && grow_slots(b, b->nslots * 2) != FL_OK) {
        b->failed = true;
    }
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x;
    uint64_t b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

/* Sorts and removes duplicates; returns the new count. */
static size_t
sort_unique(uint64_t *v, size_t n)
{
    size_t k = 0;

    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_u64);
    }
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || v[k - 1] != v[i]) {
            v[k++] = v[i];
        }
    }
    return k;
}

/* Writes v[i] >> shift as w-byte big-endian values, dropping repeats. */
static size_t
put_list(uint8_t *p, const uint64_t *v, size_t n, unsigned shift, unsigned w)
{
    size_t k = 0;
    uint64_t last = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i] >> shift;

        if (k > 0 && x == last) {
            continue;
        }
        for (unsigned j = 0; j < w; j++) {
            p[k * w + j] = (uint8_t)(x >> (8 * (w - 1 - j)));
        }
        last = x;
        k++;
    }
    return k;
}

static size_t
count_unique_shifted(const uint64_t *v, size_t n, unsigned shift)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (i == 0 || (v[i] >> shift) != (v[i - 1] >> shift)) {
            k++;
        }
    }
    return k;
}

/* Splits the distinct addresses into sorted /24 (v4) and /48 (v6) keys. */
static int
prefix_keys(const struct fl_ixbuild *b, uint64_t **v4, size_t *n4,
            uint64_t **v6, size_t *n6)
{
    *v4 = malloc((b->n + 1) * sizeof(uint64_t));
    *v6 = malloc((b->n + 1) * sizeof(uint64_t));
    *n4 = 0;
    *n6 = 0;
    if (*v4 == NULL || *v6 == NULL) {
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        const uint8_t *a = b->addrs[i].b;

        if (fl_addr_is_v4(&b->addrs[i])) {
            (*v4)[(*n4)++] = fl_be_uint(a + 12, 3);
        } else {
            (*v6)[(*n6)++] = fl_be_uint(a, 6);
        }
    }
    *n4 = sort_unique(*v4, *n4);
    *n6 = sort_unique(*v6, *n6);
    return FL_OK;
}

static void
put_fixed(uint8_t *p, const struct fl_blk *m)
{
    fl_put_be64(p, m->offset);
    fl_put_be32(p + 8, m->length);
    fl_put_be32(p + 12, m->records);
    fl_put_be64(p + 16, m->time_first);
    fl_put_be64(p + 24, m->time_last);
    fl_put_be32(p + 32, m->flags);
    fl_put_be32(p + 36, m->bloom_m);
    p[40] = m->bloom_k;
    p[41] = p[42] = p[43] = 0;
    fl_put_be32(p + 44, m->n24);
    fl_put_be32(p + 48, m->n16);
    fl_put_be32(p + 52, m->n48);
    fl_put_be32(p + 56, m->n32);
}

/* Points the list pointers of e into its blob. */
static void
point_lists(struct fl_blk *e, const uint8_t *p)
{
    e->bloom = p;
    p += ((size_t)e->bloom_m + 7) / 8;
    e->p24 = p;
    p += (size_t)e->n24 * 3;
    e->p16 = p;
    p += (size_t)e->n16 * 2;
    e->p48 = p;
    p += (size_t)e->n48 * 6;
    e->p32 = p;
}

int
fl_ixbuild_finish(struct fl_ixbuild *b, const struct fl_blk *meta,
                  struct fl_blk *out)
{
    uint64_t *v4 = NULL;
    uint64_t *v6 = NULL;
    size_t n4;
    size_t n6;
    size_t bloombytes;
    struct fl_blk e = *meta;
    int ret = FL_ENOMEM;

    memset(out, 0, sizeof(*out));
    if (b->failed || prefix_keys(b, &v4, &n4, &v6, &n6) != FL_OK) {
        goto out;
    }
    e.bloom_m = fl_bloom_bits(b->n);
    e.bloom_k = fl_bloom_k(e.bloom_m, b->n);
    e.n24 = (uint32_t)n4;
    e.n16 = (uint32_t)count_unique_shifted(v4, n4, 8);
    e.n48 = (uint32_t)n6;
    e.n32 = (uint32_t)count_unique_shifted(v6, n6, 16);
    bloombytes = ((size_t)e.bloom_m + 7) / 8;
    e.bloblen = FL_IDX_ENTRY_FIXED + bloombytes + (size_t)e.n24 * 3 +
                (size_t)e.n16 * 2 + (size_t)e.n48 * 6 + (size_t)e.n32 * 4;
    e.blob = calloc(1, e.bloblen);
    if (e.blob == NULL) {
        goto out;
    }
    e.own = true;
    put_fixed(e.blob, &e);
    point_lists(&e, e.blob + FL_IDX_ENTRY_FIXED);
    for (size_t i = 0; i < b->n; i++) {
        fl_bloom_set((uint8_t *)e.bloom, e.bloom_m, e.bloom_k, b->h1[i],
                     b->h2[i]);
    }
    put_list((uint8_t *)e.p24, v4, n4, 0, 3);
    put_list((uint8_t *)e.p16, v4, n4, 8, 2);
    put_list((uint8_t *)e.p48, v6, n6, 0, 6);
    put_list((uint8_t *)e.p32, v6, n6, 16, 4);
    *out = e;
    ret = FL_OK;
out:
    free(v4);
    free(v6);
    return ret;
}

int
fl_blk_corrupt(uint64_t offset, uint64_t length, struct fl_blk *out)
{
    memset(out, 0, sizeof(*out));
    out->offset = offset;
    out->length = length > UINT32_MAX ? UINT32_MAX : (uint32_t)length;
    out->time_last = UINT64_MAX;
    out->flags = FL_BLK_CORRUPT;
    out->bloblen = FL_IDX_ENTRY_FIXED;
    out->blob = calloc(1, out->bloblen);
    if (out->blob == NULL) {
        return FL_ENOMEM;
    }
    out->own = true;
    put_fixed(out->blob, out);
    point_lists(out, out->blob + FL_IDX_ENTRY_FIXED);
    return FL_OK;
}

void
fl_blk_fini(struct fl_blk *b)
{
    if (b->own) {
        free(b->blob);
    }
    b->blob = NULL;
    b->own = false;
}

int
fl_blk_parse(struct fl_cursor *c, struct fl_blk *out)
{
    const uint8_t *start = c->p;
    uint32_t len = 0;
    uint8_t k = 0;
    uint64_t vlen;

    memset(out, 0, sizeof(*out));
    if (c->left < FL_IDX_ENTRY_FIXED) {
        return FL_ETRUNC;
    }
    fl_cursor_u64(c, &out->offset);
    fl_cursor_u32(c, &len);
    out->length = len;
    fl_cursor_u32(c, &out->records);
    fl_cursor_u64(c, &out->time_first);
    fl_cursor_u64(c, &out->time_last);
    fl_cursor_u32(c, &out->flags);
    fl_cursor_u32(c, &out->bloom_m);
    fl_cursor_u8(c, &k);
    out->bloom_k = k;
    fl_cursor_skip(c, 3);
    fl_cursor_u32(c, &out->n24);
    fl_cursor_u32(c, &out->n16);
    fl_cursor_u32(c, &out->n48);
    fl_cursor_u32(c, &out->n32);
    if ((out->bloom_m == 0) != (k == 0) || k > 16) {
        return FL_EFORMAT;
    }
    vlen = ((uint64_t)out->bloom_m + 7) / 8 + (uint64_t)out->n24 * 3 +
           (uint64_t)out->n16 * 2 + (uint64_t)out->n48 * 6 +
           (uint64_t)out->n32 * 4;
    if (vlen > c->left) {
        return FL_ETRUNC;
    }
    point_lists(out, c->p);
    fl_cursor_skip(c, (size_t)vlen);
    out->blob = (uint8_t *)start;
    out->bloblen = FL_IDX_ENTRY_FIXED + (size_t)vlen;
    return FL_OK;
}

/* Is some w-byte big-endian value of the sorted list in [lo, hi]? */
static bool
list_has_range(const uint8_t *p, uint32_t n, unsigned w, uint64_t lo,
               uint64_t hi)
{
    uint32_t a = 0;
    uint32_t b = n;

    while (a < b) {
        uint32_t mid = a + (b - a) / 2;

        if (fl_be_uint(p + (size_t)mid * w, w) < lo) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    return a < n && fl_be_uint(p + (size_t)a * w, w) <= hi;
}

static uint64_t
low_mask(unsigned bits)
{
    return bits >= 64 ? UINT64_MAX : (1ull << bits) - 1;
}

static bool
bloom_has(const struct fl_blk *b, const struct fl_addr *a)
{
    uint64_t h1;
    uint64_t h2;

    if (b->bloom_m == 0) {
        return false;
    }
    fl_bloom_hash(a, &h1, &h2);
    return fl_bloom_test(b->bloom, b->bloom_m, b->bloom_k, h1, h2);
}

static bool
may_have_v4(const struct fl_blk *b, const struct fl_prefix *p)
{
    unsigned l = p->len - 96u;
    uint64_t v = fl_be_uint(p->addr.b + 12, 4);

    if (l >= 24) {
        if (!list_has_range(b->p24, b->n24, 3, v >> 8, v >> 8)) {
            return false;
        }
        return l < 32 || bloom_has(b, &p->addr);
    }
    if (l > 16) {
        return list_has_range(b->p24, b->n24, 3, v >> 8,
                              (v >> 8) | low_mask(24 - l));
    }
    return list_has_range(b->p16, b->n16, 2, v >> 16,
                          (v >> 16) | low_mask(16 - l));
}

static bool
may_have_v6(const struct fl_blk *b, const struct fl_prefix *p)
{
    uint64_t x48 = fl_be_uint(p->addr.b, 6);
    uint64_t x32 = x48 >> 16;

    if (p->len >= 48) {
        if (!list_has_range(b->p48, b->n48, 6, x48, x48)) {
            return false;
        }
        return p->len < 128 || bloom_has(b, &p->addr);
    }
    if (p->len > 32) {
        return list_has_range(b->p48, b->n48, 6, x48,
                              x48 | low_mask(48u - p->len));
    }
    return list_has_range(b->p32, b->n32, 4, x32, x32 | low_mask(32u - p->len));
}

bool
fl_blk_may_have_prefix(const struct fl_blk *b, const struct fl_prefix *p)
{
    static const struct fl_addr mapped = {
        .b = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}};

    if (p->len == 0 || p->len > 128) {
        return true;
    }
    if (p->len >= 96 && fl_addr_is_v4(&p->addr)) {
        return may_have_v4(b, p);
    }
    /* A short prefix covering all of ::ffff:0:0/96 holds every IPv4
     * address; the IPv6 summaries do not list those. */
    if (p->len <= 96 && fl_prefix_contains(p, &mapped) && b->n16 > 0) {
        return true;
    }
    return may_have_v6(b, p);
}

bool
fl_blk_may_match(const struct fl_blk *b, const struct fl_scan_need *need)
{
    for (size_t i = 0; i < need->n; i++) {
        if (fl_blk_may_have_prefix(b, &need->prefixes[i])) {
            return true;
        }
    }
    return false;
}
