/*
 * Tests of the chain state file: what is saved loads back, a new chain
 * starts at 0, and a damaged or foreign file is refused instead of
 * silently restarting the sequence.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sensor_int.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fl-chain-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/chain.state", dir);
}

static void
teardown(void)
{
    char tmp[160];

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    unlink(path);
    rmdir(dir);
}

TestSuite(sensor_chain, .init = setup, .fini = teardown);

static void
save_sample(void)
{
    struct fl_chain c;
    char err[512] = "";

    memset(&c, 0, sizeof(c));
    snprintf(c.sensor, sizeof(c.sensor), "edge-1");
    c.next_sequence = 1234567890123ull;
    for (int i = 0; i < FL_HASH_LEN; i++) {
        c.previous[i] = (uint8_t)(i * 7 + 1);
    }
    cr_assert_eq(fl_chain_save(dir, &c, err, sizeof(err)), FL_OK, "%s", err);
}

static size_t
read_file(uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    cr_assert_not_null(f);
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void
write_file(const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

Test(sensor_chain, starts_a_new_chain_at_zero_without_a_file)
{
    struct fl_chain c;
    uint8_t zero[FL_HASH_LEN] = {0};
    uint8_t nosession[16] = {0};
    char err[512] = "";

    cr_assert_eq(fl_chain_load(dir, "edge-1", &c, err, sizeof(err)), FL_OK,
                 "%s", err);
    cr_assert_str_eq(c.sensor, "edge-1");
    cr_assert_eq(c.next_sequence, 0);
    cr_assert_arr_eq(c.previous, zero, FL_HASH_LEN);
    cr_assert_arr_neq(c.session, nosession, 16);
}

Test(sensor_chain, loads_what_it_saved_with_a_fresh_session)
{
    struct fl_chain a;
    struct fl_chain b;
    char err[512] = "";

    save_sample();
    cr_assert_eq(fl_chain_load(dir, "edge-1", &a, err, sizeof(err)), FL_OK,
                 "%s", err);
    cr_assert_eq(fl_chain_load(dir, "edge-1", &b, err, sizeof(err)), FL_OK);
    cr_assert_str_eq(a.sensor, "edge-1");
    cr_assert_eq(a.next_sequence, 1234567890123ull);
    for (int i = 0; i < FL_HASH_LEN; i++) {
        cr_assert_eq(a.previous[i], (uint8_t)(i * 7 + 1));
    }
    cr_assert_arr_neq(a.session, b.session, 16, "each start is a session");
    /* Saved again, it is the same file. */
    a.next_sequence++;
    cr_assert_eq(fl_chain_save(dir, &a, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_chain_load(dir, "edge-1", &b, err, sizeof(err)), FL_OK);
    cr_assert_eq(b.next_sequence, 1234567890124ull);
    cr_assert_eq(access(path, R_OK), 0);
}

Test(sensor_chain, refuses_a_file_with_any_byte_changed)
{
    uint8_t orig[1024];
    uint8_t bad[1024];
    size_t len;
    struct fl_chain c;
    char err[512];

    save_sample();
    len = read_file(orig, sizeof(orig));
    cr_assert_gt(len, 50);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, orig, len);
        bad[i] ^= 0x01;
        write_file(bad, len);
        err[0] = '\0';
        cr_assert_eq(fl_chain_load(dir, "edge-1", &c, err, sizeof(err)),
                     FL_EFORMAT, "byte %zu flipped was accepted", i);
        cr_assert_not_null(strstr(err, path), "error names the file: %s", err);
    }
}

Test(sensor_chain, refuses_a_truncated_file)
{
    uint8_t orig[1024];
    size_t len;
    struct fl_chain c;
    char err[512];

    save_sample();
    len = read_file(orig, sizeof(orig));
    for (size_t n = 0; n < len; n++) {
        write_file(orig, n);
        cr_assert_eq(fl_chain_load(dir, "edge-1", &c, err, sizeof(err)),
                     FL_EFORMAT, "cut at %zu was accepted", n);
    }
}

Test(sensor_chain, refuses_the_chain_of_another_sensor)
{
    struct fl_chain c;
    char err[512] = "";

    save_sample();
    cr_assert_eq(fl_chain_load(dir, "edge-2", &c, err, sizeof(err)),
                 FL_EFORMAT);
    cr_assert_not_null(strstr(err, "edge-1"), "%s", err);
}

Test(sensor_chain, ignores_a_leftover_temporary_file)
{
    struct fl_chain c;
    char tmp[160];
    char err[512] = "";
    FILE *f;

    save_sample();
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs("fl0wer-chain 1\nsen", f); /* a crash in the middle of a save */
    fclose(f);
    cr_assert_eq(fl_chain_load(dir, "edge-1", &c, err, sizeof(err)), FL_OK,
                 "%s", err);
    cr_assert_eq(c.next_sequence, 1234567890123ull);
}
