/*
 * Output formats for IPv4 and IPv6 flows (NDJSON byte for byte, a JSON
 * array that parses back, CSV quoting, the aligned table) and the
 * time-ordered, bounded result set the scan threads fill.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

static struct fl_flow
flow_v4(uint64_t start)
{
    struct fl_flow f;

    fl_flow_clear(&f);
    f.time_start = start;
    f.time_end = start + 1500;
    fl_addr_parse("10.0.0.1", &f.src_addr);
    fl_addr_parse("192.0.2.7", &f.dst_addr);
    fl_addr_parse("192.0.2.254", &f.exporter);
    f.src_port = 1234;
    f.dst_port = 443;
    f.proto = 6;
    f.tcp_flags = 0x1b;
    f.packets = 12;
    f.bytes = 1234567;
    f.in_if = 3;
    f.out_if = 4;
    return f;
}

static struct fl_flow
flow_v6(uint64_t start)
{
    struct fl_flow f = flow_v4(start);

    fl_addr_parse("2001:db8:1234:5678:9abc:def0:1234:5678", &f.src_addr);
    fl_addr_parse("2001:db8::1", &f.dst_addr);
    fl_addr_parse("2001:db8::fe", &f.next_hop);
    f.proto = 17;
    f.src_port = 53;
    f.dst_port = 40000;
    f.packets = 3400000000ULL;
    f.bytes = 999;
    return f;
}

/* Runs begin, the flows, end into a string (malloc'd, caller frees). */
static char *
render(enum fl_format fmt, const struct fl_flow *flows, size_t n,
       const char *sensor, bool quiet)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    struct fl_output *o;

    cr_assert_not_null(fp);
    cr_assert_eq(fl_output_new(fp, fmt, 0, quiet, &o), FL_OK);
    for (size_t i = 0; i < n; i++) {
        fl_output_measure(o, &flows[i]);
    }
    cr_assert_eq(fl_output_begin(o), FL_OK);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(fl_output_flow(o, &flows[i], sensor), FL_OK);
    }
    cr_assert_eq(fl_output_end(o), FL_OK);
    fl_output_free(o);
    fclose(fp);
    return buf;
}

/* ---- a tiny JSON checker: enough to prove the array parses ------------- */

struct json {
    const char *p;
    int objects; /* objects directly inside the top-level array */
};

static bool json_value(struct json *j, int depth);

static void
json_ws(struct json *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r') {
        j->p++;
    }
}

static bool
json_string(struct json *j)
{
    if (*j->p++ != '"') {
        return false;
    }
    while (*j->p != '"') {
        if (*j->p == '\0' || (unsigned char)*j->p < 0x20) {
            return false;
        }
        if (*j->p == '\\') {
            j->p++;
            if (strchr("\"\\/bfnrtu", *j->p) == NULL) {
                return false;
            }
        }
        j->p++;
    }
    j->p++;
    return true;
}

static bool
json_number(struct json *j)
{
    const char *start = j->p;

    if (*j->p == '-') {
        j->p++;
    }
    while ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
           *j->p == 'E' || *j->p == '+' || *j->p == '-') {
        j->p++;
    }
    return j->p > start;
}

/* '[' or '{' containers; members separated by commas, none trailing. */
static bool
json_container(struct json *j, char close, int depth)
{
    j->p++;
    json_ws(j);
    if (*j->p == close) {
        j->p++;
        return true;
    }
    for (;;) {
        json_ws(j);
        if (close == '}') {
            if (!json_string(j)) {
                return false;
            }
            json_ws(j);
            if (*j->p++ != ':') {
                return false;
            }
        } else if (depth == 0 && *j->p == '{') {
            j->objects++;
        }
        if (!json_value(j, depth + 1)) {
            return false;
        }
        json_ws(j);
        if (*j->p == close) {
            j->p++;
            return true;
        }
        if (*j->p++ != ',') {
            return false;
        }
    }
}

static bool
json_value(struct json *j, int depth)
{
    json_ws(j);
    switch (*j->p) {
    case '[':
        return json_container(j, ']', depth);
    case '{':
        return json_container(j, '}', depth);
    case '"':
        return json_string(j);
    default:
        return json_number(j);
    }
}

/* True when text is exactly one JSON array (and whitespace); *objects
 * gets how many objects it holds. */
static bool
json_is_array(const char *text, int *objects)
{
    struct json j = {text, 0};

    json_ws(&j);
    if (*j.p != '[' || !json_value(&j, 0)) {
        return false;
    }
    json_ws(&j);
    *objects = j.objects;
    return *j.p == '\0';
}

