/*
 * Logging, the rate limiter, error texts and the growable string: a sink
 * installed here records what reaches it, and the limiter is driven with
 * a clock the test controls.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- logging -------------------------------------------------------- */

#define MAX_SEEN 8

struct seen {
    int n;
    void *arg;
    enum fl_log_level level[MAX_SEEN];
    char id[MAX_SEEN][64];
    char msg[MAX_SEEN][2048];
};

static struct seen seen;
static int evaluated;

static void
capture(void *arg, enum fl_log_level level, const char *id, const char *msg)
{
    cr_assert_lt(seen.n, MAX_SEEN);
    seen.arg = arg;
    seen.level[seen.n] = level;
    snprintf(seen.id[seen.n], sizeof(seen.id[0]), "%s", id);
    snprintf(seen.msg[seen.n], sizeof(seen.msg[0]), "%s", msg);
    seen.n++;
}

/* An argument with a side effect, to see whether it was evaluated. */
static int
count_evaluation(void)
{
    return ++evaluated;
}

Test(common_log, sink_receives_level_id_and_message)
{
    int token;

    fl_log_set_sink(capture, &token);
    fl_log_set_level(FL_LOG_DEBUG);
    fl_log(FL_LOG_WARN, "FL-TEST-TEMPLATE", "exporter=%s domain=%u",
           "192.0.2.1:2055", 7u);
    fl_log(FL_LOG_DEBUG, "FL-TEST-DEBUG", "plain");

    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.arg, &token);
    cr_assert_eq(seen.level[0], FL_LOG_WARN);
    cr_assert_str_eq(seen.id[0], "FL-TEST-TEMPLATE");
    cr_assert_str_eq(seen.msg[0], "exporter=192.0.2.1:2055 domain=7");
    cr_assert_eq(seen.level[1], FL_LOG_DEBUG);
    cr_assert_str_eq(seen.id[1], "FL-TEST-DEBUG");
    cr_assert_str_eq(seen.msg[1], "plain");
}

Test(common_log, threshold_drops_messages_without_evaluating_arguments)
{
    fl_log_set_sink(capture, NULL);
    fl_log_set_level(FL_LOG_WARN);

    fl_log(FL_LOG_INFO, "FL-TEST-DROP", "n=%d", count_evaluation());
    fl_log(FL_LOG_DEBUG, "FL-TEST-DROP", "n=%d", count_evaluation());
    fl_log(FL_LOG_NOTICE, "FL-TEST-DROP", "n=%d", count_evaluation());
    cr_assert_eq(seen.n, 0);
    cr_assert_eq(evaluated, 0, "arguments of dropped messages were run");

    /* At and below the threshold, messages pass and arguments run once. */
    fl_log(FL_LOG_WARN, "FL-TEST-KEEP", "n=%d", count_evaluation());
    fl_log(FL_LOG_ERR, "FL-TEST-KEEP", "n=%d", count_evaluation());
    cr_assert_eq(evaluated, 2);
    cr_assert_eq(seen.n, 2);
    cr_assert_str_eq(seen.msg[0], "n=1");
    cr_assert_str_eq(seen.msg[1], "n=2");
}

Test(common_log, enabled_follows_the_threshold)
{
    fl_log_set_level(FL_LOG_NOTICE);
    cr_assert(fl_log_enabled(FL_LOG_ERR));
    cr_assert(fl_log_enabled(FL_LOG_WARN));
    cr_assert(fl_log_enabled(FL_LOG_NOTICE));
    cr_assert(!fl_log_enabled(FL_LOG_INFO));
    cr_assert(!fl_log_enabled(FL_LOG_DEBUG));
    fl_log_set_level(FL_LOG_ERR);
    cr_assert(fl_log_enabled(FL_LOG_ERR));
    cr_assert(!fl_log_enabled(FL_LOG_WARN));
}

Test(common_log, default_level_passes_info_and_drops_debug)
{
    cr_assert(fl_log_enabled(FL_LOG_INFO));
    cr_assert(!fl_log_enabled(FL_LOG_DEBUG));
}

Test(common_log, a_long_message_is_cut_not_dropped)
{
    char big[1500];

    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fl_log_set_sink(capture, NULL);
    fl_log(FL_LOG_ERR, "FL-TEST-LONG", "%s", big);
    cr_assert_eq(seen.n, 1);
    cr_assert_gt(strlen(seen.msg[0]), 512);
    cr_assert_lt(strlen(seen.msg[0]), sizeof(big) - 1);
    cr_assert_eq(strncmp(seen.msg[0], big, strlen(seen.msg[0])), 0);
}

