/*
 * Capture-file reading for --read: the real exporter captures in
 * tests/data, and frames built here for the link layers and IP corner
 * cases those captures do not hold.
 */
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sensor_int.h"

#define MAX_SEEN 16

struct seen {
    size_t n;
    struct fl_addr exporter[MAX_SEEN];
    uint16_t port[MAX_SEEN];
    size_t len[MAX_SEEN];
    uint8_t first[MAX_SEEN];
    uint64_t time_ms[MAX_SEEN];
    size_t total_bytes;
};

static void
collect(void *arg, const struct fl_datagram *dg)
{
    struct seen *s = arg;

    s->total_bytes += dg->len;
    if (s->n == MAX_SEEN) {
        return;
    }
    s->exporter[s->n] = dg->exporter;
    s->port[s->n] = dg->port;
    s->len[s->n] = dg->len;
    s->first[s->n] = dg->len > 0 ? dg->data[0] : 0;
    s->time_ms[s->n] = dg->time_ms;
    s->n++;
}

static void
expect_addr(const struct fl_addr *a, const char *text)
{
    struct fl_addr want;

    cr_assert_eq(fl_addr_parse(text, &want), FL_OK);
    cr_expect_eq(fl_addr_cmp(a, &want), 0, "exporter is not %s", text);
}

/* ---- real captures ---------------------------------------------------- */

/* Counts and sources as `tshark -r FILE -T fields -e ip.src -e
 * udp.srcport -e udp.length` reports them. */
struct capture {
    const char *file;
    uint64_t datagrams;
    size_t payload_bytes;
    const char *exporter;
    uint16_t port;
};

static const struct capture captures[] = {
    {"cisco/cisco_asa_1.pcap", 2, 2464, "10.99.6.1", 40006},
    {"cisco/cisco_asr9k_260.pcap", 2, 1512, "10.99.7.1", 40007},
    {"citrix/netscaler.pcap", 2, 2765, "10.99.15.1", 40015},
    {"fortinet/fortigate_521.pcap", 3, 420, "10.99.10.1", 40010},
    {"generic/ipfix_basic.pcap", 1, 788, "10.99.5.1", 40005},
    {"generic/netflow5.pcap", 1, 1728, "10.99.1.1", 40001},
    {"generic/netflow5_invalid01.pcap", 1, 1464, "10.99.2.1", 40002},
    {"generic/netflow9_invalid01.pcap", 1, 292, "10.99.4.1", 40004},
    {"generic/netflow9_valid01.pcap", 1, 460, "10.99.3.1", 40003},
    {"h3c/h3c.pcap", 2, 1500, "10.99.16.1", 40016},
    {"juniper/juniper_mx240.pcap", 2, 152, "10.99.8.1", 40008},
    {"mikrotik/mikrotik_ipfix.pcap", 3, 3040, "10.99.9.1", 40009},
    {"paloalto/paloalto_panos.pcap", 2, 2032, "10.99.11.1", 40011},
    {"ubiquiti/ubnt_edgerouter.pcap", 3, 1364, "10.99.12.1", 40012},
    {"vmware/vmware_vds.pcap", 4, 1856, "10.99.13.1", 40013},
    {"yaf/yaf.pcap", 5, 1594, "10.99.14.1", 40014},
};

Test(sensor_pcap, reads_every_udp_payload_of_the_real_captures)
{
    for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
        const struct capture *cap = &captures[i];
        struct fl_pcap_stats st;
        struct seen s = {0};
        char path[512];
        char err[256] = "";

        snprintf(path, sizeof(path), "%s/%s", FL_TEST_DATA, cap->file);
        cr_assert_eq(fl_pcap_read(path, collect, &s, &st, err, sizeof(err)),
                     FL_OK, "%s: %s", cap->file, err);
        cr_expect_eq(st.datagrams, cap->datagrams, "%s", cap->file);
        cr_expect_eq(st.frames, cap->datagrams, "%s", cap->file);
        cr_expect_eq(s.total_bytes, cap->payload_bytes, "%s", cap->file);
        for (size_t k = 0; k < s.n; k++) {
            expect_addr(&s.exporter[k], cap->exporter);
            cr_expect_eq(s.port[k], cap->port, "%s", cap->file);
            /* NetFlow and IPFIX all start with a zero version byte. */
            cr_expect_eq(s.first[k], 0, "%s", cap->file);
        }
    }
}

