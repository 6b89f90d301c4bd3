/*
 * Segment files: a header, checksummed blocks of signed batches appended
 * with fdatasync, and at sealing an index and a footer.  Opening a
 * segment walks its blocks when it has no valid index, cutting a torn
 * tail and stepping over damaged blocks in the middle.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage_int.h"

/* ---- names and headers ---------------------------------------------- */

void
fl_seg_name_format(uint64_t hour_ms, uint32_t seq, char out[64])
{
    time_t t = (time_t)(hour_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, 64, "seg-%04d%02d%02dT%02d-%04u.fl0", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, seq % 10000u);
}

int
fl_seg_name_parse(const char *name, uint64_t *hour_ms, uint32_t *seq)
{
    struct tm tm;
    int y, mo, d, h, n = 0;
    unsigned s;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(name, "seg-%4d%2d%2dT%2d-%4u.fl0%n", &y, &mo, &d, &h, &s, &n) !=
            5 ||
        n == 0 || name[n] != '\0' || strlen(name) != 24) {
        return FL_EFORMAT;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    t = timegm(&tm);
    if (t < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23) {
        return FL_EFORMAT;
    }
    *hour_ms = (uint64_t)t * 1000;
    *seq = s;
    return FL_OK;
}

static void
header_put(uint8_t p[FL_SEG_HEADER_LEN], uint64_t hour_ms)
{
    memcpy(p, FL_SEG_MAGIC, 8);
    fl_put_be32(p + 8, FL_SEG_VERSION);
    fl_put_be32(p + 12, 0);
    fl_put_be64(p + 16, hour_ms);
}

int
fl_seg_header_parse(const uint8_t *buf, size_t len, uint64_t *hour_ms)
{
    struct fl_cursor c;
    const uint8_t *magic;
    uint32_t version;
    uint32_t flags;

    fl_cursor_init(&c, buf, len);
    if (!fl_cursor_bytes(&c, 8, &magic) || !fl_cursor_u32(&c, &version) ||
        !fl_cursor_u32(&c, &flags) || !fl_cursor_u64(&c, hour_ms)) {
        return FL_ETRUNC;
    }
    if (memcmp(magic, FL_SEG_MAGIC, 8) != 0) {
        return FL_EFORMAT;
    }
    if (version != FL_SEG_VERSION) {
        return FL_EVERSION;
    }
    /* No flag is defined: one set is damage or a format we do not know. */
    if (flags != 0) {
        return FL_EFORMAT;
    }
    return FL_OK;
}

/* ---- blocks ------------------------------------------------------------ */

int
fl_seg_block_check(const uint8_t *buf, size_t end, size_t off, size_t *blen)
{
    uint32_t body;
    uint32_t crc;

    if (off > end || end - off < FL_BLK_HEADER_LEN) {
        return FL_ETRUNC;
    }
    if (memcmp(buf + off, FL_BLK_MAGIC, 4) != 0) {
        return FL_EFORMAT;
    }
    body = (uint32_t)fl_be_uint(buf + off + 4, 4);
    if (body > FL_BLK_MAX_BODY) {
        return FL_EFORMAT;
    }
    if (end - off - FL_BLK_HEADER_LEN < body) {
        return FL_ETRUNC;
    }
    crc = fl_crc32c(0, buf + off, FL_BLK_CRC_OFF);
    crc = fl_crc32c(crc, buf + off + FL_BLK_HEADER_LEN, body);
    if (crc != (uint32_t)fl_be_uint(buf + off + FL_BLK_CRC_OFF, 4)) {
        return FL_EFORMAT;
    }
    *blen = FL_BLK_HEADER_LEN + (size_t)body;
    return FL_OK;
}

/* The next offset after from where a whole valid block starts, or end. */
static size_t
resync(const uint8_t *buf, size_t from, size_t end)
{
    size_t blen;

    for (size_t off = from; off + FL_BLK_HEADER_LEN <= end; off++) {
        const uint8_t *m = memchr(buf + off, FL_BLK_MAGIC[0], end - off);

        if (m == NULL) {
            break;
        }
        off = (size_t)(m - buf);
        if (fl_seg_block_check(buf, end, off, &blen) == FL_OK) {
            return off;
        }
    }
    return end;
}

