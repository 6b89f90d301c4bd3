/*
 * Batch speed on one core (issue 3, "Speed"): builds signed batches from
 * generator flows held in memory, then opens (verifies) them and appends
 * them to a fresh archive, timing each stage so the table says what costs.
 */
#include "gen.h"
#include "storage.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Issue 3's targets, flows per second on one core. */
#define TARGET_BUILD 1.5e6
#define TARGET_APPEND 3e6
#define MAX_RUNS 101
#define SENSOR "bench"

struct opts {
    size_t flows;
    size_t batch;
    int runs;
    uint32_t v6_share;
    const char *dir; /* parent of the scratch directory */
};

/* One stage's seconds over every run. */
struct stage {
    const char *name;
    const char *what;
    double secs[MAX_RUNS];
};

enum {
    ST_BUILD,   /* fl_batch_build, everything */
    ST_MERKLE,  /* salts, canonical records, leaf hashes, root */
    ST_COLUMNS, /* fl_columns_encode: columns and zstd */
    ST_SIGN,    /* payload hash and Ed25519 signature */
    ST_APPEND,  /* open (verify) + append + seal */
    ST_OPEN,    /* fl_batch_open: signature, statement, payload hash */
    ST_WRITE,   /* fl_archive_append: block, fsync, index */
    ST_SEAL,    /* fl_archive_close: seals, writes the index */
    ST_RECORDS, /* fl_batch_records: decode, Merkle root check */
    ST_COUNT,
};

static struct stage stages[ST_COUNT] = {
    [ST_BUILD] = {"build", "fl_batch_build (all of it)", {0}},
    [ST_MERKLE] = {"  merkle", "salts + canon + leaf hashes + root", {0}},
    [ST_COLUMNS] = {"  columns", "fl_columns_encode (columns + zstd)", {0}},
    [ST_SIGN] = {"  sign", "payload hash + Ed25519 signature", {0}},
    [ST_APPEND] = {"append", "open + append + seal (all of it)", {0}},
    [ST_OPEN] = {"  open", "fl_batch_open (signature, payload hash)", {0}},
    [ST_WRITE] = {"  write", "fl_archive_append (block, fsync, index)", {0}},
    [ST_SEAL] = {"  seal", "fl_archive_close (seal: index to disk)", {0}},
    [ST_RECORDS] = {"records", "fl_batch_records (decode + root check)", {0}},
};

static double
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Median of n values; sorts them. */
static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The generator's flows, as the sensor would have decoded them. */
static struct fl_flow *
make_flows(const struct opts *o)
{
    struct fl_flow *flows = calloc(o->flows, sizeof(*flows));
    uint64_t hour = (uint64_t)time(NULL) / 3600 * 3600000u - 48 * 3600000u;
    struct gen_plan plan = {
        .version = 10,
        .seed = 1,
        .v6_share = o->v6_share,
        .window_start = hour,
        .window_ms = 3600000u, /* one hour: one segment per run */
    };
    struct gen_flow g;

    for (size_t i = 0; flows != NULL && i < o->flows; i++) {
        gen_flow_make(&plan, i, &g);
        flows[i] = g.f;
        fl_addr_from_v4(&flows[i].exporter, 0x7f000001u);
        flows[i].domain = 1;
        flows[i].sampling = 1;
    }
    return flows;
}

/* The Merkle part of a build, through the public functions. */
static int
merkle_only(const struct fl_flow *flows, size_t n, uint8_t (*leaves)[32])
{
    uint8_t secret[FL_BATCH_SECRET_LEN] = {1};
    uint8_t salt[4][FL_SALT_LEN];
    uint8_t canon[FL_CANON_MAX + 256];
    uint8_t root[FL_HASH_LEN];

    for (size_t i = 0; i < n; i++) {
        int len;

        if (i % 4 == 0) {
            fl_merkle_leaf_salts(secret, i, n - i < 4 ? n - i : 4, salt);
        }
        len = fl_flow_canon(&flows[i], canon, sizeof(canon));
        if (len < 0) {
            return len;
        }
        fl_merkle_leaf(FL_HASH_BATCH, salt[i % 4], canon, (size_t)len,
                       leaves[i]);
    }
    return fl_merkle_root(FL_HASH_BATCH, (const uint8_t(*)[FL_HASH_LEN])leaves,
                          n, root);
}

struct built {
    uint8_t **b;
    size_t *len;
    size_t n;
};

static void
built_free(struct built *bt)
{
    for (size_t i = 0; i < bt->n; i++) {
        free(bt->b[i]);
    }
    bt->n = 0;
}

