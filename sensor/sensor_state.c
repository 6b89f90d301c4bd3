/*
 * The sensor's state directory (--state): templates.bin survives a
 * restart so that data records arriving before the exporter's next
 * template refresh still decode.  Written atomically, read defensively.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor_int.h"

#define TEMPLATES_FILE "templates.bin"
#define TEMPLATES_TMP "templates.bin.tmp"
#define TEMPLATES_BAD "templates.bin.bad"

/* A state file larger than this is not one the sensor wrote. */
#define TEMPLATES_MAX_BYTES (256u << 20)

struct fl_state {
    char *dir;
    int dirfd;
    uint8_t *last; /* bytes last loaded or saved, to skip rewrites */
    size_t last_len;
};

/* Reads all of fd, at most TEMPLATES_MAX_BYTES. */
static int
read_all(int fd, uint8_t **buf, size_t *len)
{
    struct stat st;
    uint8_t *p;
    size_t got = 0;

    if (fstat(fd, &st) != 0) {
        return FL_EIO;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > TEMPLATES_MAX_BYTES) {
        return FL_ELIMIT;
    }
    p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (p == NULL) {
        return FL_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            free(p);
            return n == 0 ? FL_ETRUNC : FL_EIO;
        }
        got += (size_t)n;
    }
    *buf = p;
    *len = got;
    return FL_OK;
}

/* Moves a damaged file aside so the next start does not trip on it. */
static void
quarantine(struct fl_state *s, int reason)
{
    fl_log(FL_LOG_WARN, "FL-SENSOR-STATE",
           "damaged state file ignored path=%s/%s reason=%s moved_to=%s",
           s->dir, TEMPLATES_FILE, fl_strerror(reason), TEMPLATES_BAD);
    if (renameat(s->dirfd, TEMPLATES_FILE, s->dirfd, TEMPLATES_BAD) != 0) {
        fl_log(FL_LOG_WARN, "FL-SENSOR-STATE",
               "cannot move damaged state file path=%s/%s: %s", s->dir,
               TEMPLATES_FILE, strerror(errno));
    }
}

static void
load_templates(struct fl_state *s, struct fl_decoder *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd;
    int rc;

    fd = openat(s->dirfd, TEMPLATES_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            fl_log(FL_LOG_WARN, "FL-SENSOR-STATE",
                   "cannot read state file path=%s/%s: %s", s->dir,
                   TEMPLATES_FILE, strerror(errno));
        }
        return;
    }
    rc = read_all(fd, &buf, &len);
    close(fd);
    if (rc == FL_OK) {
        rc = fl_decoder_templates_load(d, buf, len);
    }
    if (rc != FL_OK) {
        free(buf);
        quarantine(s, rc);
        return;
    }
    fl_log(FL_LOG_INFO, "FL-SENSOR-STATE",
           "templates loaded path=%s/%s bytes=%zu", s->dir, TEMPLATES_FILE,
           len);
    s->last = buf;
    s->last_len = len;
}

int
fl_state_open(const char *dir, struct fl_decoder *d, struct fl_state **out,
              char *err, size_t errlen)
{
    struct fl_state *s;
    int rc = FL_EIO;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FL_ENOMEM;
    }
    s->dirfd = -1;
    s->dir = strdup(dir);
    if (s->dir == NULL) {
        rc = FL_ENOMEM;
        goto out;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state %s: %s", dir, strerror(errno));
        goto out;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        snprintf(err, errlen, "state %s: %s", dir, strerror(errno));
        goto out;
    }

    load_templates(s, d);
    *out = s;
    s = NULL;
    rc = FL_OK;
out:
    fl_state_close(s);
    return rc;
}

/* Writes buf to a temporary file, fsynced, then renames it into place. */
static int
write_atomic(struct fl_state *s, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    int fd;

    fd = openat(s->dirfd, TEMPLATES_TMP,
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return FL_EIO;
    }
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            break;
        }
        done += (size_t)n;
    }
    if (done < len || fsync(fd) != 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return FL_EIO;
    }
    if (close(fd) != 0 ||
        renameat(s->dirfd, TEMPLATES_TMP, s->dirfd, TEMPLATES_FILE) != 0 ||
        fsync(s->dirfd) != 0) {
        return FL_EIO;
    }
    return FL_OK;
}

int
fl_state_save(struct fl_state *s, const struct fl_decoder *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    rc = fl_decoder_templates_save(d, &buf, &len);
    if (rc != FL_OK) {
        fl_log(FL_LOG_ERR, "FL-SENSOR-STATE", "cannot serialise templates: %s",
               fl_strerror(rc));
        return rc;
    }
    if (s->last != NULL && len == s->last_len &&
        memcmp(buf, s->last, len) == 0) {
        free(buf);
        return FL_OK;
    }
    rc = write_atomic(s, buf, len);
    if (rc != FL_OK) {
        fl_log(FL_LOG_ERR, "FL-SENSOR-STATE",
               "cannot save templates path=%s/%s: %s", s->dir, TEMPLATES_FILE,
               strerror(errno));
        free(buf);
        return rc;
    }
    fl_log(FL_LOG_DEBUG, "FL-SENSOR-STATE",
           "templates saved path=%s/%s bytes=%zu", s->dir, TEMPLATES_FILE, len);
    free(s->last);
    s->last = buf;
    s->last_len = len;
    return FL_OK;
}

void
fl_state_close(struct fl_state *s)
{
    if (s == NULL) {
        return;
    }
    if (s->dirfd >= 0) {
        close(s->dirfd);
    }
    free(s->last);
    free(s->dir);
    free(s);
}
