/*
 * Key files: generation and loading round trip, and every refusal the
 * loader owes an operator (permissions, lengths, hex, ids, halves).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char dir[256];

static void
make_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/fl-key-XXXXXX", tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void
remove_dir(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(common_key, .init = make_dir, .fini = remove_dir);

static void
path_of(char *buf, size_t cap, const char *file)
{
    snprintf(buf, cap, "%s/%s", dir, file);
}

static size_t
read_all(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    cr_assert_not_null(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

/* Rewrites a 0600 file with text. */
static void
write_all(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static int
load_sec(const char *file, char *err, size_t errlen)
{
    struct fl_seckey *k = NULL;
    char path[512];
    int rc;

    path_of(path, sizeof(path), file);
    rc = fl_seckey_load(path, &k, err, errlen);
    if (rc != FL_OK) {
        cr_assert_null(k);
    }
    fl_seckey_free(k);
    return rc;
}

Test(common_key, generates_a_pair_that_loads_and_signs)
{
    struct fl_seckey *k = NULL;
    struct fl_pubkey pub;
    char path[512];
    char err[256] = "";
    struct stat sb;
    uint8_t sig[FL_SIG_LEN];

    cr_assert_eq(fl_key_generate("edge-1", dir, err, sizeof(err)), FL_OK, "%s",
                 err);
    path_of(path, sizeof(path), "edge-1.key");
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    cr_assert_eq(fl_seckey_load(path, &k, err, sizeof(err)), FL_OK, "%s", err);
    path_of(path, sizeof(path), "edge-1.pub");
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0644);
    cr_assert_eq(fl_pubkey_load(path, &pub, err, sizeof(err)), FL_OK, "%s",
                 err);

    cr_assert_str_eq(pub.name, "edge-1");
    cr_assert_str_eq(fl_seckey_public(k)->name, "edge-1");
    cr_assert_eq(memcmp(pub.key, fl_seckey_public(k)->key, FL_PUBKEY_LEN), 0);
    cr_assert_eq(memcmp(pub.id, fl_seckey_public(k)->id, FL_KEYID_LEN), 0);
    cr_assert_eq(fl_sign(k, (const uint8_t *)"abc", 3, sig), FL_OK);
    cr_assert_eq(fl_verify(&pub, (const uint8_t *)"abc", 3, sig), FL_OK);
    cr_assert_eq(fl_verify(&pub, (const uint8_t *)"abd", 3, sig), FL_EAUTH);
    fl_seckey_free(k);
}

Test(common_key, refuses_to_overwrite_or_take_a_bad_name)
{
    char err[256] = "";
    char path[512];

    cr_assert_eq(fl_key_generate("a", dir, err, sizeof(err)), FL_OK);
    cr_assert_eq(fl_key_generate("a", dir, err, sizeof(err)), FL_EEXIST);
    cr_assert_eq(fl_key_generate("a/b", dir, err, sizeof(err)), FL_EINVAL);
    cr_assert_eq(fl_key_generate("", dir, err, sizeof(err)), FL_EINVAL);
    /* An existing .pub alone also stops it, leaving no .key behind. */
    path_of(path, sizeof(path), "b.pub");
    write_all(path, "x\n");
    cr_assert_eq(fl_key_generate("b", dir, err, sizeof(err)), FL_EEXIST);
    path_of(path, sizeof(path), "b.key");
    cr_assert_neq(access(path, F_OK), 0);
}

Test(common_key, refuses_group_or_other_permissions)
{
    char err[256] = "";
    char path[512];

    cr_assert_eq(fl_key_generate("p", dir, err, sizeof(err)), FL_OK);
    path_of(path, sizeof(path), "p.key");
    chmod(path, 0644);
    cr_assert_eq(load_sec("p.key", err, sizeof(err)), FL_EAUTH);
    cr_assert_not_null(strstr(err, "permissions 0644, want 0600"), "%s", err);
    chmod(path, 0640);
    cr_assert_eq(load_sec("p.key", err, sizeof(err)), FL_EAUTH);
    cr_assert_not_null(strstr(err, "permissions 0640, want 0600"), "%s", err);
    chmod(path, 0400);
    cr_assert_eq(load_sec("p.key", err, sizeof(err)), FL_OK);
}

/* Replaces the first occurrence of from in the file with to. */
static void
edit(const char *file, const char *from, const char *to)
{
    char path[512];
    char text[1024];
    char out[1100];
    char *at;

    path_of(path, sizeof(path), file);
    read_all(path, text, sizeof(text));
    at = strstr(text, from);
    cr_assert_not_null(at, "%s not in %s", from, file);
    *at = '\0';
    snprintf(out, sizeof(out), "%s%s%s", text, to, at + strlen(from));
    write_all(path, out);
}

