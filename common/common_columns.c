/*
 * The batch payload: flows stored column by column (times as deltas,
 * counters as varints, addresses through a per-batch dictionary, nearly
 * constant fields as runs), then compressed with zstd as one block.
 * Layout and reasons in docs/formats.md ("columnar batch payload").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common.h"

#define COLUMNS_VERSION 1
#define PAYLOAD_HEAD (1 + 4 + FL_BATCH_SECRET_LEN)
#define VARINT_MAX 10
#define SECTION_HEAD 4 /* u32 length before every section */

/* Integer columns: one mode byte, then the body. */
enum { MODE_PLAIN = 0, MODE_RUNS = 1 };
/* Presence sections: one mode byte, then a bitmap for PRESENT_SOME. */
enum { PRESENT_NONE = 0, PRESENT_ALL = 1, PRESENT_SOME = 2 };

/* The sections of the column block, in the order they are stored. */
enum section {
    S_TIME_END,
    S_DURATION,
    S_PACKETS,
    S_BYTES,
    S_SRC_ADDR,
    S_DST_ADDR,
    S_NEXT_HOP,
    S_EXPORTER,
    S_SRC_PORT,
    S_DST_PORT,
    S_PROTO,
    S_TCP_FLAGS,
    S_TOS,
    S_IN_IF,
    S_OUT_IF,
    S_SRC_AS,
    S_DST_AS,
    S_MPLS,
    S_DOMAIN,
    S_SAMPLING,
    S_VLAN,
    S_DIRECTION,
    S_FW_EVENT,
    S_XLATE_PRESENT,
    S_XLATE_SRC_ADDR,
    S_XLATE_DST_ADDR,
    S_XLATE_SRC_PORT,
    S_XLATE_DST_PORT,
    S_REV_PRESENT,
    S_REV_PACKETS,
    S_REV_BYTES,
    S_EXTRA_PRESENT,
    S_EXTRA_LEN,
    S_EXTRA_DATA,
    S_DICT,
    S_COUNT
};

/* How each section is read: sections of K_INT open with a mode byte. */
enum kind { K_RAW, K_INT, K_TIME, K_PRESENT, K_DICT };

static const uint8_t section_kind[S_COUNT] = {
    [S_TIME_END] = K_TIME,
    [S_PACKETS] = K_INT,
    [S_BYTES] = K_INT,
    [S_SRC_ADDR] = K_INT,
    [S_DST_ADDR] = K_INT,
    [S_NEXT_HOP] = K_INT,
    [S_EXPORTER] = K_INT,
    [S_IN_IF] = K_INT,
    [S_OUT_IF] = K_INT,
    [S_SRC_AS] = K_INT,
    [S_DST_AS] = K_INT,
    [S_MPLS] = K_INT,
    [S_DOMAIN] = K_INT,
    [S_SAMPLING] = K_INT,
    [S_VLAN] = K_INT,
    [S_DIRECTION] = K_INT,
    [S_FW_EVENT] = K_INT,
    [S_XLATE_PRESENT] = K_PRESENT,
    [S_XLATE_SRC_ADDR] = K_INT,
    [S_XLATE_DST_ADDR] = K_INT,
    [S_REV_PRESENT] = K_PRESENT,
    [S_REV_PACKETS] = K_INT,
    [S_REV_BYTES] = K_INT,
    [S_EXTRA_PRESENT] = K_PRESENT,
    [S_EXTRA_LEN] = K_INT,
    [S_DICT] = K_DICT,
};

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- per-thread state ----------------------------------------------- */

/*
 * Contexts and scratch buffers kept per thread, so a batch costs no
 * allocation once a thread has seen one of its size.  Freed by a
 * pthread key destructor when the thread ends.
 */
