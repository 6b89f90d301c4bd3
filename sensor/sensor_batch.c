/*
 * The batcher: flows decoded in the main thread go into the open batch,
 * closed batches wait in a bounded queue, and one worker thread offers
 * each to a sink (sign and append) until it is taken.  Nothing is dropped
 * silently: a full queue makes the main thread wait instead.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor_int.h"

/* Room for extra bytes per flow on average; a batch closes early when the
 * arena fills (never below a few of the largest records). */
#define ARENA_PER_FLOW 128
#define ARENA_MIN (4 * FL_EXTRA_MAX)

struct fl_batcher {
    struct fl_batcher_opts o;
    size_t arena_cap;
    struct fl_batch_buf *bufs;  /* queue + 1 of them */
    struct fl_batch_buf **ring; /* closed batches, oldest at head */
    size_t head;
    size_t count;
    struct fl_batch_buf **spare; /* buffers free for the next batch */
    size_t nspare;

    /* Main thread only. */
    struct fl_batch_buf *cur; /* the open batch */
    bool clock_set;
    uint64_t last_close_ms;
    struct fl_batch_losses seen; /* cumulative losses at the last close */

    pthread_mutex_t mu;
    pthread_cond_t more; /* worker: a batch queued, or quit */
    pthread_cond_t room; /* main: the queue has room */
    pthread_t worker;
    bool sync_ok; /* mu, more and room exist */
    bool running;
    bool draining; /* stop began: refusals are retried until deadline */
    bool gave_up;  /* the deadline passed: further batches are lost */
    bool quit;     /* no more batches will come */
    uint64_t deadline_ms;
    struct fl_batcher_stats st;
    struct fl_ratelimit wait_rl;
};

void
fl_batcher_opts_default(struct fl_batcher_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->records = 10000;
    o->age_ms = 1000;
    o->heartbeat_ms = 10000;
    o->queue = 4;
    o->retry_ms = 1000;
    o->drain_ms = 30000;
}

static void
buf_reset(struct fl_batch_buf *buf)
{
    buf->nflows = 0;
    buf->arena_len = 0;
    buf->opened_ms = 0;
    buf->closed_ms = 0;
    buf->time_first = UINT64_MAX;
    buf->time_last = 0;
    memset(&buf->lost, 0, sizeof(buf->lost));
}

/* ---- the worker ------------------------------------------------------- */

/* The queue's head was taken: its buffer becomes spare. */
static void
taken(struct fl_batcher *b, struct fl_batch_buf *buf, uint64_t refusals)
{
    b->st.batches++;
    b->st.heartbeats += buf->nflows == 0;
    b->st.flows += buf->nflows;
    if (refusals > 0) {
        fl_log(FL_LOG_NOTICE, "FL-SENSOR-BATCH",
               "batch stored after refusals=%llu records=%zu",
               (unsigned long long)refusals, buf->nflows);
    }
    b->head = (b->head + 1) % b->o.queue;
    b->count--;
    b->spare[b->nspare++] = buf;
    pthread_cond_signal(&b->room);
}

static void
log_lost(const struct fl_batch_buf *buf)
{
    char first[FL_TIME_STRLEN];
    char last[FL_TIME_STRLEN];

    fl_time_format(buf->time_first, first);
    fl_time_format(buf->time_last, last);
    fl_log(FL_LOG_ERR, "FL-SENSOR-BATCH-LOST",
           "batch not stored at shutdown records=%zu time_first=%s "
           "time_last=%s",
           buf->nflows, first, last);
}

/* The stop deadline passed with the sink still refusing: every queued
 * batch is logged and counted as lost, and room opens for the last one. */
static void
give_up(struct fl_batcher *b)
{
    while (b->count > 0) {
        struct fl_batch_buf *buf = b->ring[b->head];

        log_lost(buf);
        b->st.lost++;
        b->head = (b->head + 1) % b->o.queue;
        b->count--;
        b->spare[b->nspare++] = buf;
    }
    b->gave_up = true;
    pthread_cond_broadcast(&b->room);
}

/* Waits on cv (with mu held) at most ms milliseconds. */
static void
wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(cv, mu, &ts);
}

/* With mu held: from now on refusals count against the stop deadline. */
static void
start_drain(struct fl_batcher *b)
{
    if (!b->draining) {
        b->draining = true;
        b->deadline_ms = fl_time_mono_ms() + b->o.drain_ms;
    }
}

