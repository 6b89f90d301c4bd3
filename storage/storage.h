/*
 * The archive: shards of time-bounded segments of checksummed blocks, each
 * block one or more signed batches kept byte for byte, with an index per
 * segment (time ranges, Bloom filters, prefix summaries) that lets a scan
 * skip blocks that cannot match.  Knows nothing of the network.
 */
#ifndef FL_STORAGE_H
#define FL_STORAGE_H

#include "common.h"

struct fl_archive;

struct fl_archive_opts {
    uint32_t shards;          /* shard-00 .. shard-NN; fixed at creation */
    uint64_t segment_bytes;   /* a segment is sealed past this size */
    uint64_t segment_span_ms; /* ... or past this much flow time (1 h) */
    bool read_only;           /* open for queries and fsck only */
};

void fl_archive_opts_default(struct fl_archive_opts *o);

/*
 * Opens (creating when missing and not read-only) the archive in dir.
 * Open segments are recovered: a torn or corrupt tail is cut at the last
 * good block and reported through fl_log (FL-STORAGE-RECOVER) with file
 * and offset.  Returns FL_EIO / FL_EFORMAT with the reason in err.
 */
int fl_archive_open(const char *dir, const struct fl_archive_opts *o,
                    struct fl_archive **out, char *err, size_t errlen);
void fl_archive_close(struct fl_archive *a);

/* Facts about one batch being appended, read from its verified statement
 * and records by the caller. */
struct fl_append_info {
    const char *sensor;
    uint64_t sequence;
    uint64_t time_first; /* earliest flow start in the batch, ms */
    uint64_t time_last;  /* latest flow end, ms */
    uint32_t records;
    const struct fl_flow *flows; /* the batch's records, for the index */
    size_t nflows;
};

/*
 * Appends one verified batch (bytes exactly as signed) to the shard
 * chosen by the sensor name, in the segment of its flow time.  Returns
 * only after the block is written and fsynced.  FL_EIO (disk full,
 * I/O error) leaves the archive as it was before the call.
 */
int fl_archive_append(struct fl_archive *a, const uint8_t *batch, size_t len,
                      const struct fl_append_info *info);

/* Seals open segments whose span or size is over, or all with force. */
int fl_archive_seal(struct fl_archive *a, bool force);

/*
 * Deletes whole segments whose flows all ended more than days ago, and
 * records each purge in ARCHIVE/purge.log (segment, time range, records,
 * when).  *purged gets the number of segments deleted.
 */
int fl_archive_retention(struct fl_archive *a, uint32_t days, uint32_t *purged);

/* ---- scanning ---------------------------------------------------------- */

/*
 * One condition every matching flow satisfies: its source address, its
 * destination address, or either, lies in one of the prefixes.  The
 * index prunes with these only; anything else is left to match().
 */
enum fl_side {
    FL_SIDE_ANY,
    FL_SIDE_SRC,
    FL_SIDE_DST,
};

struct fl_scan_need {
    enum fl_side side;
    const struct fl_prefix *prefixes;
    size_t n;
};

struct fl_scan {
    uint64_t t_start; /* flows with time_start in [t_start, t_end) */
    uint64_t t_end;
    const struct fl_scan_need *needs; /* all must hold */
    size_t nneeds;
    bool no_index; /* scan every block: for tests of the pruning */
    /* The full predicate; NULL matches everything in the window. */
    bool (*match)(void *arg, const struct fl_flow *f, const char *sensor);
    void *match_arg;
    /* Called for each match, possibly from several threads at once:
     * it must lock what it shares.  Returning false stops the scan. */
    bool (*emit)(void *arg, const struct fl_flow *f, const char *sensor);
    void *emit_arg;
    unsigned threads; /* 0: one per CPU */
};

struct fl_scan_stats {
    uint64_t segments;
    uint64_t blocks;         /* blocks in the window */
    uint64_t blocks_pruned;  /* skipped by the index */
    uint64_t blocks_read;    /* decompressed */
    uint64_t blocks_corrupt; /* checksum failed: reported, skipped */
    uint64_t records;        /* decoded */
    uint64_t matched;
};

/* Runs a scan over every shard; corrupt blocks are logged and counted,
 * never served.  Returns FL_OK, or the first I/O error. */
int fl_archive_scan(struct fl_archive *a, const struct fl_scan *q,
                    struct fl_scan_stats *st);

/* ---- checking ---------------------------------------------------------- */

struct fl_fsck_report {
    uint64_t segments;
    uint64_t blocks;
    uint64_t batches;
    uint64_t records;
    uint64_t bad_checksums;
    uint64_t bad_signatures; /* or payload hash / Merkle root mismatch */
    uint64_t unknown_keys;   /* batches whose sensor key was not given */
    uint64_t torn_tails;
};

/*
 * Checks every block checksum and, for each batch, its signature with the
 * public key of its sensor found in keys_dir (NAME.pub; NULL: checksums
 * only), payload hash and Merkle root.  Each problem is logged with file
 * and offset (FL-STORAGE-FSCK).  FL_OK when nothing was wrong, FL_EFORMAT
 * when something was (the report says what).
 */
int fl_archive_fsck(const char *dir, const char *keys_dir,
                    struct fl_fsck_report *r);

#endif /* FL_STORAGE_H */
