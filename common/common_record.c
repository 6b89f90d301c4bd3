/*
 * The canonical binary form of one flow: the bytes a Merkle leaf commits
 * to.  Compact so that a salted leaf of a typical record fits one BLAKE2b
 * block: a bitmap says which fields differ from their default and how
 * wide the rest are; the layout is the table in docs/formats.md.
 */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "common.h"

/* Bumped whenever a field is added, moved or resized. */
#define CANON_VERSION 2

static bool
addr_is_zero(const struct fl_addr *a)
{
    static const struct fl_addr zero;

    return memcmp(a->b, zero.b, sizeof(a->b)) == 0;
}

/* The form bits of one address: v4 when IPv4-mapped; for an optional
 * one also present when it is not all zero. */
static uint32_t
addr_bits(const struct fl_addr *a, uint32_t v4_bit, uint32_t present_bit)
{
    uint32_t bits = fl_addr_is_v4(a) ? v4_bit : 0;

    if (present_bit != 0 && !addr_is_zero(a)) {
        bits |= present_bit;
    }
    return bits;
}

static uint32_t
bit_if(bool cond, uint32_t bit)
{
    return cond ? bit : 0;
}

/* Which fields are written and how wide: the first word of the record. */
static uint32_t
canon_bits(const struct fl_flow *f)
{
    uint32_t b = 0;

    b |= addr_bits(&f->src_addr, FL_CANON_SRC_V4, 0);
    b |= addr_bits(&f->dst_addr, FL_CANON_DST_V4, 0);
    b |= addr_bits(&f->exporter, FL_CANON_EXPORTER_V4, 0);
    b |= addr_bits(&f->next_hop, FL_CANON_NEXT_HOP_V4, FL_CANON_NEXT_HOP);
    b |= addr_bits(&f->xlate_src_addr, FL_CANON_XLATE_SRC_V4,
                   FL_CANON_XLATE_SRC);
    b |= addr_bits(&f->xlate_dst_addr, FL_CANON_XLATE_DST_V4,
                   FL_CANON_XLATE_DST);
    /* A v4 bit only describes an address that is written. */
    b &= ~bit_if(!(b & FL_CANON_NEXT_HOP), FL_CANON_NEXT_HOP_V4);
    b &= ~bit_if(!(b & FL_CANON_XLATE_SRC), FL_CANON_XLATE_SRC_V4);
    b &= ~bit_if(!(b & FL_CANON_XLATE_DST), FL_CANON_XLATE_DST_V4);
    b |= bit_if(f->time_end < f->time_start ||
                    f->time_end - f->time_start > UINT32_MAX,
                FL_CANON_TIME_END_WIDE);
    b |= bit_if(f->packets > UINT32_MAX, FL_CANON_PACKETS_WIDE);
    b |= bit_if(f->bytes > UINT32_MAX, FL_CANON_BYTES_WIDE);
    b |= bit_if(f->in_if != 0, FL_CANON_IN_IF);
    b |= bit_if(f->out_if != 0, FL_CANON_OUT_IF);
    b |= bit_if(f->src_as != 0, FL_CANON_SRC_AS);
    b |= bit_if(f->dst_as != 0, FL_CANON_DST_AS);
    b |= bit_if(f->mpls != 0, FL_CANON_MPLS);
    b |= bit_if(f->domain != 0, FL_CANON_DOMAIN);
    b |= bit_if(f->sampling != 1, FL_CANON_SAMPLING);
    b |= bit_if(f->vlan != 0, FL_CANON_VLAN);
    b |= bit_if(f->tcp_flags != 0, FL_CANON_TCP_FLAGS);
    b |= bit_if(f->tos != 0, FL_CANON_TOS);
    b |= bit_if(f->direction != 0, FL_CANON_DIRECTION);
    b |= bit_if(f->fw_event != 0, FL_CANON_FW_EVENT);
    b |= bit_if(f->xlate_src_port != 0, FL_CANON_XLATE_SRC_PORT);
    b |= bit_if(f->xlate_dst_port != 0, FL_CANON_XLATE_DST_PORT);
    b |= bit_if(f->rev_packets != 0, FL_CANON_REV_PACKETS);
    b |= bit_if(f->rev_bytes != 0, FL_CANON_REV_BYTES);
    b |= bit_if(f->extra_len != 0, FL_CANON_EXTRA);
    return b;
}