struct columns_tls {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw; /* the column block being built */
    size_t raw_len;
    size_t raw_cap;
    uint64_t *vals; /* one column's values */
    size_t vals_cap;
    uint32_t *sel; /* records that carry an optional group */
    size_t sel_cap;
    uint32_t *slots; /* address hash table: tagged reference + 1 */
    size_t slots_cap;
    size_t nslots; /* in use for this batch, a power of two */
    uint32_t *v4;  /* dictionary, first appearance order, network order */
    size_t nv4;
    size_t v4_cap;
    struct fl_addr *v6;
    size_t nv6;
    size_t v6_cap;
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;
static __thread struct columns_tls *tls_ctx;

static void
tls_free(void *p)
{
    struct columns_tls *t = p;

    if (t == NULL) {
        return;
    }
    ZSTD_freeCCtx(t->cctx);
    ZSTD_freeDCtx(t->dctx);
    free(t->raw);
    free(t->vals);
    free(t->sel);
    free(t->slots);
    free(t->v4);
    free(t->v6);
    free(t);
}

static void
tls_key_make(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

static struct columns_tls *
tls_get(void)
{
    struct columns_tls *t;

    if (tls_ctx != NULL) {
        return tls_ctx;
    }
    pthread_once(&tls_once, tls_key_make);
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    /* Without the key the state lives as long as the process: no harm. */
    if (tls_key_ok) {
        pthread_setspecific(tls_key, t);
    }
    tls_ctx = t;
    return t;
}

/* Grows *p to hold at least want elements of size sz. */
static int
grow(void *pp, size_t *cap, size_t want, size_t sz)
{
    void **p = pp;
    size_t ncap = *cap ? *cap : 64;
    void *np;

    if (want <= *cap) {
        return FL_OK;
    }
    while (ncap < want) {
        ncap *= 2;
    }
    np = realloc(*p, ncap * sz);
    if (np == NULL) {
        return FL_ENOMEM;
    }
    *p = np;
    *cap = ncap;
    return FL_OK;
}

/* ---- writing the column block --------------------------------------- */

static int
reserve(struct columns_tls *t, size_t more)
{
    if (more > SIZE_MAX - t->raw_len) {
        return FL_ENOMEM;
    }
    return grow(&t->raw, &t->raw_cap, t->raw_len + more, 1);
}

static inline uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t
zigzag(uint64_t v)
{
    return (v << 1) ^ (uint64_t)((int64_t)v >> 63);
}

static inline uint64_t
unzigzag(uint64_t v)
{
    return (v >> 1) ^ (0 - (v & 1));
}

/* Opens a section: reserves its body and leaves room for its length. */
static int
section_begin(struct columns_tls *t, size_t body_max, size_t *start)
{
    int rc = reserve(t, SECTION_HEAD + body_max);

    if (rc != FL_OK) {
        return rc;
    }
    *start = t->raw_len;
    t->raw_len += SECTION_HEAD;
    return FL_OK;
}

static void
section_end(struct columns_tls *t, size_t start)
{
    fl_put_be32(t->raw + start, (uint32_t)(t->raw_len - start - SECTION_HEAD));
}

/*
 * An integer column of m values: runs of (count, value) when the column
 * changes rarely (exporter, interfaces of a quiet link), plain varints
 * otherwise, so zstd sees the raw sequence.
 */
static int
put_intcol(struct columns_tls *t, const uint64_t *v, size_t m)
{
    size_t runs = m > 0 ? 1 : 0;
    size_t start;
    uint8_t *p;
    int rc;

    for (size_t i = 1; i < m; i++) {
        runs += v[i] != v[i - 1];
    }
    rc = section_begin(t, 1 + (size_t)VARINT_MAX * m, &start);
    if (rc != FL_OK) {
        return rc;
    }
    p = t->raw + t->raw_len;
    if (m > 0 && runs * 4 <= m) {
        *p++ = MODE_RUNS;
        for (size_t i = 0, j; i < m; i = j) {
            for (j = i + 1; j < m && v[j] == v[i]; j++) {
            }
            p = put_varint(p, j - i);
            p = put_varint(p, v[i]);
        }
    } else {
        *p++ = MODE_PLAIN;
        for (size_t i = 0; i < m; i++) {
            p = put_varint(p, v[i]);
        }
    }
    t->raw_len = (size_t)(p - t->raw);
    section_end(t, start);
    return FL_OK;
}

/* ---- the address dictionary ----------------------------------------- */

static inline bool
addr_is_v4(const struct fl_addr *a)
{
    return memcmp(a->b, v4_mapped, sizeof(v4_mapped)) == 0;
}

static inline size_t
addr_hash(const struct fl_addr *a, size_t nslots)
{
    uint64_t x;
    uint64_t y;
    uint64_t h;

    memcpy(&x, a->b, 8);
    memcpy(&y, a->b + 8, 8);
    h = x * 0x9e3779b97f4a7c15ull + y * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    return (size_t)(h >> 32) & (nslots - 1);
}

/* Tagged references: (index << 1) | 1 for IPv6 entries, | 0 for IPv4. */
static inline bool
ref_equals(const struct columns_tls *t, uint32_t ref, const struct fl_addr *a,
           bool v4)
{
    if (v4) {
        return (ref & 1) == 0 && memcmp(&t->v4[ref >> 1], a->b + 12, 4) == 0;
    }
    return (ref & 1) == 1 && memcmp(t->v6[ref >> 1].b, a->b, 16) == 0;
}

static void
dict_slot_put(struct columns_tls *t, uint32_t ref)
{
    struct fl_addr a;
    size_t i;

    if (ref & 1) {
        a = t->v6[ref >> 1];
    } else {
        memcpy(a.b, v4_mapped, 12);
        memcpy(a.b + 12, &t->v4[ref >> 1], 4);
    }
    for (i = addr_hash(&a, t->nslots); t->slots[i] != 0;
         i = (i + 1) & (t->nslots - 1)) {
    }
    t->slots[i] = ref + 1;
}

/* Sizes the table for a batch; doubles it when half full. */
static int
dict_resize(struct columns_tls *t, size_t nslots)
{
    int rc = grow(&t->slots, &t->slots_cap, nslots, sizeof(uint32_t));

    if (rc != FL_OK) {
        return rc;
    }
    t->nslots = nslots;
    memset(t->slots, 0, nslots * sizeof(uint32_t));
    for (size_t i = 0; i < t->nv4; i++) {
        dict_slot_put(t, (uint32_t)(i << 1));
    }
    for (size_t i = 0; i < t->nv6; i++) {
        dict_slot_put(t, (uint32_t)(i << 1 | 1));
    }
    return FL_OK;
}

/* Adds a new entry for a; *ref gets its tagged reference. */
static int
dict_add(struct columns_tls *t, const struct fl_addr *a, bool v4, uint32_t *ref)
{
    int rc;

    if (v4) {
        rc = grow(&t->v4, &t->v4_cap, t->nv4 + 1, sizeof(uint32_t));
        if (rc != FL_OK) {
            return rc;
        }
        memcpy(&t->v4[t->nv4], a->b + 12, 4);
        *ref = (uint32_t)(t->nv4++ << 1);
    } else {
        rc = grow(&t->v6, &t->v6_cap, t->nv6 + 1, sizeof(struct fl_addr));
        if (rc != FL_OK) {
            return rc;
        }
        t->v6[t->nv6] = *a;
        *ref = (uint32_t)(t->nv6++ << 1 | 1);
    }
    return FL_OK;
}

/* Finds a in the dictionary, adding it when new. */
static int
dict_ref(struct columns_tls *t, const struct fl_addr *a, uint32_t *ref)
{
    bool v4 = addr_is_v4(a);
    size_t i = addr_hash(a, t->nslots);
    int rc;

    for (; t->slots[i] != 0; i = (i + 1) & (t->nslots - 1)) {
        if (ref_equals(t, t->slots[i] - 1, a, v4)) {
            *ref = t->slots[i] - 1;
            return FL_OK;
        }
    }
    rc = dict_add(t, a, v4, ref);
    if (rc != FL_OK) {
        return rc;
    }
    t->slots[i] = *ref + 1;
    if ((t->nv4 + t->nv6) * 2 > t->nslots) {
        return dict_resize(t, t->nslots * 2);
    }
    return FL_OK;
}

/* The dictionary section: counts, then IPv4 as 4 bytes, IPv6 as 16. */
static int
put_dict(struct columns_tls *t)
{
    size_t start;
    uint8_t *p;
    int rc;

    rc = section_begin(t, 2 * VARINT_MAX + t->nv4 * 4 + t->nv6 * 16, &start);
    if (rc != FL_OK) {
        return rc;
    }
    p = t->raw + t->raw_len;
    p = put_varint(p, t->nv4);
    p = put_varint(p, t->nv6);
    if (t->nv4 > 0) {
        memcpy(p, t->v4, t->nv4 * 4);
        p += t->nv4 * 4;
    }
    for (size_t i = 0; i < t->nv6; i++) {
        memcpy(p, t->v6[i].b, 16);
        p += 16;
    }
    t->raw_len = (size_t)(p - t->raw);
    section_end(t, start);
    return FL_OK;
}

/* ---- the flow columns ----------------------------------------------- */

/* Records of the batch a column covers: all, or those listed in sel. */
struct rows {
    const struct fl_flow *flows;
    const uint32_t *sel; /* NULL: every record */
    size_t m;
};

static inline const struct fl_flow *
row(const struct rows *r, size_t i)
{
    return r->sel ? &r->flows[r->sel[i]] : &r->flows[i];
}

static inline const void *
field(const struct rows *r, size_t i, size_t off)
{
    return (const uint8_t *)row(r, i) + off;
}

/* Dictionary references of one address field, as an integer column. */
static int
put_addrcol(struct columns_tls *t, const struct rows *r, size_t off)
{
    const struct fl_addr *prev = NULL;
    uint32_t ref = 0;
    int rc;

    for (size_t i = 0; i < r->m; i++) {
        const struct fl_addr *a = field(r, i, off);

        /* Runs of one address (exporter, next hop) skip the hash. */
        if (prev == NULL || memcmp(prev->b, a->b, 16) != 0) {
            rc = dict_ref(t, a, &ref);
            if (rc != FL_OK) {
                return rc;
            }
            prev = a;
        }
        t->vals[i] = ref;
    }
    return put_intcol(t, t->vals, r->m);
}

/* An integer field of width w bytes, as an integer column. */
static int
put_numcol(struct columns_tls *t, const struct rows *r, size_t off, size_t w)
{
    for (size_t i = 0; i < r->m; i++) {
        const void *p = field(r, i, off);
        uint64_t v64;
        uint32_t v32;
        uint16_t v16;

        switch (w) {
        case 8:
            memcpy(&v64, p, 8);
            t->vals[i] = v64;
            break;
        case 4:
            memcpy(&v32, p, 4);
            t->vals[i] = v32;
            break;
        case 2:
            memcpy(&v16, p, 2);
            t->vals[i] = v16;
            break;
        default:
            t->vals[i] = *(const uint8_t *)p;
        }
    }
    return put_intcol(t, t->vals, r->m);
}

/* A u8 or u16 field stored at its width (big-endian), for zstd to model. */
static int
put_fixcol(struct columns_tls *t, const struct rows *r, size_t off, size_t w)
{
    size_t start;
    uint8_t *p;
    uint16_t v;
    int rc = section_begin(t, w * r->m, &start);

    if (rc != FL_OK) {
        return rc;
    }
    p = t->raw + t->raw_len;
    for (size_t i = 0; i < r->m; i++) {
        if (w == 2) {
            memcpy(&v, field(r, i, off), 2);
            fl_put_be16(p, v);
        } else {
            *p = *(const uint8_t *)field(r, i, off);
        }
        p += w;
    }
    t->raw_len = (size_t)(p - t->raw);
    section_end(t, start);
    return FL_OK;
}

/*
 * End times as zigzag steps from the previous record's (exporters send
 * flows as they end, so steps are small), then durations end - start,
 * zigzagged so an end before the start survives.  The first record's end
 * is the base; its own step is 0.
 */
static int
put_times(struct columns_tls *t, const struct rows *r)
{
    uint64_t prev = r->m > 0 ? r->flows[0].time_end : 0;
    size_t start;
    uint8_t *p;
    int rc;

    rc = section_begin(t, (size_t)VARINT_MAX * (r->m + 1), &start);
    if (rc != FL_OK) {
        return rc;
    }
    p = put_varint(t->raw + t->raw_len, prev);
    for (size_t i = 0; i < r->m; i++) {
        p = put_varint(p, zigzag(r->flows[i].time_end - prev));
        prev = r->flows[i].time_end;
    }
    t->raw_len = (size_t)(p - t->raw);
    section_end(t, start);

    rc = section_begin(t, (size_t)VARINT_MAX * r->m, &start);
    if (rc != FL_OK) {
        return rc;
    }
    p = t->raw + t->raw_len;
    for (size_t i = 0; i < r->m; i++) {
        p = put_varint(p,
                       zigzag(r->flows[i].time_end - r->flows[i].time_start));
    }
    t->raw_len = (size_t)(p - t->raw);
    section_end(t, start);
    return FL_OK;
}

static bool
has_xlate(const struct fl_flow *f)
{
    static const struct fl_addr zero;

    return f->xlate_src_port != 0 || f->xlate_dst_port != 0 ||
           memcmp(&f->xlate_src_addr, &zero, sizeof(zero)) != 0 ||
           memcmp(&f->xlate_dst_addr, &zero, sizeof(zero)) != 0;
}

static bool
has_rev(const struct fl_flow *f)
{
    return f->rev_packets != 0 || f->rev_bytes != 0;
}

static bool
has_extra(const struct fl_flow *f)
{
    return f->extra_len != 0;
}

/*
 * A presence section for an optional group: nothing more when no record
 * or every record has it, else a bitmap (bit i % 8 of byte i / 8).  sub
 * gets the records that have it.
 */
static int
put_present(struct columns_tls *t, const struct rows *all,
            bool (*has)(const struct fl_flow *), struct rows *sub)
{
    size_t bitmap = (all->m + 7) / 8;
    size_t start;
    uint8_t *p;
    size_t m = 0;
    int rc = section_begin(t, 1 + bitmap, &start);

    if (rc != FL_OK) {
        return rc;
    }
    p = t->raw + t->raw_len;
    memset(p + 1, 0, bitmap);
    for (size_t i = 0; i < all->m; i++) {
        if (has(&all->flows[i])) {
            p[1 + i / 8] |= (uint8_t)(1u << (i % 8));
            t->sel[m++] = (uint32_t)i;
        }
    }
    p[0] = m == 0 ? PRESENT_NONE : m == all->m ? PRESENT_ALL : PRESENT_SOME;
    t->raw_len += p[0] == PRESENT_SOME ? 1 + bitmap : 1;
    section_end(t, start);

    sub->flows = all->flows;
    sub->sel = t->sel;
    sub->m = m;
    return FL_OK;
}

static int
put_extra(struct columns_tls *t, const struct rows *all)
{
    struct rows sub;
    size_t total = 0;
    size_t start;
    int rc;

    rc = put_present(t, all, has_extra, &sub);
    for (size_t i = 0; rc == FL_OK && i < sub.m; i++) {
        t->vals[i] = row(&sub, i)->extra_len;
        total += t->vals[i];
    }
    if (rc == FL_OK) {
        rc = put_intcol(t, t->vals, sub.m);
    }
    if (rc == FL_OK) {
        rc = section_begin(t, total, &start);
    }
    if (rc != FL_OK) {
        return rc;
    }
    for (size_t i = 0; i < sub.m; i++) {
        const struct fl_flow *f = row(&sub, i);

        memcpy(t->raw + t->raw_len, f->extra, f->extra_len);
        t->raw_len += f->extra_len;
    }
    section_end(t, start);
    return FL_OK;
}

#define OFF(f) offsetof(struct fl_flow, f)
#define WID(f) sizeof(((struct fl_flow *)0)->f)

/* The columns every record has, in section order. */
static int
put_core(struct columns_tls *t, const struct rows *r)
{
    static const size_t addrs[] = {OFF(src_addr), OFF(dst_addr), OFF(next_hop),
                                   OFF(exporter)};
    static const size_t fixed[][2] = {{OFF(src_port), 2},
                                      {OFF(dst_port), 2},
                                      {OFF(proto), 1},
                                      {OFF(tcp_flags), 1},
                                      {OFF(tos), 1}};
    static const size_t nums[][2] = {
        {OFF(in_if), WID(in_if)},         {OFF(out_if), WID(out_if)},
        {OFF(src_as), WID(src_as)},       {OFF(dst_as), WID(dst_as)},
        {OFF(mpls), WID(mpls)},           {OFF(domain), WID(domain)},
        {OFF(sampling), WID(sampling)},   {OFF(vlan), WID(vlan)},
        {OFF(direction), WID(direction)}, {OFF(fw_event), WID(fw_event)}};
    int rc = put_times(t, r);

    rc = rc ? rc : put_numcol(t, r, OFF(packets), 8);
    rc = rc ? rc : put_numcol(t, r, OFF(bytes), 8);
    for (size_t i = 0; rc == FL_OK && i < 4; i++) {
        rc = put_addrcol(t, r, addrs[i]);
    }
    for (size_t i = 0; rc == FL_OK && i < 5; i++) {
        rc = put_fixcol(t, r, fixed[i][0], fixed[i][1]);
    }
    for (size_t i = 0; rc == FL_OK && i < 10; i++) {
        rc = put_numcol(t, r, nums[i][0], nums[i][1]);
    }
    return rc;
}

/* The optional groups, each behind its presence section. */
static int
put_optional(struct columns_tls *t, const struct rows *r)
{
    struct rows sub;
    int rc = put_present(t, r, has_xlate, &sub);

    rc = rc ? rc : put_addrcol(t, &sub, OFF(xlate_src_addr));
    rc = rc ? rc : put_addrcol(t, &sub, OFF(xlate_dst_addr));
    rc = rc ? rc : put_fixcol(t, &sub, OFF(xlate_src_port), 2);
    rc = rc ? rc : put_fixcol(t, &sub, OFF(xlate_dst_port), 2);
    rc = rc ? rc : put_present(t, r, has_rev, &sub);
    rc = rc ? rc : put_numcol(t, &sub, OFF(rev_packets), 8);
    rc = rc ? rc : put_numcol(t, &sub, OFF(rev_bytes), 8);
    rc = rc ? rc : put_extra(t, r);
    return rc;
}

/* Builds the whole column block of n flows in t->raw. */
static int
build_block(struct columns_tls *t, const struct fl_flow *flows, size_t n)
{
    struct rows all = {flows, NULL, n};
    size_t nslots = 1024;
    int rc;

    /* Room for every record's value and selection; a table sized so the
     * usual batch (a few distinct addresses per ten flows) never grows. */
    rc = grow(&t->vals, &t->vals_cap, n + 1, sizeof(uint64_t));
    rc = rc ? rc : grow(&t->sel, &t->sel_cap, n + 1, sizeof(uint32_t));
    while (nslots < 4 * n) {
        nslots *= 2;
    }
    t->raw_len = 0;
    t->nv4 = 0;
    t->nv6 = 0;
    rc = rc ? rc : dict_resize(t, nslots);

    rc = rc ? rc : put_core(t, &all);
    rc = rc ? rc : put_optional(t, &all);
    rc = rc ? rc : put_dict(t);
    return rc;
}

int
fl_columns_encode(const struct fl_flow *flows, size_t n,
                  const uint8_t secret[FL_BATCH_SECRET_LEN], int zstd_level,
                  uint8_t **out, size_t *outlen)
{
    struct columns_tls *t;
    uint8_t *buf;
    uint8_t *small;
    size_t bound;
    size_t z;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (n > FL_BATCH_MAX_RECORDS) {
        return FL_ELIMIT;
    }
    if (n > 0 && flows == NULL) {
        return FL_EINVAL;
    }
    t = tls_get();
    if (t == NULL) {
        return FL_ENOMEM;
    }
    if (t->cctx == NULL) {
        t->cctx = ZSTD_createCCtx();
        if (t->cctx == NULL) {
            return FL_ENOMEM;
        }
    }

    rc = build_block(t, flows, n);
    if (rc != FL_OK) {
        return rc;
    }

    bound = ZSTD_compressBound(t->raw_len);
    buf = malloc(PAYLOAD_HEAD + bound);
    if (buf == NULL) {
        return FL_ENOMEM;
    }
    buf[0] = COLUMNS_VERSION;
    fl_put_be32(buf + 1, (uint32_t)n);
    memcpy(buf + 5, secret, FL_BATCH_SECRET_LEN);
    z = ZSTD_compressCCtx(t->cctx, buf + PAYLOAD_HEAD, bound, t->raw,
                          t->raw_len, zstd_level);
    if (ZSTD_isError(z)) {
        /* With a bound-sized output only a failed allocation is left. */
        free(buf);
        return FL_ENOMEM;
    }

    small = realloc(buf, PAYLOAD_HEAD + z);
    *out = small ? small : buf;
    *outlen = PAYLOAD_HEAD + z;
    return FL_OK;
}

/* ---- reading the column block --------------------------------------- */

/* Reads a varint of at most 64 bits that ends inside the cursor. */
static inline bool
get_varint(struct fl_cursor *c, uint64_t *v)
{
    uint64_t x = 0;

    if (c->left > 0 && c->p[0] < 0x80) {
        *v = c->p[0];
        c->p++;
        c->left--;
        return true;
    }
    for (size_t i = 0; i < VARINT_MAX && i < c->left; i++) {
        uint8_t b = c->p[i];

        if (i == VARINT_MAX - 1 && b > 1) {
            return false;
        }
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            c->p += i + 1;
            c->left -= i + 1;
            *v = x;
            return true;
        }
    }
    return false;
}

/* One section being read, value by value. */
struct col {
    struct fl_cursor c;
    uint8_t mode;   /* K_INT: MODE_*; K_PRESENT: PRESENT_* */
    uint64_t run;   /* MODE_RUNS: values left in the current run */
    uint64_t value; /* MODE_RUNS: the run's value; K_TIME: last end */
};

struct dec {
    struct col s[S_COUNT];
    const uint8_t *v4; /* dictionary entries, borrowed from the block */
    uint64_t nv4;
    const uint8_t *v6;
    uint64_t nv6;
    size_t n;
};

/* The next value of an integer column, refused above max. */
static inline bool
col_int(struct col *c, uint64_t max, uint64_t *v)
{
    if (c->mode == MODE_PLAIN) {
        if (!get_varint(&c->c, v)) {
            return false;
        }
    } else {
        if (c->run == 0) {
            if (!get_varint(&c->c, &c->run) || c->run == 0 ||
                !get_varint(&c->c, &c->value)) {
                return false;
            }
        }
        c->run--;
        *v = c->value;
    }
    return *v <= max;
}

static inline bool
col_u32(struct col *c, uint32_t *v)
{
    uint64_t x;

    if (!col_int(c, UINT32_MAX, &x)) {
        return false;
    }
    *v = (uint32_t)x;
    return true;
}

/* Whether record i has the optional group of presence section c. */
static inline bool
col_present(const struct col *c, size_t i)
{
    if (c->mode != PRESENT_SOME) {
        return c->mode == PRESENT_ALL;
    }
    return (c->c.p[i / 8] >> (i % 8)) & 1;
}

/* An address from its dictionary reference. */
static inline bool
col_addr(struct dec *d, struct col *c, struct fl_addr *a)
{
    uint64_t ref;

    if (!col_int(c, UINT64_MAX, &ref)) {
        return false;
    }
    if (ref & 1) {
        if ((ref >> 1) >= d->nv6) {
            return false;
        }
        memcpy(a->b, d->v6 + (ref >> 1) * 16, 16);
    } else {
        if ((ref >> 1) >= d->nv4) {
            return false;
        }
        memcpy(a->b, v4_mapped, 12);
        memcpy(a->b + 12, d->v4 + (ref >> 1) * 4, 4);
    }
    return true;
}

/* Reads the dictionary: counts, then exactly that many entries. */
static bool
open_dict(struct dec *d, struct fl_cursor *c)
{
    if (!get_varint(c, &d->nv4) || !get_varint(c, &d->nv6) ||
        d->nv4 > c->left / 4 || d->nv6 > (c->left - d->nv4 * 4) / 16 ||
        c->left != d->nv4 * 4 + d->nv6 * 16) {
        return false;
    }
    d->v4 = c->p;
    d->v6 = c->p + d->nv4 * 4;
    c->left = 0;
    return true;
}

/* A presence section: a mode, and for PRESENT_SOME a bitmap of n bits. */
static bool
open_present(struct col *col, size_t n)
{
    size_t bitmap = (n + 7) / 8;

    if (!fl_cursor_u8(&col->c, &col->mode)) {
        return false;
    }
    if (col->mode == PRESENT_NONE || col->mode == PRESENT_ALL) {
        return col->c.left == 0;
    }
    /* Bits past the last record must be zero: one payload per batch. */
    return col->mode == PRESENT_SOME && col->c.left == bitmap &&
           (n % 8 == 0 || (col->c.p[bitmap - 1] >> (n % 8)) == 0);
}

/* Splits the block into its sections and reads each one's head. */
static bool
open_block(struct dec *d, const uint8_t *raw, size_t len, size_t n)
{
    struct fl_cursor c;
    uint32_t slen;
    bool ok = true;

    fl_cursor_init(&c, raw, len);
    memset(d, 0, sizeof(*d));
    d->n = n;
    for (size_t s = 0; s < S_COUNT; s++) {
        if (!fl_cursor_u32(&c, &slen) || !fl_cursor_sub(&c, slen, &d->s[s].c)) {
            return false;
        }
    }
    if (c.left != 0) {
        return false;
    }
    for (size_t s = 0; ok && s < S_COUNT; s++) {
        struct col *col = &d->s[s];

        switch (section_kind[s]) {
        case K_INT:
            ok = fl_cursor_u8(&col->c, &col->mode) && col->mode <= MODE_RUNS;
            break;
        case K_TIME:
            ok = get_varint(&col->c, &col->value);
            break;
        case K_PRESENT:
            ok = open_present(col, n);
            break;
        case K_DICT:
            ok = open_dict(d, &col->c);
            break;
        default:
            break;
        }
    }
    return ok;
}

/*
 * Records are decoded a chunk at a time, column by column: each column's
 * cursor then stays in registers for a tight loop instead of being
 * reloaded for every field of every record.  A chunk's arrays stay in
 * the first-level cache; the records are then assembled from them.
 */
#define CHUNK 128

/* The small integer columns, S_IN_IF .. S_FW_EVENT, in section order. */
#define NSMALL (S_FW_EVENT - S_IN_IF + 1)

struct chunk {
    uint64_t end[CHUNK];
    uint64_t dur[CHUNK];
    uint64_t packets[CHUNK];
    uint64_t bytes[CHUNK];
    uint64_t addr[4][CHUNK]; /* references: src, dst, next hop, exporter */
    uint64_t small[NSMALL][CHUNK];
    uint16_t src_port[CHUNK];
    uint16_t dst_port[CHUNK];
    uint8_t proto[CHUNK];
    uint8_t tcp_flags[CHUNK];
    uint8_t tos[CHUNK];
};

/* get_varint where at least VARINT_MAX bytes are left, so no byte needs
 * its own bounds check; the same values are refused.  (Decoders that
 * find varint ends from 8-byte loads measured slower here: predicted
 * branches let the next varint start before this one's length is
 * known.)  Returns the byte after the varint, or NULL. */
static inline const uint8_t *
varint_unchecked(const uint8_t *p, uint64_t *v)
{
    uint64_t x = p[0];

    if (x < 0x80) {
        *v = x;
        return p + 1;
    }
    x &= 0x7f;
    for (unsigned i = 1; i < VARINT_MAX; i++) {
        uint64_t b = p[i];

        x |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            if (i == VARINT_MAX - 1 && b > 1) {
                return NULL;
            }
            *v = x;
            return p + i + 1;
        }
    }
    return NULL;
}

