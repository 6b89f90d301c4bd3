/*
 * The sensor's chain of signed batches: DIR/chain.state carries the next
 * sequence number and the previous statement's hash across restarts, and
 * the chain writer builds, appends and then records each batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor_int.h"
#include "storage.h"

#define CHAIN_FILE "chain.state"
#define CHAIN_TMP "chain.state.tmp"
#define CHAIN_VERSION "fl0wer-chain 1"
/* A chain file is a few lines; anything larger is not one we wrote. */
#define CHAIN_MAX_BYTES 1024

#define SEAL_EVERY_MS 60000
#define RETENTION_EVERY_MS 3600000

/* ---- the state file --------------------------------------------------- */

/*
 * The file is text an operator can read:
 *   fl0wer-chain 1 / sensor NAME / next_sequence N / previous HEX /
 *   check CRC
 * where CRC is the CRC-32C of every byte before the check line, so a
 * damaged file is told apart from one that says something else.
 */
static int
format_chain(const struct fl_chain *c, struct fl_str *out)
{
    char prev[2 * FL_HASH_LEN + 1];
    int rc;

    fl_hex(c->previous, FL_HASH_LEN, prev);
    rc = fl_str_printf(out,
                       CHAIN_VERSION "\nsensor %s\nnext_sequence %" PRIu64
                                     "\nprevious %s\n",
                       c->sensor, c->next_sequence, prev);
    if (rc == FL_OK) {
        rc = fl_str_printf(out, "check %08" PRIx32 "\n",
                           fl_crc32c(0, out->p, out->len));
    }
    return rc;
}

/* Takes the next line off *p (without its '\n'); false at a bare end. */
static bool
next_line(const char **p, const char *end, char *line, size_t cap)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n;

    if (nl == NULL) {
        return false;
    }
    n = (size_t)(nl - *p);
    if (n >= cap || memchr(*p, '\0', n) != NULL) {
        return false;
    }
    memcpy(line, *p, n);
    line[n] = '\0';
    *p = nl + 1;
    return true;
}

/* Strictly the form format_chain writes, nothing more; why in *why. */
static int
parse_chain(const char *text, size_t len, struct fl_chain *c, const char **why)
{
    const char *p = text;
    const char *end = text + len;
    char line[160];
    char hex[2 * FL_HASH_LEN + 2];
    char tail;
    uint32_t crc;
    size_t body;

    *why = "malformed";
    if (!next_line(&p, end, line, sizeof(line)) ||
        strcmp(line, CHAIN_VERSION) != 0) {
        *why = "unknown version line";
        return FL_EFORMAT;
    }
    if (!next_line(&p, end, line, sizeof(line)) ||
        sscanf(line, "sensor %64s%c", c->sensor, &tail) != 1 ||
        !fl_name_is_valid(c->sensor) ||
        !next_line(&p, end, line, sizeof(line)) ||
        sscanf(line, "next_sequence %" SCNu64 "%c", &c->next_sequence, &tail) !=
            1 ||
        !next_line(&p, end, line, sizeof(line)) ||
        sscanf(line, "previous %65s%c", hex, &tail) != 1 ||
        fl_unhex(hex, c->previous, FL_HASH_LEN) != FL_OK) {
        return FL_EFORMAT;
    }
    body = (size_t)(p - text);
    if (!next_line(&p, end, line, sizeof(line)) ||
        sscanf(line, "check %8" SCNx32 "%c", &crc, &tail) != 1 ||
        strlen(line) != 14 || p != end) {
        return FL_EFORMAT;
    }
    if (crc != fl_crc32c(0, text, body)) {
        *why = "checksum mismatch";
        return FL_EFORMAT;
    }
    return FL_OK;
}

static int
read_chain_file(const char *path, char *buf, size_t cap, size_t *len)
{
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? FL_ENOENT : FL_EIO;
    }
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return FL_EIO;
        }
        if (n == 0 || got + (size_t)n == cap) {
            got += (size_t)n;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return got == cap ? FL_ELIMIT : FL_OK;
}

