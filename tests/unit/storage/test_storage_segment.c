/*
 * Segment files: blocks written and read back, a torn tail cut at every
 * possible offset, a damaged middle block skipped, the sealed index read
 * back and a damaged index falling back to the blocks.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "test_storage_util.h"

#define HOUR_MS 1764781200000ull /* 2025-12-03T17:00:00Z */

static int recover_logs;
static int corrupt_logs;

static void
count_sink(void *arg, enum fl_log_level level, const char *id, const char *msg)
{
    (void)arg;
    (void)level;
    (void)msg;
    recover_logs += strcmp(id, "FL-STORAGE-RECOVER") == 0;
    corrupt_logs += strcmp(id, "FL-STORAGE-CORRUPT") == 0;
}

struct fixture {
    char dir[256];
    char path[4096];
    struct tu_sensor ts;
    struct fl_ixbuild ib;
    struct fl_flow *flows;
    size_t per_block;
    size_t nblocks;
    uint64_t ends[8]; /* end offset of each block */
};

/* A segment of nblocks blocks of per_block flows each. */
static void
make_segment(struct fixture *fx, size_t nblocks, size_t per_block)
{
    uint64_t s = 2024;
    struct fl_seg *seg;

    fl_log_set_sink(count_sink, NULL);
    tu_tmpdir(fx->dir);
    tu_sensor_init(&fx->ts, fx->dir, "edge-1");
    fl_ixbuild_init(&fx->ib);
    fx->per_block = per_block;
    fx->nblocks = nblocks;
    fx->flows = calloc(nblocks * per_block, sizeof(*fx->flows));
    tu_flows(fx->flows, nblocks * per_block, &s, HOUR_MS, 3000000);
    cr_assert_eq(fl_seg_create(fx->dir, 0, HOUR_MS, 1, &seg), FL_OK);
    snprintf(fx->path, sizeof(fx->path), "%s", seg->path);
    for (size_t i = 0; i < nblocks; i++) {
        struct fl_append_info info;
        uint8_t *batch;
        size_t len;

        tu_batch(&fx->ts, fx->flows + i * per_block, per_block, &batch, &len,
                 &info);
        cr_assert_eq(fl_seg_append(seg, batch, len, &info, &fx->ib), FL_OK);
        fx->ends[i] = seg->size;
        free(batch);
    }
    fl_seg_close(seg);
}

static void
drop_fixture(struct fixture *fx)
{
    fl_ixbuild_fini(&fx->ib);
    tu_sensor_fini(&fx->ts);
    free(fx->flows);
    tu_rmtree(fx->dir);
    fl_log_set_sink(NULL, NULL);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    uint8_t *p;

    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &st), 0);
    p = malloc((size_t)st.st_size + 1);
    cr_assert_eq(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

static void
spill(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, p, len), (ssize_t)len);
    close(fd);
}

struct collect {
    struct fl_flow *f;
    size_t n;
    size_t cap;
};

static void
collect_flow(void *arg, const struct fl_flow *f)
{
    struct collect *c = arg;

    if (c->n < c->cap) {
        c->f[c->n] = *f;
        c->f[c->n].extra = NULL;
    }
    c->n++;
}

static int
collect_batch(void *arg, const uint8_t *batch, size_t len, uint32_t records)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    const uint8_t *payload;
    size_t plen;
    int ret = fl_seg_batch_payload(batch, len, &payload, &plen);

    if (ret != FL_OK) {
        return ret;
    }
    return fl_columns_decode(payload, plen, records, 1u << 28, secret,
                             collect_flow, arg);
}

/* Reads block b of s and checks its flows are fx's block i. */
static void
check_block(const struct fixture *fx, const struct fl_seg *s, size_t i)
{
    int fd = open(s->path, O_RDONLY);
    uint8_t *buf = NULL;
    size_t cap = 0;
    struct collect c = {calloc(fx->per_block, sizeof(struct fl_flow)), 0,
                        fx->per_block};
    const struct fl_blk *b = &s->blks[i];

    cr_assert_eq(fl_seg_read_block(fd, b, &buf, &cap), FL_OK);
    cr_assert_eq(fl_seg_block_batches(buf + FL_BLK_HEADER_LEN,
                                      b->length - FL_BLK_HEADER_LEN,
                                      collect_batch, &c),
                 FL_OK);
    cr_assert_eq(c.n, fx->per_block);
    for (size_t j = 0; j < c.n; j++) {
        const struct fl_flow *want = &fx->flows[i * fx->per_block + j];
        struct fl_prefix host = {want->src_addr, 128};

        cr_assert_eq(c.f[j].time_start, want->time_start);
        cr_assert_eq(c.f[j].bytes, want->bytes);
        cr_assert_eq(memcmp(&c.f[j].dst_addr, &want->dst_addr, 16), 0);
        cr_assert(fl_blk_may_have_prefix(b, &host));
    }
    free(c.f);
    free(buf);
    close(fd);
}

Test(storage_segment, blocks_read_back_as_written)
{
    struct fixture fx;
    struct fl_seg *s;

    make_segment(&fx, 4, 500);
    cr_assert_eq(fl_seg_open(fx.path, 0, true, &s), FL_OK);
    cr_assert_not(s->sealed);
    cr_assert_eq(s->nblks, 4);
    cr_assert_eq(s->records, 2000);
    cr_assert_eq(s->size, fx.ends[3]);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(s->blks[i].records, 500);
        cr_assert_eq(s->blks[i].offset + s->blks[i].length, fx.ends[i]);
        check_block(&fx, s, i);
    }
    fl_seg_close(s);
    drop_fixture(&fx);
}

