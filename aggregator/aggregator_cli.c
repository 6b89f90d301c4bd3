/*
 * fl0wer: the analyst's command.  keygen makes a sensor key pair, fsck
 * checks an archive, query scans one with an nfdump filter and prints the
 * matching flows in time order.  Each subcommand is an option table and a
 * short sequence of named steps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator.h"

#define PROG "fl0wer"

/* Exit codes, as DESIGN.md gives them to every command. */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define DEFAULT_MAX_ROWS 10000000ULL

static void die_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "fl0wer: what: why" on stderr. */
static void
say(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: %s: ", PROG, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
die_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: %s: ", PROG, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s %s --help)\n", PROG, cmd);
    exit(EXIT_USAGE);
}

/* Library logs (recovery, corrupt blocks, fsck findings) in the
 * command's own voice. */
static void
log_sink(void *arg, enum fl_log_level level, const char *id, const char *msg)
{
    (void)arg;
    fprintf(stderr, "%s: %s%s: %s\n", PROG,
            level <= FL_LOG_WARN ? "warning: " : "", id, msg);
}

/*
 * Parses a subcommand's argv (argv[0] is its name) against opts; prints
 * usage and exits 0 on --help, exits 2 on a usage error.
 */
static void
parse_args(const struct fl_opt *opts, const char *cmd, const char *synopsis,
           int argc, char **argv, struct fl_strlist *rest)
{
    char err[256];
    char prog[64];
    int rc;

    snprintf(prog, sizeof(prog), "%s %s", PROG, cmd);
    rc = fl_config_parse(opts, argc, argv, prog, rest, err, sizeof(err));
    if (rc == FL_ENOENT) {
        fl_config_usage(opts, prog, synopsis, stdout);
        exit(EXIT_OK);
    }
    if (rc != FL_OK) {
        die_usage(cmd, "%s", rc == FL_EINVAL ? err : fl_strerror(rc));
    }
}

/* ---- keygen ------------------------------------------------------------ */

static int
cmd_keygen(int argc, char **argv)
{
    char *dir = NULL;
    const struct fl_opt opts[] = {
        {"dir", 'o', FL_OPT_STR, &dir, "DIR",
         "write NAME.key and NAME.pub in DIR (default .)"},
        {NULL, 0, FL_OPT_STR, NULL, NULL, NULL},
    };
    struct fl_strlist rest = {NULL, 0};
    struct fl_pubkey pub;
    char path[4096];
    char err[256];
    char hex[2 * FL_KEYID_LEN + 1];
    const char *d;
    int status = EXIT_RUNTIME;
    int rc;

    parse_args(opts, "keygen", "NAME [-o DIR]", argc, argv, &rest);
    if (rest.n != 1) {
        die_usage("keygen", "expected one key name");
    }
    if (!fl_name_is_valid(rest.v[0])) {
        die_usage("keygen", "%s: a name is 1-64 of A-Z a-z 0-9 . _ -",
                  rest.v[0]);
    }
    d = dir != NULL ? dir : ".";
    /* A missing key directory is made private, as a key's home should be. */
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        say("keygen", "%s: %s", d, strerror(errno));
        goto out;
    }

    rc = fl_key_generate(rest.v[0], d, err, sizeof(err));
    if (rc != FL_OK) {
        say("keygen", "%s", err[0] != '\0' ? err : fl_strerror(rc));
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s.pub", d, rest.v[0]);
    rc = fl_pubkey_load(path, &pub, err, sizeof(err));
    if (rc != FL_OK) {
        say("keygen", "%s: %s", path, err[0] != '\0' ? err : fl_strerror(rc));
        goto out;
    }
    fl_hex(pub.id, FL_KEYID_LEN, hex);
    printf("secret key: %s/%s.key\npublic key: %s\nkey id: %s\n", d, rest.v[0],
           path, hex);
    status = EXIT_OK;
out:
    fl_strlist_fini(&rest);
    fl_config_fini(opts);
    return status;
}

/* ---- fsck -------------------------------------------------------------- */

static void
print_report(const struct fl_fsck_report *r, bool keys)
{
    printf("segments %llu\nblocks %llu\nbatches %llu\nrecords %llu\n"
           "bad_checksums %llu\nbad_signatures %llu\nunknown_keys %llu\n"
           "torn_tails %llu\n",
           (unsigned long long)r->segments, (unsigned long long)r->blocks,
           (unsigned long long)r->batches, (unsigned long long)r->records,
           (unsigned long long)r->bad_checksums,
           (unsigned long long)r->bad_signatures,
           (unsigned long long)r->unknown_keys,
           (unsigned long long)r->torn_tails);
    if (!keys) {
        printf("signatures not checked (no --keys)\n");
    }
}

