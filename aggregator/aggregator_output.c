/*
 * What a query prints: the time-ordered, bounded set of matching flows
 * gathered from the scan threads, and the four output formats (an
 * nfdump-like table, CSV, NDJSON and one JSON array).
 */
#include "aggregator.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- result sets ------------------------------------------------------- */

struct fl_rows {
    pthread_mutex_t lock;
    struct fl_row *v;
    size_t n;
    size_t cap;
    uint64_t limit;    /* > 0: keep the first limit by time (max-heap) */
    uint64_t max_rows; /* without a limit: fail past this */
    int error;         /* first failure; the set is then closed */
};

int
fl_rows_new(uint64_t limit, uint64_t max_rows, struct fl_rows **out)
{
    struct fl_rows *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL) {
        return FL_ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->limit = limit;
    r->max_rows = max_rows;
    *out = r;
    return FL_OK;
}

void
fl_rows_free(struct fl_rows *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free((void *)r->v[i].flow.extra);
    }
    free(r->v);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int
cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

int
fl_row_cmp(const struct fl_row *a, const struct fl_row *b)
{
    const struct fl_flow *x = &a->flow;
    const struct fl_flow *y = &b->flow;
    int c;

    if ((c = cmp_u64(x->time_start, y->time_start)) != 0 ||
        (c = cmp_u64(x->time_end, y->time_end)) != 0 ||
        (c = fl_addr_cmp(&x->src_addr, &y->src_addr)) != 0 ||
        (c = fl_addr_cmp(&x->dst_addr, &y->dst_addr)) != 0 ||
        (c = cmp_u64(x->src_port, y->src_port)) != 0 ||
        (c = cmp_u64(x->dst_port, y->dst_port)) != 0 ||
        (c = cmp_u64(x->proto, y->proto)) != 0 ||
        (c = cmp_u64(x->packets, y->packets)) != 0 ||
        (c = cmp_u64(x->bytes, y->bytes)) != 0 ||
        (c = fl_addr_cmp(&x->exporter, &y->exporter)) != 0) {
        return c;
    }
    return strcmp(a->sensor, b->sensor);
}

static int
row_qsort_cmp(const void *a, const void *b)
{
    return fl_row_cmp(a, b);
}

static void
row_swap(struct fl_row *a, struct fl_row *b)
{
    struct fl_row t = *a;

    *a = *b;
    *b = t;
}

/* The max-heap of the -c limit: v[0] is the latest flow kept. */
static void
heap_up(struct fl_row *v, size_t i)
{
    while (i > 0 && fl_row_cmp(&v[(i - 1) / 2], &v[i]) < 0) {
        row_swap(&v[(i - 1) / 2], &v[i]);
        i = (i - 1) / 2;
    }
}

static void
heap_down(struct fl_row *v, size_t n, size_t i)
{
    for (;;) {
        size_t big = i;
        size_t l = 2 * i + 1;

        if (l < n && fl_row_cmp(&v[l], &v[big]) > 0) {
            big = l;
        }
        if (l + 1 < n && fl_row_cmp(&v[l + 1], &v[big]) > 0) {
            big = l + 1;
        }
        if (big == i) {
            return;
        }
        row_swap(&v[i], &v[big]);
        i = big;
    }
}

/* The sensor name into a row, cut to the row's field as before. */
static void
row_sensor(struct fl_row *row, const char *sensor)
{
    size_t len = sensor != NULL ? strnlen(sensor, sizeof(row->sensor) - 1) : 0;

    if (len > 0) {
        memcpy(row->sensor, sensor, len);
    }
    row->sensor[len] = '\0';
}

/* Copies flow into row, taking its own copy of the borrowed extra. */
static int
row_fill(struct fl_row *row, const struct fl_flow *flow, const char *sensor)
{
    uint8_t *extra = NULL;

    if (flow->extra_len > 0) {
        extra = malloc(flow->extra_len);
        if (extra == NULL) {
            return FL_ENOMEM;
        }
        memcpy(extra, flow->extra, flow->extra_len);
    }
    row->flow = *flow;
    row->flow.extra = extra;
    row_sensor(row, sensor);
    return FL_OK;
}

static int
rows_grow(struct fl_rows *r, size_t ceiling)
{
    size_t ncap = r->cap == 0 ? 1024 : r->cap * 2;
    struct fl_row *grown;

    if (ncap > ceiling) {
        ncap = ceiling;
    }
    grown = realloc(r->v, ncap * sizeof(*grown));
    if (grown == NULL) {
        return FL_ENOMEM;
    }
    r->v = grown;
    r->cap = ncap;
    return FL_OK;
}

