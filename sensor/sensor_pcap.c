/*
 * Reading exporters' datagrams out of a capture file (--read): link layer,
 * IPv4 or IPv6, then UDP, every byte through struct fl_cursor.  A frame
 * that carries no usable UDP payload is counted by kind, never fatal.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <string.h>

#include "sensor_int.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100

#define IPPROTO_NUM_UDP 17
#define IP6_HOPOPTS 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_DSTOPTS 60

/* Tags stacked deeper than this are not VLANs but garbage. */
#define VLAN_MAX_TAGS 4

/* BSD loopback: the address family, whose IPv6 value depends on the OS. */
#define NULL_AF_INET 2

/* Where one frame's walk down the layers is going. */
struct frame {
    struct fl_cursor c;
    struct fl_datagram dg;
};

static const char *const skip_names[FL_PCAP_SKIP_COUNT] = {
    [FL_PCAP_TRUNCATED] = "truncated", [FL_PCAP_MALFORMED] = "malformed",
    [FL_PCAP_FRAGMENT] = "fragment",   [FL_PCAP_NOT_IP] = "not_ip",
    [FL_PCAP_NOT_UDP] = "not_udp",
};

const char *
fl_pcap_skip_name(enum fl_pcap_skip k)
{
    if ((unsigned)k >= FL_PCAP_SKIP_COUNT) {
        return "unknown";
    }
    return skip_names[k];
}

/* Reads the UDP header and hands out its payload.  Returns -1 or a skip. */
static int
parse_udp(struct frame *f)
{
    uint16_t sport;
    uint16_t dport;
    uint16_t len;
    uint16_t csum;
    const uint8_t *payload;

    if (!fl_cursor_u16(&f->c, &sport) || !fl_cursor_u16(&f->c, &dport) ||
        !fl_cursor_u16(&f->c, &len) || !fl_cursor_u16(&f->c, &csum)) {
        return FL_PCAP_TRUNCATED;
    }
    if (len < 8) {
        return FL_PCAP_MALFORMED;
    }
    if (!fl_cursor_bytes(&f->c, (size_t)len - 8, &payload)) {
        return FL_PCAP_TRUNCATED;
    }
    f->dg.port = sport;
    f->dg.data = payload;
    f->dg.len = (size_t)len - 8;
    return -1;
}

/*
 * Cuts the cursor down to an IP packet's declared length: link layers pad
 * short frames, and a capture may have cut a long one.
 */
static int
clamp_to(struct frame *f, size_t declared)
{
    if (declared > f->c.left) {
        return FL_PCAP_TRUNCATED;
    }
    f->c.left = declared;
    return -1;
}

static int
parse_ipv4(struct frame *f)
{
    uint8_t vihl;
    uint8_t tos;
    uint16_t total;
    uint16_t id;
    uint16_t frag;
    uint8_t ttl;
    uint8_t proto;
    uint16_t csum;
    const uint8_t *src;
    size_t hlen;
    int rc;

    /* Options are skipped below only after total is known to cover them. */
    if (!fl_cursor_u8(&f->c, &vihl) || !fl_cursor_u8(&f->c, &tos) ||
        !fl_cursor_u16(&f->c, &total) || !fl_cursor_u16(&f->c, &id) ||
        !fl_cursor_u16(&f->c, &frag) || !fl_cursor_u8(&f->c, &ttl) ||
        !fl_cursor_u8(&f->c, &proto) || !fl_cursor_u16(&f->c, &csum) ||
        !fl_cursor_bytes(&f->c, 4, &src) || !fl_cursor_skip(&f->c, 4)) {
        return FL_PCAP_TRUNCATED;
    }
    hlen = (size_t)(vihl & 0x0f) * 4;
    if (vihl >> 4 != 4 || hlen < 20 || total < hlen) {
        return FL_PCAP_MALFORMED;
    }
    rc = clamp_to(f, (size_t)total - 20);
    if (rc >= 0) {
        return rc;
    }
    if (!fl_cursor_skip(&f->c, hlen - 20)) {
        return FL_PCAP_TRUNCATED;
    }
    /* Offset or more-fragments: only part of a datagram is here. */
    if ((frag & 0x3fff) != 0) {
        return FL_PCAP_FRAGMENT;
    }
    if (proto != IPPROTO_NUM_UDP) {
        return FL_PCAP_NOT_UDP;
    }
    fl_addr_from_v4_bytes(&f->dg.exporter, src);
    return parse_udp(f);
}