Test(sensor_pcap, fails_on_a_missing_file)
{
    struct fl_pcap_stats st;
    struct seen s = {0};
    char err[256] = "";

    cr_expect_eq(fl_pcap_read(FL_TEST_DATA "/no/such.pcap", collect, &s, &st,
                              err, sizeof(err)),
                 FL_EIO);
    cr_expect_neq(err[0], '\0');
    cr_expect_eq(s.n, 0);
}

/* ---- hand-made captures ----------------------------------------------- */

/* A frame under construction. */
struct fb {
    uint8_t b[2048];
    size_t n;
};

static void
put(struct fb *f, const void *p, size_t n)
{
    cr_assert_leq(f->n + n, sizeof(f->b));
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void
put8(struct fb *f, uint8_t v)
{
    put(f, &v, 1);
}

static void
put16(struct fb *f, uint16_t v)
{
    uint8_t b[2];

    fl_put_be16(b, v);
    put(f, b, 2);
}

static void
put32(struct fb *f, uint32_t v)
{
    uint8_t b[4];

    fl_put_be32(b, v);
    put(f, b, 4);
}

static void
put_ether(struct fb *f, uint16_t type)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};

    put(f, macs, sizeof(macs));
    put16(f, type);
}

static const uint8_t payload[] = {0x00, 0x0a, 0x00, 0x20, 'f', 'l', 'o', 'w'};

/* UDP header and the test payload (checksum 0: not checked). */
static void
put_udp(struct fb *f, uint16_t sport)
{
    put16(f, sport);
    put16(f, 4739);
    put16(f, (uint16_t)(8 + sizeof(payload)));
    put16(f, 0);
    put(f, payload, sizeof(payload));
}

/* An IPv4 header with optlen bytes of options, for a UDP body. */
static void
put_ipv4(struct fb *f, const uint8_t src[4], uint16_t frag, uint8_t proto,
         size_t optlen)
{
    static const uint8_t dst[4] = {192, 0, 2, 9};
    size_t total = 20 + optlen + 8 + sizeof(payload);

    put8(f, (uint8_t)(0x40 | ((20 + optlen) / 4)));
    put8(f, 0);
    put16(f, (uint16_t)total);
    put16(f, 1);
    put16(f, frag);
    put8(f, 64);
    put8(f, proto);
    put16(f, 0);
    put(f, src, 4);
    put(f, dst, 4);
    for (size_t i = 0; i < optlen; i++) {
        put8(f, 1); /* NOP options */
    }
}

/* An IPv6 header whose payload is extlen bytes of headers and UDP. */
static void
put_ipv6(struct fb *f, const uint8_t src[16], uint8_t next, size_t extlen)
{
    static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};

    put32(f, 0x60000000);
    put16(f, (uint16_t)(extlen + 8 + sizeof(payload)));
    put8(f, next);
    put8(f, 64);
    put(f, src, 16);
    put(f, dst, 16);
}

static const uint8_t v4src[4] = {198, 51, 100, 7};
static const uint8_t v6src[16] = {0x20, 0x01,        0x0d,
                                  0xb8, [14] = 0x12, [15] = 0x34};

/* Writes frames into a capture of link type dlt; caplen may cut them. */
struct wframe {
    const struct fb *f;
    size_t caplen; /* 0: the whole frame */
};