static void *
worker_main(void *arg)
{
    struct fl_batcher *b = arg;
    uint64_t refusals = 0;

    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct fl_batch_buf *buf;
        int rc;

        while (b->count == 0 && !b->quit) {
            pthread_cond_wait(&b->more, &b->mu);
        }
        if (b->count == 0) {
            break;
        }
        buf = b->ring[b->head];
        /* The sink runs unlocked so the main thread can keep queueing. */
        pthread_mutex_unlock(&b->mu);
        rc = b->o.sink(b->o.sink_arg, buf);
        pthread_mutex_lock(&b->mu);
        if (rc == FL_OK) {
            taken(b, buf, refusals);
            refusals = 0;
            continue;
        }
        b->st.refusals++;
        refusals++;
        if (b->draining && fl_time_mono_ms() >= b->deadline_ms) {
            give_up(b);
            continue;
        }
        wait_ms(&b->more, &b->mu, b->o.retry_ms);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- the main thread's side ------------------------------------------- */

/* Hands the open batch to the worker; waits while the queue is full. */
static void
enqueue(struct fl_batcher *b)
{
    uint64_t suppressed = 0;

    pthread_mutex_lock(&b->mu);
    if (b->count == b->o.queue && !b->gave_up) {
        b->st.waits++;
        if (fl_ratelimit_pass(&b->wait_rl, fl_time_mono_ms(), &suppressed)) {
            fl_log(FL_LOG_WARN, "FL-SENSOR-BATCH",
                   "batch queue full, receiving paused until a batch is "
                   "stored queue=%zu suppressed=%llu",
                   b->o.queue, (unsigned long long)suppressed);
        }
    }
    while (b->count == b->o.queue && !b->gave_up) {
        if (b->o.stopping != NULL && b->o.stopping(b->o.stopping_arg)) {
            start_drain(b);
        }
        wait_ms(&b->room, &b->mu, 1000);
    }
    if (b->gave_up) {
        log_lost(b->cur);
        b->st.lost++;
        buf_reset(b->cur);
        pthread_mutex_unlock(&b->mu);
        return;
    }
    b->ring[(b->head + b->count) % b->o.queue] = b->cur;
    b->count++;
    assert(b->nspare > 0);
    b->cur = b->spare[--b->nspare];
    buf_reset(b->cur);
    pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->mu);
}

/* A counter that went backwards (a reset) counts from zero again. */
static uint64_t
since(uint64_t now, uint64_t then)
{
    return now >= then ? now - then : now;
}

static void
close_batch(struct fl_batcher *b, uint64_t now_ms)
{
    struct fl_batch_buf *buf = b->cur;
    struct fl_batch_losses cum = {0, 0, 0};

    if (b->o.losses != NULL) {
        b->o.losses(b->o.losses_arg, &cum);
    }
    buf->lost.socket = since(cum.socket, b->seen.socket);
    buf->lost.decode = since(cum.decode, b->seen.decode);
    buf->lost.sequence = since(cum.sequence, b->seen.sequence);
    b->seen = cum;
    buf->closed_ms = now_ms;
    if (buf->nflows == 0) {
        buf->time_first = now_ms;
        buf->time_last = now_ms;
    }
    b->last_close_ms = now_ms;
    enqueue(b);
}

/* Old enough to close; a clock that jumped back by more than an age
 * closes too, rather than holding flows until it catches up. */
static bool
aged(const struct fl_batcher *b, uint64_t now_ms)
{
    const struct fl_batch_buf *buf = b->cur;

    if (now_ms + b->o.age_ms < buf->opened_ms) {
        return true;
    }
    return now_ms >= buf->opened_ms && now_ms - buf->opened_ms >= b->o.age_ms;
}

static void
note_clock(struct fl_batcher *b, uint64_t now_ms)
{
    if (!b->clock_set || now_ms < b->last_close_ms) {
        b->last_close_ms = now_ms;
        b->clock_set = true;
    }
}

void
fl_batcher_add(struct fl_batcher *b, const struct fl_flow *flow,
               uint64_t now_ms)
{
    struct fl_batch_buf *buf;
    struct fl_flow *f;

    note_clock(b, now_ms);
    if (b->cur->nflows > 0 &&
        (aged(b, now_ms) ||
         flow->extra_len > b->arena_cap - b->cur->arena_len)) {
        close_batch(b, now_ms);
    }
    /* The decoder never hands out more than FL_EXTRA_MAX extra bytes. */
    assert(flow->extra_len <= b->arena_cap);
    buf = b->cur;
    f = &buf->flows[buf->nflows++];
    *f = *flow;
    if (flow->extra_len > 0) {
        memcpy(buf->arena + buf->arena_len, flow->extra, flow->extra_len);
        f->extra = buf->arena + buf->arena_len;
        buf->arena_len += flow->extra_len;
    } else {
        f->extra = NULL;
    }
    if (buf->nflows == 1) {
        buf->opened_ms = now_ms;
    }
    buf->time_first =
        flow->time_start < buf->time_first ? flow->time_start : buf->time_first;
    buf->time_last =
        flow->time_end > buf->time_last ? flow->time_end : buf->time_last;
    if (buf->nflows == b->o.records) {
        close_batch(b, now_ms);
    }
}

