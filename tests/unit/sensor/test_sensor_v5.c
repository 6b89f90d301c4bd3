/*
 * NetFlow v1/v5/v7 decoding: datagrams built here field by field, every
 * malformed shape, and real captures whose expected values were read with
 * tshark.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sensor_int.h"

#define MAX_FLOWS 32
#define PKT_MAX 2048

/* What the decoder delivered; extra bytes are copied since they are lent. */
struct got {
    int n;
    struct fl_flow flows[MAX_FLOWS];
    uint8_t extra[MAX_FLOWS][FL_EXTRA_MAX];
};

static struct got got;

static void
collect(void *arg, const struct fl_flow *f)
{
    struct got *g = arg;

    cr_assert_lt(g->n, MAX_FLOWS);
    cr_assert_leq(f->extra_len, FL_EXTRA_MAX);
    g->flows[g->n] = *f;
    if (f->extra_len > 0) {
        memcpy(g->extra[g->n], f->extra, f->extra_len);
    }
    g->flows[g->n].extra = g->extra[g->n];
    g->n++;
}

static void
reset(void)
{
    memset(&got, 0, sizeof(got));
}

/* ---- building datagrams --------------------------------------------- */

struct hdr {
    uint16_t version;
    uint16_t count;
    uint32_t uptime;
    uint32_t secs;
    uint32_t nsecs;
    uint32_t sequence;
    uint8_t engine_type;
    uint8_t engine_id;
    uint16_t sampling;
};

struct rec {
    uint32_t src, dst, hop;
    uint16_t in_if, out_if;
    uint32_t pkts, octets, first, last;
    uint16_t sport, dport;
    uint8_t flags, proto, tos;
    uint16_t src_as, dst_as;
    uint8_t src_mask, dst_mask;
};

/* Header: 1700000000.25 s, uptime 100 s. */
static const struct hdr base_hdr = {
    .version = 5,
    .count = 1,
    .uptime = 100000,
    .secs = 1700000000,
    .nsecs = 250000000,
    .sequence = 4242,
    .engine_type = 1,
    .engine_id = 7,
    .sampling = 0,
};
#define BASE_EXPORT_MS 1700000000250ull

static const struct rec base_rec = {
    .src = 0xc0000201, /* 192.0.2.1 */
    .dst = 0xc6336402, /* 198.51.100.2 */
    .hop = 0xcb007103, /* 203.0.113.3 */
    .in_if = 11,
    .out_if = 12,
    .pkts = 10,
    .octets = 1500,
    .first = 40000,
    .last = 99000,
    .sport = 51000,
    .dport = 443,
    .flags = 0x1b,
    .proto = 6,
    .tos = 0x28,
    .src_as = 64500,
    .dst_as = 64501,
    .src_mask = 24,
    .dst_mask = 16,
};

static size_t
put_hdr(uint8_t *p, const struct hdr *h)
{
    fl_put_be16(p, h->version);
    fl_put_be16(p + 2, h->count);
    fl_put_be32(p + 4, h->uptime);
    fl_put_be32(p + 8, h->secs);
    fl_put_be32(p + 12, h->nsecs);
    if (h->version == 1) {
        return 16;
    }
    fl_put_be32(p + 16, h->sequence);
    if (h->version == 5) {
        p[20] = h->engine_type;
        p[21] = h->engine_id;
        fl_put_be16(p + 22, h->sampling);
    } else {
        fl_put_be32(p + 20, 0xdeadbeef); /* v7 reserved */
    }
    return 24;
}