/* Walks IPv6 extension headers up to the upper-layer protocol. */
static int
skip_ipv6_ext(struct frame *f, uint8_t *next)
{
    uint8_t nh;
    uint8_t len;

    while (*next == IP6_HOPOPTS || *next == IP6_ROUTING ||
           *next == IP6_DSTOPTS || *next == IP6_FRAGMENT) {
        if (*next == IP6_FRAGMENT) {
            return FL_PCAP_FRAGMENT;
        }
        if (!fl_cursor_u8(&f->c, &nh) || !fl_cursor_u8(&f->c, &len)) {
            return FL_PCAP_TRUNCATED;
        }
        /* Length in 8-octet units, not counting the first 8. */
        if (!fl_cursor_skip(&f->c, (size_t)len * 8 + 6)) {
            return FL_PCAP_TRUNCATED;
        }
        *next = nh;
    }
    return -1;
}

static int
parse_ipv6(struct frame *f)
{
    uint32_t vtcfl;
    uint16_t plen;
    uint8_t next;
    uint8_t hops;
    const uint8_t *src;
    int rc;

    if (!fl_cursor_u32(&f->c, &vtcfl) || !fl_cursor_u16(&f->c, &plen) ||
        !fl_cursor_u8(&f->c, &next) || !fl_cursor_u8(&f->c, &hops) ||
        !fl_cursor_bytes(&f->c, 16, &src) || !fl_cursor_skip(&f->c, 16)) {
        return FL_PCAP_TRUNCATED;
    }
    /* A zero payload length means a jumbogram, which no exporter sends. */
    if (vtcfl >> 28 != 6 || plen == 0) {
        return FL_PCAP_MALFORMED;
    }
    rc = clamp_to(f, plen);
    if (rc >= 0) {
        return rc;
    }
    rc = skip_ipv6_ext(f, &next);
    if (rc >= 0) {
        return rc;
    }
    if (next != IPPROTO_NUM_UDP) {
        return FL_PCAP_NOT_UDP;
    }
    fl_addr_from_v6(&f->dg.exporter, src);
    return parse_udp(f);
}

/* Raw IP: the version nibble says which. */
static int
parse_ip_any(struct frame *f)
{
    if (f->c.left < 1) {
        return FL_PCAP_TRUNCATED;
    }
    switch (f->c.p[0] >> 4) {
    case 4:
        return parse_ipv4(f);
    case 6:
        return parse_ipv6(f);
    default:
        return FL_PCAP_NOT_IP;
    }
}

/* Strips 802.1Q / 802.1ad tags, then dispatches on the inner type. */
static int
parse_ethertype(struct frame *f, uint16_t type)
{
    for (int tags = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ ||
                       type == ETHERTYPE_QINQ_OLD;
         tags++) {
        if (tags == VLAN_MAX_TAGS) {
            return FL_PCAP_MALFORMED;
        }
        if (!fl_cursor_skip(&f->c, 2) || !fl_cursor_u16(&f->c, &type)) {
            return FL_PCAP_TRUNCATED;
        }
    }
    if (type == ETHERTYPE_IPV4) {
        return parse_ipv4(f);
    }
    if (type == ETHERTYPE_IPV6) {
        return parse_ipv6(f);
    }
    return FL_PCAP_NOT_IP;
}

static int
parse_ether(struct frame *f)
{
    uint16_t type;

    if (!fl_cursor_skip(&f->c, 12) || !fl_cursor_u16(&f->c, &type)) {
        return FL_PCAP_TRUNCATED;
    }
    return parse_ethertype(f, type);
}

/* Linux cooked v1: type, ARPHRD, address length, 8 address bytes, proto. */
static int
parse_sll(struct frame *f)
{
    uint16_t type;

    if (!fl_cursor_skip(&f->c, 14) || !fl_cursor_u16(&f->c, &type)) {
        return FL_PCAP_TRUNCATED;
    }
    return parse_ethertype(f, type);
}

