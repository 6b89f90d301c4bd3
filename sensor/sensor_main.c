/*
 * fl0wer-sensor: receives NetFlow v5/v9 and IPFIX on UDP (or reads a
 * capture file), decodes it, prints the flows and, with --archive, signs
 * them in batches into a local archive.  main() is the option table and a
 * short sequence of named steps; everything else is below.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor_int.h"
#include "storage.h"

#define PROG "fl0wer-sensor"
#define SYNOPSIS "[-c FILE] (--listen [ADDR:]PORT | --read FILE) [OPTION]..."

/* Exit codes, as DESIGN.md gives them to every command. */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define TICK_MS 1000
#define SAVE_EVERY_MS 10000
#define STDOUT_BUFLEN (1u << 20)

/* ---- options ---------------------------------------------------------- */

static struct {
    char *config;
    char *name;
    char *state;
    struct fl_strlist listen;
    char *print;
    char *read;
    char *metrics;
    char *log_level;
    uint64_t max_sources;
    uint64_t max_templates;
    uint64_t max_template_bytes;
    uint64_t max_pending;
    uint64_t max_pending_bytes;
    uint64_t pending_age;
    uint64_t rcvbuf;
    char *archive;
    char *key;
    uint64_t batch_records;
    uint64_t batch_age;
    uint64_t shards;
    uint64_t retention;
} opt;

static const struct fl_opt options[] = {
    {"config", 'c', FL_OPT_STR, &opt.config, "FILE",
     "INI file; flags override its keys"},
    {"name", 0, FL_OPT_STR, &opt.name, "NAME",
     "sensor name (default: host name)"},
    {"state", 0, FL_OPT_STR, &opt.state, "DIR",
     "keep templates in DIR across restarts"},
    {"listen", 0, FL_OPT_LIST, &opt.listen, "[ADDR:]PORT",
     "UDP to receive; repeatable; PORT: v4+v6"},
    {"print", 0, FL_OPT_STR, &opt.print, "ndjson",
     "print decoded flows on stdout"},
    {"read", 0, FL_OPT_STR, &opt.read, "FILE.pcap",
     "decode a capture instead, then exit"},
    {"metrics", 0, FL_OPT_STR, &opt.metrics, "[ADDR:]PORT",
     "serve Prometheus metrics on /metrics"},
    {"log-level", 0, FL_OPT_STR, &opt.log_level, "LEVEL",
     "err, warn, notice, info (default) or debug"},
    {"max-sources", 0, FL_OPT_U64, &opt.max_sources, "N",
     "sources kept (default 4096)"},
    {"max-templates", 0, FL_OPT_U64, &opt.max_templates, "N",
     "templates per source (default 1024)"},
    {"max-template-bytes", 0, FL_OPT_SIZE, &opt.max_template_bytes, "BYTES",
     "memory for all templates (default 64M)"},
    {"max-pending", 0, FL_OPT_U64, &opt.max_pending, "N",
     "held datagrams (default 4096)"},
    {"max-pending-bytes", 0, FL_OPT_SIZE, &opt.max_pending_bytes, "BYTES",
     "held bytes (default 16M)"},
    {"pending-age", 0, FL_OPT_U64, &opt.pending_age, "MS",
     "held datagrams' age (default 60000)"},
    {"rcvbuf", 0, FL_OPT_SIZE, &opt.rcvbuf, "BYTES",
     "socket receive buffer (default 64M)"},
    {"archive", 0, FL_OPT_STR, &opt.archive, "DIR",
     "sign batches into a local archive"},
    {"key", 0, FL_OPT_STR, &opt.key, "FILE",
     "the sensor's secret key (fl0wer keygen)"},
    {"batch-records", 0, FL_OPT_U64, &opt.batch_records, "N",
     "close a batch at N flows (default 10000)"},
    {"batch-age", 0, FL_OPT_U64, &opt.batch_age, "MS",
     "or MS after its first flow (default 1000)"},
    {"shards", 0, FL_OPT_U64, &opt.shards, "N",
     "shards of a new archive (default 4)"},
    {"retention", 0, FL_OPT_U64, &opt.retention, "DAYS",
     "delete older segments (default 0: keep)"},
    {NULL, 0, FL_OPT_STR, NULL, NULL, NULL},
};

/* ---- the running sensor ----------------------------------------------- */