Test(common_log, default_sink_writes_syslog_prefixed_lines_to_stderr,
     .init = cr_redirect_stderr)
{
    fl_log_set_sink(capture, NULL);
    fl_log_set_sink(NULL, NULL); /* back to the default */
    fl_log(FL_LOG_WARN, "FL-TEST-STDERR", "key=%d", 42);
    fl_log(FL_LOG_ERR, "FL-TEST-STDERR", "second");
    fflush(stderr);
    cr_assert_stderr_eq_str("<4>FL-TEST-STDERR: key=42\n"
                            "<3>FL-TEST-STDERR: second\n");
    cr_assert_eq(seen.n, 0);
}

/* ---- rate limiting -------------------------------------------------- */

Test(common_log, ratelimit_allows_a_burst_then_suppresses)
{
    struct fl_ratelimit rl;
    uint64_t suppressed = 99;

    fl_ratelimit_init(&rl, 1000, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert(fl_ratelimit_pass(&rl, 0, &suppressed), "message %d", i);
        cr_assert_eq(suppressed, 0);
    }
    cr_assert(!fl_ratelimit_pass(&rl, 0, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, 500, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, 999, &suppressed));
    cr_assert_eq(rl.suppressed, 3);
}

Test(common_log, ratelimit_refills_one_token_per_interval)
{
    struct fl_ratelimit rl;
    uint64_t suppressed = 99;
    uint64_t t = 1000000; /* a monotonic clock does not start at zero */

    fl_ratelimit_init(&rl, 1000, 2);
    cr_assert(fl_ratelimit_pass(&rl, t, &suppressed));
    cr_assert(fl_ratelimit_pass(&rl, t, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, t, &suppressed));

    /* One interval later one message passes, and only one. */
    cr_assert(fl_ratelimit_pass(&rl, t + 1000, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, t + 1000, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, t + 1999, &suppressed));
    cr_assert(fl_ratelimit_pass(&rl, t + 2000, &suppressed));

    /* A long quiet spell refills to the burst, never beyond it. */
    t += 3600 * 1000;
    cr_assert(fl_ratelimit_pass(&rl, t, &suppressed));
    cr_assert(fl_ratelimit_pass(&rl, t, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, t, &suppressed));
}

Test(common_log, ratelimit_reports_the_suppressed_count_once)
{
    struct fl_ratelimit rl;
    uint64_t suppressed = 99;

    fl_ratelimit_init(&rl, 100, 1);
    cr_assert(fl_ratelimit_pass(&rl, 0, &suppressed));
    cr_assert_eq(suppressed, 0);
    for (int i = 0; i < 5; i++) {
        cr_assert(!fl_ratelimit_pass(&rl, 10 + (uint64_t)i, &suppressed));
    }
    cr_assert(fl_ratelimit_pass(&rl, 100, &suppressed));
    cr_assert_eq(suppressed, 5, "got %llu", (unsigned long long)suppressed);
    /* The next message that passes starts from zero again. */
    cr_assert(fl_ratelimit_pass(&rl, 200, &suppressed));
    cr_assert_eq(suppressed, 0);
}

Test(common_log, ratelimit_survives_a_clock_going_back)
{
    struct fl_ratelimit rl;
    uint64_t suppressed;

    fl_ratelimit_init(&rl, 1000, 1);
    cr_assert(fl_ratelimit_pass(&rl, 5000, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, 1000, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, 5999, &suppressed));
    cr_assert(fl_ratelimit_pass(&rl, 6000, &suppressed));
    cr_assert_eq(suppressed, 2);
}

Test(common_log, ratelimit_treats_zero_settings_as_one)
{
    struct fl_ratelimit rl;
    uint64_t suppressed;

    fl_ratelimit_init(&rl, 0, 0);
    cr_assert(fl_ratelimit_pass(&rl, 0, &suppressed));
    cr_assert(!fl_ratelimit_pass(&rl, 0, &suppressed));
    cr_assert(fl_ratelimit_pass(&rl, 1, &suppressed));
    cr_assert_eq(suppressed, 1);
}