int
fl_seg_walk(const uint8_t *buf, size_t start, size_t end,
            const struct fl_walk_ops *ops, uint64_t *tail)
{
    size_t off = start;
    size_t blen;
    int ret;

    while (off < end) {
        size_t next;

        if (fl_seg_block_check(buf, end, off, &blen) == FL_OK) {
            ret = ops->good(ops->arg, off, buf + off, blen);
            if (ret != FL_OK) {
                return ret;
            }
            off += blen;
            continue;
        }
        /* A damaged block with a good one after it is skipped; with
         * none after it, it is the torn tail. */
        next = resync(buf, off + 1, end);
        if (next == end) {
            break;
        }
        ret = ops->bad(ops->arg, off, next - off);
        if (ret != FL_OK) {
            return ret;
        }
        off = next;
    }
    *tail = off < end ? off : end;
    return FL_OK;
}

int
fl_seg_block_batches(const uint8_t *body, size_t len,
                     int (*fn)(void *arg, const uint8_t *batch, size_t len,
                               uint32_t records),
                     void *arg)
{
    struct fl_cursor c;

    fl_cursor_init(&c, body, len);
    while (c.left > 0) {
        uint32_t blen;
        uint32_t records;
        const uint8_t *batch;
        int ret;

        if (!fl_cursor_u32(&c, &blen) || !fl_cursor_u32(&c, &records) ||
            !fl_cursor_bytes(&c, blen, &batch)) {
            return FL_EFORMAT;
        }
        ret = fn(arg, batch, blen, records);
        if (ret != FL_OK) {
            return ret;
        }
    }
    return FL_OK;
}

int
fl_seg_batch_payload(const uint8_t *batch, size_t len, const uint8_t **payload,
                     size_t *plen)
{
    struct fl_cursor c;
    const uint8_t *magic;
    uint32_t stlen;
    uint32_t paylen;

    fl_cursor_init(&c, batch, len);
    if (!fl_cursor_bytes(&c, 8, &magic) || !fl_cursor_u32(&c, &stlen) ||
        !fl_cursor_u32(&c, &paylen)) {
        return FL_ETRUNC;
    }
    if (memcmp(magic, FL_BATCH_MAGIC, 8) != 0 || !fl_cursor_skip(&c, stlen) ||
        !fl_cursor_skip(&c, FL_SIG_LEN) ||
        !fl_cursor_bytes(&c, paylen, payload) || c.left != 0) {
        return FL_EFORMAT;
    }
    *plen = paylen;
    return FL_OK;
}

size_t
fl_seg_decode_cap(uint32_t records)
{
    /* Generous for the columns of any record, bounded per block. */
    return (size_t)records * 4096 + (1u << 20);
}

/* ---- footer and index ---------------------------------------------- */

int
fl_seg_footer_parse(const uint8_t *buf, size_t len, uint64_t *ixoff,
                    uint64_t *ixlen)
{
    const uint8_t *f;
    uint32_t ixcrc;

    if (len < FL_SEG_HEADER_LEN + FL_FOOT_LEN) {
        return FL_ENOENT;
    }
    f = buf + len - FL_FOOT_LEN;
    if (memcmp(f, FL_FOOT_MAGIC, 8) != 0) {
        return FL_ENOENT;
    }
    if (fl_crc32c(0, f, 28) != (uint32_t)fl_be_uint(f + 28, 4)) {
        return FL_EFORMAT;
    }
    *ixoff = fl_be_uint(f + 8, 8);
    *ixlen = fl_be_uint(f + 16, 8);
    ixcrc = (uint32_t)fl_be_uint(f + 24, 4);
    if (*ixoff < FL_SEG_HEADER_LEN || *ixoff > len - FL_FOOT_LEN ||
        *ixlen != len - FL_FOOT_LEN - *ixoff) {
        return FL_EFORMAT;
    }
    if (fl_crc32c(0, buf + *ixoff, (size_t)*ixlen) != ixcrc) {
        return FL_EFORMAT;
    }
    return FL_OK;
}

