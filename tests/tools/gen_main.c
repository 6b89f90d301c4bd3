/*
 * fl0wer-gen: sends (or writes to a pcap) deterministic NetFlow v5, v9 or
 * IPFIX traffic at a chosen rate, and writes the flows it sent as the
 * sensor should print them, so tests can compare the two exactly.
 */
#include "gen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_WINDOW_MS 300000 /* flows lie in the five minutes before now */
#define GEN_DGRAM_DEFAULT 1400
#define GEN_LATE_MESSAGES 2 /* data messages sent before a late template */

struct gen_opts {
    uint64_t version;
    uint64_t seed;
    uint64_t flows;
    uint64_t rate;
    uint64_t source_port;
    uint64_t domains;
    uint64_t v6_share;
    uint64_t template_every;
    uint64_t records;
    uint64_t start;
    uint64_t seq_gap;
    char *target;
    char *write;
    char *truth;
    bool late_template;
    bool no_templates;
    bool quiet;
};

/* One domain's encoder counters and whether it has had its templates. */
struct gen_dom {
    struct gen_domain enc;
    bool templated;
};

struct gen_run {
    const struct gen_opts *o;
    struct gen_plan plan;
    struct gen_clock clk;
    struct gen_sink *sink;
    FILE *truth;
    struct gen_dom *doms;
    struct gen_flow carry; /* made but not yet fitted into a datagram */
    bool have_carry;
    bool gap_done;
    uint64_t next_index;
    uint64_t sent;
    uint64_t datagrams;
    uint64_t t0_ns;
};

static uint64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Templates go first, or after GEN_LATE_MESSAGES data messages, then
 * again every template_every data messages of the domain. */
static bool
wants_templates(const struct gen_run *r, const struct gen_dom *dom)
{
    uint64_t first = r->o->late_template ? GEN_LATE_MESSAGES : 0;
    uint64_t m = dom->enc.messages;

    if (r->o->version == 5 || r->o->no_templates || m < first) {
        return false;
    }
    if (!dom->templated) {
        return true;
    }
    return r->o->template_every != 0 && m > first &&
           (m - first) % r->o->template_every == 0;
}

static size_t
datagram_cap(const struct gen_opts *o)
{
    return o->records != 0 ? GEN_DGRAM_MAX : GEN_DGRAM_DEFAULT;
}

static int
send_templates(struct gen_run *r, uint32_t d)
{
    struct gen_msg m;
    size_t len;

    gen_msg_begin(&m, (uint8_t)r->o->version, &r->clk, gen_sink_slot(r->sink),
                  datagram_cap(r->o), 0);
    if (gen_msg_add_templates(&m) != FL_OK) {
        return FL_ELIMIT;
    }
    len = gen_msg_finish(&m, &r->doms[d].enc);
    r->doms[d].templated = true;
    r->datagrams++;
    return gen_sink_commit(r->sink, len, d);
}

static int
write_truth(struct gen_run *r, const struct gen_flow *g)
{
    char line[FL_FLOW_NDJSON_MAX];
    uint8_t extra[2 * 9];
    struct fl_flow f = g->f;
    int n;

    /* v5 masks have no field in the record: kept as (pen, id, len, value). */
    if (r->o->version == 5) {
        memset(extra, 0, sizeof(extra));
        fl_put_be16(extra + 4, 9);
        fl_put_be16(extra + 6, 1);
        extra[8] = g->src_mask;
        fl_put_be16(extra + 13, 13);
        fl_put_be16(extra + 15, 1);
        extra[17] = g->dst_mask;
        f.extra = extra;
        f.extra_len = sizeof(extra);
    }
    n = fl_flow_format_ndjson(&f, NULL, line, sizeof(line));
    if (n < 0 || fwrite(line, (size_t)n, 1, r->truth) != 1) {
        return FL_EIO;
    }
    return FL_OK;
}

/* Fills one data message for domain index d with the next flows. */
static int
send_data(struct gen_run *r, uint32_t d)
{
    struct gen_dom *dom = &r->doms[d];
    struct gen_msg m;
    struct gen_flow g;

    if (r->o->seq_gap != 0 && !r->gap_done && r->sent >= r->o->flows / 2) {
        dom->enc.seq += (uint32_t)r->o->seq_gap;
        r->gap_done = true;
    }
    gen_msg_begin(&m, (uint8_t)r->o->version, &r->clk, gen_sink_slot(r->sink),
                  datagram_cap(r->o), (uint32_t)r->o->records);
    while (r->sent < r->o->flows) {
        if (r->have_carry) {
            g = r->carry;
            r->have_carry = false;
        } else {
            gen_flow_make(&r->plan, r->next_index++, &g);
        }
        gen_sink_exporter(r->sink, d, &g.f.exporter);
        g.f.domain = dom->enc.id;
        if (gen_msg_add_flow(&m, &g) != FL_OK) {
            r->carry = g;
            r->have_carry = true;
            break;
        }
        if (r->truth != NULL && write_truth(r, &g) != FL_OK) {
            return FL_EIO;
        }
        r->sent++;
    }
    if (m.records == 0) {
        return FL_ELIMIT; /* one record must always fit */
    }
    r->datagrams++;
    return gen_sink_commit(r->sink, gen_msg_finish(&m, &dom->enc), d);
}

