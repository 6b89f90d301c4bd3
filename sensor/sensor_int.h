/*
 * What the sensor's decoder files share privately: templates, the record
 * decoder that maps information elements onto the flow record, the v5
 * family decoder and sequence tracking.  Not included outside sensor/.
 */
#ifndef FL_SENSOR_INT_H
#define FL_SENSOR_INT_H

#include "sensor.h"

/* Field length meaning "variable length" (RFC 7011 section 7). */
#define FL_VARLEN 65535

/* IPFIX enterprise bit in a field specifier's id. */
#define FL_ENTERPRISE_BIT 0x8000

/* Room for unknown elements kept with one record. */
#define FL_EXTRA_MAX 1024

/* One field specifier of a template; pen is 0 for IANA elements. */
struct fl_tfield {
    uint32_t pen;
    uint16_t id; /* without the enterprise bit */
    uint16_t len;
};

/* A parsed (options) template.  For v9 and IPFIX alike. */
struct fl_template {
    uint16_t id;
    uint16_t nfields;
    uint16_t scope_fields; /* options templates: leading scope fields */
    bool options;
    uint32_t min_len; /* fixed lengths plus one byte per variable field */
    struct fl_tfield fields[];
};

/*
 * What decoding one data record needs from its message and source.  The
 * sampler lookup resolves a samplerId / selectorId found in a record to
 * the interval announced in options data; NULL or 0 means unknown.
 */
struct fl_msg_ctx {
    struct fl_addr exporter;
    uint32_t domain;
    uint8_t version;         /* 9 or 10 */
    uint32_t export_secs;    /* header export time, seconds */
    uint32_t sys_uptime_ms;  /* v9 header sysUptime */
    uint64_t system_init_ms; /* IPFIX options systemInitTime, 0 unknown */
    uint32_t sampling;       /* the source's interval, 1 when unknown */
    uint32_t (*sampler_lookup)(const void *arg, uint32_t sampler_id);
    const void *sampler_arg;
};

/*
 * Decodes one data record laid out by t from c, advancing c past exactly
 * that record.  Elements the record has no field for are appended to
 * extra (capacity extra_cap) and flow->extra points at it; when extra is
 * full the rest are dropped, never the record.  Counters are multiplied
 * by the sampling interval.  Returns FL_OK, or FL_ETRUNC (cursor
 * unmoved) if c holds less than the record needs.
 */
int fl_fields_decode(const struct fl_template *t, const struct fl_msg_ctx *ctx,
                     struct fl_cursor *c, struct fl_flow *flow, uint8_t *extra,
                     size_t extra_cap);

/* What the decoder keeps from an options data record. */
struct fl_options_info {
    bool has_sampling;
    uint32_t sampling; /* packet interval, e.g. 1 in N */
    uint16_t algorithm;
    bool has_sampler_id;
    uint32_t sampler_id;
    bool has_system_init;
    uint64_t system_init_ms;
};

/* Reads one options data record of t from c, as fl_fields_decode. */
int fl_fields_options(const struct fl_template *t, const struct fl_msg_ctx *ctx,
                      struct fl_cursor *c, struct fl_options_info *out);

/* Header facts of a v1/v5/v7 datagram, for sequence tracking. */
struct fl_v5_info {
    uint8_t version;
    uint16_t count;    /* records in this datagram */
    uint32_t sequence; /* v5/v7: flows seen before this datagram */
    uint32_t domain;   /* engine_type << 8 | engine_id (v5) */
    uint32_t sampling; /* from the v5 header, 1 when unsampled */
};

/*
 * Decodes a NetFlow v1, v5 or v7 datagram: fills info, then calls fn for
 * each record.  Returns FL_ETRUNC, FL_EFORMAT or FL_EVERSION for a bad
 * datagram, in which case no flow was delivered.
 */
int fl_v5_decode(const struct fl_addr *exporter, const uint8_t *pkt, size_t len,
                 struct fl_v5_info *info, fl_flow_fn fn, void *arg);

/* Sequence tracking per source; units are flows, packets or records. */
struct fl_seq {
    bool started;
    uint32_t next;
};

/*
 * Records that a message with sequence number seq carrying units units
 * arrived.  Returns the number of units missing before it (0 when in
 * order).  A message a little behind (late or duplicated) counts nothing
 * and changes nothing; one far behind (an exporter restart) resyncs.
 */
uint32_t fl_seq_update(struct fl_seq *s, uint32_t seq, uint32_t units);

/* ---- daemon ---- */
/*
 * The sensor program around the decoder: sockets, capture files, the
 * state directory and the metrics endpoint.  Only sensor_main.c and the
 * daemon's own files use these.
 */

