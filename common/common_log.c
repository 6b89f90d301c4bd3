/*
 * Logging: one formatted entry point, a sink chosen by main, and a token
 * bucket for warnings about outside input.
 */
#include "common.h"

#include <pthread.h>
#include <string.h>

static void default_sink(void *arg, enum fl_log_level level, const char *id,
                         const char *msg);

static fl_log_sink_fn log_sink = default_sink;
static void *log_sink_arg;
static enum fl_log_level log_max = FL_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void
default_sink(void *arg, enum fl_log_level level, const char *id,
             const char *msg)
{
    (void)arg;
    /* One fprintf per line so lines from threads do not interleave. */
    fprintf(stderr, "<%d>%s: %s\n", (int)level, id, msg);
}

void
fl_log_set_sink(fl_log_sink_fn fn, void *arg)
{
    pthread_mutex_lock(&log_lock);
    log_sink = fn != NULL ? fn : default_sink;
    log_sink_arg = arg;
    pthread_mutex_unlock(&log_lock);
}

void
fl_log_set_level(enum fl_log_level max)
{
    log_max = max;
}

bool
fl_log_enabled(enum fl_log_level level)
{
    return level <= log_max;
}

void
fl_log_vmsg(enum fl_log_level level, const char *id, const char *fmt,
            va_list ap)
{
    char msg[1024];
    int n;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    log_sink(log_sink_arg, level, id, msg);
    pthread_mutex_unlock(&log_lock);
}

void
fl_log_msg(enum fl_log_level level, const char *id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fl_log_vmsg(level, id, fmt, ap);
    va_end(ap);
}

void
fl_ratelimit_init(struct fl_ratelimit *rl, uint32_t interval_ms, uint32_t burst)
{
    memset(rl, 0, sizeof(*rl));
    rl->interval_ms = interval_ms > 0 ? interval_ms : 1;
    rl->burst = burst > 0 ? burst : 1;
    rl->tokens = rl->burst;
}

bool
fl_ratelimit_pass(struct fl_ratelimit *rl, uint64_t now_ms,
                  uint64_t *suppressed)
{
    uint64_t refill;

    if (now_ms > rl->last_ms) {
        refill = (now_ms - rl->last_ms) / rl->interval_ms;
        if (refill > 0) {
            uint64_t t = rl->tokens + refill;

            rl->tokens = t > rl->burst ? rl->burst : (uint32_t)t;
            rl->last_ms = now_ms;
        }
    }
    if (rl->tokens == 0) {
        rl->suppressed++;
        return false;
    }
    rl->tokens--;
    if (suppressed != NULL) {
        *suppressed = rl->suppressed;
    }
    rl->suppressed = 0;
    return true;
}