void
fl_batcher_tick(struct fl_batcher *b, uint64_t now_ms)
{
    note_clock(b, now_ms);
    if (b->cur->nflows > 0) {
        if (aged(b, now_ms)) {
            close_batch(b, now_ms);
        }
        return;
    }
    if (now_ms - b->last_close_ms >= b->o.heartbeat_ms) {
        close_batch(b, now_ms);
    }
}

uint64_t
fl_batcher_due(const struct fl_batcher *b)
{
    if (b->cur->nflows > 0) {
        return b->cur->opened_ms + b->o.age_ms;
    }
    return b->last_close_ms + b->o.heartbeat_ms;
}

/* ---- lifecycle -------------------------------------------------------- */

static int
check_opts(const struct fl_batcher_opts *o)
{
    if (o->records == 0 || o->records > FL_BATCH_MAX_RECORDS || o->queue == 0 ||
        o->age_ms == 0 || o->heartbeat_ms == 0 || o->sink == NULL) {
        return FL_EINVAL;
    }
    return FL_OK;
}

static int
alloc_buffers(struct fl_batcher *b)
{
    size_t n = b->o.queue + 1;

    b->bufs = calloc(n, sizeof(*b->bufs));
    b->ring = calloc(b->o.queue, sizeof(*b->ring));
    b->spare = calloc(n, sizeof(*b->spare));
    if (b->bufs == NULL || b->ring == NULL || b->spare == NULL) {
        return FL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        b->bufs[i].flows = calloc(b->o.records, sizeof(struct fl_flow));
        b->bufs[i].arena = malloc(b->arena_cap);
        if (b->bufs[i].flows == NULL || b->bufs[i].arena == NULL) {
            return FL_ENOMEM;
        }
        buf_reset(&b->bufs[i]);
        b->spare[b->nspare++] = &b->bufs[i];
    }
    b->cur = b->spare[--b->nspare];
    return FL_OK;
}

/* The lock and both condition variables, which wait on the monotonic
 * clock. */
static int
init_sync(struct fl_batcher *b)
{
    pthread_condattr_t ca;
    int rc = FL_EIO;

    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        return FL_EIO;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&b->mu);
        return FL_EIO;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(&b->more, &ca) == 0) {
        if (pthread_cond_init(&b->room, &ca) == 0) {
            rc = FL_OK;
        } else {
            pthread_cond_destroy(&b->more);
        }
    }
    pthread_condattr_destroy(&ca);
    if (rc != FL_OK) {
        pthread_mutex_destroy(&b->mu);
    }
    return rc;
}

int
fl_batcher_start(const struct fl_batcher_opts *o, struct fl_batcher **out)
{
    struct fl_batcher *b;
    int rc;

    *out = NULL;
    if (check_opts(o) != FL_OK) {
        return FL_EINVAL;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return FL_ENOMEM;
    }
    b->o = *o;
    b->arena_cap = o->records * ARENA_PER_FLOW;
    b->arena_cap = b->arena_cap < ARENA_MIN ? ARENA_MIN : b->arena_cap;
    fl_ratelimit_init(&b->wait_rl, 10000, 3);
    rc = alloc_buffers(b);
    if (rc == FL_OK) {
        rc = init_sync(b);
    }
    if (rc == FL_OK) {
        b->sync_ok = true;
        rc = pthread_create(&b->worker, NULL, worker_main, b) == 0 ? FL_OK
                                                                   : FL_EIO;
    }
    if (rc != FL_OK) {
        fl_batcher_free(b);
        return rc;
    }
    b->running = true;
    *out = b;
    return FL_OK;
}

int
fl_batcher_stop(struct fl_batcher *b, uint64_t now_ms)
{
    if (!b->running) {
        return b->st.lost > 0 ? FL_EIO : FL_OK;
    }
    pthread_mutex_lock(&b->mu);
    start_drain(b);
    pthread_mutex_unlock(&b->mu);
    if (b->cur->nflows > 0) {
        close_batch(b, now_ms);
    }
    pthread_mutex_lock(&b->mu);
    b->quit = true;
    pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->worker, NULL);
    b->running = false;
    return b->st.lost > 0 ? FL_EIO : FL_OK;
}

void
fl_batcher_get_stats(struct fl_batcher *b, struct fl_batcher_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->st;
    pthread_mutex_unlock(&b->mu);
}

void
fl_batcher_free(struct fl_batcher *b)
{
    if (b == NULL) {
        return;
    }
    if (b->running) {
        (void)fl_batcher_stop(b, b->last_close_ms);
    }
    if (b->bufs != NULL) {
        for (size_t i = 0; i < b->o.queue + 1; i++) {
            free(b->bufs[i].flows);
            free(b->bufs[i].arena);
        }
    }
    free(b->bufs);
    free(b->ring);
    free(b->spare);
    if (b->sync_ok) {
        pthread_cond_destroy(&b->more);
        pthread_cond_destroy(&b->room);
        pthread_mutex_destroy(&b->mu);
    }
    free(b);
}