/* Linux cooked v2: the protocol comes first, 20 bytes in all. */
static int
parse_sll2(struct frame *f)
{
    uint16_t type;

    if (!fl_cursor_u16(&f->c, &type) || !fl_cursor_skip(&f->c, 18)) {
        return FL_PCAP_TRUNCATED;
    }
    return parse_ethertype(f, type);
}

/*
 * BSD null/loopback: a 4-byte address family, in the capturing host's
 * byte order for DLT_NULL and big-endian for DLT_LOOP.  Every IPv6 value
 * in use (10, 24, 28, 30) fits one byte, so either order is recognised.
 */
static int
parse_null(struct frame *f)
{
    uint32_t af;

    if (!fl_cursor_u32(&f->c, &af)) {
        return FL_PCAP_TRUNCATED;
    }
    if (af > 0xffff) {
        af = __builtin_bswap32(af);
    }
    if (af == NULL_AF_INET) {
        return parse_ipv4(f);
    }
    if (af == 10 || af == 24 || af == 28 || af == 30) {
        return parse_ipv6(f);
    }
    return FL_PCAP_NOT_IP;
}

typedef int (*link_fn)(struct frame *f);

static link_fn
link_parser(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB:
        return parse_ether;
    case DLT_LINUX_SLL:
        return parse_sll;
    case DLT_LINUX_SLL2:
        return parse_sll2;
    case DLT_RAW:
        return parse_ip_any;
    case DLT_IPV4:
        return parse_ipv4;
    case DLT_IPV6:
        return parse_ipv6;
    case DLT_NULL:
    case DLT_LOOP:
        return parse_null;
    default:
        return NULL;
    }
}

static int
frame_parse(link_fn parse, const uint8_t *bytes, size_t len, uint64_t time_ms,
            fl_datagram_fn fn, void *arg, struct fl_pcap_stats *st)
{
    struct frame f;
    int skip;

    st->frames++;
    memset(&f, 0, sizeof(f));
    fl_cursor_init(&f.c, bytes, len);
    f.dg.time_ms = time_ms;
    skip = parse(&f);
    if (skip >= 0) {
        st->skipped[skip]++;
        return FL_OK;
    }
    st->datagrams++;
    fn(arg, &f.dg);
    return FL_OK;
}

int
fl_pcap_frame(int dlt, const uint8_t *frame, size_t len, uint64_t time_ms,
              fl_datagram_fn fn, void *arg, struct fl_pcap_stats *st)
{
    link_fn parse = link_parser(dlt);

    if (parse == NULL) {
        return FL_EFORMAT;
    }
    return frame_parse(parse, frame, len, time_ms, fn, arg, st);
}

/* Returns pcap_next_ex's last answer: -2 at the end, -1 on an error. */
static int
read_frames(pcap_t *p, link_fn parse, fl_datagram_fn fn, void *arg,
            struct fl_pcap_stats *st)
{
    struct pcap_pkthdr *h;
    const u_char *bytes;
    int rc;

    for (;;) {
        rc = pcap_next_ex(p, &h, &bytes);
        if (rc != 1) {
            return rc;
        }
        frame_parse(parse, bytes, h->caplen,
                    (uint64_t)h->ts.tv_sec * 1000 +
                        (uint64_t)h->ts.tv_usec / 1000,
                    fn, arg, st);
    }
}

int
fl_pcap_read(const char *path, fl_datagram_fn fn, void *arg,
             struct fl_pcap_stats *st, char *err, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE];
    pcap_t *p;
    link_fn parse;
    int ret = FL_EIO;

    memset(st, 0, sizeof(*st));
    p = pcap_open_offline(path, perr);
    if (p == NULL) {
        snprintf(err, errlen, "%s", perr);
        return FL_EIO;
    }
    parse = link_parser(pcap_datalink(p));
    if (parse == NULL) {
        snprintf(err, errlen, "unsupported link type %s",
                 pcap_datalink_val_to_name(pcap_datalink(p)));
        ret = FL_EFORMAT;
        goto out;
    }

    if (read_frames(p, parse, fn, arg, st) == -1) {
        snprintf(err, errlen, "%s", pcap_geterr(p));
        goto out;
    }
    ret = FL_OK;
out:
    pcap_close(p);
    return ret;
}