static void
write_capture(const char *path, int dlt, const struct wframe *fr, size_t n)
{
    pcap_t *p = pcap_open_dead(dlt, 65535);
    pcap_dumper_t *d;

    cr_assert_not_null(p);
    d = pcap_dump_open(p, path);
    cr_assert_not_null(d, "%s", pcap_geterr(p));
    for (size_t i = 0; i < n; i++) {
        struct pcap_pkthdr h = {0};

        h.ts.tv_sec = 1700000000 + (long)i;
        h.ts.tv_usec = 250000;
        h.len = (bpf_u_int32)fr[i].f->n;
        h.caplen = (bpf_u_int32)(fr[i].caplen ? fr[i].caplen : fr[i].f->n);
        pcap_dump((u_char *)d, &h, fr[i].f->b);
    }
    pcap_dump_close(d);
    pcap_close(p);
}

/* Writes the frames, reads them back through fl_pcap_read. */
static void
roundtrip(int dlt, const struct wframe *fr, size_t n, struct seen *s,
          struct fl_pcap_stats *st)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    char err[256] = "";
    int fd;

    snprintf(path, sizeof(path), "%s/fl_pcap_XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_capture(path, dlt, fr, n);
    memset(s, 0, sizeof(*s));
    cr_assert_eq(fl_pcap_read(path, collect, s, st, err, sizeof(err)), FL_OK,
                 "%s", err);
    unlink(path);
    cr_expect_eq(st->frames, n);
}

static void
expect_payload(const struct seen *s, size_t k, uint16_t sport)
{
    cr_assert_lt(k, s->n);
    cr_expect_eq(s->len[k], sizeof(payload));
    cr_expect_eq(s->first[k], payload[0]);
    cr_expect_eq(s->port[k], sport);
}

Test(sensor_pcap, strips_802_1q_and_qinq_tags)
{
    struct fb dot1q = {0};
    struct fb qinq = {0};
    struct seen s;
    struct fl_pcap_stats st;

    put_ether(&dot1q, 0x8100);
    put16(&dot1q, 100);
    put16(&dot1q, 0x0800);
    put_ipv4(&dot1q, v4src, 0, 17, 0);
    put_udp(&dot1q, 1001);

    put_ether(&qinq, 0x88a8);
    put16(&qinq, 200);
    put16(&qinq, 0x8100);
    put16(&qinq, 300);
    put16(&qinq, 0x86dd);
    put_ipv6(&qinq, v6src, 17, 0);
    put_udp(&qinq, 1002);

    struct wframe fr[] = {{&dot1q, 0}, {&qinq, 0}};
    roundtrip(DLT_EN10MB, fr, 2, &s, &st);
    cr_expect_eq(st.datagrams, 2);
    expect_payload(&s, 0, 1001);
    expect_addr(&s.exporter[0], "198.51.100.7");
    expect_payload(&s, 1, 1002);
    expect_addr(&s.exporter[1], "2001:db8::1234");
}

Test(sensor_pcap, reads_linux_cooked_captures_v1_and_v2)
{
    struct fb sll = {0};
    struct fb sll2 = {0};
    struct seen s;
    struct fl_pcap_stats st;

    /* SLL: packet type, ARPHRD_ETHER, address length, address, protocol. */
    put16(&sll, 0);
    put16(&sll, 1);
    put16(&sll, 6);
    put(&sll, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
    put16(&sll, 0x0800);
    put_ipv4(&sll, v4src, 0, 17, 0);
    put_udp(&sll, 2001);
    struct wframe f1[] = {{&sll, 0}};
    roundtrip(DLT_LINUX_SLL, f1, 1, &s, &st);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 2001);
    expect_addr(&s.exporter[0], "198.51.100.7");

    /* SLL2: protocol, reserved, ifindex, ARPHRD, type, length, address. */
    put16(&sll2, 0x86dd);
    put16(&sll2, 0);
    put32(&sll2, 3);
    put16(&sll2, 1);
    put8(&sll2, 0);
    put8(&sll2, 6);
    put(&sll2, "\x02\x00\x00\x00\x00\x01\x00\x00", 8);
    put_ipv6(&sll2, v6src, 17, 0);
    put_udp(&sll2, 2002);
    struct wframe f2[] = {{&sll2, 0}};
    roundtrip(DLT_LINUX_SLL2, f2, 1, &s, &st);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 2002);
    expect_addr(&s.exporter[0], "2001:db8::1234");
}

