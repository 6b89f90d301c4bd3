/*
 * The -t time window in nfdump's forms: absolute dates shortened from the
 * right, a lone start, and relative "-1h" windows ending now, read in UTC
 * or a fixed offset given by --tz.
 */
#include "aggregator.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define MS_PER_S 1000ULL
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_DAY (86400 * MS_PER_S)

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's civil-days algorithm, restated). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe;
    unsigned doy;
    unsigned doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned
days_in_month(unsigned y, unsigned m)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly width digits (1..4) at *s into v. */
static bool
digits(const char **s, unsigned width, unsigned *v)
{
    *v = 0;
    for (unsigned i = 0; i < width; i++) {
        if (!isdigit((unsigned char)(*s)[i])) {
            return false;
        }
        *v = *v * 10 + (unsigned)((*s)[i] - '0');
    }
    *s += width;
    return true;
}

/*
 * One side "YYYY[/MM[/dd[.hh[:mm[:ss]]]]]" of exactly len characters:
 * missing parts are their earliest value.  Each part after the year is
 * two digits, introduced by its separator.
 */
static bool
parse_stamp(const char *s, size_t len, int32_t tz, uint64_t *out)
{
    static const char seps[] = "//.::";
    unsigned v[6] = {0, 1, 1, 0, 0, 0};
    static const unsigned max[] = {9999, 12, 31, 23, 59, 59};
    const char *end = s + len;
    int64_t ms;

    if (len < 4 || !digits(&s, 4, &v[0]) || v[0] < 1970) {
        return false;
    }
    for (unsigned i = 1; i < 6 && s < end; i++) {
        if (*s != seps[i - 1] || end - s < 3) {
            return false;
        }
        s++;
        if (!digits(&s, 2, &v[i]) || v[i] > max[i]) {
            return false;
        }
    }
    if (s != end || v[1] < 1 || v[2] < 1 || v[2] > days_in_month(v[0], v[1])) {
        return false;
    }
    ms = days_from_civil(v[0], v[1], v[2]) * (int64_t)MS_PER_DAY +
         (int64_t)(v[3] * 3600 + v[4] * 60 + v[5]) * (int64_t)MS_PER_S -
         (int64_t)tz * (int64_t)MS_PER_MIN;
    if (ms < 0) {
        return false;
    }
    *out = (uint64_t)ms;
    return true;
}

/* "-N[smhdw]": the last N units before now; a bare N counts seconds as
 * in nfdump. */
static bool
parse_relative(const char *s, uint64_t now, struct fl_window *out)
{
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {
        {'s', MS_PER_S},   {'m', MS_PER_MIN},     {'h', 60 * MS_PER_MIN},
        {'d', MS_PER_DAY}, {'w', 7 * MS_PER_DAY},
    };
    uint64_t n = 0;
    uint64_t unit = MS_PER_S;
    size_t i = 1;

    if (!isdigit((unsigned char)s[i])) {
        return false;
    }
    for (; isdigit((unsigned char)s[i]); i++) {
        if (n > 100000000) {
            return false;
        }
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (s[i] != '\0') {
        bool known = false;

        for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            if (tolower((unsigned char)s[i]) == units[u].unit) {
                unit = units[u].ms;
                known = true;
            }
        }
        if (!known || s[i + 1] != '\0') {
            return false;
        }
    }
    out->start = n * unit > now ? 0 : now - n * unit;
    out->end = UINT64_MAX;
    return n > 0;
}

int
fl_window_parse(const char *text, uint64_t now_ms, int32_t tz_minutes,
                struct fl_window *out, char *err, size_t errlen)
{
    const char *dash;
    size_t len = strlen(text);

    err[0] = '\0';
    if (text[0] == '-') {
        if (!parse_relative(text, now_ms, out)) {
            snprintf(err, errlen, "not a relative window such as -1h: %s",
                     text);
            return FL_EFORMAT;
        }
        return FL_OK;
    }
    /* Dates use '/', '.' and ':', so the one '-' splits start from end. */
    dash = strchr(text, '-');
    if (!parse_stamp(text, dash != NULL ? (size_t)(dash - text) : len,
                     tz_minutes, &out->start)) {
        snprintf(err, errlen,
                 "bad start time (YYYY/MM/dd.hh:mm:ss, shortened from the "
                 "right): %s",
                 text);
        return FL_EFORMAT;
    }
    out->end = UINT64_MAX;
    if (dash == NULL) {
        return FL_OK;
    }
    if (!parse_stamp(dash + 1, strlen(dash + 1), tz_minutes, &out->end)) {
        snprintf(err, errlen, "bad end time: %s", dash + 1);
        return FL_EFORMAT;
    }
    if (out->end <= out->start) {
        snprintf(err, errlen, "the window ends before it starts: %s", text);
        return FL_EFORMAT;
    }
    return FL_OK;
}

int
fl_window_parse_tz(const char *s, int32_t *minutes)
{
    unsigned h;
    unsigned m = 0;
    int sign;

    if (strcasecmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        *minutes = 0;
        return FL_OK;
    }
    if (s[0] != '+' && s[0] != '-') {
        return FL_EFORMAT;
    }
    sign = s[0] == '-' ? -1 : 1;
    s++;
    if (!digits(&s, 2, &h)) {
        return FL_EFORMAT;
    }
    if (*s == ':') {
        s++;
    }
    if (*s != '\0' && !digits(&s, 2, &m)) {
        return FL_EFORMAT;
    }
    if (*s != '\0' || h > 14 || m > 59) {
        return FL_EFORMAT;
    }
    *minutes = sign * (int32_t)(h * 60 + m);
    return FL_OK;
}