struct sensor {
    const char *name;
    char hostname[256];
    struct fl_decoder *dec;
    struct fl_listener *lis;
    struct fl_state *state;
    struct fl_metrics *metrics;
    struct fl_seckey *key;
    struct fl_archive *archive;
    struct fl_chain_writer *writer;
    struct fl_batcher *batcher;
    uint64_t now_ms; /* time of the datagram being decoded */
    struct fl_str page;
    struct fl_ratelimit decode_rl;
    struct fl_pcap_stats pcap;
    char *outbuf;
    bool print;
    bool flush_batches; /* stdout is a pipe or terminal: flush promptly */
    bool out_failed;
    uint64_t next_expire_ms; /* --read: capture time of the next expiry */
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t hup_requested;

static void
on_signal(int sig)
{
    if (sig == SIGHUP) {
        hup_requested = 1;
    } else {
        stop_requested = 1;
    }
}

/* "fl0wer-sensor: what: why", the format of every command's errors. */
static int
fail(int code, const char *what, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", PROG, what, why);
    return code;
}

static int
parse_level(const char *s, enum fl_log_level *out)
{
    static const struct {
        const char *name;
        enum fl_log_level level;
    } levels[] = {
        {"err", FL_LOG_ERR},       {"warn", FL_LOG_WARN},
        {"notice", FL_LOG_NOTICE}, {"info", FL_LOG_INFO},
        {"debug", FL_LOG_DEBUG},
    };

    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(s, levels[i].name) == 0) {
            *out = levels[i].level;
            return FL_OK;
        }
    }
    return FL_EINVAL;
}

/* Ceilings are u32 in the decoder and must let something through. */
static int
check_ceiling(const char *name, uint64_t v)
{
    if (v == 0 || v > UINT32_MAX) {
        char what[64];

        snprintf(what, sizeof(what), "--%s", name);
        return fail(EXIT_USAGE, what, "must be between 1 and 4294967295");
    }
    return EXIT_OK;
}

/* Address syntax is a usage error, found before any socket is opened. */
static int
check_hostport(const char *flag, const char *value)
{
    char host[64];
    uint16_t port;

    if (fl_parse_hostport(value, host, sizeof(host), &port) != FL_OK) {
        char what[128];

        snprintf(what, sizeof(what), "%s %s", flag, value);
        return fail(EXIT_USAGE, what, "expected [ADDR:]PORT");
    }
    return EXIT_OK;
}

/* A value that must lie in [lo, hi]. */
static int
check_range(const char *name, uint64_t v, uint64_t lo, uint64_t hi)
{
    if (v < lo || v > hi) {
        char what[64];
        char why[96];

        snprintf(what, sizeof(what), "--%s", name);
        snprintf(why, sizeof(why), "must be between %llu and %llu",
                 (unsigned long long)lo, (unsigned long long)hi);
        return fail(EXIT_USAGE, what, why);
    }
    return EXIT_OK;
}

/* --archive signs with --key and needs --state, so that the chain's
 * sequence survives a restart and never repeats. */
static int
check_archive(void)
{
    int rc;

    if (opt.archive == NULL) {
        if (opt.key != NULL) {
            fl_log(FL_LOG_NOTICE, "FL-SENSOR-ARCHIVE",
                   "no --archive: key not used key=%s", opt.key);
        }
        return EXIT_OK;
    }
    if (opt.key == NULL) {
        return fail(EXIT_USAGE, "--archive", "needs --key FILE to sign");
    }
    if (opt.state == NULL) {
        return fail(EXIT_USAGE, "--archive",
                    "needs --state DIR to keep the chain's sequence");
    }
    rc = check_range("batch-records", opt.batch_records, 1,
                     FL_BATCH_MAX_RECORDS);
    rc = rc != EXIT_OK ? rc
                       : check_range("batch-age", opt.batch_age, 1, 3600000);
    rc = rc != EXIT_OK ? rc : check_range("shards", opt.shards, 1, 100);
    rc = rc != EXIT_OK ? rc : check_range("retention", opt.retention, 0, 36500);
    return rc;
}