static int
cmd_fsck(int argc, char **argv)
{
    char *archive = NULL;
    char *keys = NULL;
    const struct fl_opt opts[] = {
        {"archive", 0, FL_OPT_STR, &archive, "DIR", "the archive to check"},
        {"keys", 0, FL_OPT_STR, &keys, "DIR",
         "sensors' NAME.pub files (default: checksums only)"},
        {NULL, 0, FL_OPT_STR, NULL, NULL, NULL},
    };
    struct fl_strlist rest = {NULL, 0};
    struct fl_fsck_report r;
    int rc;

    parse_args(opts, "fsck", "--archive DIR [--keys DIR]", argc, argv, &rest);
    if (archive == NULL) {
        die_usage("fsck", "--archive DIR is required");
    }
    if (rest.n != 0) {
        die_usage("fsck", "unexpected argument %s", rest.v[0]);
    }
    memset(&r, 0, sizeof(r));
    rc = fl_archive_fsck(archive, keys, &r);
    if (rc != FL_OK && rc != FL_EFORMAT) {
        say("fsck", "%s: %s", archive, fl_strerror(rc));
        goto out;
    }
    print_report(&r, keys != NULL);
    if (rc == FL_EFORMAT) {
        say("fsck", "%s: damage found (details above)", archive);
    }
out:
    fl_strlist_fini(&rest);
    fl_config_fini(opts);
    return rc == FL_OK ? EXIT_OK : EXIT_RUNTIME;
}

/* ---- query ------------------------------------------------------------- */

static struct {
    char *archive;
    struct fl_strlist aggregators;
    char *window;
    char *format;
    uint64_t count;
    bool quiet;
    char *filter_file;
    char *tz;
    uint64_t max_rows;
    bool no_index;
} q;

static const struct fl_opt query_opts[] = {
    {"archive", 0, FL_OPT_STR, &q.archive, "DIR", "read this archive"},
    {"aggregator", 'A', FL_OPT_LIST, &q.aggregators, "URL",
     "ask aggregators (not supported yet)"},
    {"window", 't', FL_OPT_STR, &q.window, "WINDOW",
     "YYYY/MM/dd.hh:mm:ss[-...] or -1h, -30d"},
    {"output", 'o', FL_OPT_STR, &q.format, "FORMAT",
     "table, csv, ndjson or json (default: table on a terminal, else ndjson)"},
    {"count", 'c', FL_OPT_U64, &q.count, "N", "only the first N flows by time"},
    {"quiet", 'q', FL_OPT_BOOL, &q.quiet, NULL,
     "no summary on stderr, no table header"},
    {"filter-file", 'f', FL_OPT_STR, &q.filter_file, "FILE",
     "read the filter from FILE ('#' starts a comment)"},
    {"tz", 0, FL_OPT_STR, &q.tz, "ZONE",
     "read and print dates in UTC or +HH:MM (default UTC)"},
    {"max-rows", 0, FL_OPT_U64, &q.max_rows, "N",
     "flows held in memory for sorting (default 10M)"},
    {"no-index", 0, FL_OPT_BOOL, &q.no_index, NULL,
     "read every block in the window (check the index)"},
    {NULL, 0, FL_OPT_STR, NULL, NULL, NULL},
};

#define QUERY_SYNOPSIS                                                         \
    "--archive DIR [-t WINDOW] [-o FORMAT] [-c N] [-q] [FILTER... | -f FILE]"

/* Reads a filter file, comments dropped, lines joined with spaces. */
static char *
read_filter_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    struct fl_str s = {NULL, 0, 0};
    char line[4096];
    bool ok = fp != NULL;

    while (ok && fgets(line, sizeof(line), fp) != NULL) {
        line[strcspn(line, "#\r\n")] = '\0';
        ok = fl_str_printf(&s, "%s ", line) == FL_OK &&
             s.len <= FL_FILTER_MAX_TEXT;
    }
    if (fp != NULL && ferror(fp)) {
        ok = false;
    }
    if (fp != NULL) {
        fclose(fp);
    }
    if (!ok) {
        fl_str_fini(&s);
        return NULL;
    }
    return s.p != NULL ? s.p : strdup("");
}

/* The filter text: the rest of the arguments joined, or -f FILE. */
static char *
filter_text(const struct fl_strlist *rest)
{
    struct fl_str s = {NULL, 0, 0};
    char *text;

    if (q.filter_file != NULL) {
        if (rest->n > 0) {
            die_usage("query", "a filter on the command line and -f FILE");
        }
        text = read_filter_file(q.filter_file);
        if (text == NULL) {
            say("query", "%s: %s", q.filter_file,
                errno != 0 ? strerror(errno) : "too long");
        }
        return text;
    }
    for (size_t i = 0; i < rest->n; i++) {
        if (fl_str_printf(&s, "%s%s", i > 0 ? " " : "", rest->v[i]) != FL_OK) {
            fl_str_fini(&s);
            return NULL;
        }
    }
    return s.p != NULL ? s.p : strdup("");
}