static int
rows_add_locked(struct fl_rows *r, const struct fl_flow *flow,
                const char *sensor)
{
    struct fl_row row;
    int rc;

    if (r->limit > 0 && r->n == r->limit) {
        /* Full heap: a flow later than the latest kept is not wanted,
         * and is refused before its extra is copied. */
        row.flow = *flow;
        row_sensor(&row, sensor);
        if (fl_row_cmp(&row, &r->v[0]) >= 0) {
            return FL_OK;
        }
        if (row_fill(&row, flow, sensor) != FL_OK) {
            return FL_ENOMEM;
        }
        free((void *)r->v[0].flow.extra);
        r->v[0] = row;
        heap_down(r->v, r->n, 0);
        return FL_OK;
    }
    if (r->limit == 0 && r->n == r->max_rows) {
        return FL_ELIMIT;
    }
    if (r->n == r->cap) {
        rc = rows_grow(r, r->limit > 0 ? r->limit : r->max_rows);
        if (rc != FL_OK) {
            return rc;
        }
    }
    rc = row_fill(&r->v[r->n], flow, sensor);
    if (rc != FL_OK) {
        return rc;
    }
    r->n++;
    if (r->limit > 0) {
        heap_up(r->v, r->n - 1);
    }
    return FL_OK;
}

int
fl_rows_add(struct fl_rows *r, const struct fl_flow *flow, const char *sensor)
{
    int rc;

    pthread_mutex_lock(&r->lock);
    rc = r->error != FL_OK ? r->error : rows_add_locked(r, flow, sensor);
    r->error = rc;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int
fl_rows_status(struct fl_rows *r)
{
    int rc;

    pthread_mutex_lock(&r->lock);
    rc = r->error;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

const struct fl_row *
fl_rows_sorted(struct fl_rows *r, size_t *n)
{
    pthread_mutex_lock(&r->lock);
    if (r->n > 0) {
        qsort(r->v, r->n, sizeof(*r->v), row_qsort_cmp);
    }
    *n = r->n;
    pthread_mutex_unlock(&r->lock);
    return r->v;
}

/* ---- formats ----------------------------------------------------------- */

int
fl_format_parse(const char *s, enum fl_format *out)
{
    static const struct {
        const char *name;
        enum fl_format fmt;
    } names[] = {
        {"table", FL_FORMAT_TABLE},
        {"csv", FL_FORMAT_CSV},
        {"ndjson", FL_FORMAT_NDJSON},
        {"json", FL_FORMAT_JSON},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].fmt;
            return FL_OK;
        }
    }
    return FL_EINVAL;
}

/* Table column widths, widened by fl_output_measure. */
struct widths {
    int src;
    int dst;
    int packets;
    int bytes;
};

struct fl_output {
    FILE *fp;
    enum fl_format fmt;
    int32_t tz;
    bool quiet;
    bool failed;
    uint64_t flows;
    uint64_t packets;
    uint64_t bytes;
    struct widths w;
};

int
fl_output_new(FILE *fp, enum fl_format fmt, int32_t tz_minutes, bool quiet,
              struct fl_output **out)
{
    struct fl_output *o = calloc(1, sizeof(*o));

    *out = NULL;
    if (o == NULL) {
        return FL_ENOMEM;
    }
    o->fp = fp;
    o->fmt = fmt;
    o->tz = tz_minutes;
    o->quiet = quiet;
    /* nfdump's widths for IPv4; IPv6 rows widen them. */
    o->w = (struct widths){21, 21, 8, 8};
    *out = o;
    return FL_OK;
}

void
fl_output_free(struct fl_output *o)
{
    free(o);
}

static void emit(struct fl_output *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
emit(struct fl_output *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vfprintf(o->fp, fmt, ap) < 0) {
        o->failed = true;
    }
    va_end(ap);
}

void
fl_output_human(uint64_t v, char buf[32])
{
    static const struct {
        double scale;
        const char *unit;
    } units[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if ((double)v >= units[i].scale) {
            snprintf(buf, 32, "%.1f %s", (double)v / units[i].scale,
                     units[i].unit);
            return;
        }
    }
    snprintf(buf, 32, "%llu", (unsigned long long)v);
}

