/*
 * The canonical record encoding: the exact bytes of the specification's
 * test vector, its presence and width rules (read back by a decoder
 * written here from the specification), and that a change to any single
 * field changes the bytes (so the Merkle leaf commits to every field).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The specification's test vector, computed from its table by the
 * Python of tests/tools/formats_vectors.py, not by this C code. */
static const char vector_hex[] =
    "021fffbf1d0000018bcfe5687b0000115cc000020120010db800000000000000"
    "0000000001cb007107c63364fe0000000a000005dcc73801bb06000000030000"
    "00070000fc000000fde9000000100000010000641b200101c633640acb007132"
    "9c4001bb000000000000000800000000000017700000000c0000000000520004"
    "deadbeef";

static const uint8_t vector_extra[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x52,
                                       0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};

static void
addr(const char *s, struct fl_addr *a)
{
    cr_assert_eq(fl_addr_parse(s, a), FL_OK, "%s", s);
}

static void
vector_flow(struct fl_flow *f)
{
    fl_flow_clear(f);
    f->time_start = 1700000000123ull;
    f->time_end = 1700000004567ull;
    addr("192.0.2.1", &f->src_addr);
    addr("2001:db8::1", &f->dst_addr);
    addr("198.51.100.254", &f->next_hop);
    addr("203.0.113.7", &f->exporter);
    f->packets = 10;
    f->bytes = 1500;
    f->in_if = 3;
    f->out_if = 7;
    f->src_as = 64512;
    f->dst_as = 65001;
    f->mpls = 16;
    f->domain = 256;
    f->sampling = 1;
    f->src_port = 51000;
    f->dst_port = 443;
    f->vlan = 100;
    f->proto = 6;
    f->tcp_flags = 0x1b;
    f->tos = 0x20;
    f->direction = 1;
    f->fw_event = FL_FW_CREATE;
    addr("198.51.100.10", &f->xlate_src_addr);
    addr("203.0.113.50", &f->xlate_dst_addr);
    f->xlate_src_port = 40000;
    f->xlate_dst_port = 443;
    f->rev_packets = 8;
    f->rev_bytes = 6000;
    f->extra = vector_extra;
    f->extra_len = sizeof(vector_extra);
}

Test(common_record, writes_the_specification_test_vector_exactly)
{
    struct fl_flow f;
    uint8_t buf[512];
    uint8_t want[256];
    size_t want_len = strlen(vector_hex) / 2;
    int len;

    vector_flow(&f);
    cr_assert_eq(fl_unhex(vector_hex, want, want_len), FL_OK);
    len = fl_flow_canon(&f, buf, sizeof(buf));
    cr_assert_eq(len, (int)want_len);
    for (size_t i = 0; i < want_len; i++) {
        cr_assert_eq(buf[i], want[i], "byte %zu: %02x, want %02x", i, buf[i],
                     want[i]);
    }
}

Test(common_record, writes_a_cleared_record_with_no_optional_field)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX];

    /* version, bits, start, duration, three :: addresses, packets,
     * bytes, ports, proto: 78 bytes, no bit set. */
    fl_flow_clear(&f);
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 78);
    cr_assert_eq(buf[0], 2);
    cr_assert_eq(fl_be_uint(buf + 1, 4), 0);
}

Test(common_record, puts_extra_last_after_its_length)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX + 1024];
    uint8_t extra[1024];
    int len;

    fl_flow_clear(&f);
    memset(extra, 0xa5, sizeof(extra));
    f.extra = extra;
    f.extra_len = sizeof(extra);
    len = fl_flow_canon(&f, buf, sizeof(buf));
    cr_assert_eq(len, 78 + 4 + (int)sizeof(extra));
    cr_assert_eq(fl_be_uint(buf + 1, 4), FL_CANON_EXTRA);
    cr_assert_eq(fl_be_uint(buf + 78, 4), sizeof(extra));
    cr_assert_eq(memcmp(buf + 82, extra, sizeof(extra)), 0);
}

/* Every field away from its default, IPv6, 64-bit counters and a
 * backwards time: the longest head there is. */
