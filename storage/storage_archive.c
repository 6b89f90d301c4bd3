/*
 * The archive directory: archive.conf fixing the shard count, one
 * shard-NN directory per shard, and the open segments appends go to
 * (one per shard and hour of flow time).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_int.h"

#define CONF_NAME "archive.conf"
#define MAX_SHARDS 100

void
fl_archive_opts_default(struct fl_archive_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->shards = 4;
    o->segment_bytes = 512ull << 20;
    o->segment_span_ms = FL_HOUR_MS;
    o->read_only = false;
}

unsigned
fl_archive_shard_of(const char *sensor, uint32_t shards)
{
    uint32_t h = 2166136261u;

    for (const char *p = sensor; *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    return shards ? h % shards : 0;
}

/* Reads "shards = N" from archive.conf; creates the file when allowed. */
static int
conf_load(const char *dir, const struct fl_archive_opts *o, uint32_t *shards,
          char *err, size_t errlen)
{
    char path[4200];
    char line[256];
    FILE *f;
    int fd;
    unsigned n = 0;
    unsigned version = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, CONF_NAME);
    f = fopen(path, "r");
    if (f == NULL && errno == ENOENT && !o->read_only) {
        if (o->shards == 0 || o->shards > MAX_SHARDS) {
            snprintf(err, errlen, "%s: shards must be 1..%d", path, MAX_SHARDS);
            return FL_EINVAL;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return FL_EIO;
        }
        dprintf(fd,
                "# fl0wer archive: fixed at creation\nversion = 1\n"
                "shards = %u\n",
                o->shards);
        if (fsync(fd) != 0) {
            close(fd);
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return FL_EIO;
        }
        close(fd);
        *shards = o->shards;
        return FL_OK;
    }
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? FL_ENOENT : FL_EIO;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, " shards = %u", &n) == 1 ||
            sscanf(line, " version = %u", &version) == 1) {
            continue;
        }
    }
    fclose(f);
    if (version != 1 || n == 0 || n > MAX_SHARDS) {
        snprintf(err, errlen, "%s: needs version = 1 and shards = 1..%d", path,
                 MAX_SHARDS);
        return FL_EFORMAT;
    }
    *shards = n;
    return FL_OK;
}

