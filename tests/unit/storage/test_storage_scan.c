/*
 * The scan engine against a brute-force filter over the same flows: the
 * same answers with and without the index, and the index skipping blocks
 * for selective queries, whichever summaries the budget kept or dropped;
 * an index of an unknown version read as the blocks.  Also reports append
 * and lookup speed.
 */
#include <sys/stat.h>
#include <time.h>

#include "test_storage_util.h"

#define NFLOWS 200000
#define PER_BATCH 4000
#define T0 1764781200000ull /* 2025-12-03T17:00:00Z */
#define SPAN (3 * FL_HOUR_MS)

static struct fl_flow *flows;
static char dir[256];
static struct fl_archive *arch;
static const char *sensors[2];
/* The index budget of the archive under test, in percent of a block. */
static unsigned budget = FL_IX_BUDGET_PCT;

static int
by_start(const void *x, const void *y)
{
    const struct fl_flow *a = x;
    const struct fl_flow *b = y;

    return a->time_start < b->time_start ? -1 : a->time_start > b->time_start;
}

/* Plants the addresses the queries look for into a few flows. */
static void
plant(struct fl_flow *f, size_t n)
{
    static const char *hosts[] = {"198.51.100.7", "198.51.100.8",
                                  "2001:db8:1234:5::9"};
    uint64_t s = 77;

    for (size_t i = 0; i < 40; i++) {
        struct fl_flow *x = &f[tu_rnd(&s) % n];
        struct fl_addr *side = (i & 1) ? &x->src_addr : &x->dst_addr;

        fl_addr_parse(hosts[i % 3], side);
    }
    for (size_t i = 0; i < 30; i++) {
        struct fl_flow *x = &f[tu_rnd(&s) % n];

        fl_addr_from_v4(&x->src_addr, 0xcb007100u | (uint32_t)(i * 7));
    }
}

/* Two sensors whose names land on different shards of two. */
static void
pick_sensors(void)
{
    static char names[2][16];
    int k = 0;

    for (int i = 0; k < 2; i++) {
        snprintf(names[k], sizeof(names[k]), "edge-%d", i);
        if ((int)fl_archive_shard_of(names[k], 2) == k) {
            sensors[k] = names[k];
            k++;
        }
    }
}

static void
setup(void)
{
    struct fl_archive_opts o;
    struct tu_sensor ts[2];
    char err[256];
    uint64_t s = 4242;

    tu_quiet();
    pick_sensors();
    tu_tmpdir(dir);
    flows = calloc(NFLOWS, sizeof(*flows));
    tu_flows(flows, NFLOWS, &s, T0, SPAN);
    plant(flows, NFLOWS);
    qsort(flows, NFLOWS, sizeof(*flows), by_start);
    fl_archive_opts_default(&o);
    o.shards = 2;
    cr_assert_eq(fl_archive_open(dir, &o, &arch, err, sizeof(err)), FL_OK);
    arch->ib.budget_pct = budget;
    tu_sensor_init(&ts[0], dir, sensors[0]);
    tu_sensor_init(&ts[1], dir, sensors[1]);
    for (size_t i = 0; i < NFLOWS; i += PER_BATCH) {
        cr_assert_eq(
            tu_append(arch, &ts[(i / PER_BATCH) % 2], flows + i, PER_BATCH),
            FL_OK);
    }
    tu_sensor_fini(&ts[0]);
    tu_sensor_fini(&ts[1]);
}

static void
teardown(void)
{
    fl_archive_close(arch);
    tu_rmtree(dir);
    free(flows);
}

/* ---- the query, brute force and through the archive ------------------ */

static bool
flow_meets(const struct fl_flow *f, const struct fl_scan_need *needs,
           size_t nneeds)
{
    for (size_t i = 0; i < nneeds; i++) {
        bool hit = false;

        for (size_t j = 0; j < needs[i].n && !hit; j++) {
            const struct fl_prefix *p = &needs[i].prefixes[j];

            hit = (needs[i].side != FL_SIDE_DST &&
                   fl_prefix_contains(p, &f->src_addr)) ||
                  (needs[i].side != FL_SIDE_SRC &&
                   fl_prefix_contains(p, &f->dst_addr));
        }
        if (!hit) {
            return false;
        }
    }
    return true;
}

struct query {
    const struct fl_scan_need *needs;
    size_t nneeds;
};

