/*
 * Clocks and RFC 3339 time text.  Times are kept as ms since the epoch,
 * UTC, everywhere in the tree.
 */
#include "common.h"

#include <time.h>

uint64_t
fl_time_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
fl_time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
fl_time_format(uint64_t ms, char buf[FL_TIME_STRLEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, FL_TIME_STRLEN, "invalid");
        return;
    }
    snprintf(buf, FL_TIME_STRLEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}
