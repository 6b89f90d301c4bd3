/*
 * The sensor's Prometheus endpoint (--metrics).  The decoder belongs to
 * the main thread, so the main loop renders the page and publishes a copy;
 * nng's HTTP threads only ever serve the latest copy under a mutex.
 */
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sensor_int.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct fl_metrics {
    nng_http_server *srv;
    pthread_mutex_t mu;
    char *page; /* guarded by mu */
    size_t len;
};

/* nng's callback: answers GET /metrics with the last published page. */
static void
serve(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    struct fl_metrics *m = nng_http_handler_get_data(h);
    nng_http_res *res;
    int rv;

    rv = nng_http_res_alloc(&res);
    if (rv != 0) {
        nng_aio_finish(aio, rv);
        return;
    }
    pthread_mutex_lock(&m->mu);
    rv = m->len > 0 ? nng_http_res_copy_data(res, m->page, m->len) : 0;
    pthread_mutex_unlock(&m->mu);
    if (rv == 0) {
        rv = nng_http_res_set_header(res, "Content-Type", CONTENT_TYPE);
    }
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

/*
 * "[ADDR:]PORT" to nng's URL.  An empty ADDR is every address: "[::]",
 * which Linux makes dual-stack, or "0.0.0.0" as the fallback (v4only).
 */
static int
make_url(const char *hostport, bool v4only, char *url, size_t cap)
{
    char host[64];
    uint16_t port;

    if (fl_parse_hostport(hostport, host, sizeof(host), &port) != FL_OK) {
        return FL_EINVAL;
    }
    if (host[0] == '\0') {
        snprintf(host, sizeof(host), "%s", v4only ? "0.0.0.0" : "::");
    }
    if (strchr(host, ':') != NULL) {
        snprintf(url, cap, "http://[%s]:%u/metrics", host, port);
    } else {
        snprintf(url, cap, "http://%s:%u/metrics", host, port);
    }
    return FL_OK;
}

/* Registers the handler and starts the server; nng error or 0. */
static int
start_server(struct fl_metrics *m, const nng_url *url)
{
    nng_http_handler *h;
    int rv;

    rv = nng_http_server_hold(&m->srv, url);
    if (rv != 0) {
        return rv;
    }
    rv = nng_http_handler_alloc(&h, "/metrics", serve);
    if (rv != 0) {
        return rv;
    }
    rv = nng_http_handler_set_data(h, m, NULL);
    if (rv == 0) {
        rv = nng_http_server_add_handler(m->srv, h);
    }
    if (rv != 0) {
        nng_http_handler_free(h);
        return rv;
    }
    return nng_http_server_start(m->srv);
}

/* One attempt at one URL; on failure the server is released again. */
static int
try_url(struct fl_metrics *m, const char *text)
{
    nng_url *url = NULL;
    int rv;

    rv = nng_url_parse(&url, text);
    if (rv == 0) {
        rv = start_server(m, url);
    }
    nng_url_free(url);
    if (rv != 0 && m->srv != NULL) {
        nng_http_server_release(m->srv);
        m->srv = NULL;
    }
    return rv;
}

int
fl_metrics_start(const char *hostport, struct fl_metrics **out, char *err,
                 size_t errlen)
{
    struct fl_metrics *m;
    char text[128];
    char v4text[128];
    const char *used;
    int rv;

    *out = NULL;
    if (make_url(hostport, false, text, sizeof(text)) != FL_OK ||
        make_url(hostport, true, v4text, sizeof(v4text)) != FL_OK) {
        snprintf(err, errlen, "metrics %s: expected [ADDR:]PORT", hostport);
        return FL_EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return FL_ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);

    used = text;
    rv = try_url(m, text);
    /* A host without IPv6 still serves on every IPv4 address. */
    if (rv != 0 && strcmp(text, v4text) != 0) {
        used = v4text;
        rv = try_url(m, v4text);
    }
    if (rv != 0) {
        snprintf(err, errlen, "metrics %s: %s", hostport, nng_strerror(rv));
        fl_metrics_stop(m);
        return FL_ENET;
    }
    fl_log(FL_LOG_INFO, "FL-SENSOR-METRICS", "serving metrics url=%s", used);
    *out = m;
    return FL_OK;
}

void
fl_metrics_stop(struct fl_metrics *m)
{
    if (m == NULL) {
        return;
    }
    if (m->srv != NULL) {
        nng_http_server_stop(m->srv);
        nng_http_server_release(m->srv);
    }
    pthread_mutex_destroy(&m->mu);
    free(m->page);
    free(m);
}

int
fl_metrics_publish(struct fl_metrics *m, const char *text, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    char *old;

    if (copy == NULL) {
        return FL_ENOMEM;
    }
    memcpy(copy, text, len);
    pthread_mutex_lock(&m->mu);
    old = m->page;
    m->page = copy;
    m->len = len;
    pthread_mutex_unlock(&m->mu);
    free(old);
    return FL_OK;
}

/* ---- rendering -------------------------------------------------------- */

/* The page being built; the first failure sticks. */
struct page {
    struct fl_str *out;
    int rc;
};

static void emit(struct page *pg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
emit(struct page *pg, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (pg->rc != FL_OK) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        pg->rc = FL_ELIMIT;
        return;
    }
    pg->rc = fl_str_append(pg->out, line, (size_t)n);
}

static void
emit_header(struct page *pg, const char *name, const char *type,
            const char *help)
{
    emit(pg, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct sources {
    struct fl_source_stats *v;
    size_t n;
    size_t cap;
    int rc;
};

static void
collect_source(void *arg, const struct fl_source_stats *s)
{
    struct sources *all = arg;

    if (all->n == all->cap) {
        size_t cap = all->cap > 0 ? all->cap * 2 : 64;
        struct fl_source_stats *v = realloc(all->v, cap * sizeof(*v));

        if (v == NULL) {
            all->rc = FL_ENOMEM;
            return;
        }
        all->v = v;
        all->cap = cap;
    }
    all->v[all->n++] = *s;
}

/* Stable order, so that successive scrapes line up. */
static int
cmp_source(const void *a, const void *b)
{
    const struct fl_source_stats *x = a;
    const struct fl_source_stats *y = b;
    int c = fl_addr_cmp(&x->exporter, &y->exporter);

    if (c != 0) {
        return c;
    }
    return x->domain < y->domain ? -1 : x->domain > y->domain;
}

enum source_field {
    SF_DATAGRAMS,
    SF_FLOWS,
    SF_BYTES,
    SF_SEQ_GAPS,
    SF_SEQ_LOST,
};

static uint64_t
source_value(const struct fl_source_stats *s, enum source_field f)
{
    switch (f) {
    case SF_DATAGRAMS:
        return s->datagrams;
    case SF_FLOWS:
        return s->flows;
    case SF_BYTES:
        return s->bytes;
    case SF_SEQ_GAPS:
        return s->seq_gaps;
    case SF_SEQ_LOST:
        return s->seq_lost;
    }
    return 0;
}

static const struct {
    const char *name;
    enum source_field field;
    const char *help;
} source_families[] = {
    {"fl0wer_sensor_datagrams_total", SF_DATAGRAMS,
     "Datagrams (v9 and IPFIX: export messages) decoded per source."},
    {"fl0wer_sensor_flows_total", SF_FLOWS, "Flow records decoded per source."},
    {"fl0wer_sensor_bytes_total", SF_BYTES, "Datagram bytes per source."},
    {"fl0wer_sensor_sequence_gaps_total", SF_SEQ_GAPS,
     "Times the exporter's sequence number jumped."},
    {"fl0wer_sensor_sequence_lost_total", SF_SEQ_LOST,
     "Units (flows, packets or records) missing by sequence numbers."},
};

#define N_SOURCE_FAMILIES (sizeof(source_families) / sizeof(source_families[0]))

static void
render_family(struct page *pg, size_t fam, const struct sources *all)
{
    const char *name = source_families[fam].name;

    emit_header(pg, name, "counter", source_families[fam].help);
    for (size_t i = 0; i < all->n; i++) {
        char addr[FL_ADDR_STRLEN];
        const struct fl_source_stats *s = &all->v[i];
        uint64_t v = source_value(s, source_families[fam].field);

        emit(pg, "%s{exporter=\"%s\",domain=\"%u\"} %llu\n", name,
             fl_addr_format(&s->exporter, addr), s->domain,
             (unsigned long long)v);
    }
}

static void
render_totals(struct page *pg, const struct fl_decoder_stats *st,
              const struct fl_metrics_extra *x)
{
    emit_header(pg, "fl0wer_sensor_info", "gauge", "The sensor's name.");
    emit(pg, "fl0wer_sensor_info{sensor=\"%s\"} 1\n", x->sensor);
    emit_header(pg, "fl0wer_sensor_kernel_drops_total", "counter",
                "Datagrams the kernel dropped for lack of receive buffer "
                "room.");
    emit(pg, "fl0wer_sensor_kernel_drops_total %llu\n",
         (unsigned long long)x->kernel_drops);
    emit_header(pg, "fl0wer_sensor_decode_errors_total", "counter",
                "Decode errors by kind.");
    for (int k = 0; k < FL_DE_COUNT; k++) {
        emit(pg, "fl0wer_sensor_decode_errors_total{kind=\"%s\"} %llu\n",
             fl_decode_error_name((enum fl_decode_error)k),
             (unsigned long long)st->errors[k]);
    }
    emit_header(pg, "fl0wer_sensor_sources", "gauge",
                "Exporter and observation domain pairs known.");
    emit(pg, "fl0wer_sensor_sources %u\n", st->sources);
    emit_header(pg, "fl0wer_sensor_templates", "gauge", "Templates known.");
    emit(pg, "fl0wer_sensor_templates %u\n", st->templates);
    emit_header(pg, "fl0wer_sensor_pending_datagrams", "gauge",
                "Datagrams held waiting for a template.");
    emit(pg, "fl0wer_sensor_pending_datagrams %u\n", st->pending);
}

int
fl_metrics_render(const struct fl_decoder *d, const struct fl_metrics_extra *x,
                  struct fl_str *out)
{
    struct page pg = {out, FL_OK};
    struct sources all = {0};
    struct fl_decoder_stats st;

    out->len = 0;
    fl_decoder_get_stats(d, &st);
    fl_decoder_each_source(d, collect_source, &all);
    if (all.rc != FL_OK) {
        free(all.v);
        return all.rc;
    }
    if (all.n > 1) {
        qsort(all.v, all.n, sizeof(*all.v), cmp_source);
    }

    render_totals(&pg, &st, x);
    for (size_t f = 0; f < N_SOURCE_FAMILIES; f++) {
        render_family(&pg, f, &all);
    }
    free(all.v);
    return pg.rc;
}
