/*
 * Tests of the batcher's closing rules (records, age, heartbeat), its
 * loss accounting and its retry of refused batches, with the clock given
 * by each call and a sink that records what it takes instead of an archive.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "sensor_int.h"

#define MAX_TAKEN 64

struct taken {
    size_t nflows;
    uint16_t first_port; /* src_port of the first flow */
    uint16_t last_port;
    uint64_t time_first;
    uint64_t time_last;
    uint64_t closed_ms;
    struct fl_batch_losses lost;
    uint8_t extra[16];
    uint32_t extra_len;
};

struct sink {
    pthread_mutex_t mu;
    struct taken t[MAX_TAKEN];
    size_t n;
    unsigned refuse; /* offers still to refuse */
    unsigned offers;
    bool refuse_all;
    struct fl_batch_losses cum; /* what the losses callback reports */
};

static int
sink_take(void *arg, const struct fl_batch_buf *b)
{
    struct sink *s = arg;
    struct taken *t;
    int rc = FL_OK;

    pthread_mutex_lock(&s->mu);
    s->offers++;
    if (s->refuse_all || s->refuse > 0) {
        s->refuse -= s->refuse > 0;
        rc = FL_EIO;
        goto out;
    }
    cr_assert(s->n < MAX_TAKEN);
    t = &s->t[s->n++];
    t->nflows = b->nflows;
    t->first_port = b->nflows > 0 ? b->flows[0].src_port : 0;
    t->last_port = b->nflows > 0 ? b->flows[b->nflows - 1].src_port : 0;
    t->time_first = b->time_first;
    t->time_last = b->time_last;
    t->closed_ms = b->closed_ms;
    t->lost = b->lost;
    if (b->nflows > 0 && b->flows[0].extra_len > 0 &&
        b->flows[0].extra_len <= sizeof(t->extra)) {
        t->extra_len = b->flows[0].extra_len;
        memcpy(t->extra, b->flows[0].extra, t->extra_len);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void
sink_losses(void *arg, struct fl_batch_losses *out)
{
    struct sink *s = arg;

    *out = s->cum;
}

static struct sink sink;

static void
setup(void)
{
    memset(&sink, 0, sizeof(sink));
    pthread_mutex_init(&sink.mu, NULL);
}

static struct fl_batcher *
start(size_t records, uint64_t age_ms, size_t queue)
{
    struct fl_batcher_opts o;
    struct fl_batcher *b = NULL;

    fl_batcher_opts_default(&o);
    o.records = records;
    o.age_ms = age_ms;
    o.queue = queue;
    o.retry_ms = 5;
    o.drain_ms = 200;
    o.sink = sink_take;
    o.sink_arg = &sink;
    o.losses = sink_losses;
    o.losses_arg = &sink;
    cr_assert_eq(fl_batcher_start(&o, &b), FL_OK);
    return b;
}

static void
add(struct fl_batcher *b, uint16_t port, uint64_t t_flow, uint64_t now)
{
    struct fl_flow f;

    fl_flow_clear(&f);
    f.src_port = port;
    f.time_start = t_flow;
    f.time_end = t_flow + 10;
    fl_batcher_add(b, &f, now);
}

TestSuite(sensor_batch, .init = setup);

Test(sensor_batch, closes_when_the_record_count_is_reached)
{
    struct fl_batcher *b = start(3, 1000, 4);

    for (uint16_t i = 0; i < 7; i++) {
        add(b, i, 100 + i, 50);
    }
    cr_assert_eq(fl_batcher_stop(b, 60), FL_OK);
    cr_assert_eq(sink.n, 3);
    cr_assert_eq(sink.t[0].nflows, 3);
    cr_assert_eq(sink.t[1].nflows, 3);
    cr_assert_eq(sink.t[2].nflows, 1, "stop closes the open batch");
    cr_assert_eq(sink.t[0].first_port, 0);
    cr_assert_eq(sink.t[1].first_port, 3);
    cr_assert_eq(sink.t[2].last_port, 6);
    cr_assert_eq(sink.t[1].time_first, 103);
    cr_assert_eq(sink.t[1].time_last, 115);
    fl_batcher_free(b);
}

Test(sensor_batch, closes_when_the_first_flow_is_older_than_the_age)
{
    struct fl_batcher *b = start(100, 1000, 4);

    add(b, 1, 0, 5000);
    add(b, 2, 0, 5500);
    fl_batcher_tick(b, 5999);
    cr_assert_eq(fl_batcher_due(b), 6000);
    add(b, 3, 0, 5999);
    /* The age counts from the first flow: the fourth starts a new batch. */
    add(b, 4, 0, 6000);
    fl_batcher_tick(b, 6500);
    fl_batcher_tick(b, 7000);
    add(b, 5, 0, 7001);
    cr_assert_eq(fl_batcher_stop(b, 7002), FL_OK);
    cr_assert_eq(sink.n, 3);
    cr_assert_eq(sink.t[0].nflows, 3);
    cr_assert_eq(sink.t[0].closed_ms, 6000);
    cr_assert_eq(sink.t[1].nflows, 1);
    cr_assert_eq(sink.t[1].first_port, 4);
    cr_assert_eq(sink.t[1].closed_ms, 7000, "closed by the tick at its age");
    cr_assert_eq(sink.t[2].first_port, 5);
    fl_batcher_free(b);
}

Test(sensor_batch, writes_a_heartbeat_only_when_idle_for_ten_seconds)
{
    struct fl_batcher *b = start(100, 1000, 4);

    fl_batcher_tick(b, 100000);
    fl_batcher_tick(b, 105000);
    fl_batcher_tick(b, 109999);
    fl_batcher_tick(b, 110000); /* heartbeat 1 */
    fl_batcher_tick(b, 115000);
    add(b, 7, 0, 118000);
    fl_batcher_tick(b, 119000); /* closes the data batch by age */
    fl_batcher_tick(b, 128999);
    fl_batcher_tick(b, 129000); /* heartbeat 2: ten seconds after it */
    cr_assert_eq(fl_batcher_stop(b, 129500), FL_OK);
    cr_assert_eq(sink.n, 3);
    cr_assert_eq(sink.t[0].nflows, 0);
    cr_assert_eq(sink.t[0].time_first, 110000);
    cr_assert_eq(sink.t[0].time_last, 110000);
    cr_assert_eq(sink.t[1].nflows, 1);
    cr_assert_eq(sink.t[2].nflows, 0);
    cr_assert_eq(sink.t[2].closed_ms, 129000);
    fl_batcher_free(b);
}

Test(sensor_batch, copies_extra_bytes_out_of_the_decoder)
{
    struct fl_batcher *b = start(10, 1000, 4);
    uint8_t extra[8] = {0, 0, 0, 9, 0, 1, 0, 1};
    struct fl_flow f;

    fl_flow_clear(&f);
    f.extra = extra;
    f.extra_len = sizeof(extra);
    fl_batcher_add(b, &f, 0);
    memset(extra, 0xee, sizeof(extra)); /* the decoder reuses its scratch */
    cr_assert_eq(fl_batcher_stop(b, 1), FL_OK);
    cr_assert_eq(sink.n, 1);
    cr_assert_eq(sink.t[0].extra_len, 8);
    cr_assert_eq(sink.t[0].extra[3], 9);
    cr_assert_eq(sink.t[0].extra[7], 1);
    fl_batcher_free(b);
}

Test(sensor_batch, states_losses_since_the_previous_batch)
{
    struct fl_batcher *b = start(1, 1000, 4);

    sink.cum = (struct fl_batch_losses){5, 2, 100};
    add(b, 1, 0, 0);
    sink.cum = (struct fl_batch_losses){5, 3, 130};
    add(b, 2, 0, 0);
    sink.cum = (struct fl_batch_losses){1, 3, 130}; /* a counter reset */
    add(b, 3, 0, 0);
    cr_assert_eq(fl_batcher_stop(b, 0), FL_OK);
    cr_assert_eq(sink.n, 3);
    cr_assert_eq(sink.t[0].lost.socket, 5);
    cr_assert_eq(sink.t[0].lost.decode, 2);
    cr_assert_eq(sink.t[0].lost.sequence, 100);
    cr_assert_eq(sink.t[1].lost.socket, 0);
    cr_assert_eq(sink.t[1].lost.decode, 1);
    cr_assert_eq(sink.t[1].lost.sequence, 30);
    cr_assert_eq(sink.t[2].lost.socket, 1);
    fl_batcher_free(b);
}

Test(sensor_batch, retries_a_refused_batch_and_keeps_the_order)
{
    struct fl_batcher *b = start(1, 1000, 1);
    struct fl_batcher_stats st;

    sink.refuse = 10; /* 50 ms: the queue of one fills meanwhile */
    for (uint16_t i = 0; i < 5; i++) {
        add(b, i, 0, 0);
    }
    cr_assert_eq(fl_batcher_stop(b, 0), FL_OK);
    fl_batcher_get_stats(b, &st);
    cr_assert_eq(sink.n, 5, "no batch dropped");
    for (uint16_t i = 0; i < 5; i++) {
        cr_assert_eq(sink.t[i].first_port, i);
    }
    cr_assert_eq(st.refusals, 10);
    cr_assert_eq(st.batches, 5);
    cr_assert_geq(st.waits, 1, "the main thread waited for room");
    cr_assert_eq(st.lost, 0);
    fl_batcher_free(b);
}

Test(sensor_batch, reports_batches_still_refused_when_the_stop_drain_ends)
{
    struct fl_batcher *b = start(1, 1000, 4);
    struct fl_batcher_stats st;

    sink.refuse_all = true;
    add(b, 1, 0, 0);
    add(b, 2, 0, 0);
    cr_assert_eq(fl_batcher_stop(b, 0), FL_EIO);
    fl_batcher_get_stats(b, &st);
    cr_assert_eq(st.lost, 2);
    cr_assert_eq(st.batches, 0);
    cr_assert_gt(sink.offers, 2, "refused batches were offered again");
    fl_batcher_free(b);
}

static bool
always_stopping(void *arg)
{
    (void)arg;
    return true;
}

Test(sensor_batch, a_stop_ends_a_wait_for_room_that_would_never_come,
     .timeout = 10)
{
    struct fl_batcher_opts o;
    struct fl_batcher *b = NULL;
    struct fl_batcher_stats st;

    fl_batcher_opts_default(&o);
    o.records = 1;
    o.queue = 1;
    o.retry_ms = 5;
    o.drain_ms = 100;
    o.sink = sink_take;
    o.sink_arg = &sink;
    o.stopping = always_stopping;
    sink.refuse_all = true;
    cr_assert_eq(fl_batcher_start(&o, &b), FL_OK);
    add(b, 1, 0, 0);
    add(b, 2, 0, 0); /* the queue is full: waits, then the drain ends */
    add(b, 3, 0, 0);
    cr_assert_eq(fl_batcher_stop(b, 0), FL_EIO);
    fl_batcher_get_stats(b, &st);
    cr_assert_eq(st.lost, 3, "every batch is accounted for as lost");
    cr_assert_geq(st.waits, 1);
    cr_assert_eq(sink.n, 0);
    fl_batcher_free(b);
}

Test(sensor_batch, refuses_options_that_cannot_work)
{
    struct fl_batcher_opts o;
    struct fl_batcher *b = NULL;

    fl_batcher_opts_default(&o);
    cr_assert_eq(fl_batcher_start(&o, &b), FL_EINVAL, "no sink");
    o.sink = sink_take;
    o.records = 0;
    cr_assert_eq(fl_batcher_start(&o, &b), FL_EINVAL);
    o.records = FL_BATCH_MAX_RECORDS + 1;
    cr_assert_eq(fl_batcher_start(&o, &b), FL_EINVAL);
    cr_assert_null(b);
}