/* Holds the sender back to the rate, flushing what is queued first. */
static int
pace(struct gen_run *r)
{
    uint64_t due;
    struct timespec ts;
    int rc;

    if (r->o->rate == 0) {
        return FL_OK;
    }
    due = r->t0_ns + (uint64_t)((double)r->sent * 1e9 / (double)r->o->rate);
    if (mono_ns() >= due) {
        return FL_OK;
    }
    rc = gen_sink_flush(r->sink);
    ts.tv_sec = (time_t)(due / 1000000000u);
    ts.tv_nsec = (long)(due % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR) {
    }
    return rc;
}

static int
run(struct gen_run *r)
{
    uint32_t ndom = (uint32_t)r->o->domains;
    int rc = FL_OK;

    r->t0_ns = mono_ns();
    for (uint64_t pkt = 0; rc == FL_OK && r->sent < r->o->flows; pkt++) {
        uint32_t d = (uint32_t)(pkt % ndom);

        rc = pace(r);
        if (rc == FL_OK && wants_templates(r, &r->doms[d])) {
            rc = send_templates(r, d);
        }
        if (rc == FL_OK) {
            rc = send_data(r, d);
        }
    }
    /* A late template still has to come for domains that got data. */
    for (uint32_t d = 0; rc == FL_OK && d < ndom; d++) {
        if (r->o->late_template && !r->o->no_templates &&
            !r->doms[d].templated && r->doms[d].enc.messages > 0) {
            rc = send_templates(r, d);
        }
    }
    if (rc == FL_OK) {
        rc = gen_sink_flush(r->sink);
    }
    return rc;
}

static const char *
check_opts(const struct gen_opts *o)
{
    if (o->version != 5 && o->version != 9 && o->version != 10) {
        return "--version must be 5, 9 or 10";
    }
    if (o->domains == 0 || o->domains > (o->version == 5 ? 255 : 65535)) {
        return "--domains must be 1..255 (v5) or 1..65535";
    }
    if (o->v6_share > 100 || (o->version == 5 && o->v6_share != 0)) {
        return "--v6-share must be 0..100, and 0 for v5";
    }
    if (o->version == 5 && o->records > 30) {
        return "--records must be at most 30 for v5";
    }
    if (o->records > 65535 || o->source_port > 65535 ||
        o->seq_gap > UINT32_MAX) {
        return "--records, --source-port or --seq-gap out of range";
    }
    return NULL;
}

