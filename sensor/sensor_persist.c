/*
 * Saving and loading the template cache, so that a restarted sensor can
 * decode data at once instead of waiting for exporters to resend their
 * templates.  The format is ours, versioned by its magic, and checksummed.
 *
 * Layout, big-endian: "FL0WTPL1", u32 source count, then per source:
 * exporter (16), u32 domain, u8 version, u8 has_sampling, u32 sampling,
 * u16 algorithm, u64 system_init_ms, u16 sampler count and (u32 id,
 * u32 interval) each, u32 template count and per template: u16 id,
 * u8 options, u16 scope fields, u16 field count, (u32 pen, u16 id,
 * u16 len) per field.  Last, a 64-bit FNV-1a of every byte before it.
 */
#include "sensor_int.h"

#include <stdlib.h>
#include <string.h>

#define MAGIC "FL0WTPL1"
#define MAGIC_LEN 8
#define SUM_LEN 8
#define SOURCE_FIXED (16 + 4 + 1 + 1 + 4 + 2 + 8 + 2 + 4)
#define TEMPLATE_FIXED (2 + 1 + 2 + 2)
#define FIELD_LEN 8
#define SAMPLER_LEN 8

uint64_t
fl_persist_checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* ---- saving ----------------------------------------------------------- */

/* Only v9 and IPFIX sources have templates and options to keep. */
static bool
is_saved(const struct fl_source *s)
{
    return s != NULL && (s->version == 9 || s->version == 10);
}

static size_t
source_size(const struct fl_source *s)
{
    size_t n = SOURCE_FIXED + (size_t)s->nsamplers * SAMPLER_LEN;

    for (uint32_t i = 0; i < s->tpl_cap; i++) {
        if (s->tpl[i] != NULL) {
            n += TEMPLATE_FIXED + (size_t)s->tpl[i]->nfields * FIELD_LEN;
        }
    }
    return n;
}

static uint8_t *
put_template(uint8_t *p, const struct fl_template *t)
{
    fl_put_be16(p, t->id);
    p[2] = t->options ? 1 : 0;
    fl_put_be16(p + 3, t->scope_fields);
    fl_put_be16(p + 5, t->nfields);
    p += TEMPLATE_FIXED;
    for (uint16_t i = 0; i < t->nfields; i++) {
        fl_put_be32(p, t->fields[i].pen);
        fl_put_be16(p + 4, t->fields[i].id);
        fl_put_be16(p + 6, t->fields[i].len);
        p += FIELD_LEN;
    }
    return p;
}

static uint8_t *
put_source(uint8_t *p, const struct fl_source *s)
{
    memcpy(p, s->exporter.b, 16);
    fl_put_be32(p + 16, s->domain);
    p[20] = s->version;
    p[21] = s->has_sampling ? 1 : 0;
    fl_put_be32(p + 22, s->sampling);
    fl_put_be16(p + 26, s->algorithm);
    fl_put_be64(p + 28, s->system_init_ms);
    fl_put_be16(p + 36, (uint16_t)s->nsamplers);
    p += 38;
    for (uint32_t i = 0; i < s->nsamplers; i++) {
        fl_put_be32(p, s->samplers[i].id);
        fl_put_be32(p + 4, s->samplers[i].interval);
        p += SAMPLER_LEN;
    }
    fl_put_be32(p, s->ntemplates);
    p += 4;
    for (uint32_t i = 0; i < s->tpl_cap; i++) {
        if (s->tpl[i] != NULL) {
            p = put_template(p, s->tpl[i]);
        }
    }
    return p;
}

int
fl_decoder_templates_save(const struct fl_decoder *d, uint8_t **buf,
                          size_t *len)
{
    size_t n = MAGIC_LEN + 4 + SUM_LEN;
    uint32_t count = 0;
    uint8_t *out;
    uint8_t *p;

    *buf = NULL;
    *len = 0;
    for (uint32_t i = 0; i < d->src_cap; i++) {
        if (is_saved(d->src_tab[i])) {
            n += source_size(d->src_tab[i]);
            count++;
        }
    }
    out = malloc(n);
    if (out == NULL) {
        return FL_ENOMEM;
    }
    memcpy(out, MAGIC, MAGIC_LEN);
    fl_put_be32(out + MAGIC_LEN, count);
    p = out + MAGIC_LEN + 4;
    for (uint32_t i = 0; i < d->src_cap; i++) {
        if (is_saved(d->src_tab[i])) {
            p = put_source(p, d->src_tab[i]);
        }
    }
    fl_put_be64(p, fl_persist_checksum(out, n - SUM_LEN));
    *buf = out;
    *len = n;
    return FL_OK;
}

