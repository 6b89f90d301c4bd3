/*
 * The archive directory: shard count fixed at creation, appends routed
 * by sensor and hour, a failed write leaving nothing behind, sealing,
 * retention with its purge log, and fsck over checksums and signatures.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "test_storage_util.h"

static struct fl_archive *
open_archive(const char *dir, uint32_t shards)
{
    struct fl_archive_opts o;
    struct fl_archive *a;
    char err[256] = "";

    fl_archive_opts_default(&o);
    o.shards = shards;
    cr_assert_eq(fl_archive_open(dir, &o, &a, err, sizeof(err)), FL_OK, "%s",
                 err);
    return a;
}

static size_t
total_segments(const struct fl_archive *a)
{
    size_t n = 0;

    for (uint32_t i = 0; i < a->nshards; i++) {
        n += a->shards[i].n;
    }
    return n;
}

Test(storage_archive, shard_count_is_fixed_at_creation)
{
    char dir[256];
    char path[512];
    struct fl_archive *a;
    struct stat st;

    tu_tmpdir(dir);
    a = open_archive(dir, 3);
    fl_archive_close(a);
    snprintf(path, sizeof(path), "%s/shard-02", dir);
    cr_assert_eq(stat(path, &st), 0);
    a = open_archive(dir, 8);
    cr_assert_eq(a->nshards, 3);
    fl_archive_close(a);
    cr_assert_eq(fl_archive_shard_of("edge-1", 4),
                 fl_archive_shard_of("edge-1", 4));
    tu_rmtree(dir);
}

Test(storage_archive, appends_go_to_the_sensor_shard_and_flow_hour)
{
    char dir[256];
    struct fl_archive *a;
    struct tu_sensor ts;
    struct fl_flow f[50];
    uint64_t s = 1;
    uint64_t now = fl_time_now_ms() / FL_HOUR_MS * FL_HOUR_MS + 86400000ull;
    unsigned shard;

    tu_quiet();
    tu_tmpdir(dir);
    tu_sensor_init(&ts, dir, "edge-7");
    shard = fl_archive_shard_of("edge-7", 2);
    a = open_archive(dir, 2);
    /* Two batches in one future hour, one in the next. */
    tu_flows(f, 50, &s, now, 1000);
    cr_assert_eq(tu_append(a, &ts, f, 50), FL_OK);
    cr_assert_eq(tu_append(a, &ts, f, 50), FL_OK);
    tu_flows(f, 50, &s, now + FL_HOUR_MS, 1000);
    cr_assert_eq(tu_append(a, &ts, f, 50), FL_OK);
    cr_assert_eq(a->shards[shard].n, 2);
    cr_assert_eq(a->shards[1 - shard].n, 0);
    cr_assert_eq(a->shards[shard].segs[0]->nblks, 2);
    cr_assert_eq(a->shards[shard].segs[0]->hour_ms, now);
    fl_archive_close(a);

    /* Reopened: the open segment takes further appends; sealed, a new
     * segment of the same hour starts. */
    a = open_archive(dir, 2);
    tu_flows(f, 50, &s, now, 1000);
    cr_assert_eq(tu_append(a, &ts, f, 50), FL_OK);
    cr_assert_eq(a->shards[shard].n, 2);
    cr_assert_eq(a->shards[shard].segs[0]->nblks, 3);
    cr_assert_eq(fl_archive_seal(a, true), FL_OK);
    cr_assert(a->shards[shard].segs[0]->sealed);
    cr_assert_eq(tu_append(a, &ts, f, 50), FL_OK);
    cr_assert_eq(a->shards[shard].n, 3);
    cr_assert_eq(a->shards[shard].segs[1]->seq, 1);
    cr_assert_eq(a->shards[shard].segs[1]->hour_ms, now);
    fl_archive_close(a);
    tu_sensor_fini(&ts);
    tu_rmtree(dir);
}

