/*
 * Templates and options templates of NetFlow v9 (RFC 3954) and IPFIX
 * (RFC 7011): parsing template sets, withdrawal, and the per-source cache,
 * an open-addressing table with a ceiling on its size.
 */
#include "sensor_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- the per-source cache --------------------------------------------- */

static uint32_t
tpl_hash(uint16_t id)
{
    uint32_t h = (uint32_t)id * 0x9e3779b1u;

    return h ^ (h >> 16);
}

/* Returns the slot holding id, or the empty slot where it would go. */
static uint32_t
tpl_slot(struct fl_template *const *tab, uint32_t cap, uint16_t id)
{
    uint32_t mask = cap - 1;
    uint32_t i = tpl_hash(id) & mask;

    while (tab[i] != NULL && tab[i]->id != id) {
        i = (i + 1) & mask;
    }
    return i;
}

const struct fl_template *
fl_template_find(const struct fl_source *src, uint16_t id)
{
    if (src->tpl_cap == 0) {
        return NULL;
    }
    return src->tpl[tpl_slot(src->tpl, src->tpl_cap, id)];
}

static size_t
tpl_size(uint16_t nfields)
{
    return sizeof(struct fl_template) + nfields * sizeof(struct fl_tfield);
}

static bool
tpl_same(const struct fl_template *a, const struct fl_template *b)
{
    return a->id == b->id && a->nfields == b->nfields &&
           a->scope_fields == b->scope_fields && a->options == b->options &&
           memcmp(a->fields, b->fields, a->nfields * sizeof(a->fields[0])) == 0;
}

/* Doubles the table so it stays at most half full. */
static int
tpl_grow(struct fl_source *src)
{
    uint32_t cap = src->tpl_cap == 0 ? 16 : src->tpl_cap * 2;
    struct fl_template **tab = calloc(cap, sizeof(*tab));

    if (tab == NULL) {
        return FL_ENOMEM;
    }
    for (uint32_t i = 0; i < src->tpl_cap; i++) {
        if (src->tpl[i] != NULL) {
            tab[tpl_slot(tab, cap, src->tpl[i]->id)] = src->tpl[i];
        }
    }
    free(src->tpl);
    src->tpl = tab;
    src->tpl_cap = cap;
    return FL_OK;
}

int
fl_template_put(struct fl_decoder *d, struct fl_source *src,
                const struct fl_template *t)
{
    struct fl_template *copy;
    uint32_t i;
    int ret;

    if (src->tpl_cap != 0) {
        i = tpl_slot(src->tpl, src->tpl_cap, t->id);
        /* Exporters resend templates all the time: keep an equal one. */
        if (src->tpl[i] != NULL && tpl_same(src->tpl[i], t)) {
            return FL_OK;
        }
    }
    /* A template can be 64 KiB: the count alone would not bound memory. */
    if (d->template_bytes + tpl_size(t->nfields) > d->lim.max_template_bytes) {
        return FL_ELIMIT;
    }
    if (fl_template_find(src, t->id) == NULL) {
        if (src->ntemplates >= d->lim.max_templates) {
            return FL_ELIMIT;
        }
        if (((uint64_t)src->ntemplates + 1) * 2 > src->tpl_cap) {
            ret = tpl_grow(src);
            if (ret != FL_OK) {
                return ret;
            }
        }
    }
    copy = malloc(tpl_size(t->nfields));
    if (copy == NULL) {
        return FL_ENOMEM;
    }
    memcpy(copy, t, tpl_size(t->nfields));
    i = tpl_slot(src->tpl, src->tpl_cap, t->id);
    d->template_bytes += tpl_size(t->nfields);
    if (src->tpl[i] != NULL) {
        d->template_bytes -= tpl_size(src->tpl[i]->nfields);
        free(src->tpl[i]);
    } else {
        src->ntemplates++;
        d->ntemplates++;
    }
    src->tpl[i] = copy;
    return FL_OK;
}

