/*
 * -t windows: every nfdump form to the exact millisecond, relative forms
 * against a fixed now, time zone offsets, and the malformed ones refused.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "aggregator.h"

#define NOW 1796311800000ULL /* 2026-12-03T15:30:00Z */
#define NO_END UINT64_MAX

/* Expected values computed independently (Python calendar.timegm). */
static const struct {
    const char *text;
    int32_t tz;
    uint64_t start;
    uint64_t end;
} good[] = {
    {"2026/12/03", 0, 1796256000000ULL, NO_END},
    {"2026/12/03.10:30:15", 0, 1796293815000ULL, NO_END},
    {"2026/12/03.10:30", 0, 1796293800000ULL, NO_END},
    {"2026/12/03.10", 0, 1796292000000ULL, NO_END},
    {"2026/12", 0, 1796083200000ULL, NO_END},
    {"2026", 0, 1767225600000ULL, NO_END},
    {"2026/12/03.10:30:15-2026/12/04.08:00:00", 0, 1796293815000ULL,
     1796371200000ULL},
    {"2026/12/03-2026/12/04.08", 0, 1796256000000ULL, 1796371200000ULL},
    {"2026/12/01-2026/12/03", 0, 1796083200000ULL, 1796256000000ULL},
    {"2024/02/29.23:59:59", 0, 1709251199000ULL, NO_END},
    {"2000/02/29.12", 0, 951825600000ULL, NO_END},
    {"2100/03/01", 0, 4107542400000ULL, NO_END},
    {"1970/01/01", 0, 0, NO_END},
    /* 10:00 at +02:00 is 08:00Z; at -05:30 it is 15:30Z. */
    {"2026/12/03.10:00:00", 120, 1796284800000ULL, NO_END},
    {"2026/12/03.10-2026/12/03.15:30", -330, 1796292000000ULL + 330 * 60000ULL,
     1796311800000ULL + 330 * 60000ULL},
    {"-1h", 0, NOW - 3600000ULL, NO_END},
    {"-15m", 0, NOW - 900000ULL, NO_END},
    {"-30d", 0, NOW - 30ULL * 86400000ULL, NO_END},
    {"-2w", 0, NOW - 14ULL * 86400000ULL, NO_END},
    {"-90s", 0, NOW - 90000ULL, NO_END},
    {"-3600", 0, NOW - 3600000ULL, NO_END},
    {"-1H", 0, NOW - 3600000ULL, NO_END},
    /* Relative windows ignore the zone: they count back from now. */
    {"-1h", 120, NOW - 3600000ULL, NO_END},
};

Test(aggregator_window, parses_every_form_to_the_millisecond)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct fl_window w = {1, 1};
        char err[256];
        int rc = fl_window_parse(good[i].text, NOW, good[i].tz, &w, err,
                                 sizeof(err));

        cr_expect_eq(rc, FL_OK, "'%s': %s", good[i].text, err);
        cr_expect_eq(w.start, good[i].start, "'%s': start %llu, want %llu",
                     good[i].text, (unsigned long long)w.start,
                     (unsigned long long)good[i].start);
        cr_expect_eq(w.end, good[i].end, "'%s': end %llu, want %llu",
                     good[i].text, (unsigned long long)w.end,
                     (unsigned long long)good[i].end);
    }
}

Test(aggregator_window, a_relative_window_longer_than_time_starts_at_zero)
{
    struct fl_window w;
    char err[256];

    cr_assert_eq(fl_window_parse("-100000d", 1000, 0, &w, err, sizeof(err)),
                 FL_OK, "%s", err);
    cr_assert_eq(w.start, 0);
}

Test(aggregator_window, refuses_malformed_windows)
{
    static const char *bad[] = {
        "",
        "2026/13/01",
        "2026/00/10",
        "2026/02/30",
        "2025/02/29",
        "2026/12/3",
        "2026/12/03.24",
        "2026/12/03.10:60",
        "2026/12/03.10:30:61",
        "2026/12/03 10:00",
        "2026-12-03",
        "2026/12/03-",
        "2026/12/04-2026/12/03",
        "2026/12/03-2026/12/03",
        "1969/12/31",
        "26/12/03",
        "2026/12/03.10:30:15.5",
        "2026/12/03T10",
        "-",
        "-h",
        "-0h",
        "-1y",
        "-1hh",
        "-1h-2h",
        "now",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fl_window w;
        char err[256] = "";

        cr_expect_eq(fl_window_parse(bad[i], NOW, 0, &w, err, sizeof(err)),
                     FL_EFORMAT, "'%s' accepted", bad[i]);
        cr_expect_neq(err[0], '\0', "'%s': no reason given", bad[i]);
    }
}

Test(aggregator_window, reads_utc_and_fixed_offsets)
{
    static const struct {
        const char *text;
        int rc;
        int32_t minutes;
    } cases[] = {
        {"UTC", FL_OK, 0},
        {"utc", FL_OK, 0},
        {"Z", FL_OK, 0},
        {"+02:00", FL_OK, 120},
        {"-05:30", FL_OK, -330},
        {"+0545", FL_OK, 345},
        {"-03", FL_OK, -180},
        {"+14:00", FL_OK, 840},
        {"+2", FL_EFORMAT, 0},
        {"CET", FL_EFORMAT, 0},
        {"Europe/Berlin", FL_EFORMAT, 0},
        {"+15:00", FL_EFORMAT, 0},
        {"+02:60", FL_EFORMAT, 0},
        {"+02:00x", FL_EFORMAT, 0},
        {"", FL_EFORMAT, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int32_t m = 9999;
        int rc = fl_window_parse_tz(cases[i].text, &m);

        cr_expect_eq(rc, cases[i].rc, "'%s'", cases[i].text);
        if (cases[i].rc == FL_OK) {
            cr_expect_eq(m, cases[i].minutes, "'%s': %d", cases[i].text, m);
        }
    }
}
