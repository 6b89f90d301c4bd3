/*
 * Statements: the exact text, a strict parser that names the bad line,
 * and signatures that fail on any single changed bit.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char golden[] =
    "fl0wer-statement 1\n"
    "sensor: edge-1\n"
    "key_id: 0102030405060708\n"
    "session: 000102030405060708090a0b0c0d0e0f\n"
    "sequence: 42\n"
    "hash: blake2b-256\n"
    "previous: "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "time_first: 1700000000000\n"
    "time_last: 1700000010000\n"
    "created: 1700000011000\n"
    "records: 4294967295\n"
    "merkle_root: "
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
    "payload_hash: "
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n"
    "payload_len: 12345\n"
    "lost_socket: 0\n"
    "lost_decode: 1\n"
    "lost_sequence: 18446744073709551615\n"
    "lost_spool: 3\n";

static void
sample(struct fl_statement *st)
{
    memset(st, 0, sizeof(*st));
    strcpy(st->sensor, "edge-1");
    for (int i = 0; i < 8; i++) {
        st->key_id[i] = (uint8_t)(i + 1);
    }
    for (int i = 0; i < 16; i++) {
        st->session[i] = (uint8_t)i;
    }
    st->sequence = 42;
    st->hash = FL_HASH_BLAKE2B;
    memset(st->previous, 0xaa, FL_HASH_LEN);
    st->time_first = 1700000000000;
    st->time_last = 1700000010000;
    st->created = 1700000011000;
    st->records = UINT32_MAX;
    memset(st->merkle_root, 0xbb, FL_HASH_LEN);
    memset(st->payload_hash, 0xcc, FL_HASH_LEN);
    st->payload_len = 12345;
    st->lost_decode = 1;
    st->lost_sequence = UINT64_MAX;
    st->lost_spool = 3;
}

Test(common_statement, formats_the_documented_text)
{
    struct fl_statement st;
    struct fl_str s = {0};

    sample(&st);
    cr_assert_eq(fl_statement_format(&st, &s), FL_OK);
    cr_assert_str_eq(s.p, golden);
    fl_str_fini(&s);
}

Test(common_statement, parses_what_it_formats)
{
    struct fl_statement st;
    struct fl_statement back;
    struct fl_str s = {0};
    struct fl_str again = {0};
    char err[128] = "";

    sample(&st);
    st.hash = FL_HASH_SHA256;
    cr_assert_eq(fl_statement_format(&st, &s), FL_OK);
    cr_assert_eq(fl_statement_parse((const uint8_t *)s.p, s.len, &back, err,
                                    sizeof(err)),
                 FL_OK, "%s", err);
    cr_assert_str_eq(back.sensor, "edge-1");
    cr_assert_eq(memcmp(back.key_id, st.key_id, FL_KEYID_LEN), 0);
    cr_assert_eq(memcmp(back.session, st.session, 16), 0);
    cr_assert_eq(back.hash, FL_HASH_SHA256);
    cr_assert_eq(back.records, UINT32_MAX);
    cr_assert_eq(back.lost_sequence, UINT64_MAX);
    cr_assert_eq(back.lost_socket, 0);
    cr_assert_eq(memcmp(back.merkle_root, st.merkle_root, FL_HASH_LEN), 0);
    cr_assert_eq(memcmp(back.payload_hash, st.payload_hash, FL_HASH_LEN), 0);
    cr_assert_eq(fl_statement_format(&back, &again), FL_OK);
    cr_assert_str_eq(again.p, s.p);
    fl_str_fini(&s);
    fl_str_fini(&again);
}

/* Parses golden with from replaced by to; returns the code, err filled. */
static int
parse_edited(const char *from, const char *to, char *err, size_t errlen)
{
    char text[2048];
    const char *at = strstr(golden, from);
    struct fl_statement st;

    cr_assert_not_null(at, "%s", from);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - golden), golden, to,
             at + strlen(from));
    return fl_statement_parse((const uint8_t *)text, strlen(text), &st, err,
                              errlen);
}

struct refusal {
    const char *from;
    const char *to;
    int rc;
    const char *line; /* the line number err must name */
};