static int
seg_cmp(const void *x, const void *y)
{
    const struct fl_seg *a = *(struct fl_seg *const *)x;
    const struct fl_seg *b = *(struct fl_seg *const *)y;

    if (a->hour_ms != b->hour_ms) {
        return a->hour_ms < b->hour_ms ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
shard_push(struct fl_shard *sh, struct fl_seg *s)
{
    if (sh->n == sh->cap) {
        size_t cap = sh->cap ? sh->cap * 2 : 16;
        struct fl_seg **v = realloc(sh->segs, cap * sizeof(*v));

        if (v == NULL) {
            return FL_ENOMEM;
        }
        sh->segs = v;
        sh->cap = cap;
    }
    sh->segs[sh->n++] = s;
    return FL_OK;
}

/*
 * A segment whose header cannot be read must not make the rest of the
 * archive unreadable.  A writer renames it to NAME.damaged, out of the
 * way of new segment names but kept for the operator (fsck reports it);
 * a reader only skips it.
 */
static int
set_aside(const struct fl_archive *a, const char *path, int why)
{
    char moved[8320];

    if (a->o.read_only) {
        fl_log(FL_LOG_ERR, "FL-STORAGE-CORRUPT",
               "segment skipped file=%s offset=0 error=%s", path,
               fl_strerror(why));
        return FL_OK;
    }
    snprintf(moved, sizeof(moved), "%s.damaged", path);
    if (rename(path, moved) != 0) {
        return FL_EIO;
    }
    fl_log(FL_LOG_ERR, "FL-STORAGE-CORRUPT",
           "segment set aside file=%s offset=0 error=%s", moved,
           fl_strerror(why));
    return FL_OK;
}

/* Opens every segment of one shard directory. */
static int
shard_load(struct fl_archive *a, unsigned i, char *err, size_t errlen)
{
    struct fl_shard *sh = &a->shards[i];
    DIR *d;
    struct dirent *de;
    int ret = FL_OK;

    if (snprintf(sh->dir, sizeof(sh->dir), "%s/shard-%02u", a->dir, i) >=
        (int)sizeof(sh->dir)) {
        return FL_EINVAL;
    }
    if (!a->o.read_only && mkdir(sh->dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", sh->dir, strerror(errno));
        return FL_EIO;
    }
    d = opendir(sh->dir);
    if (d == NULL) {
        /* A read-only archive may lack a shard that never got data. */
        return a->o.read_only && errno == ENOENT ? FL_OK : FL_EIO;
    }
    while (ret == FL_OK && (de = readdir(d)) != NULL) {
        char path[8300];
        uint64_t hour;
        uint32_t seq;
        struct fl_seg *s;

        if (fl_seg_name_parse(de->d_name, &hour, &seq) != FL_OK) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", sh->dir, de->d_name);
        ret = fl_seg_open(path, i, !a->o.read_only, &s);
        if (ret == FL_OK) {
            ret = shard_push(sh, s);
        } else if (ret == FL_EFORMAT || ret == FL_ETRUNC ||
                   ret == FL_EVERSION) {
            ret = set_aside(a, path, ret);
        } else {
            snprintf(err, errlen, "%s: %s", path, fl_strerror(ret));
        }
    }
    closedir(d);
    if (sh->n > 0) {
        qsort(sh->segs, sh->n, sizeof(*sh->segs), seg_cmp);
    }
    return ret;
}

int
fl_archive_open(const char *dir, const struct fl_archive_opts *o,
                struct fl_archive **out, char *err, size_t errlen)
{
    struct fl_archive *a = calloc(1, sizeof(*a));
    int ret = FL_ENOMEM;

    *out = NULL;
    if (a == NULL) {
        goto out;
    }
    pthread_rwlock_init(&a->lock, NULL);
    fl_ixbuild_init(&a->ib);
    a->o = *o;
    ret = FL_EINVAL;
    if (strlen(dir) >= sizeof(a->dir) - 64) {
        snprintf(err, errlen, "%s: path too long", dir);
        goto out;
    }
    strcpy(a->dir, dir);
    if (!o->read_only && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        ret = FL_EIO;
        goto out;
    }
    ret = conf_load(dir, o, &a->nshards, err, errlen);
    if (ret != FL_OK) {
        goto out;
    }
    a->o.shards = a->nshards;
    a->shards = calloc(a->nshards, sizeof(*a->shards));
    ret = a->shards ? FL_OK : FL_ENOMEM;
    for (unsigned i = 0; ret == FL_OK && i < a->nshards; i++) {
        ret = shard_load(a, i, err, errlen);
    }
out:
    if (ret != FL_OK) {
        fl_archive_close(a);
        a = NULL;
    }
    *out = a;
    return ret;
}

static bool
seg_is_over(const struct fl_archive *a, const struct fl_seg *s, uint64_t now)
{
    if (s->size >= a->o.segment_bytes) {
        return true;
    }
    if (s->records > 0 &&
        s->time_last - s->time_first >= a->o.segment_span_ms) {
        return true;
    }
    return now != 0 && s->hour_ms + FL_HOUR_MS <= now;
}

static void
seal_where(struct fl_archive *a, bool force, uint64_t now, int *first_err)
{
    for (uint32_t i = 0; i < a->nshards; i++) {
        struct fl_shard *sh = &a->shards[i];

        for (size_t j = 0; j < sh->n; j++) {
            struct fl_seg *s = sh->segs[j];
            int ret;

            if (s->sealed || s->fd < 0 || !(force || seg_is_over(a, s, now))) {
                continue;
            }
            ret = fl_seg_seal(s);
            if (ret != FL_OK && *first_err == FL_OK) {
                *first_err = ret;
            }
        }
    }
}

void
fl_archive_close(struct fl_archive *a)
{
    int unused = FL_OK;

    if (a == NULL) {
        return;
    }
    if (!a->o.read_only && a->shards != NULL) {
        seal_where(a, false, fl_time_now_ms(), &unused);
    }
    for (uint32_t i = 0; a->shards != NULL && i < a->nshards; i++) {
        for (size_t j = 0; j < a->shards[i].n; j++) {
            fl_seg_close(a->shards[i].segs[j]);
        }
        free(a->shards[i].segs);
    }
    free(a->shards);
    fl_ixbuild_fini(&a->ib);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

int
fl_archive_seal(struct fl_archive *a, bool force)
{
    int ret = FL_OK;

    if (a->o.read_only) {
        return FL_EINVAL;
    }
    pthread_rwlock_wrlock(&a->lock);
    seal_where(a, force, fl_time_now_ms(), &ret);
    pthread_rwlock_unlock(&a->lock);
    return ret;
}

/* The open segment of shard sh for hour, created when there is none. */
static int
segment_for(struct fl_archive *a, unsigned shard, uint64_t hour,
            struct fl_seg **out)
{
    struct fl_shard *sh = &a->shards[shard];
    uint32_t seq = 0;
    size_t at = sh->n;
    int ret;

    for (size_t j = sh->n; j-- > 0;) {
        struct fl_seg *s = sh->segs[j];

        if (s->hour_ms == hour && !s->sealed && s->fd >= 0) {
            *out = s;
            return FL_OK;
        }
        if (s->hour_ms == hour && s->seq >= seq) {
            seq = s->seq + 1;
        }
        if (s->hour_ms > hour) {
            at = j;
        }
    }
    if (seq > 9999) {
        return FL_ELIMIT;
    }
    ret = fl_seg_create(sh->dir, shard, hour, seq, out);
    if (ret != FL_OK) {
        return ret;
    }
    ret = shard_push(sh, *out);
    if (ret != FL_OK) {
        fl_seg_close(*out);
        return ret;
    }
    memmove(sh->segs + at + 1, sh->segs + at,
            (sh->n - 1 - at) * sizeof(*sh->segs));
    sh->segs[at] = *out;
    return FL_OK;
}

int
fl_archive_append(struct fl_archive *a, const uint8_t *batch, size_t len,
                  const struct fl_append_info *info)
{
    struct fl_seg *s;
    uint64_t t;
    int ret;

    if (a->o.read_only || batch == NULL || len == 0 || info == NULL ||
        info->sensor == NULL || (info->nflows > 0 && info->flows == NULL)) {
        return FL_EINVAL;
    }
    t = info->time_first ? info->time_first : fl_time_now_ms();
    pthread_rwlock_wrlock(&a->lock);
    ret = segment_for(a, fl_archive_shard_of(info->sensor, a->nshards),
                      t / FL_HOUR_MS * FL_HOUR_MS, &s);
    if (ret == FL_OK) {
        ret = fl_seg_append(s, batch, len, info, &a->ib);
    }
    if (ret == FL_OK && seg_is_over(a, s, 0) && fl_seg_seal(s) != FL_OK) {
        /* The block is durable; sealing is tried again later. */
        fl_log(FL_LOG_WARN, "FL-STORAGE-SEAL", "seal failed file=%s", s->path);
    }
    pthread_rwlock_unlock(&a->lock);
    return ret;
}

void
fl_archive_forget(struct fl_archive *a, unsigned shard, size_t i)
{
    struct fl_shard *sh = &a->shards[shard];

    memmove(sh->segs + i, sh->segs + i + 1,
            (sh->n - i - 1) * sizeof(*sh->segs));
    sh->n--;
}