static bool
match_fn(void *arg, const struct fl_flow *f, const char *sensor)
{
    const struct query *q = arg;

    (void)sensor;
    return flow_meets(f, q->needs, q->nneeds);
}

/* A flow's fingerprint, summed: order-free equality of result sets. */
static uint64_t
fingerprint(const struct fl_flow *f)
{
    uint64_t h = f->time_start * 1000003u + f->bytes;

    h ^= fl_be_uint(f->src_addr.b + 8, 8) * 31 + fl_be_uint(f->dst_addr.b, 8);
    return h * 0x9e3779b97f4a7c15ull + f->src_port;
}

struct results {
    pthread_mutex_t mu;
    uint64_t n;
    uint64_t sum;
    uint64_t xsum;
};

static bool
emit_fn(void *arg, const struct fl_flow *f, const char *sensor)
{
    struct results *r = arg;
    uint64_t fp = fingerprint(f);

    cr_assert(strcmp(sensor, sensors[0]) == 0 ||
              strcmp(sensor, sensors[1]) == 0);
    pthread_mutex_lock(&r->mu);
    r->n++;
    r->sum += fp;
    r->xsum ^= fp * 0xff51afd7ed558ccdull;
    pthread_mutex_unlock(&r->mu);
    return true;
}

static void
brute(uint64_t t0, uint64_t t1, const struct query *q, struct results *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < NFLOWS; i++) {
        if (flows[i].time_start >= t0 && flows[i].time_start < t1 &&
            flow_meets(&flows[i], q->needs, q->nneeds)) {
            uint64_t fp = fingerprint(&flows[i]);

            r->n++;
            r->sum += fp;
            r->xsum ^= fp * 0xff51afd7ed558ccdull;
        }
    }
}

static void
run(uint64_t t0, uint64_t t1, struct query *q, bool no_index, struct results *r,
    struct fl_scan_stats *st)
{
    struct fl_scan sc = {.t_start = t0,
                         .t_end = t1,
                         .needs = q->needs,
                         .nneeds = q->nneeds,
                         .no_index = no_index,
                         .match = match_fn,
                         .match_arg = q,
                         .emit = emit_fn,
                         .emit_arg = r};

    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    cr_assert_eq(fl_archive_scan(arch, &sc, st), FL_OK);
    pthread_mutex_destroy(&r->mu);
}

/* Runs q with and without the index; both equal brute force.  Returns
 * the blocks the index pruned. */
static uint64_t
check_query(const char *what, uint64_t t0, uint64_t t1, struct query *q)
{
    struct results want;
    struct results got;
    struct results all;
    struct fl_scan_stats st;
    struct fl_scan_stats st_all;

    brute(t0, t1, q, &want);
    run(t0, t1, q, false, &got, &st);
    run(t0, t1, q, true, &all, &st_all);
    cr_log_info("%s: %llu flows, blocks %llu pruned %llu read %llu", what,
                (unsigned long long)want.n, (unsigned long long)st.blocks,
                (unsigned long long)st.blocks_pruned,
                (unsigned long long)st.blocks_read);
    cr_assert_eq(got.n, want.n, "%s", what);
    cr_assert_eq(got.sum, want.sum, "%s", what);
    cr_assert_eq(got.xsum, want.xsum, "%s", what);
    cr_assert_eq(all.n, want.n, "%s", what);
    cr_assert_eq(all.sum, want.sum, "%s", what);
    cr_assert_eq(st.matched, want.n);
    cr_assert_eq(st_all.blocks_pruned, 0);
    cr_assert_eq(st.blocks_pruned + st.blocks_read, st.blocks);
    cr_assert_eq(st.blocks_corrupt, 0);
    return st.blocks_pruned;
}

static struct fl_prefix
pfx(const char *s)
{
    struct fl_prefix p;

    cr_assert_eq(fl_prefix_parse(s, &p), FL_OK, "%s", s);
    return p;
}

/* Blocks of the archive where a level was dropped. */
static uint64_t
dropped(int level)
{
    uint64_t k = 0;

    for (uint32_t i = 0; i < arch->nshards; i++) {
        for (size_t j = 0; j < arch->shards[i].n; j++) {
            const struct fl_seg *s = arch->shards[i].segs[j];

            for (size_t b = 0; b < s->nblks; b++) {
                k += s->blks[b].lv[level].enc == FL_IXENC_ABSENT;
            }
        }
    }
    return k;
}