void
fl_template_remove(struct fl_decoder *d, struct fl_source *src, uint16_t id)
{
    uint32_t mask = src->tpl_cap - 1;
    uint32_t i;
    uint32_t j;
    uint32_t k;

    if (src->tpl_cap == 0) {
        return;
    }
    i = tpl_slot(src->tpl, src->tpl_cap, id);
    if (src->tpl[i] == NULL) {
        return;
    }
    d->template_bytes -= tpl_size(src->tpl[i]->nfields);
    free(src->tpl[i]);
    src->tpl[i] = NULL;
    src->ntemplates--;
    d->ntemplates--;

    /* Backward-shift deletion: pull later entries of the probe run into
     * the hole unless their home slot lies cyclically in (i, j]. */
    for (j = (i + 1) & mask; src->tpl[j] != NULL; j = (j + 1) & mask) {
        k = tpl_hash(src->tpl[j]->id) & mask;
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }
        src->tpl[i] = src->tpl[j];
        src->tpl[j] = NULL;
        i = j;
    }
}

/* IPFIX all-templates withdrawal: every template of one kind. */
static void
tpl_remove_kind(struct fl_decoder *d, struct fl_source *src, bool options)
{
    for (uint32_t i = 0; i < src->tpl_cap; i++) {
        /* Removal may shift another entry into slot i: look again. */
        while (src->tpl[i] != NULL && src->tpl[i]->options == options) {
            fl_template_remove(d, src, src->tpl[i]->id);
        }
    }
}

void
fl_template_free_all(struct fl_decoder *d, struct fl_source *src)
{
    for (uint32_t i = 0; i < src->tpl_cap; i++) {
        if (src->tpl[i] != NULL) {
            d->template_bytes -= tpl_size(src->tpl[i]->nfields);
            free(src->tpl[i]);
        }
    }
    free(src->tpl);
    d->ntemplates -= src->ntemplates;
    src->tpl = NULL;
    src->tpl_cap = 0;
    src->ntemplates = 0;
}

/* ---- checking a parsed template --------------------------------------- */

int
fl_template_check(struct fl_template *t, uint8_t version)
{
    uint32_t max = version == 10 ? FL_IPFIX_RECORD_MAX : FL_V9_RECORD_MAX;
    uint32_t min_len = 0;

    if (t->id < 256 || t->nfields == 0 || t->nfields > FL_TFIELDS_MAX) {
        return FL_EFORMAT;
    }
    if (t->scope_fields > t->nfields || (!t->options && t->scope_fields)) {
        return FL_EFORMAT;
    }
    /* IPFIX options need a scope (RFC 7011 3.4.2.2); v9 exporters are
     * seen sending none, which does no harm. */
    if (version == 10 && t->options && t->scope_fields == 0) {
        return FL_EFORMAT;
    }
    for (uint16_t i = 0; i < t->nfields; i++) {
        const struct fl_tfield *f = &t->fields[i];

        if (f->len == 0) {
            return FL_EFORMAT;
        }
        if (version == 10 && (f->id & FL_ENTERPRISE_BIT)) {
            return FL_EFORMAT;
        }
        if (version != 10 && f->pen != 0) {
            return FL_EFORMAT;
        }
        /* v9 has no variable length: 65535 is a length that never fits. */
        min_len += version == 10 && f->len == FL_VARLEN ? 1 : f->len;
    }
    if (min_len > max) {
        return FL_EFORMAT;
    }
    t->min_len = min_len;
    return FL_OK;
}

/* ---- parsing template sets -------------------------------------------- */