/* One UDP payload as received from the network or read from a capture. */
struct fl_datagram {
    struct fl_addr exporter; /* source address, IPv4-mapped for IPv4 */
    uint16_t port;           /* source port */
    const uint8_t *data;     /* borrowed for the duration of the callback */
    size_t len;
    uint64_t time_ms; /* receive or capture time, ms since the epoch */
};

typedef void (*fl_datagram_fn)(void *arg, const struct fl_datagram *dg);

/* Why a captured frame carried no UDP payload, each with a counter. */
enum fl_pcap_skip {
    FL_PCAP_TRUNCATED, /* frame ends before a header or length says */
    FL_PCAP_MALFORMED, /* impossible header field (IHL, UDP length) */
    FL_PCAP_FRAGMENT,  /* IPv4 or IPv6 fragment: not reassembled */
    FL_PCAP_NOT_IP,    /* link payload is neither IPv4 nor IPv6 */
    FL_PCAP_NOT_UDP,   /* IP payload is not UDP */
    FL_PCAP_SKIP_COUNT
};

struct fl_pcap_stats {
    uint64_t frames;    /* frames read from the file */
    uint64_t datagrams; /* UDP payloads handed to the callback */
    uint64_t skipped[FL_PCAP_SKIP_COUNT];
};

/* Stable lower-case name of a skip kind, for logs. */
const char *fl_pcap_skip_name(enum fl_pcap_skip k);

/*
 * Reads the capture file at path and calls fn for every UDP payload, in
 * file order, with the capture timestamp.  Frames that carry none are
 * counted in st by kind.  Returns FL_OK at the end of the file, FL_EIO
 * when the file cannot be opened or read, FL_EFORMAT for a link type it
 * does not know; err then says why.
 */
int fl_pcap_read(const char *path, fl_datagram_fn fn, void *arg,
                 struct fl_pcap_stats *st, char *err, size_t errlen);

/*
 * Walks one captured frame of link type dlt (a DLT_ value) down to its
 * UDP payload and calls fn with it, or counts why there is none.  The
 * capture reader's per-frame step, apart so it can be fuzzed.  Returns
 * FL_OK, or FL_EFORMAT for a link type it does not know.
 */
int fl_pcap_frame(int dlt, const uint8_t *frame, size_t len, uint64_t time_ms,
                  fl_datagram_fn fn, void *arg, struct fl_pcap_stats *st);

/* The UDP sockets a sensor listens on, served from one thread. */
struct fl_listener;

/*
 * Opens one socket per "[ADDR:]PORT" in addrs (a bare port is one IPv6
 * socket that also takes IPv4), non-blocking, with the drop counter on
 * and a receive buffer of rcvbuf bytes asked for.  Returns FL_EINVAL for
 * an address it cannot parse, FL_ENET when a socket cannot be opened or
 * bound; err then names the address and the reason.
 */
int fl_listener_open(const struct fl_strlist *addrs, uint64_t rcvbuf,
                     struct fl_listener **out, char *err, size_t errlen);
void fl_listener_close(struct fl_listener *l);

/*
 * Waits up to timeout_ms for datagrams and calls fn for each one received
 * (one batch per readable socket).  Returns the number of datagrams, 0 on
 * timeout or signal, FL_ENET on a socket failure.
 */
int fl_listener_poll(struct fl_listener *l, int timeout_ms, fl_datagram_fn fn,
                     void *arg);

/* Datagrams the kernel dropped for lack of buffer room, all sockets. */
uint64_t fl_listener_drops(const struct fl_listener *l);

/*
 * The state directory: created 0700 if missing; templates.bin is loaded
 * at open and written atomically by save, only when its bytes changed.
 */
struct fl_state;

/*
 * Opens dir and loads its templates into d.  A damaged templates.bin is
 * logged, renamed to templates.bin.bad and the sensor starts without it.
 * Returns FL_EIO when dir cannot be created or opened.
 */
int fl_state_open(const char *dir, struct fl_decoder *d, struct fl_state **out,
                  char *err, size_t errlen);
/* Writes templates.bin if it changed since the last save or load. */
int fl_state_save(struct fl_state *s, const struct fl_decoder *d);
void fl_state_close(struct fl_state *s);

/* The Prometheus endpoint: GET /metrics served from nng's HTTP server. */
struct fl_metrics;

/* Facts the decoder does not know, rendered with its counters. */
struct fl_metrics_extra {
    const char *sensor;    /* sensor name, on the fl0wer_sensor_info series */
    uint64_t kernel_drops; /* receive buffer overflows */
};

