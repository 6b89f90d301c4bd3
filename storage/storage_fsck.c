/*
 * fsck: reads every segment of an archive without changing it, checks
 * every block checksum and index, and every batch's signature, payload
 * hash and Merkle root with its sensor's public key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_int.h"

#define MAX_KEYS 1024

struct fsck_key {
    struct fl_pubkey k;
    bool found;
};

struct fsck {
    const char *keys_dir;
    struct fl_fsck_report *r;
    const char *path; /* the segment being checked */
    uint64_t block_off;
    struct fsck_key *keys;
    size_t nkeys;
};

/* The public key of sensor, loaded once; NULL when it is not there. */
static const struct fl_pubkey *
key_for(struct fsck *f, const char *sensor)
{
    char path[4200];
    char err[256];
    struct fsck_key *k;

    for (size_t i = 0; i < f->nkeys; i++) {
        if (strcmp(f->keys[i].k.name, sensor) == 0) {
            return f->keys[i].found ? &f->keys[i].k : NULL;
        }
    }
    if (f->nkeys == MAX_KEYS) {
        return NULL;
    }
    k = &f->keys[f->nkeys++];
    memset(k, 0, sizeof(*k));
    snprintf(k->k.name, sizeof(k->k.name), "%s", sensor);
    snprintf(path, sizeof(path), "%s/%s.pub", f->keys_dir, sensor);
    if (fl_name_is_valid(sensor) &&
        fl_pubkey_load(path, &k->k, err, sizeof(err)) == FL_OK) {
        snprintf(k->k.name, sizeof(k->k.name), "%s", sensor);
        k->found = true;
        return &k->k;
    }
    fl_log(FL_LOG_WARN, "FL-STORAGE-FSCK", "no key sensor=%s key=%s", sensor,
           path);
    return NULL;
}

static void
count_record(void *arg, const struct fl_flow *fl)
{
    (void)fl;
    (*(uint64_t *)arg)++;
}

static int
check_batch(void *arg, const uint8_t *batch, size_t len, uint32_t records)
{
    struct fsck *f = arg;
    char sensor[65];
    uint8_t key_id[FL_KEYID_LEN];
    struct fl_batch_view v;
    const struct fl_pubkey *k;
    char err[256] = "";
    uint64_t n = 0;
    int ret;

    f->r->batches++;
    f->r->records += records;
    if (f->keys_dir == NULL) {
        return FL_OK;
    }
    ret = fl_batch_peek(batch, len, sensor, key_id);
    if (ret != FL_OK) {
        snprintf(err, sizeof(err), "unreadable statement");
    } else if ((k = key_for(f, sensor)) == NULL) {
        f->r->unknown_keys++;
        return FL_OK;
    } else if ((ret = fl_batch_open(batch, len, k, &v, err, sizeof(err))) ==
               FL_OK) {
        ret = fl_batch_records(&v, count_record, &n);
        if (ret == FL_OK && n != records) {
            ret = FL_EFORMAT;
        }
        snprintf(err, sizeof(err), "records: %s", fl_strerror(ret));
    }
    if (ret != FL_OK) {
        f->r->bad_signatures++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK",
               "bad batch file=%s offset=%llu error=%s", f->path,
               (unsigned long long)f->block_off, err);
    }
    return FL_OK;
}

static int
check_good(void *arg, uint64_t off, const uint8_t *blk, size_t len)
{
    struct fsck *f = arg;

    f->r->blocks++;
    f->block_off = off;
    if (fl_seg_block_batches(blk + FL_BLK_HEADER_LEN, len - FL_BLK_HEADER_LEN,
                             check_batch, f) != FL_OK) {
        f->r->bad_checksums++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK",
               "batches do not tile block file=%s offset=%llu", f->path,
               (unsigned long long)off);
    }
    return FL_OK;
}

static int
check_bad(void *arg, uint64_t off, uint64_t len)
{
    struct fsck *f = arg;

    f->r->bad_checksums++;
    fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK",
           "bad block checksum file=%s offset=%llu length=%llu", f->path,
           (unsigned long long)off, (unsigned long long)len);
    return FL_OK;
}

