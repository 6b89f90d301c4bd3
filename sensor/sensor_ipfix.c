/*
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) messages: the header, the
 * walk over sets, data sets record by record, and options data that sets
 * a source's sampling.  Templates are parsed in sensor_template.c.
 */
#include "sensor_int.h"

#include <string.h>

#define V9_HEADER_LEN 20
#define IPFIX_HEADER_LEN 16

/* One message being decoded. */
struct msg {
    struct fl_source *src;
    uint32_t export_secs;
    uint32_t sys_uptime_ms;
    uint64_t now_ms;
    uint32_t records;   /* data records decoded: the IPFIX sequence unit */
    uint32_t templates; /* template records read: v9 counts them too */
    uint32_t sets;      /* some v9 exporters count flowsets instead */
    bool uncertain;     /* some records were not counted: resync sequence */
    int first;          /* first error met */
};

static void
note(struct msg *m, int ret)
{
    if (ret != FL_OK && m->first == FL_OK) {
        m->first = ret;
    }
}

/* ---- data sets -------------------------------------------------------- */

static void
sampler_set(struct fl_source *src, uint32_t id, uint32_t interval)
{
    for (uint32_t i = 0; i < src->nsamplers; i++) {
        if (src->samplers[i].id == id) {
            src->samplers[i].interval = interval;
            return;
        }
    }
    if (src->nsamplers < FL_SAMPLERS_MAX) {
        src->samplers[src->nsamplers].id = id;
        src->samplers[src->nsamplers].interval = interval;
        src->nsamplers++;
    }
}

static void
options_apply(struct fl_source *src, const struct fl_options_info *info)
{
    if (info->has_sampling && info->has_sampler_id) {
        sampler_set(src, info->sampler_id, info->sampling);
    } else if (info->has_sampling) {
        src->has_sampling = true;
        src->sampling = info->sampling != 0 ? info->sampling : 1;
        src->algorithm = info->algorithm;
    }
    if (info->has_system_init) {
        src->system_init_ms = info->system_init_ms;
    }
}

static int
options_set_decode(struct fl_decoder *d, struct fl_source *src,
                   const struct fl_template *t, const struct fl_msg_ctx *ctx,
                   struct fl_cursor *body, uint32_t *records)
{
    struct fl_options_info info;
    size_t left;

    while (body->left >= t->min_len) {
        left = body->left;
        memset(&info, 0, sizeof(info));
        if (fl_fields_options(t, ctx, body, &info) != FL_OK ||
            body->left >= left) {
            fl_decoder_count(d, FL_DE_RECORD);
            return FL_EFORMAT;
        }
        options_apply(src, &info);
        (*records)++;
    }
    return FL_OK;
}

static void
deliver(struct fl_decoder *d, struct fl_source *src,
        const struct fl_msg_ctx *ctx, struct fl_flow *flow)
{
    flow->exporter = ctx->exporter;
    flow->domain = ctx->domain;
    if (flow->sampling == 0) {
        flow->sampling = ctx->sampling;
    }
    src->flows++;
    d->flows++;
    if (d->fn != NULL) {
        d->fn(d->fn_arg, flow);
    }
}

int
fl_data_set_decode(struct fl_decoder *d, struct fl_source *src,
                   const struct fl_template *t, const struct fl_msg_ctx *ctx,
                   struct fl_cursor *body, uint32_t *records)
{
    struct fl_flow flow;
    size_t left;
    int ret = FL_OK;

    *records = 0;
    if (t->options) {
        ret = options_set_decode(d, src, t, ctx, body, records);
        goto out;
    }
    /* Fewer bytes than the shortest record are padding (RFC 7011 3.3.1). */
    while (body->left >= t->min_len) {
        left = body->left;
        if (fl_fields_decode(t, ctx, body, &flow, d->extra, sizeof(d->extra)) !=
                FL_OK ||
            body->left >= left) {
            fl_decoder_count(d, FL_DE_RECORD);
            ret = FL_EFORMAT;
            goto out;
        }
        deliver(d, src, ctx, &flow);
        (*records)++;
    }
out:
    /* A set with bytes but not one whole record holds a truncated one. */
    if (ret == FL_OK && *records == 0 && body->left > 0) {
        fl_decoder_count(d, FL_DE_RECORD);
        ret = FL_EFORMAT;
    }
    return ret;
}

/* ---- the set walk ----------------------------------------------------- */

static bool
is_template_set(uint8_t version, uint16_t set_id)
{
    if (version == 10) {
        return set_id == 2 || set_id == 3;
    }
    return set_id == 0 || set_id == 1;
}

static void
template_set(struct fl_decoder *d, struct msg *m, uint16_t set_id,
             struct fl_cursor *body)
{
    uint32_t n = 0;

    note(m, fl_template_parse_set(d, m->src, set_id, body, &n));
    m->templates += n;
    /* Even an unchanged template may be the one held data waits for
     * (templates loaded from the state file release nothing). */
    if (m->src->pending != 0) {
        note(m, fl_pending_release(d, m->src));
    }
}

static void
data_set(struct fl_decoder *d, struct msg *m, uint16_t set_id,
         struct fl_cursor *body)
{
    const struct fl_template *t = fl_template_find(m->src, set_id);
    struct fl_msg_ctx ctx;
    uint32_t n;
    int ret;

    if (t == NULL && body->left == 0) {
        return;
    }
    if (t == NULL) {
        /* Hold the set with its header, which lies just before body. */
        fl_pending_hold(d, m->src, body->p - 4, body->left + 4, m->export_secs,
                        m->sys_uptime_ms, m->now_ms);
        m->uncertain = true;
        return;
    }
    fl_source_ctx(m->src, m->export_secs, m->sys_uptime_ms, &ctx);
    ret = fl_data_set_decode(d, m->src, t, &ctx, body, &n);
    m->records += n;
    if (ret != FL_OK) {
        m->uncertain = true;
        note(m, ret);
    }
}

