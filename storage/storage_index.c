/*
 * The index of one block: its distinct addresses gathered in a hash set,
 * then written as a Bloom filter and prefix summaries (IPv4 /24 and /16,
 * IPv6 /48 and /32), each in its smallest encoding or dropped when over
 * budget; and the test a scan runs against it.
 */
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

void
fl_ixbuild_init(struct fl_ixbuild *b)
{
    memset(b, 0, sizeof(*b));
    b->budget_pct = FL_IX_BUDGET_PCT;
}

void
fl_ixbuild_fini(struct fl_ixbuild *b)
{
    free(b->addrs);
    free(b->h1);
    free(b->h2);
    free(b->slots);
    free(b->keys);
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

/* ---- prefix keys and their encodings --------------------------------- */

/* Key width in bytes of each level, in entry order. */
static const unsigned lv_width[FL_LV_COUNT] = {3, 2, 6, 4};

/* One summary as it will be written. */
struct level_plan {
    const uint64_t *v; /* sorted, unique keys */
    size_t n;
    uint8_t enc;
    size_t len;
};

/*
 * Sorts keys of the given byte width by least-significant-digit radix
 * (tmp is scratch of n keys), then drops duplicates; returns the count.
 * A pass whose digit is the same for every key is skipped: real blocks
 * share their high bytes.
 */
static size_t
sort_unique(uint64_t *v, uint64_t *tmp, size_t n, unsigned bytes)
{
    uint64_t *src = v;
    uint64_t *dst = tmp;
    size_t k = 0;

    for (unsigned pass = 0; pass < bytes && n > 1; pass++) {
        size_t count[256] = {0};
        unsigned sh = 8 * pass;
        size_t sum = 0;
        uint64_t *t;

        for (size_t i = 0; i < n; i++) {
            count[(src[i] >> sh) & 0xff]++;
        }
        if (count[(src[0] >> sh) & 0xff] == n) {
            continue;
        }
        for (unsigned d = 0; d < 256; d++) {
            size_t c = count[d];

            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            dst[count[(src[i] >> sh) & 0xff]++] = src[i];
        }
        t = src;
        src = dst;
        dst = t;
    }
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || v[k - 1] != src[i]) {
            v[k++] = src[i];
        }
    }
    return k;
}

/* The sorted unique keys v >> shift, into out; returns their count. */
static size_t
shift_unique(const uint64_t *v, size_t n, unsigned shift, uint64_t *out)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i] >> shift;

        if (k == 0 || out[k - 1] != x) {
            out[k++] = x;
        }
    }
    return k;
}

static size_t
varint_len(uint64_t x)
{
    size_t n = 1;

    while (x >= 0x80) {
        x >>= 7;
        n++;
    }
    return n;
}