int
fl_seg_index_parse(const uint8_t *ix, size_t len, struct fl_blk **blks,
                   size_t *n)
{
    struct fl_cursor c;
    const uint8_t *magic;
    uint32_t version;
    uint32_t count;
    struct fl_blk *v = NULL;
    int ret = FL_EFORMAT;

    *blks = NULL;
    *n = 0;
    fl_cursor_init(&c, ix, len);
    if (!fl_cursor_bytes(&c, 4, &magic) || !fl_cursor_u32(&c, &version) ||
        memcmp(magic, FL_IDX_MAGIC, 4) != 0) {
        goto out;
    }
    /* Version 1 had no version field: its entry count stood here. */
    if (version != FL_IDX_VERSION) {
        ret = FL_EVERSION;
        goto out;
    }
    if (!fl_cursor_u32(&c, &count) || count > c.left / FL_IDX_ENTRY_FIXED) {
        goto out;
    }
    v = calloc(count + 1, sizeof(*v));
    if (v == NULL) {
        ret = FL_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (fl_blk_parse(&c, &v[i]) != FL_OK) {
            goto out;
        }
    }
    if (c.left != 0) {
        goto out;
    }
    *blks = v;
    *n = count;
    v = NULL;
    ret = FL_OK;
out:
    free(v);
    return ret;
}

/* ---- opening, rebuilding the index ------------------------------------ */

static int
push_blk(struct fl_seg *s, const struct fl_blk *b)
{
    if (s->nblks == s->capblks) {
        size_t cap = s->capblks ? s->capblks * 2 : 16;
        struct fl_blk *v = realloc(s->blks, cap * sizeof(*v));

        if (v == NULL) {
            return FL_ENOMEM;
        }
        s->blks = v;
        s->capblks = cap;
    }
    s->blks[s->nblks++] = *b;
    if (!(b->flags & FL_BLK_CORRUPT)) {
        if (s->records == 0 || b->time_first < s->time_first) {
            s->time_first = b->time_first;
        }
        if (b->time_last > s->time_last) {
            s->time_last = b->time_last;
        }
        s->records += b->records;
    }
    return FL_OK;
}

struct rebuild {
    struct fl_seg *s;
    struct fl_ixbuild ib;
};

static void
rebuild_flow(void *arg, const struct fl_flow *f)
{
    struct fl_ixbuild *ib = arg;

    fl_ixbuild_add(ib, &f->src_addr);
    fl_ixbuild_add(ib, &f->dst_addr);
}

static int
rebuild_batch(void *arg, const uint8_t *batch, size_t len, uint32_t records)
{
    struct fl_ixbuild *ib = arg;
    uint8_t secret[FL_BATCH_SECRET_LEN];
    const uint8_t *payload;
    size_t plen;
    int ret;

    ret = fl_seg_batch_payload(batch, len, &payload, &plen);
    if (ret != FL_OK) {
        return FL_EFORMAT;
    }
    return fl_columns_decode(payload, plen, records, fl_seg_decode_cap(records),
                             secret, rebuild_flow, ib);
}

static void
blk_meta(const uint8_t *blk, uint64_t off, size_t len, struct fl_blk *m)
{
    memset(m, 0, sizeof(*m));
    m->offset = off;
    m->length = (uint32_t)len;
    m->records = (uint32_t)fl_be_uint(blk + 8, 4);
    m->time_first = fl_be_uint(blk + 16, 8);
    m->time_last = fl_be_uint(blk + 24, 8);
}

static int
rebuild_good(void *arg, uint64_t off, const uint8_t *blk, size_t len)
{
    struct rebuild *r = arg;
    struct fl_blk meta;
    struct fl_blk e;
    int ret;

    blk_meta(blk, off, len, &meta);
    ret = fl_ixbuild_reset(&r->ib, (size_t)meta.records * 2);
    if (ret == FL_OK) {
        ret = fl_seg_block_batches(blk + FL_BLK_HEADER_LEN,
                                   len - FL_BLK_HEADER_LEN, rebuild_batch,
                                   &r->ib);
    }
    if (ret == FL_ENOMEM) {
        return ret;
    }
    if (ret != FL_OK) {
        /* The checksum holds but the records do not decode: the block
         * cannot be indexed, so it is never served. */
        fl_log(FL_LOG_ERR, "FL-STORAGE-CORRUPT",
               "undecodable block file=%s offset=%llu error=%s", r->s->path,
               (unsigned long long)off, fl_strerror(ret));
        ret = fl_blk_corrupt(off, len, &e);
    } else {
        ret = fl_ixbuild_finish(&r->ib, &meta, &e);
    }
    if (ret == FL_OK) {
        ret = push_blk(r->s, &e);
    }
    return ret;
}