Test(aggregator_output, the_json_checker_refuses_broken_arrays)
{
    int n;

    cr_assert(json_is_array("[{\"a\":1},{\"b\":\"x\"}]\n", &n));
    cr_assert_eq(n, 2);
    cr_assert_not(json_is_array("[{\"a\":1},]", &n));
    cr_assert_not(json_is_array("[{\"a\":1}", &n));
    cr_assert_not(json_is_array("[{\"a\":1}]]", &n));
    cr_assert_not(json_is_array("{\"a\":1}", &n));
}

/* ---- formats ----------------------------------------------------------- */

Test(aggregator_output, ndjson_is_the_flow_formatter_byte_for_byte)
{
    struct fl_flow flows[2] = {flow_v4(1700000000123ULL),
                               flow_v6(1700000001000ULL)};
    char want[2 * FL_FLOW_NDJSON_MAX];
    char *got = render(FL_FORMAT_NDJSON, flows, 2, "edge-1", false);
    int a = fl_flow_format_ndjson(&flows[0], "edge-1", want, sizeof(want));
    int b = fl_flow_format_ndjson(&flows[1], "edge-1", want + a,
                                  sizeof(want) - (size_t)a);

    cr_assert_gt(a, 0);
    cr_assert_gt(b, 0);
    cr_assert_str_eq(got, want);
    cr_assert_not_null(strstr(got, "\"src_addr\":\"2001:db8:1234:5678:"));
    free(got);
}

Test(aggregator_output, json_is_one_array_of_the_ndjson_objects)
{
    struct fl_flow flows[3] = {flow_v4(1000), flow_v6(2000), flow_v4(3000)};
    char line[FL_FLOW_NDJSON_MAX];
    char *got = render(FL_FORMAT_JSON, flows, 3, "edge-1", false);
    int objects = 0;

    cr_assert(json_is_array(got, &objects), "not a JSON array:\n%s", got);
    cr_assert_eq(objects, 3);
    for (size_t i = 0; i < 3; i++) {
        int n = fl_flow_format_ndjson(&flows[i], "edge-1", line, sizeof(line));

        line[n - 1] = '\0'; /* the object without its newline */
        cr_assert_not_null(strstr(got, line), "object %zu missing", i);
    }
    free(got);

    got = render(FL_FORMAT_JSON, flows, 0, NULL, false);
    cr_assert_str_eq(got, "[]\n");
    cr_assert(json_is_array(got, &objects));
    cr_assert_eq(objects, 0);
    free(got);
}

Test(aggregator_output, json_stays_valid_when_closed_after_a_failure)
{
    struct fl_flow f = flow_v6(5);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    struct fl_output *o;
    int objects;

    cr_assert_eq(fl_output_new(fp, FL_FORMAT_JSON, 0, false, &o), FL_OK);
    cr_assert_eq(fl_output_begin(o), FL_OK);
    cr_assert_eq(fl_output_flow(o, &f, "s"), FL_OK);
    /* The query fails here: the caller closes the document anyway. */
    cr_assert_eq(fl_output_end(o), FL_OK);
    fl_output_free(o);
    fclose(fp);
    cr_assert(json_is_array(buf, &objects), "%s", buf);
    cr_assert_eq(objects, 1);
    free(buf);
}

static size_t
count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        n += *s == c;
    }
    return n;
}

/* Occurrences of c before the end of the first line of s. */
static size_t
count_line(const char *s, char c)
{
    size_t n = 0;

    for (; *s != '\0' && *s != '\n'; s++) {
        n += *s == c;
    }
    return n;
}

Test(aggregator_output, csv_has_the_design_names_and_one_row_a_flow)
{
    struct fl_flow flows[2] = {flow_v4(1700000000123ULL),
                               flow_v6(1700000001000ULL)};
    char *got = render(FL_FORMAT_CSV, flows, 2, "edge-1", false);
    char *row1 = strchr(got, '\n') + 1;
    char *row2 = strchr(row1, '\n') + 1;

    cr_assert(strncmp(got,
                      "time_start,time_end,src_addr,dst_addr,src_port,"
                      "dst_port,proto,tcp_flags,tos,packets,bytes,",
                      90) == 0,
              "%s", got);
    cr_assert_eq(count_char(got, '\n'), 3);
    /* Every line has the header's 23 fields. */
    cr_assert_eq(count_line(got, ','), 22);
    cr_assert_eq(count_line(row1, ','), 22);
    cr_assert_eq(count_line(row2, ','), 22);
    const char *want1 = "2023-11-14T22:13:20.123Z,2023-11-14T22:13:21.623Z,"
                        "10.0.0.1,192.0.2.7,1234,443,6,27,0,12,1234567,3,4,"
                        "0,0,,0,0,0,192.0.2.254,0,1,edge-1\n";
    cr_assert(strncmp(row1, want1, strlen(want1)) == 0, "%s", row1);
    cr_assert_not_null(strstr(row2, ",2001:db8::fe,"), "%s", row2);
    cr_assert_not_null(
        strstr(row2, "2001:db8:1234:5678:9abc:def0:1234:5678,2001:db8::1,53,"),
        "%s", row2);
    free(got);
}

