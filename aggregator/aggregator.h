/*
 * The parts of the fl0wer command that tests reach: the nfdump filter
 * language (parser, evaluator, index planner), -t time windows, and the
 * output formats with the time-ordered, bounded result set behind them.
 */
#ifndef FL_AGGREGATOR_H
#define FL_AGGREGATOR_H

#include "common.h"
#include "storage.h"

/* ---- filters ---------------------------------------------------------- */

/* A parsed filter: its syntax tree and the scan needs derived from it. */
struct fl_filter;

/* Ceilings that keep a hostile filter from exhausting stack or memory. */
#define FL_FILTER_MAX_TEXT (1u << 20)
#define FL_FILTER_MAX_DEPTH 200
#define FL_FILTER_MAX_NEEDS 32

/*
 * Parses text (nfdump syntax, keywords case-insensitive; empty text
 * matches every flow) into *out.  On a syntax error returns FL_EFORMAT,
 * *out NULL, err gets "what at column N" and *column the 1-based column
 * of the offending token (one past the end for a premature end).
 * FL_ENOMEM, FL_ELIMIT (text or nesting past the ceilings) likewise.
 */
int fl_filter_parse(const char *text, struct fl_filter **out, char *err,
                    size_t errlen, size_t *column);
void fl_filter_free(struct fl_filter *f);

/* True when flow (from the named sensor, may be NULL) satisfies f.  Reads
 * f only, so several threads may match with one filter at once. */
bool fl_filter_match(const struct fl_filter *f, const struct fl_flow *flow,
                     const char *sensor);

/*
 * The address conditions every matching flow satisfies, for the index
 * (struct fl_scan needs).  Borrowed from f: valid until fl_filter_free.
 * A filter the planner cannot reason about has none; the scan then
 * reads every block in the window.
 */
void fl_filter_needs(const struct fl_filter *f,
                     const struct fl_scan_need **needs, size_t *n);

/* ---- time windows ------------------------------------------------------ */

/* Flows whose time_start lies in [start, end), ms since the epoch. */
struct fl_window {
    uint64_t start;
    uint64_t end; /* UINT64_MAX: no end */
};

/* Parses "UTC", "Z", "+HH:MM", "-HHMM", "+HH" into minutes east of UTC. */
int fl_window_parse_tz(const char *s, int32_t *minutes);

/*
 * Parses an nfdump -t window: "YYYY/MM/dd.hh:mm:ss[-YYYY/MM/dd.hh:mm:ss]"
 * with any side shortened from the right (its earliest instant), a lone
 * start meaning no end, or a relative "-N[smhdw]" meaning the last N
 * units before now_ms.  Dates are read in the zone tz_minutes east of
 * UTC.  FL_EFORMAT with the reason in err.
 */
int fl_window_parse(const char *text, uint64_t now_ms, int32_t tz_minutes,
                    struct fl_window *out, char *err, size_t errlen);

/* ---- result sets ------------------------------------------------------- */

/* One matching flow with its own copy of the extra bytes. */
struct fl_row {
    struct fl_flow flow;
    char sensor[65];
};

/*
 * Matches gathered from the scan threads, handed out in time order.
 * With limit > 0 only the first limit flows by time are kept (a bounded
 * heap); otherwise up to max_rows are held and one more fails the set.
 */
struct fl_rows;

int fl_rows_new(uint64_t limit, uint64_t max_rows, struct fl_rows **out);
void fl_rows_free(struct fl_rows *r);
/* Adds a copy of flow; thread-safe.  FL_ELIMIT past max_rows (the set is
 * then marked full and keeps what it had), FL_ENOMEM. */
int fl_rows_add(struct fl_rows *r, const struct fl_flow *flow,
                const char *sensor);
/* FL_OK, or the first failure of fl_rows_add (FL_ELIMIT, FL_ENOMEM): a
 * set that failed holds an incomplete result. */
int fl_rows_status(struct fl_rows *r);
/* Sorts by time and returns the rows, borrowed from r. */
const struct fl_row *fl_rows_sorted(struct fl_rows *r, size_t *n);
/* Orders two rows by time_start, then by every other field, so output
 * does not depend on which scan thread found a flow first. */
int fl_row_cmp(const struct fl_row *a, const struct fl_row *b);

/* ---- output formats ---------------------------------------------------- */

enum fl_format {
    FL_FORMAT_TABLE,  /* aligned columns like nfdump's default */
    FL_FORMAT_CSV,    /* header line, RFC 4180 quoting */
    FL_FORMAT_NDJSON, /* fl_flow_format_ndjson, one line a flow */
    FL_FORMAT_JSON,   /* one array of the NDJSON objects */
};

int fl_format_parse(const char *s, enum fl_format *out);

struct fl_output;

/* Writes to fp (borrowed).  tz_minutes shifts the table's dates only;
 * machine formats are always UTC.  quiet drops the table's header and
 * summary. */
int fl_output_new(FILE *fp, enum fl_format fmt, int32_t tz_minutes, bool quiet,
                  struct fl_output **out);
void fl_output_free(struct fl_output *o);
/* Table only: widens columns to fit row before anything is written. */
void fl_output_measure(struct fl_output *o, const struct fl_flow *flow);
/* Header (csv, table) or "[" (json). */
int fl_output_begin(struct fl_output *o);
int fl_output_flow(struct fl_output *o, const struct fl_flow *flow,
                   const char *sensor);
/* Closes the document (json "]", table summary); call it on failure too,
 * so that what was written stays valid.  FL_EIO when a write failed. */
int fl_output_end(struct fl_output *o);

/* Human units as nfdump prints them: "999", "1.2 M", "3.4 G". */
void fl_output_human(uint64_t v, char buf[32]);

#endif /* FL_AGGREGATOR_H */
