/*
 * NetFlow v9 and IPFIX data records onto the canonical flow: one switch on
 * the element id per field, then a short pass that settles what depends
 * on several fields (times, counters, ICMP, sampling).
 */
#include <assert.h>
#include <string.h>

#include "sensor_int.h"

/* RFC 5103: reverse elements carry this enterprise number. */
#define PEN_REVERSE 29305

/* Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
#define NTP_UNIX_OFFSET 2208988800u

#define EXTRA_HEAD 8 /* u32 pen, u16 id, u16 length */

/*
 * Elements that compete for one field of the flow.  Each slot holds the
 * best candidate seen so far; a weaker one goes to extra, so nothing the
 * exporter sent is lost.  Ranks: higher wins, the first of equals wins.
 */
enum slot_idx {
    S_START,  /* 150 152 154 156 158 22 */
    S_END,    /* 151 153 155 157 159 21 */
    S_DUR,    /* 161 162 */
    S_OBS,    /* 323 324 325 */
    S_BYTES,  /* 1 231 85 */
    S_PKTS,   /* 2 298 86 */
    S_RBYTES, /* 29305/1 232 29305/85 */
    S_RPKTS,  /* 29305/2 299 29305/86 */
    S_NH,     /* 15 62 over 18 63 */
    S_VLAN,   /* 58 over 243 */
    S_ICMP,   /* 32 139 */
    S_ICMP_T, /* 176 178 */
    S_ICMP_C, /* 177 179 */
    S_FW,     /* 233 40005 over 230 */
    S_COUNT
};

/* Time ranks: finer and more direct encodings win. */
#define R_T_ABS 4    /* ms, us, ns since the epoch */
#define R_T_SEC 3    /* seconds since the epoch */
#define R_T_UPTIME 2 /* sysUpTime-relative */
#define R_T_DELTA 1  /* microseconds before the export time */

/* Counter ranks: what was counted in this interval over running totals. */
#define R_C_DELTA 3
#define R_C_INITIATOR 2
#define R_C_TOTAL 1

/* Facts from the record that are not slots. */
#define F_SAMPLING 0x01  /* 34 or 50 */
#define F_PKT_IV 0x02    /* 305 */
#define F_PKT_SPACE 0x04 /* 306 */
#define F_SAMPLER 0x08   /* 48 or 302 */
#define F_SYS_INIT 0x10  /* 160 */
#define F_DPORT 0x20     /* 11 */

struct slot {
    const uint8_t *p;
    uint32_t pen;
    uint16_t id;
    uint16_t len;
    uint8_t rank;
};

/* Everything one record decode carries between its fields. */
struct rec {
    struct fl_flow *f;
    const struct fl_msg_ctx *ctx;
    uint8_t *extra;
    size_t cap;
    size_t len;
    bool full;
    uint32_t have; /* bit per slot */
    uint32_t flags;
    uint32_t sampling;
    uint32_t pkt_iv;
    uint32_t pkt_space;
    uint32_t sampler_id;
    uint64_t sys_init;
    struct slot slot[S_COUNT];
};

/* ---- reading ---------------------------------------------------------- */

/* Reads one field's bytes, resolving variable length (RFC 7011 7). */
static inline bool
next_field(struct fl_cursor *c, uint16_t tlen, const uint8_t **p, uint16_t *n)
{
    uint8_t l8;

    if (tlen != FL_VARLEN) {
        *n = tlen;
        return fl_cursor_bytes(c, tlen, p);
    }
    if (!fl_cursor_u8(c, &l8)) {
        return false;
    }
    if (l8 < 255) {
        *n = l8;
    } else if (!fl_cursor_u16(c, n)) {
        return false;
    }
    return fl_cursor_bytes(c, *n, p);
}

/* Unsigned of native size max, sent in 1..max bytes (RFC 7011 6.2). */
static inline bool
fits(uint16_t n, uint16_t max)
{
    return n >= 1 && n <= max;
}