static size_t
put_rec(uint8_t *p, uint16_t version, const struct rec *r)
{
    fl_put_be32(p, r->src);
    fl_put_be32(p + 4, r->dst);
    fl_put_be32(p + 8, r->hop);
    fl_put_be16(p + 12, r->in_if);
    fl_put_be16(p + 14, r->out_if);
    fl_put_be32(p + 16, r->pkts);
    fl_put_be32(p + 20, r->octets);
    fl_put_be32(p + 24, r->first);
    fl_put_be32(p + 28, r->last);
    fl_put_be16(p + 32, r->sport);
    fl_put_be16(p + 34, r->dport);
    if (version == 1) {
        /* pad1 (2), prot, tos, flags, pad2, pad3 (2), reserved (4) */
        memset(p + 36, 0xee, 12);
        p[38] = r->proto;
        p[39] = r->tos;
        p[40] = r->flags;
        return 48;
    }
    p[36] = 0xee; /* pad1 / v7 export flags */
    p[37] = r->flags;
    p[38] = r->proto;
    p[39] = r->tos;
    fl_put_be16(p + 40, r->src_as);
    fl_put_be16(p + 42, r->dst_as);
    p[44] = r->src_mask;
    p[45] = r->dst_mask;
    fl_put_be16(p + 46, 0xeeee);
    if (version == 7) {
        fl_put_be32(p + 48, 0x0a000001); /* router_sc */
        return 52;
    }
    return 48;
}

/* A datagram of h->count copies of r; returns its length. */
static size_t
build(uint8_t *pkt, const struct hdr *h, const struct rec *r)
{
    size_t len = put_hdr(pkt, h);

    for (uint16_t i = 0; i < h->count; i++) {
        cr_assert_lt(len + 52, PKT_MAX);
        len += put_rec(pkt + len, h->version, r);
    }
    return len;
}

static struct fl_addr exporter;

static int
decode(const uint8_t *pkt, size_t len, struct fl_v5_info *info)
{
    fl_addr_from_v4(&exporter, 0x0a630101);
    reset();
    return fl_v5_decode(&exporter, pkt, len, info, collect, &got);
}

static void
assert_v4(const struct fl_addr *a, uint32_t v4)
{
    struct fl_addr want;

    fl_addr_from_v4(&want, v4);
    cr_assert_eq(memcmp(a, &want, sizeof(want)), 0);
}

/* ---- well-formed datagrams ------------------------------------------ */

Test(sensor_v5, decodes_every_field_of_a_v5_record)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    size_t len = build(pkt, &base_hdr, &base_rec);
    const struct fl_flow *f = &got.flows[0];

    cr_assert_eq(len, 72);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.version, 5);
    cr_assert_eq(info.count, 1);
    cr_assert_eq(info.sequence, 4242);
    cr_assert_eq(info.domain, 0x107);
    cr_assert_eq(info.sampling, 1);
    cr_assert_eq(got.n, 1);

    assert_v4(&f->src_addr, 0xc0000201);
    assert_v4(&f->dst_addr, 0xc6336402);
    assert_v4(&f->next_hop, 0xcb007103);
    assert_v4(&f->exporter, 0x0a630101);
    cr_assert_eq(f->in_if, 11);
    cr_assert_eq(f->out_if, 12);
    cr_assert_eq(f->packets, 10);
    cr_assert_eq(f->bytes, 1500);
    cr_assert_eq(f->time_start, BASE_EXPORT_MS - 60000);
    cr_assert_eq(f->time_end, BASE_EXPORT_MS - 1000);
    cr_assert_eq(f->src_port, 51000);
    cr_assert_eq(f->dst_port, 443);
    cr_assert_eq(f->tcp_flags, 0x1b);
    cr_assert_eq(f->proto, 6);
    cr_assert_eq(f->tos, 0x28);
    cr_assert_eq(f->src_as, 64500);
    cr_assert_eq(f->dst_as, 64501);
    cr_assert_eq(f->domain, 0x107);
    cr_assert_eq(f->sampling, 1);
}

Test(sensor_v5, keeps_prefix_masks_as_extra_elements)
{
    static const uint8_t want[] = {
        0, 0, 0, 0, 0, 9,  0, 1, 24, /* pen 0, sourceIPv4PrefixLength */
        0, 0, 0, 0, 0, 13, 0, 1, 16, /* pen 0, destinationIPv4PrefixLength */
    };
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    size_t len = build(pkt, &base_hdr, &base_rec);

    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].extra_len, sizeof(want));
    cr_assert_eq(memcmp(got.flows[0].extra, want, sizeof(want)), 0);
}