Test(aggregator_output, csv_quotes_fields_as_rfc_4180_says)
{
    struct fl_flow f = flow_v4(0);
    char *got = render(FL_FORMAT_CSV, &f, 1, "a,\"b\"\nc", false);
    const char *tail = "\"a,\"\"b\"\"\nc\"\n";
    size_t n = strlen(got);

    cr_assert_geq(n, strlen(tail));
    cr_assert_str_eq(got + n - strlen(tail), tail, "%s", got);
    free(got);

    got = render(FL_FORMAT_CSV, &f, 1, "plain", false);
    cr_assert_not_null(strstr(got, ",plain\n"));
    free(got);
}

/* Column where needle starts on the line'th line (0-based). */
static long
column_of(const char *text, int line, const char *needle)
{
    const char *p = text;

    for (int i = 0; i < line; i++) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    const char *hit = strstr(p, needle);
    const char *eol = strchr(p, '\n');

    cr_assert(hit != NULL && (eol == NULL || hit <= eol), "no '%s' on line %d",
              needle, line);
    return (long)(hit - p);
}

Test(aggregator_output, table_aligns_columns_with_human_units)
{
    struct fl_flow flows[2] = {flow_v4(1700000000123ULL),
                               flow_v6(1700000001000ULL)};
    char *got = render(FL_FORMAT_TABLE, flows, 2, "edge-1", false);

    cr_assert(strncmp(got, "Date first seen", 15) == 0, "%s", got);
    cr_assert_not_null(strstr(got, "Src IP Addr:Port"));
    cr_assert_not_null(strstr(got, "Dst IP Addr:Port"));
    cr_assert_not_null(strstr(got, "2023-11-14 22:13:20.123     1.500 TCP"),
                       "%s", got);
    cr_assert_not_null(strstr(got, "10.0.0.1:1234 -> 192.0.2.7:443"), "%s",
                       got);
    cr_assert_not_null(strstr(got, "2001:db8::1.40000"), "%s", got);
    cr_assert_not_null(strstr(got, " 1.2 M "), "%s", got);
    cr_assert_not_null(strstr(got, " 3.4 G "), "%s", got);
    /* The arrows line up although the IPv6 address is longer. */
    cr_assert_eq(column_of(got, 1, "->"), column_of(got, 2, "->"), "%s", got);
    /* Every line of the table has the header's width. */
    cr_assert_eq(column_of(got, 0, "\n"), column_of(got, 1, "\n"), "%s", got);
    cr_assert_eq(column_of(got, 0, "\n"), column_of(got, 2, "\n"), "%s", got);
    cr_assert_not_null(
        strstr(got, "Summary: total flows: 2, total bytes: 1.2 M, total "
                    "packets: 3.4 G\n"),
        "%s", got);
    free(got);

    got = render(FL_FORMAT_TABLE, flows, 1, NULL, true);
    cr_assert(strncmp(got, "2023-11-14 22:13:20.123", 23) == 0, "%s", got);
    cr_assert_eq(count_char(got, '\n'), 1, "quiet: one line, %s", got);
    free(got);
}