/* Called by every scan thread: the set locks what it shares. */
static bool
on_match(void *arg, const struct fl_flow *f, const char *sensor)
{
    return fl_rows_add(arg, f, sensor) == FL_OK;
}

static bool
on_filter(void *arg, const struct fl_flow *f, const char *sensor)
{
    return fl_filter_match(arg, f, sensor);
}

/* Validates the query options into window, format and zone. */
static void
query_options(struct fl_window *w, enum fl_format *fmt, int32_t *tz)
{
    char err[256];

    if (q.aggregators.n > 0) {
        die_usage("query", "-A URL: querying aggregators is not supported "
                           "yet; use --archive DIR");
    }
    if (q.archive == NULL) {
        die_usage("query", "--archive DIR is required");
    }
    *tz = 0;
    if (q.tz != NULL && fl_window_parse_tz(q.tz, tz) != FL_OK) {
        die_usage("query", "--tz %s: expected UTC or an offset like +02:00",
                  q.tz);
    }
    w->start = 0;
    w->end = UINT64_MAX;
    if (q.window != NULL && fl_window_parse(q.window, fl_time_now_ms(), *tz, w,
                                            err, sizeof(err)) != FL_OK) {
        die_usage("query", "-t: %s", err);
    }
    *fmt = isatty(STDOUT_FILENO) ? FL_FORMAT_TABLE : FL_FORMAT_NDJSON;
    if (q.format != NULL && fl_format_parse(q.format, fmt) != FL_OK) {
        die_usage("query", "-o %s: expected table, csv, ndjson or json",
                  q.format);
    }
    if (q.max_rows == 0 || (q.count > 0 && q.count > q.max_rows)) {
        die_usage("query", "-c N must not exceed --max-rows (%llu)",
                  (unsigned long long)q.max_rows);
    }
}

/* Prints the gathered rows, in time order, as one complete document. */
static int
print_rows(struct fl_rows *rows, enum fl_format fmt, int32_t tz)
{
    struct fl_output *o;
    const struct fl_row *v;
    size_t n;
    int rc;

    rc = fl_output_new(stdout, fmt, tz, q.quiet, &o);
    if (rc != FL_OK) {
        return rc;
    }
    v = fl_rows_sorted(rows, &n);
    for (size_t i = 0; i < n; i++) {
        fl_output_measure(o, &v[i].flow);
    }
    rc = fl_output_begin(o);
    for (size_t i = 0; i < n && rc == FL_OK; i++) {
        rc = fl_output_flow(o, &v[i].flow, v[i].sensor);
    }
    /* Closed even after a failure, so a json array stays valid. */
    if (fl_output_end(o) != FL_OK && rc == FL_OK) {
        rc = FL_EIO;
    }
    fl_output_free(o);
    return rc;
}

static void
print_summary(const struct fl_scan_stats *st, uint64_t ms, size_t nneeds)
{
    fprintf(stderr, "%s: %llu flows matched", PROG,
            (unsigned long long)st->matched);
    if (q.count > 0 && st->matched > q.count) {
        fprintf(stderr, " (the first %llu printed)",
                (unsigned long long)q.count);
    }
    fprintf(
        stderr,
        "; %llu blocks in the window, %llu pruned "
        "by the index%s, %llu read, %llu records decoded",
        (unsigned long long)st->blocks, (unsigned long long)st->blocks_pruned,
        nneeds == 0 ? " (no address in the filter)" : "",
        (unsigned long long)st->blocks_read, (unsigned long long)st->records);
    if (st->blocks_corrupt > 0) {
        fprintf(stderr, ", %llu corrupt blocks skipped",
                (unsigned long long)st->blocks_corrupt);
    }
    fprintf(stderr, "; %llu.%03llu s\n", (unsigned long long)(ms / 1000),
            (unsigned long long)(ms % 1000));
}

/* Opens the archive and runs the scan into rows. */
static int
run_scan(const struct fl_window *w, struct fl_filter *filter,
         struct fl_rows *rows, struct fl_scan_stats *st)
{
    struct fl_archive_opts ao;
    struct fl_archive *a = NULL;
    struct fl_scan scan;
    char err[512];
    int rc;

    fl_archive_opts_default(&ao);
    ao.read_only = true;
    rc = fl_archive_open(q.archive, &ao, &a, err, sizeof(err));
    if (rc != FL_OK) {
        say("query", "%s: %s", q.archive,
            err[0] != '\0' ? err : fl_strerror(rc));
        return rc;
    }
    memset(&scan, 0, sizeof(scan));
    scan.t_start = w->start;
    scan.t_end = w->end;
    fl_filter_needs(filter, &scan.needs, &scan.nneeds);
    scan.no_index = q.no_index;
    scan.match = on_filter;
    scan.match_arg = filter;
    scan.emit = on_match;
    scan.emit_arg = rows;
    rc = fl_archive_scan(a, &scan, st);
    if (rc != FL_OK) {
        say("query", "%s: scan failed: %s", q.archive, fl_strerror(rc));
    }
    fl_archive_close(a);
    return rc;
}