int
fl_chain_load(const char *dir, const char *sensor, struct fl_chain *c,
              char *err, size_t errlen)
{
    char path[4096];
    char buf[CHAIN_MAX_BYTES];
    const char *why = "too large";
    size_t len = 0;
    int rc;

    memset(c, 0, sizeof(*c));
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return FL_EIO;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, CHAIN_FILE);
    rc = read_chain_file(path, buf, sizeof(buf), &len);
    if (rc == FL_ENOENT) {
        /* A new sensor: the chain starts at 0 with an all-zero hash. */
        snprintf(c->sensor, sizeof(c->sensor), "%s", sensor);
        randombytes_buf(c->session, sizeof(c->session));
        return FL_OK;
    }
    if (rc == FL_EIO) {
        snprintf(err, errlen, "chain state %s: %s", path, strerror(errno));
        return FL_EIO;
    }
    if (rc == FL_OK) {
        rc = parse_chain(buf, len, c, &why);
    }
    if (rc == FL_OK && strcmp(c->sensor, sensor) != 0) {
        snprintf(err, errlen,
                 "chain state %s: belongs to sensor %s, not %s; refusing "
                 "to start",
                 path, c->sensor, sensor);
        return FL_EFORMAT;
    }
    if (rc != FL_OK) {
        snprintf(err, errlen,
                 "chain state %s: damaged (%s); refusing to start, since a "
                 "new chain would repeat sequence numbers: restore the "
                 "file, or remove it to start over at sequence 0",
                 path, why);
        return FL_EFORMAT;
    }
    randombytes_buf(c->session, sizeof(c->session));
    return FL_OK;
}

static int
write_all(int fd, const char *p, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return FL_EIO;
        }
        done += (size_t)n;
    }
    return FL_OK;
}

/* Temp file, fsync, rename, then the directory: the file is either the
 * old one or the new one after a crash, never a mix. */
static int
write_atomic(int dirfd, const struct fl_str *text)
{
    int fd;
    int rc;

    fd = openat(dirfd, CHAIN_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                0600);
    if (fd < 0) {
        return FL_EIO;
    }
    rc = write_all(fd, text->p, text->len);
    if (rc == FL_OK && fsync(fd) != 0) {
        rc = FL_EIO;
    }
    if (close(fd) != 0) {
        rc = FL_EIO;
    }
    if (rc == FL_OK && (renameat(dirfd, CHAIN_TMP, dirfd, CHAIN_FILE) != 0 ||
                        fsync(dirfd) != 0)) {
        rc = FL_EIO;
    }
    return rc;
}

int
fl_chain_save(const char *dir, const struct fl_chain *c, char *err,
              size_t errlen)
{
    struct fl_str text = {0};
    int dirfd = -1;
    int rc;

    rc = format_chain(c, &text);
    if (rc != FL_OK) {
        snprintf(err, errlen, "chain state %s/%s: %s", dir, CHAIN_FILE,
                 fl_strerror(rc));
        goto out;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = dirfd < 0 ? FL_EIO : write_atomic(dirfd, &text);
    if (rc != FL_OK) {
        snprintf(err, errlen, "chain state %s/%s: %s", dir, CHAIN_FILE,
                 strerror(errno));
    }
out:
    if (dirfd >= 0) {
        close(dirfd);
    }
    fl_str_fini(&text);
    return rc;
}

/* ---- the writer ------------------------------------------------------- */

struct fl_chain_writer {
    const struct fl_seckey *key;
    struct fl_archive *archive;
    char *dir;
    struct fl_chain chain; /* advanced by each build */

    /* The batch in flight: built, its chain state maybe saved, not yet
     * appended.  The batcher offers the same batch until the sink takes
     * it. */
    uint8_t *built;
    size_t built_len;
    uint64_t sequence;
    bool saved;

    uint32_t retention_days;
    uint64_t next_seal_ms;
    uint64_t next_retention_ms;
    struct fl_ratelimit rl;
};

int
fl_chain_writer_new(const struct fl_seckey *key, struct fl_archive *a,
                    const char *dir, const struct fl_chain *chain,
                    uint32_t retention_days, struct fl_chain_writer **out)
{
    struct fl_chain_writer *w;

    *out = NULL;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return FL_ENOMEM;
    }
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        free(w);
        return FL_ENOMEM;
    }
    w->key = key;
    w->archive = a;
    w->chain = *chain;
    w->retention_days = retention_days;
    fl_ratelimit_init(&w->rl, 10000, 3);
    *out = w;
    return FL_OK;
}

void
fl_chain_writer_free(struct fl_chain_writer *w)
{
    if (w == NULL) {
        return;
    }
    free(w->built);
    free(w->dir);
    free(w);
}