/* m raw varints (durations, end-time steps, plain integer columns), each
 * refused above max. */
static bool
varints_read(struct col *c, uint64_t max, uint64_t *out, size_t m)
{
    const uint8_t *p = c->c.p;
    const uint8_t *lim = c->c.p + c->c.left;
    size_t i = 0;

    while (i < m && lim - p >= VARINT_MAX) {
        p = varint_unchecked(p, &out[i]);
        if (p == NULL || out[i] > max) {
            return false;
        }
        i++;
    }
    c->c.left = (size_t)(lim - p);
    c->c.p = p;
    for (; i < m; i++) {
        if (!get_varint(&c->c, &out[i]) || out[i] > max) {
            return false;
        }
    }
    return true;
}

/* m values of an integer column, each refused above max. */
static bool
ints_read(struct col *c, uint64_t max, uint64_t *out, size_t m)
{
    if (c->mode == MODE_PLAIN) {
        return varints_read(c, max, out, m);
    }
    for (size_t i = 0; i < m;) {
        size_t take;

        if (c->run == 0 && (!get_varint(&c->c, &c->run) || c->run == 0 ||
                            !get_varint(&c->c, &c->value))) {
            return false;
        }
        if (c->value > max) {
            return false;
        }
        take = c->run < m - i ? (size_t)c->run : m - i;
        for (size_t k = 0; k < take; k++) {
            out[i + k] = c->value;
        }
        c->run -= take;
        i += take;
    }
    return true;
}

