/*
 * The canonical flow record: clearing and NDJSON text with the field
 * names of DESIGN.md.  The same text is what tests compare against.
 */
#include "common.h"

#include <string.h>

void
fl_flow_clear(struct fl_flow *f)
{
    memset(f, 0, sizeof(*f));
    f->sampling = 1;
}

/* Appends to a fixed buffer; remembers overflow instead of failing each
 * call, so the formatter reads as a straight list of fields. */
struct out {
    char *p;
    size_t len;
    size_t cap;
    bool full;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static void
put_addr(struct out *o, const char *name, const struct fl_addr *a)
{
    char text[FL_ADDR_STRLEN];

    put(o, ",\"%s\":\"%s\"", name, fl_addr_format(a, text));
}

static void
put_extra(struct out *o, const uint8_t *p, uint32_t len)
{
    struct fl_cursor c;
    uint32_t pen;
    uint16_t id;
    uint16_t n;
    const uint8_t *v;
    bool first = true;

    fl_cursor_init(&c, p, len);
    put(o, ",\"extra\":[");
    while (fl_cursor_u32(&c, &pen) && fl_cursor_u16(&c, &id) &&
           fl_cursor_u16(&c, &n) && fl_cursor_bytes(&c, n, &v)) {
        put(o, "%s{\"pen\":%u,\"id\":%u,\"hex\":\"", first ? "" : ",", pen, id);
        for (uint16_t i = 0; i < n; i++) {
            put(o, "%02x", v[i]);
        }
        put(o, "\"}");
        first = false;
    }
    put(o, "]");
}

static void
put_optional(struct out *o, const struct fl_flow *f)
{
    if (!fl_addr_is_zero(&f->next_hop)) {
        put_addr(o, "next_hop", &f->next_hop);
    }
    if (!fl_addr_is_zero(&f->xlate_src_addr)) {
        put_addr(o, "xlate_src_addr", &f->xlate_src_addr);
    }
    if (!fl_addr_is_zero(&f->xlate_dst_addr)) {
        put_addr(o, "xlate_dst_addr", &f->xlate_dst_addr);
    }
    if (f->xlate_src_port != 0 || f->xlate_dst_port != 0) {
        put(o, ",\"xlate_src_port\":%u,\"xlate_dst_port\":%u",
            f->xlate_src_port, f->xlate_dst_port);
    }
    if (f->rev_packets != 0 || f->rev_bytes != 0) {
        put(o, ",\"rev_packets\":%llu,\"rev_bytes\":%llu",
            (unsigned long long)f->rev_packets,
            (unsigned long long)f->rev_bytes);
    }
    if (f->fw_event != FL_FW_NONE) {
        put(o, ",\"fw_event\":%u", f->fw_event);
    }
    if (f->extra_len > 0) {
        put_extra(o, f->extra, f->extra_len);
    }
}

int
fl_flow_format_ndjson(const struct fl_flow *f, const char *sensor, char *buf,
                      size_t cap)
{
    struct out o = {buf, 0, cap, cap == 0};
    char start[FL_TIME_STRLEN];
    char end[FL_TIME_STRLEN];

    fl_time_format(f->time_start, start);
    fl_time_format(f->time_end, end);
    put(&o, "{\"time_start\":\"%s\",\"time_end\":\"%s\"", start, end);
    put_addr(&o, "src_addr", &f->src_addr);
    put_addr(&o, "dst_addr", &f->dst_addr);
    put(&o,
        ",\"src_port\":%u,\"dst_port\":%u,\"proto\":%u,\"tcp_flags\":%u"
        ",\"tos\":%u,\"packets\":%llu,\"bytes\":%llu",
        f->src_port, f->dst_port, f->proto, f->tcp_flags, f->tos,
        (unsigned long long)f->packets, (unsigned long long)f->bytes);
    put(&o,
        ",\"in_if\":%u,\"out_if\":%u,\"src_as\":%u,\"dst_as\":%u"
        ",\"vlan\":%u,\"mpls\":%u,\"direction\":%u",
        f->in_if, f->out_if, f->src_as, f->dst_as, f->vlan, f->mpls,
        f->direction);
    put_addr(&o, "exporter", &f->exporter);
    put(&o, ",\"domain\":%u,\"sampling\":%u", f->domain, f->sampling);
    if (sensor != NULL) {
        /* Sensor names are checked to be plain [A-Za-z0-9._-] at start. */
        put(&o, ",\"sensor\":\"%s\"", sensor);
    }
    put_optional(&o, f);
    put(&o, "}\n");
    return o.full ? FL_ELIMIT : (int)o.len;
}