static void
widest_flow(struct fl_flow *f)
{
    vector_flow(f);
    addr("2001:db8::1", &f->src_addr);
    addr("2001:db8::2", &f->next_hop);
    addr("2001:db8::3", &f->exporter);
    addr("2001:db8::4", &f->xlate_src_addr);
    addr("2001:db8::5", &f->xlate_dst_addr);
    f->time_end = f->time_start - 1;
    f->packets = UINT64_MAX;
    f->bytes = (uint64_t)UINT32_MAX + 1;
    f->sampling = 0;
}

Test(common_record, is_at_most_fl_canon_max_before_extra)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX + 64];

    widest_flow(&f);
    f.extra_len = 0;
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), FL_CANON_MAX - 4);
    f.extra = vector_extra;
    f.extra_len = sizeof(vector_extra);
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)),
                 FL_CANON_MAX + (int)sizeof(vector_extra));
    /* Every bit but the IPv4 ones. */
    cr_assert_eq(fl_be_uint(buf + 1, 4),
                 0x1fffffffu &
                     ~(uint32_t)(FL_CANON_SRC_V4 | FL_CANON_DST_V4 |
                                 FL_CANON_EXPORTER_V4 | FL_CANON_NEXT_HOP_V4 |
                                 FL_CANON_XLATE_SRC_V4 |
                                 FL_CANON_XLATE_DST_V4));
}

Test(common_record, keeps_a_typical_salted_leaf_in_one_blake2b_block)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX];

    /* What a router's v9/IPFIX record usually has: no NAT, no biflow,
     * no extra.  The leaf is 0x00 || salt || canon; a block is 128. */
    vector_flow(&f);
    memset(&f.xlate_src_addr, 0, sizeof(f.xlate_src_addr));
    memset(&f.xlate_dst_addr, 0, sizeof(f.xlate_dst_addr));
    f.xlate_src_port = f.xlate_dst_port = 0;
    f.rev_packets = f.rev_bytes = 0;
    f.fw_event = 0;
    f.extra_len = 0;
    addr("192.0.2.2", &f.dst_addr);
    cr_assert_leq(1 + FL_SALT_LEN + fl_flow_canon(&f, buf, sizeof(buf)), 128);
    addr("2001:db8::1", &f.src_addr);
    addr("2001:db8::2", &f.dst_addr);
    addr("2001:db8::3", &f.next_hop);
    cr_assert_leq(1 + FL_SALT_LEN + fl_flow_canon(&f, buf, sizeof(buf)), 128);
}

Test(common_record, refuses_a_buffer_one_byte_short)
{
    struct fl_flow f;
    uint8_t buf[512];
    int len;

    vector_flow(&f);
    len = fl_flow_canon(&f, buf, sizeof(buf));
    cr_assert_gt(len, 0);
    cr_assert_eq(fl_flow_canon(&f, buf, (size_t)len - 1), FL_ELIMIT);
    cr_assert_eq(fl_flow_canon(&f, buf, 0), FL_ELIMIT);
    cr_assert_eq(fl_flow_canon(&f, buf, (size_t)len), len);
}

/* Changes one field of f, chosen by k; false when k is past the last. */
static bool
mutate(struct fl_flow *f, int k)
{
    static const uint8_t other_extra[] = {0, 0, 0, 0, 0, 0x52, 0, 1, 0xee};

    switch (k) {
    case 0:
        f->time_start++;
        break;
    case 1:
        f->time_end++;
        break;
    case 2:
        f->src_addr.b[15] ^= 1;
        break;
    case 3:
        f->dst_addr.b[0] ^= 0x80;
        break;
    case 4:
        f->next_hop.b[15] ^= 1;
        break;
    case 5:
        f->exporter.b[15] ^= 1;
        break;
    case 6:
        f->packets++;
        break;
    case 7:
        f->bytes++;
        break;
    case 8:
        f->in_if++;
        break;
    case 9:
        f->out_if++;
        break;
    case 10:
        f->src_as++;
        break;
    case 11:
        f->dst_as++;
        break;
    case 12:
        f->mpls++;
        break;
    case 13:
        f->domain++;
        break;
    case 14:
        f->sampling++;
        break;
    case 15:
        f->src_port++;
        break;
    case 16:
        f->dst_port++;
        break;
    case 17:
        f->vlan++;
        break;
    case 18:
        f->proto++;
        break;
    case 19:
        f->tcp_flags++;
        break;
    case 20:
        f->tos++;
        break;
    case 21:
        f->direction++;
        break;
    case 22:
        f->fw_event++;
        break;
    case 23:
        f->xlate_src_addr.b[15] ^= 1;
        break;
    case 24:
        f->xlate_dst_addr.b[15] ^= 1;
        break;
    case 25:
        f->xlate_src_port++;
        break;
    case 26:
        f->xlate_dst_port++;
        break;
    case 27:
        f->rev_packets++;
        break;
    case 28:
        f->rev_bytes++;
        break;
    case 29:
        f->extra_len--;
        break;
    case 30:
        f->extra = other_extra;
        f->extra_len = sizeof(other_extra);
        break;
    default:
        return false;
    }
    return true;
}