/*
 * Starts serving on "[ADDR:]PORT" (all addresses when ADDR is empty).
 * Returns FL_EINVAL or FL_ENET with a reason in err.
 */
int fl_metrics_start(const char *hostport, struct fl_metrics **out, char *err,
                     size_t errlen);
void fl_metrics_stop(struct fl_metrics *m);

/* Renders the decoder's counters as Prometheus text into out. */
int fl_metrics_render(const struct fl_decoder *d,
                      const struct fl_metrics_extra *x, struct fl_str *out);

/* Replaces the page served by a copy of text (thread-safe). */
int fl_metrics_publish(struct fl_metrics *m, const char *text, size_t len);

/*
 * The batcher (sensor_batch.c): flows decoded in the main thread are
 * copied into the open batch, which closes on a record count or an age;
 * closed batches wait in a bounded queue for one worker thread that hands
 * each to a sink until the sink takes it.  The batcher reads no clock:
 * every call says what time it is (wall clock, or capture time).
 */

/* What the sensor knows it lost, cumulative since start. */
struct fl_batch_losses {
    uint64_t socket;   /* datagrams the kernel dropped */
    uint64_t decode;   /* decode errors that lose data */
    uint64_t sequence; /* exporter sequence units missing */
};

/* One closed batch: flows copied out of the decoder, extra bytes in an
 * arena the flows point into.  Owned by the batcher. */
struct fl_batch_buf {
    struct fl_flow *flows;
    size_t nflows;
    uint8_t *arena;
    size_t arena_len;
    uint64_t opened_ms;          /* time of the first flow */
    uint64_t closed_ms;          /* time the batch closed */
    uint64_t time_first;         /* earliest time_start; closed_ms when empty */
    uint64_t time_last;          /* latest time_end; closed_ms when empty */
    struct fl_batch_losses lost; /* since the previous batch */
};

/*
 * Takes one closed batch, from the worker thread only.  Returns FL_OK
 * once the batch is stored; any other code means "not stored": the same
 * batch is offered again after retry_ms, with the reason logged.
 */
typedef int (*fl_batch_sink_fn)(void *arg, const struct fl_batch_buf *b);

struct fl_batcher_opts {
    size_t records;        /* close at this many flows (1..1000000) */
    uint64_t age_ms;       /* ... or this long after the first flow */
    uint64_t heartbeat_ms; /* an empty batch when idle this long */
    size_t queue;          /* closed batches waiting, at least 1 */
    uint64_t retry_ms;     /* wait between offers of a refused batch */
    uint64_t drain_ms;     /* at stop, how long refused batches are retried */
    fl_batch_sink_fn sink;
    void *sink_arg;
    /* Reads the cumulative losses when a batch closes (main thread). */
    void (*losses)(void *arg, struct fl_batch_losses *out);
    void *losses_arg;
    /* True once a stop was asked for (a signal): a main thread waiting
     * for queue room then starts the stop's drain_ms, so that a stop ends
     * even while the sink refuses everything.  May be NULL. */
    bool (*stopping)(void *arg);
    void *stopping_arg;
};

struct fl_batcher_stats {
    uint64_t batches;    /* taken by the sink */
    uint64_t heartbeats; /* of which empty */
    uint64_t flows;      /* flows in batches taken */
    uint64_t refusals;   /* offers the sink refused */
    uint64_t waits;      /* times the main thread waited for queue room */
    uint64_t lost;       /* batches given up at stop (logged) */
};

struct fl_batcher;

/* Sets the defaults: 10000 records, 1000 ms, 10 s heartbeat, queue of 4,
 * retry every second, drain for 30 s.  sink and losses stay NULL. */
void fl_batcher_opts_default(struct fl_batcher_opts *o);

/* Allocates every buffer and starts the worker.  FL_EINVAL for bad opts,
 * FL_ENOMEM, FL_EIO when the thread cannot start. */
int fl_batcher_start(const struct fl_batcher_opts *o, struct fl_batcher **out);

/*
 * Copies flow (and its extra bytes) into the open batch at time now_ms,
 * closing batches as the rules say.  Waits only when the queue is full.
 */
void fl_batcher_add(struct fl_batcher *b, const struct fl_flow *flow,
                    uint64_t now_ms);

/* Closes the open batch if it is old enough, or writes a heartbeat. */
void fl_batcher_tick(struct fl_batcher *b, uint64_t now_ms);

/* When the next tick has something to do (ms, same clock). */
uint64_t fl_batcher_due(const struct fl_batcher *b);