static uint64_t
ntp_ms(const uint8_t *p)
{
    uint64_t sec = fl_be_uint(p, 4);
    uint64_t frac = fl_be_uint(p + 4, 4);

    if (sec == 0 && frac == 0) {
        return 0;
    }
    /* RFC 4330 era rule: with the top bit clear the time is past 2036. */
    if ((sec & 0x80000000u) == 0) {
        sec += 1ull << 32;
    }
    if (sec < NTP_UNIX_OFFSET) {
        return 0;
    }
    return (sec - NTP_UNIX_OFFSET) * 1000 + ((frac * 1000) >> 32);
}

static uint64_t
sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t
mul_sat(uint64_t a, uint32_t b)
{
    uint64_t r;

    if (__builtin_mul_overflow(a, (uint64_t)b, &r)) {
        return UINT64_MAX;
    }
    return r;
}

/* ---- extra and slots ------------------------------------------------- */

static void
keep(struct rec *r, uint32_t pen, uint16_t id, const uint8_t *p, uint16_t n)
{
    uint8_t *o;

    if (r->full) {
        return;
    }
    /* Once one element does not fit, later ones are dropped too, so what
     * is kept is always a prefix of what was sent. */
    if (r->cap - r->len < (size_t)EXTRA_HEAD + n) {
        r->full = true;
        return;
    }
    o = r->extra + r->len;
    fl_put_be32(o, pen);
    fl_put_be16(o + 4, id);
    fl_put_be16(o + 6, n);
    if (n > 0) {
        memcpy(o + EXTRA_HEAD, p, n);
    }
    r->len += EXTRA_HEAD + (size_t)n;
}

static void
keep_slot(struct rec *r, enum slot_idx i)
{
    const struct slot *s = &r->slot[i];

    keep(r, s->pen, s->id, s->p, s->len);
}

static inline bool
has(const struct rec *r, enum slot_idx i)
{
    return (r->have & (1u << i)) != 0;
}

static void
offer(struct rec *r, enum slot_idx i, uint8_t rank, uint32_t pen, uint16_t id,
      const uint8_t *p, uint16_t n)
{
    struct slot *s = &r->slot[i];

    if (has(r, i)) {
        if (rank <= s->rank) {
            keep(r, pen, id, p, n);
            return;
        }
        keep_slot(r, i);
    }
    s->p = p;
    s->pen = pen;
    s->id = id;
    s->len = n;
    s->rank = rank;
    r->have |= 1u << i;
}

/* Offers an IANA element to a slot if its size is right, else keeps it. */
static void
offer_if(struct rec *r, bool ok, enum slot_idx i, uint8_t rank, uint16_t id,
         const uint8_t *p, uint16_t n)
{
    if (ok) {
        offer(r, i, rank, 0, id, p, n);
    } else {
        keep(r, 0, id, p, n);
    }
}

static uint64_t
slot_uint(const struct rec *r, enum slot_idx i)
{
    return fl_be_uint(r->slot[i].p, r->slot[i].len);
}

/*
 * ---- direct fields ---------------------------------------------------
 * TODO(#2): an element a template repeats (two sourceIPv4Address) is
 * stored twice and only the last survives; the first is not kept.
 */

