/*
 * The decoder's front door: limits, the table of sources keyed by
 * (exporter, domain), dispatch on the NetFlow version, and counters.
 * Message walking lives in sensor_ipfix.c, templates in sensor_template.c.
 */
#include "sensor_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const error_names[FL_DE_COUNT] = {
    [FL_DE_SHORT] = "short",
    [FL_DE_VERSION] = "version",
    [FL_DE_SET] = "set",
    [FL_DE_TEMPLATE] = "template",
    [FL_DE_RECORD] = "record",
    [FL_DE_TEMPLATE_LIMIT] = "template_limit",
    [FL_DE_SOURCE_LIMIT] = "source_limit",
    [FL_DE_PENDING_DROP] = "pending_drop",
    [FL_DE_V9_COUNT] = "v9_count",
};

void
fl_decoder_limits_default(struct fl_decoder_limits *l)
{
    l->max_sources = 4096;
    l->max_templates = 1024;
    l->max_template_bytes = 64u << 20;
    l->max_pending = 4096;
    l->max_pending_bytes = 16u << 20;
    l->pending_age_ms = 60000;
}

const char *
fl_decode_error_name(enum fl_decode_error e)
{
    if ((unsigned)e >= FL_DE_COUNT) {
        return "unknown";
    }
    return error_names[e];
}

void
fl_decoder_count(struct fl_decoder *d, enum fl_decode_error e)
{
    d->errors[e]++;
}

int
fl_decoder_new(const struct fl_decoder_limits *lim, struct fl_decoder **out)
{
    struct fl_decoder *d;
    size_t scratch;
    int ret = FL_ENOMEM;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        goto out;
    }
    if (lim != NULL) {
        d->lim = *lim;
    } else {
        fl_decoder_limits_default(&d->lim);
    }
    scratch =
        sizeof(struct fl_template) + FL_TFIELDS_MAX * sizeof(struct fl_tfield);
    d->scratch = malloc(scratch);
    if (d->scratch == NULL) {
        goto out;
    }
    *out = d;
    d = NULL;
    ret = FL_OK;
out:
    fl_decoder_free(d);
    return ret;
}

void
fl_decoder_free(struct fl_decoder *d)
{
    if (d == NULL) {
        return;
    }
    fl_pending_free_all(d);
    for (uint32_t i = 0; i < d->src_cap; i++) {
        if (d->src_tab[i] != NULL) {
            fl_template_free_all(d, d->src_tab[i]);
            free(d->src_tab[i]);
        }
    }
    free(d->src_tab);
    free(d->scratch);
    free(d);
}

/* ---- sources ---------------------------------------------------------- */

static uint32_t
source_hash(const struct fl_addr *a, uint32_t domain)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < sizeof(a->b); i++) {
        h = (h ^ a->b[i]) * 0x100000001b3ull;
    }
    h = (h ^ domain) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32);
}

static bool
source_is(const struct fl_source *s, const struct fl_addr *a, uint32_t domain)
{
    return s->domain == domain && memcmp(s->exporter.b, a->b, 16) == 0;
}