/* ---- loading: parse into a decoder of its own ------------------------- */

static int
read_template(struct fl_decoder *tmp, struct fl_source *s, struct fl_cursor *c)
{
    struct fl_template *t = tmp->scratch;
    uint8_t options;
    int ret;

    if (!fl_cursor_u16(c, &t->id) || !fl_cursor_u8(c, &options) ||
        !fl_cursor_u16(c, &t->scope_fields) || !fl_cursor_u16(c, &t->nfields) ||
        options > 1 || t->nfields > FL_TFIELDS_MAX ||
        (size_t)t->nfields * FIELD_LEN > c->left) {
        return FL_EFORMAT;
    }
    t->options = options == 1;
    for (uint16_t i = 0; i < t->nfields; i++) {
        fl_cursor_u32(c, &t->fields[i].pen);
        fl_cursor_u16(c, &t->fields[i].id);
        fl_cursor_u16(c, &t->fields[i].len);
    }
    if (fl_template_check(t, s->version) != FL_OK ||
        fl_template_find(s, t->id) != NULL) {
        return FL_EFORMAT;
    }
    ret = fl_template_put(tmp, s, t);
    return ret;
}

static int
read_options(struct fl_source *s, struct fl_cursor *c)
{
    uint8_t has_sampling;
    uint16_t nsamplers;

    if (!fl_cursor_u8(c, &s->version) || !fl_cursor_u8(c, &has_sampling) ||
        !fl_cursor_u32(c, &s->sampling) || !fl_cursor_u16(c, &s->algorithm) ||
        !fl_cursor_u64(c, &s->system_init_ms) ||
        !fl_cursor_u16(c, &nsamplers)) {
        return FL_EFORMAT;
    }
    if ((s->version != 9 && s->version != 10) || has_sampling > 1 ||
        nsamplers > FL_SAMPLERS_MAX) {
        return FL_EFORMAT;
    }
    s->has_sampling = has_sampling == 1;
    s->nsamplers = nsamplers;
    for (uint16_t i = 0; i < nsamplers; i++) {
        if (!fl_cursor_u32(c, &s->samplers[i].id) ||
            !fl_cursor_u32(c, &s->samplers[i].interval)) {
            return FL_EFORMAT;
        }
    }
    return FL_OK;
}

static int
read_source(struct fl_decoder *tmp, struct fl_cursor *c)
{
    struct fl_source *s;
    struct fl_addr exporter;
    const uint8_t *b;
    uint32_t domain;
    uint32_t ntemplates;
    uint32_t before = tmp->nsources;
    int ret;

    if (!fl_cursor_bytes(c, 16, &b) || !fl_cursor_u32(c, &domain)) {
        return FL_EFORMAT;
    }
    memcpy(exporter.b, b, 16);
    ret = fl_source_get(tmp, &exporter, domain, true, &s);
    if (ret != FL_OK) {
        return ret;
    }
    if (tmp->nsources == before) {
        return FL_EFORMAT; /* the same source twice */
    }
    ret = read_options(s, c);
    if (ret != FL_OK) {
        return ret;
    }
    if (!fl_cursor_u32(c, &ntemplates)) {
        return FL_EFORMAT;
    }
    for (uint32_t i = 0; i < ntemplates; i++) {
        ret = read_template(tmp, s, c);
        if (ret != FL_OK) {
            return ret;
        }
    }
    return FL_OK;
}