static void
put_u8(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n, uint8_t *dst)
{
    if (n == 1) {
        *dst = p[0];
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_u16(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n, uint16_t *dst)
{
    if (fits(n, 2)) {
        *dst = (uint16_t)fl_be_uint(p, n);
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_u32(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n, uint32_t *dst)
{
    if (fits(n, 4)) {
        *dst = (uint32_t)fl_be_uint(p, n);
    } else {
        keep(r, 0, id, p, n);
    }
}

/* An address of the wrong size is kept, never guessed at. */
static void
put_v4(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n,
       struct fl_addr *dst)
{
    if (n == 4) {
        fl_addr_from_v4_bytes(dst, p);
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_v6(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n,
       struct fl_addr *dst)
{
    if (n == 16) {
        fl_addr_from_v6(dst, p);
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_flags(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    /* tcpControlBits is 16 bits in IPFIX; the flow keeps the classic 8. */
    if (fits(n, 2)) {
        r->f->tcp_flags = p[n - 1];
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_mpls(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    /* Label (20 bits), traffic class (3), bottom of stack (1). */
    if (n == 3) {
        r->f->mpls = (uint32_t)fl_be_uint(p, 3) >> 4;
    } else {
        keep(r, 0, id, p, n);
    }
}

/* A 0 interval in a record says nothing; later sources are consulted. */
static void
put_sampling(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n,
             uint32_t flag, uint32_t *dst)
{
    uint32_t v;

    if (!fits(n, 4)) {
        keep(r, 0, id, p, n);
        return;
    }
    v = (uint32_t)fl_be_uint(p, n);
    if (v != 0 && (r->flags & flag) == 0) {
        *dst = v;
        r->flags |= flag;
    }
}

/*
 * Unlike an interval, a space of 0 means something: every packet.
 * TODO(#2): a space without an interval is used by nothing and not kept
 * in extra either, so it is lost.
 */
static void
put_space(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    if (fits(n, 4)) {
        r->pkt_space = (uint32_t)fl_be_uint(p, n);
        r->flags |= F_PKT_SPACE;
    } else {
        keep(r, 0, id, p, n);
    }
}

static void
put_sampler(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    uint64_t v;

    /* selectorId is 64 bits; ids beyond 32 bits cannot match options. */
    if (!fits(n, 8) || (v = fl_be_uint(p, n)) > UINT32_MAX) {
        keep(r, 0, id, p, n);
        return;
    }
    r->sampler_id = (uint32_t)v;
    r->flags |= F_SAMPLER;
}

static void
put_sys_init(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    if (fits(n, 8)) {
        r->sys_init = fl_be_uint(p, n);
        r->flags |= F_SYS_INIT;
    } else {
        keep(r, 0, id, p, n);
    }
}

/* ---- the element switches -------------------------------------------- */

/* Ids below 128: shared by NetFlow v9 and IPFIX (RFC 3954, RFC 7012). */
static void
map_low(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    struct fl_flow *f = r->f;

    switch (id) {
    case 1:
        offer_if(r, fits(n, 8), S_BYTES, R_C_DELTA, id, p, n);
        break;
    case 2:
        offer_if(r, fits(n, 8), S_PKTS, R_C_DELTA, id, p, n);
        break;
    case 4:
        put_u8(r, id, p, n, &f->proto);
        break;
    case 5:
        put_u8(r, id, p, n, &f->tos);
        break;
    case 6:
        put_flags(r, id, p, n);
        break;
    case 7:
        put_u16(r, id, p, n, &f->src_port);
        break;
    case 8:
        put_v4(r, id, p, n, &f->src_addr);
        break;
    case 10:
        put_u32(r, id, p, n, &f->in_if);
        break;
    case 11:
        put_u16(r, id, p, n, &f->dst_port);
        r->flags |= F_DPORT;
        break;
    case 12:
        put_v4(r, id, p, n, &f->dst_addr);
        break;
    case 14:
        put_u32(r, id, p, n, &f->out_if);
        break;
    case 15:
        offer_if(r, n == 4, S_NH, 2, id, p, n);
        break;
    case 16:
        put_u32(r, id, p, n, &f->src_as);
        break;
    case 17:
        put_u32(r, id, p, n, &f->dst_as);
        break;
    case 18:
        offer_if(r, n == 4, S_NH, 1, id, p, n);
        break;
    case 21:
        offer_if(r, fits(n, 4), S_END, R_T_UPTIME, id, p, n);
        break;
    case 22:
        offer_if(r, fits(n, 4), S_START, R_T_UPTIME, id, p, n);
        break;
    case 27:
        put_v6(r, id, p, n, &f->src_addr);
        break;
    case 28:
        put_v6(r, id, p, n, &f->dst_addr);
        break;
    case 32:
        offer_if(r, fits(n, 2), S_ICMP, 1, id, p, n);
        break;
    case 34:
    case 50:
        put_sampling(r, id, p, n, F_SAMPLING, &r->sampling);
        break;
    case 48:
        put_sampler(r, id, p, n);
        break;
    case 58:
        offer_if(r, fits(n, 2), S_VLAN, 2, id, p, n);
        break;
    case 61:
        put_u8(r, id, p, n, &f->direction);
        break;
    case 62:
        offer_if(r, n == 16, S_NH, 2, id, p, n);
        break;
    case 63:
        offer_if(r, n == 16, S_NH, 1, id, p, n);
        break;
    case 70:
        put_mpls(r, id, p, n);
        break;
    case 85:
        offer_if(r, fits(n, 8), S_BYTES, R_C_TOTAL, id, p, n);
        break;
    case 86:
        offer_if(r, fits(n, 8), S_PKTS, R_C_TOTAL, id, p, n);
        break;
    default:
        keep(r, 0, id, p, n);
        break;
    }
}

/* Ids 128..32767: IPFIX elements, also sent by v9 exporters (ASA). */
static void
map_high(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    struct fl_flow *f = r->f;
    bool start = (id & 1) == 0; /* 150..159: even starts, odd ends */

    switch (id) {
    case 139:
        offer_if(r, fits(n, 2), S_ICMP, 1, id, p, n);
        break;
    case 150:
    case 151:
        offer_if(r, fits(n, 4), start ? S_START : S_END, R_T_SEC, id, p, n);
        break;
    case 152:
    case 153:
        offer_if(r, fits(n, 8), start ? S_START : S_END, R_T_ABS, id, p, n);
        break;
    case 154:
    case 155:
    case 156:
    case 157:
        offer_if(r, n == 8, start ? S_START : S_END, R_T_ABS, id, p, n);
        break;
    case 158:
    case 159:
        offer_if(r, fits(n, 4), start ? S_START : S_END, R_T_DELTA, id, p, n);
        break;
    case 160:
        put_sys_init(r, id, p, n);
        break;
    case 161:
    case 162:
        offer_if(r, fits(n, 4), S_DUR, 1, id, p, n);
        break;
    case 176:
    case 178:
        offer_if(r, n == 1, S_ICMP_T, 1, id, p, n);
        break;
    case 177:
    case 179:
        offer_if(r, n == 1, S_ICMP_C, 1, id, p, n);
        break;
    case 210: /* paddingOctets carry nothing by definition */
        break;
    case 225:
        put_v4(r, id, p, n, &f->xlate_src_addr);
        break;
    case 226:
        put_v4(r, id, p, n, &f->xlate_dst_addr);
        break;
    case 227:
        put_u16(r, id, p, n, &f->xlate_src_port);
        break;
    case 228:
        put_u16(r, id, p, n, &f->xlate_dst_port);
        break;
    case 230:
        offer_if(r, n == 1, S_FW, 1, id, p, n);
        break;
    case 231:
        offer_if(r, fits(n, 8), S_BYTES, R_C_INITIATOR, id, p, n);
        break;
    case 232:
        offer_if(r, fits(n, 8), S_RBYTES, R_C_INITIATOR, id, p, n);
        break;
    case 233:
        offer_if(r, n == 1, S_FW, 2, id, p, n);
        break;
    case 243:
        offer_if(r, fits(n, 2), S_VLAN, 1, id, p, n);
        break;
    case 281:
        put_v6(r, id, p, n, &f->xlate_src_addr);
        break;
    case 282:
        put_v6(r, id, p, n, &f->xlate_dst_addr);
        break;
    case 298:
        offer_if(r, fits(n, 8), S_PKTS, R_C_INITIATOR, id, p, n);
        break;
    case 299:
        offer_if(r, fits(n, 8), S_RPKTS, R_C_INITIATOR, id, p, n);
        break;
    case 302:
        put_sampler(r, id, p, n);
        break;
    case 305:
        put_sampling(r, id, p, n, F_PKT_IV, &r->pkt_iv);
        break;
    case 306:
        put_space(r, id, p, n);
        break;
    case 323:
        offer_if(r, fits(n, 8), S_OBS, 1, id, p, n);
        break;
    case 324:
    case 325:
        offer_if(r, n == 8, S_OBS, 1, id, p, n);
        break;
    default:
        keep(r, 0, id, p, n);
        break;
    }
}

/* Cisco NSEL ids of NetFlow v9 only (ASA); IPFIX cannot send these. */
static void
map_nsel(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    struct fl_flow *f = r->f;

    switch (id) {
    case 40001: /* NF_F_XLATE_SRC_ADDR_IPV4 */
        put_v4(r, id, p, n, &f->xlate_src_addr);
        break;
    case 40002: /* NF_F_XLATE_DST_ADDR_IPV4 */
        put_v4(r, id, p, n, &f->xlate_dst_addr);
        break;
    case 40003: /* NF_F_XLATE_SRC_PORT */
        put_u16(r, id, p, n, &f->xlate_src_port);
        break;
    case 40004: /* NF_F_XLATE_DST_PORT */
        put_u16(r, id, p, n, &f->xlate_dst_port);
        break;
    case 40005: /* NF_F_FW_EVENT */
        offer_if(r, n == 1, S_FW, 2, id, p, n);
        break;
    default:
        keep(r, 0, id, p, n);
        break;
    }
}

/* RFC 5103 reverse counters; other reverse elements are kept. */
static void
map_reverse(struct rec *r, uint16_t id, const uint8_t *p, uint16_t n)
{
    enum slot_idx i = (id == 1 || id == 85) ? S_RBYTES : S_RPKTS;
    uint8_t rank = id < 85 ? R_C_DELTA : R_C_TOTAL;

    if ((id == 1 || id == 2 || id == 85 || id == 86) && fits(n, 8)) {
        offer(r, i, rank, PEN_REVERSE, id, p, n);
    } else {
        keep(r, PEN_REVERSE, id, p, n);
    }
}

static inline void
map_field(struct rec *r, const struct fl_tfield *tf, const uint8_t *p,
          uint16_t n)
{
    if (tf->pen == 0) {
        if (tf->id < 128) {
            map_low(r, tf->id, p, n);
        } else if (tf->id < FL_ENTERPRISE_BIT) {
            map_high(r, tf->id, p, n);
        } else if (r->ctx->version == 9) {
            map_nsel(r, tf->id, p, n);
        } else {
            keep(r, 0, tf->id, p, n);
        }
    } else if (tf->pen == PEN_REVERSE) {
        map_reverse(r, tf->id, p, n);
    } else {
        keep(r, tf->pen, tf->id, p, n);
    }
}

/* ---- times ----------------------------------------------------------- */

static uint64_t
export_ms(const struct rec *r)
{
    return (uint64_t)r->ctx->export_secs * 1000;
}

/* v9: the header pairs the export time with sysUpTime.  The difference
 * is taken modulo 2^32 so a flow from before an uptime wrap stays right. */
static uint64_t
uptime_by_header(const struct rec *r, uint32_t v)
{
    uint32_t d = v - r->ctx->sys_uptime_ms;

    if (d < 0x80000000u) {
        return export_ms(r) + d;
    }
    return sub_sat(export_ms(r), (1ull << 32) - d);
}

/*
 * sysUpTime-relative (21, 22).  A systemInitTimeMilliseconds in the
 * record wins; then v9's header; then IPFIX options' systemInitTime; then
 * an uptime the caller learned elsewhere (a v9-like exporter); else the
 * export time, the only clock left.
 */
static uint64_t
uptime_ms(const struct rec *r, uint32_t v)
{
    const struct fl_msg_ctx *x = r->ctx;

    if ((r->flags & F_SYS_INIT) != 0) {
        return r->sys_init + v;
    }
    if (x->version == 9) {
        return uptime_by_header(r, v);
    }
    if (x->system_init_ms != 0) {
        return x->system_init_ms + v;
    }
    if (x->sys_uptime_ms != 0) {
        return uptime_by_header(r, v);
    }
    return export_ms(r);
}

/* True when slot i is sysUpTime-relative with no clock to anchor it. */
static bool
uptime_unanchored(const struct rec *r, enum slot_idx i)
{
    const struct fl_msg_ctx *x = r->ctx;

    return (r->slot[i].id == 21 || r->slot[i].id == 22) &&
           (r->flags & F_SYS_INIT) == 0 && x->version != 9 &&
           x->system_init_ms == 0 && x->sys_uptime_ms == 0;
}

/* A time slot in ms since the epoch, whatever its encoding. */
static uint64_t
slot_ms(const struct rec *r, enum slot_idx i)
{
    const struct slot *s = &r->slot[i];

    switch (s->id) {
    case 21:
    case 22:
        return uptime_ms(r, (uint32_t)slot_uint(r, i));
    case 150:
    case 151:
        return slot_uint(r, i) * 1000;
    case 154:
    case 155:
    case 156:
    case 157:
    case 324:
    case 325:
        return ntp_ms(s->p); /* RFC 7011 6.1.9, 6.1.10 */
    case 158:
    case 159:
        return sub_sat(export_ms(r), slot_uint(r, i) / 1000);
    default: /* 152 153 323 */
        return slot_uint(r, i);
    }
}

static uint64_t
duration_ms(const struct rec *r)
{
    uint64_t v = slot_uint(r, S_DUR);

    return r->slot[S_DUR].id == 162 ? v / 1000 : v;
}

/*
 * Settles time_start and time_end.  A duration fills in a missing end;
 * observation time (ASA's event time) ends a flow that has only a start,
 * or dates one that has nothing else; with no time at all both are the
 * export time.  Exporters do send an end before the start (clock steps,
 * uptime wraps, bugs): the end is then raised to the start, keeping the
 * start as sent since the archive files flows by it.
 */
static void
finish_times(struct rec *r)
{
    bool hs = has(r, S_START);
    bool he = has(r, S_END);
    bool ho = has(r, S_OBS);
    bool obs_used = false;
    uint64_t start = hs ? slot_ms(r, S_START) : 0;
    uint64_t end = he ? slot_ms(r, S_END) : 0;
    uint64_t obs = ho ? slot_ms(r, S_OBS) : 0;

    if (has(r, S_DUR) && !(hs && he)) {
        if (hs) {
            end = add_sat(start, duration_ms(r));
        } else {
            if (!he) {
                end = ho ? obs : export_ms(r);
                obs_used = ho;
            }
            start = sub_sat(end, duration_ms(r));
        }
        hs = he = true;
    }

    if (!hs && !he) {
        start = end = ho ? obs : export_ms(r);
        obs_used = ho;
    } else if (!he) {
        obs_used = ho && obs >= start;
        end = obs_used ? obs : start;
    } else if (!hs) {
        start = end;
    }
    if (ho && !obs_used) {
        keep_slot(r, S_OBS);
    }
    /* IPFIX uptimes without systemInitTime (MikroTik sends none): the
     * date is unknown but the length is not; end the flow at export. */
    if (has(r, S_START) && has(r, S_END) && uptime_unanchored(r, S_START) &&
        uptime_unanchored(r, S_END)) {
        uint32_t len =
            (uint32_t)slot_uint(r, S_END) - (uint32_t)slot_uint(r, S_START);

        end = export_ms(r);
        start = len < 0x80000000u ? sub_sat(end, len) : end;
    }
    r->f->time_start = start;
    r->f->time_end = end < start ? start : end;
}

/* ---- the rest of the record ------------------------------------------ */

/*
 * Firewall and NAT events onto enum fl_fw_event.  firewallEvent (233) and
 * NSEL NF_F_FW_EVENT (40005) use the same codes as the enum: 0 ignore,
 * 1 created, 2 deleted, 3 denied, 4 alert, 5 update.  natEvent (230, IANA
 * "NAT Event Type"): session, BIB, binding and port block creates (1, 4,
 * 6, 8, 10, 14, 16) are create; their deletes (2, 5, 7, 9, 11, 15, 17)
 * are delete; exhaustion, quota and threshold (3, 12, 13, 18) are alert.
 * Anything else is none.
 */
static uint8_t
fw_event_of(uint16_t id, uint8_t v)
{
    if (id != 230) {
        return v <= FL_FW_UPDATE ? v : FL_FW_NONE;
    }
    switch (v) {
    case 1:
    case 4:
    case 6:
    case 8:
    case 10:
    case 14:
    case 16:
        return FL_FW_CREATE;
    case 2:
    case 5:
    case 7:
    case 9:
    case 11:
    case 15:
    case 17:
        return FL_FW_DELETE;
    case 3:
    case 12:
    case 13:
    case 18:
        return FL_FW_ALERT;
    default:
        return FL_FW_NONE;
    }
}

static void
finish_fw(struct rec *r)
{
    const struct slot *s = &r->slot[S_FW];
    bool lossy;

    if (!has(r, S_FW)) {
        return;
    }
    r->f->fw_event = fw_event_of(s->id, s->p[0]);
    /* Keep the raw code whenever the normalised one loses detail: which
     * NAT event it was, or a code we do not know. */
    lossy = s->id == 230 ? s->p[0] > 2 : r->f->fw_event == FL_FW_NONE;
    if (s->p[0] != 0 && lossy) {
        keep_slot(r, S_FW);
    }
}

/*
 * ICMP type and code go to dst_port as type * 256 + code, but only for
 * ICMP flows or records without a destination port: exporters put a zero
 * icmpTypeCode in every record of a mixed template.  A non-zero value
 * that is not used is kept; a zero one carries nothing and is dropped.
 */
static void
finish_icmp(struct rec *r)
{
    struct fl_flow *f = r->f;
    uint32_t v;
    bool icmp = f->proto == 1 || f->proto == 58;

    if (has(r, S_ICMP)) {
        v = (uint32_t)slot_uint(r, S_ICMP);
    } else if (has(r, S_ICMP_T) || has(r, S_ICMP_C)) {
        v = has(r, S_ICMP_T) ? (uint32_t)r->slot[S_ICMP_T].p[0] << 8 : 0;
        v |= has(r, S_ICMP_C) ? r->slot[S_ICMP_C].p[0] : 0;
    } else {
        return;
    }
    if (icmp || ((r->flags & F_DPORT) == 0 && v != 0)) {
        f->dst_port = (uint16_t)v;
        return;
    }
    for (enum slot_idx i = S_ICMP; i <= S_ICMP_C && v != 0; i++) {
        if (has(r, i)) {
            keep_slot(r, i);
        }
    }
}

static void
finish_misc(struct rec *r)
{
    const struct slot *nh = &r->slot[S_NH];

    if (has(r, S_NH)) {
        if (nh->len == 4) {
            fl_addr_from_v4_bytes(&r->f->next_hop, nh->p);
        } else {
            fl_addr_from_v6(&r->f->next_hop, nh->p);
        }
    }
    if (has(r, S_VLAN)) {
        r->f->vlan = (uint16_t)slot_uint(r, S_VLAN);
    }
    finish_icmp(r);
    finish_fw(r);
}

/*
 * RFC 5476 count-based selection: interval packets taken, then space
 * skipped, so 1 in (interval + space) / interval, rounded to the nearest.
 * Without a space, exporters mean samplingPacketInterval as plain 1 in N.
 */
static uint32_t
packet_interval(uint32_t interval, uint32_t space, bool has_space)
{
    uint64_t v;

    if (!has_space) {
        return interval;
    }
    v = ((uint64_t)interval + space + interval / 2) / interval;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The record's own interval, then its sampler's, then the source's. */
static uint32_t
sampling_of(const struct rec *r)
{
    const struct fl_msg_ctx *x = r->ctx;
    uint32_t iv = 0;

    if ((r->flags & F_SAMPLING) != 0) {
        iv = r->sampling;
    } else if ((r->flags & F_PKT_IV) != 0) {
        iv = packet_interval(r->pkt_iv, r->pkt_space,
                             (r->flags & F_PKT_SPACE) != 0);
    } else if ((r->flags & F_SAMPLER) != 0 && x->sampler_lookup != NULL) {
        iv = x->sampler_lookup(x->sampler_arg, r->sampler_id);
    }
    if (iv == 0) {
        iv = x->sampling;
    }
    return iv == 0 ? 1 : iv;
}

static void
finish_counters(struct rec *r)
{
    struct fl_flow *f = r->f;
    uint32_t iv = sampling_of(r);

    f->sampling = iv;
    if (has(r, S_BYTES)) {
        f->bytes = mul_sat(slot_uint(r, S_BYTES), iv);
    }
    if (has(r, S_PKTS)) {
        f->packets = mul_sat(slot_uint(r, S_PKTS), iv);
    }
    if (has(r, S_RBYTES)) {
        f->rev_bytes = mul_sat(slot_uint(r, S_RBYTES), iv);
    }
    if (has(r, S_RPKTS)) {
        f->rev_packets = mul_sat(slot_uint(r, S_RPKTS), iv);
    }
}

/* ---- entry points ---------------------------------------------------- */

int
fl_fields_decode(const struct fl_template *t, const struct fl_msg_ctx *ctx,
                 struct fl_cursor *c, struct fl_flow *flow, uint8_t *extra,
                 size_t extra_cap)
{
    struct fl_cursor w = *c;
    struct rec r;
    const uint8_t *p;
    uint16_t n;

    assert(extra != NULL || extra_cap == 0);
    if (c->left < t->min_len) {
        return FL_ETRUNC;
    }

    /* Slots are read only when their bit in have is set, so only the
     * scalars are cleared: this runs millions of times a second. */
    fl_flow_clear(flow);
    r.f = flow;
    r.ctx = ctx;
    r.extra = extra;
    r.cap = extra_cap;
    r.len = 0;
    r.full = false;
    r.have = 0;
    r.flags = 0;

    for (uint16_t i = 0; i < t->nfields; i++) {
        if (!next_field(&w, t->fields[i].len, &p, &n)) {
            return FL_ETRUNC;
        }
        map_field(&r, &t->fields[i], p, n);
    }

    finish_times(&r);
    finish_misc(&r);
    finish_counters(&r);
    flow->exporter = ctx->exporter;
    flow->domain = ctx->domain;
    flow->extra = r.len > 0 ? extra : NULL;
    flow->extra_len = (uint32_t)r.len;
    *c = w;
    return FL_OK;
}

/* Packet interval and space of an options record, as in data records. */
struct opt_pkt {
    uint32_t interval;
    uint32_t space;
    bool has_space;
};

static void
read_option(struct fl_options_info *o, struct opt_pkt *pk, uint16_t id,
            const uint8_t *p, uint16_t n)
{
    uint64_t v;

    if (!fits(n, 8)) {
        return;
    }
    v = fl_be_uint(p, n);
    switch (id) {
    case 34:
    case 50:
        if (!o->has_sampling && v != 0 && v <= UINT32_MAX) {
            o->has_sampling = true;
            o->sampling = (uint32_t)v;
        }
        break;
    case 305:
        pk->interval = v <= UINT32_MAX ? (uint32_t)v : 0;
        break;
    case 306:
        pk->space = v <= UINT32_MAX ? (uint32_t)v : 0;
        pk->has_space = true;
        break;
    case 35:
    case 49:
    case 304:
        o->algorithm = v <= UINT16_MAX ? (uint16_t)v : 0;
        break;
    case 48:
    case 302: /* 141 lineCardId names hardware, not a sampler */
        if (v <= UINT32_MAX) {
            o->has_sampler_id = true;
            o->sampler_id = (uint32_t)v;
        }
        break;
    case 160:
        o->has_system_init = true;
        o->system_init_ms = v;
        break;
    default:
        break;
    }
}

int
fl_fields_options(const struct fl_template *t, const struct fl_msg_ctx *ctx,
                  struct fl_cursor *c, struct fl_options_info *out)
{
    struct fl_cursor w = *c;
    struct opt_pkt pk = {0, 0, false};
    const struct fl_tfield *tf;
    const uint8_t *p;
    uint16_t n;

    if (c->left < t->min_len) {
        return FL_ETRUNC;
    }
    memset(out, 0, sizeof(*out));

    for (uint16_t i = 0; i < t->nfields; i++) {
        tf = &t->fields[i];
        if (!next_field(&w, tf->len, &p, &n)) {
            return FL_ETRUNC;
        }
        /* v9 scope types (system, interface, line card, cache, template)
         * are a numbering of their own; IPFIX scopes are elements. */
        if ((ctx->version == 9 && i < t->scope_fields) || tf->pen != 0) {
            continue;
        }
        read_option(out, &pk, tf->id, p, n);
    }

    if (!out->has_sampling && pk.interval != 0) {
        out->has_sampling = true;
        out->sampling = packet_interval(pk.interval, pk.space, pk.has_space);
    }
    *c = w;
    return FL_OK;
}