Test(aggregator_output, human_units_follow_nfdump)
{
    static const struct {
        uint64_t v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {999, "999"},
        {999999, "999999"},
        {1000000, "1.0 M"},
        {1234567, "1.2 M"},
        {3400000000ULL, "3.4 G"},
        {5600000000000ULL, "5.6 T"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_output_human(cases[i].v, buf);
        cr_expect_str_eq(buf, cases[i].text);
    }
}

Test(aggregator_output, parses_format_names)
{
    enum fl_format f;

    cr_assert_eq(fl_format_parse("csv", &f), FL_OK);
    cr_assert_eq(f, FL_FORMAT_CSV);
    cr_assert_eq(fl_format_parse("JSON", &f), FL_OK);
    cr_assert_eq(f, FL_FORMAT_JSON);
    cr_assert_eq(fl_format_parse("ndjson", &f), FL_OK);
    cr_assert_eq(f, FL_FORMAT_NDJSON);
    cr_assert_eq(fl_format_parse("table", &f), FL_OK);
    cr_assert_eq(f, FL_FORMAT_TABLE);
    cr_assert_eq(fl_format_parse("xml", &f), FL_EINVAL);
}

/* ---- result sets ------------------------------------------------------- */

Test(aggregator_output, a_limit_keeps_the_earliest_flows_in_order)
{
    enum { N = 20000, LIMIT = 100 };
    static uint64_t starts[N];
    struct fl_rows *r;
    const struct fl_row *v;
    size_t n;

    srandom(3);
    cr_assert_eq(fl_rows_new(LIMIT, 1000, &r), FL_OK);
    for (size_t i = 0; i < N; i++) {
        struct fl_flow f = flow_v4((uint64_t)random() % 1000000);

        starts[i] = f.time_start;
        cr_assert_eq(fl_rows_add(r, &f, "s"), FL_OK);
    }
    cr_assert_eq(fl_rows_status(r), FL_OK);
    v = fl_rows_sorted(r, &n);
    cr_assert_eq(n, LIMIT);
    /* Compare with a brute-force answer: the LIMIT smallest starts. */
    for (size_t i = 0; i < LIMIT; i++) {
        size_t smaller = 0;

        for (size_t k = 0; k < N; k++) {
            smaller += starts[k] < v[i].flow.time_start;
        }
        cr_assert_leq(smaller, i, "row %zu is not among the first", i);
        if (i > 0) {
            cr_assert_leq(v[i - 1].flow.time_start, v[i].flow.time_start);
        }
    }
    fl_rows_free(r);
}

Test(aggregator_output, without_a_limit_the_set_fails_past_its_ceiling)
{
    struct fl_rows *r;
    struct fl_flow f = flow_v4(1);
    size_t n;

    cr_assert_eq(fl_rows_new(0, 3, &r), FL_OK);
    for (int i = 0; i < 3; i++) {
        f.time_start = (uint64_t)(10 - i);
        cr_assert_eq(fl_rows_add(r, &f, "s"), FL_OK);
    }
    cr_assert_eq(fl_rows_add(r, &f, "s"), FL_ELIMIT);
    cr_assert_eq(fl_rows_status(r), FL_ELIMIT);
    const struct fl_row *v = fl_rows_sorted(r, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(v[0].flow.time_start, 8);
    cr_assert_eq(v[2].flow.time_start, 10);
    fl_rows_free(r);
}

Test(aggregator_output, rows_keep_their_own_copy_of_extra_bytes)
{
    struct fl_rows *r;
    struct fl_flow f = flow_v4(1);
    uint8_t extra[] = {0, 0, 0, 9, 0, 1, 0, 2, 0xab, 0xcd};
    size_t n;

    f.extra = extra;
    f.extra_len = sizeof(extra);
    cr_assert_eq(fl_rows_new(0, 10, &r), FL_OK);
    cr_assert_eq(fl_rows_add(r, &f, "s"), FL_OK);
    memset(extra, 0, sizeof(extra)); /* the scan reuses its buffer */
    const struct fl_row *v = fl_rows_sorted(r, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(v[0].flow.extra_len, 10);
    cr_assert_eq(v[0].flow.extra[8], 0xab);
    cr_assert_str_eq(v[0].sensor, "s");
    fl_rows_free(r);
}

struct adder {
    struct fl_rows *r;
    unsigned seed;
};

static void *
add_many(void *arg)
{
    struct adder *a = arg;

    for (int i = 0; i < 5000; i++) {
        struct fl_flow f = flow_v4(rand_r(&a->seed) % 100000);

        if (fl_rows_add(a->r, &f, "t") != FL_OK) {
            return (void *)1;
        }
    }
    return NULL;
}

Test(aggregator_output, threads_may_add_at_once)
{
    struct adder a[4];
    pthread_t t[4];
    struct fl_rows *r;
    size_t n;

    cr_assert_eq(fl_rows_new(0, 100000, &r), FL_OK);
    for (int i = 0; i < 4; i++) {
        a[i] = (struct adder){r, (unsigned)i + 1};
        pthread_create(&t[i], NULL, add_many, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *res;

        pthread_join(t[i], &res);
        cr_assert_null(res);
    }
    const struct fl_row *v = fl_rows_sorted(r, &n);
    cr_assert_eq(n, 20000);
    for (size_t i = 1; i < n; i++) {
        cr_assert_leq(fl_row_cmp(&v[i - 1], &v[i]), 0);
    }
    fl_rows_free(r);
}