static int
parse(struct fl_decoder *tmp, const uint8_t *buf, size_t len)
{
    struct fl_cursor c;
    uint32_t nsources;
    int ret;

    fl_cursor_init(&c, buf + MAGIC_LEN, len - MAGIC_LEN - SUM_LEN);
    if (!fl_cursor_u32(&c, &nsources)) {
        return FL_EFORMAT;
    }
    for (uint32_t i = 0; i < nsources; i++) {
        ret = read_source(tmp, &c);
        if (ret != FL_OK) {
            return ret;
        }
    }
    return c.left == 0 ? FL_OK : FL_EFORMAT;
}

/* ---- loading: merge what was parsed ----------------------------------- */

/* Counts what src would hold after the merge; live templates win. */
static uint32_t
merged_templates(const struct fl_source *live, const struct fl_source *s)
{
    uint32_t n = live->ntemplates;

    for (uint32_t i = 0; i < s->tpl_cap; i++) {
        if (s->tpl[i] != NULL &&
            fl_template_find(live, s->tpl[i]->id) == NULL) {
            n++;
        }
    }
    return n;
}

/* Checks that the merge stays within d's ceilings. */
static int
merge_check(struct fl_decoder *d, const struct fl_decoder *tmp)
{
    struct fl_source *live;
    uint32_t fresh = 0;

    for (uint32_t i = 0; i < tmp->src_cap; i++) {
        const struct fl_source *s = tmp->src_tab[i];

        if (s == NULL) {
            continue;
        }
        if (fl_source_get(d, &s->exporter, s->domain, false, &live) != FL_OK) {
            fresh++;
        } else if (merged_templates(live, s) > d->lim.max_templates) {
            return FL_ELIMIT;
        }
    }
    return (uint64_t)d->nsources + fresh > d->lim.max_sources ? FL_ELIMIT
                                                              : FL_OK;
}

/* Adds what the live source does not know yet. */
static int
merge_source(struct fl_decoder *d, const struct fl_source *s)
{
    struct fl_source *live;
    int ret;

    ret = fl_source_get(d, &s->exporter, s->domain, true, &live);
    if (ret != FL_OK) {
        return ret;
    }
    if (live->version != 0 && live->version != s->version) {
        return FL_OK; /* the exporter changed version since: skip */
    }
    live->version = s->version;
    if (!live->has_sampling && s->has_sampling) {
        live->has_sampling = true;
        live->sampling = s->sampling;
        live->algorithm = s->algorithm;
    }
    if (live->system_init_ms == 0) {
        live->system_init_ms = s->system_init_ms;
    }
    if (live->nsamplers == 0) {
        live->nsamplers = s->nsamplers;
        memcpy(live->samplers, s->samplers, sizeof(s->samplers));
    }
    for (uint32_t i = 0; i < s->tpl_cap; i++) {
        const struct fl_template *t = s->tpl[i];

        if (t != NULL && fl_template_find(live, t->id) == NULL) {
            ret = fl_template_put(d, live, t);
            if (ret != FL_OK) {
                return ret;
            }
        }
    }
    return FL_OK;
}

int
fl_decoder_templates_load(struct fl_decoder *d, const uint8_t *buf, size_t len)
{
    struct fl_decoder *tmp = NULL;
    int ret = FL_EFORMAT;

    /* Validate: checksum first, so a damaged magic reads as damage. */
    if (len < MAGIC_LEN + 4 + SUM_LEN ||
        fl_persist_checksum(buf, len - SUM_LEN) !=
            fl_be_uint(buf + len - SUM_LEN, 8)) {
        goto out;
    }
    if (memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        ret = memcmp(buf, MAGIC, MAGIC_LEN - 1) == 0 ? FL_EVERSION : FL_EFORMAT;
        goto out;
    }
    ret = fl_decoder_new(&d->lim, &tmp);
    if (ret != FL_OK) {
        goto out;
    }
    ret = parse(tmp, buf, len);
    if (ret != FL_OK) {
        goto out;
    }
    ret = merge_check(d, tmp);
    if (ret != FL_OK) {
        goto out;
    }

    /* Publish: only running out of memory can stop this half way. */
    for (uint32_t i = 0; i < tmp->src_cap && ret == FL_OK; i++) {
        if (tmp->src_tab[i] != NULL) {
            ret = merge_source(d, tmp->src_tab[i]);
        }
    }
out:
    fl_decoder_free(tmp);
    return ret;
}