Test(storage_segment, torn_tail_is_cut_at_every_offset)
{
    struct fixture fx;
    uint8_t *orig;
    size_t len;
    char cutdir[256];
    char path[512];

    make_segment(&fx, 4, 8);
    orig = slurp(fx.path, &len);
    cr_assert_eq(len, fx.ends[3]);
    tu_tmpdir(cutdir);
    snprintf(path, sizeof(path), "%s/%s", cutdir, strrchr(fx.path, '/') + 1);
    for (size_t cut = 0; cut <= len; cut++) {
        struct fl_seg *s;
        struct fl_append_info info;
        uint8_t *batch;
        size_t blen;
        size_t whole = 0;
        uint64_t keep = FL_SEG_HEADER_LEN;

        while (whole < 4 && fx.ends[whole] <= cut) {
            keep = fx.ends[whole++];
        }
        spill(path, orig, cut);
        recover_logs = 0;
        cr_assert_eq(fl_seg_open(path, 0, true, &s), FL_OK, "cut %zu", cut);
        cr_assert_eq(s->nblks, whole, "cut %zu", cut);
        cr_assert_eq(s->size, keep, "cut %zu", cut);
        cr_assert_eq(recover_logs, cut == keep ? 0 : 1, "cut %zu", cut);
        for (size_t i = 0; i < whole; i++) {
            cr_assert_eq(s->blks[i].flags, 0);
        }

        /* Appending afterwards works and is found on the next open. */
        tu_batch(&fx.ts, fx.flows, 8, &batch, &blen, &info);
        cr_assert_eq(fl_seg_append(s, batch, blen, &info, &fx.ib), FL_OK);
        free(batch);
        fl_seg_close(s);
        cr_assert_eq(fl_seg_open(path, 0, false, &s), FL_OK);
        cr_assert_eq(s->nblks, whole + 1, "cut %zu", cut);
        fl_seg_close(s);
    }
    free(orig);
    tu_rmtree(cutdir);
    drop_fixture(&fx);
}

Test(storage_segment, damaged_middle_block_is_skipped_not_served)
{
    struct fixture fx;
    uint8_t *orig;
    size_t len;
    struct fl_seg *s;
    /* A byte of block 2's body, then its length field. */
    size_t at[2];

    make_segment(&fx, 4, 200);
    orig = slurp(fx.path, &len);
    at[0] = fx.ends[0] + (fx.ends[1] - fx.ends[0]) / 2;
    at[1] = fx.ends[0] + 5;
    for (int t = 0; t < 2; t++) {
        orig[at[t]] ^= 0x40;
        spill(fx.path, orig, len);
        corrupt_logs = 0;
        cr_assert_eq(fl_seg_open(fx.path, 0, true, &s), FL_OK);
        cr_assert_eq(corrupt_logs, 1);
        cr_assert_eq(s->nblks, 4);
        cr_assert_eq(s->blks[1].flags, FL_BLK_CORRUPT);
        cr_assert_eq(s->records, 600);
        /* Nothing was cut: the blocks after the damage stay. */
        cr_assert_eq(s->size, len);
        check_block(&fx, s, 0);
        check_block(&fx, s, 2);
        check_block(&fx, s, 3);
        fl_seg_close(s);
        orig[at[t]] ^= 0x40;
    }
    free(orig);
    drop_fixture(&fx);
}

Test(storage_segment, sealed_index_reads_back_and_a_bad_one_falls_back)
{
    struct fixture fx;
    struct fl_seg *s;
    struct fl_seg *back;
    uint8_t *orig;
    size_t len;

    make_segment(&fx, 3, 300);
    cr_assert_eq(fl_seg_open(fx.path, 0, true, &s), FL_OK);
    cr_assert_eq(fl_seg_seal(s), FL_OK);
    cr_assert(s->sealed);

    /* Read back from the index. */
    cr_assert_eq(fl_seg_open(fx.path, 0, false, &back), FL_OK);
    cr_assert(back->sealed);
    cr_assert_not_null(back->ixbuf);
    cr_assert_eq(back->nblks, 3);
    cr_assert_eq(back->records, 900);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(back->blks[i].bloblen, s->blks[i].bloblen);
        cr_assert_eq(
            memcmp(back->blks[i].blob, s->blks[i].blob, s->blks[i].bloblen), 0);
        check_block(&fx, back, i);
    }
    fl_seg_close(back);

    /* A flipped index byte: the blocks are read again, and the rebuilt
     * index is the very same bytes. */
    orig = slurp(fx.path, &len);
    orig[fx.ends[2] + 70] ^= 1;
    spill(fx.path, orig, len);
    cr_assert_eq(fl_seg_open(fx.path, 0, true, &back), FL_OK);
    cr_assert(back->sealed);
    cr_assert_null(back->ixbuf);
    cr_assert_eq(back->nblks, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(
            memcmp(back->blks[i].blob, s->blks[i].blob, s->blks[i].bloblen), 0);
    }
    fl_seg_close(back);
    /* Nothing was cut from the damaged sealed file. */
    free(orig);
    orig = slurp(fx.path, &len);
    cr_assert_gt(len, fx.ends[2] + FL_FOOT_LEN);
    free(orig);
    fl_seg_close(s);
    drop_fixture(&fx);
}