Test(common_record, changes_when_any_single_field_changes)
{
    struct fl_flow base;
    struct fl_flow f;
    uint8_t a[512];
    uint8_t b[512];
    int alen;
    int blen;
    int k;

    vector_flow(&base);
    alen = fl_flow_canon(&base, a, sizeof(a));
    for (k = 0;; k++) {
        f = base;
        if (!mutate(&f, k)) {
            break;
        }
        blen = fl_flow_canon(&f, b, sizeof(b));
        cr_assert_gt(blen, 0);
        cr_assert(alen != blen || memcmp(a, b, (size_t)alen) != 0,
                  "field %d does not reach the encoding", k);
    }
    cr_assert_eq(k, 31, "every field was tried");
}

Test(common_record, tells_ipv4_from_its_mapped_twin_in_ipv6_text)
{
    struct fl_flow f;
    struct fl_flow g;
    uint8_t a[512];
    uint8_t b[512];

    /* ::ffff:192.0.2.1 is the same record as 192.0.2.1, by design ... */
    fl_flow_clear(&f);
    fl_flow_clear(&g);
    addr("192.0.2.1", &f.src_addr);
    addr("::ffff:192.0.2.1", &g.src_addr);
    cr_assert_eq(fl_flow_canon(&f, a, sizeof(a)), 66);
    cr_assert_eq(fl_flow_canon(&g, b, sizeof(b)), 66);
    cr_assert_eq(memcmp(a, b, 66), 0);
    /* ... but ::192.0.2.1 (IPv4-compatible, deprecated) is not. */
    addr("::192.0.2.1", &g.src_addr);
    cr_assert_eq(fl_flow_canon(&g, b, sizeof(b)), 78);
    cr_assert_neq(memcmp(a, b, 66), 0);
}

Test(common_record, writes_a_mapped_zero_next_hop_but_not_an_all_zero_one)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX];

    fl_flow_clear(&f);
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 78);
    addr("0.0.0.0", &f.next_hop);
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 82);
    cr_assert_eq(fl_be_uint(buf + 1, 4),
                 FL_CANON_NEXT_HOP | FL_CANON_NEXT_HOP_V4);
}

Test(common_record, writes_sampling_only_when_not_one)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX];

    fl_flow_clear(&f);
    f.sampling = 0;
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 82);
    cr_assert_eq(fl_be_uint(buf + 1, 4), FL_CANON_SAMPLING);
    cr_assert_eq(fl_be_uint(buf + 78, 4), 0);
}

Test(common_record, widens_time_end_and_counters_exactly_past_32_bits)
{
    struct fl_flow f;
    uint8_t buf[FL_CANON_MAX];

    fl_flow_clear(&f);
    f.time_start = 1000;
    f.time_end = 1000 + (uint64_t)UINT32_MAX;
    f.packets = UINT32_MAX;
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 78);
    cr_assert_eq(fl_be_uint(buf + 1, 4), 0);
    cr_assert_eq(fl_be_uint(buf + 13, 4), UINT32_MAX);
    f.time_end++;
    f.packets++;
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 86);
    cr_assert_eq(fl_be_uint(buf + 1, 4),
                 FL_CANON_TIME_END_WIDE | FL_CANON_PACKETS_WIDE);
    cr_assert_eq(fl_be_uint(buf + 13, 8), f.time_end);
    f.time_end = f.time_start - 1; /* backwards: the time itself */
    cr_assert_eq(fl_flow_canon(&f, buf, sizeof(buf)), 86);
    cr_assert_eq(fl_be_uint(buf + 13, 8), 999);
}