/* Walks the sets in c; a set whose length is impossible ends the walk. */
static void
walk_sets(struct fl_decoder *d, struct msg *m, struct fl_cursor *c)
{
    struct fl_cursor body;
    uint16_t set_id;
    uint16_t len;

    /* v9 exporters leave a few bytes of padding after the last flowset. */
    while (c->left >= 4 || (m->src->version == 10 && c->left > 0)) {
        if (!fl_cursor_u16(c, &set_id) || !fl_cursor_u16(c, &len) || len < 4 ||
            !fl_cursor_sub(c, len - 4u, &body)) {
            fl_decoder_count(d, FL_DE_SET);
            note(m, FL_EFORMAT);
            m->uncertain = true;
            return;
        }
        m->sets++;
        if (is_template_set(m->src->version, set_id)) {
            template_set(d, m, set_id, &body);
        } else if (set_id >= 256) {
            data_set(d, m, set_id, &body);
        }
        /* Ids 2..255 in v9, 0, 1 and 4..255 in IPFIX are reserved: skip. */
    }
}

/* ---- message headers -------------------------------------------------- */

/* Another version numbers differently, and v9 and IPFIX templates
 * differ (variable length, enterprise fields): start afresh. */
static void
version_change(struct fl_decoder *d, struct fl_source *src, uint8_t version)
{
    if (src->version == 9 || src->version == 10) {
        fl_template_free_all(d, src);
        src->has_sampling = false;
        src->sampling = 1;
        src->nsamplers = 0;
        src->system_init_ms = 0;
    }
    src->seq.started = false;
    src->version = version;
}

static int
msg_source(struct fl_decoder *d, const struct fl_addr *exporter,
           uint32_t domain, uint8_t version, size_t len, struct msg *m)
{
    int ret = fl_source_get(d, exporter, domain, true, &m->src);

    if (ret == FL_ELIMIT) {
        fl_decoder_count(d, FL_DE_SOURCE_LIMIT);
    }
    if (ret != FL_OK) {
        return ret;
    }
    if (m->src->version != version) {
        version_change(d, m->src, version);
    }
    m->src->datagrams++;
    m->src->bytes += len;
    m->first = FL_OK;
    m->records = 0;
    m->templates = 0;
    m->sets = 0;
    m->uncertain = false;
    d->pend_cur = NULL;
    return FL_OK;
}

static void
seq_account(struct fl_decoder *d, struct fl_source *src, uint32_t seq,
            uint32_t units)
{
    uint32_t lost = fl_seq_update(&src->seq, seq, units);

    if (lost != 0) {
        src->seq_gaps++;
        src->seq_lost += lost;
        d->seq_gaps++;
        d->seq_lost += lost;
    }
}

int
fl_ipfix_decode(struct fl_decoder *d, const struct fl_addr *exporter,
                const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct fl_cursor c;
    struct msg m = {.now_ms = now_ms};
    uint16_t version;
    uint16_t mlen;
    uint32_t seq;
    uint32_t domain;
    int ret;

    fl_cursor_init(&c, pkt, len);
    if (!fl_cursor_u16(&c, &version) || !fl_cursor_u16(&c, &mlen) ||
        !fl_cursor_u32(&c, &m.export_secs) || !fl_cursor_u32(&c, &seq) ||
        !fl_cursor_u32(&c, &domain) || mlen < IPFIX_HEADER_LEN || mlen > len) {
        fl_decoder_count(d, FL_DE_SHORT);
        return FL_ETRUNC;
    }
    /* Bytes past the message length are not part of it. */
    c.left = mlen - IPFIX_HEADER_LEN;
    ret = msg_source(d, exporter, domain, 10, len, &m);
    if (ret != FL_OK) {
        return ret;
    }
    walk_sets(d, &m, &c);
    d->pend_cur = NULL;

    seq_account(d, m.src, seq, m.records);
    if (m.uncertain) {
        /* Held or unreadable records are not in m.records. */
        m.src->seq.started = false;
    }
    return m.first;
}

int
fl_v9_decode(struct fl_decoder *d, const struct fl_addr *exporter,
             const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct fl_cursor c;
    struct msg m = {.now_ms = now_ms};
    uint16_t version;
    uint16_t count;
    uint32_t seq;
    uint32_t domain;
    int ret;

    fl_cursor_init(&c, pkt, len);
    if (!fl_cursor_u16(&c, &version) || !fl_cursor_u16(&c, &count) ||
        !fl_cursor_u32(&c, &m.sys_uptime_ms) ||
        !fl_cursor_u32(&c, &m.export_secs) || !fl_cursor_u32(&c, &seq) ||
        !fl_cursor_u32(&c, &domain)) {
        fl_decoder_count(d, FL_DE_SHORT);
        return FL_ETRUNC;
    }
    ret = msg_source(d, exporter, domain, 9, len, &m);
    if (ret != FL_OK) {
        return ret;
    }
    /* v9 numbers export packets, not records. */
    seq_account(d, m.src, seq, 1);
    walk_sets(d, &m, &c);
    d->pend_cur = NULL;

    /* Sets carry their own lengths, so every record found is kept; a
     * count that disagrees (held sets aside) is an exporter bug worth
     * a counter, not a reason to drop flows.  FortiOS counts flowsets. */
    if (!m.uncertain && m.records + m.templates != count && m.sets != count) {
        fl_decoder_count(d, FL_DE_V9_COUNT);
    }
    return m.first;
}