/* m address references, each checked against the dictionary. */
static bool
refs_read(const struct dec *d, struct col *c, uint64_t *out, size_t m)
{
    if (!ints_read(c, UINT64_MAX, out, m)) {
        return false;
    }
    for (size_t i = 0; i < m; i++) {
        uint64_t ref = out[i];

        if ((ref >> 1) >= ((ref & 1) ? d->nv6 : d->nv4)) {
            return false;
        }
    }
    return true;
}

static bool
u16s_read(struct col *c, uint16_t *out, size_t m)
{
    if (c->c.left / 2 < m) {
        return false;
    }
    for (size_t i = 0; i < m; i++) {
        out[i] = (uint16_t)((c->c.p[2 * i] << 8) | c->c.p[2 * i + 1]);
    }
    c->c.p += 2 * m;
    c->c.left -= 2 * m;
    return true;
}

static bool
u8s_read(struct col *c, uint8_t *out, size_t m)
{
    if (c->c.left < m) {
        return false;
    }
    memcpy(out, c->c.p, m);
    c->c.p += m;
    c->c.left -= m;
    return true;
}

static const uint64_t small_max[NSMALL] = {
    [S_IN_IF - S_IN_IF] = UINT32_MAX,    [S_OUT_IF - S_IN_IF] = UINT32_MAX,
    [S_SRC_AS - S_IN_IF] = UINT32_MAX,   [S_DST_AS - S_IN_IF] = UINT32_MAX,
    [S_MPLS - S_IN_IF] = UINT32_MAX,     [S_DOMAIN - S_IN_IF] = UINT32_MAX,
    [S_SAMPLING - S_IN_IF] = UINT32_MAX, [S_VLAN - S_IN_IF] = UINT16_MAX,
    [S_DIRECTION - S_IN_IF] = UINT8_MAX, [S_FW_EVENT - S_IN_IF] = UINT8_MAX,
};