/* Trailing zero bytes after the last record are padding, not a record. */
static bool
is_padding(const struct fl_cursor *c)
{
    for (size_t i = 0; i < c->left; i++) {
        if (c->p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Reads nfields specifiers into t; IPFIX ones may carry a PEN. */
static bool
read_fields(struct fl_cursor *c, struct fl_template *t, bool ipfix)
{
    for (uint16_t i = 0; i < t->nfields; i++) {
        struct fl_tfield *f = &t->fields[i];

        f->pen = 0;
        if (!fl_cursor_u16(c, &f->id) || !fl_cursor_u16(c, &f->len)) {
            return false;
        }
        if (ipfix && (f->id & FL_ENTERPRISE_BIT)) {
            f->id &= (uint16_t)~FL_ENTERPRISE_BIT;
            if (!fl_cursor_u32(c, &f->pen)) {
                return false;
            }
        }
    }
    return true;
}

/* Checks and stores the template in d->scratch. */
static int
store(struct fl_decoder *d, struct fl_source *src)
{
    int ret;

    if (fl_template_check(d->scratch, src->version) != FL_OK) {
        fl_decoder_count(d, FL_DE_TEMPLATE);
        return FL_EFORMAT;
    }
    ret = fl_template_put(d, src, d->scratch);
    if (ret == FL_ELIMIT) {
        fl_decoder_count(d, FL_DE_TEMPLATE_LIMIT);
    }
    return ret;
}

/* An IPFIX withdrawal record: one id, or every template of the set's kind
 * when the id is the set id (RFC 7011 8.1). */
static int
withdraw(struct fl_decoder *d, struct fl_source *src, uint16_t set_id,
         uint16_t id)
{
    if (id == set_id) {
        tpl_remove_kind(d, src, set_id == 3);
        return FL_OK;
    }
    if (id < 256) {
        fl_decoder_count(d, FL_DE_TEMPLATE);
        return FL_EFORMAT;
    }
    fl_template_remove(d, src, id);
    return FL_OK;
}

/* Parses one IPFIX (options) template record; FL_EFORMAT stops the set. */
static int
parse_ipfix_record(struct fl_decoder *d, struct fl_source *src, uint16_t set_id,
                   struct fl_cursor *c)
{
    struct fl_template *t = d->scratch;
    uint16_t id;
    uint16_t count;
    uint16_t scope = 0;

    if (!fl_cursor_u16(c, &id) || !fl_cursor_u16(c, &count)) {
        goto bad;
    }
    if (count == 0) {
        return withdraw(d, src, set_id, id);
    }
    if (set_id == 3 && !fl_cursor_u16(c, &scope)) {
        goto bad;
    }
    /* Each specifier takes at least four bytes. */
    if ((size_t)count * 4 > c->left) {
        goto bad;
    }
    t->id = id;
    t->nfields = count;
    t->scope_fields = scope;
    t->options = set_id == 3;
    t->min_len = 0;
    if (!read_fields(c, t, true)) {
        goto bad;
    }
    return store(d, src);
bad:
    fl_decoder_count(d, FL_DE_TEMPLATE);
    return FL_EFORMAT;
}

/* Parses one v9 template (set 0) or options template (set 1) record. */
static int
parse_v9_record(struct fl_decoder *d, struct fl_source *src, uint16_t set_id,
                struct fl_cursor *c)
{
    struct fl_template *t = d->scratch;
    uint16_t id;
    uint16_t count = 0;
    uint16_t scope_len = 0;
    uint16_t opt_len = 0;

    if (!fl_cursor_u16(c, &id)) {
        goto bad;
    }
    if (set_id == 0) {
        if (!fl_cursor_u16(c, &count)) {
            goto bad;
        }
    } else {
        if (!fl_cursor_u16(c, &scope_len) || !fl_cursor_u16(c, &opt_len) ||
            scope_len % 4 != 0 || opt_len % 4 != 0) {
            goto bad;
        }
        count = (uint16_t)((scope_len + opt_len) / 4);
    }
    if (count == 0 || (size_t)count * 4 > c->left) {
        goto bad;
    }
    t->id = id;
    t->nfields = count;
    t->scope_fields = (uint16_t)(scope_len / 4);
    t->options = set_id == 1;
    t->min_len = 0;
    if (!read_fields(c, t, false)) {
        goto bad;
    }
    return store(d, src);
bad:
    fl_decoder_count(d, FL_DE_TEMPLATE);
    return FL_EFORMAT;
}

int
fl_template_parse_set(struct fl_decoder *d, struct fl_source *src,
                      uint16_t set_id, struct fl_cursor *body,
                      uint32_t *records)
{
    bool ipfix = src->version == 10;
    int first = FL_OK;
    int ret;

    while (body->left >= 4 && !is_padding(body)) {
        if (ipfix) {
            ret = parse_ipfix_record(d, src, set_id, body);
        } else {
            ret = parse_v9_record(d, src, set_id, body);
        }
        if (ret != FL_OK && first == FL_OK) {
            first = ret;
        }
        (*records)++;
        /* A bad record leaves no way to find the next one. */
        if (ret == FL_EFORMAT || ret == FL_ENOMEM) {
            break;
        }
    }
    return first;
}