static int
rebuild_bad(void *arg, uint64_t off, uint64_t len)
{
    struct rebuild *r = arg;
    struct fl_blk e;
    int ret;

    fl_log(FL_LOG_ERR, "FL-STORAGE-CORRUPT",
           "damaged block skipped file=%s offset=%llu length=%llu", r->s->path,
           (unsigned long long)off, (unsigned long long)len);
    ret = fl_blk_corrupt(off, len, &e);
    if (ret == FL_OK) {
        ret = push_blk(r->s, &e);
    }
    return ret;
}

/* Rebuilds s's index from the blocks of buf[HEADER, end). */
static int
rebuild(struct fl_seg *s, const uint8_t *buf, size_t end, uint64_t *tail)
{
    struct rebuild r = {.s = s};
    struct fl_walk_ops ops = {rebuild_good, rebuild_bad, &r};
    int ret;

    fl_ixbuild_init(&r.ib);
    ret = fl_seg_walk(buf, FL_SEG_HEADER_LEN, end, &ops, tail);
    fl_ixbuild_fini(&r.ib);
    return ret;
}

static int
load_index(struct fl_seg *s, const uint8_t *buf, uint64_t ixoff, uint64_t ixlen)
{
    int ret;

    s->ixbuf = malloc(ixlen ? (size_t)ixlen : 1);
    if (s->ixbuf == NULL) {
        return FL_ENOMEM;
    }
    memcpy(s->ixbuf, buf + ixoff, (size_t)ixlen);
    ret = fl_seg_index_parse(s->ixbuf, (size_t)ixlen, &s->blks, &s->nblks);
    if (ret != FL_OK) {
        return ret;
    }
    s->capblks = s->nblks;
    for (size_t i = 0; i < s->nblks; i++) {
        struct fl_blk *b = &s->blks[i];

        if (b->offset < FL_SEG_HEADER_LEN || b->offset > ixoff ||
            b->length > ixoff - b->offset) {
            return FL_EFORMAT;
        }
        if (!(b->flags & FL_BLK_CORRUPT)) {
            if (s->records == 0 || b->time_first < s->time_first) {
                s->time_first = b->time_first;
            }
            if (b->time_last > s->time_last) {
                s->time_last = b->time_last;
            }
            s->records += b->records;
        }
    }
    s->data_end = ixoff;
    return FL_OK;
}

static void
drop_index(struct fl_seg *s)
{
    for (size_t i = 0; i < s->nblks; i++) {
        fl_blk_fini(&s->blks[i]);
    }
    free(s->blks);
    free(s->ixbuf);
    s->blks = NULL;
    s->ixbuf = NULL;
    s->nblks = s->capblks = 0;
    s->records = s->time_first = s->time_last = 0;
}

/* A sealed segment: its index, or its blocks when the index is bad. */
static int
open_sealed(struct fl_seg *s, const uint8_t *buf, size_t len, int footer,
            uint64_t ixoff, uint64_t ixlen)
{
    uint64_t tail;
    int ret;

    s->sealed = true;
    if (footer == FL_OK) {
        ret = load_index(s, buf, ixoff, ixlen);
        if (ret != FL_EFORMAT && ret != FL_EVERSION) {
            return ret;
        }
        drop_index(s);
    }
    if (footer == FL_OK && ret == FL_EVERSION) {
        /* Written by another version: the blocks are still ours. */
        fl_log(FL_LOG_WARN, "FL-STORAGE-INDEX",
               "unknown index version, reading blocks file=%s offset=%llu",
               s->path, (unsigned long long)ixoff);
    } else {
        fl_log(FL_LOG_ERR, "FL-STORAGE-INDEX",
               "bad index, reading blocks file=%s offset=%llu", s->path,
               (unsigned long long)(len - FL_FOOT_LEN));
    }
    ret = rebuild(s, buf, footer == FL_OK ? ixoff : len - FL_FOOT_LEN, &tail);
    s->data_end = tail;
    return ret;
}