/* The next m records' required columns into ch. */
static bool
chunk_read(struct dec *d, struct chunk *ch, size_t m)
{
    static const enum section addr_sec[4] = {S_SRC_ADDR, S_DST_ADDR, S_NEXT_HOP,
                                             S_EXPORTER};

    if (!varints_read(&d->s[S_TIME_END], UINT64_MAX, ch->end, m) ||
        !varints_read(&d->s[S_DURATION], UINT64_MAX, ch->dur, m) ||
        !ints_read(&d->s[S_PACKETS], UINT64_MAX, ch->packets, m) ||
        !ints_read(&d->s[S_BYTES], UINT64_MAX, ch->bytes, m) ||
        !u16s_read(&d->s[S_SRC_PORT], ch->src_port, m) ||
        !u16s_read(&d->s[S_DST_PORT], ch->dst_port, m) ||
        !u8s_read(&d->s[S_PROTO], ch->proto, m) ||
        !u8s_read(&d->s[S_TCP_FLAGS], ch->tcp_flags, m) ||
        !u8s_read(&d->s[S_TOS], ch->tos, m)) {
        return false;
    }
    for (size_t k = 0; k < 4; k++) {
        if (!refs_read(d, &d->s[addr_sec[k]], ch->addr[k], m)) {
            return false;
        }
    }
    for (size_t k = 0; k < NSMALL; k++) {
        if (!ints_read(&d->s[S_IN_IF + k], small_max[k], ch->small[k], m)) {
            return false;
        }
    }
    return true;
}