/* Returns the slot holding (a, domain), or the empty slot it would take. */
static uint32_t
source_slot(struct fl_source *const *tab, uint32_t cap, const struct fl_addr *a,
            uint32_t domain)
{
    uint32_t mask = cap - 1;
    uint32_t i = source_hash(a, domain) & mask;

    while (tab[i] != NULL && !source_is(tab[i], a, domain)) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Doubles the table so it stays at most half full. */
static int
source_grow(struct fl_decoder *d)
{
    uint32_t cap = d->src_cap == 0 ? 16 : d->src_cap * 2;
    struct fl_source **tab = calloc(cap, sizeof(*tab));

    if (tab == NULL) {
        return FL_ENOMEM;
    }
    for (uint32_t i = 0; i < d->src_cap; i++) {
        struct fl_source *s = d->src_tab[i];

        if (s != NULL) {
            tab[source_slot(tab, cap, &s->exporter, s->domain)] = s;
        }
    }
    free(d->src_tab);
    d->src_tab = tab;
    d->src_cap = cap;
    return FL_OK;
}

int
fl_source_get(struct fl_decoder *d, const struct fl_addr *exporter,
              uint32_t domain, bool create, struct fl_source **out)
{
    struct fl_source *s;
    uint32_t i;
    int ret;

    *out = NULL;
    if (d->src_cap != 0) {
        i = source_slot(d->src_tab, d->src_cap, exporter, domain);
        if (d->src_tab[i] != NULL) {
            *out = d->src_tab[i];
            return FL_OK;
        }
    }
    if (!create) {
        return FL_ENOENT;
    }
    if (d->nsources >= d->lim.max_sources) {
        return FL_ELIMIT;
    }
    if (((uint64_t)d->nsources + 1) * 2 > d->src_cap) {
        ret = source_grow(d);
        if (ret != FL_OK) {
            return ret;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FL_ENOMEM;
    }
    s->exporter = *exporter;
    s->domain = domain;
    s->sampling = 1;
    d->src_tab[source_slot(d->src_tab, d->src_cap, exporter, domain)] = s;
    d->nsources++;
    *out = s;
    return FL_OK;
}

static uint32_t
sampler_lookup(const void *arg, uint32_t sampler_id)
{
    const struct fl_source *s = arg;

    for (uint32_t i = 0; i < s->nsamplers; i++) {
        if (s->samplers[i].id == sampler_id) {
            return s->samplers[i].interval;
        }
    }
    return 0;
}

void
fl_source_ctx(const struct fl_source *src, uint32_t export_secs,
              uint32_t sys_uptime_ms, struct fl_msg_ctx *ctx)
{
    ctx->exporter = src->exporter;
    ctx->domain = src->domain;
    ctx->version = src->version;
    ctx->export_secs = export_secs;
    ctx->sys_uptime_ms = sys_uptime_ms;
    ctx->system_init_ms = src->system_init_ms;
    ctx->sampling = src->has_sampling && src->sampling != 0 ? src->sampling : 1;
    ctx->sampler_lookup = sampler_lookup;
    ctx->sampler_arg = src;
}

/* ---- NetFlow v1/v5/v7 ------------------------------------------------- */

/* What the v5 callback needs: info is filled before the first flow. */
struct v5_run {
    struct fl_decoder *d;
    const struct fl_addr *exporter;
    const struct fl_v5_info *info;
    struct fl_source *src;
    int src_ret; /* FL_OK once src is resolved */
    bool resolved;
};

static void
v5_resolve(struct v5_run *r)
{
    if (!r->resolved) {
        r->resolved = true;
        r->src_ret =
            fl_source_get(r->d, r->exporter, r->info->domain, true, &r->src);
    }
}

static void
v5_flow(void *arg, const struct fl_flow *flow)
{
    struct v5_run *r = arg;
    struct fl_flow f;

    v5_resolve(r);
    if (r->src_ret != FL_OK) {
        return;
    }
    f = *flow;
    f.exporter = *r->exporter;
    f.domain = r->info->domain;
    if (f.sampling == 0) {
        f.sampling = r->info->sampling != 0 ? r->info->sampling : 1;
    }
    r->src->flows++;
    r->d->flows++;
    if (r->d->fn != NULL) {
        r->d->fn(r->d->fn_arg, &f);
    }
}

static int
decode_v5(struct fl_decoder *d, const struct fl_addr *exporter,
          const uint8_t *pkt, size_t len)
{
    struct fl_v5_info info;
    struct v5_run r = {.d = d, .exporter = exporter, .info = &info};
    uint32_t lost;
    int ret;

    memset(&info, 0, sizeof(info));
    ret = fl_v5_decode(exporter, pkt, len, &info, v5_flow, &r);
    if (ret != FL_OK) {
        fl_decoder_count(d, ret == FL_EVERSION ? FL_DE_VERSION : FL_DE_SHORT);
        return ret;
    }
    v5_resolve(&r);
    if (r.src_ret != FL_OK) {
        fl_decoder_count(d, FL_DE_SOURCE_LIMIT);
        return r.src_ret;
    }
    if (r.src->version != info.version) {
        /* Another version's numbering: start counting afresh. */
        r.src->seq.started = false;
        r.src->version = info.version;
    }
    r.src->datagrams++;
    r.src->bytes += len;
    if (info.version != 1) {
        lost = fl_seq_update(&r.src->seq, info.sequence, info.count);
        if (lost != 0) {
            r.src->seq_gaps++;
            r.src->seq_lost += lost;
            d->seq_gaps++;
            d->seq_lost += lost;
        }
    }
    return FL_OK;
}

/* ---- feeding ---------------------------------------------------------- */

int
fl_decoder_feed(struct fl_decoder *d, const struct fl_addr *exporter,
                const uint8_t *pkt, size_t len, uint64_t now_ms, fl_flow_fn fn,
                void *arg)
{
    uint16_t version;
    int ret;

    d->datagrams++;
    d->fn = fn;
    d->fn_arg = arg;
    fl_pending_expire(d, now_ms);
    if (len < 2) {
        fl_decoder_count(d, FL_DE_SHORT);
        return FL_ETRUNC;
    }
    version = (uint16_t)((pkt[0] << 8) | pkt[1]);
    switch (version) {
    case 1:
    case 5:
    case 7:
        ret = decode_v5(d, exporter, pkt, len);
        break;
    case 9:
        ret = fl_v9_decode(d, exporter, pkt, len, now_ms);
        break;
    case 10:
        ret = fl_ipfix_decode(d, exporter, pkt, len, now_ms);
        break;
    default:
        fl_decoder_count(d, FL_DE_VERSION);
        ret = FL_EVERSION;
        break;
    }
    d->fn = NULL;
    d->fn_arg = NULL;
    return ret;
}

void
fl_decoder_expire(struct fl_decoder *d, uint64_t now_ms)
{
    fl_pending_expire(d, now_ms);
}

/* ---- statistics ------------------------------------------------------- */

void
fl_decoder_get_stats(const struct fl_decoder *d, struct fl_decoder_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->datagrams = d->datagrams;
    out->flows = d->flows;
    memcpy(out->errors, d->errors, sizeof(out->errors));
    out->seq_gaps = d->seq_gaps;
    out->seq_lost = d->seq_lost;
    out->sources = d->nsources;
    out->templates = d->ntemplates;
    out->pending = d->npending;
}

void
fl_decoder_each_source(const struct fl_decoder *d,
                       void (*fn)(void *arg, const struct fl_source_stats *s),
                       void *arg)
{
    struct fl_source_stats st;

    for (uint32_t i = 0; i < d->src_cap; i++) {
        const struct fl_source *s = d->src_tab[i];

        if (s == NULL) {
            continue;
        }
        memset(&st, 0, sizeof(st));
        st.exporter = s->exporter;
        st.domain = s->domain;
        st.version = s->version;
        st.datagrams = s->datagrams;
        st.flows = s->flows;
        st.bytes = s->bytes;
        st.seq_gaps = s->seq_gaps;
        st.seq_lost = s->seq_lost;
        st.templates = s->ntemplates;
        st.pending = s->pending;
        fn(arg, &st);
    }
}
