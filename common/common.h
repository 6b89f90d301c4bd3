/*
 * Fl0wer common layer: the canonical flow record, addresses and prefixes,
 * error codes, logging, configuration and a bounds-checked byte cursor.
 * Everything else in the tree builds on this header.
 */
#ifndef FL_COMMON_H
#define FL_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ---------------------------------------------------------- */

/* One error space for the whole tree: 0 is success, failures are negative. */
enum fl_err {
    FL_OK = 0,
    FL_ENOMEM = -1,   /* allocation failed */
    FL_EINVAL = -2,   /* bad argument or usage */
    FL_ETRUNC = -3,   /* input ends before its declared length */
    FL_EFORMAT = -4,  /* input is malformed */
    FL_EVERSION = -5, /* unsupported version */
    FL_ELIMIT = -6,   /* a configured ceiling was reached */
    FL_EIO = -7,      /* operating system I/O failure */
    FL_ENOENT = -8,   /* no such thing */
    FL_EEXIST = -9,   /* already exists */
    FL_EAUTH = -10,   /* signature or key check failed */
    FL_EAGAIN = -11,  /* try again later */
    FL_ENET = -12,    /* network failure */
};

/* Returns a static, lower-case description of err. */
const char *fl_strerror(int err);

/* Formats a reason into err (errlen bytes); does nothing when err is NULL,
 * so callers may pass NULL when they do not want the reason. */
void fl_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- logging --------------------------------------------------------- */

/* Syslog priorities, so stderr lines can carry a "<N>" prefix for journald. */
enum fl_log_level {
    FL_LOG_ERR = 3,
    FL_LOG_WARN = 4,
    FL_LOG_NOTICE = 5,
    FL_LOG_INFO = 6,
    FL_LOG_DEBUG = 7,
};

/* A log sink receives one formatted message without a trailing newline. */
typedef void (*fl_log_sink_fn)(void *arg, enum fl_log_level level,
                               const char *id, const char *msg);

/*
 * Only main chooses where logs go.  The default sink writes
 * "<N>ID: message" to stderr.  Messages above the threshold are dropped
 * before their arguments are formatted.
 */
void fl_log_set_sink(fl_log_sink_fn fn, void *arg);
void fl_log_set_level(enum fl_log_level max);
bool fl_log_enabled(enum fl_log_level level);
void fl_log_msg(enum fl_log_level level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fl_log_vmsg(enum fl_log_level level, const char *id, const char *fmt,
                 va_list ap) __attribute__((format(printf, 3, 0)));

/* Level is checked before any argument is evaluated. */
#define fl_log(level, id, ...)                                                 \
    do {                                                                       \
        if (fl_log_enabled(level)) {                                           \
            fl_log_msg(level, id, __VA_ARGS__);                                \
        }                                                                      \
    } while (0)

/*
 * A token bucket for warnings about outside input: at most burst messages,
 * refilled at one per interval_ms.  Suppressed messages are counted and
 * reported with the next one that passes.
 */
struct fl_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;
    uint32_t tokens;
    uint64_t last_ms;
    uint64_t suppressed;
};

void fl_ratelimit_init(struct fl_ratelimit *rl, uint32_t interval_ms,
                       uint32_t burst);
/* True if a message may be logged now; *suppressed gets the skipped count. */
bool fl_ratelimit_pass(struct fl_ratelimit *rl, uint64_t now_ms,
                       uint64_t *suppressed);

/* ---- time ------------------------------------------------------------ */

/* Wall clock and monotonic clock in milliseconds. */
uint64_t fl_time_now_ms(void);
uint64_t fl_time_mono_ms(void);

/* Formats ms since the epoch as RFC 3339 "2024-01-02T03:04:05.678Z". */
#define FL_TIME_STRLEN 64
void fl_time_format(uint64_t ms, char buf[FL_TIME_STRLEN]);

/* ---- addresses and prefixes ----------------------------------------- */