Test(common_statement, refuses_anything_but_the_exact_form)
{
    static const struct refusal cases[] = {
        {"fl0wer-statement 1", "fl0wer-statement 2", FL_EVERSION, "line 1"},
        {"fl0wer-statement 1", "fl0wer-statment 1", FL_EFORMAT, "line 1"},
        {"sequence: 42\n", "", FL_EFORMAT, "line 5"}, /* missing */
        {"lost_spool: 3\n", "lost_spool: 3\nx: 1\n", FL_EFORMAT, "line 19"},
        {"lost_spool: 3\n", "lost_spool: 3\n\n", FL_EFORMAT, "line 19"},
        {"sequence: 42\nhash: blake2b-256\n",
         "hash: blake2b-256\nsequence: 42\n", FL_EFORMAT, "line 5"}, /* order */
        {"sequence: 42", "sequense: 42", FL_EFORMAT, "line 5"}, /* unknown */
        {"key_id: 0102030405060708", "key_id: 01020304050607", FL_EFORMAT,
         "line 3"},
        {"key_id: 0102030405060708", "key_id: 010203040506070809", FL_EFORMAT,
         "line 3"},
        {"key_id: 0102030405060708", "key_id: 01020304050607AB", FL_EFORMAT,
         "line 3"},
        {"records: 4294967295", "records: 4294967296", FL_EFORMAT, "line 11"},
        {"lost_sequence: 18446744073709551615",
         "lost_sequence: 18446744073709551616", FL_EFORMAT, "line 17"},
        {"sequence: 42", "sequence: 042", FL_EFORMAT, "line 5"},
        {"sequence: 42", "sequence: +42", FL_EFORMAT, "line 5"},
        {"sequence: 42", "sequence: ", FL_EFORMAT, "line 5"},
        {"sequence: 42\n", "sequence: 42\r\n", FL_EFORMAT, "line 5"}, /* CRLF */
        {"sequence: 42\n", "sequence: 42 \n", FL_EFORMAT, "line 5"},
        {"sequence: 42", "sequence:  42", FL_EFORMAT, "line 5"},
        {"sequence: 42", "sequence:42", FL_EFORMAT, "line 5"},
        {"hash: blake2b-256", "hash: md5", FL_EFORMAT, "line 6"},
        {"sensor: edge-1", "sensor: edge/1", FL_EFORMAT, "line 2"},
        {"lost_spool: 3\n", "lost_spool: 3", FL_EFORMAT, "line 18"},
        {"sensor: edge-1", "sensor: edge\t1", FL_EFORMAT, "line 2"},
    };
    char err[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        cr_expect_eq(parse_edited(cases[i].from, cases[i].to, err, sizeof(err)),
                     cases[i].rc, "case %zu (%s)", i, cases[i].to);
        cr_expect_not_null(strstr(err, cases[i].line), "case %zu: %s", i, err);
    }
}

Test(common_statement, refuses_a_nul_byte_and_a_truncation)
{
    struct fl_statement st;
    char text[sizeof(golden)];

    memcpy(text, golden, sizeof(golden));
    text[40] = '\0';
    cr_assert_eq(fl_statement_parse((const uint8_t *)text, sizeof(golden) - 1,
                                    &st, NULL, 0),
                 FL_EFORMAT);
    for (size_t len = 0; len < sizeof(golden) - 1; len++) {
        cr_assert_neq(
            fl_statement_parse((const uint8_t *)golden, len, &st, NULL, 0),
            FL_OK, "len %zu", len);
    }
    cr_assert_eq(fl_statement_parse((const uint8_t *)golden, sizeof(golden) - 1,
                                    &st, NULL, 0),
                 FL_OK);
}

Test(common_statement, signature_fails_on_every_flipped_bit)
{
    char dir[256];
    char path[300];
    char cmd[300];
    char err[256] = "";
    const char *tmp = getenv("TMPDIR");
    struct fl_seckey *k = NULL;
    uint8_t text[sizeof(golden) - 1];
    uint8_t sig[FL_SIG_LEN];
    const struct fl_pubkey *pub;

    snprintf(dir, sizeof(dir), "%s/fl-st-XXXXXX", tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(fl_key_generate("edge-1", dir, err, sizeof(err)), FL_OK);
    snprintf(path, sizeof(path), "%s/edge-1.key", dir);
    cr_assert_eq(fl_seckey_load(path, &k, err, sizeof(err)), FL_OK, "%s", err);
    pub = fl_seckey_public(k);

    memcpy(text, golden, sizeof(text));
    cr_assert_eq(fl_sign(k, text, sizeof(text), sig), FL_OK);
    cr_assert_eq(fl_verify(pub, text, sizeof(text), sig), FL_OK);
    for (size_t i = 0; i < sizeof(text); i++) {
        for (int bit = 0; bit < 8; bit++) {
            text[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(fl_verify(pub, text, sizeof(text), sig), FL_EAUTH,
                         "statement byte %zu bit %d", i, bit);
            text[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t i = 0; i < FL_SIG_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sig[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(fl_verify(pub, text, sizeof(text), sig), FL_EAUTH,
                         "signature byte %zu bit %d", i, bit);
            sig[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(fl_verify(pub, text, sizeof(text) - 1, sig), FL_EAUTH);
    fl_seckey_free(k);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