/*
 * Every query agrees with brute force, with and without the index.  The
 * Bloom filter is always kept, so host lookups always prune; prefix
 * lookups prune only when every level is kept (full).
 */
static void
queries_agree(bool full)
{
    struct fl_prefix host = pfx("198.51.100.7");
    struct fl_prefix net24 = pfx("203.0.113.0/24");
    struct fl_prefix net16 = pfx("198.51.0.0/16");
    struct fl_prefix net20 = pfx("203.0.112.0/20");
    struct fl_prefix v6net = pfx("2001:db8:1234::/48");
    struct fl_prefix v6host = pfx("2001:db8:1234:5::9");
    struct fl_prefix list[3] = {pfx("198.51.100.8"), pfx("2001:db8:1234:5::9"),
                                pfx("192.0.2.200")};
    struct fl_prefix wide = pfx("0.0.0.0/1");
    struct fl_scan_need n_host = {FL_SIDE_ANY, &host, 1};
    struct fl_scan_need n_src24 = {FL_SIDE_SRC, &net24, 1};
    struct fl_scan_need n_16 = {FL_SIDE_ANY, &net16, 1};
    struct fl_scan_need n_20 = {FL_SIDE_SRC, &net20, 1};
    struct fl_scan_need n_v6 = {FL_SIDE_ANY, &v6net, 1};
    struct fl_scan_need n_v6h = {FL_SIDE_SRC, &v6host, 1};
    struct fl_scan_need n_list = {FL_SIDE_ANY, list, 3};
    struct fl_scan_need n_wide = {FL_SIDE_SRC, &wide, 1};
    struct fl_scan_need both[2] = {{FL_SIDE_ANY, &net16, 1},
                                   {FL_SIDE_SRC, &wide, 1}};
    struct query q;
    uint64_t all = UINT64_MAX;
    uint64_t mid0 = T0 + 40 * 60000;
    uint64_t mid1 = T0 + 130 * 60000;
    uint64_t pruned;

    q = (struct query){&n_host, 1};
    cr_assert_gt(check_query("host", 0, all, &q), 0);
    q = (struct query){&n_src24, 1};
    pruned = check_query("src /24", 0, all, &q);
    cr_assert(!full || pruned > 0);
    q = (struct query){&n_16, 1};
    pruned = check_query("/16", 0, all, &q);
    cr_assert(!full || pruned > 0);
    q = (struct query){&n_20, 1};
    pruned = check_query("src /20 in window", mid0, mid1, &q);
    cr_assert(!full || pruned > 0);
    q = (struct query){&n_v6, 1};
    pruned = check_query("v6 /48", 0, all, &q);
    cr_assert(!full || pruned > 0);
    q = (struct query){&n_v6h, 1};
    cr_assert_gt(check_query("v6 host in window", mid0, mid1, &q), 0);
    q = (struct query){&n_list, 1};
    cr_assert_gt(check_query("host list", 0, all, &q), 0);
    q = (struct query){&n_wide, 1};
    check_query("src /1", mid0, mid1, &q);
    q = (struct query){both, 2};
    check_query("two needs", 0, all, &q);
    q = (struct query){NULL, 0};
    cr_assert_eq(check_query("no needs", 0, all, &q), 0);
    check_query("no needs in window", mid0, mid1, &q);
}

TestSuite(storage_scan, .init = setup, .fini = teardown, .timeout = 100);

Test(storage_scan, queries_agree_with_brute_force_and_prune)
{
    /* Random addresses in 4000-flow blocks: the fine levels do not fit
     * the budget, so this also covers dropped levels. */
    cr_assert_gt(dropped(FL_LV_24), 0);
    cr_assert_gt(dropped(FL_LV_48), 0);
    queries_agree(false);
}

static void
setup_full(void)
{
    budget = 100;
    setup();
}

static void
setup_lean(void)
{
    budget = 0;
    setup();
}

TestSuite(storage_scan_full, .init = setup_full, .fini = teardown,
          .timeout = 100);

Test(storage_scan_full, every_level_kept_prunes_every_prefix_query)
{
    for (int l = 0; l < FL_LV_COUNT; l++) {
        cr_assert_eq(dropped(l), 0, "level %d", l);
    }
    queries_agree(true);
}

