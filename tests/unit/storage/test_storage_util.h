/*
 * Helpers the storage tests share: a scratch directory, generated flows,
 * a sensor key, and signed batches appended through fl_batch_build.
 */
#ifndef FL_TEST_STORAGE_UTIL_H
#define FL_TEST_STORAGE_UTIL_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_int.h"

static inline uint64_t
tu_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static inline void
tu_tmpdir(char out[256])
{
    const char *t = getenv("TMPDIR");

    snprintf(out, 256, "%s/fl-storage-XXXXXX", t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(out));
}

static inline int
tu_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void
tu_rmtree(const char *dir)
{
    nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A random address: IPv4 with probability 2/3, else IPv6 in 2001:db8::/32
 * or 2a00::/12-ish space. */
static inline void
tu_addr(uint64_t *s, struct fl_addr *a)
{
    uint64_t x = tu_rnd(s);

    if (x % 3 != 0) {
        fl_addr_from_v4(a, (uint32_t)(tu_rnd(s) >> 16));
    } else {
        uint8_t b[16];

        fl_put_be64(b, tu_rnd(s));
        fl_put_be64(b + 8, tu_rnd(s));
        b[0] = 0x2a;
        fl_addr_from_v6(a, b);
    }
}

/* n flows starting in [t0, t0 + span), random ports and counters. */
static inline void
tu_flows(struct fl_flow *f, size_t n, uint64_t *s, uint64_t t0, uint64_t span)
{
    for (size_t i = 0; i < n; i++) {
        fl_flow_clear(&f[i]);
        f[i].time_start = t0 + tu_rnd(s) % span;
        f[i].time_end = f[i].time_start + tu_rnd(s) % 60000;
        tu_addr(s, &f[i].src_addr);
        tu_addr(s, &f[i].dst_addr);
        f[i].src_port = (uint16_t)tu_rnd(s);
        f[i].dst_port = (uint16_t)tu_rnd(s);
        f[i].proto = (tu_rnd(s) & 1) ? 6 : 17;
        f[i].packets = 1 + tu_rnd(s) % 1000;
        f[i].bytes = f[i].packets * (40 + tu_rnd(s) % 1400);
        f[i].sampling = 1;
    }
}

struct tu_sensor {
    struct fl_seckey *k;
    struct fl_chain chain;
};

/* Makes a key pair NAME in dir (kept for fsck) and a fresh chain. */
static inline void
tu_sensor_init(struct tu_sensor *ts, const char *dir, const char *name)
{
    char err[256];
    char path[512];

    cr_assert_eq(fl_key_generate(name, dir, err, sizeof(err)), FL_OK, "%s",
                 err);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    cr_assert_eq(fl_seckey_load(path, &ts->k, err, sizeof(err)), FL_OK, "%s",
                 err);
    fl_chain_init(&ts->chain, name);
}

static inline void
tu_sensor_fini(struct tu_sensor *ts)
{
    fl_seckey_free(ts->k);
}

/* A signed batch of flows, and the facts fl_archive_append wants. */
static inline void
tu_batch(struct tu_sensor *ts, const struct fl_flow *f, size_t n,
         uint8_t **batch, size_t *len, struct fl_append_info *info)
{
    memset(info, 0, sizeof(*info));
    info->sensor = ts->chain.sensor;
    info->sequence = ts->chain.next_sequence;
    cr_assert_eq(fl_batch_build(ts->k, &ts->chain, f, n, NULL, batch, len),
                 FL_OK);
    info->time_first = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (f[i].time_start < info->time_first) {
            info->time_first = f[i].time_start;
        }
        if (f[i].time_end > info->time_last) {
            info->time_last = f[i].time_end;
        }
    }
    if (n == 0) {
        info->time_first = 0;
    }
    info->records = (uint32_t)n;
    info->flows = f;
    info->nflows = n;
}

static inline int
tu_append(struct fl_archive *a, struct tu_sensor *ts, const struct fl_flow *f,
          size_t n)
{
    struct fl_append_info info;
    uint8_t *batch;
    size_t len;
    int ret;

    tu_batch(ts, f, n, &batch, &len, &info);
    ret = fl_archive_append(a, batch, len, &info);
    free(batch);
    return ret;
}

static inline void
tu_quiet(void)
{
    fl_log_set_level(FL_LOG_ERR - 1);
}

#endif /* FL_TEST_STORAGE_UTIL_H */