static size_t
addr_len(uint32_t bits, uint32_t present_bit, uint32_t v4_bit)
{
    if (present_bit != 0 && !(bits & present_bit)) {
        return 0;
    }
    return (bits & v4_bit) ? 4 : 16;
}

static size_t
opt_len(uint32_t bits, uint32_t bit, size_t width)
{
    return (bits & bit) ? width : 0;
}

/* Bytes before extra for a record with these bits. */
static size_t
canon_head_len(uint32_t b)
{
    size_t n = 1 + 4 + 8 + 2 + 2 + 1; /* version, bits, start, ports, proto */

    n += (b & FL_CANON_TIME_END_WIDE) ? 8 : 4;
    n += addr_len(b, 0, FL_CANON_SRC_V4) + addr_len(b, 0, FL_CANON_DST_V4);
    n += addr_len(b, 0, FL_CANON_EXPORTER_V4);
    n += addr_len(b, FL_CANON_NEXT_HOP, FL_CANON_NEXT_HOP_V4);
    n += (b & FL_CANON_PACKETS_WIDE) ? 8 : 4;
    n += (b & FL_CANON_BYTES_WIDE) ? 8 : 4;
    n += opt_len(b, FL_CANON_IN_IF, 4) + opt_len(b, FL_CANON_OUT_IF, 4);
    n += opt_len(b, FL_CANON_SRC_AS, 4) + opt_len(b, FL_CANON_DST_AS, 4);
    n += opt_len(b, FL_CANON_MPLS, 4) + opt_len(b, FL_CANON_DOMAIN, 4);
    n += opt_len(b, FL_CANON_SAMPLING, 4) + opt_len(b, FL_CANON_VLAN, 2);
    n += opt_len(b, FL_CANON_TCP_FLAGS, 1) + opt_len(b, FL_CANON_TOS, 1);
    n += opt_len(b, FL_CANON_DIRECTION, 1) + opt_len(b, FL_CANON_FW_EVENT, 1);
    n += addr_len(b, FL_CANON_XLATE_SRC, FL_CANON_XLATE_SRC_V4);
    n += addr_len(b, FL_CANON_XLATE_DST, FL_CANON_XLATE_DST_V4);
    n += opt_len(b, FL_CANON_XLATE_SRC_PORT, 2);
    n += opt_len(b, FL_CANON_XLATE_DST_PORT, 2);
    n += opt_len(b, FL_CANON_REV_PACKETS, 8);
    n += opt_len(b, FL_CANON_REV_BYTES, 8);
    n += opt_len(b, FL_CANON_EXTRA, 4);
    return n;
}

/* Writes an address in the form its bits give (nothing when absent). */
static uint8_t *
put_addr(uint8_t *p, const struct fl_addr *a, uint32_t bits,
         uint32_t present_bit, uint32_t v4_bit)
{
    size_t n = addr_len(bits, present_bit, v4_bit);

    memcpy(p, a->b + sizeof(a->b) - n, n);
    return p + n;
}

/* Writes v in width bytes (1, 2, 4 or 8), big-endian. */
static uint8_t *
put_be(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++) {
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    }
    return p + width;
}

/* put_be when bit is set in bits, nothing otherwise. */
static uint8_t *
put_opt(uint8_t *p, uint32_t bits, uint32_t bit, uint64_t v, size_t width)
{
    return (bits & bit) ? put_be(p, v, width) : p;
}