/* ---- error texts ---------------------------------------------------- */

Test(common_log, every_error_code_has_its_own_text)
{
    static const int codes[] = {
        FL_OK,       FL_ENOMEM, FL_EINVAL, FL_ETRUNC, FL_EFORMAT,
        FL_EVERSION, FL_ELIMIT, FL_EIO,    FL_ENOENT, FL_EEXIST,
        FL_EAUTH,    FL_EAGAIN, FL_ENET,
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *unknown = fl_strerror(-1000);

    cr_assert_not_null(unknown);
    cr_assert_gt(strlen(unknown), 0);
    cr_assert_str_eq(fl_strerror(1), unknown);
    for (size_t i = 0; i < n; i++) {
        const char *s = fl_strerror(codes[i]);

        cr_assert_not_null(s, "code %d", codes[i]);
        cr_assert_gt(strlen(s), 0, "code %d", codes[i]);
        cr_assert_str_neq(s, unknown, "code %d", codes[i]);
        for (size_t j = 0; j < i; j++) {
            cr_assert_str_neq(s, fl_strerror(codes[j]), "codes %d and %d",
                              codes[i], codes[j]);
        }
    }
    /* The list above is complete: codes run from 0 down without gaps. */
    cr_assert_eq(codes[n - 1], -(int)(n - 1));
    cr_assert_str_eq(fl_strerror(-(int)n), unknown);
}

/* ---- growable strings ----------------------------------------------- */

Test(common_log, str_append_grows_and_stays_terminated)
{
    struct fl_str s = {NULL, 0, 0};
    char want[10001];

    for (int i = 0; i < 10000; i++) {
        char ch = (char)('a' + i % 26);

        cr_assert_eq(fl_str_append(&s, &ch, 1), FL_OK);
        want[i] = ch;
        cr_assert_eq(s.len, (size_t)i + 1);
        cr_assert_gt(s.cap, s.len);
        cr_assert_eq(s.p[s.len], '\0');
    }
    want[10000] = '\0';
    cr_assert_str_eq(s.p, want);
    fl_str_fini(&s);
    cr_assert_null(s.p);
    cr_assert_eq(s.len, 0);
    cr_assert_eq(s.cap, 0);
    fl_str_fini(&s); /* twice is harmless */
}

Test(common_log, str_append_takes_binary_and_empty_data)
{
    struct fl_str s = {NULL, 0, 0};
    static const char bytes[] = {'a', '\0', 'b'};

    cr_assert_eq(fl_str_append(&s, "", 0), FL_OK);
    cr_assert_not_null(s.p);
    cr_assert_str_eq(s.p, "");
    cr_assert_eq(fl_str_append(&s, bytes, sizeof(bytes)), FL_OK);
    cr_assert_eq(s.len, 3);
    cr_assert_eq(memcmp(s.p, bytes, 3), 0);
    cr_assert_eq(s.p[3], '\0');
    fl_str_fini(&s);
}

Test(common_log, str_printf_appends_across_growth)
{
    struct fl_str s = {NULL, 0, 0};
    char want[8192];
    size_t wlen = 0;

    for (int i = 0; i < 500; i++) {
        cr_assert_eq(fl_str_printf(&s, "%d:%s;", i, i % 7 ? "x" : "seven"),
                     FL_OK);
        wlen += (size_t)snprintf(want + wlen, sizeof(want) - wlen, "%d:%s;", i,
                                 i % 7 ? "x" : "seven");
        cr_assert_eq(s.len, wlen);
        cr_assert_lt(s.len, s.cap);
    }
    cr_assert_str_eq(s.p, want);
    fl_str_fini(&s);
}

Test(common_log, str_printf_handles_one_piece_larger_than_the_buffer)
{
    struct fl_str s = {NULL, 0, 0};
    char big[5000];

    memset(big, 'w', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(fl_str_append(&s, "<", 1), FL_OK);
    cr_assert_eq(fl_str_printf(&s, "%s>", big), FL_OK);
    cr_assert_eq(s.len, sizeof(big) + 1);
    cr_assert_eq(s.p[0], '<');
    cr_assert_eq(s.p[s.len - 1], '>');
    cr_assert_eq(strncmp(s.p + 1, big, sizeof(big) - 1), 0);
    cr_assert_eq(s.p[s.len], '\0');
    fl_str_fini(&s);
}