/* 16 bytes in network order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d). */
struct fl_addr {
    uint8_t b[16];
};

#define FL_ADDR_STRLEN 48 /* enough for any IPv6 text plus a zone */

void fl_addr_from_v4(struct fl_addr *a, uint32_t host_order);
void fl_addr_from_v4_bytes(struct fl_addr *a, const uint8_t b[4]);
void fl_addr_from_v6(struct fl_addr *a, const uint8_t b[16]);
bool fl_addr_is_v4(const struct fl_addr *a);
bool fl_addr_is_zero(const struct fl_addr *a);
int fl_addr_cmp(const struct fl_addr *a, const struct fl_addr *b);

/* Parses dotted IPv4 or any IPv6 text form; FL_EFORMAT on anything else. */
int fl_addr_parse(const char *s, struct fl_addr *out);

/* Plain dotted IPv4, RFC 5952 IPv6; returns buf. */
char *fl_addr_format(const struct fl_addr *a, char buf[FL_ADDR_STRLEN]);

/*
 * A prefix over the 128-bit space.  IPv4 prefixes are kept as mapped
 * addresses with len = 96 + the IPv4 length, so one comparison covers both.
 */
struct fl_prefix {
    struct fl_addr addr; /* host bits are zero */
    uint8_t len;         /* 0..128 */
};

/*
 * Parses "a.b.c.d/n", "a.b.c.d/m.m.m.m", "x::/n" or a bare address
 * (a host prefix).  Host bits are cleared (lists write 1.2.3.4/24 for
 * the network); FL_EFORMAT on malformed text.
 */
int fl_prefix_parse(const char *s, struct fl_prefix *out);
char *fl_prefix_format(const struct fl_prefix *p, char buf[FL_ADDR_STRLEN + 4]);
bool fl_prefix_contains(const struct fl_prefix *p, const struct fl_addr *a);

/* ---- the flow record ------------------------------------------------- */

/* Firewall events (NSEL / NAT event logging), normalised. */
enum fl_fw_event {
    FL_FW_NONE = 0,
    FL_FW_CREATE = 1,
    FL_FW_DELETE = 2,
    FL_FW_DENY = 3,
    FL_FW_ALERT = 4,
    FL_FW_UPDATE = 5,
};

/*
 * The canonical record, whatever the exporter sent.  Field names follow
 * DESIGN.md.  Counters are already multiplied by the sampling interval.
 * Elements without a field here are kept in extra as a sequence of
 * (u32 enterprise, u16 id, u16 length, bytes) entries, big-endian.
 */
struct fl_flow {
    uint64_t time_start; /* ms since epoch, UTC */
    uint64_t time_end;
    struct fl_addr src_addr;
    struct fl_addr dst_addr;
    struct fl_addr next_hop;
    struct fl_addr exporter;
    uint64_t packets;
    uint64_t bytes;
    uint32_t in_if;
    uint32_t out_if;
    uint32_t src_as;
    uint32_t dst_as;
    uint32_t mpls;     /* top label, 20 bits */
    uint32_t domain;   /* IPFIX observation domain / v9 source id */
    uint32_t sampling; /* 1 when unsampled */
    uint16_t src_port;
    uint16_t dst_port; /* ICMP: type * 256 + code */
    uint16_t vlan;
    uint8_t proto;
    uint8_t tcp_flags;
    uint8_t tos;
    uint8_t direction; /* 0 ingress, 1 egress, as sent */
    uint8_t fw_event;  /* enum fl_fw_event */

    /* Post-NAT view and the reverse direction of a biflow (RFC 5103). */
    struct fl_addr xlate_src_addr;
    struct fl_addr xlate_dst_addr;
    uint16_t xlate_src_port;
    uint16_t xlate_dst_port;
    uint64_t rev_packets;
    uint64_t rev_bytes;

    /* Unknown elements, borrowed: valid only as long as the caller says. */
    const uint8_t *extra;
    uint32_t extra_len;
};