/* "a.b.c.d:port" or "v6.port" (nfdump's separator for IPv6). */
static void
addr_port(const struct fl_addr *a, uint16_t port, char *buf, size_t cap)
{
    char text[FL_ADDR_STRLEN];

    fl_addr_format(a, text);
    snprintf(buf, cap, "%s%c%u", text, fl_addr_is_v4(a) ? ':' : '.', port);
}

static const char *
proto_name(uint8_t proto, char buf[8])
{
    switch (proto) {
    case 1:
        return "ICMP";
    case 6:
        return "TCP";
    case 17:
        return "UDP";
    case 47:
        return "GRE";
    case 50:
        return "ESP";
    case 58:
        return "ICMP6";
    case 132:
        return "SCTP";
    default:
        snprintf(buf, 8, "%u", proto);
        return buf;
    }
}

void
fl_output_measure(struct fl_output *o, const struct fl_flow *f)
{
    char buf[FL_ADDR_STRLEN + 8];
    char num[32];
    int n;

    addr_port(&f->src_addr, f->src_port, buf, sizeof(buf));
    n = (int)strlen(buf);
    o->w.src = n > o->w.src ? n : o->w.src;
    addr_port(&f->dst_addr, f->dst_port, buf, sizeof(buf));
    n = (int)strlen(buf);
    o->w.dst = n > o->w.dst ? n : o->w.dst;
    fl_output_human(f->packets, num);
    n = (int)strlen(num);
    o->w.packets = n > o->w.packets ? n : o->w.packets;
    fl_output_human(f->bytes, num);
    n = (int)strlen(num);
    o->w.bytes = n > o->w.bytes ? n : o->w.bytes;
}

static void
table_header(struct fl_output *o)
{
    emit(o, "%-23s %9s %-5s %*s    %-*s %*s %*s %5s\n", "Date first seen",
         "Duration", "Proto", o->w.src, "Src IP Addr:Port", o->w.dst,
         "Dst IP Addr:Port", o->w.packets, "Packets", o->w.bytes, "Bytes",
         "Flows");
}

/* "2026-12-03 10:00:00.123" in the --tz offset. */
static void
table_date(uint64_t ms, int32_t tz, char buf[64])
{
    int64_t shifted = (int64_t)ms + (int64_t)tz * 60000;
    time_t secs = (time_t)((shifted < 0 ? 0 : shifted) / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(buf, 64, "%04d-%02d-%02d %02d:%02d:%02d.%03u", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000));
}

static void
table_row(struct fl_output *o, const struct fl_flow *f)
{
    char date[64];
    char proto[8];
    char src[FL_ADDR_STRLEN + 8];
    char dst[FL_ADDR_STRLEN + 8];
    char packets[32];
    char bytes[32];
    uint64_t dur =
        f->time_end > f->time_start ? f->time_end - f->time_start : 0;

    table_date(f->time_start, o->tz, date);
    addr_port(&f->src_addr, f->src_port, src, sizeof(src));
    addr_port(&f->dst_addr, f->dst_port, dst, sizeof(dst));
    fl_output_human(f->packets, packets);
    fl_output_human(f->bytes, bytes);
    emit(o, "%-23s %5llu.%03u %-5s %*s -> %-*s %*s %*s %5u\n", date,
         (unsigned long long)(dur / 1000), (unsigned)(dur % 1000),
         proto_name(f->proto, proto), o->w.src, src, o->w.dst, dst,
         o->w.packets, packets, o->w.bytes, bytes, 1);
}

/* The DESIGN.md names, in the order of the flow record. */
static const char csv_header[] =
    "time_start,time_end,src_addr,dst_addr,src_port,dst_port,proto,"
    "tcp_flags,tos,packets,bytes,in_if,out_if,src_as,dst_as,next_hop,vlan,"
    "mpls,direction,exporter,domain,sampling,sensor\n";

/* RFC 4180: a field with a comma, quote or line break is quoted and its
 * quotes doubled. */
static void
csv_field(struct fl_output *o, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        emit(o, "%s%s", s, last ? "\n" : ",");
        return;
    }
    emit(o, "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            emit(o, "\"\"");
        } else {
            emit(o, "%c", *s);
        }
    }
    emit(o, "\"%s", last ? "\n" : ",");
}

/* A CSV line is built in memory with plain digit loops: printf's
 * format parsing cost more than the rest of a row. */
struct line {
    char b[1024];
    size_t n;
};

static void
line_str(struct line *l, const char *s)
{
    size_t len = strlen(s);

    if (len > sizeof(l->b) - l->n) {
        len = sizeof(l->b) - l->n;
    }
    memcpy(l->b + l->n, s, len);
    l->n += len;
}

