/*
 * The canonical binary form of one flow: the bytes a Merkle leaf commits
 * to.  A fixed big-endian layout of every field of struct fl_flow, so two
 * implementations that agree on the record agree on the hash.
 */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "common.h"

/* Bumped whenever a field is added, moved or resized. */
#define CANON_VERSION 1

static uint8_t *
put_addr(uint8_t *p, const struct fl_addr *a)
{
    memcpy(p, a->b, sizeof(a->b));
    return p + sizeof(a->b);
}

static uint8_t *
put64(uint8_t *p, uint64_t v)
{
    fl_put_be64(p, v);
    return p + 8;
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
    fl_put_be32(p, v);
    return p + 4;
}

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
    fl_put_be16(p, v);
    return p + 2;
}

int
fl_flow_canon(const struct fl_flow *f, uint8_t *buf, size_t cap)
{
    uint8_t *p = buf;

    /* The length is returned as an int: refuse what it cannot hold. */
    if (f->extra_len > INT_MAX - FL_CANON_FIXED || cap < FL_CANON_FIXED ||
        cap - FL_CANON_FIXED < f->extra_len) {
        return FL_ELIMIT;
    }

    /* The order below is the table in docs/formats.md, offset by offset. */
    *p++ = CANON_VERSION;
    p = put64(p, f->time_start);
    p = put64(p, f->time_end);
    p = put_addr(p, &f->src_addr);
    p = put_addr(p, &f->dst_addr);
    p = put_addr(p, &f->next_hop);
    p = put_addr(p, &f->exporter);
    p = put64(p, f->packets);
    p = put64(p, f->bytes);
    p = put32(p, f->in_if);
    p = put32(p, f->out_if);
    p = put32(p, f->src_as);
    p = put32(p, f->dst_as);
    p = put32(p, f->mpls);
    p = put32(p, f->domain);
    p = put32(p, f->sampling);
    p = put16(p, f->src_port);
    p = put16(p, f->dst_port);
    p = put16(p, f->vlan);
    *p++ = f->proto;
    *p++ = f->tcp_flags;
    *p++ = f->tos;
    *p++ = f->direction;
    *p++ = f->fw_event;
    p = put_addr(p, &f->xlate_src_addr);
    p = put_addr(p, &f->xlate_dst_addr);
    p = put16(p, f->xlate_src_port);
    p = put16(p, f->xlate_dst_port);
    p = put64(p, f->rev_packets);
    p = put64(p, f->rev_bytes);
    p = put32(p, f->extra_len);
    assert(p - buf == FL_CANON_FIXED);

    if (f->extra_len > 0) {
        memcpy(p, f->extra, f->extra_len);
    }
    return (int)(FL_CANON_FIXED + f->extra_len);
}