Test(sensor_v5, delivers_every_record_of_a_full_datagram)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    size_t len;

    h.count = 30;
    len = build(pkt, &h, &base_rec);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.count, 30);
    cr_assert_eq(got.n, 30);
    cr_assert_eq(got.flows[29].dst_port, 443);
}

Test(sensor_v5, decodes_v1_records_without_sequence_or_masks)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    const struct fl_flow *f = &got.flows[0];
    size_t len;

    h.version = 1;
    h.count = 2;
    len = build(pkt, &h, &base_rec);
    cr_assert_eq(len, 16 + 2 * 48);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.version, 1);
    cr_assert_eq(info.count, 2);
    cr_assert_eq(info.sequence, 0);
    cr_assert_eq(info.domain, 0);
    cr_assert_eq(got.n, 2);
    assert_v4(&f->src_addr, 0xc0000201);
    assert_v4(&f->dst_addr, 0xc6336402);
    assert_v4(&f->next_hop, 0xcb007103);
    cr_assert_eq(f->in_if, 11);
    cr_assert_eq(f->out_if, 12);
    cr_assert_eq(f->packets, 10);
    cr_assert_eq(f->bytes, 1500);
    cr_assert_eq(f->time_start, BASE_EXPORT_MS - 60000);
    cr_assert_eq(f->time_end, BASE_EXPORT_MS - 1000);
    cr_assert_eq(f->src_port, 51000);
    cr_assert_eq(f->dst_port, 443);
    cr_assert_eq(f->proto, 6);
    cr_assert_eq(f->tos, 0x28);
    cr_assert_eq(f->tcp_flags, 0x1b);
    cr_assert_eq(f->src_as, 0);
    cr_assert_eq(f->domain, 0);
    cr_assert_eq(f->sampling, 1);
    cr_assert_eq(f->extra_len, 0);
}

Test(sensor_v5, decodes_v7_records_and_skips_the_shortcut_router)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    const struct fl_flow *f = &got.flows[1];
    size_t len;

    h.version = 7;
    h.count = 2;
    len = build(pkt, &h, &base_rec);
    cr_assert_eq(len, 24 + 2 * 52);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.version, 7);
    cr_assert_eq(info.sequence, 4242);
    cr_assert_eq(info.domain, 0);
    cr_assert_eq(info.sampling, 1);
    cr_assert_eq(got.n, 2);
    assert_v4(&f->src_addr, 0xc0000201);
    assert_v4(&f->dst_addr, 0xc6336402);
    cr_assert_eq(f->packets, 10);
    cr_assert_eq(f->bytes, 1500);
    cr_assert_eq(f->time_end, BASE_EXPORT_MS - 1000);
    cr_assert_eq(f->dst_port, 443);
    cr_assert_eq(f->tcp_flags, 0x1b);
    cr_assert_eq(f->proto, 6);
    cr_assert_eq(f->tos, 0x28);
    cr_assert_eq(f->src_as, 64500);
    cr_assert_eq(f->dst_as, 64501);
    cr_assert_eq(f->domain, 0);
    cr_assert_eq(f->extra_len, 18);
    cr_assert_eq(f->extra[8], 24);
    cr_assert_eq(f->extra[17], 16);
}

Test(sensor_v5, multiplies_counters_by_the_sampling_interval)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    size_t len;

    /* Mode 1 (deterministic) in the top bits, 1 in 100 below. */
    h.sampling = 0x4000 | 100;
    len = build(pkt, &h, &base_rec);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.sampling, 100);
    cr_assert_eq(got.flows[0].sampling, 100);
    cr_assert_eq(got.flows[0].packets, 1000);
    cr_assert_eq(got.flows[0].bytes, 150000);
}

Test(sensor_v5, treats_a_zero_interval_with_a_mode_as_unsampled)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    size_t len;

    h.sampling = 0x8000;
    len = build(pkt, &h, &base_rec);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(info.sampling, 1);
    cr_assert_eq(got.flows[0].packets, 10);
}

