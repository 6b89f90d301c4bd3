/*
 * Retention: whole segments whose flows all ended before the cutoff are
 * deleted, each purge first written (and synced) to ARCHIVE/purge.log so
 * a deleted segment is told apart from a missing one.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_int.h"

/* The last time any flow of s ended; the hour's end when it has none. */
static uint64_t
seg_end(const struct fl_seg *s)
{
    return s->records > 0 ? s->time_last : s->hour_ms + FL_HOUR_MS;
}

static int
log_purge(int fd, const struct fl_shard *sh, const struct fl_seg *s,
          uint64_t now)
{
    char first[FL_TIME_STRLEN];
    char last[FL_TIME_STRLEN];
    char when[FL_TIME_STRLEN];
    const char *shard = strrchr(sh->dir, '/');
    char line[512];
    int n;

    fl_time_format(s->records ? s->time_first : s->hour_ms, first);
    fl_time_format(seg_end(s), last);
    fl_time_format(now, when);
    n = snprintf(line, sizeof(line),
                 "{\"segment\":\"%s/%s\",\"time_first\":\"%s\","
                 "\"time_last\":\"%s\",\"records\":%llu,\"blocks\":%zu,"
                 "\"deleted_at\":\"%s\"}\n",
                 shard ? shard + 1 : sh->dir, s->name, first, last,
                 (unsigned long long)s->records, s->nblks, when);
    if (n < 0 || (size_t)n >= sizeof(line) || write(fd, line, (size_t)n) != n ||
        fdatasync(fd) != 0) {
        return FL_EIO;
    }
    return FL_OK;
}

int
fl_archive_retention(struct fl_archive *a, uint32_t days, uint32_t *purged)
{
    char path[4200];
    uint64_t now = fl_time_now_ms();
    uint64_t keep = (uint64_t)days * 86400000ull;
    uint64_t cutoff = now > keep ? now - keep : 0;
    int fd;
    int ret = FL_OK;

    *purged = 0;
    if (a->o.read_only) {
        return FL_EINVAL;
    }
    snprintf(path, sizeof(path), "%s/purge.log", a->dir);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return FL_EIO;
    }
    pthread_rwlock_wrlock(&a->lock);
    for (uint32_t i = 0; ret == FL_OK && i < a->nshards; i++) {
        struct fl_shard *sh = &a->shards[i];

        for (size_t j = 0; ret == FL_OK && j < sh->n;) {
            struct fl_seg *s = sh->segs[j];

            if (seg_end(s) >= cutoff) {
                j++;
                continue;
            }
            /* Log first: a crash between the two leaves a logged purge
             * of a segment still present, never an unexplained gap. */
            ret = log_purge(fd, sh, s, now);
            if (ret == FL_OK && unlink(s->path) != 0) {
                ret = FL_EIO;
            }
            if (ret == FL_OK) {
                fl_log(FL_LOG_NOTICE, "FL-STORAGE-PURGE",
                       "segment deleted file=%s records=%llu", s->path,
                       (unsigned long long)s->records);
                fl_archive_forget(a, i, j);
                fl_seg_close(s);
                (*purged)++;
            }
        }
    }
    pthread_rwlock_unlock(&a->lock);
    close(fd);
    return ret;
}
