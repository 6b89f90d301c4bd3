/*
 * fl0wer-gen's encoder: deterministic flows and NetFlow v5, v9 and IPFIX
 * messages written from the RFCs (3954, 7011), independent of the
 * sensor's decoder so that each checks the other.
 */
#include "gen.h"

#include <assert.h>
#include <string.h>

/* Room for flows whose start and end straddle no more than this. */
#define GEN_MAX_DURATION_MS 120000
/* A day of uptime before the window, so v5 / v9 relative times fit. */
#define GEN_UPTIME_BEFORE_MS 86400000u

#define V5_HEADER_LEN 24
#define V5_RECORD_LEN 48
#define V5_MAX_RECORDS 30
#define V9_HEADER_LEN 20
#define IPFIX_HEADER_LEN 16
#define SET_HEADER_LEN 4
#define TEMPLATE_V4 256
#define TEMPLATE_V6 257

/* splitmix64: cheap, well mixed, and the same on every platform. */
static uint64_t
draw(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
make_addrs(struct fl_flow *f, bool v6, uint64_t *s)
{
    uint64_t r = draw(s);
    uint8_t b[16];

    if (!v6) {
        fl_addr_from_v4(&f->src_addr, 0x0a000000u | (uint32_t)(r & 0xffffff));
        fl_addr_from_v4(&f->dst_addr, (uint32_t)(((r >> 24) % 223 + 1) << 24) |
                                          (uint32_t)((r >> 32) & 0xffffff));
        fl_addr_from_v4(&f->next_hop,
                        0xc0a80000u | (uint32_t)((r >> 56) << 8) | 1u);
        return;
    }
    /* Documentation prefix for sources, a global-looking one for peers. */
    fl_put_be32(b, 0x20010db8);
    fl_put_be32(b + 4, (uint32_t)r);
    fl_put_be64(b + 8, draw(s));
    fl_addr_from_v6(&f->src_addr, b);
    fl_put_be32(b, 0x2a000000u | (uint32_t)((r >> 32) & 0xffff));
    fl_put_be32(b + 4, (uint32_t)(r >> 16));
    fl_put_be64(b + 8, draw(s));
    fl_addr_from_v6(&f->dst_addr, b);
    fl_put_be64(b, 0xfe80000000000000ULL);
    fl_put_be64(b + 8, draw(s) | 1);
    fl_addr_from_v6(&f->next_hop, b);
}

static void
make_ports(struct fl_flow *f, bool v6, uint64_t *s)
{
    static const uint16_t services[] = {53, 80, 443, 123, 22, 25, 3389, 8080};
    static const uint8_t icmp4[] = {0, 3, 8, 11};
    static const uint8_t icmp6[] = {128, 129, 1, 3};
    uint64_t r = draw(s);
    uint32_t pick = (uint32_t)(r % 100);

    if (pick < 85) {
        f->proto = pick < 55 ? 6 : 17;
        f->src_port = (uint16_t)(1024 + (r >> 8) % 64512);
        f->dst_port =
            (r >> 24) % 3 == 0 ? (uint16_t)(r >> 32) : services[(r >> 40) % 8];
        f->tcp_flags = f->proto == 6 ? (uint8_t)(r >> 48) : 0;
    } else if (pick < 92) {
        /* ICMP travels as type * 256 + code in the destination port. */
        f->proto = v6 ? 58 : 1;
        f->dst_port = (uint16_t)(((v6 ? icmp6 : icmp4)[(r >> 8) % 4] << 8) |
                                 ((r >> 16) % 4));
    } else {
        f->proto = 47;
    }
    f->tos = (uint8_t)(r >> 56);
}

static void
make_counters(struct fl_flow *f, bool v5, uint64_t *s)
{
    uint64_t r = draw(s);

    /* A few elephants, sized to the widest counter each version has. */
    if (r % 100 < 2) {
        f->packets =
            v5 ? 100000 + (r >> 8) % 900000 : 1000000 + (r >> 8) % 3000000000u;
    } else {
        f->packets = 1 + (r >> 8) % 1000;
    }
    f->bytes = f->packets * (40 + (r >> 40) % 1461);
}

static void
make_topology(struct fl_flow *f, bool v5, uint64_t *s)
{
    uint64_t r = draw(s);
    uint64_t q = draw(s);

    if (v5) {
        f->in_if = (uint16_t)r;
        f->out_if = (uint16_t)(r >> 16);
        f->src_as = (uint16_t)(r >> 32);
        f->dst_as = (uint16_t)(r >> 48);
        return;
    }
    f->in_if = (r & 1) ? (uint32_t)(r >> 1) % 1000 : (uint32_t)(r >> 32);
    f->out_if = (r & 2) ? (uint32_t)(q % 1000) : (uint32_t)(q >> 32);
    f->src_as = (uint32_t)(q >> 8) % 70000;
    f->dst_as = (r & 4) ? (uint32_t)(q >> 16) % 65536 : (uint32_t)(q >> 24);
    f->vlan = (uint16_t)((r >> 8) % 4096);
    f->direction = (uint8_t)((r >> 3) & 1);
}

static void
make_times(struct fl_flow *f, const struct gen_plan *plan, uint64_t *s)
{
    uint64_t r = draw(s);
    uint64_t dur = r % (GEN_MAX_DURATION_MS + 1);

    if (dur > plan->window_ms) {
        dur = plan->window_ms;
    }
    f->time_start =
        plan->window_start + (r >> 20) % (plan->window_ms - dur + 1);
    f->time_end = f->time_start + dur;
}

void
gen_flow_make(const struct gen_plan *plan, uint64_t index, struct gen_flow *g)
{
    struct fl_flow *f = &g->f;
    uint64_t seed = plan->seed;
    /* Flows' draw streams start far apart, whatever their indexes. */
    uint64_t s = index * 0xd1b54a32d192ed03ULL ^ draw(&seed);
    bool v5 = plan->version == 5;
    bool v6;

    v6 = !v5 && draw(&s) % 100 < plan->v6_share;
    fl_flow_clear(f);
    make_addrs(f, v6, &s);
    make_ports(f, v6, &s);
    make_counters(f, v5, &s);
    make_topology(f, v5, &s);
    make_times(f, plan, &s);
    g->src_mask = 0;
    g->dst_mask = 0;
    if (v5) {
        uint64_t r = draw(&s);

        g->src_mask = (uint8_t)(8 + r % 25);
        g->dst_mask = (uint8_t)(8 + (r >> 8) % 25);
    }
}

void
gen_clock_init(struct gen_clock *clk, uint64_t window_end, uint64_t window_ms)
{
    /* A whole second, because v9 and IPFIX headers carry seconds only. */
    clk->export_ms = (window_end / 1000 + 1) * 1000;
    clk->uptime_ms = GEN_UPTIME_BEFORE_MS +
                     (uint32_t)(clk->export_ms - window_end + window_ms);
}

/* ---- templates -------------------------------------------------------- */

struct gen_field {
    uint16_t id;
    uint16_t len;
};

/* Same order for every template; v9 keeps the classic widths where it has
 * them (1-byte flags, 4-byte packets), IPFIX the IANA ones. */
static const struct gen_field v9_v4[] = {
    {8, 4},  {12, 4}, {7, 2},  {11, 2}, {4, 1},  {5, 1},
    {6, 1},  {2, 4},  {1, 8},  {10, 4}, {14, 4}, {16, 4},
    {17, 4}, {15, 4}, {58, 2}, {61, 1}, {22, 4}, {21, 4},
};
static const struct gen_field v9_v6[] = {
    {27, 16}, {28, 16}, {7, 2},  {11, 2}, {4, 1},  {5, 1},
    {6, 1},   {2, 4},   {1, 8},  {10, 4}, {14, 4}, {16, 4},
    {17, 4},  {62, 16}, {58, 2}, {61, 1}, {22, 4}, {21, 4},
};
static const struct gen_field ipfix_v4[] = {
    {8, 4},  {12, 4}, {7, 2},  {11, 2}, {4, 1},   {5, 1},
    {6, 2},  {2, 8},  {1, 8},  {10, 4}, {14, 4},  {16, 4},
    {17, 4}, {15, 4}, {58, 2}, {61, 1}, {152, 8}, {153, 8},
};
static const struct gen_field ipfix_v6[] = {
    {27, 16}, {28, 16}, {7, 2},  {11, 2}, {4, 1},   {5, 1},
    {6, 2},   {2, 8},   {1, 8},  {10, 4}, {14, 4},  {16, 4},
    {17, 4},  {62, 16}, {58, 2}, {61, 1}, {152, 8}, {153, 8},
};

#define NFIELDS (sizeof(v9_v4) / sizeof(v9_v4[0]))

static const struct gen_field *
template_fields(uint8_t version, uint16_t tid)
{
    if (version == 9) {
        return tid == TEMPLATE_V6 ? v9_v6 : v9_v4;
    }
    return tid == TEMPLATE_V6 ? ipfix_v6 : ipfix_v4;
}

static size_t
record_len(const struct gen_field *fields)
{
    size_t n = 0;

    for (size_t i = 0; i < NFIELDS; i++) {
        n += fields[i].len;
    }
    return n;
}

static size_t
align4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

static size_t
header_len(uint8_t version)
{
    if (version == 5) {
        return V5_HEADER_LEN;
    }
    return version == 9 ? V9_HEADER_LEN : IPFIX_HEADER_LEN;
}

void
gen_msg_begin(struct gen_msg *m, uint8_t version, const struct gen_clock *clk,
              uint8_t *buf, size_t cap, uint32_t max_records)
{
    memset(m, 0, sizeof(*m));
    m->version = version;
    m->clk = clk;
    m->buf = buf;
    m->cap = cap;
    m->len = header_len(version);
    m->max_records = max_records;
    if (version == 5 && (max_records == 0 || max_records > V5_MAX_RECORDS)) {
        m->max_records = V5_MAX_RECORDS;
    }
}

/* Ends the open set: v9 pads flowsets to four bytes, IPFIX does not pad. */
static void
close_set(struct gen_msg *m)
{
    if (m->set_start == 0) {
        return;
    }
    if (m->version == 9) {
        size_t padded = align4(m->len);

        memset(m->buf + m->len, 0, padded - m->len);
        m->len = padded;
    }
    fl_put_be16(m->buf + m->set_start + 2, (uint16_t)(m->len - m->set_start));
    m->set_start = 0;
}

int
gen_msg_add_templates(struct gen_msg *m)
{
    static const uint16_t tids[] = {TEMPLATE_V4, TEMPLATE_V6};
    size_t need = SET_HEADER_LEN + 2 * (4 + NFIELDS * 4);
    size_t start;

    if (m->version == 5) {
        return FL_OK;
    }
    close_set(m);
    if (m->len + need > m->cap) {
        return FL_ELIMIT;
    }
    start = m->len;
    fl_put_be16(m->buf + start, m->version == 9 ? 0 : 2);
    fl_put_be16(m->buf + start + 2, (uint16_t)need);
    m->len += SET_HEADER_LEN;
    for (size_t t = 0; t < 2; t++) {
        const struct gen_field *fields = template_fields(m->version, tids[t]);

        fl_put_be16(m->buf + m->len, tids[t]);
        fl_put_be16(m->buf + m->len + 2, (uint16_t)NFIELDS);
        m->len += 4;
        for (size_t i = 0; i < NFIELDS; i++) {
            fl_put_be16(m->buf + m->len, fields[i].id);
            fl_put_be16(m->buf + m->len + 2, fields[i].len);
            m->len += 4;
        }
    }
    m->count += 2;
    return FL_OK;
}

/* v5 and v9 times count ms since the exporter booted. */
static uint32_t
uptime_at(const struct gen_clock *clk, uint64_t ms)
{
    return (uint32_t)(ms - (clk->export_ms - clk->uptime_ms));
}

/*
 * Writes f in exactly the field order and widths of the tables above,
 * without walking them: this is the hot path of a 3 Mflow/s run.
 * test_gen_tshark.py decodes the result with the templates to prove the
 * two agree.  Returns the bytes written.
 */
static size_t
put_record(uint8_t *p, uint8_t version, const struct fl_flow *f,
           const struct gen_clock *clk)
{
    bool v6 = !fl_addr_is_v4(&f->src_addr);
    size_t alen = v6 ? 16 : 4;
    size_t skip = v6 ? 0 : 12; /* IPv4 is the tail of the mapped form */
    uint8_t *q = p;

    memcpy(q, f->src_addr.b + skip, alen);
    memcpy(q + alen, f->dst_addr.b + skip, alen);
    q += 2 * alen;
    fl_put_be16(q, f->src_port);
    fl_put_be16(q + 2, f->dst_port);
    q[4] = f->proto;
    q[5] = f->tos;
    q += 6;
    if (version == 9) {
        q[0] = f->tcp_flags;
        fl_put_be32(q + 1, (uint32_t)f->packets);
        q += 5;
    } else {
        fl_put_be16(q, f->tcp_flags);
        fl_put_be64(q + 2, f->packets);
        q += 10;
    }
    fl_put_be64(q, f->bytes);
    fl_put_be32(q + 8, f->in_if);
    fl_put_be32(q + 12, f->out_if);
    fl_put_be32(q + 16, f->src_as);
    fl_put_be32(q + 20, f->dst_as);
    q += 24;
    memcpy(q, f->next_hop.b + skip, alen);
    q += alen;
    fl_put_be16(q, f->vlan);
    q[2] = f->direction;
    q += 3;
    if (version == 9) {
        fl_put_be32(q, uptime_at(clk, f->time_start));
        fl_put_be32(q + 4, uptime_at(clk, f->time_end));
        q += 8;
    } else {
        fl_put_be64(q, f->time_start);
        fl_put_be64(q + 8, f->time_end);
        q += 16;
    }
    return (size_t)(q - p);
}

static void
put_v5_record(uint8_t *p, const struct gen_flow *g, const struct gen_clock *clk)
{
    const struct fl_flow *f = &g->f;

    memcpy(p, f->src_addr.b + 12, 4);
    memcpy(p + 4, f->dst_addr.b + 12, 4);
    memcpy(p + 8, f->next_hop.b + 12, 4);
    fl_put_be16(p + 12, (uint16_t)f->in_if);
    fl_put_be16(p + 14, (uint16_t)f->out_if);
    fl_put_be32(p + 16, (uint32_t)f->packets);
    fl_put_be32(p + 20, (uint32_t)f->bytes);
    fl_put_be32(p + 24, uptime_at(clk, f->time_start));
    fl_put_be32(p + 28, uptime_at(clk, f->time_end));
    fl_put_be16(p + 32, f->src_port);
    fl_put_be16(p + 34, f->dst_port);
    p[36] = 0;
    p[37] = f->tcp_flags;
    p[38] = f->proto;
    p[39] = f->tos;
    fl_put_be16(p + 40, (uint16_t)f->src_as);
    fl_put_be16(p + 42, (uint16_t)f->dst_as);
    p[44] = g->src_mask;
    p[45] = g->dst_mask;
    fl_put_be16(p + 46, 0); /* padding */
}

static int
add_v5(struct gen_msg *m, const struct gen_flow *g)
{
    if (!fl_addr_is_v4(&g->f.src_addr)) {
        return FL_EINVAL;
    }
    if (m->records >= m->max_records || m->len + V5_RECORD_LEN > m->cap) {
        return FL_ELIMIT;
    }
    put_v5_record(m->buf + m->len, g, m->clk);
    m->len += V5_RECORD_LEN;
    m->records++;
    m->count++;
    return FL_OK;
}

int
gen_msg_add_flow(struct gen_msg *m, const struct gen_flow *g)
{
    const struct fl_flow *f = &g->f;
    uint16_t tid = fl_addr_is_v4(&f->src_addr) ? TEMPLATE_V4 : TEMPLATE_V6;
    const struct gen_field *fields = template_fields(m->version, tid);
    size_t rec = record_len(fields);
    bool new_set = m->set_start == 0 || m->set_id != tid;
    size_t at = m->len;
    size_t written;
    size_t end;

    if (m->version == 5) {
        return add_v5(m, g);
    }
    if (m->max_records != 0 && m->records >= m->max_records) {
        return FL_ELIMIT;
    }
    /* Room for a new set header (after padding the old set) and for the
     * padding this set will need once closed. */
    if (new_set) {
        at = (m->version == 9 ? align4(at) : at) + SET_HEADER_LEN;
    }
    end = m->version == 9 ? align4(at + rec) : at + rec;
    if (end > m->cap) {
        return FL_ELIMIT;
    }
    if (new_set) {
        close_set(m);
        m->set_start = m->len;
        m->set_id = tid;
        fl_put_be16(m->buf + m->len, tid);
        m->len += SET_HEADER_LEN;
    }
    written = put_record(m->buf + m->len, m->version, f, m->clk);
    assert(written == rec);
    m->len += written;
    m->records++;
    m->count++;
    return FL_OK;
}

static void
put_header(struct gen_msg *m, const struct gen_domain *dom)
{
    uint8_t *p = m->buf;
    uint32_t secs = (uint32_t)(m->clk->export_ms / 1000);

    fl_put_be16(p, m->version);
    if (m->version == 5) {
        fl_put_be16(p + 2, (uint16_t)m->count);
        fl_put_be32(p + 4, m->clk->uptime_ms);
        fl_put_be32(p + 8, secs);
        fl_put_be32(p + 12, (uint32_t)(m->clk->export_ms % 1000) * 1000000);
        fl_put_be32(p + 16, dom->seq);
        p[20] = 0;                /* engine type */
        p[21] = (uint8_t)dom->id; /* engine id */
        fl_put_be16(p + 22, 0);   /* unsampled */
    } else if (m->version == 9) {
        fl_put_be16(p + 2, (uint16_t)m->count);
        fl_put_be32(p + 4, m->clk->uptime_ms);
        fl_put_be32(p + 8, secs);
        fl_put_be32(p + 12, dom->seq);
        fl_put_be32(p + 16, dom->id);
    } else {
        fl_put_be16(p + 2, (uint16_t)m->len);
        fl_put_be32(p + 4, secs);
        fl_put_be32(p + 8, dom->seq);
        fl_put_be32(p + 12, dom->id);
    }
}

size_t
gen_msg_finish(struct gen_msg *m, struct gen_domain *dom)
{
    close_set(m);
    put_header(m, dom);
    /* RFC 3954 counts export packets, RFC 7011 data records, v5 flows. */
    dom->seq += m->version == 9 ? 1 : m->records;
    if (m->records > 0) {
        dom->messages++;
    }
    return m->len;
}