static size_t
put_varint(uint8_t *p, uint64_t x)
{
    size_t n = 0;

    while (x >= 0x80) {
        p[n++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    p[n++] = (uint8_t)x;
    return n;
}

/* The key to write at i of a delta list: the first key, then gaps - 1. */
static uint64_t
delta_at(const uint64_t *v, size_t i)
{
    return i == 0 ? v[0] : v[i] - v[i - 1] - 1;
}

/* Chooses the smallest encoding of a level; a tie keeps the one searched
 * fastest (list, then bitmap, then delta). */
static void
plan_level(struct level_plan *pl, enum fl_ixlevel_id id, const uint64_t *v,
           size_t n)
{
    size_t delta = 0;

    for (size_t i = 0; i < n; i++) {
        delta += varint_len(delta_at(v, i));
    }
    pl->v = v;
    pl->n = n;
    pl->enc = FL_IXENC_LIST;
    pl->len = n * lv_width[id];
    if (id == FL_LV_16 && FL_IX_BITMAP16_LEN < pl->len) {
        pl->enc = FL_IXENC_BITMAP;
        pl->len = FL_IX_BITMAP16_LEN;
    }
    if (delta < pl->len) {
        pl->enc = FL_IXENC_DELTA;
        pl->len = delta;
    }
}

/*
 * Keeps summaries, the smallest first (on a tie the coarser), while the
 * entry (fixed bytes included) stays within pct of the block's length
 * or the summaries within FL_IX_FLOOR bytes; drops the rest.  An empty
 * summary costs nothing and is always kept: it proves absence.
 */
static void
plan_budget(struct level_plan pl[FL_LV_COUNT], size_t fixed, uint32_t length,
            unsigned pct)
{
    static const int order[FL_LV_COUNT] = {FL_LV_16, FL_LV_32, FL_LV_24,
                                           FL_LV_48};
    uint64_t cap = (uint64_t)length * pct / 100;
    uint64_t room = cap > fixed ? cap - fixed : 0;
    uint64_t used = 0;
    bool done[FL_LV_COUNT] = {false};

    if (room < FL_IX_FLOOR) {
        room = FL_IX_FLOOR;
    }
    for (int round = 0; round < FL_LV_COUNT; round++) {
        int best = -1;

        for (int j = 0; j < FL_LV_COUNT; j++) {
            int i = order[j];

            if (!done[i] && (best < 0 || pl[i].len < pl[best].len)) {
                best = i;
            }
        }
        done[best] = true;
        if (used + pl[best].len <= room) {
            used += pl[best].len;
        } else {
            pl[best].enc = FL_IXENC_ABSENT;
            pl[best].len = 0;
        }
    }
}

/* Splits the distinct addresses into sorted keys of the four levels and
 * plans their encodings. */
static int
plan_levels(struct fl_ixbuild *b, struct level_plan pl[FL_LV_COUNT])
{
    size_t cap = b->n > 0 ? b->n : 1;
    uint64_t *k24;
    uint64_t *k48;
    uint64_t *k16;
    uint64_t *k32;
    size_t n4 = 0;
    size_t n6 = 0;

    if (b->keycap < cap) {
        uint64_t *k = realloc(b->keys, cap * 4 * sizeof(*k));

        if (k == NULL) {
            return FL_ENOMEM;
        }
        b->keys = k;
        b->keycap = cap;
    }
    /* /16 and /32 keys go where the sorts had their scratch. */
    k24 = b->keys;
    k48 = k24 + b->keycap;
    k16 = k48 + b->keycap;
    k32 = k16 + b->keycap;
    for (size_t i = 0; i < b->n; i++) {
        const uint8_t *a = b->addrs[i].b;

        if (fl_addr_is_v4(&b->addrs[i])) {
            k24[n4++] = fl_be_uint(a + 12, 3);
        } else {
            k48[n6++] = fl_be_uint(a, 6);
        }
    }
    n4 = sort_unique(k24, k16, n4, 3);
    n6 = sort_unique(k48, k32, n6, 6);
    plan_level(&pl[FL_LV_24], FL_LV_24, k24, n4);
    plan_level(&pl[FL_LV_16], FL_LV_16, k16, shift_unique(k24, n4, 8, k16));
    plan_level(&pl[FL_LV_48], FL_LV_48, k48, n6);
    plan_level(&pl[FL_LV_32], FL_LV_32, k32, shift_unique(k48, n6, 16, k32));
    return FL_OK;
}

/* Writes a planned summary into p (zeroed, pl->len bytes). */
static void
put_level(uint8_t *p, const struct level_plan *pl, unsigned w)
{
    size_t off = 0;

    for (size_t i = 0; i < pl->n; i++) {
        uint64_t x = pl->v[i];

        switch (pl->enc) {
        case FL_IXENC_LIST:
            for (unsigned j = 0; j < w; j++) {
                p[i * w + j] = (uint8_t)(x >> (8 * (w - 1 - j)));
            }
            break;
        case FL_IXENC_BITMAP:
            p[x >> 3] |= (uint8_t)(1u << (x & 7));
            break;
        case FL_IXENC_DELTA:
            off += put_varint(p + off, delta_at(pl->v, i));
            break;
        default:
            return;
        }
    }
}

/* ---- entries ----------------------------------------------------------- */

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
    p[45] = p[46] = p[47] = 0;
    for (int i = 0; i < FL_LV_COUNT; i++) {
        p[41 + i] = m->lv[i].enc;
        fl_put_be32(p + 48 + 4 * i, m->lv[i].n);
        fl_put_be32(p + 64 + 4 * i, m->lv[i].len);
    }
}

/* Points the Bloom filter and summaries of e into its variable part. */
static void
point_lists(struct fl_blk *e, const uint8_t *p)
{
    e->bloom = p;
    p += ((size_t)e->bloom_m + 7) / 8;
    for (int i = 0; i < FL_LV_COUNT; i++) {
        e->lv[i].p = p;
        p += e->lv[i].len;
    }
}

int
fl_ixbuild_finish(struct fl_ixbuild *b, const struct fl_blk *meta,
                  struct fl_blk *out)
{
    struct level_plan pl[FL_LV_COUNT];
    struct fl_blk e = *meta;
    size_t fixed;

    memset(out, 0, sizeof(*out));
    if (b->failed || plan_levels(b, pl) != FL_OK) {
        return FL_ENOMEM;
    }
    e.bloom_m = fl_bloom_bits(b->n);
    e.bloom_k = fl_bloom_k(e.bloom_m, b->n);
    fixed = FL_IDX_ENTRY_FIXED + ((size_t)e.bloom_m + 7) / 8;
    plan_budget(pl, fixed, meta->length, b->budget_pct);
    e.bloblen = fixed;
    for (int i = 0; i < FL_LV_COUNT; i++) {
        e.lv[i].enc = pl[i].enc;
        e.lv[i].n = (uint32_t)pl[i].n;
        e.lv[i].len = (uint32_t)pl[i].len;
        e.bloblen += pl[i].len;
    }
    e.blob = calloc(1, e.bloblen);
    if (e.blob == NULL) {
        return FL_ENOMEM;
    }
    e.own = true;
    put_fixed(e.blob, &e);
    point_lists(&e, e.blob + FL_IDX_ENTRY_FIXED);
    for (size_t i = 0; i < b->n; i++) {
        fl_bloom_set((uint8_t *)e.bloom, e.bloom_m, e.bloom_k, b->h1[i],
                     b->h2[i]);
    }
    for (int i = 0; i < FL_LV_COUNT; i++) {
        put_level((uint8_t *)e.lv[i].p, &pl[i], lv_width[i]);
    }
    *out = e;
    return FL_OK;
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

/* Do a level's encoding, count and length agree? */
static bool
level_is_sane(const struct fl_ixlevel *l, enum fl_ixlevel_id id)
{
    uint64_t n = l->n;
    uint64_t w = lv_width[id];

    switch (l->enc) {
    case FL_IXENC_ABSENT:
        return l->len == 0;
    case FL_IXENC_LIST:
        return l->len == n * w;
    case FL_IXENC_BITMAP:
        return id == FL_LV_16 && l->len == FL_IX_BITMAP16_LEN && n > 0 &&
               n <= 65536;
    case FL_IXENC_DELTA:
        /* Each key takes 1 to ceil(8w / 7) bytes. */
        return n <= l->len && l->len <= n * ((8 * w + 6) / 7);
    default:
        return false;
    }
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
    for (int i = 0; i < FL_LV_COUNT; i++) {
        fl_cursor_u8(c, &out->lv[i].enc);
    }
    fl_cursor_skip(c, 3);
    for (int i = 0; i < FL_LV_COUNT; i++) {
        fl_cursor_u32(c, &out->lv[i].n);
    }
    for (int i = 0; i < FL_LV_COUNT; i++) {
        fl_cursor_u32(c, &out->lv[i].len);
    }
    if ((out->bloom_m == 0) != (k == 0) || k > 16) {
        return FL_EFORMAT;
    }
    vlen = ((uint64_t)out->bloom_m + 7) / 8;
    for (int i = 0; i < FL_LV_COUNT; i++) {
        if (!level_is_sane(&out->lv[i], (enum fl_ixlevel_id)i)) {
            return FL_EFORMAT;
        }
        vlen += out->lv[i].len;
    }
    if (vlen > c->left) {
        return FL_ETRUNC;
    }
    point_lists(out, c->p);
    fl_cursor_skip(c, (size_t)vlen);
    out->blob = (uint8_t *)start;
    out->bloblen = FL_IDX_ENTRY_FIXED + (size_t)vlen;
    return FL_OK;
}

/* ---- searching --------------------------------------------------------- */

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

/* Is a bit of [lo, hi] (within 0..65535) set?  Whole bytes at a time. */
static bool
bitmap_has_range(const uint8_t *p, uint64_t lo, uint64_t hi)
{
    for (uint64_t v = lo; v <= hi; v++) {
        if ((v & 7) == 0 && hi - v >= 7) {
            if (p[v >> 3] != 0) {
                return true;
            }
            v += 7;
        } else if (p[v >> 3] & (1u << (v & 7))) {
            return true;
        }
    }
    return false;
}

/*
 * Is some key of the delta list in [lo, hi]?  Decoded from the start,
 * stopping at the first key >= lo.  A list that runs short, carries an
 * overlong varint or wraps proves nothing: true.
 */
static bool
delta_has_range(const uint8_t *p, uint32_t len, uint32_t n, uint64_t lo,
                uint64_t hi)
{
    size_t off = 0;
    uint64_t v = 0;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t x = 0;
        unsigned sh = 0;
        uint8_t byte;
        uint64_t next;

        do {
            if (off == len || sh > 56) {
                return true;
            }
            byte = p[off++];
            x |= (uint64_t)(byte & 0x7f) << sh;
            sh += 7;
        } while (byte & 0x80);
        next = i == 0 ? x : v + x + 1;
        if (i > 0 && next <= v) {
            return true;
        }
        v = next;
        if (v >= lo) {
            return v <= hi;
        }
    }
    return false;
}

/* May the level hold a key in [lo, hi]?  A dropped level may. */
static bool
level_has_range(const struct fl_ixlevel *l, enum fl_ixlevel_id id, uint64_t lo,
                uint64_t hi)
{
    switch (l->enc) {
    case FL_IXENC_LIST:
        return list_has_range(l->p, l->n, lv_width[id], lo, hi);
    case FL_IXENC_BITMAP:
        return bitmap_has_range(l->p, lo, hi > 0xffff ? 0xffff : hi);
    case FL_IXENC_DELTA:
        return delta_has_range(l->p, l->len, l->n, lo, hi);
    default:
        return true;
    }
}

static bool
level_is_known(const struct fl_ixlevel *l)
{
    return l->enc != FL_IXENC_ABSENT;
}

static uint64_t
low_mask(unsigned bits)
{
    return bits >= 64 ? UINT64_MAX : (1ull << bits) - 1;
}

/* Whether the block's filter may hold a; without a filter, it may. */
static bool
bloom_has(const struct fl_blk *b, const struct fl_addr *a)
{
    uint64_t h1;
    uint64_t h2;

    if (b->bloom_m == 0) {
        return true;
    }
    fl_bloom_hash(a, &h1, &h2);
    return fl_bloom_test(b->bloom, b->bloom_m, b->bloom_k, h1, h2);
}

/* May a key of the level's width lie under the first plen bits of the
 * key x (of kbits bits)?  plen >= kbits asks for x itself. */
static bool
level_may_cover(const struct fl_ixlevel *l, enum fl_ixlevel_id id, uint64_t x,
                unsigned kbits, unsigned plen)
{
    uint64_t m = plen >= kbits ? 0 : low_mask(kbits - plen);

    return level_has_range(l, id, x & ~m, x | m);
}

/*
 * IPv4: the counts are exact even for a dropped summary, so a block
 * without IPv4 is ruled out; then the finest summary kept decides, after
 * the Bloom filter for a host.
 */
static bool
may_have_v4(const struct fl_blk *b, const struct fl_prefix *p)
{
    unsigned l = p->len - 96u;
    uint64_t v = fl_be_uint(p->addr.b + 12, 4);

    if (b->lv[FL_LV_16].n == 0) {
        return false;
    }
    if (l == 32 && !bloom_has(b, &p->addr)) {
        return false;
    }
    if (level_is_known(&b->lv[FL_LV_24])) {
        return level_may_cover(&b->lv[FL_LV_24], FL_LV_24, v >> 8, 24, l);
    }
    if (level_is_known(&b->lv[FL_LV_16])) {
        return level_may_cover(&b->lv[FL_LV_16], FL_LV_16, v >> 16, 16, l);
    }
    return true;
}

/* IPv6 (IPv4-mapped excluded), as IPv4 with /48 and /32. */
static bool
may_have_v6(const struct fl_blk *b, const struct fl_prefix *p)
{
    uint64_t x48 = fl_be_uint(p->addr.b, 6);

    if (b->lv[FL_LV_48].n == 0) {
        return false;
    }
    if (p->len == 128 && !bloom_has(b, &p->addr)) {
        return false;
    }
    if (level_is_known(&b->lv[FL_LV_48])) {
        return level_may_cover(&b->lv[FL_LV_48], FL_LV_48, x48, 48, p->len);
    }
    if (level_is_known(&b->lv[FL_LV_32])) {
        return level_may_cover(&b->lv[FL_LV_32], FL_LV_32, x48 >> 16, 32,
                               p->len);
    }
    return true;
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
    if (p->len <= 96 && fl_prefix_contains(p, &mapped) &&
        b->lv[FL_LV_16].n > 0) {
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