/* Checks what fl_config_parse cannot: combinations and value sets. */
static int
check_options(struct sensor *s, const struct fl_strlist *rest)
{
    enum fl_log_level level = FL_LOG_INFO;
    int rc;

    if (rest->n > 0) {
        return fail(EXIT_USAGE, rest->v[0], "unexpected argument");
    }
    if (opt.listen.n == 0 && opt.read == NULL) {
        return fail(EXIT_USAGE, "nothing to do", "give --listen or --read");
    }
    if (opt.print != NULL && strcmp(opt.print, "ndjson") != 0) {
        return fail(EXIT_USAGE, "--print", "the only format is ndjson");
    }
    if (opt.log_level != NULL && parse_level(opt.log_level, &level) != FL_OK) {
        return fail(EXIT_USAGE, "--log-level",
                    "expected err, warn, notice, info or debug");
    }
    fl_log_set_level(level);
    rc = opt.metrics != NULL ? check_hostport("--metrics", opt.metrics) : 0;
    for (size_t i = 0; rc == EXIT_OK && i < opt.listen.n; i++) {
        rc = check_hostport("--listen", opt.listen.v[i]);
    }
    rc = rc != EXIT_OK ? rc : check_ceiling("max-sources", opt.max_sources);
    rc = rc != EXIT_OK ? rc : check_ceiling("max-templates", opt.max_templates);
    rc = rc != EXIT_OK ? rc : check_ceiling("max-pending", opt.max_pending);
    rc = rc != EXIT_OK ? rc : check_ceiling("pending-age", opt.pending_age);
    rc = rc != EXIT_OK ? rc : check_archive();
    if (rc != EXIT_OK) {
        return rc;
    }
    /* "Instead of a socket": a capture wins over a configured listen. */
    if (opt.listen.n > 0 && opt.read != NULL) {
        fl_log(FL_LOG_NOTICE, "FL-SENSOR-READ",
               "reading a capture, listen addresses ignored capture=%s",
               opt.read);
        fl_strlist_fini(&opt.listen);
    }
    s->print = opt.print != NULL;
    return EXIT_OK;
}

/* Defaults first, so that the file and the flags only override them. */
static int
parse_options(struct sensor *s, int argc, char **argv)
{
    struct fl_decoder_limits lim;
    struct fl_strlist rest = {0};
    char err[256];
    int rc;

    fl_decoder_limits_default(&lim);
    opt.max_sources = lim.max_sources;
    opt.max_templates = lim.max_templates;
    opt.max_template_bytes = lim.max_template_bytes;
    opt.max_pending = lim.max_pending;
    opt.max_pending_bytes = lim.max_pending_bytes;
    opt.pending_age = lim.pending_age_ms;
    opt.rcvbuf = 64u << 20;
    opt.batch_records = 10000;
    opt.batch_age = 1000;
    opt.shards = 4;

    rc = fl_config_parse(options, argc, argv, PROG, &rest, err, sizeof(err));
    if (rc == FL_ENOENT) {
        fl_config_usage(options, PROG, SYNOPSIS, stdout);
        rc = EXIT_OK;
        goto out;
    }
    if (rc != FL_OK) {
        fprintf(stderr, "%s: %s\n(see %s --help)\n", PROG,
                err[0] != '\0' ? err : fl_strerror(rc), PROG);
        rc = EXIT_USAGE;
        goto out;
    }
    rc = check_options(s, &rest);
    /* -1: go on and run. */
    rc = rc != EXIT_OK ? rc : -1;
out:
    fl_strlist_fini(&rest);
    return rc;
}

/* ---- flows out -------------------------------------------------------- */

static void
print_flow(struct sensor *s, const struct fl_flow *flow)
{
    char line[FL_FLOW_NDJSON_MAX];
    int n;

    if (!s->print || s->out_failed) {
        return;
    }
    n = fl_flow_format_ndjson(flow, s->name, line, sizeof(line));
    if (n < 0) {
        fl_log(FL_LOG_WARN, "FL-SENSOR-PRINT", "flow not printed: %s",
               fl_strerror(n));
        return;
    }
    if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n) {
        s->out_failed = true;
    }
}

static void
on_flow(void *arg, const struct fl_flow *flow)
{
    struct sensor *s = arg;

    if (s->batcher != NULL) {
        fl_batcher_add(s->batcher, flow, s->now_ms);
    }
    print_flow(s, flow);
}

/* Flushes printed flows; a closed reader (EPIPE) stops the sensor. */
static void
flush_output(struct sensor *s)
{
    if (!s->print || s->out_failed) {
        return;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        s->out_failed = true;
    }
}

