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

#endif /* FL_COMMON_H */