static inline void
addr_set(const struct dec *d, uint64_t ref, struct fl_addr *a)
{
    if (ref & 1) {
        memcpy(a->b, d->v6 + (ref >> 1) * 16, 16);
    } else {
        memcpy(a->b, v4_mapped, 12);
        memcpy(a->b + 12, d->v4 + (ref >> 1) * 4, 4);
    }
}

/* Record i of the chunk into f; times are wrapping sums, the exact
 * inverse of the encoder's differences. */
static inline void
chunk_flow(struct dec *d, const struct chunk *ch, size_t i, struct fl_flow *f)
{
    struct col *end = &d->s[S_TIME_END];

    end->value += unzigzag(ch->end[i]);
    f->time_end = end->value;
    f->time_start = f->time_end - unzigzag(ch->dur[i]);
    f->packets = ch->packets[i];
    f->bytes = ch->bytes[i];
    addr_set(d, ch->addr[0][i], &f->src_addr);
    addr_set(d, ch->addr[1][i], &f->dst_addr);
    addr_set(d, ch->addr[2][i], &f->next_hop);
    addr_set(d, ch->addr[3][i], &f->exporter);
    f->src_port = ch->src_port[i];
    f->dst_port = ch->dst_port[i];
    f->proto = ch->proto[i];
    f->tcp_flags = ch->tcp_flags[i];
    f->tos = ch->tos[i];
    f->in_if = (uint32_t)ch->small[S_IN_IF - S_IN_IF][i];
    f->out_if = (uint32_t)ch->small[S_OUT_IF - S_IN_IF][i];
    f->src_as = (uint32_t)ch->small[S_SRC_AS - S_IN_IF][i];
    f->dst_as = (uint32_t)ch->small[S_DST_AS - S_IN_IF][i];
    f->mpls = (uint32_t)ch->small[S_MPLS - S_IN_IF][i];
    f->domain = (uint32_t)ch->small[S_DOMAIN - S_IN_IF][i];
    f->sampling = (uint32_t)ch->small[S_SAMPLING - S_IN_IF][i];
    f->vlan = (uint16_t)ch->small[S_VLAN - S_IN_IF][i];
    f->direction = (uint8_t)ch->small[S_DIRECTION - S_IN_IF][i];
    f->fw_event = (uint8_t)ch->small[S_FW_EVENT - S_IN_IF][i];
}