/*
 * Closes the open batch (if it holds flows), waits for the queue to
 * drain and stops the worker.  Batches the sink still refuses drain_ms
 * after the stop began are logged and counted as lost; then FL_EIO.
 */
int fl_batcher_stop(struct fl_batcher *b, uint64_t now_ms);

/* Counters (thread-safe). */
void fl_batcher_get_stats(struct fl_batcher *b, struct fl_batcher_stats *out);

/* Frees; stops first if fl_batcher_stop was not called.  NULL is fine. */
void fl_batcher_free(struct fl_batcher *b);

/*
 * The chain (sensor_chain.c): DIR/chain.state keeps the sensor name,
 * next sequence and hash of the previous statement across restarts; the
 * chain writer is the batcher's sink for --archive: it builds each
 * batch (sign), appends it to the archive and then saves the chain.
 */

/*
 * Loads DIR/chain.state for sensor into c, or starts a chain at sequence
 * 0 when there is no such file; either way with a fresh random session.
 * A file that is damaged or names another sensor is refused (FL_EFORMAT,
 * err names the file and why): the sequence must never restart at 0 by
 * accident.  FL_EIO when it cannot be read.
 */
int fl_chain_load(const char *dir, const char *sensor, struct fl_chain *c,
                  char *err, size_t errlen);

/* Writes DIR/chain.state atomically (temp file, fsync, rename, directory
 * fsync).  FL_EIO with the reason in err. */
int fl_chain_save(const char *dir, const struct fl_chain *c, char *err,
                  size_t errlen);

struct fl_archive;
struct fl_chain_writer;

/*
 * A writer for sensor batches: borrows key and archive (both must outlive
 * it), keeps a copy of chain and of dir.  retention_days 0 keeps
 * everything; otherwise retention runs at the first batch and hourly.
 */
int fl_chain_writer_new(const struct fl_seckey *key, struct fl_archive *a,
                        const char *dir, const struct fl_chain *chain,
                        uint32_t retention_days, struct fl_chain_writer **out);
void fl_chain_writer_free(struct fl_chain_writer *w);

/* The batcher's sink: an fl_batch_sink_fn whose arg is the writer. */
int fl_chain_writer_sink(void *arg, const struct fl_batch_buf *b);

/* ---- decoder core ---- */
/*
 * Shared between sensor_decode.c, sensor_template.c, sensor_ipfix.c,
 * sensor_pending.c and sensor_persist.c.  For v9 a field's id is the raw
 * 16-bit type (vendor types such as NSEL's 40001 keep their high bit, pen
 * is 0); only IPFIX strips the enterprise bit and reads a PEN.
 */

/* Sampler ids remembered per source (v9 FLOW_SAMPLER_ID, IPFIX
 * selectorId); more are refused silently, the default still applies. */
#define FL_SAMPLERS_MAX 64

/* Largest data record a message can carry: 65535 minus message and set
 * headers.  A template whose min_len exceeds this can never be used. */
#define FL_V9_RECORD_MAX (65535u - 20u - 4u)
#define FL_IPFIX_RECORD_MAX (65535u - 16u - 4u)

/* Most field specifiers one set can hold (4 bytes each, in 65535). */
#define FL_TFIELDS_MAX 16384

struct fl_sampler {
    uint32_t id;
    uint32_t interval;
};

/* One (exporter, domain): its counters, templates and options. */
struct fl_source {
    struct fl_addr exporter;
    uint32_t domain;
    uint8_t version;
    struct fl_seq seq;
    uint64_t datagrams;
    uint64_t flows;
    uint64_t bytes;
    uint64_t seq_gaps;
    uint64_t seq_lost;
    uint32_t pending; /* held datagrams of this source */

    /* Open-addressing table of templates keyed by id, linear probing. */
    struct fl_template **tpl;
    uint32_t tpl_cap; /* 0 or a power of two */
    uint32_t ntemplates;

    /* What options data announced. */
    bool has_sampling;
    uint32_t sampling;
    uint16_t algorithm;
    uint64_t system_init_ms;
    uint32_t nsamplers;
    struct fl_sampler samplers[FL_SAMPLERS_MAX];
};

/* A held datagram: the data sets of one message whose template was
 * unknown, each with its 4-byte set header.  A set already decoded has
 * its set id overwritten with 0 in this private copy. */
struct fl_pending {
    struct fl_pending *next;
    struct fl_pending *prev;
    struct fl_source *src;
    uint64_t arrival_ms;
    uint32_t export_secs;
    uint32_t sys_uptime_ms;
    uint32_t len;  /* bytes used in data */
    uint32_t cap;  /* bytes allocated for data */
    uint32_t live; /* sets still waiting */
    uint8_t data[];
};