/* An open segment: rebuild, and cut a torn tail when recovering. */
static int
open_unsealed(struct fl_seg *s, const uint8_t *buf, size_t len, bool recover)
{
    uint64_t tail;
    int ret;

    ret = rebuild(s, buf, len, &tail);
    if (ret != FL_OK) {
        return ret;
    }
    s->size = s->data_end = tail;
    if (tail == len) {
        return FL_OK;
    }
    fl_log(FL_LOG_WARN, "FL-STORAGE-RECOVER",
           "torn tail cut file=%s offset=%llu bytes=%llu", s->path,
           (unsigned long long)tail, (unsigned long long)(len - tail));
    if (recover &&
        (ftruncate(s->fd, (off_t)tail) != 0 || fdatasync(s->fd) != 0)) {
        return FL_EIO;
    }
    return FL_OK;
}

static int
seg_new(const char *path, unsigned shard, struct fl_seg **out)
{
    struct fl_seg *s = calloc(1, sizeof(*s));
    const char *base = strrchr(path, '/');

    *out = NULL;
    if (s == NULL) {
        return FL_ENOMEM;
    }
    s->fd = -1;
    s->shard = shard;
    base = base ? base + 1 : path;
    if (strlen(path) >= sizeof(s->path) || strlen(base) >= sizeof(s->name) ||
        fl_seg_name_parse(base, &s->hour_ms, &s->seq) != FL_OK) {
        free(s);
        return FL_EINVAL;
    }
    strcpy(s->path, path);
    strcpy(s->name, base);
    *out = s;
    return FL_OK;
}