/* Checks the mapped segment buf of len bytes. */
/* True when the segment file's name carries the hour of its header. */
static bool
name_has_hour(const char *path, uint64_t hour)
{
    const char *base = strrchr(path, '/');
    uint64_t name_hour;
    uint32_t seq;

    base = base != NULL ? base + 1 : path;
    return fl_seg_name_parse(base, &name_hour, &seq) == FL_OK &&
           name_hour == hour;
}

static void
check_buf(struct fsck *f, const uint8_t *buf, size_t len)
{
    struct fl_walk_ops ops = {check_good, check_bad, f};
    uint64_t hour;
    uint64_t ixoff;
    uint64_t ixlen;
    uint64_t tail;
    size_t end = len;
    int footer;

    /* The header has no checksum of its own: its hour must agree with
     * the file's name, which the scan trusts to select segments. */
    if (fl_seg_header_parse(buf, len, &hour) != FL_OK ||
        !name_has_hour(f->path, hour)) {
        f->r->bad_checksums++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK", "bad header file=%s offset=0",
               f->path);
        return;
    }
    footer = fl_seg_footer_parse(buf, len, &ixoff, &ixlen);
    if (footer == FL_OK) {
        struct fl_blk *blks;
        size_t n;

        if (fl_seg_index_parse(buf + ixoff, ixlen, &blks, &n) != FL_OK) {
            footer = FL_EFORMAT;
        }
        free(blks);
        end = ixoff;
    }
    if (footer == FL_EFORMAT) {
        f->r->bad_checksums++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK", "bad index file=%s offset=%zu",
               f->path, len - FL_FOOT_LEN);
        end = len - FL_FOOT_LEN;
    }
    fl_seg_walk(buf, FL_SEG_HEADER_LEN, end, &ops, &tail);
    if (tail < end && footer == FL_ENOENT) {
        f->r->torn_tails++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK", "torn tail file=%s offset=%llu",
               f->path, (unsigned long long)tail);
    } else if (tail < end) {
        /* A sealed segment was complete when sealed: a bad last block is
         * damage, not a tail torn by a crash. */
        f->r->bad_checksums++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK",
               "bad block checksum file=%s offset=%llu", f->path,
               (unsigned long long)tail);
    }
}

static void
check_file(struct fsck *f, const char *path)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    f->path = path;
    f->r->segments++;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
        f->r->bad_checksums++;
        fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK", "unreadable file=%s offset=0",
               path);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (buf == MAP_FAILED) {
        f->r->bad_checksums++;
        return;
    }
    check_buf(f, buf, (size_t)st.st_size);
    munmap(buf, (size_t)st.st_size);
}

static int
check_shard(struct fsck *f, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL) {
        return FL_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        char path[8300];
        uint64_t hour;
        uint32_t seq;

        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
            (int)sizeof(path)) {
            continue;
        }
        if (fl_seg_name_parse(de->d_name, &hour, &seq) == FL_OK) {
            check_file(f, path);
        } else if (strstr(de->d_name, ".damaged") != NULL) {
            /* Set aside by a writer that could not read its header. */
            f->r->bad_checksums++;
            fl_log(FL_LOG_ERR, "FL-STORAGE-FSCK",
                   "damaged segment set aside file=%s offset=0", path);
        }
    }
    closedir(d);
    return FL_OK;
}

int
fl_archive_fsck(const char *dir, const char *keys_dir, struct fl_fsck_report *r)
{
    struct fsck f = {.keys_dir = keys_dir, .r = r};
    DIR *d;
    struct dirent *de;
    int ret = FL_OK;

    memset(r, 0, sizeof(*r));
    d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? FL_ENOENT : FL_EIO;
    }
    f.keys = calloc(MAX_KEYS, sizeof(*f.keys));
    if (f.keys == NULL) {
        closedir(d);
        return FL_ENOMEM;
    }
    while (ret == FL_OK && (de = readdir(d)) != NULL) {
        char path[8300];

        if (strncmp(de->d_name, "shard-", 6) != 0) {
            continue;
        }
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
            (int)sizeof(path)) {
            ret = FL_EINVAL;
            break;
        }
        ret = check_shard(&f, path);
    }
    closedir(d);
    free(f.keys);
    if (ret != FL_OK) {
        return ret;
    }
    if (r->bad_checksums || r->bad_signatures || r->torn_tails ||
        (keys_dir != NULL && r->unknown_keys)) {
        return FL_EFORMAT;
    }
    return FL_OK;
}