Test(storage_archive, failed_write_leaves_nothing_behind)
{
    char dir[256];
    struct fl_archive *a;
    struct tu_sensor ts;
    struct fl_flow *f = calloc(5000, sizeof(*f));
    uint64_t s = 3;
    uint64_t t = fl_time_now_ms() + 86400000ull;
    struct rlimit old;
    struct rlimit lim;
    struct fl_seg *seg;
    uint64_t size;
    struct stat st;

    tu_quiet();
    tu_tmpdir(dir);
    tu_sensor_init(&ts, dir, "edge-2");
    a = open_archive(dir, 1);
    tu_flows(f, 5000, &s, t, 1000);
    cr_assert_eq(tu_append(a, &ts, f, 100), FL_OK);
    seg = a->shards[0].segs[0];
    size = seg->size;

    /* A file size limit stands in for a full disk: the write fails
     * part way and the segment must be cut back. */
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = size + 1000;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_assert_eq(tu_append(a, &ts, f, 5000), FL_EIO);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(stat(seg->path, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, size);
    cr_assert_eq(seg->nblks, 1);
    cr_assert_eq(tu_append(a, &ts, f, 5000), FL_OK);
    fl_archive_close(a);
    a = open_archive(dir, 1);
    cr_assert_eq(a->shards[0].segs[0]->nblks, 2);
    cr_assert_eq(a->shards[0].segs[0]->records, 5100);
    fl_archive_close(a);
    tu_sensor_fini(&ts);
    free(f);
    tu_rmtree(dir);
}

Test(storage_archive, retention_deletes_only_old_segments_and_logs_them)
{
    char dir[256];
    char path[512];
    struct fl_archive *a;
    struct tu_sensor ts;
    struct fl_flow f[20];
    uint64_t s = 5;
    uint64_t now = fl_time_now_ms();
    uint32_t purged = 0;
    char line[1024];
    FILE *log;
    int lines = 0;

    tu_quiet();
    tu_tmpdir(dir);
    tu_sensor_init(&ts, dir, "edge-3");
    a = open_archive(dir, 2);
    tu_flows(f, 20, &s, now - 40 * 86400000ull, 1000); /* 40 days old */
    cr_assert_eq(tu_append(a, &ts, f, 20), FL_OK);
    tu_flows(f, 20, &s, now - 31 * 86400000ull, 1000); /* 31 days old */
    cr_assert_eq(tu_append(a, &ts, f, 20), FL_OK);
    tu_flows(f, 20, &s, now - 29 * 86400000ull, 1000); /* 29 days old */
    cr_assert_eq(tu_append(a, &ts, f, 20), FL_OK);
    tu_flows(f, 20, &s, now - 60000, 1000);
    cr_assert_eq(tu_append(a, &ts, f, 20), FL_OK);
    cr_assert_eq(total_segments(a), 4);
    cr_assert_eq(fl_archive_retention(a, 30, &purged), FL_OK);
    cr_assert_eq(purged, 2);
    cr_assert_eq(total_segments(a), 2);
    fl_archive_close(a);

    /* Gone from disk too, and each purge is one JSON line. */
    a = open_archive(dir, 2);
    cr_assert_eq(total_segments(a), 2);
    fl_archive_close(a);
    snprintf(path, sizeof(path), "%s/purge.log", dir);
    log = fopen(path, "r");
    cr_assert_not_null(log);
    while (fgets(line, sizeof(line), log) != NULL) {
        cr_assert_not_null(strstr(line, "{\"segment\":\"shard-0"));
        cr_assert_not_null(strstr(line, "\"records\":20,"));
        cr_assert_not_null(strstr(line, "\"deleted_at\":\""));
        cr_assert_not_null(strstr(line, "\"time_first\":\""));
        lines++;
    }
    fclose(log);
    cr_assert_eq(lines, 2);
    tu_sensor_fini(&ts);
    tu_rmtree(dir);
}

Test(storage_archive, fsck_checks_checksums_and_signatures)
{
    char dir[256];
    char keys[512];
    char other[512];
    struct fl_archive *a;
    struct tu_sensor ts;
    struct fl_flow f[300];
    uint64_t s = 9;
    uint64_t t = fl_time_now_ms() + 86400000ull;
    struct fl_fsck_report r;
    char segpath[4096];
    uint64_t mid;
    int fd;
    uint8_t byte;

    tu_quiet();
    tu_tmpdir(dir);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    mkdir(keys, 0700);
    mkdir(other, 0700);
    tu_sensor_init(&ts, keys, "edge-4");
    a = open_archive(dir, 2);
    for (int i = 0; i < 3; i++) {
        tu_flows(f, 300, &s, t, 1000);
        cr_assert_eq(tu_append(a, &ts, f, 300), FL_OK);
    }
    snprintf(segpath, sizeof(segpath), "%s",
             a->shards[fl_archive_shard_of("edge-4", 2)].segs[0]->path);
    mid = a->shards[fl_archive_shard_of("edge-4", 2)].segs[0]->blks[1].offset;
    fl_archive_close(a);

    cr_assert_eq(fl_archive_fsck(dir, keys, &r), FL_OK);
    cr_assert_eq(r.segments, 1);
    cr_assert_eq(r.blocks, 3);
    cr_assert_eq(r.batches, 3);
    cr_assert_eq(r.records, 900);
    cr_assert_eq(r.bad_signatures, 0);
    cr_assert_eq(fl_archive_fsck(dir, other, &r), FL_EFORMAT);
    cr_assert_eq(r.unknown_keys, 3);
    cr_assert_eq(fl_archive_fsck(dir, NULL, &r), FL_OK);

    /* A flipped byte in the middle block: one bad checksum, the rest
     * still verify. */
    fd = open(segpath, O_RDWR);
    cr_assert_eq(pread(fd, &byte, 1, (off_t)mid + 200), 1);
    byte ^= 0x10;
    cr_assert_eq(pwrite(fd, &byte, 1, (off_t)mid + 200), 1);
    close(fd);
    cr_assert_eq(fl_archive_fsck(dir, keys, &r), FL_EFORMAT);
    cr_assert_eq(r.bad_checksums, 1);
    cr_assert_eq(r.blocks, 2);
    cr_assert_eq(r.batches, 2);
    cr_assert_eq(r.bad_signatures, 0);
    cr_assert_eq(r.torn_tails, 0);
    tu_sensor_fini(&ts);
    tu_rmtree(dir);
}

Test(storage_archive, fsck_finds_a_flip_at_every_byte_of_a_sealed_segment)
{
    char dir[256];
    char keys[512];
    char segpath[4096];
    struct fl_archive *a;
    struct tu_sensor ts;
    struct fl_flow f[20];
    struct fl_fsck_report r;
    uint64_t s = 11;
    uint64_t t = fl_time_now_ms() + 86400000ull;
    struct stat st;
    int fd;

    tu_quiet();
    tu_tmpdir(dir);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    mkdir(keys, 0700);
    tu_sensor_init(&ts, keys, "edge-5");
    a = open_archive(dir, 1);
    for (int i = 0; i < 3; i++) {
        tu_flows(f, 20, &s, t, 1000);
        cr_assert_eq(tu_append(a, &ts, f, 20), FL_OK);
    }
    cr_assert_eq(fl_archive_seal(a, true), FL_OK);
    snprintf(segpath, sizeof(segpath), "%s", a->shards[0].segs[0]->path);
    fl_archive_close(a);
    cr_assert_eq(fl_archive_fsck(dir, keys, &r), FL_OK);

    /* Header, blocks, index and footer: no single flip goes unnoticed. */
    cr_assert_eq(stat(segpath, &st), 0);
    fd = open(segpath, O_RDWR);
    for (off_t off = 0; off < st.st_size; off++) {
        uint8_t byte;

        cr_assert_eq(pread(fd, &byte, 1, off), 1);
        byte ^= 0x01;
        cr_assert_eq(pwrite(fd, &byte, 1, off), 1);
        cr_assert_eq(fl_archive_fsck(dir, keys, &r), FL_EFORMAT,
                     "flip at offset %lld not found", (long long)off);
        byte ^= 0x01;
        cr_assert_eq(pwrite(fd, &byte, 1, off), 1);
    }
    close(fd);
    tu_sensor_fini(&ts);
    tu_rmtree(dir);
}

Test(storage_archive, a_damaged_segment_header_leaves_the_rest_readable)
{
    char dir[256];
    char keys[512];
    char path[4096];
    char moved[4200];
    char err[256] = "";
    struct fl_archive_opts o;
    struct fl_archive *a;
    struct tu_sensor ts[2];
    struct fl_flow f[10];
    uint64_t s = 5;
    uint64_t t = fl_time_now_ms() + 86400000ull;
    struct stat st;
    int fd;

    tu_quiet();
    tu_tmpdir(dir);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    mkdir(keys, 0700);
    tu_sensor_init(&ts[0], keys, "edge-a");
    tu_sensor_init(&ts[1], keys, "edge-b");
    /* The two sensors land in different shards. */
    cr_assert_neq(fl_archive_shard_of("edge-a", 2),
                  fl_archive_shard_of("edge-b", 2));
    a = open_archive(dir, 2);
    for (int i = 0; i < 2; i++) {
        tu_flows(f, 10, &s, t, 1000);
        cr_assert_eq(tu_append(a, &ts[i], f, 10), FL_OK);
    }
    snprintf(path, sizeof(path), "%s",
             a->shards[fl_archive_shard_of("edge-a", 2)].segs[0]->path);
    fl_archive_close(a);
    fd = open(path, O_RDWR);
    cr_assert_eq(pwrite(fd, "X", 1, 0), 1);
    close(fd);

    /* A reader skips the damaged segment and still serves the other. */
    fl_archive_opts_default(&o);
    o.read_only = true;
    cr_assert_eq(fl_archive_open(dir, &o, &a, err, sizeof(err)), FL_OK, "%s",
                 err);
    cr_assert_eq(total_segments(a), 1);
    fl_archive_close(a);

    /* A writer sets it aside, keeping its bytes, and can append again. */
    a = open_archive(dir, 2);
    snprintf(moved, sizeof(moved), "%s.damaged", path);
    cr_assert_eq(stat(moved, &st), 0);
    tu_flows(f, 10, &s, t, 1000);
    cr_assert_eq(tu_append(a, &ts[0], f, 10), FL_OK);
    fl_archive_close(a);
    tu_sensor_fini(&ts[0]);
    tu_sensor_fini(&ts[1]);
    tu_rmtree(dir);
}
