/*
 * What the storage files share privately: the segment file layout, the
 * in-memory index of one block, the Bloom filter and the index builder.
 * Included by nothing outside storage/.
 */
#ifndef FL_STORAGE_INT_H
#define FL_STORAGE_INT_H

#include <pthread.h>

#include "storage.h"

/* ---- segment file layout (docs/formats.md, "Archive segments") ------- */

#define FL_SEG_MAGIC "FL0WSEG1"
#define FL_SEG_VERSION 1
#define FL_SEG_HEADER_LEN 24 /* magic, u32 version, u32 flags, u64 hour */

#define FL_BLK_MAGIC "FLBK"
#define FL_BLK_HEADER_LEN 40
#define FL_BLK_CRC_OFF 36     /* CRC-32C of header[0..36) and the body */
#define FL_BLK_BATCH_PREFIX 8 /* u32 batch length, u32 record count */
#define FL_BLK_MAX_BODY (FL_BATCH_MAX_BYTES + 4096u)

#define FL_IDX_MAGIC "FLIX"
#define FL_IDX_VERSION 2
#define FL_IDX_HEADER_LEN 12 /* magic, u32 version, u32 entry count */
#define FL_IDX_ENTRY_FIXED 80

#define FL_FOOT_MAGIC "FL0WEND1"
#define FL_FOOT_LEN 32

#define FL_HOUR_MS 3600000ull

/* Index entry flags. */
#define FL_BLK_CORRUPT 1u /* a damaged region: counted, never read */

/* ---- the Bloom filter over 16-byte addresses ------------------------- */

/* Two independent 64-bit hashes of an address, for double hashing. */
void fl_bloom_hash(const struct fl_addr *a, uint64_t *h1, uint64_t *h2);
/* Bits for n distinct keys at a 1% false positive rate (at least 64). */
uint32_t fl_bloom_bits(size_t n);
/* Number of hash functions for m bits over n keys (1..16). */
uint8_t fl_bloom_k(uint32_t m, size_t n);
void fl_bloom_set(uint8_t *bits, uint32_t m, uint8_t k, uint64_t h1,
                  uint64_t h2);
bool fl_bloom_test(const uint8_t *bits, uint32_t m, uint8_t k, uint64_t h1,
                   uint64_t h2);

/* ---- the index of one block ------------------------------------------ */

/* The prefix summaries of an entry, in their order in the entry. */
enum fl_ixlevel_id {
    FL_LV_24, /* IPv4 /24: 3-byte keys */
    FL_LV_16, /* IPv4 /16: 2-byte keys */
    FL_LV_48, /* IPv6 /48: 6-byte keys (IPv4-mapped excluded) */
    FL_LV_32, /* IPv6 /32: 4-byte keys */
    FL_LV_COUNT,
};

/* How a summary is written (docs/formats.md, "Index"). */
enum fl_ixenc {
    FL_IXENC_ABSENT = 0, /* dropped: the level proves nothing */
    FL_IXENC_LIST = 1,   /* sorted unique big-endian fixed-width keys */
    FL_IXENC_BITMAP = 2, /* /16 only: 65,536 bits, bit v for key v */
    FL_IXENC_DELTA = 3,  /* LEB128: first key, then gaps minus one */
};

#define FL_IX_BITMAP16_LEN 8192
/* Summaries are kept, cheapest first, while the whole entry stays within
 * this share of the block's bytes, or within FL_IX_FLOOR bytes. */
#define FL_IX_BUDGET_PCT 10
#define FL_IX_FLOOR 256

struct fl_ixlevel {
    uint8_t enc;      /* enum fl_ixenc */
    uint32_t n;       /* distinct prefixes in the block, even when absent */
    uint32_t len;     /* bytes of the encoding */
    const uint8_t *p; /* into the entry's blob */
};

/*
 * One block as the index knows it.  The serialized index entry lives in
 * blob (owned when own is set, else borrowed from the segment's index
 * buffer); bloom and the summaries point into it.
 */
struct fl_blk {
    uint64_t offset; /* of the block header in the file */
    uint32_t length; /* header and body */
    uint32_t records;
    uint64_t time_first;
    uint64_t time_last;
    uint32_t flags;
    uint32_t bloom_m;
    uint8_t bloom_k;
    struct fl_ixlevel lv[FL_LV_COUNT];
    const uint8_t *bloom;
    uint8_t *blob;
    size_t bloblen;
    bool own;
};

/* Collects the distinct addresses of one block. */
struct fl_ixbuild {
    struct fl_addr *addrs;
    uint64_t *h1;
    uint64_t *h2;
    uint32_t *slots; /* open addressing: index + 1, 0 empty */
    size_t n;
    size_t cap;
    size_t nslots;
    uint64_t *keys; /* scratch for the prefix keys: 2 x cap */
    size_t keycap;
    unsigned budget_pct; /* FL_IX_BUDGET_PCT; tests change it */
    bool failed;         /* an allocation failed: finish reports FL_ENOMEM */
};

void fl_ixbuild_init(struct fl_ixbuild *b);
void fl_ixbuild_fini(struct fl_ixbuild *b);
/* Starts a new block, sized for about naddrs addresses. */
int fl_ixbuild_reset(struct fl_ixbuild *b, size_t naddrs);
void fl_ixbuild_add(struct fl_ixbuild *b, const struct fl_addr *a);
/* Serializes the entry into a fresh blob owned by out. */
int fl_ixbuild_finish(struct fl_ixbuild *b, const struct fl_blk *meta,
                      struct fl_blk *out);