/* One run of the build stages; bt keeps the batches of the last run. */
static int
run_build(const struct opts *o, const struct fl_seckey *k,
          const struct fl_flow *flows, int run, struct built *bt)
{
    uint8_t(*leaves)[FL_HASH_LEN] = malloc(o->batch * sizeof(*leaves));
    uint8_t secret[FL_BATCH_SECRET_LEN] = {2};
    uint8_t hash[FL_HASH_LEN], sig[FL_SIG_LEN];
    struct fl_batch_view v;
    struct fl_chain chain;
    char err[256];
    double t0, t_sign = 0;
    int rc = leaves != NULL ? FL_OK : FL_ENOMEM;

    built_free(bt);
    fl_chain_init(&chain, SENSOR);
    t0 = mono_s();
    for (size_t i = 0; rc == FL_OK && i < o->flows; i += o->batch) {
        size_t n = o->flows - i < o->batch ? o->flows - i : o->batch;

        rc = fl_batch_build(k, &chain, flows + i, n, NULL, &bt->b[bt->n],
                            &bt->len[bt->n]);
        bt->n += rc == FL_OK;
    }
    stages[ST_BUILD].secs[run] = mono_s() - t0;

    t0 = mono_s();
    for (size_t i = 0; rc == FL_OK && i < o->flows; i += o->batch) {
        size_t n = o->flows - i < o->batch ? o->flows - i : o->batch;

        rc = merkle_only(flows + i, n, leaves);
    }
    stages[ST_MERKLE].secs[run] = mono_s() - t0;

    t0 = mono_s();
    for (size_t i = 0; rc == FL_OK && i < o->flows; i += o->batch) {
        size_t n = o->flows - i < o->batch ? o->flows - i : o->batch;
        uint8_t *p = NULL;
        size_t plen = 0;

        rc = fl_columns_encode(flows + i, n, secret, FL_BATCH_ZSTD_LEVEL, &p,
                               &plen);
        free(p);
    }
    stages[ST_COLUMNS].secs[run] = mono_s() - t0;

    /* Each built batch's own payload and statement, hashed and signed. */
    for (size_t i = 0; rc == FL_OK && i < bt->n; i++) {
        rc = fl_batch_open(bt->b[i], bt->len[i], fl_seckey_public(k), &v, err,
                           sizeof(err));
        t0 = mono_s();
        if (rc == FL_OK) {
            fl_hash(FL_HASH_BATCH, v.payload, v.payload_len, hash);
            rc = fl_sign(k, v.statement, v.statement_len, sig);
        }
        t_sign += mono_s() - t0;
    }
    stages[ST_SIGN].secs[run] = t_sign;
    free(leaves);
    return rc;
}

/* One run of the append stages into a fresh archive under dir. */
static int
run_append(const struct opts *o, const struct fl_pubkey *pub,
           const struct fl_flow *flows, const struct built *bt, const char *dir,
           int run)
{
    struct fl_archive_opts ao;
    struct fl_archive *a = NULL;
    struct fl_batch_view v;
    double t_open = 0, t_write = 0, t0, t1;
    char err[256];
    int rc;

    fl_archive_opts_default(&ao);
    rc = fl_archive_open(dir, &ao, &a, err, sizeof(err));
    if (rc != FL_OK) {
        fprintf(stderr, "bench_batch: archive %s: %s\n", dir, err);
        return rc;
    }
    for (size_t i = 0; rc == FL_OK && i < bt->n; i++) {
        const struct fl_flow *f = flows + i * o->batch;
        struct fl_append_info info = {.sensor = SENSOR};

        t0 = mono_s();
        rc = fl_batch_open(bt->b[i], bt->len[i], pub, &v, err, sizeof(err));
        t1 = mono_s();
        t_open += t1 - t0;
        if (rc != FL_OK) {
            fprintf(stderr, "bench_batch: batch %zu: %s\n", i, err);
            break;
        }
        info.sequence = v.st.sequence;
        info.time_first = v.st.time_first;
        info.time_last = v.st.time_last;
        info.records = v.st.records;
        info.flows = f;
        info.nflows = v.st.records;
        rc = fl_archive_append(a, bt->b[i], bt->len[i], &info);
        t_write += mono_s() - t1;
    }
    t0 = mono_s();
    fl_archive_close(a);
    stages[ST_SEAL].secs[run] = mono_s() - t0;
    stages[ST_OPEN].secs[run] = t_open;
    stages[ST_WRITE].secs[run] = t_write;
    stages[ST_APPEND].secs[run] = t_open + t_write + stages[ST_SEAL].secs[run];
    return rc;
}

static void
count_flow(void *arg, const struct fl_flow *f)
{
    (void)f;
    (*(uint64_t *)arg)++;
}

