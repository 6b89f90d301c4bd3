/*
 * The sensor's decoder: NetFlow v1/v5/v7, NetFlow v9 and IPFIX datagrams
 * in, canonical flow records out.  It touches no socket, file or clock of
 * its own, so it can be fuzzed and benchmarked from memory.
 */
#ifndef FL_SENSOR_H
#define FL_SENSOR_H

#include "common.h"

struct fl_decoder;

/* Ceilings on everything the decoder keeps; reaching one is counted. */
struct fl_decoder_limits {
    uint32_t max_sources;      /* (exporter, domain) pairs */
    uint32_t max_templates;    /* templates per source */
    size_t max_template_bytes; /* memory for all templates together */
    uint32_t max_pending;      /* datagrams held waiting for a template */
    size_t max_pending_bytes;  /* bytes held waiting for a template */
    uint32_t pending_age_ms;   /* how long a held datagram waits */
};

/* Fills l with the defaults: 4096 sources, 1024 templates per source,
 * 64 MiB of templates, 4096 held datagrams, 16 MiB held, 60 s. */
void fl_decoder_limits_default(struct fl_decoder_limits *l);

/* Kinds of decode errors, each with its own counter. */
enum fl_decode_error {
    FL_DE_SHORT,          /* datagram or header shorter than declared */
    FL_DE_VERSION,        /* not NetFlow v1/v5/v7/v9 or IPFIX */
    FL_DE_SET,            /* set or flowset length impossible */
    FL_DE_TEMPLATE,       /* malformed template or options template */
    FL_DE_RECORD,         /* data record shorter than its template */
    FL_DE_TEMPLATE_LIMIT, /* template refused: count or memory ceiling */
    FL_DE_SOURCE_LIMIT,   /* datagram refused: too many exporters */
    FL_DE_PENDING_DROP,   /* held data dropped: too old or no room */
    FL_DE_V9_COUNT,       /* v9 header count disagrees; records kept */
    FL_DE_COUNT
};

/* Stable lower-case name of an error kind, for metrics labels. */
const char *fl_decode_error_name(enum fl_decode_error e);

/* Per (exporter, domain) counters. */
struct fl_source_stats {
    struct fl_addr exporter;
    uint32_t domain;
    uint8_t version;    /* last NetFlow version seen */
    uint64_t datagrams; /* datagrams (or, for v9/IPFIX, messages) */
    uint64_t flows;     /* flow records decoded */
    uint64_t bytes;     /* datagram bytes */
    uint64_t seq_gaps;  /* times the sequence jumped */
    uint64_t seq_lost;  /* units missing by the sequence numbers */
    uint32_t templates; /* templates currently known */
    uint32_t pending;   /* datagrams waiting for a template */
};

struct fl_decoder_stats {
    uint64_t datagrams;
    uint64_t flows;
    uint64_t errors[FL_DE_COUNT];
    uint64_t seq_gaps;
    uint64_t seq_lost;
    uint32_t sources;
    uint32_t templates;
    uint32_t pending;
};

/* Called once per decoded flow; the flow and its extra bytes are borrowed
 * for the duration of the call. */
typedef void (*fl_flow_fn)(void *arg, const struct fl_flow *flow);

/* Creates a decoder; lim may be NULL for the defaults. */
int fl_decoder_new(const struct fl_decoder_limits *lim,
                   struct fl_decoder **out);
void fl_decoder_free(struct fl_decoder *d);

/*
 * Decodes one datagram sent by exporter.  fn receives every flow decoded,
 * including flows held earlier that a template in this datagram releases.
 * now_ms is the receive time (wall clock), used to age held data.
 * Returns FL_OK, or the error that stopped decoding part of the datagram;
 * flows decoded before the error have been delivered and the error is
 * counted.  Never fails for lack of a template: that data is held.
 */
int fl_decoder_feed(struct fl_decoder *d, const struct fl_addr *exporter,
                    const uint8_t *pkt, size_t len, uint64_t now_ms,
                    fl_flow_fn fn, void *arg);

/* Drops held data older than the limit, counting it. */
void fl_decoder_expire(struct fl_decoder *d, uint64_t now_ms);

void fl_decoder_get_stats(const struct fl_decoder *d,
                          struct fl_decoder_stats *out);

/* Calls fn for every source the decoder knows, in no particular order. */
void fl_decoder_each_source(const struct fl_decoder *d,
                            void (*fn)(void *arg,
                                       const struct fl_source_stats *s),
                            void *arg);

/*
 * Template persistence.  save hands out a malloc'd buffer (the caller
 * writes it to the state directory and frees it).  load adds the
 * templates and sampling options in buf to the decoder; it validates every
 * byte and returns FL_EFORMAT or FL_EVERSION without changing the decoder
 * when buf is not a complete, well-formed state file.
 */
int fl_decoder_templates_save(const struct fl_decoder *d, uint8_t **buf,
                              size_t *len);
int fl_decoder_templates_load(struct fl_decoder *d, const uint8_t *buf,
                              size_t len);

#endif /* FL_SENSOR_H */