/* An entry for a damaged region: no Bloom, no prefixes, every time. */
int fl_blk_corrupt(uint64_t offset, uint64_t length, struct fl_blk *out);
void fl_blk_fini(struct fl_blk *b);
/* Parses one serialized entry at the cursor, borrowing its bytes.  The
 * summaries' lengths are checked, not their contents: a malformed delta
 * list is found while searching it and then proves nothing. */
int fl_blk_parse(struct fl_cursor *c, struct fl_blk *out);
/* May a flow with an address in one of need's prefixes be in the block?
 * False only when the index proves it absent. */
bool fl_blk_may_match(const struct fl_blk *b, const struct fl_scan_need *need);
bool fl_blk_may_have_prefix(const struct fl_blk *b, const struct fl_prefix *p);

/* ---- segments --------------------------------------------------------- */

struct fl_seg {
    char path[4096];
    char name[64]; /* seg-YYYYMMDDTHH-NNNN.fl0 */
    unsigned shard;
    uint64_t hour_ms;
    uint32_t seq;
    bool sealed;
    int fd;            /* open segments only; -1 otherwise */
    uint64_t size;     /* end of the last good block (open segments) */
    uint64_t data_end; /* where blocks end: the index offset when sealed */
    struct fl_blk *blks;
    size_t nblks;
    size_t capblks;
    uint8_t *ixbuf; /* a sealed segment's index bytes */
    uint64_t time_first;
    uint64_t time_last;
    uint64_t records;
};

/* What a block walk found, reported through callbacks. */
struct fl_walk_ops {
    /* A block whose checksum holds; body borrowed for the call. */
    int (*good)(void *arg, uint64_t off, const uint8_t *blk, size_t len);
    /* A damaged region with good blocks after it. */
    int (*bad)(void *arg, uint64_t off, uint64_t len);
    void *arg;
};

/*
 * Walks blocks in buf[start, end) (buf is the whole file).  *tail gets
 * where good data ends: end when the walk was clean, else the offset of a
 * torn or corrupt last block.  Returns the first callback error.
 */
int fl_seg_walk(const uint8_t *buf, size_t start, size_t end,
                const struct fl_walk_ops *ops, uint64_t *tail);
/* Checks one block at off: FL_OK, FL_ETRUNC (incomplete), FL_EFORMAT. */
int fl_seg_block_check(const uint8_t *buf, size_t end, size_t off,
                       size_t *blen);
/* Parses a file header; *hour_ms gets its hour. */
int fl_seg_header_parse(const uint8_t *buf, size_t len, uint64_t *hour_ms);
/* Finds a valid footer and index: *ixoff and *ixlen, FL_OK; FL_ENOENT
 * when there is no footer magic; FL_EFORMAT when the footer or index
 * fails its checksum. */
int fl_seg_footer_parse(const uint8_t *buf, size_t len, uint64_t *ixoff,
                        uint64_t *ixlen);
/* Parses an index into blks (borrowing from buf[ixoff..]); FL_EVERSION
 * for an index version other than FL_IDX_VERSION. */
int fl_seg_index_parse(const uint8_t *ix, size_t len, struct fl_blk **blks,
                       size_t *n);

/*
 * Calls fn for each batch of a block body: batch bytes, record count.
 * FL_EFORMAT when the batch prefixes do not tile the body.
 */
int fl_seg_block_batches(const uint8_t *body, size_t len,
                         int (*fn)(void *arg, const uint8_t *batch, size_t len,
                                   uint32_t records),
                         void *arg);
/* The payload of a batch, from its 16-byte header only (unverified). */
int fl_seg_batch_payload(const uint8_t *batch, size_t len,
                         const uint8_t **payload, size_t *plen);
/* The per-block decompression ceiling handed to fl_columns_decode. */
size_t fl_seg_decode_cap(uint32_t records);

int fl_seg_create(const char *shard_dir, unsigned shard, uint64_t hour_ms,
                  uint32_t seq, struct fl_seg **out);
/* Opens a segment file; recover: cut a torn tail (open segments). */
int fl_seg_open(const char *path, unsigned shard, bool recover,
                struct fl_seg **out);
void fl_seg_close(struct fl_seg *s);
int fl_seg_append(struct fl_seg *s, const uint8_t *batch, size_t len,
                  const struct fl_append_info *info, struct fl_ixbuild *ib);
int fl_seg_seal(struct fl_seg *s);
/* Reads and checks block b into *buf (grown as needed). */
int fl_seg_read_block(int fd, const struct fl_blk *b, uint8_t **buf,
                      size_t *cap);
/* Names: seg-YYYYMMDDTHH-NNNN.fl0. */
int fl_seg_name_parse(const char *name, uint64_t *hour_ms, uint32_t *seq);
void fl_seg_name_format(uint64_t hour_ms, uint32_t seq, char out[64]);

/* ---- the archive ------------------------------------------------------ */

struct fl_shard {
    char dir[4096];
    struct fl_seg **segs; /* sorted by hour, then sequence */
    size_t n;
    size_t cap;
};

struct fl_archive {
    char dir[4096];
    struct fl_archive_opts o;
    struct fl_shard *shards;
    uint32_t nshards;
    struct fl_ixbuild ib;
    /* Appends, seals and purges write; scans read. */
    pthread_rwlock_t lock;
};

/* Stable shard of a sensor: FNV-1a 32 of its name modulo shards. */
unsigned fl_archive_shard_of(const char *sensor, uint32_t shards);
/* Removes s from its shard (retention); s is closed by the caller. */
void fl_archive_forget(struct fl_archive *a, unsigned shard, size_t i);

#endif /* FL_STORAGE_INT_H */