static void
warn_decode(struct sensor *s, const struct fl_datagram *dg, int rc)
{
    char addr[FL_ADDR_STRLEN];
    uint64_t suppressed = 0;

    if (!fl_ratelimit_pass(&s->decode_rl, fl_time_mono_ms(), &suppressed)) {
        return;
    }
    fl_log(FL_LOG_WARN, "FL-SENSOR-DECODE",
           "datagram not fully decoded exporter=%s port=%u bytes=%zu "
           "error=%s suppressed=%llu",
           fl_addr_format(&dg->exporter, addr), dg->port, dg->len,
           fl_strerror(rc), (unsigned long long)suppressed);
}

static void
on_datagram(void *arg, const struct fl_datagram *dg)
{
    struct sensor *s = arg;
    int rc;

    s->now_ms = dg->time_ms;
    rc = fl_decoder_feed(s->dec, &dg->exporter, dg->data, dg->len, dg->time_ms,
                         on_flow, s);
    if (rc != FL_OK) {
        warn_decode(s, dg, rc);
    }
}

/* ---- setup and teardown ----------------------------------------------- */

static int
setup_output(struct sensor *s)
{
    struct stat st;

    if (!s->print) {
        return EXIT_OK;
    }
    s->outbuf = malloc(STDOUT_BUFLEN);
    if (s->outbuf == NULL ||
        setvbuf(stdout, s->outbuf, _IOFBF, STDOUT_BUFLEN)) {
        return fail(EXIT_RUNTIME, "stdout", fl_strerror(FL_ENOMEM));
    }
    /* A file can wait for the tick; a pipe's reader wants lines now. */
    s->flush_batches = fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode);
    return EXIT_OK;
}

static int
setup_name(struct sensor *s)
{
    s->name = opt.name;
    if (s->name == NULL) {
        if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0) {
            return fail(EXIT_RUNTIME, "host name", strerror(errno));
        }
        s->name = s->hostname;
    }
    if (!fl_name_is_valid(s->name)) {
        return fail(opt.name != NULL ? EXIT_USAGE : EXIT_RUNTIME, s->name,
                    "not a valid sensor name ([A-Za-z0-9._-], at most 64); "
                    "set --name");
    }
    return EXIT_OK;
}

static void
setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: poll() must return so the loop sees the flag. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static int
setup_decoder(struct sensor *s)
{
    struct fl_decoder_limits lim;
    int rc;

    fl_decoder_limits_default(&lim);
    lim.max_sources = (uint32_t)opt.max_sources;
    lim.max_templates = (uint32_t)opt.max_templates;
    lim.max_template_bytes = (size_t)opt.max_template_bytes;
    lim.max_pending = (uint32_t)opt.max_pending;
    lim.max_pending_bytes = (size_t)opt.max_pending_bytes;
    lim.pending_age_ms = (uint32_t)opt.pending_age;
    rc = fl_decoder_new(&lim, &s->dec);
    if (rc != FL_OK) {
        return fail(EXIT_RUNTIME, "decoder", fl_strerror(rc));
    }
    fl_ratelimit_init(&s->decode_rl, 1000, 10);
    return EXIT_OK;
}