/* v in decimal, then sep. */
static void
line_u64(struct line *l, uint64_t v, char sep)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    tmp[--i] = sep;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    if (sizeof(tmp) - i <= sizeof(l->b) - l->n) {
        memcpy(l->b + l->n, tmp + i, sizeof(tmp) - i);
        l->n += sizeof(tmp) - i;
    }
}

static void
line_addr(struct line *l, const struct fl_addr *a)
{
    char buf[FL_ADDR_STRLEN];

    line_str(l, fl_addr_format(a, buf));
    line_str(l, ",");
}

static void
csv_row(struct fl_output *o, const struct fl_flow *f, const char *sensor)
{
    char t[FL_TIME_STRLEN];
    struct line l = {.n = 0};

    fl_time_format(f->time_start, t);
    line_str(&l, t);
    line_str(&l, ",");
    fl_time_format(f->time_end, t);
    line_str(&l, t);
    line_str(&l, ",");
    line_addr(&l, &f->src_addr);
    line_addr(&l, &f->dst_addr);
    line_u64(&l, f->src_port, ',');
    line_u64(&l, f->dst_port, ',');
    line_u64(&l, f->proto, ',');
    line_u64(&l, f->tcp_flags, ',');
    line_u64(&l, f->tos, ',');
    line_u64(&l, f->packets, ',');
    line_u64(&l, f->bytes, ',');
    line_u64(&l, f->in_if, ',');
    line_u64(&l, f->out_if, ',');
    line_u64(&l, f->src_as, ',');
    line_u64(&l, f->dst_as, ',');
    if (fl_addr_is_zero(&f->next_hop)) {
        line_str(&l, ",");
    } else {
        line_addr(&l, &f->next_hop);
    }
    line_u64(&l, f->vlan, ',');
    line_u64(&l, f->mpls, ',');
    line_u64(&l, f->direction, ',');
    line_addr(&l, &f->exporter);
    line_u64(&l, f->domain, ',');
    line_u64(&l, f->sampling, ',');
    if (fwrite(l.b, 1, l.n, o->fp) != l.n) {
        o->failed = true;
    }
    csv_field(o, sensor != NULL ? sensor : "", true);
}

int
fl_output_begin(struct fl_output *o)
{
    switch (o->fmt) {
    case FL_FORMAT_TABLE:
        if (!o->quiet) {
            table_header(o);
        }
        break;
    case FL_FORMAT_CSV:
        emit(o, "%s", csv_header);
        break;
    case FL_FORMAT_JSON:
        emit(o, "[");
        break;
    case FL_FORMAT_NDJSON:
        break;
    }
    return o->failed ? FL_EIO : FL_OK;
}

int
fl_output_flow(struct fl_output *o, const struct fl_flow *f, const char *sensor)
{
    char line[FL_FLOW_NDJSON_MAX];
    int n;

    o->flows++;
    o->packets += f->packets;
    o->bytes += f->bytes;
    switch (o->fmt) {
    case FL_FORMAT_TABLE:
        table_row(o, f);
        break;
    case FL_FORMAT_CSV:
        csv_row(o, f, sensor);
        break;
    case FL_FORMAT_NDJSON:
    case FL_FORMAT_JSON:
        n = fl_flow_format_ndjson(f, sensor, line, sizeof(line));
        if (n < 0) {
            return n;
        }
        if (o->fmt == FL_FORMAT_NDJSON) {
            emit(o, "%s", line);
        } else {
            /* The object without its newline, one per line of the array. */
            emit(o, "%s\n%.*s", o->flows == 1 ? "" : ",", n - 1, line);
        }
        break;
    }
    return o->failed ? FL_EIO : FL_OK;
}

int
fl_output_end(struct fl_output *o)
{
    char packets[32];
    char bytes[32];

    if (o->fmt == FL_FORMAT_JSON) {
        emit(o, "%s]\n", o->flows > 0 ? "\n" : "");
    } else if (o->fmt == FL_FORMAT_TABLE && !o->quiet) {
        fl_output_human(o->packets, packets);
        fl_output_human(o->bytes, bytes);
        emit(o,
             "Summary: total flows: %llu, total bytes: %s, total packets: "
             "%s\n",
             (unsigned long long)o->flows, bytes, packets);
    }
    if (fflush(o->fp) != 0 || ferror(o->fp)) {
        o->failed = true;
    }
    return o->failed ? FL_EIO : FL_OK;
}