/* Turns what the scan left behind into the query's verdict: a result is
 * a failure when it may be incomplete. */
static int
check_result(int rc, struct fl_rows *rows, const struct fl_scan_stats *st)
{
    if (rc == FL_OK && st->blocks_corrupt > 0) {
        say("query",
            "%llu corrupt blocks skipped: the result may be incomplete "
            "(see fl0wer fsck)",
            (unsigned long long)st->blocks_corrupt);
        rc = FL_EFORMAT;
    }
    if (fl_rows_status(rows) == FL_ELIMIT) {
        /* TODO(#5): stream a k-way merge of time-ordered shard scans
         * instead of holding every match in memory for sorting. */
        say("query",
            "more than %llu flows match: narrow the filter or window, "
            "use -c N, or raise --max-rows (results are incomplete)",
            (unsigned long long)q.max_rows);
        rc = FL_ELIMIT;
    } else if (fl_rows_status(rows) != FL_OK) {
        say("query", "%s (results are incomplete)",
            fl_strerror(fl_rows_status(rows)));
        rc = fl_rows_status(rows);
    }
    return rc;
}

static int
cmd_query(int argc, char **argv)
{
    struct fl_strlist rest = {NULL, 0};
    struct fl_filter *filter = NULL;
    struct fl_rows *rows = NULL;
    struct fl_scan_stats st;
    struct fl_window w;
    enum fl_format fmt;
    int32_t tz;
    char *text = NULL;
    char err[256];
    size_t col;
    uint64_t t0 = fl_time_mono_ms();
    int status = EXIT_RUNTIME;
    int rc;

    /* Options and filter: every mistake here is a usage error. */
    q.max_rows = DEFAULT_MAX_ROWS;
    parse_args(query_opts, "query", QUERY_SYNOPSIS, argc, argv, &rest);
    query_options(&w, &fmt, &tz);
    text = filter_text(&rest);
    if (text == NULL) {
        goto out;
    }
    rc = fl_filter_parse(text, &filter, err, sizeof(err), &col);
    if (rc != FL_OK) {
        say("filter", "%s", err[0] != '\0' ? err : fl_strerror(rc));
        status = EXIT_USAGE;
        goto out;
    }

    /* Scan, then print what was gathered even when the scan failed. */
    if (fl_rows_new(q.count, q.max_rows, &rows) != FL_OK) {
        say("query", "%s", fl_strerror(FL_ENOMEM));
        goto out;
    }
    memset(&st, 0, sizeof(st));
    rc = run_scan(&w, filter, rows, &st);
    rc = check_result(rc, rows, &st);
    if (print_rows(rows, fmt, tz) != FL_OK) {
        say("query", "writing the output: %s", strerror(errno));
        rc = FL_EIO;
    }
    if (!q.quiet && (rc == FL_OK || st.blocks > 0)) {
        const struct fl_scan_need *needs;
        size_t nneeds;

        fl_filter_needs(filter, &needs, &nneeds);
        print_summary(&st, fl_time_mono_ms() - t0, nneeds);
    }
    status = rc == FL_OK ? EXIT_OK : EXIT_RUNTIME;
out:
    free(text);
    fl_filter_free(filter);
    fl_rows_free(rows);
    fl_strlist_fini(&rest);
    fl_config_fini(query_opts);
    return status;
}

/* ---- main -------------------------------------------------------------- */

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: %s COMMAND [OPTION]... (COMMAND --help for its options)\n"
            "\n"
            "  keygen NAME [-o DIR]          make a sensor key pair\n"
            "  fsck --archive DIR [--keys DIR]\n"
            "                                check checksums and signatures\n"
            "  query --archive DIR [-t WINDOW] [-o FORMAT] [-c N] [FILTER]\n"
            "                                print the flows that match\n",
            PROG);
}

int
main(int argc, char **argv)
{
    static const char *later[] = {"stats", "match", "export", "verify"};

    fl_log_set_sink(log_sink, NULL);
    fl_log_set_level(FL_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "keygen") == 0) {
        return cmd_keygen(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "fsck") == 0) {
        return cmd_fsck(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "query") == 0) {
        return cmd_query(argc - 1, argv + 1);
    }
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        if (strcmp(argv[1], later[i]) == 0) {
            say(argv[1], "not built yet");
            return EXIT_USAGE;
        }
    }
    fprintf(stderr, "%s: %s: unknown command\n", PROG, argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