void fl_flow_clear(struct fl_flow *f);

/*
 * Formats one flow as a single NDJSON line (with '\n') into buf.  sensor
 * may be NULL.  Returns the length written, or FL_ELIMIT when cap is too
 * small.  Zero-valued optional fields (next hop, NAT, reverse counts,
 * extra) are left out.
 */
#define FL_FLOW_NDJSON_MAX 4096
int fl_flow_format_ndjson(const struct fl_flow *f, const char *sensor,
                          char *buf, size_t cap);

/* ---- a growable string with a ceiling ------------------------------- */

struct fl_str {
    char *p;
    size_t len;
    size_t cap;
};

void fl_str_fini(struct fl_str *s);
int fl_str_printf(struct fl_str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fl_str_append(struct fl_str *s, const void *data, size_t n);

/* ---- configuration --------------------------------------------------- */

enum fl_opt_type {
    FL_OPT_STR,  /* char *, owned by the option table's user */
    FL_OPT_LIST, /* struct fl_strlist, repeatable */
    FL_OPT_U64,  /* uint64_t, with k/M/G suffixes (powers of 1000) */
    FL_OPT_SIZE, /* uint64_t bytes, with K/M/G suffixes (powers of 1024) */
    FL_OPT_BOOL, /* bool; a flag without a value sets it */
};

struct fl_strlist {
    char **v;
    size_t n;
};

void fl_strlist_fini(struct fl_strlist *l);
int fl_strlist_add(struct fl_strlist *l, const char *s);

/*
 * One option: the INI key (in any section) is also the long flag
 * "--name".  short_name is 0 when there is none.
 */
struct fl_opt {
    const char *name;
    char short_name;
    enum fl_opt_type type;
    void *dst;
    const char *arg; /* placeholder shown in --help, NULL for bools */
    const char *help;
};

/*
 * Parses argv (from argv[1]) against opts (NULL-name terminated).  An
 * option named "config" (FL_OPT_STR) names an INI file that is read first:
 * its keys, in any section, are the option names; flags on the command
 * line override them, and a repeatable flag given on the command line
 * replaces the file's list.  FL_OPT_STR destinations must start NULL and
 * are then malloc'd.  Arguments that are not options are appended to rest
 * ("--" ends options).  Returns FL_EINVAL with a message in err on a usage
 * error, FL_ENOENT (nothing printed) when -h or --help was given.
 */
int fl_config_parse(const struct fl_opt *opts, int argc, char **argv,
                    const char *prog, struct fl_strlist *rest, char *err,
                    size_t errlen);
void fl_config_usage(const struct fl_opt *opts, const char *prog,
                     const char *synopsis, FILE *out);
/* Frees what fl_config_parse allocated into the option destinations. */
void fl_config_fini(const struct fl_opt *opts);

/* True for names safe in files, labels and JSON: [A-Za-z0-9._-]{1,64}. */
bool fl_name_is_valid(const char *name);

/* Parses "123", "4k", "2M", "1G" (powers of 1000 or 1024). */
int fl_parse_u64(const char *s, bool binary, uint64_t *out);

/* Splits "[ADDR:]PORT", "[v6]:PORT" or "v6-addr" forms; host may be "". */
int fl_parse_hostport(const char *s, char *host, size_t hostlen,
                      uint16_t *port);

/* ---- bounds-checked cursor for wire parsing -------------------------- */

/*
 * Every read either succeeds and advances or fails and leaves the cursor
 * where it was.  Never cast packet bytes to a struct; read through this.
 */
struct fl_cursor {
    const uint8_t *p;
    size_t left;
};

static inline void
fl_cursor_init(struct fl_cursor *c, const void *p, size_t len)
{
    c->p = p;
    c->left = len;
}

static inline bool
fl_cursor_u8(struct fl_cursor *c, uint8_t *v)
{
    if (c->left < 1) {
        return false;
    }
    *v = c->p[0];
    c->p++;
    c->left--;
    return true;
}

static inline bool
fl_cursor_u16(struct fl_cursor *c, uint16_t *v)
{
    if (c->left < 2) {
        return false;
    }
    *v = (uint16_t)((c->p[0] << 8) | c->p[1]);
    c->p += 2;
    c->left -= 2;
    return true;
}

static inline bool
fl_cursor_u32(struct fl_cursor *c, uint32_t *v)
{
    if (c->left < 4) {
        return false;
    }
    *v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) |
         ((uint32_t)c->p[2] << 8) | c->p[3];
    c->p += 4;
    c->left -= 4;
    return true;
}