/* The optional groups record i carries. */
static bool
read_optional(struct dec *d, struct fl_flow *f, size_t i)
{
    uint32_t len;

    /* f is reused from record to record: an absent group is cleared. */
    if (!col_present(&d->s[S_XLATE_PRESENT], i)) {
        memset(&f->xlate_src_addr, 0, sizeof(f->xlate_src_addr));
        memset(&f->xlate_dst_addr, 0, sizeof(f->xlate_dst_addr));
        f->xlate_src_port = 0;
        f->xlate_dst_port = 0;
    } else if (!col_addr(d, &d->s[S_XLATE_SRC_ADDR], &f->xlate_src_addr) ||
               !col_addr(d, &d->s[S_XLATE_DST_ADDR], &f->xlate_dst_addr) ||
               !fl_cursor_u16(&d->s[S_XLATE_SRC_PORT].c, &f->xlate_src_port) ||
               !fl_cursor_u16(&d->s[S_XLATE_DST_PORT].c, &f->xlate_dst_port)) {
        return false;
    }
    if (!col_present(&d->s[S_REV_PRESENT], i)) {
        f->rev_packets = 0;
        f->rev_bytes = 0;
    } else if (!col_int(&d->s[S_REV_PACKETS], UINT64_MAX, &f->rev_packets) ||
               !col_int(&d->s[S_REV_BYTES], UINT64_MAX, &f->rev_bytes)) {
        return false;
    }
    f->extra = NULL;
    f->extra_len = 0;
    if (col_present(&d->s[S_EXTRA_PRESENT], i)) {
        /* A present group is never empty: one encoding per batch. */
        if (!col_u32(&d->s[S_EXTRA_LEN], &len) || len == 0 ||
            !fl_cursor_bytes(&d->s[S_EXTRA_DATA].c, len, &f->extra)) {
            return false;
        }
        f->extra_len = len;
    }
    return true;
}