Test(sensor_v5, scales_the_largest_counters_without_overflow)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    struct rec r = base_rec;
    size_t len;

    h.sampling = 0x3fff;
    r.pkts = UINT32_MAX;
    r.octets = UINT32_MAX;
    len = build(pkt, &h, &r);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].packets, (uint64_t)UINT32_MAX * 16383);
    cr_assert_eq(got.flows[0].bytes, (uint64_t)UINT32_MAX * 16383);
}

Test(sensor_v5, converts_times_across_an_uptime_wrap)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    struct rec r = base_rec;
    size_t len;

    /* The uptime counter wrapped 500 ms ago; the flow began 256 ms before
     * the wrap and ended 300 ms before the header was written. */
    h.uptime = 500;
    r.first = 0xffffff00;
    r.last = 200;
    len = build(pkt, &h, &r);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].time_start, BASE_EXPORT_MS - 756);
    cr_assert_eq(got.flows[0].time_end, BASE_EXPORT_MS - 300);
}

Test(sensor_v5, pins_times_ahead_of_the_header_to_the_export_time)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct rec r = base_rec;
    size_t len;

    r.first = base_hdr.uptime - 5;
    r.last = base_hdr.uptime + 10;
    len = build(pkt, &base_hdr, &r);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].time_start, BASE_EXPORT_MS - 5);
    cr_assert_eq(got.flows[0].time_end, BASE_EXPORT_MS);
}

Test(sensor_v5, never_underflows_before_the_epoch)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct hdr h = base_hdr;
    struct rec r = base_rec;
    size_t len;

    /* An exporter with no clock: 1 s after the epoch, up for 100 s. */
    h.secs = 1;
    h.nsecs = 0;
    r.first = 0;
    r.last = 99500;
    len = build(pkt, &h, &r);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].time_start, 0);
    cr_assert_eq(got.flows[0].time_end, 500);
}

Test(sensor_v5, leaves_icmp_ports_as_sent)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    struct rec r = base_rec;
    size_t len;

    r.proto = 1;
    r.sport = 0;
    r.dport = 3 * 256 + 3; /* port unreachable */
    len = build(pkt, &base_hdr, &r);
    cr_assert_eq(decode(pkt, len, &info), FL_OK);
    cr_assert_eq(got.flows[0].proto, 1);
    cr_assert_eq(got.flows[0].src_port, 0);
    cr_assert_eq(got.flows[0].dst_port, 0x0303);
}

Test(sensor_v5, accepts_trailing_bytes_after_the_records)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    size_t len = build(pkt, &base_hdr, &base_rec);

    memset(pkt + len, 0xab, 100);
    cr_assert_eq(decode(pkt, len + 100, &info), FL_OK);
    cr_assert_eq(got.n, 1);
    cr_assert_eq(got.flows[0].dst_port, 443);
}

/* ---- malformed datagrams -------------------------------------------- */

/* Decodes and checks that rc came back and not a single flow did. */
static void
assert_rejected(const uint8_t *pkt, size_t len, int rc)
{
    struct fl_v5_info info;

    cr_assert_eq(decode(pkt, len, &info), rc, "len %zu", len);
    cr_assert_eq(got.n, 0);
}

Test(sensor_v5, rejects_datagrams_too_short_for_a_version)
{
    uint8_t pkt[PKT_MAX] = {0};

    assert_rejected(pkt, 0, FL_ETRUNC);
    pkt[0] = 0;
    assert_rejected(pkt, 1, FL_ETRUNC);
}

Test(sensor_v5, rejects_other_versions)
{
    uint8_t pkt[PKT_MAX];
    struct hdr h = base_hdr;
    size_t len = build(pkt, &h, &base_rec);

    fl_put_be16(pkt, 9);
    assert_rejected(pkt, len, FL_EVERSION);
    fl_put_be16(pkt, 0);
    assert_rejected(pkt, len, FL_EVERSION);
    fl_put_be16(pkt, 0x0500);
    assert_rejected(pkt, len, FL_EVERSION);
}