Test(sensor_pcap, walks_ipv6_extension_headers_in_raw_captures)
{
    struct fb f = {0};
    struct seen s;
    struct fl_pcap_stats st;

    /* Hop-by-hop (8 bytes), then destination options (16 bytes). */
    put_ipv6(&f, v6src, 0, 8 + 16);
    put8(&f, 60);
    put8(&f, 0);
    put(&f, "\x01\x04\x00\x00\x00\x00", 6);
    put8(&f, 17);
    put8(&f, 1);
    put(&f, "\x01\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 14);
    put_udp(&f, 3001);

    struct wframe fr[] = {{&f, 0}};
    roundtrip(DLT_RAW, fr, 1, &s, &st);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 3001);
    expect_addr(&s.exporter[0], "2001:db8::1234");

    roundtrip(DLT_IPV6, fr, 1, &s, &st);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 3001);
}

Test(sensor_pcap, honours_ipv4_header_options_and_link_padding)
{
    struct fb f = {0};
    struct seen s;
    struct fl_pcap_stats st;

    put_ipv4(&f, v4src, 0, 17, 8);
    put_udp(&f, 4001);
    /* Trailing bytes past the IP total length are not payload. */
    put(&f, "\0\0\0\0\0\0", 6);

    struct wframe fr[] = {{&f, 0}};
    roundtrip(DLT_IPV4, fr, 1, &s, &st);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 4001);
    expect_addr(&s.exporter[0], "198.51.100.7");
    cr_expect_eq(s.time_ms[0], 1700000000250ULL);
}

Test(sensor_pcap, reads_bsd_loopback_in_either_byte_order)
{
    struct fb le = {0};
    struct fb be = {0};
    struct seen s;
    struct fl_pcap_stats st;

    /* DLT_NULL: AF_INET in a little-endian capturing host's order. */
    put(&le, "\x02\x00\x00\x00", 4);
    put_ipv4(&le, v4src, 0, 17, 0);
    put_udp(&le, 5001);
    /* AF_INET6 as FreeBSD numbers it, big-endian. */
    put32(&be, 28);
    put_ipv6(&be, v6src, 17, 0);
    put_udp(&be, 5002);

    struct wframe fr[] = {{&le, 0}, {&be, 0}};
    roundtrip(DLT_NULL, fr, 2, &s, &st);
    cr_expect_eq(st.datagrams, 2);
    expect_payload(&s, 0, 5001);
    expect_payload(&s, 1, 5002);
    expect_addr(&s.exporter[1], "2001:db8::1234");
}

Test(sensor_pcap, counts_truncated_frames_and_delivers_none_of_them)
{
    struct fb whole = {0};
    struct fb shortudp = {0};
    struct seen s;
    struct fl_pcap_stats st;

    put_ether(&whole, 0x0800);
    put_ipv4(&whole, v4src, 0, 17, 0);
    put_udp(&whole, 6001);

    /* IP says 20 + 8 + payload, the UDP length claims more than that. */
    put_ether(&shortudp, 0x0800);
    put_ipv4(&shortudp, v4src, 0, 17, 0);
    put16(&shortudp, 6002);
    put16(&shortudp, 4739);
    put16(&shortudp, 200);
    put16(&shortudp, 0);
    put(&shortudp, payload, sizeof(payload));

    /* The same frame cut by the capture's snap length, at every size. */
    for (size_t cut = 1; cut < whole.n; cut++) {
        struct wframe fr[] = {{&whole, cut}};

        roundtrip(DLT_EN10MB, fr, 1, &s, &st);
        cr_expect_eq(st.datagrams, 0, "cut at %zu", cut);
        cr_expect_eq(st.skipped[FL_PCAP_TRUNCATED], 1, "cut at %zu", cut);
    }
    struct wframe fr[] = {{&shortudp, 0}, {&whole, 0}};
    roundtrip(DLT_EN10MB, fr, 2, &s, &st);
    cr_expect_eq(st.skipped[FL_PCAP_TRUNCATED], 1);
    cr_expect_eq(st.datagrams, 1);
    expect_payload(&s, 0, 6001);
}