/* State, sockets and metrics: each optional, each may fail to open. */
static int
setup_io(struct sensor *s)
{
    char err[256] = "";
    int rc = FL_OK;

    if (opt.state != NULL) {
        rc = fl_state_open(opt.state, s->dec, &s->state, err, sizeof(err));
    }
    if (rc == FL_OK && opt.listen.n > 0) {
        rc = fl_listener_open(&opt.listen, opt.rcvbuf, &s->lis, err,
                              sizeof(err));
    }
    if (rc == FL_OK && opt.metrics != NULL) {
        rc = fl_metrics_start(opt.metrics, &s->metrics, err, sizeof(err));
    }
    if (rc != FL_OK) {
        fprintf(stderr, "%s: %s\n", PROG,
                err[0] != '\0' ? err : fl_strerror(rc));
        return rc == FL_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* The key must be this sensor's: its name is what the statements say. */
static int
load_key(struct sensor *s)
{
    const char *owner;
    char err[512] = "";
    int rc;

    rc = fl_seckey_load(opt.key, &s->key, err, sizeof(err));
    if (rc != FL_OK) {
        return fail(EXIT_RUNTIME, opt.key,
                    err[0] != '\0' ? err : fl_strerror(rc));
    }
    owner = fl_seckey_public(s->key)->name;
    if (strcmp(owner, s->name) != 0) {
        char why[256];

        snprintf(why, sizeof(why), "key of sensor %s, but --name is %s", owner,
                 s->name);
        return fail(EXIT_USAGE, opt.key, why);
    }
    return EXIT_OK;
}

/* The chain state (in --state, opened by setup_io) and the archive. */
static int
open_archive(struct sensor *s, struct fl_chain *chain)
{
    struct fl_archive_opts ao;
    char err[512] = "";
    int rc;

    rc = fl_chain_load(opt.state, s->name, chain, err, sizeof(err));
    if (rc != FL_OK) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return EXIT_RUNTIME;
    }
    fl_archive_opts_default(&ao);
    ao.shards = (uint32_t)opt.shards;
    rc = fl_archive_open(opt.archive, &ao, &s->archive, err, sizeof(err));
    if (rc != FL_OK) {
        return fail(EXIT_RUNTIME, opt.archive,
                    err[0] != '\0' ? err : fl_strerror(rc));
    }
    return EXIT_OK;
}

/*
 * Cumulative losses for the statements, read when a batch closes.
 * Decode errors counted are those that lose flows: short, version, set,
 * template, record, source_limit and pending_drop.  Not counted:
 * template_limit (the data it leaves undecodable is held, and counted as
 * pending_drop when dropped) and v9_count (its records are kept).
 */
static void
read_losses(void *arg, struct fl_batch_losses *out)
{
    struct sensor *s = arg;
    struct fl_decoder_stats st;

    fl_decoder_get_stats(s->dec, &st);
    out->socket = s->lis != NULL ? fl_listener_drops(s->lis) : 0;
    out->decode = st.errors[FL_DE_SHORT] + st.errors[FL_DE_VERSION] +
                  st.errors[FL_DE_SET] + st.errors[FL_DE_TEMPLATE] +
                  st.errors[FL_DE_RECORD] + st.errors[FL_DE_SOURCE_LIMIT] +
                  st.errors[FL_DE_PENDING_DROP];
    out->sequence = st.seq_lost;
}

static bool
is_stopping(void *arg)
{
    (void)arg;
    return stop_requested != 0;
}

/* --archive: key, chain, archive, then the worker that writes into it. */
static int
setup_archive(struct sensor *s)
{
    struct fl_batcher_opts bo;
    struct fl_chain chain;
    int rc;

    if (opt.archive == NULL) {
        return EXIT_OK;
    }
    rc = load_key(s);
    rc = rc != EXIT_OK ? rc : open_archive(s, &chain);
    if (rc != EXIT_OK) {
        return rc;
    }
    rc = fl_chain_writer_new(s->key, s->archive, opt.state, &chain,
                             (uint32_t)opt.retention, &s->writer);
    if (rc == FL_OK) {
        fl_batcher_opts_default(&bo);
        bo.records = (size_t)opt.batch_records;
        bo.age_ms = opt.batch_age;
        bo.sink = fl_chain_writer_sink;
        bo.sink_arg = s->writer;
        bo.losses = read_losses;
        bo.losses_arg = s;
        bo.stopping = is_stopping;
        rc = fl_batcher_start(&bo, &s->batcher);
    }
    if (rc != FL_OK) {
        return fail(EXIT_RUNTIME, "batcher", fl_strerror(rc));
    }
    fl_log(FL_LOG_NOTICE, "FL-SENSOR-ARCHIVE",
           "archiving archive=%s sensor=%s next_sequence=%llu", opt.archive,
           s->name, (unsigned long long)chain.next_sequence);
    return EXIT_OK;
}

static int
setup(struct sensor *s)
{
    int rc;

    setup_signals();
    rc = setup_name(s);
    rc = rc != EXIT_OK ? rc : setup_output(s);
    rc = rc != EXIT_OK ? rc : setup_decoder(s);
    rc = rc != EXIT_OK ? rc : setup_io(s);
    rc = rc != EXIT_OK ? rc : setup_archive(s);
    return rc;
}

static void
teardown(struct sensor *s)
{
    fl_batcher_free(s->batcher);
    fl_chain_writer_free(s->writer);
    fl_archive_close(s->archive);
    fl_seckey_free(s->key);
    fl_metrics_stop(s->metrics);
    fl_listener_close(s->lis);
    fl_state_close(s->state);
    fl_decoder_free(s->dec);
    fl_str_fini(&s->page);
    if (s->outbuf != NULL) {
        fflush(stdout);
        setvbuf(stdout, NULL, _IOLBF, 0);
        free(s->outbuf);
    }
    fl_config_fini(options);
}

/* ---- periodic work ---------------------------------------------------- */

static void
publish_metrics(struct sensor *s)
{
    struct fl_metrics_extra x = {s->name, 0};
    int rc;

    if (s->metrics == NULL) {
        return;
    }
    x.kernel_drops = s->lis != NULL ? fl_listener_drops(s->lis) : 0;
    rc = fl_metrics_render(s->dec, &x, &s->page);
    if (rc == FL_OK) {
        rc = fl_metrics_publish(s->metrics, s->page.p, s->page.len);
    }
    if (rc != FL_OK) {
        fl_log(FL_LOG_WARN, "FL-SENSOR-METRICS", "metrics not updated: %s",
               fl_strerror(rc));
    }
}

/* Once a second: age held data, refresh metrics, save state every 10 s. */
static void
tick(struct sensor *s, uint64_t mono_ms, uint64_t *next_save_ms)
{
    fl_decoder_expire(s->dec, fl_time_now_ms());
    publish_metrics(s);
    if (!s->flush_batches) {
        flush_output(s);
    }
    if (s->state != NULL && mono_ms >= *next_save_ms) {
        (void)fl_state_save(s->state, s->dec);
        *next_save_ms = mono_ms + SAVE_EVERY_MS;
    }
}

/* SIGHUP: nothing is reloaded (a changed option needs a restart), but
 * the state is saved, so a restart right after loses no template. */
static void
on_hup(struct sensor *s)
{
    hup_requested = 0;
    if (s->state != NULL) {
        (void)fl_state_save(s->state, s->dec);
    }
    fl_log(FL_LOG_NOTICE, "FL-SENSOR-HUP",
           "state saved, configuration not reloaded: restart to change it");
}

/* How long poll may wait: until the tick, or until a batch is due. */
static int
poll_timeout(const struct sensor *s, uint64_t now, uint64_t next_tick)
{
    uint64_t wait = now < next_tick ? next_tick - now : 0;

    if (s->batcher != NULL) {
        uint64_t due = fl_batcher_due(s->batcher);
        uint64_t wall = fl_time_now_ms();
        uint64_t until = due > wall ? due - wall : 0;

        wait = until < wait ? until : wait;
    }
    return (int)wait;
}

static int
run_listen(struct sensor *s)
{
    uint64_t now = fl_time_mono_ms();
    uint64_t next_tick = now + TICK_MS;
    uint64_t next_save = now + SAVE_EVERY_MS;
    int n;

    publish_metrics(s);
    while (!stop_requested && !s->out_failed) {
        now = fl_time_mono_ms();
        n = fl_listener_poll(s->lis, poll_timeout(s, now, next_tick),
                             on_datagram, s);
        if (n < 0) {
            return EXIT_RUNTIME;
        }
        if (s->batcher != NULL) {
            s->now_ms = fl_time_now_ms();
            fl_batcher_tick(s->batcher, s->now_ms);
        }
        if (n > 0 && s->flush_batches) {
            flush_output(s);
        }
        now = fl_time_mono_ms();
        if (now >= next_tick) {
            tick(s, now, &next_save);
            next_tick = now + TICK_MS;
        }
        if (hup_requested) {
            on_hup(s);
        }
    }
    return EXIT_OK;
}

/* --read: capture time stands in for the clock, expiry included. */
static void
on_captured(void *arg, const struct fl_datagram *dg)
{
    struct sensor *s = arg;

    if (stop_requested) {
        return;
    }
    if (dg->time_ms >= s->next_expire_ms) {
        fl_decoder_expire(s->dec, dg->time_ms);
        s->next_expire_ms = dg->time_ms + TICK_MS;
    }
    on_datagram(s, dg);
    if (s->batcher != NULL) {
        fl_batcher_tick(s->batcher, dg->time_ms);
    }
}

static int
run_capture(struct sensor *s)
{
    char err[256] = "";
    int rc;

    rc = fl_pcap_read(opt.read, on_captured, s, &s->pcap, err, sizeof(err));
    flush_output(s);
    if (rc != FL_OK) {
        char what[512];

        snprintf(what, sizeof(what), "read %s", opt.read);
        return fail(EXIT_RUNTIME, what, err);
    }
    return EXIT_OK;
}

/* ---- the summary ------------------------------------------------------ */

static void
log_summary(struct sensor *s)
{
    struct fl_decoder_stats st;
    struct fl_str errs = {0};

    fl_decoder_get_stats(s->dec, &st);
    for (int k = 0; k < FL_DE_COUNT; k++) {
        fl_str_printf(&errs, " error_%s=%llu",
                      fl_decode_error_name((enum fl_decode_error)k),
                      (unsigned long long)st.errors[k]);
    }
    fl_log(FL_LOG_NOTICE, "FL-SENSOR-SUMMARY",
           "datagrams=%llu flows=%llu sources=%u templates=%u pending=%u "
           "seq_gaps=%llu seq_lost=%llu kernel_drops=%llu%s",
           (unsigned long long)st.datagrams, (unsigned long long)st.flows,
           st.sources, st.templates, st.pending,
           (unsigned long long)st.seq_gaps, (unsigned long long)st.seq_lost,
           (unsigned long long)(s->lis != NULL ? fl_listener_drops(s->lis) : 0),
           errs.p != NULL ? errs.p : "");
    fl_str_fini(&errs);
    if (opt.read != NULL) {
        fl_log(FL_LOG_NOTICE, "FL-SENSOR-SUMMARY",
               "capture=%s frames=%llu udp=%llu truncated=%llu malformed=%llu "
               "fragments=%llu not_ip=%llu not_udp=%llu",
               opt.read, (unsigned long long)s->pcap.frames,
               (unsigned long long)s->pcap.datagrams,
               (unsigned long long)s->pcap.skipped[FL_PCAP_TRUNCATED],
               (unsigned long long)s->pcap.skipped[FL_PCAP_MALFORMED],
               (unsigned long long)s->pcap.skipped[FL_PCAP_FRAGMENT],
               (unsigned long long)s->pcap.skipped[FL_PCAP_NOT_IP],
               (unsigned long long)s->pcap.skipped[FL_PCAP_NOT_UDP]);
    }
    if (s->out_failed) {
        fl_log(FL_LOG_ERR, "FL-SENSOR-PRINT", "cannot write flows to stdout");
    }
}

/* Closes the open batch and waits until every batch is stored (or, with
 * the archive still refusing, logged as lost). */
static int
stop_archive(struct sensor *s)
{
    struct fl_batcher_stats st;
    int rc;

    if (s->batcher == NULL) {
        return EXIT_OK;
    }
    rc = fl_batcher_stop(s->batcher,
                         opt.read != NULL ? s->now_ms : fl_time_now_ms());
    fl_batcher_get_stats(s->batcher, &st);
    fl_log(FL_LOG_NOTICE, "FL-SENSOR-SUMMARY",
           "archive=%s batches=%llu heartbeats=%llu flows_archived=%llu "
           "refusals=%llu queue_waits=%llu batches_lost=%llu",
           opt.archive, (unsigned long long)st.batches,
           (unsigned long long)st.heartbeats, (unsigned long long)st.flows,
           (unsigned long long)st.refusals, (unsigned long long)st.waits,
           (unsigned long long)st.lost);
    return rc == FL_OK ? EXIT_OK : EXIT_RUNTIME;
}

int
main(int argc, char **argv)
{
    struct sensor s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = parse_options(&s, argc, argv);
    if (rc >= 0) {
        fl_config_fini(options);
        return rc;
    }
    rc = setup(&s);
    if (rc == EXIT_OK) {
        rc = opt.read != NULL ? run_capture(&s) : run_listen(&s);
        rc = stop_archive(&s) != EXIT_OK ? EXIT_RUNTIME : rc;
        if (s.state != NULL && fl_state_save(s.state, s.dec) != FL_OK) {
            rc = EXIT_RUNTIME;
        }
        flush_output(&s);
        log_summary(&s);
        rc = rc == EXIT_OK && s.out_failed ? EXIT_RUNTIME : rc;
    }
    teardown(&s);
    return rc;
}