/* Every field always written, and the addresses, in table order. */
static uint8_t *
put_core(uint8_t *p, const struct fl_flow *f, uint32_t b)
{
    bool wide_end = (b & FL_CANON_TIME_END_WIDE) != 0;

    *p++ = CANON_VERSION;
    p = put_be(p, b, 4);
    p = put_be(p, f->time_start, 8);
    p = put_be(p, wide_end ? f->time_end : f->time_end - f->time_start,
               wide_end ? 8 : 4);
    p = put_addr(p, &f->src_addr, b, 0, FL_CANON_SRC_V4);
    p = put_addr(p, &f->dst_addr, b, 0, FL_CANON_DST_V4);
    p = put_addr(p, &f->exporter, b, 0, FL_CANON_EXPORTER_V4);
    p = put_addr(p, &f->next_hop, b, FL_CANON_NEXT_HOP, FL_CANON_NEXT_HOP_V4);
    p = put_be(p, f->packets, (b & FL_CANON_PACKETS_WIDE) ? 8 : 4);
    p = put_be(p, f->bytes, (b & FL_CANON_BYTES_WIDE) ? 8 : 4);
    p = put_be(p, f->src_port, 2);
    p = put_be(p, f->dst_port, 2);
    *p++ = f->proto;
    return p;
}

/* The optional fields, each only when its bit is set, in table order. */
static uint8_t *
put_optional(uint8_t *p, const struct fl_flow *f, uint32_t b)
{
    p = put_opt(p, b, FL_CANON_IN_IF, f->in_if, 4);
    p = put_opt(p, b, FL_CANON_OUT_IF, f->out_if, 4);
    p = put_opt(p, b, FL_CANON_SRC_AS, f->src_as, 4);
    p = put_opt(p, b, FL_CANON_DST_AS, f->dst_as, 4);
    p = put_opt(p, b, FL_CANON_MPLS, f->mpls, 4);
    p = put_opt(p, b, FL_CANON_DOMAIN, f->domain, 4);
    p = put_opt(p, b, FL_CANON_SAMPLING, f->sampling, 4);
    p = put_opt(p, b, FL_CANON_VLAN, f->vlan, 2);
    p = put_opt(p, b, FL_CANON_TCP_FLAGS, f->tcp_flags, 1);
    p = put_opt(p, b, FL_CANON_TOS, f->tos, 1);
    p = put_opt(p, b, FL_CANON_DIRECTION, f->direction, 1);
    p = put_opt(p, b, FL_CANON_FW_EVENT, f->fw_event, 1);
    p = put_addr(p, &f->xlate_src_addr, b, FL_CANON_XLATE_SRC,
                 FL_CANON_XLATE_SRC_V4);
    p = put_addr(p, &f->xlate_dst_addr, b, FL_CANON_XLATE_DST,
                 FL_CANON_XLATE_DST_V4);
    p = put_opt(p, b, FL_CANON_XLATE_SRC_PORT, f->xlate_src_port, 2);
    p = put_opt(p, b, FL_CANON_XLATE_DST_PORT, f->xlate_dst_port, 2);
    p = put_opt(p, b, FL_CANON_REV_PACKETS, f->rev_packets, 8);
    p = put_opt(p, b, FL_CANON_REV_BYTES, f->rev_bytes, 8);
    p = put_opt(p, b, FL_CANON_EXTRA, f->extra_len, 4);
    return p;
}

int
fl_flow_canon(const struct fl_flow *f, uint8_t *buf, size_t cap)
{
    uint32_t bits = canon_bits(f);
    size_t head = canon_head_len(bits);
    uint8_t *p;

    assert(head <= FL_CANON_MAX);
    /* The length is returned as an int: refuse what it cannot hold. */
    if (f->extra_len > INT_MAX - FL_CANON_MAX || cap < head ||
        cap - head < f->extra_len) {
        return FL_ELIMIT;
    }
    p = put_core(buf, f, bits);
    p = put_optional(p, f, bits);
    assert((size_t)(p - buf) == head);
    if (f->extra_len > 0) {
        memcpy(p, f->extra, f->extra_len);
    }
    return (int)(head + f->extra_len);
}
