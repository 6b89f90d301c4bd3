/*
 * Data that arrived before its template.  Exporters send templates only
 * every so often, so after a restart the first data sets are held, copied,
 * and decoded when their template turns up, within fixed ceilings.
 */
#include "sensor_int.h"

#include <stdlib.h>
#include <string.h>

static void
entry_free(struct fl_decoder *d, struct fl_pending *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        d->pend_head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        d->pend_tail = e->prev;
    }
    if (d->pend_cur == e) {
        d->pend_cur = NULL;
    }
    d->npending--;
    d->pending_bytes -= e->len;
    e->src->pending--;
    free(e);
}

/* Drops are counted in sets: without the template nobody can tell how
 * many records a held set carries. */
static void
entry_drop(struct fl_decoder *d, struct fl_pending *e)
{
    d->errors[FL_DE_PENDING_DROP] += e->live;
    entry_free(d, e);
}

static bool
fits(const struct fl_decoder *d, size_t len)
{
    return d->pending_bytes + len <= d->lim.max_pending_bytes &&
           (d->pend_cur != NULL || d->npending < d->lim.max_pending);
}

static struct fl_pending *
entry_new(struct fl_decoder *d, struct fl_source *src, size_t len,
          uint32_t export_secs, uint32_t sys_uptime_ms, uint64_t now_ms)
{
    struct fl_pending *e = malloc(sizeof(*e) + len);

    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->src = src;
    e->arrival_ms = now_ms;
    e->export_secs = export_secs;
    e->sys_uptime_ms = sys_uptime_ms;
    e->cap = (uint32_t)len;
    e->prev = d->pend_tail;
    if (d->pend_tail != NULL) {
        d->pend_tail->next = e;
    } else {
        d->pend_head = e;
    }
    d->pend_tail = e;
    d->npending++;
    src->pending++;
    return e;
}

/* Makes room for len more bytes in e, which may move. */
static struct fl_pending *
entry_grow(struct fl_decoder *d, struct fl_pending *e, size_t len)
{
    struct fl_pending *n;

    if (e->cap - e->len >= len) {
        return e;
    }
    n = realloc(e, sizeof(*e) + e->len + len);
    if (n == NULL) {
        return NULL;
    }
    n->cap = (uint32_t)(n->len + len);
    if (n->prev != NULL) {
        n->prev->next = n;
    } else {
        d->pend_head = n;
    }
    if (n->next != NULL) {
        n->next->prev = n;
    } else {
        d->pend_tail = n;
    }
    return n;
}

void
fl_pending_hold(struct fl_decoder *d, struct fl_source *src, const uint8_t *set,
                size_t len, uint32_t export_secs, uint32_t sys_uptime_ms,
                uint64_t now_ms)
{
    struct fl_pending *e;

    /* Oldest data has waited longest for its template: it goes first. */
    while (!fits(d, len)) {
        if (d->pend_head == NULL) {
            d->errors[FL_DE_PENDING_DROP]++;
            return;
        }
        entry_drop(d, d->pend_head);
    }
    if (d->pend_cur != NULL) {
        e = entry_grow(d, d->pend_cur, len);
    } else {
        e = entry_new(d, src, len, export_secs, sys_uptime_ms, now_ms);
    }
    if (e == NULL) {
        d->errors[FL_DE_PENDING_DROP]++;
        return;
    }
    d->pend_cur = e;
    memcpy(e->data + e->len, set, len);
    e->len += (uint32_t)len;
    e->live++;
    d->pending_bytes += len;
}

/* Decodes the sets of e whose template is known now. */
static int
entry_release(struct fl_decoder *d, struct fl_pending *e)
{
    const struct fl_template *t;
    struct fl_cursor c;
    struct fl_cursor body;
    struct fl_msg_ctx ctx;
    uint8_t *hdr;
    uint16_t set_id;
    uint16_t len;
    uint32_t n;
    int first = FL_OK;
    int ret;

    fl_cursor_init(&c, e->data, e->len);
    while (c.left >= 4) {
        hdr = e->data + (e->len - c.left);
        /* The copy holds whole sets, written by fl_pending_hold. */
        if (!fl_cursor_u16(&c, &set_id) || !fl_cursor_u16(&c, &len) ||
            len < 4 || !fl_cursor_sub(&c, len - 4u, &body)) {
            break;
        }
        t = set_id >= 256 ? fl_template_find(e->src, set_id) : NULL;
        if (t == NULL) {
            continue;
        }
        fl_source_ctx(e->src, e->export_secs, e->sys_uptime_ms, &ctx);
        ret = fl_data_set_decode(d, e->src, t, &ctx, &body, &n);
        if (ret != FL_OK && first == FL_OK) {
            first = ret;
        }
        fl_put_be16(hdr, 0);
        e->live--;
    }
    return first;
}

int
fl_pending_release(struct fl_decoder *d, struct fl_source *src)
{
    struct fl_pending *e;
    struct fl_pending *next;
    int first = FL_OK;
    int ret;

    for (e = d->pend_head; e != NULL; e = next) {
        next = e->next;
        if (e->src != src) {
            continue;
        }
        ret = entry_release(d, e);
        if (ret != FL_OK && first == FL_OK) {
            first = ret;
        }
        if (e->live == 0) {
            entry_free(d, e);
        }
    }
    return first;
}

void
fl_pending_expire(struct fl_decoder *d, uint64_t now_ms)
{
    struct fl_pending *e;

    /* Held in arrival order, so the oldest are at the head. */
    while ((e = d->pend_head) != NULL && now_ms > e->arrival_ms &&
           now_ms - e->arrival_ms > d->lim.pending_age_ms) {
        entry_drop(d, e);
    }
}

void
fl_pending_free_all(struct fl_decoder *d)
{
    while (d->pend_head != NULL) {
        entry_free(d, d->pend_head);
    }
}
