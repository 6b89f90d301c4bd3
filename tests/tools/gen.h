/*
 * fl0wer-gen's parts: deterministic flows, the NetFlow v5 / v9 / IPFIX
 * encoder, and the sinks that send datagrams or write them to a pcap.
 * The encoder is independent of the sensor's decoder on purpose.
 */
#ifndef FL_GEN_H
#define FL_GEN_H

#include "common.h"

/* Largest datagram the generator builds (UDP over IPv4 limit, rounded). */
#define GEN_DGRAM_MAX 65000

/* What every flow of a run is drawn from. */
struct gen_plan {
    uint8_t version; /* 5, 9 or 10 */
    uint64_t seed;
    uint32_t v6_share;     /* percent of flows that are IPv6 (v9, IPFIX) */
    uint64_t window_start; /* ms since epoch: flows lie in the window */
    uint64_t window_ms;
};

/*
 * A flow, plus the prefix lengths a v5 record carries: the canonical
 * record has no field for them, so a collector keeps them as extra
 * elements 9 and 13 (zero for v9 and IPFIX flows, which do not send them).
 */
struct gen_flow {
    struct fl_flow f;
    uint8_t src_mask;
    uint8_t dst_mask;
};

/*
 * Fills g with flow number index of the plan: the same plan and index
 * always give the same flow.  Exporter and domain are left for the
 * caller, who knows where the flow is sent.
 */
void gen_flow_make(const struct gen_plan *plan, uint64_t index,
                   struct gen_flow *g);

/* One observation domain (v9 source id, v5 engine id) and its counters. */
struct gen_domain {
    uint32_t id;
    uint32_t seq;      /* next sequence number, in the version's units */
    uint64_t messages; /* data messages sent */
};

/* Header clock shared by all messages of a run. */
struct gen_clock {
    uint64_t export_ms; /* header export time; a whole second */
    uint32_t uptime_ms; /* v5 / v9 sysUptime at export time */
};

/* Chooses an export time at or after window_end and an uptime that
 * reaches back before the window (window_ms must stay under 40 days). */
void gen_clock_init(struct gen_clock *clk, uint64_t window_end,
                    uint64_t window_ms);

/* One message under construction in a caller's buffer. */
struct gen_msg {
    uint8_t version;
    const struct gen_clock *clk;
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t set_start; /* offset of the open data set, 0 when none */
    uint16_t set_id;  /* template id of the open data set */
    uint32_t records; /* data records */
    uint32_t count;   /* v9 header count: every record of any kind */
    uint32_t max_records;
};

/*
 * Starts a message of version into buf (cap bytes).  max_records limits
 * the data records (0: as many as fit).
 */
void gen_msg_begin(struct gen_msg *m, uint8_t version,
                   const struct gen_clock *clk, uint8_t *buf, size_t cap,
                   uint32_t max_records);

/* Appends the IPv4 and IPv6 templates (v9, IPFIX); FL_ELIMIT if no room. */
int gen_msg_add_templates(struct gen_msg *m);

/*
 * Appends one data record; FL_ELIMIT when it does not fit or the record
 * limit is reached (the message is unchanged), FL_EINVAL for an IPv6
 * flow in v5.
 */
int gen_msg_add_flow(struct gen_msg *m, const struct gen_flow *g);

/*
 * Closes the message for dom: writes the header with dom's sequence
 * number and advances it by the version's units (v5: flows, v9:
 * messages, IPFIX: data records).  Returns the message length.
 */
size_t gen_msg_finish(struct gen_msg *m, struct gen_domain *dom);

/* Where datagrams go: a UDP socket, or a pcap file. */
struct gen_sink;

/*
 * Opens a sink sending to target ("HOST:PORT", "[V6]:PORT") from
 * source_port (0: any), or writing a pcap to path when path is set: then
 * target gives the destination port (and address, when IPv4), domain
 * index d is sent from 192.0.2.(1 + d) and the capture's clock starts at
 * pcap_ms.  *out is NULL on failure; err gets the reason.
 */
int gen_sink_open(const char *target, uint16_t source_port, const char *path,
                  uint64_t pcap_ms, struct gen_sink **out, char *err,
                  size_t errlen);
void gen_sink_close(struct gen_sink *s);

/* The exporter address a receiver sees for datagrams of domain index d. */
void gen_sink_exporter(const struct gen_sink *s, uint32_t d,
                       struct fl_addr *out);

/* A buffer of GEN_DGRAM_MAX bytes for the next datagram. */
uint8_t *gen_sink_slot(struct gen_sink *s);

/* Queues the slot's first len bytes, sent as domain index d. */
int gen_sink_commit(struct gen_sink *s, size_t len, uint32_t d);

/* Sends or writes every queued datagram. */
int gen_sink_flush(struct gen_sink *s);

#endif /* FL_GEN_H */