/* Every value-bearing section must be used up exactly, runs included. */
static bool
block_consumed(const struct dec *d)
{
    for (size_t s = 0; s < S_COUNT; s++) {
        if (section_kind[s] == K_PRESENT) {
            continue;
        }
        if (d->s[s].c.left != 0 || d->s[s].run != 0) {
            return false;
        }
    }
    return true;
}

static int
decode_block(const uint8_t *raw, size_t len, size_t n,
             void (*fn)(void *arg, const struct fl_flow *f), void *arg)
{
    struct dec d;
    struct chunk ch;
    struct fl_flow f;

    if (!open_block(&d, raw, len, n)) {
        return FL_EFORMAT;
    }
    /* Every field is written for each record (read_optional clears the
     * absent groups), so the record is zeroed once, padding included. */
    memset(&f, 0, sizeof(f));
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK;

        if (!chunk_read(&d, &ch, m)) {
            return FL_EFORMAT;
        }
        for (size_t i = 0; i < m; i++) {
            chunk_flow(&d, &ch, i, &f);
            if (!read_optional(&d, &f, base + i)) {
                return FL_EFORMAT;
            }
            fn(arg, &f);
        }
    }
    return block_consumed(&d) ? FL_OK : FL_EFORMAT;
}

/* Checks the zstd frame and decompresses it into a malloc'd block. */
static int
inflate(struct columns_tls *t, const uint8_t *frame, size_t len,
        size_t max_bytes, uint8_t **raw, size_t *rawlen)
{
    unsigned long long content;
    size_t z;
    uint8_t *buf;

    *raw = NULL;
    /* One frame, whose declared size is known, and nothing after it. */
    z = ZSTD_findFrameCompressedSize(frame, len);
    if (ZSTD_isError(z) || z != len) {
        return FL_EFORMAT;
    }
    content = ZSTD_getFrameContentSize(frame, len);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content == ZSTD_CONTENTSIZE_ERROR) {
        return FL_EFORMAT;
    }
    if (content > max_bytes) {
        return FL_ELIMIT;
    }
    if (t->dctx == NULL) {
        t->dctx = ZSTD_createDCtx();
        if (t->dctx == NULL) {
            return FL_ENOMEM;
        }
    }

    buf = malloc(content > 0 ? (size_t)content : 1);
    if (buf == NULL) {
        return FL_ENOMEM;
    }
    z = ZSTD_decompressDCtx(t->dctx, buf, (size_t)content, frame, len);
    if (ZSTD_isError(z) || z != content) {
        free(buf);
        return FL_EFORMAT;
    }
    *raw = buf;
    *rawlen = z;
    return FL_OK;
}

int
fl_columns_decode(const uint8_t *payload, size_t len, uint32_t expect,
                  size_t max_bytes, uint8_t secret[FL_BATCH_SECRET_LEN],
                  void (*fn)(void *arg, const struct fl_flow *f), void *arg)
{
    struct fl_cursor c;
    struct columns_tls *t;
    const uint8_t *sec;
    uint8_t version;
    uint32_t count;
    uint8_t *raw;
    size_t rawlen;
    int rc;

    fl_cursor_init(&c, payload, len);
    if (!fl_cursor_u8(&c, &version) || !fl_cursor_u32(&c, &count) ||
        !fl_cursor_bytes(&c, FL_BATCH_SECRET_LEN, &sec)) {
        return FL_EFORMAT;
    }
    if (version != COLUMNS_VERSION) {
        return FL_EVERSION;
    }
    if (count != expect || count > FL_BATCH_MAX_RECORDS) {
        return FL_EFORMAT;
    }
    t = tls_get();
    if (t == NULL) {
        return FL_ENOMEM;
    }

    rc = inflate(t, c.p, c.left, max_bytes, &raw, &rawlen);
    if (rc != FL_OK) {
        return rc;
    }
    memcpy(secret, sec, FL_BATCH_SECRET_LEN);
    rc = decode_block(raw, rawlen, count, fn, arg);
    free(raw);
    return rc;
}