static const struct fl_opt *
gen_options(struct gen_opts *o)
{
    static struct fl_opt opts[] = {
        {"version", 'V', FL_OPT_U64, NULL, "5|9|10",
         "NetFlow version (10 = IPFIX)"},
        {"flows", 'n', FL_OPT_U64, NULL, "N", "flows to send"},
        {"rate", 'r', FL_OPT_U64, NULL, "FLOWS/S",
         "pace (0: as fast as possible)"},
        {"seed", 's', FL_OPT_U64, NULL, "N", "seed of the flow values"},
        {"target", 't', FL_OPT_STR, NULL, "HOST:PORT",
         "receiver, [V6]:PORT for IPv6"},
        {"source-port", 0, FL_OPT_U64, NULL, "PORT", "local port to send from"},
        {"write", 'w', FL_OPT_STR, NULL, "FILE.pcap",
         "write a pcap instead of sending"},
        {"truth", 0, FL_OPT_STR, NULL, "FILE",
         "write the flows sent as NDJSON"},
        {"domains", 'd', FL_OPT_U64, NULL, "N",
         "observation domains / source ids"},
        {"v6-share", 0, FL_OPT_U64, NULL, "PERCENT", "IPv6 flows (v9, IPFIX)"},
        {"template-every", 0, FL_OPT_U64, NULL, "N",
         "repeat templates every N data datagrams (0: once)"},
        {"records", 0, FL_OPT_U64, NULL, "N",
         "records per datagram (0: fill 1400 bytes)"},
        {"start", 0, FL_OPT_U64, NULL, "TIME_MS",
         "window start (default: now - 5 min)"},
        {"late-template", 0, FL_OPT_BOOL, NULL, NULL,
         "send data before the first template"},
        {"no-templates", 0, FL_OPT_BOOL, NULL, NULL, "never send templates"},
        {"seq-gap", 0, FL_OPT_U64, NULL, "N",
         "skip N sequence units once, midway"},
        {"quiet", 'q', FL_OPT_BOOL, NULL, NULL, "no summary line"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    void *dst[] = {&o->version,  &o->flows,          &o->rate,
                   &o->seed,     &o->target,         &o->source_port,
                   &o->write,    &o->truth,          &o->domains,
                   &o->v6_share, &o->template_every, &o->records,
                   &o->start,    &o->late_template,  &o->no_templates,
                   &o->seq_gap,  &o->quiet};

    for (size_t i = 0; i < sizeof(dst) / sizeof(dst[0]); i++) {
        opts[i].dst = dst[i];
    }
    return opts;
}

static void
gen_opts_default(struct gen_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->version = 10;
    o->flows = 10000;
    o->seed = 1;
    o->domains = 1;
    o->template_every = 100;
}

/* Parses the command line; returns an exit status, or -1 to go on. */
static int
parse_args(struct gen_opts *o, const struct fl_opt *opts, int argc, char **argv)
{
    static const char synopsis[] = "[--version 5|9|10] [--flows N] "
                                   "[--target HOST:PORT | --write FILE]";
    struct fl_strlist rest = {0};
    char err[256] = "";
    const char *bad;
    int rc = fl_config_parse(opts, argc, argv, "fl0wer-gen", &rest, err,
                             sizeof(err));

    if (rc == FL_ENOENT) {
        /* fl_config_parse leaves the help text to us: it has no synopsis. */
        fl_config_usage(opts, "fl0wer-gen", synopsis, stdout);
        fl_strlist_fini(&rest);
        return 0;
    }
    bad = rc != FL_OK ? err : check_opts(o);
    if (bad == NULL && rest.n > 0) {
        bad = "unexpected argument";
    }
    fl_strlist_fini(&rest);
    if (bad != NULL) {
        fprintf(stderr, "fl0wer-gen: %s\n", bad);
        fl_config_usage(opts, "fl0wer-gen", synopsis, stderr);
        return 2;
    }
    return -1;
}

static int
setup(struct gen_run *r, const struct gen_opts *o, char *err, size_t errlen)
{
    uint64_t end = o->start != 0 ? o->start + GEN_WINDOW_MS : fl_time_now_ms();
    const char *target = o->target;
    int rc;

    r->o = o;
    r->plan.version = (uint8_t)o->version;
    r->plan.seed = o->seed;
    r->plan.v6_share = (uint32_t)o->v6_share;
    r->plan.window_ms = GEN_WINDOW_MS;
    r->plan.window_start = end - GEN_WINDOW_MS;
    gen_clock_init(&r->clk, end, GEN_WINDOW_MS);
    /* Loopback when sending; a documentation address in a capture. */
    if (target == NULL && o->write != NULL) {
        target = o->version == 10 ? "198.51.100.1:4739" : "198.51.100.1:2055";
    } else if (target == NULL) {
        target = o->version == 10 ? "127.0.0.1:4739" : "127.0.0.1:2055";
    }
    rc = gen_sink_open(target, (uint16_t)o->source_port, o->write,
                       r->clk.export_ms, &r->sink, err, errlen);
    if (rc != FL_OK) {
        return rc;
    }
    r->doms = calloc(o->domains, sizeof(*r->doms));
    if (r->doms == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    for (uint32_t d = 0; d < o->domains; d++) {
        r->doms[d].enc.id = d + 1;
    }
    if (o->truth != NULL) {
        r->truth = fopen(o->truth, "w");
        if (r->truth == NULL) {
            snprintf(err, errlen, "%s: %s", o->truth, strerror(errno));
            return FL_EIO;
        }
        setvbuf(r->truth, NULL, _IOFBF, 1 << 20);
    }
    return FL_OK;
}

static void
summary(const struct gen_run *r)
{
    double secs = (double)(mono_ns() - r->t0_ns) / 1e9;

    fprintf(stderr,
            "fl0wer-gen: datagrams=%llu flows=%llu seconds=%.3f "
            "rate=%.0f flows/s\n",
            (unsigned long long)r->datagrams, (unsigned long long)r->sent, secs,
            secs > 0 ? (double)r->sent / secs : 0.0);
}

int
main(int argc, char **argv)
{
    struct gen_opts o;
    const struct fl_opt *opts;
    struct gen_run r;
    char err[512] = "";
    int status;
    int rc;

    gen_opts_default(&o);
    opts = gen_options(&o);
    status = parse_args(&o, opts, argc, argv);
    if (status >= 0) {
        fl_config_fini(opts);
        return status;
    }
    memset(&r, 0, sizeof(r));
    rc = setup(&r, &o, err, sizeof(err));
    if (rc == FL_OK) {
        rc = run(&r);
        snprintf(err, sizeof(err), "sending: %s", fl_strerror(rc));
    }
    if (r.truth != NULL && fclose(r.truth) != 0 && rc == FL_OK) {
        rc = FL_EIO;
        snprintf(err, sizeof(err), "%s: %s", o.truth, strerror(errno));
    }
    if (rc == FL_OK && !o.quiet) {
        summary(&r);
    }
    if (rc != FL_OK) {
        fprintf(stderr, "fl0wer-gen: %s\n", err);
    }
    gen_sink_close(r.sink);
    free(r.doms);
    fl_config_fini(opts);
    return rc == FL_OK ? 0 : 1;
}
