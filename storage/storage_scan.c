/*
 * The scan engine: segments and blocks chosen by time, then pruned by
 * the index (Bloom filters, prefix summaries), only the candidates read,
 * checked and decoded; segments of every shard are shared out to the
 * worker threads, so one sensor's archive (one shard) uses every core.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_int.h"

struct scan_ctx {
    struct fl_archive *a;
    const struct fl_scan *q;
    const struct fl_seg **segs; /* every segment in the window */
    size_t *first;              /* segs[i]'s blocks start at first[i] */
    atomic_bool *counted;       /* segs[i] already counted in the stats */
    size_t nsegs;
    size_t nblks; /* blocks of every listed segment */
    atomic_size_t next_blk;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards st and err */
    struct fl_scan_stats st;
    int err;
};

/* One worker's view while decoding a batch. */
struct scan_worker {
    struct scan_ctx *c;
    struct fl_scan_stats st;
    const char *sensor;
    uint8_t *buf;
    size_t cap;
    size_t seg; /* the segment fd is open on */
    int fd;
};

static void
scan_flow(void *arg, const struct fl_flow *f)
{
    struct scan_worker *w = arg;
    const struct fl_scan *q = w->c->q;

    w->st.records++;
    if (atomic_load_explicit(&w->c->stop, memory_order_relaxed)) {
        return;
    }
    if (f->time_start < q->t_start || f->time_start >= q->t_end) {
        return;
    }
    if (q->match != NULL && !q->match(q->match_arg, f, w->sensor)) {
        return;
    }
    w->st.matched++;
    if (q->emit != NULL && !q->emit(q->emit_arg, f, w->sensor)) {
        atomic_store(&w->c->stop, true);
    }
}

static int
scan_batch(void *arg, const uint8_t *batch, size_t len, uint32_t records)
{
    struct scan_worker *w = arg;
    char sensor[65];
    uint8_t key_id[FL_KEYID_LEN];
    uint8_t secret[FL_BATCH_SECRET_LEN];
    const uint8_t *payload;
    size_t plen;
    int ret;

    ret = fl_batch_peek(batch, len, sensor, key_id);
    if (ret == FL_OK) {
        ret = fl_seg_batch_payload(batch, len, &payload, &plen);
    }
    if (ret != FL_OK) {
        return FL_EFORMAT;
    }
    w->sensor = sensor;
    ret = fl_columns_decode(payload, plen, records, fl_seg_decode_cap(records),
                            secret, scan_flow, w);
    w->sensor = NULL;
    return ret;
}

static bool
block_is_candidate(const struct fl_blk *b, const struct fl_scan *q)
{
    for (size_t i = 0; i < q->nneeds; i++) {
        if (!fl_blk_may_match(b, &q->needs[i])) {
            return false;
        }
    }
    return true;
}

static int
scan_block(struct scan_worker *w, const struct fl_seg *s, int fd,
           const struct fl_blk *b)
{
    int ret = fl_seg_read_block(fd, b, &w->buf, &w->cap);

    if (ret == FL_OK) {
        w->st.blocks_read++;
        ret =
            fl_seg_block_batches(w->buf + FL_BLK_HEADER_LEN,
                                 b->length - FL_BLK_HEADER_LEN, scan_batch, w);
    }
    if (ret == FL_EFORMAT || ret == FL_ELIMIT || ret == FL_ETRUNC) {
        w->st.blocks_corrupt++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-CORRUPT",
               "block skipped file=%s offset=%llu error=%s", s->path,
               (unsigned long long)b->offset, fl_strerror(ret));
        return FL_OK;
    }
    return ret;
}

/* Visits block k of segment i: the window, the index, then the read. */
static int
scan_one(struct scan_worker *w, size_t i, size_t k)
{
    const struct fl_scan *q = w->c->q;
    const struct fl_seg *s = w->c->segs[i];
    const struct fl_blk *b = &s->blks[k];

    if (b->flags & FL_BLK_CORRUPT) {
        w->st.blocks_corrupt++;
        return FL_OK;
    }
    if (b->time_first >= q->t_end || b->time_last < q->t_start) {
        return FL_OK;
    }
    if (!atomic_exchange(&w->c->counted[i], true)) {
        w->st.segments++;
    }
    w->st.blocks++;
    if (!q->no_index && !block_is_candidate(b, q)) {
        w->st.blocks_pruned++;
        return FL_OK;
    }
    if (w->fd >= 0 && w->seg != i) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->fd < 0) {
        w->fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (w->fd < 0) {
            return FL_EIO;
        }
        w->seg = i;
    }
    return scan_block(w, s, w->fd, b);
}