struct fl_decoder {
    struct fl_decoder_limits lim;

    /* Sources: open addressing over pointers, linear probing, no removal. */
    struct fl_source **src_tab;
    uint32_t src_cap;
    uint32_t nsources;
    uint32_t ntemplates;   /* sum over sources */
    size_t template_bytes; /* memory held by all templates */

    /* Held data, oldest first. */
    struct fl_pending *pend_head;
    struct fl_pending *pend_tail;
    struct fl_pending *pend_cur; /* entry of the message being decoded */
    uint32_t npending;
    size_t pending_bytes;

    uint64_t datagrams;
    uint64_t flows;
    uint64_t errors[FL_DE_COUNT];
    uint64_t seq_gaps;
    uint64_t seq_lost;

    /* Where the current fl_decoder_feed delivers flows. */
    fl_flow_fn fn;
    void *fn_arg;

    /* Scratch: a template being parsed, and one record's extra bytes. */
    struct fl_template *scratch;
    uint8_t extra[FL_EXTRA_MAX];
};

/* sensor_decode.c */
void fl_decoder_count(struct fl_decoder *d, enum fl_decode_error e);
/* Finds the source of (exporter, domain), creating it if create is set.
 * Returns FL_OK, FL_ENOENT (absent, !create), FL_ELIMIT or FL_ENOMEM. */
int fl_source_get(struct fl_decoder *d, const struct fl_addr *exporter,
                  uint32_t domain, bool create, struct fl_source **out);
/* Builds the record context of a message of src. */
void fl_source_ctx(const struct fl_source *src, uint32_t export_secs,
                   uint32_t sys_uptime_ms, struct fl_msg_ctx *ctx);

/* sensor_template.c */
const struct fl_template *fl_template_find(const struct fl_source *src,
                                           uint16_t id);
/* Checks t (ids, lengths, scope count) for a source of version and sets
 * t->min_len.  Returns FL_OK or FL_EFORMAT. */
int fl_template_check(struct fl_template *t, uint8_t version);
/* Adds or replaces a copy of t (already checked) in src; an equal
 * template is kept as is.  Returns FL_OK, FL_ELIMIT at the per-source
 * ceiling or FL_ENOMEM. */
int fl_template_put(struct fl_decoder *d, struct fl_source *src,
                    const struct fl_template *t);
void fl_template_remove(struct fl_decoder *d, struct fl_source *src,
                        uint16_t id);
void fl_template_free_all(struct fl_decoder *d, struct fl_source *src);
/* Parses the body of a (options) template set with set_id (v9 0/1, IPFIX
 * 2/3), counting errors; *records gets the template records read.
 * Returns FL_OK or the first error. */
int fl_template_parse_set(struct fl_decoder *d, struct fl_source *src,
                          uint16_t set_id, struct fl_cursor *body,
                          uint32_t *records);

/* sensor_ipfix.c */
int fl_ipfix_decode(struct fl_decoder *d, const struct fl_addr *exporter,
                    const uint8_t *pkt, size_t len, uint64_t now_ms);
int fl_v9_decode(struct fl_decoder *d, const struct fl_addr *exporter,
                 const uint8_t *pkt, size_t len, uint64_t now_ms);
/* Decodes the records of one data set body with template t; *records
 * gets how many were decoded.  Returns FL_OK or the error counted. */
int fl_data_set_decode(struct fl_decoder *d, struct fl_source *src,
                       const struct fl_template *t,
                       const struct fl_msg_ctx *ctx, struct fl_cursor *body,
                       uint32_t *records);

/* sensor_persist.c: the state file's trailing checksum (64-bit FNV-1a:
 * it guards against accident, not tampering). */
uint64_t fl_persist_checksum(const uint8_t *p, size_t n);

/* sensor_pending.c */
/* Holds one data set (header included) of the message being decoded. */
void fl_pending_hold(struct fl_decoder *d, struct fl_source *src,
                     const uint8_t *set, size_t len, uint32_t export_secs,
                     uint32_t sys_uptime_ms, uint64_t now_ms);
/* Decodes every held set of src whose template is now known, oldest
 * first.  Returns FL_OK or the first decode error. */
int fl_pending_release(struct fl_decoder *d, struct fl_source *src);
void fl_pending_expire(struct fl_decoder *d, uint64_t now_ms);
void fl_pending_free_all(struct fl_decoder *d);

#endif /* FL_SENSOR_INT_H */