Test(sensor_v5, rejects_headers_cut_short)
{
    static const uint16_t versions[] = {1, 5, 7};
    static const size_t header_len[] = {16, 24, 24};
    uint8_t pkt[PKT_MAX];

    for (size_t v = 0; v < 3; v++) {
        struct hdr h = base_hdr;
        size_t len;

        h.version = versions[v];
        len = build(pkt, &h, &base_rec);
        for (size_t cut = 2; cut < header_len[v]; cut++) {
            assert_rejected(pkt, cut, FL_ETRUNC);
        }
        /* A complete header with its record missing is truncated too. */
        assert_rejected(pkt, header_len[v], FL_ETRUNC);
        assert_rejected(pkt, len - 1, FL_ETRUNC);
    }
}

Test(sensor_v5, rejects_a_count_of_zero)
{
    static const uint16_t versions[] = {1, 5, 7};
    uint8_t pkt[PKT_MAX];

    for (size_t v = 0; v < 3; v++) {
        struct hdr h = base_hdr;
        size_t len;

        h.version = versions[v];
        len = build(pkt, &h, &base_rec);
        fl_put_be16(pkt + 2, 0);
        assert_rejected(pkt, len, FL_EFORMAT);
    }
}

Test(sensor_v5, rejects_a_count_above_the_version_maximum)
{
    static const uint16_t versions[] = {1, 5, 7};
    static const uint16_t max[] = {24, 30, 28};
    uint8_t pkt[PKT_MAX];

    for (size_t v = 0; v < 3; v++) {
        struct hdr h = base_hdr;
        struct fl_v5_info info;
        size_t len;

        /* The maximum itself is fine ... */
        h.version = versions[v];
        h.count = max[v];
        len = build(pkt, &h, &base_rec);
        cr_assert_eq(decode(pkt, len, &info), FL_OK);
        cr_assert_eq(got.n, max[v]);

        /* ... one more is refused even when the bytes are there. */
        h.count = max[v] + 1;
        len = build(pkt, &h, &base_rec);
        assert_rejected(pkt, len, FL_EFORMAT);
    }
}

Test(sensor_v5, rejects_a_count_the_length_cannot_hold)
{
    uint8_t pkt[PKT_MAX];
    struct hdr h = base_hdr;
    size_t len;

    h.count = 3;
    len = build(pkt, &h, &base_rec);
    /* Claims three records, carries two and a half. */
    assert_rejected(pkt, len - 24, FL_ETRUNC);
    fl_put_be16(pkt + 2, 4);
    assert_rejected(pkt, len, FL_ETRUNC);
}

/* ---- real captures --------------------------------------------------- */

/*
 * Reads the UDP payload and IPv4 source of packet `index` of a classic
 * little-endian pcap file of Ethernet/IPv4/UDP frames without options.
 */
static size_t
pcap_payload(const char *name, int index, uint8_t *out, size_t cap,
             uint32_t *ip_src)
{
    char path[512];
    uint8_t frame[4096];
    uint8_t hdr[24];
    FILE *fp;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/%s", FL_TEST_DATA, name);
    fp = fopen(path, "rb");
    cr_assert_not_null(fp, "cannot open %s", path);
    cr_assert_eq(fread(hdr, 1, 24, fp), 24);
    cr_assert(hdr[0] == 0xd4 && hdr[1] == 0xc3 && hdr[2] == 0xb2 &&
              hdr[3] == 0xa1);
    for (int i = 0; i <= index; i++) {
        uint32_t incl;

        cr_assert_eq(fread(hdr, 1, 16, fp), 16, "no packet %d", i);
        incl = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 |
               (uint32_t)hdr[10] << 16 | (uint32_t)hdr[11] << 24;
        cr_assert(incl > 42 && incl <= sizeof(frame));
        cr_assert_eq(fread(frame, 1, incl, fp), incl);
        len = incl - 42;
    }
    fclose(fp);
    cr_assert_leq(len, cap);
    memcpy(out, frame + 42, len);
    *ip_src = (uint32_t)fl_be_uint(frame + 14 + 12, 4);
    return len;
}

