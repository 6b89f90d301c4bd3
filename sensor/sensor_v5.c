/*
 * NetFlow v1, v5 and v7: fixed-layout datagrams from exporters that predate
 * templates.  Each record maps onto the canonical flow; the prefix masks,
 * which the flow has no field for, travel as extra elements.
 */
#include <assert.h>
#include <string.h>

#include "sensor_int.h"

/* IANA elements for the masks v5 and v7 carry (RFC 7012). */
#define IE_SRC_MASK 9
#define IE_DST_MASK 13

/* One extra element holding one byte: pen, id, length, value. */
#define EXTRA_U8_LEN (4 + 2 + 2 + 1)

/* What differs between the three versions. */
struct v5_layout {
    uint16_t version;
    uint16_t max_count;
    size_t header_len;
    size_t record_len;
};

static const struct v5_layout layouts[] = {
    {1, 24, 16, 48},
    {5, 30, 24, 48},
    {7, 28, 24, 52},
};

/* Header facts each record needs to be completed. */
struct v5_header {
    const struct v5_layout *layout;
    uint32_t sys_uptime;
    uint64_t export_ms;
    uint32_t domain;
    uint32_t sampling;
};

static const struct v5_layout *
find_layout(uint16_t version)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        if (layouts[i].version == version) {
            return &layouts[i];
        }
    }
    return NULL;
}

/* Reads the header after the version field; c holds at least header_len. */
static bool
read_header(struct fl_cursor *c, struct v5_header *h, struct fl_v5_info *info)
{
    uint32_t secs = 0;
    uint32_t nsecs = 0;
    uint8_t engine_type = 0;
    uint8_t engine_id = 0;
    uint16_t interval = 0;
    bool ok = true;

    ok = ok && fl_cursor_u16(c, &info->count);
    ok = ok && fl_cursor_u32(c, &h->sys_uptime);
    ok = ok && fl_cursor_u32(c, &secs);
    ok = ok && fl_cursor_u32(c, &nsecs);
    if (h->layout->version != 1) {
        ok = ok && fl_cursor_u32(c, &info->sequence);
    }
    if (h->layout->version == 5) {
        ok = ok && fl_cursor_u8(c, &engine_type);
        ok = ok && fl_cursor_u8(c, &engine_id);
        ok = ok && fl_cursor_u16(c, &interval);
    } else if (h->layout->version == 7) {
        ok = ok && fl_cursor_skip(c, 4); /* reserved */
    }

    /* A bad exporter may send nsecs above 1e9; the sum still fits. */
    h->export_ms = (uint64_t)secs * 1000 + nsecs / 1000000;
    h->domain = (uint32_t)engine_type << 8 | engine_id;
    /* The top two bits are the sampling mode; 0 means unsampled. */
    h->sampling = interval & 0x3fff;
    if (h->sampling == 0) {
        h->sampling = 1;
    }
    info->domain = h->domain;
    info->sampling = h->sampling;
    return ok;
}

/*
 * Converts a sysUptime stamp to ms since the epoch.  The distance to the
 * header's uptime is taken modulo 2^32, so a flow that started before the
 * exporter's 49.7-day uptime counter wrapped still lies in the past; a
 * stamp ahead of the header (a skewed exporter) is pinned to export time.
 */
static uint64_t
uptime_to_epoch(const struct v5_header *h, uint32_t stamp)
{
    uint32_t age = h->sys_uptime - stamp;

    if (age > INT32_MAX) {
        age = 0;
    }
    if (age > h->export_ms) {
        return 0;
    }
    return h->export_ms - age;
}

static uint64_t
mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a) {
        return UINT64_MAX;
    }
    return a * b;
}

/* Fields every version shares, up to and including the ports. */
static bool
read_common(struct fl_cursor *c, const struct v5_header *h, struct fl_flow *f)
{
    uint32_t src = 0, dst = 0, hop = 0, pkts = 0, octets = 0;
    uint32_t first = 0, last = 0;
    uint16_t in_if = 0, out_if = 0;
    bool ok = true;

    ok = ok && fl_cursor_u32(c, &src);
    ok = ok && fl_cursor_u32(c, &dst);
    ok = ok && fl_cursor_u32(c, &hop);
    ok = ok && fl_cursor_u16(c, &in_if);
    ok = ok && fl_cursor_u16(c, &out_if);
    ok = ok && fl_cursor_u32(c, &pkts);
    ok = ok && fl_cursor_u32(c, &octets);
    ok = ok && fl_cursor_u32(c, &first);
    ok = ok && fl_cursor_u32(c, &last);
    ok = ok && fl_cursor_u16(c, &f->src_port);
    ok = ok && fl_cursor_u16(c, &f->dst_port);

    fl_addr_from_v4(&f->src_addr, src);
    fl_addr_from_v4(&f->dst_addr, dst);
    fl_addr_from_v4(&f->next_hop, hop);
    f->in_if = in_if;
    f->out_if = out_if;
    f->packets = mul_sat(pkts, h->sampling);
    f->bytes = mul_sat(octets, h->sampling);
    f->time_start = uptime_to_epoch(h, first);
    f->time_end = uptime_to_epoch(h, last);
    return ok;
}