TestSuite(storage_scan_lean, .init = setup_lean, .fini = teardown,
          .timeout = 100);

Test(storage_scan_lean, dropped_levels_still_agree)
{
    for (int l = 0; l < FL_LV_COUNT; l++) {
        cr_assert_gt(dropped(l), 0, "level %d", l);
    }
    queries_agree(false);
}

/* Rewrites the index version of a sealed segment, checksums included. */
static void
patch_index_version(const char *path, uint32_t version)
{
    FILE *f = fopen(path, "r+b");
    uint8_t *buf;
    long len;
    uint64_t ixoff;
    uint64_t ixlen;
    uint8_t *foot;

    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    buf = malloc((size_t)len);
    rewind(f);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    cr_assert_eq(fl_seg_footer_parse(buf, (size_t)len, &ixoff, &ixlen), FL_OK);
    foot = buf + len - FL_FOOT_LEN;
    fl_put_be32(buf + ixoff + 4, version);
    fl_put_be32(foot + 24, fl_crc32c(0, buf + ixoff, (size_t)ixlen));
    fl_put_be32(foot + 28, fl_crc32c(0, foot, 28));
    rewind(f);
    cr_assert_eq(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    free(buf);
}

Test(storage_scan, an_unknown_index_version_reads_the_blocks)
{
    struct fl_prefix host = pfx("198.51.100.7");
    struct fl_scan_need n_host = {FL_SIDE_ANY, &host, 1};
    struct query q = {&n_host, 1};
    struct fl_archive_opts o;
    char err[256];
    uint64_t pruned;

    cr_assert_eq(fl_archive_seal(arch, true), FL_OK);
    pruned = check_query("host, sealed", 0, UINT64_MAX, &q);
    for (uint32_t i = 0; i < arch->nshards; i++) {
        for (size_t j = 0; j < arch->shards[i].n; j++) {
            patch_index_version(arch->shards[i].segs[j]->path, 3);
        }
    }
    fl_archive_close(arch);
    fl_archive_opts_default(&o);
    o.read_only = true;
    cr_assert_eq(fl_archive_open(dir, &o, &arch, err, sizeof(err)), FL_OK);
    cr_assert(arch->shards[0].segs[0]->sealed);
    cr_assert_gt(arch->shards[0].segs[0]->nblks, 0);
    /* Rebuilt from the blocks with the same budget: the same entries. */
    cr_assert_eq(check_query("host, index version 3", 0, UINT64_MAX, &q),
                 pruned);
}

Test(storage_scan, sealed_and_reopened_archive_answers_the_same)
{
    struct fl_prefix host = pfx("198.51.100.7");
    struct fl_scan_need n_host = {FL_SIDE_ANY, &host, 1};
    struct fl_archive_opts o;
    char err[256];
    struct query q = {&n_host, 1};
    uint64_t pruned;

    cr_assert_eq(fl_archive_seal(arch, true), FL_OK);
    pruned = check_query("host, sealed", 0, UINT64_MAX, &q);
    fl_archive_close(arch);
    fl_archive_opts_default(&o);
    o.read_only = true;
    cr_assert_eq(fl_archive_open(dir, &o, &arch, err, sizeof(err)), FL_OK);
    cr_assert(arch->shards[0].segs[0]->sealed);
    cr_assert_eq(check_query("host, reopened", 0, UINT64_MAX, &q), pruned);
}

static bool
stop_after_one(void *arg, const struct fl_flow *f, const char *sensor)
{
    (void)f;
    (void)sensor;
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
    return false;
}

Test(storage_scan, emit_returning_false_stops_the_scan)
{
    int calls = 0;
    struct fl_scan sc = {.t_start = 0,
                         .t_end = UINT64_MAX,
                         .emit = stop_after_one,
                         .emit_arg = &calls,
                         .threads = 1};
    struct fl_scan_stats st;

    cr_assert_eq(fl_archive_scan(arch, &sc, &st), FL_OK);
    cr_assert_eq(calls, 1);
    cr_assert_lt(st.blocks_read, 3);
}

/* Blocks, not segments, are shared out to the threads: any thread count
 * gives the same flows and the same statistics, each segment counted
 * once although several threads read its blocks. */
Test(storage_scan, thread_counts_agree_on_flows_and_statistics)
{
    struct fl_prefix wide = pfx("0.0.0.0/1");
    struct fl_scan_need need = {FL_SIDE_SRC, &wide, 1};
    struct query q = {&need, 1};
    struct results base;
    struct fl_scan_stats st_base;
    uint64_t t0 = T0 + 20 * 60000;
    uint64_t t1 = T0 + 150 * 60000;
    unsigned counts[] = {1, 2, 3, 8};

    brute(t0, t1, &q, &base);
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        struct fl_scan sc = {.t_start = t0,
                             .t_end = t1,
                             .needs = q.needs,
                             .nneeds = q.nneeds,
                             .match = match_fn,
                             .match_arg = &q,
                             .emit = emit_fn,
                             .threads = counts[k]};
        struct results r;
        struct fl_scan_stats st;

        memset(&r, 0, sizeof(r));
        pthread_mutex_init(&r.mu, NULL);
        sc.emit_arg = &r;
        cr_assert_eq(fl_archive_scan(arch, &sc, &st), FL_OK);
        pthread_mutex_destroy(&r.mu);
        cr_assert_eq(r.n, base.n, "threads %u", counts[k]);
        cr_assert_eq(r.sum, base.sum, "threads %u", counts[k]);
        cr_assert_eq(r.xsum, base.xsum, "threads %u", counts[k]);
        cr_assert_eq(st.matched, base.n);
        if (k == 0) {
            st_base = st;
            cr_assert_gt(st.segments, 0);
            continue;
        }
        cr_assert_eq(st.segments, st_base.segments, "threads %u", counts[k]);
        cr_assert_eq(st.blocks, st_base.blocks, "threads %u", counts[k]);
        cr_assert_eq(st.blocks_read, st_base.blocks_read);
        cr_assert_eq(st.records, st_base.records, "threads %u", counts[k]);
    }
}