/* Rewrites the header of a segment whose creation was torn. */
static int
reheader(struct fl_seg *s)
{
    uint8_t h[FL_SEG_HEADER_LEN];

    fl_log(FL_LOG_WARN, "FL-STORAGE-RECOVER",
           "torn header rewritten file=%s offset=0", s->path);
    header_put(h, s->hour_ms);
    if (ftruncate(s->fd, 0) != 0 ||
        pwrite(s->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        fdatasync(s->fd) != 0) {
        return FL_EIO;
    }
    s->size = s->data_end = FL_SEG_HEADER_LEN;
    return FL_OK;
}

int
fl_seg_open(const char *path, unsigned shard, bool recover, struct fl_seg **out)
{
    struct fl_seg *s;
    struct stat stt;
    uint8_t *buf = MAP_FAILED;
    uint64_t hour;
    uint64_t ixoff = 0;
    uint64_t ixlen = 0;
    int footer;
    int ret;

    ret = seg_new(path, shard, &s);
    if (ret != FL_OK) {
        return ret;
    }
    s->fd = open(path, (recover ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &stt) != 0) {
        ret = FL_EIO;
        goto out;
    }
    if ((size_t)stt.st_size < FL_SEG_HEADER_LEN) {
        ret = recover ? reheader(s) : FL_ETRUNC;
        goto out;
    }
    buf = mmap(NULL, (size_t)stt.st_size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (buf == MAP_FAILED) {
        ret = FL_EIO;
        goto out;
    }
    ret = fl_seg_header_parse(buf, (size_t)stt.st_size, &hour);
    if (ret != FL_OK) {
        goto out;
    }
    footer = fl_seg_footer_parse(buf, (size_t)stt.st_size, &ixoff, &ixlen);
    if (footer == FL_ENOENT) {
        ret = open_unsealed(s, buf, (size_t)stt.st_size, recover);
    } else {
        ret = open_sealed(s, buf, (size_t)stt.st_size, footer, ixoff, ixlen);
    }
out:
    if (buf != MAP_FAILED) {
        munmap(buf, (size_t)stt.st_size);
    }
    if (ret == FL_OK && (s->sealed || !recover)) {
        close(s->fd);
        s->fd = -1;
    }
    if (ret != FL_OK) {
        fl_seg_close(s);
        s = NULL;
    }
    *out = s;
    return ret;
}

void
fl_seg_close(struct fl_seg *s)
{
    if (s == NULL) {
        return;
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    drop_index(s);
    free(s);
}

/* ---- creating, appending, sealing ------------------------------------ */

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = FL_OK;

    if (fd < 0) {
        return FL_EIO;
    }
    if (fsync(fd) != 0) {
        ret = FL_EIO;
    }
    close(fd);
    return ret;
}

int
fl_seg_create(const char *shard_dir, unsigned shard, uint64_t hour_ms,
              uint32_t seq, struct fl_seg **out)
{
    char name[64];
    char path[4096];
    uint8_t h[FL_SEG_HEADER_LEN];
    struct fl_seg *s = NULL;
    int ret;

    *out = NULL;
    fl_seg_name_format(hour_ms, seq, name);
    if (snprintf(path, sizeof(path), "%s/%s", shard_dir, name) >=
        (int)sizeof(path)) {
        return FL_EINVAL;
    }
    ret = seg_new(path, shard, &s);
    if (ret != FL_OK) {
        return ret;
    }
    ret = FL_EIO;
    s->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        ret = errno == EEXIST ? FL_EEXIST : FL_EIO;
        goto out;
    }
    header_put(h, hour_ms);
    if (pwrite(s->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        fdatasync(s->fd) != 0 || fsync_dir(shard_dir) != FL_OK) {
        unlink(path);
        goto out;
    }
    s->size = s->data_end = FL_SEG_HEADER_LEN;
    ret = FL_OK;
out:
    if (ret != FL_OK) {
        fl_seg_close(s);
        s = NULL;
    }
    *out = s;
    return ret;
}

/* Writes all of p at off; false on any failure. */
static bool
write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

/* Gathers the block's addresses: from the caller's flows when given,
 * else (a caller without them) by decoding the payload once. */
static int
index_block(struct fl_ixbuild *ib, const uint8_t *batch, size_t len,
            const struct fl_append_info *info, struct fl_blk *meta)
{
    int ret;

    if (info->flows == NULL && info->records > 0) {
        ret = fl_ixbuild_reset(ib, (size_t)info->records * 2);
        return ret ? ret : rebuild_batch(ib, batch, len, info->records);
    }
    ret = fl_ixbuild_reset(ib, info->nflows * 2);
    if (ret != FL_OK) {
        return ret;
    }
    for (size_t i = 0; i < info->nflows; i++) {
        const struct fl_flow *f = &info->flows[i];

        fl_ixbuild_add(ib, &f->src_addr);
        fl_ixbuild_add(ib, &f->dst_addr);
        if (f->time_start < meta->time_first) {
            meta->time_first = f->time_start;
        }
        if (f->time_end > meta->time_last) {
            meta->time_last = f->time_end;
        }
    }
    return FL_OK;
}

static uint8_t *
block_bytes(const uint8_t *batch, size_t len, const struct fl_blk *m,
            size_t *blen)
{
    size_t body = FL_BLK_BATCH_PREFIX + len;
    uint8_t *p = malloc(FL_BLK_HEADER_LEN + body);
    uint32_t crc;

    if (p == NULL) {
        return NULL;
    }
    memcpy(p, FL_BLK_MAGIC, 4);
    fl_put_be32(p + 4, (uint32_t)body);
    fl_put_be32(p + 8, m->records);
    fl_put_be32(p + 12, 1);
    fl_put_be64(p + 16, m->time_first);
    fl_put_be64(p + 24, m->time_last);
    fl_put_be32(p + 32, 0);
    fl_put_be32(p + 40, (uint32_t)len);
    fl_put_be32(p + 44, m->records);
    memcpy(p + 48, batch, len);
    crc = fl_crc32c(0, p, FL_BLK_CRC_OFF);
    crc = fl_crc32c(crc, p + FL_BLK_HEADER_LEN, body);
    fl_put_be32(p + FL_BLK_CRC_OFF, crc);
    *blen = FL_BLK_HEADER_LEN + body;
    return p;
}

int
fl_seg_append(struct fl_seg *s, const uint8_t *batch, size_t len,
              const struct fl_append_info *info, struct fl_ixbuild *ib)
{
    struct fl_blk meta;
    struct fl_blk e;
    uint8_t *blk = NULL;
    size_t blen;
    int ret;

    if (s->sealed || s->fd < 0 || len > FL_BATCH_MAX_BYTES) {
        return FL_EINVAL;
    }
    memset(&meta, 0, sizeof(meta));
    meta.offset = s->size;
    meta.records = info->records;
    meta.time_first = info->time_first;
    meta.time_last = info->time_last;
    ret = index_block(ib, batch, len, info, &meta);
    if (ret != FL_OK) {
        return ret;
    }
    blk = block_bytes(batch, len, &meta, &blen);
    if (blk == NULL) {
        return FL_ENOMEM;
    }
    meta.length = (uint32_t)blen;
    ret = fl_ixbuild_finish(ib, &meta, &e);
    if (ret != FL_OK) {
        goto out;
    }

    /* Nothing half-written may remain: cut back on any failure. */
    if (!write_all(s->fd, blk, blen, s->size) || fdatasync(s->fd) != 0) {
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            fl_log(FL_LOG_ERR, "FL-STORAGE-APPEND",
                   "cannot cut back file=%s offset=%llu", s->path,
                   (unsigned long long)s->size);
        }
        fl_blk_fini(&e);
        ret = FL_EIO;
        goto out;
    }
    ret = push_blk(s, &e);
    if (ret != FL_OK) {
        fl_blk_fini(&e);
        goto out;
    }
    s->size += blen;
    s->data_end = s->size;
out:
    free(blk);
    return ret;
}

int
fl_seg_seal(struct fl_seg *s)
{
    size_t ixlen = FL_IDX_HEADER_LEN;
    uint8_t *p;
    size_t off;
    int ret = FL_EIO;

    if (s->sealed || s->fd < 0) {
        return FL_OK;
    }
    for (size_t i = 0; i < s->nblks; i++) {
        ixlen += s->blks[i].bloblen;
    }
    p = malloc(ixlen + FL_FOOT_LEN);
    if (p == NULL) {
        return FL_ENOMEM;
    }
    memcpy(p, FL_IDX_MAGIC, 4);
    fl_put_be32(p + 4, FL_IDX_VERSION);
    fl_put_be32(p + 8, (uint32_t)s->nblks);
    off = FL_IDX_HEADER_LEN;
    for (size_t i = 0; i < s->nblks; i++) {
        memcpy(p + off, s->blks[i].blob, s->blks[i].bloblen);
        off += s->blks[i].bloblen;
    }
    memcpy(p + off, FL_FOOT_MAGIC, 8);
    fl_put_be64(p + off + 8, s->size);
    fl_put_be64(p + off + 16, ixlen);
    fl_put_be32(p + off + 24, fl_crc32c(0, p, ixlen));
    fl_put_be32(p + off + 28, fl_crc32c(0, p + off, 28));
    if (!write_all(s->fd, p, ixlen + FL_FOOT_LEN, s->size) ||
        fdatasync(s->fd) != 0) {
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            fl_log(FL_LOG_ERR, "FL-STORAGE-SEAL",
                   "cannot cut back file=%s offset=%llu", s->path,
                   (unsigned long long)s->size);
        }
        goto out;
    }
    close(s->fd);
    s->fd = -1;
    s->sealed = true;
    s->data_end = s->size;
    ret = FL_OK;
out:
    free(p);
    return ret;
}

int
fl_seg_read_block(int fd, const struct fl_blk *b, uint8_t **buf, size_t *cap)
{
    size_t blen;
    ssize_t r;

    if (b->length < FL_BLK_HEADER_LEN) {
        return FL_EFORMAT;
    }
    if (*cap < b->length) {
        uint8_t *p = realloc(*buf, b->length);

        if (p == NULL) {
            return FL_ENOMEM;
        }
        *buf = p;
        *cap = b->length;
    }
    r = pread(fd, *buf, b->length, (off_t)b->offset);
    if (r < 0) {
        return FL_EIO;
    }
    if ((size_t)r != b->length ||
        fl_seg_block_check(*buf, b->length, 0, &blen) != FL_OK ||
        blen != b->length) {
        return FL_EFORMAT;
    }
    return FL_OK;
}