static inline bool
fl_cursor_u64(struct fl_cursor *c, uint64_t *v)
{
    uint32_t hi;
    uint32_t lo;

    if (c->left < 8) {
        return false;
    }
    fl_cursor_u32(c, &hi);
    fl_cursor_u32(c, &lo);
    *v = ((uint64_t)hi << 32) | lo;
    return true;
}

/* Borrows n bytes: *out points into the buffer. */
static inline bool
fl_cursor_bytes(struct fl_cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static inline bool
fl_cursor_skip(struct fl_cursor *c, size_t n)
{
    const uint8_t *unused;

    return fl_cursor_bytes(c, n, &unused);
}

/* Splits off the next n bytes as a cursor of their own. */
static inline bool
fl_cursor_sub(struct fl_cursor *c, size_t n, struct fl_cursor *sub)
{
    const uint8_t *p;

    if (!fl_cursor_bytes(c, n, &p)) {
        return false;
    }
    fl_cursor_init(sub, p, n);
    return true;
}

/* Reads an unsigned big-endian integer of 1..8 bytes (reduced size). */
static inline uint64_t
fl_be_uint(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void
fl_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
fl_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
fl_put_be64(uint8_t *p, uint64_t v)
{
    fl_put_be32(p, (uint32_t)(v >> 32));
    fl_put_be32(p + 4, (uint32_t)v);
}

/* ---- records in binary: canonical form and columnar batches ---------- */

/*
 * The canonical binary encoding of one flow, the input of Merkle leaves:
 * a version byte (2), a u32 bitmap of the bits below, the fields always
 * written, then each optional field whose bit is set, in bit order, then
 * the extra bytes.  A field is written iff it differs from its default
 * (zero; sampling 1), an address takes 4 bytes iff it is IPv4-mapped,
 * a counter 8 bytes iff it exceeds 32 bits: one encoding per record.
 * Specified byte by byte in docs/formats.md.  At most FL_CANON_MAX bytes
 * plus extra_len.
 */
enum fl_canon_bit {
    FL_CANON_SRC_V4 = 1u << 0,
    FL_CANON_DST_V4 = 1u << 1,
    FL_CANON_EXPORTER_V4 = 1u << 2,
    FL_CANON_NEXT_HOP = 1u << 3,
    FL_CANON_NEXT_HOP_V4 = 1u << 4,
    FL_CANON_TIME_END_WIDE = 1u << 5, /* u64 time_end, not u32 duration */
    FL_CANON_PACKETS_WIDE = 1u << 6,
    FL_CANON_BYTES_WIDE = 1u << 7,
    FL_CANON_IN_IF = 1u << 8,
    FL_CANON_OUT_IF = 1u << 9,
    FL_CANON_SRC_AS = 1u << 10,
    FL_CANON_DST_AS = 1u << 11,
    FL_CANON_MPLS = 1u << 12,
    FL_CANON_DOMAIN = 1u << 13,
    FL_CANON_SAMPLING = 1u << 14,
    FL_CANON_VLAN = 1u << 15,
    FL_CANON_TCP_FLAGS = 1u << 16,
    FL_CANON_TOS = 1u << 17,
    FL_CANON_DIRECTION = 1u << 18,
    FL_CANON_FW_EVENT = 1u << 19,
    FL_CANON_XLATE_SRC = 1u << 20,
    FL_CANON_XLATE_SRC_V4 = 1u << 21,
    FL_CANON_XLATE_DST = 1u << 22,
    FL_CANON_XLATE_DST_V4 = 1u << 23,
    FL_CANON_XLATE_SRC_PORT = 1u << 24,
    FL_CANON_XLATE_DST_PORT = 1u << 25,
    FL_CANON_REV_PACKETS = 1u << 26,
    FL_CANON_REV_BYTES = 1u << 27,
    FL_CANON_EXTRA = 1u << 28, /* u32 extra_len, then the bytes */
};
/* The longest encoding without the extra bytes: every bit set, IPv6. */
#define FL_CANON_MAX 196
/*
 * Writes f into buf (cap bytes); returns the length written, or FL_ELIMIT
 * when cap is too small (FL_CANON_MAX + extra_len always suffices;
 * nothing written then).
 */
int fl_flow_canon(const struct fl_flow *f, uint8_t *buf, size_t cap);

/*
 * A column-wise encoding of a sequence of flows, in their order (each
 * field stored together; times as deltas, counters as varints, addresses
 * through a per-batch dictionary, nearly constant fields as runs,
 * optional groups behind presence bitmaps), compressed with zstd as one
 * frame.  The payload is a version byte, the record count, the batch's
 * 32-byte salt secret, then the frame.  Specified in docs/formats.md.
 */
#define FL_BATCH_SECRET_LEN 32
#define FL_BATCH_MAX_RECORDS 1000000

/*
 * Encodes n flows and secret into a malloc'd payload (*out, *outlen) at
 * zstd level zstd_level (1 or 3 are the measured choices).  n may be 0.
 * Flows are only read.  FL_ELIMIT when n > FL_BATCH_MAX_RECORDS,
 * FL_ENOMEM; *out is NULL on failure.  The zstd context and scratch
 * buffers are kept per thread and freed when the thread ends.
 */
int fl_columns_encode(const struct fl_flow *flows, size_t n,
                      const uint8_t secret[FL_BATCH_SECRET_LEN], int zstd_level,
                      uint8_t **out, size_t *outlen);

/*
 * Decodes a payload made by fl_columns_encode: fills secret, then calls
 * fn once per flow in order (flow and extra borrowed for the call).
 * expect is the record count the caller was promised (the statement's);
 * a payload with another count, or any malformed byte, returns
 * FL_EFORMAT (FL_EVERSION for an unknown format version); FL_ELIMIT if
 * it would decompress past max_bytes (checked before allocating).  fn
 * runs while decoding: when a damaged column is found at record k,
 * records 0..k-1 were already delivered, so a caller that needs all or
 * nothing must wait for FL_OK before acting on them.
 */
int fl_columns_decode(const uint8_t *payload, size_t len, uint32_t expect,
                      size_t max_bytes, uint8_t secret[FL_BATCH_SECRET_LEN],
                      void (*fn)(void *arg, const struct fl_flow *f),
                      void *arg);

/* ---- hashes, keys, statements, Merkle trees ------------------------- */

#define FL_HASH_LEN 32

/*
 * The hashes a statement may name.  Batches are built with BLAKE2b-256
 * (FL_HASH_BATCH): libsodium's BLAKE2b is vectorised and hashes a
 * record's leaf more than twice as fast as its portable SHA-256, which
 * alone would cost more than the whole per-flow budget of a batch build.
 * SHA-256 stays for key ids and for checking RFC 6962 test vectors.
 * Both are in libsodium, so an offline verifier needs nothing else.
 */
enum fl_hash_alg {
    FL_HASH_SHA256 = 1,  /* "sha-256" */
    FL_HASH_BLAKE2B = 2, /* "blake2b-256": unkeyed, 32-byte output */
};
#define FL_HASH_BATCH FL_HASH_BLAKE2B

/* SHA-256 (libsodium), for key ids and RFC 6962 test vectors. */
void fl_hash_sha256(const void *data, size_t len, uint8_t out[FL_HASH_LEN]);
/* One-shot hash of data with alg (an unknown alg is a caller bug). */
void fl_hash(enum fl_hash_alg alg, const void *data, size_t len,
             uint8_t out[FL_HASH_LEN]);
/* The statement's name of alg ("sha-256", "blake2b-256"), NULL if none. */
const char *fl_hash_name(enum fl_hash_alg alg);
/* Looks a name up; FL_EFORMAT for any other text. */
int fl_hash_from_name(const char *name, size_t len, enum fl_hash_alg *out);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void fl_hex(const uint8_t *b, size_t n, char *out);
/* Parses exactly 2n lower-case hex digits, then the string's end, into
 * b; FL_EFORMAT otherwise (b may then be partly written). */
int fl_unhex(const char *s, uint8_t *b, size_t n);

#define FL_PUBKEY_LEN 32
#define FL_SECKEY_LEN 64
#define FL_SIG_LEN 64
#define FL_KEYID_LEN 8 /* first 8 bytes of SHA-256 of the public key */

struct fl_pubkey {
    char name[65];
    uint8_t key[FL_PUBKEY_LEN];
    uint8_t id[FL_KEYID_LEN];
};

/* A secret key lives in sodium_malloc'd memory; free wipes it. */
struct fl_seckey;

/*
 * Makes a key pair for name (fl_name_is_valid); writes DIR/NAME.key
 * (O_EXCL, mode 0600) and DIR/NAME.pub (0644), both fsynced; dir NULL is
 * ".".  Refuses to overwrite either file (FL_EEXIST) and leaves no half
 * pair behind.  The text formats are in docs/formats.md.
 */
int fl_key_generate(const char *name, const char *dir, char *err,
                    size_t errlen);
/*
 * Reads a secret key file; refuses a file with any group or other
 * permission bit (FL_EAUTH, "permissions 0644, want 0600"), a malformed
 * file or wrong length (FL_EFORMAT), a key id or public half that does
 * not match the secret (FL_EAUTH).  Reason in err (may be NULL).
 */
int fl_seckey_load(const char *path, struct fl_seckey **out, char *err,
                   size_t errlen);
void fl_seckey_free(struct fl_seckey *k);
const struct fl_pubkey *fl_seckey_public(const struct fl_seckey *k);
/* Reads a public key file: FL_EFORMAT, or FL_EAUTH for a key id that
 * does not match the key; reason in err (may be NULL). */
int fl_pubkey_load(const char *path, struct fl_pubkey *out, char *err,
                   size_t errlen);
/* Signs msg; sig gets FL_SIG_LEN bytes. */
int fl_sign(const struct fl_seckey *k, const uint8_t *msg, size_t len,
            uint8_t sig[FL_SIG_LEN]);
/* FL_OK when sig is k's signature of msg, FL_EAUTH otherwise. */
int fl_verify(const struct fl_pubkey *k, const uint8_t *msg, size_t len,
              const uint8_t sig[FL_SIG_LEN]);

/*
 * What a sensor's statement commits to (DESIGN.md, "Wire and evidence").
 * The statement is text, versioned on its first line, specified in
 * docs/formats.md; the signature covers its exact bytes.  hash names the
 * function of the Merkle tree, of payload_hash and of previous.
 */
#define FL_STATEMENT_MAX 2048 /* longest valid statement text, bytes */

struct fl_statement {
    char sensor[65];
    uint8_t key_id[FL_KEYID_LEN];
    uint8_t session[16];
    uint64_t sequence;
    enum fl_hash_alg hash;
    uint8_t previous[FL_HASH_LEN]; /* hash of the previous statement's
                                      bytes; zero for a chain's first */
    uint64_t time_first;           /* window: earliest flow start, ms */
    uint64_t time_last;            /* latest flow end, ms */
    uint64_t created;              /* when the sensor closed the batch, ms */
    uint32_t records;
    uint8_t merkle_root[FL_HASH_LEN];
    uint8_t payload_hash[FL_HASH_LEN]; /* hash of the payload bytes */
    uint64_t payload_len;
    uint64_t lost_socket;   /* datagrams the kernel dropped since the last */
    uint64_t lost_decode;   /* datagrams or sets that could not be decoded */
    uint64_t lost_sequence; /* exporter sequence units missing */
    uint64_t lost_spool;    /* batches not kept: spool full */
};

/* Formats st as statement text into out (appends).  FL_EINVAL for a
 * sensor name that fl_name_is_valid refuses or an unknown hash. */
int fl_statement_format(const struct fl_statement *st, struct fl_str *out);
/* Parses statement text strictly: every line, in order, nothing else;
 * FL_EFORMAT or FL_EVERSION with the line number in err. */
int fl_statement_parse(const uint8_t *text, size_t len,
                       struct fl_statement *out, char *err, size_t errlen);

/*
 * Merkle tree hashing of RFC 6962 / RFC 9162 (leaf H(0x00 || data), node
 * H(0x01 || left || right), split at the largest power of two below n),
 * generic over the hash.  A record's leaf data is salt_i || canon(record_i)
 * so one record can be disclosed without revealing its neighbours.
 *
 * salt_i is bytes 16*i .. 16*i+15 of the ChaCha20 (IETF, RFC 8439)
 * keystream with key = the batch secret and a zero nonce, i.e. block
 * counter i/4, quarter i%4: a PRF of (secret, i), so disclosing salt_i
 * tells nothing of any other salt.  128 bits are enough to make a leaf
 * unguessable, and 16 bytes keep a typical leaf in one BLAKE2b block.
 * index must be below 2^34.
 */
#define FL_SALT_LEN 16
void fl_merkle_leaf_salt(const uint8_t secret[FL_BATCH_SECRET_LEN],
                         uint64_t index, uint8_t salt[FL_SALT_LEN]);
/* salts[k] = salt of index first + k, for k < n (first a multiple of 4). */
void fl_merkle_leaf_salts(const uint8_t secret[FL_BATCH_SECRET_LEN],
                          uint64_t first, size_t n,
                          uint8_t (*salts)[FL_SALT_LEN]);
/* Leaf hash of raw data: H(0x00 || data) (the RFC's leaf). */
void fl_merkle_hash_leaf(enum fl_hash_alg alg, const void *data, size_t len,
                         uint8_t out[FL_HASH_LEN]);
/* Leaf hash of one record: H(0x00 || salt || canon). */
void fl_merkle_leaf(enum fl_hash_alg alg, const uint8_t salt[FL_SALT_LEN],
                    const uint8_t *canon, size_t len, uint8_t out[FL_HASH_LEN]);
/* Interior node: H(0x01 || left || right). */
void fl_merkle_hash_node(enum fl_hash_alg alg, const uint8_t left[FL_HASH_LEN],
                         const uint8_t right[FL_HASH_LEN],
                         uint8_t out[FL_HASH_LEN]);
/* Root over n leaf hashes (the RFC's MTH; n = 0: the hash of nothing). */
int fl_merkle_root(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
                   size_t n, uint8_t root[FL_HASH_LEN]);
/* Inclusion proof (RFC 6962 PATH) of leaf index among n, lowest level
 * first; *npath hashes.  FL_EINVAL for index >= n, FL_ELIMIT when cap is
 * too small (64 always suffices). */
int fl_merkle_path(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
                   size_t n, size_t index, uint8_t (*path)[FL_HASH_LEN],
                   size_t cap, size_t *npath);
/* RFC 9162 2.1.3.2: FL_OK when path proves leaf at index in a tree of n
 * with root, FL_EAUTH otherwise. */
int fl_merkle_path_verify(enum fl_hash_alg alg, const uint8_t leaf[FL_HASH_LEN],
                          size_t index, size_t n,
                          const uint8_t (*path)[FL_HASH_LEN], size_t npath,
                          const uint8_t root[FL_HASH_LEN]);

/* ---- signed batches -------------------------------------------------- */

/*
 * A batch as shipped and stored, byte for byte:
 *   "FL0WBAT1" | u32 statement length | u32 payload length |
 *   statement text | 64-byte Ed25519 signature of the statement | payload
 * (big-endian lengths).  Specified in docs/formats.md.
 */
#define FL_BATCH_MAGIC "FL0WBAT1"
#define FL_BATCH_HEADER_LEN 16
#define FL_BATCH_MAX_BYTES (256u << 20)
#define FL_BATCH_ZSTD_LEVEL 1

/* Chain state a sensor carries from one batch to the next. */
struct fl_chain {
    char sensor[65];
    uint8_t session[16];
    uint64_t next_sequence;
    uint8_t previous[FL_HASH_LEN];
};

/* Starts a chain for sensor: a random session, sequence 0, previous zero.
 * A sensor that kept state restores next_sequence and previous after. */
void fl_chain_init(struct fl_chain *chain, const char *sensor);

/*
 * Builds a batch of n flows (n may be 0: a heartbeat): a fresh secret,
 * columns, Merkle root, statement (losses from st_losses' lost_* fields,
 * st_losses may be NULL; sensor from chain, key id from k, hash
 * FL_HASH_BATCH), signature.  Advances chain only on success.  *out is
 * malloc'd.
 */
int fl_batch_build(const struct fl_seckey *k, struct fl_chain *chain,
                   const struct fl_flow *flows, size_t n,
                   const struct fl_statement *st_losses, uint8_t **out,
                   size_t *outlen);

/* The parts of a batch, borrowed from its bytes. */
struct fl_batch_view {
    const uint8_t *statement;
    size_t statement_len;
    const uint8_t *signature;
    const uint8_t *payload;
    size_t payload_len;
    struct fl_statement st;
};

/*
 * Splits a batch, verifies the signature with k, parses the statement,
 * checks that it names k's key id and sensor name, and checks the payload
 * length and hash, in that order: no parser runs on bytes the signature
 * does not cover except the 16-byte header.  Does not decompress.
 * FL_EFORMAT, FL_EAUTH with the reason and byte offset in err.
 */
int fl_batch_open(const uint8_t *batch, size_t len, const struct fl_pubkey *k,
                  struct fl_batch_view *out, char *err, size_t errlen);
/* Reads only the statement's sensor name and key id, unverified, to pick
 * the key to verify with. */
int fl_batch_peek(const uint8_t *batch, size_t len, char sensor[65],
                  uint8_t key_id[FL_KEYID_LEN]);
/*
 * A batch's id: the hash (with the statement's own hash function) of its
 * statement's exact bytes, which is what the next statement of the chain
 * names as previous.  Use it to recognise duplicates.
 */
void fl_batch_id(const struct fl_batch_view *v, uint8_t id[FL_HASH_LEN]);
/*
 * Decodes the records of an opened batch and checks their Merkle root
 * against the statement's; fn is called for each record only after the
 * whole batch checked out (the payload is decoded twice).  FL_EAUTH when
 * the root differs, FL_EFORMAT for a malformed payload.
 */
int fl_batch_records(const struct fl_batch_view *v,
                     void (*fn)(void *arg, const struct fl_flow *f), void *arg);

/* ---- checksums ------------------------------------------------------- */

/* CRC-32C (Castagnoli, reflected 0x82f63b78), for block checksums.  crc
 * starts at 0 and chains: fl_crc32c(fl_crc32c(0, a), b) covers a || b. */
uint32_t fl_crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven path, used where the CPU has no crc32 instruction;
 * public so that tests can compare both. */
uint32_t fl_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif /* FL_COMMON_H */