/* v1 after the ports: pad, proto, tos, flags, then padding to 48 bytes. */
static bool
read_v1_tail(struct fl_cursor *c, struct fl_flow *f)
{
    bool ok = true;

    ok = ok && fl_cursor_skip(c, 2);
    ok = ok && fl_cursor_u8(c, &f->proto);
    ok = ok && fl_cursor_u8(c, &f->tos);
    ok = ok && fl_cursor_u8(c, &f->tcp_flags);
    ok = ok && fl_cursor_skip(c, 7); /* pad2, pad3, reserved */
    return ok;
}

static size_t
put_extra_u8(uint8_t *p, uint16_t id, uint8_t v)
{
    fl_put_be32(p, 0);
    fl_put_be16(p + 4, id);
    fl_put_be16(p + 6, 1);
    p[8] = v;
    return EXTRA_U8_LEN;
}

/*
 * v5 and v7 after the ports: flags, proto, tos, AS numbers and masks.
 * v7 then adds the shortcut router, which has no IANA element to keep it in.
 */
static bool
read_v5_tail(struct fl_cursor *c, const struct v5_header *h, struct fl_flow *f,
             uint8_t extra[2 * EXTRA_U8_LEN])
{
    uint16_t src_as = 0, dst_as = 0;
    uint8_t src_mask = 0, dst_mask = 0;
    bool ok = true;

    ok = ok && fl_cursor_skip(c, 1);
    ok = ok && fl_cursor_u8(c, &f->tcp_flags);
    ok = ok && fl_cursor_u8(c, &f->proto);
    ok = ok && fl_cursor_u8(c, &f->tos);
    ok = ok && fl_cursor_u16(c, &src_as);
    ok = ok && fl_cursor_u16(c, &dst_as);
    ok = ok && fl_cursor_u8(c, &src_mask);
    ok = ok && fl_cursor_u8(c, &dst_mask);
    ok = ok && fl_cursor_skip(c, 2);
    if (h->layout->version == 7) {
        /* TODO(#2): router_sc (the v7 shortcut router) is dropped. */
        ok = ok && fl_cursor_skip(c, 4);
    }

    f->src_as = src_as;
    f->dst_as = dst_as;
    f->extra_len = (uint32_t)put_extra_u8(extra, IE_SRC_MASK, src_mask);
    f->extra_len +=
        (uint32_t)put_extra_u8(extra + EXTRA_U8_LEN, IE_DST_MASK, dst_mask);
    f->extra = extra;
    return ok;
}

/* Decodes one record of exactly record_len bytes into f. */
static bool
read_record(struct fl_cursor *rec, const struct v5_header *h,
            const struct fl_addr *exporter, struct fl_flow *f,
            uint8_t extra[2 * EXTRA_U8_LEN])
{
    bool ok;

    fl_flow_clear(f);
    f->exporter = *exporter;
    f->domain = h->domain;
    f->sampling = h->sampling;
    ok = read_common(rec, h, f);
    if (h->layout->version == 1) {
        ok = ok && read_v1_tail(rec, f);
    } else {
        ok = ok && read_v5_tail(rec, h, f, extra);
    }
    return ok && rec->left == 0;
}

/* Checks version, header, count and length before any record is read. */
static int
validate(struct fl_cursor *c, struct v5_header *h, struct fl_v5_info *info)
{
    uint16_t version;

    if (!fl_cursor_u16(c, &version)) {
        return FL_ETRUNC;
    }
    h->layout = find_layout(version);
    if (h->layout == NULL) {
        return FL_EVERSION;
    }
    info->version = (uint8_t)version;
    if (c->left < h->layout->header_len - 2) {
        return FL_ETRUNC;
    }
    if (!read_header(c, h, info)) {
        return FL_ETRUNC;
    }
    if (info->count == 0 || info->count > h->layout->max_count) {
        return FL_EFORMAT;
    }
    /* count <= 30 and record_len <= 52: the product cannot overflow. */
    if (c->left < (size_t)info->count * h->layout->record_len) {
        return FL_ETRUNC;
    }
    return FL_OK;
}

int
fl_v5_decode(const struct fl_addr *exporter, const uint8_t *pkt, size_t len,
             struct fl_v5_info *info, fl_flow_fn fn, void *arg)
{
    struct fl_cursor c;
    struct fl_cursor rec;
    struct v5_header h;
    struct fl_flow f;
    uint8_t extra[2 * EXTRA_U8_LEN];
    int rc;

    memset(info, 0, sizeof(*info));
    memset(&h, 0, sizeof(h));
    fl_cursor_init(&c, pkt, len);
    rc = validate(&c, &h, info);
    if (rc != FL_OK) {
        return rc;
    }

    for (uint16_t i = 0; i < info->count; i++) {
        bool ok = fl_cursor_sub(&c, h.layout->record_len, &rec) &&
                  read_record(&rec, &h, exporter, &f, extra);

        /* validate() has checked the length of every record. */
        assert(ok);
        if (!ok) {
            return FL_ETRUNC;
        }
        fn(arg, &f);
    }
    /* Trailing bytes past the last record are padding some exporters add. */
    return FL_OK;
}