/* ---- speed, on demand (FL_STORAGE_BENCH=1) ---------------------------- */

static double
secs_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Realistic mix: 5000 inside hosts talking to 20000 outside ones. */
static void
clustered_flows(struct fl_flow *f, size_t n, uint64_t *s)
{
    tu_flows(f, n, s, T0, FL_HOUR_MS);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = tu_rnd(s);

        fl_addr_from_v4(&f[i].src_addr, 0x0a000000u | (uint32_t)(x % 5000));
        x = tu_rnd(s) % 20000;
        fl_addr_from_v4(&f[i].dst_addr, (uint32_t)(x * 2654435761u));
    }
}

static uint64_t
archive_bytes(const struct fl_archive *a, uint64_t *blocks)
{
    uint64_t total = 0;

    *blocks = 0;
    for (uint32_t i = 0; i < a->nshards; i++) {
        for (size_t j = 0; j < a->shards[i].n; j++) {
            const struct fl_seg *s = a->shards[i].segs[j];
            struct stat st;

            cr_assert_eq(stat(s->path, &st), 0);
            total += (uint64_t)st.st_size;
            for (size_t k = 0; k < s->nblks; k++) {
                *blocks += s->blks[k].length;
            }
        }
    }
    return total;
}

/* In how many blocks of a each level was kept. */
static void
kept_levels(const struct fl_archive *a, uint64_t kept[FL_LV_COUNT])
{
    memset(kept, 0, FL_LV_COUNT * sizeof(*kept));
    for (uint32_t i = 0; i < a->nshards; i++) {
        for (size_t j = 0; j < a->shards[i].n; j++) {
            const struct fl_seg *s = a->shards[i].segs[j];

            for (size_t b = 0; b < s->nblks; b++) {
                for (int l = 0; l < FL_LV_COUNT; l++) {
                    kept[l] += s->blks[b].lv[l].enc != FL_IXENC_ABSENT;
                }
            }
        }
    }
}