/*
 * Expected values below were read from
 * `tshark -r tests/data/generic/netflow5.pcap -d udp.port==2055,cflow -V`:
 * exporter 10.99.1.1, count 2, SysUptime 3.381 s, CurrentSecs 1430591888,
 * CurrentNSecs 280328000, FlowSequence 0, engine 0/0, sampling 0; pdu 1
 * 10.0.2.2:54435 -> 10.0.2.15:22 TCP flags 0x10, 5 packets, 230 octets,
 * StartTime 4294967.295 s (just before the uptime wrap), EndTime 2.577 s
 * (tshark: duration 2.578 s); pdu 2 10.0.2.15:22 -> 10.0.2.2:54435 flags
 * 0x18, 4 packets, 304 octets, same times.  The UDP payload is 1728 bytes:
 * 1608 of them trail the two records.
 */
Test(sensor_v5, decodes_the_real_netflow5_capture)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    uint32_t ip_src;
    size_t len =
        pcap_payload("generic/netflow5.pcap", 0, pkt, sizeof(pkt), &ip_src);
    const uint64_t export_ms = 1430591888280ull;
    const struct fl_flow *f;
    int rc;

    cr_assert_eq(len, 1728);
    cr_assert_eq(ip_src, 0x0a630101);
    reset();
    fl_addr_from_v4(&exporter, ip_src);
    rc = fl_v5_decode(&exporter, pkt, len, &info, collect, &got);
    cr_assert_eq(rc, FL_OK);
    cr_assert_eq(info.version, 5);
    cr_assert_eq(info.count, 2);
    cr_assert_eq(info.sequence, 0);
    cr_assert_eq(info.domain, 0);
    cr_assert_eq(info.sampling, 1);
    cr_assert_eq(got.n, 2);

    f = &got.flows[0];
    assert_v4(&f->exporter, 0x0a630101);
    assert_v4(&f->src_addr, 0x0a000202);
    assert_v4(&f->dst_addr, 0x0a00020f);
    assert_v4(&f->next_hop, 0);
    cr_assert_eq(f->src_port, 54435);
    cr_assert_eq(f->dst_port, 22);
    cr_assert_eq(f->proto, 6);
    cr_assert_eq(f->tcp_flags, 0x10);
    cr_assert_eq(f->packets, 5);
    cr_assert_eq(f->bytes, 230);
    cr_assert_eq(f->time_start, export_ms - 3382);
    cr_assert_eq(f->time_end, export_ms - 804);
    cr_assert_eq(f->time_end - f->time_start, 2578);

    f = &got.flows[1];
    assert_v4(&f->src_addr, 0x0a00020f);
    assert_v4(&f->dst_addr, 0x0a000202);
    cr_assert_eq(f->src_port, 22);
    cr_assert_eq(f->dst_port, 54435);
    cr_assert_eq(f->tcp_flags, 0x18);
    cr_assert_eq(f->packets, 4);
    cr_assert_eq(f->bytes, 304);
}

/*
 * tshark on tests/data/generic/netflow5_invalid01.pcap shows a v5 header
 * with Count 55582 (FlowSequence 2389, EngineId 67) in a 1464-byte
 * payload: far above the v5 maximum of 30 records.
 */
Test(sensor_v5, rejects_the_real_invalid_netflow5_capture)
{
    uint8_t pkt[PKT_MAX];
    struct fl_v5_info info;
    uint32_t ip_src;
    size_t len = pcap_payload("generic/netflow5_invalid01.pcap", 0, pkt,
                              sizeof(pkt), &ip_src);

    cr_assert_eq(len, 1464);
    cr_assert_eq(decode(pkt, len, &info), FL_EFORMAT);
    cr_assert_eq(got.n, 0);
    cr_assert_eq(info.version, 5);
    cr_assert_eq(info.count, 55582);
}