/* Full verification of each batch's records, for comparison. */
static int
run_records(const struct fl_pubkey *pub, const struct built *bt, int run)
{
    struct fl_batch_view v;
    uint64_t seen = 0;
    char err[256];
    double t0 = mono_s();
    int rc = FL_OK;

    for (size_t i = 0; rc == FL_OK && i < bt->n; i++) {
        rc = fl_batch_open(bt->b[i], bt->len[i], pub, &v, err, sizeof(err));
        if (rc == FL_OK) {
            rc = fl_batch_records(&v, count_flow, &seen);
        }
    }
    stages[ST_RECORDS].secs[run] = mono_s() - t0;
    return rc;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
print_table(const struct opts *o, const struct built *bt)
{
    size_t bytes = 0;

    for (size_t i = 0; i < bt->n; i++) {
        bytes += bt->len[i];
    }
    printf("batches of %zu flows, %zu flows, %zu batches, %.1f B/flow "
           "signed; median of %d runs, one thread\n",
           o->batch, o->flows, bt->n, (double)bytes / (double)o->flows,
           o->runs);
    printf("%-10s %-42s %12s %8s %7s %8s\n", "stage", "what", "flows/s",
           "ns/flow", "spread", "x target");
    for (int s = 0; s < ST_COUNT; s++) {
        double *v = stages[s].secs;
        double lo, hi, med;
        double rate;
        char target[16] = "";

        med = median(v, o->runs);
        lo = v[0];
        hi = v[o->runs - 1];
        rate = (double)o->flows / med;
        if (s == ST_BUILD || s == ST_APPEND) {
            snprintf(target, sizeof(target), "%.2f",
                     rate / (s == ST_BUILD ? TARGET_BUILD : TARGET_APPEND));
        }
        printf("%-10s %-42s %12.0f %8.1f %6.0f%% %8s\n", stages[s].name,
               stages[s].what, rate, med * 1e9 / (double)o->flows,
               med > 0 ? (hi - lo) / med * 100 : 0.0, target);
    }
    printf("targets: build >= %.1f M flows/s, append >= %.1f M flows/s "
           "(issue 3)\n",
           TARGET_BUILD / 1e6, TARGET_APPEND / 1e6);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: bench_batch [-n FLOWS] [-b BATCH] [-r RUNS] "
            "[-6 PERCENT] [-d DIR]\n"
            "  -n  flows (default 1000000)   -b  flows per batch (10000)\n"
            "  -r  runs, median shown (5)    -6  IPv6 share, percent (0)\n"
            "  -d  where the scratch archives go (default $TMPDIR or "
            "/tmp)\n");
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
    int c;

    o->flows = 1000000;
    o->batch = 10000;
    o->runs = 5;
    o->v6_share = 0;
    o->dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    while ((c = getopt(argc, argv, "n:b:r:6:d:h")) != -1) {
        switch (c) {
        case 'n':
            o->flows = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            o->batch = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o->runs = atoi(optarg);
            break;
        case '6':
            o->v6_share = (uint32_t)atoi(optarg);
            break;
        case 'd':
            o->dir = optarg;
            break;
        default:
            usage();
            return -1;
        }
    }
    if (o->flows == 0 || o->batch == 0 || o->batch > FL_BATCH_MAX_RECORDS ||
        o->runs < 1 || o->runs > MAX_RUNS || o->v6_share > 100) {
        usage();
        return -1;
    }
    return 0;
}

/* A key pair in a scratch directory, loaded. */
static int
load_key(const char *scratch, struct fl_seckey **k)
{
    char path[4200];
    char err[256];
    int rc;

    rc = fl_key_generate(SENSOR, scratch, err, sizeof(err));
    if (rc == FL_OK) {
        snprintf(path, sizeof(path), "%s/%s.key", scratch, SENSOR);
        rc = fl_seckey_load(path, k, err, sizeof(err));
    }
    if (rc != FL_OK) {
        fprintf(stderr, "bench_batch: key: %s\n", err);
    }
    return rc;
}

static int
run_all(const struct opts *o, const char *scratch, const struct fl_flow *flows,
        struct built *bt)
{
    struct fl_seckey *k = NULL;
    char dir[4200];
    int rc = load_key(scratch, &k);

    /* run -1 is a warm-up, not counted */
    for (int r = -1; rc == FL_OK && r < o->runs; r++) {
        int at = r < 0 ? 0 : r;

        rc = run_build(o, k, flows, at, bt);
        snprintf(dir, sizeof(dir), "%s/archive-%d", scratch, r + 1);
        if (rc == FL_OK) {
            rc = run_append(o, fl_seckey_public(k), flows, bt, dir, at);
        }
        if (rc == FL_OK) {
            rc = run_records(fl_seckey_public(k), bt, at);
        }
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    fl_seckey_free(k);
    return rc;
}

int
main(int argc, char **argv)
{
    struct opts o;
    struct built bt = {0};
    struct fl_flow *flows;
    char scratch[4096];
    int rc;

    if (parse_opts(argc, argv, &o) != 0) {
        return 2;
    }
    snprintf(scratch, sizeof(scratch), "%s/bench-batch-XXXXXX", o.dir);
    flows = make_flows(&o);
    bt.b = calloc(o.flows / o.batch + 1, sizeof(*bt.b));
    bt.len = calloc(o.flows / o.batch + 1, sizeof(*bt.len));
    if (flows == NULL || bt.b == NULL || bt.len == NULL ||
        mkdtemp(scratch) == NULL) {
        fprintf(stderr, "bench_batch: %s\n", strerror(errno));
        return 1;
    }
    rc = run_all(&o, scratch, flows, &bt);
    if (rc == FL_OK) {
        print_table(&o, &bt);
    } else {
        fprintf(stderr, "bench_batch: failed: %s\n", fl_strerror(rc));
    }
    built_free(&bt);
    free(bt.b);
    free(bt.len);
    free(flows);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc == FL_OK ? 0 : 1;
}