Test(sensor_pcap, skips_and_counts_fragments)
{
    struct fb first = {0};
    struct fb later = {0};
    struct fb v6frag = {0};
    struct seen s;
    struct fl_pcap_stats st;

    /* More-fragments set: the UDP datagram goes on in another frame. */
    put_ether(&first, 0x0800);
    put_ipv4(&first, v4src, 0x2000, 17, 0);
    put_udp(&first, 7001);
    /* A non-first fragment: its bytes are no UDP header. */
    put_ether(&later, 0x0800);
    put_ipv4(&later, v4src, 0x00b9, 17, 0);
    put_udp(&later, 7002);
    /* IPv6 fragment header, offset 0 and more-fragments. */
    put_ether(&v6frag, 0x86dd);
    put_ipv6(&v6frag, v6src, 44, 8);
    put8(&v6frag, 17);
    put8(&v6frag, 0);
    put16(&v6frag, 1);
    put32(&v6frag, 0x12345678);
    put_udp(&v6frag, 7003);

    struct wframe fr[] = {{&first, 0}, {&later, 0}, {&v6frag, 0}};
    roundtrip(DLT_EN10MB, fr, 3, &s, &st);
    cr_expect_eq(st.datagrams, 0);
    cr_expect_eq(st.skipped[FL_PCAP_FRAGMENT], 3);
}

Test(sensor_pcap, counts_frames_that_are_not_udp_over_ip)
{
    struct fb arp = {0};
    struct fb tcp = {0};
    struct fb badihl = {0};
    struct seen s;
    struct fl_pcap_stats st;

    put_ether(&arp, 0x0806);
    put(&arp, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
    put_ether(&tcp, 0x0800);
    put_ipv4(&tcp, v4src, 0, 6, 0);
    put_udp(&tcp, 8001);
    put_ether(&badihl, 0x0800);
    put_ipv4(&badihl, v4src, 0, 17, 0);
    put_udp(&badihl, 8002);
    badihl.b[14] = 0x43; /* IHL 3: shorter than the fixed header */

    struct wframe fr[] = {{&arp, 0}, {&tcp, 0}, {&badihl, 0}};
    roundtrip(DLT_EN10MB, fr, 3, &s, &st);
    cr_expect_eq(st.datagrams, 0);
    cr_expect_eq(st.skipped[FL_PCAP_NOT_IP], 1);
    cr_expect_eq(st.skipped[FL_PCAP_NOT_UDP], 1);
    cr_expect_eq(st.skipped[FL_PCAP_MALFORMED], 1);
    cr_expect_str_eq(fl_pcap_skip_name(FL_PCAP_NOT_UDP), "not_udp");
}

Test(sensor_pcap, refuses_a_link_type_it_does_not_know)
{
    const char *tmp = getenv("TMPDIR");
    struct fb f = {0};
    struct fl_pcap_stats st;
    struct seen s = {0};
    char path[512];
    char err[256] = "";
    int fd;

    put(&f, payload, sizeof(payload));
    snprintf(path, sizeof(path), "%s/fl_pcap_XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    struct wframe fr[] = {{&f, 0}};
    write_capture(path, DLT_IEEE802_11, fr, 1);
    cr_expect_eq(fl_pcap_read(path, collect, &s, &st, err, sizeof(err)),
                 FL_EFORMAT);
    cr_expect(strstr(err, "link type") != NULL, "%s", err);
    unlink(path);
}