/* The value of "label: " in a key file. */
static void
value_of(const char *file, const char *label, char *val, size_t cap)
{
    char path[512];
    char text[1024];
    char want[64];
    char *at;

    path_of(path, sizeof(path), file);
    read_all(path, text, sizeof(text));
    snprintf(want, sizeof(want), "\n%s: ", label);
    at = strstr(text, want);
    cr_assert_not_null(at);
    at += strlen(want);
    snprintf(val, cap, "%.*s", (int)strcspn(at, "\n"), at);
}

Test(common_key, refuses_wrong_lengths_and_bad_hex)
{
    char err[256] = "";
    char sec[200];
    char bad[200];

    cr_assert_eq(fl_key_generate("s", dir, err, sizeof(err)), FL_OK);
    value_of("s.key", "secret", sec, sizeof(sec));
    cr_assert_eq(strlen(sec), 128);

    char cur[200];

    snprintf(bad, sizeof(bad), "%.126s", sec); /* one byte short */
    edit("s.key", sec, bad);
    cr_assert_eq(load_sec("s.key", err, sizeof(err)), FL_EFORMAT);
    cr_assert_not_null(strstr(err, "line 4"), "%s", err);

    snprintf(cur, sizeof(cur), "%s", bad);
    snprintf(bad, sizeof(bad), "%.128s00", sec); /* one byte long */
    edit("s.key", cur, bad);
    cr_assert_eq(load_sec("s.key", err, sizeof(err)), FL_EFORMAT);

    snprintf(cur, sizeof(cur), "%s", bad);
    snprintf(bad, sizeof(bad), "%s", sec);
    bad[10] = 'g';
    edit("s.key", cur, bad);
    cr_assert_eq(load_sec("s.key", err, sizeof(err)), FL_EFORMAT);
    cr_assert_not_null(strstr(err, "line 4"), "%s", err);

    edit("s.key", bad, sec); /* and back: it loads again */
    cr_assert_eq(load_sec("s.key", err, sizeof(err)), FL_OK, "%s", err);
}

Test(common_key, refuses_a_mismatched_key_id)
{
    char err[256] = "";
    char id[40];
    char bad[40];
    char path[512];
    struct fl_pubkey pub;

    cr_assert_eq(fl_key_generate("m", dir, err, sizeof(err)), FL_OK);
    value_of("m.key", "key_id", id, sizeof(id));
    snprintf(bad, sizeof(bad), "%s", id);
    bad[0] = bad[0] == '0' ? '1' : '0';
    edit("m.key", id, bad);
    cr_assert_eq(load_sec("m.key", err, sizeof(err)), FL_EAUTH);
    cr_assert_not_null(strstr(err, "key id"), "%s", err);

    edit("m.pub", id, bad);
    path_of(path, sizeof(path), "m.pub");
    cr_assert_eq(fl_pubkey_load(path, &pub, err, sizeof(err)), FL_EAUTH);
    cr_assert_not_null(strstr(err, "key id"), "%s", err);
}

Test(common_key, refuses_a_public_half_that_does_not_match)
{
    char err[256] = "";
    char sec[200];
    char bad[200];

    cr_assert_eq(fl_key_generate("h", dir, err, sizeof(err)), FL_OK);
    value_of("h.key", "secret", sec, sizeof(sec));
    snprintf(bad, sizeof(bad), "%s", sec);
    bad[127] = bad[127] == '0' ? '1' : '0'; /* last byte of the public half */
    edit("h.key", sec, bad);
    cr_assert_eq(load_sec("h.key", err, sizeof(err)), FL_EAUTH);
    cr_assert_not_null(strstr(err, "public half"), "%s", err);
}

Test(common_key, refuses_extra_or_missing_lines)
{
    char err[256] = "";

    cr_assert_eq(fl_key_generate("x", dir, err, sizeof(err)), FL_OK);
    edit("x.key", "fl0wer-secret-key 1", "fl0wer-secret-key 2");
    cr_assert_eq(load_sec("x.key", err, sizeof(err)), FL_EFORMAT);
    edit("x.key", "fl0wer-secret-key 2\n", "fl0wer-secret-key 1\r\n");
    cr_assert_eq(load_sec("x.key", err, sizeof(err)), FL_EFORMAT);
    edit("x.key", "\r\n", "\n");
    cr_assert_eq(load_sec("x.key", err, sizeof(err)), FL_OK);
    edit("x.key", "name: x\n", "");
    cr_assert_eq(load_sec("x.key", err, sizeof(err)), FL_EFORMAT);
    cr_assert_not_null(strstr(err, "line 2"), "%s", err);
}