static void
add_stats(struct fl_scan_stats *to, const struct fl_scan_stats *from)
{
    to->segments += from->segments;
    to->blocks += from->blocks;
    to->blocks_pruned += from->blocks_pruned;
    to->blocks_read += from->blocks_read;
    to->blocks_corrupt += from->blocks_corrupt;
    to->records += from->records;
    to->matched += from->matched;
}

/* Blocks, not segments, are shared out: one big segment (the open one
 * of a busy sensor) still keeps every thread busy.  Each worker claims
 * the next block; a worker's claims only grow, so its segment cursor
 * only moves forward. */
static void *
scan_worker_run(void *arg)
{
    struct scan_ctx *c = arg;
    struct scan_worker w = {.c = c, .fd = -1};
    int ret = FL_OK;
    size_t seg = 0;
    size_t g;

    while (ret == FL_OK && !atomic_load(&c->stop) &&
           (g = atomic_fetch_add(&c->next_blk, 1)) < c->nblks) {
        while (g >= c->first[seg] + c->segs[seg]->nblks) {
            seg++;
        }
        ret = scan_one(&w, seg, g - c->first[seg]);
    }
    if (w.fd >= 0) {
        close(w.fd);
    }
    pthread_mutex_lock(&c->mu);
    add_stats(&c->st, &w.st);
    if (ret != FL_OK && c->err == FL_OK) {
        c->err = ret;
        atomic_store(&c->stop, true);
    }
    pthread_mutex_unlock(&c->mu);
    free(w.buf);
    return NULL;
}

/* The segment's range comes from its index, so a segment outside the
 * window costs no read at all; one with damage is scanned to report it. */
static bool
seg_in_window(const struct fl_seg *s, const struct fl_scan *q)
{
    if (s->records == 0 || s->nblks == 0 ||
        (s->time_first < q->t_end && s->time_last >= q->t_start)) {
        return true;
    }
    for (size_t k = 0; k < s->nblks; k++) {
        if ((s->blks[k].flags & FL_BLK_CORRUPT) != 0) {
            return true;
        }
    }
    return false;
}

/* Lists the segments of every shard that the scan must visit. */
static int
collect_segments(struct scan_ctx *c)
{
    size_t total = 0;

    for (unsigned i = 0; i < c->a->nshards; i++) {
        total += c->a->shards[i].n;
    }
    total = total > 0 ? total : 1;
    c->segs = calloc(total, sizeof(*c->segs));
    c->first = calloc(total, sizeof(*c->first));
    c->counted = calloc(total, sizeof(*c->counted));
    if (c->segs == NULL || c->first == NULL || c->counted == NULL) {
        return FL_ENOMEM;
    }
    for (unsigned i = 0; i < c->a->nshards; i++) {
        const struct fl_shard *sh = &c->a->shards[i];

        for (size_t j = 0; j < sh->n; j++) {
            if (seg_in_window(sh->segs[j], c->q)) {
                atomic_init(&c->counted[c->nsegs], false);
                c->first[c->nsegs] = c->nblks;
                c->nblks += sh->segs[j]->nblks;
                c->segs[c->nsegs++] = sh->segs[j];
            }
        }
    }
    return FL_OK;
}

static unsigned
thread_count(const struct scan_ctx *c)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = c->q->threads;

    if (n == 0) {
        n = cpus > 0 ? (size_t)cpus : 1;
    }
    if (n > c->nblks) {
        n = c->nblks;
    }
    return n > 64 ? 64 : (n ? (unsigned)n : 1);
}

int
fl_archive_scan(struct fl_archive *a, const struct fl_scan *q,
                struct fl_scan_stats *st)
{
    struct scan_ctx c;
    pthread_t tids[64];
    unsigned n;
    unsigned started = 0;

    memset(&c, 0, sizeof(c));
    c.a = a;
    c.q = q;
    atomic_init(&c.next_blk, 0);
    atomic_init(&c.stop, false);
    pthread_mutex_init(&c.mu, NULL);

    pthread_rwlock_rdlock(&a->lock);
    c.err = collect_segments(&c);
    n = thread_count(&c);
    for (unsigned i = 1; c.err == FL_OK && i < n; i++) {
        if (pthread_create(&tids[started], NULL, scan_worker_run, &c) != 0) {
            break;
        }
        started++;
    }
    /* The calling thread works too. */
    if (c.err == FL_OK) {
        scan_worker_run(&c);
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    pthread_rwlock_unlock(&a->lock);

    free(c.segs);
    free(c.first);
    free(c.counted);
    pthread_mutex_destroy(&c.mu);
    if (st != NULL) {
        *st = c.st;
    }
    return c.err;
}