/* Failures repeat every retry: at most a few lines, then one in 10 s. */
static void
log_failure(struct fl_chain_writer *w, const char *what, const char *why)
{
    uint64_t suppressed = 0;

    if (fl_ratelimit_pass(&w->rl, fl_time_mono_ms(), &suppressed)) {
        fl_log(FL_LOG_ERR, "FL-SENSOR-ARCHIVE",
               "%s, batch kept and retried sequence=%" PRIu64
               " reason=%s suppressed=%" PRIu64,
               what, w->sequence, why, suppressed);
    }
}

/* Signs the batch; the chain moves on only when the build succeeds. */
static int
build(struct fl_chain_writer *w, const struct fl_batch_buf *b)
{
    struct fl_statement losses;
    struct fl_chain before = w->chain;
    int rc;

    memset(&losses, 0, sizeof(losses));
    losses.lost_socket = b->lost.socket;
    losses.lost_decode = b->lost.decode;
    losses.lost_sequence = b->lost.sequence;
    w->sequence = w->chain.next_sequence;
    rc = fl_batch_build(w->key, &w->chain, b->flows, b->nflows, &losses,
                        &w->built, &w->built_len);
    if (rc != FL_OK) {
        w->chain = before;
        w->built = NULL;
        log_failure(w, "batch not built", fl_strerror(rc));
    }
    return rc;
}

static int
append(struct fl_chain_writer *w, const struct fl_batch_buf *b)
{
    struct fl_append_info info = {
        .sensor = w->chain.sensor,
        .sequence = w->sequence,
        .time_first = b->time_first,
        .time_last = b->time_last,
        .records = (uint32_t)b->nflows,
        .flows = b->flows,
        .nflows = b->nflows,
    };
    char why[128];
    int rc;

    errno = 0;
    rc = fl_archive_append(w->archive, w->built, w->built_len, &info);
    if (rc != FL_OK) {
        snprintf(why, sizeof(why), "%s%s%s", fl_strerror(rc),
                 errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
        log_failure(w, "archive append failed", why);
    }
    return rc;
}

/* Sealing and retention are the archive's housekeeping; done between
 * batches in this thread, since the archive has one writer. */
static void
housekeeping(struct fl_chain_writer *w)
{
    uint64_t now = fl_time_now_ms();
    uint32_t purged = 0;
    int rc;

    if (now >= w->next_seal_ms) {
        w->next_seal_ms = now + SEAL_EVERY_MS;
        rc = fl_archive_seal(w->archive, false);
        if (rc != FL_OK) {
            fl_log(FL_LOG_WARN, "FL-SENSOR-ARCHIVE",
                   "sealing segments failed: %s", fl_strerror(rc));
        }
    }
    if (w->retention_days == 0 || now < w->next_retention_ms) {
        return;
    }
    w->next_retention_ms = now + RETENTION_EVERY_MS;
    rc = fl_archive_retention(w->archive, w->retention_days, &purged);
    if (rc != FL_OK) {
        fl_log(FL_LOG_WARN, "FL-SENSOR-RETENTION", "retention failed: %s",
               fl_strerror(rc));
    } else if (purged > 0) {
        fl_log(FL_LOG_NOTICE, "FL-SENSOR-RETENTION",
               "segments purged count=%" PRIu32 " days=%" PRIu32, purged,
               w->retention_days);
    }
}

int
fl_chain_writer_sink(void *arg, const struct fl_batch_buf *b)
{
    struct fl_chain_writer *w = arg;
    char err[512];
    int rc;

    if (w->built == NULL) {
        rc = build(w, b);
        if (rc != FL_OK) {
            return rc;
        }
        w->saved = false;
    }
    /* Saved before the append: a crash between the two shows as a gap in
     * the sequence (a batch the archive lacks), never as a sequence
     * number used twice for different batches. */
    if (!w->saved) {
        rc = fl_chain_save(w->dir, &w->chain, err, sizeof(err));
        if (rc != FL_OK) {
            log_failure(w, "chain state not saved", err);
            return rc;
        }
        w->saved = true;
    }
    rc = append(w, b);
    if (rc != FL_OK) {
        return rc;
    }
    free(w->built);
    w->built = NULL;
    housekeeping(w);
    return FL_OK;
}