static void
bench_one(const char *what, bool clustered)
{
    const size_t n = 3000000;
    const size_t per = 10000;
    struct fl_flow *f = calloc(n, sizeof(*f));
    uint8_t **batches = calloc(n / per, sizeof(*batches));
    struct fl_append_info *info = calloc(n / per, sizeof(*info));
    size_t *lens = calloc(n / per, sizeof(*lens));
    struct fl_archive_opts o;
    struct fl_archive *a;
    struct tu_sensor ts;
    char err[256];
    char bdir[256];
    uint64_t s = 99;
    uint64_t total;
    uint64_t blocks;
    struct fl_prefix host;
    struct fl_scan_need need = {FL_SIDE_ANY, &host, 1};
    struct query qq = {&need, 1};
    struct fl_scan q = {.t_start = 0,
                        .t_end = UINT64_MAX,
                        .needs = &need,
                        .nneeds = 1,
                        .match = match_fn,
                        .match_arg = &qq};
    struct fl_scan_stats st;
    double t0;
    double t_append;
    double t_ix = 0;
    struct fl_ixbuild ib;
    uint64_t kept[FL_LV_COUNT];

    tu_tmpdir(bdir);
    tu_sensor_init(&ts, bdir, "bench");
    if (clustered) {
        clustered_flows(f, n, &s);
    } else {
        tu_flows(f, n, &s, T0, FL_HOUR_MS);
    }
    qsort(f, n, sizeof(*f), by_start);
    fl_addr_parse("198.51.100.7", &f[n / 3].src_addr);
    host.addr = f[n / 3].src_addr;
    host.len = 128;
    for (size_t i = 0; i < n / per; i++) {
        tu_batch(&ts, f + i * per, per, &batches[i], &lens[i], &info[i]);
    }
    /* The index alone, then append (write, fdatasync, index). */
    fl_ixbuild_init(&ib);
    for (size_t i = 0; i < n / per; i++) {
        struct fl_blk meta = {0};
        struct fl_blk e;

        t0 = secs_now();
        cr_assert_eq(fl_ixbuild_reset(&ib, per * 2), FL_OK);
        for (size_t j = 0; j < per; j++) {
            fl_ixbuild_add(&ib, &f[i * per + j].src_addr);
            fl_ixbuild_add(&ib, &f[i * per + j].dst_addr);
        }
        cr_assert_eq(fl_ixbuild_finish(&ib, &meta, &e), FL_OK);
        t_ix += secs_now() - t0;
        fl_blk_fini(&e);
    }
    fl_ixbuild_fini(&ib);
    fl_archive_opts_default(&o);
    o.shards = 1;
    cr_assert_eq(fl_archive_open(bdir, &o, &a, err, sizeof(err)), FL_OK);
    t0 = secs_now();
    for (size_t i = 0; i < n / per; i++) {
        cr_assert_eq(fl_archive_append(a, batches[i], lens[i], &info[i]),
                     FL_OK);
    }
    t_append = secs_now() - t0;
    cr_assert_eq(fl_archive_seal(a, true), FL_OK);
    total = archive_bytes(a, &blocks);
    t0 = secs_now();
    cr_assert_eq(fl_archive_scan(a, &q, &st), FL_OK);
    cr_log_warn("%s: index only %.2f M flows/s; append+index %.2f M flows/s "
                "(fdatasync per %zu-flow batch); archive %.1f B/flow, index "
                "%.1f%% of bytes; host lookup over %zu flows %.2f ms (%llu of "
                "%llu blocks read, %llu matched)",
                what, n / t_ix / 1e6, n / t_append / 1e6, per,
                (double)total / n, 100.0 * (double)(total - blocks) / total, n,
                (secs_now() - t0) * 1e3, (unsigned long long)st.blocks_read,
                (unsigned long long)st.blocks, (unsigned long long)st.matched);
    kept_levels(a, kept);
    cr_log_warn("%s: summaries kept in blocks: /24 %llu, /16 %llu, /48 %llu, "
                "/32 %llu of %zu",
                what, (unsigned long long)kept[FL_LV_24],
                (unsigned long long)kept[FL_LV_16],
                (unsigned long long)kept[FL_LV_48],
                (unsigned long long)kept[FL_LV_32], n / per);
    cr_assert_geq(st.matched, 1);
    fl_archive_close(a);
    for (size_t i = 0; i < n / per; i++) {
        free(batches[i]);
    }
    free(batches);
    free(info);
    free(lens);
    free(f);
    tu_sensor_fini(&ts);
    tu_rmtree(bdir);
}

Test(storage_bench, append_index_and_lookup_speed, .timeout = 600)
{
    if (getenv("FL_STORAGE_BENCH") == NULL) {
        cr_skip_test("set FL_STORAGE_BENCH=1 to measure");
    }
    tu_quiet();
    bench_one("random addresses", false);
    bench_one("5000 inside x 20000 outside hosts", true);
}
