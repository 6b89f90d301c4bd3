/*
 * The statement a sensor signs: one "key: value" line per field in a
 * fixed order under a version line.  The parser accepts exactly the text
 * the formatter writes, so a statement has one form and its bytes are what
 * the signature and the next statement's "previous" commit to.
 */
#include "common.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define STATEMENT_VERSION_LINE "fl0wer-statement 1"
#define STATEMENT_MAGIC "fl0wer-statement "

enum field_kind {
    F_NAME, /* fl_name_is_valid text */
    F_HEX,  /* lower-case hex of a fixed number of bytes */
    F_U64,  /* decimal, no sign, no leading zero */
    F_U32,
    F_HASH, /* a fl_hash_name */
};

struct field {
    const char *key;
    enum field_kind kind;
    size_t off;
    size_t len; /* bytes, for F_HEX */
};

#define FIELD(name, kind, len)                                                 \
    {                                                                          \
#name, kind, offsetof(struct fl_statement, name), len                  \
    }

/* The order of the lines: part of the format, never to be changed. */
static const struct field fields[] = {
    FIELD(sensor, F_NAME, 0),
    FIELD(key_id, F_HEX, FL_KEYID_LEN),
    FIELD(session, F_HEX, 16),
    FIELD(sequence, F_U64, 0),
    FIELD(hash, F_HASH, 0),
    FIELD(previous, F_HEX, FL_HASH_LEN),
    FIELD(time_first, F_U64, 0),
    FIELD(time_last, F_U64, 0),
    FIELD(created, F_U64, 0),
    FIELD(records, F_U32, 0),
    FIELD(merkle_root, F_HEX, FL_HASH_LEN),
    FIELD(payload_hash, F_HEX, FL_HASH_LEN),
    FIELD(payload_len, F_U64, 0),
    FIELD(lost_socket, F_U64, 0),
    FIELD(lost_decode, F_U64, 0),
    FIELD(lost_sequence, F_U64, 0),
    FIELD(lost_spool, F_U64, 0),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static int
format_field(const struct fl_statement *st, const struct field *f,
             struct fl_str *out)
{
    const uint8_t *p = (const uint8_t *)st + f->off;
    char hex[2 * FL_HASH_LEN + 1];
    uint64_t v64;
    uint32_t v32;

    switch (f->kind) {
    case F_NAME:
        return fl_str_printf(out, "%s: %s\n", f->key, st->sensor);
    case F_HEX:
        fl_hex(p, f->len, hex);
        return fl_str_printf(out, "%s: %s\n", f->key, hex);
    case F_U64:
        memcpy(&v64, p, sizeof(v64));
        return fl_str_printf(out, "%s: %llu\n", f->key,
                             (unsigned long long)v64);
    case F_U32:
        memcpy(&v32, p, sizeof(v32));
        return fl_str_printf(out, "%s: %lu\n", f->key, (unsigned long)v32);
    case F_HASH:
        return fl_str_printf(out, "%s: %s\n", f->key, fl_hash_name(st->hash));
    }
    return FL_EINVAL;
}

int
fl_statement_format(const struct fl_statement *st, struct fl_str *out)
{
    int rc;

    if (!fl_name_is_valid(st->sensor) || fl_hash_name(st->hash) == NULL) {
        return FL_EINVAL;
    }
    rc = fl_str_printf(out, "%s\n", STATEMENT_VERSION_LINE);
    for (size_t i = 0; rc == FL_OK && i < NFIELDS; i++) {
        rc = format_field(st, &fields[i], out);
    }
    return rc;
}

/* Strict decimal: digits only, no leading zero, no overflow past max. */
static bool
parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || (len > 1 && s[0] == '0')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Stores one value; false when it is not of the field's form. */
static bool
parse_value(const struct field *f, const char *val, size_t len,
            struct fl_statement *st)
{
    uint8_t *p = (uint8_t *)st + f->off;
    char buf[2 * FL_HASH_LEN + 1];
    uint64_t v;
    uint32_t v32;

    switch (f->kind) {
    case F_NAME:
        if (len >= sizeof(st->sensor)) {
            return false;
        }
        memcpy(st->sensor, val, len);
        st->sensor[len] = '\0';
        return fl_name_is_valid(st->sensor);
    case F_HEX:
        if (len != 2 * f->len) {
            return false;
        }
        memcpy(buf, val, len);
        buf[len] = '\0';
        return fl_unhex(buf, p, f->len) == FL_OK;
    case F_U64:
        if (!parse_dec(val, len, UINT64_MAX, &v)) {
            return false;
        }
        memcpy(p, &v, sizeof(v));
        return true;
    case F_U32:
        if (!parse_dec(val, len, UINT32_MAX, &v)) {
            return false;
        }
        v32 = (uint32_t)v;
        memcpy(p, &v32, sizeof(v32));
        return true;
    case F_HASH:
        return fl_hash_from_name(val, len, &st->hash) == FL_OK;
    }
    return false;
}

/* Splits the next line off text (without its '\n'); false if there is no
 * '\n' before the end or a byte is not printable ASCII. */
static bool
next_line(const uint8_t *text, size_t len, size_t *pos, const char **line,
          size_t *linelen)
{
    size_t start = *pos;

    for (size_t i = start; i < len; i++) {
        if (text[i] == '\n') {
            *line = (const char *)text + start;
            *linelen = i - start;
            *pos = i + 1;
            return true;
        }
        if (text[i] < 0x20 || text[i] > 0x7e) {
            return false;
        }
    }
    return false;
}

static int
parse_field(const struct field *f, const char *line, size_t n,
            struct fl_statement *st, size_t lineno, char *err, size_t errlen)
{
    size_t klen = strlen(f->key);

    if (n < klen + 2 || memcmp(line, f->key, klen) != 0 || line[klen] != ':' ||
        line[klen + 1] != ' ') {
        snprintf(err, errlen, "line %zu: expected \"%s: \"", lineno, f->key);
        return FL_EFORMAT;
    }
    if (!parse_value(f, line + klen + 2, n - klen - 2, st)) {
        snprintf(err, errlen, "line %zu: bad value for %s", lineno, f->key);
        return FL_EFORMAT;
    }
    return FL_OK;
}

int
fl_statement_parse(const uint8_t *text, size_t len, struct fl_statement *out,
                   char *err, size_t errlen)
{
    char dummy[1];
    struct fl_statement st;
    const char *line;
    size_t n;
    size_t pos = 0;
    int rc;

    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    memset(&st, 0, sizeof(st));
    if (len > FL_STATEMENT_MAX) {
        snprintf(err, errlen, "statement longer than %d bytes",
                 FL_STATEMENT_MAX);
        return FL_EFORMAT;
    }

    /* Line 1: the version. */
    if (!next_line(text, len, &pos, &line, &n)) {
        snprintf(err, errlen, "line 1: not a complete printable line");
        return FL_EFORMAT;
    }
    if (n != strlen(STATEMENT_VERSION_LINE) ||
        memcmp(line, STATEMENT_VERSION_LINE, n) != 0) {
        bool other =
            n > strlen(STATEMENT_MAGIC) &&
            memcmp(line, STATEMENT_MAGIC, strlen(STATEMENT_MAGIC)) == 0;

        snprintf(err, errlen, "line 1: %s",
                 other ? "unsupported version" : "not a fl0wer statement");
        return other ? FL_EVERSION : FL_EFORMAT;
    }

    /* One line per field, in order. */
    for (size_t i = 0; i < NFIELDS; i++) {
        if (!next_line(text, len, &pos, &line, &n)) {
            snprintf(err, errlen, "line %zu: missing or not printable (%s)",
                     i + 2, fields[i].key);
            return FL_EFORMAT;
        }
        rc = parse_field(&fields[i], line, n, &st, i + 2, err, errlen);
        if (rc != FL_OK) {
            return rc;
        }
    }

    if (pos != len) {
        snprintf(err, errlen, "line %zu: text after the last field",
                 NFIELDS + 2);
        return FL_EFORMAT;
    }
    *out = st;
    return FL_OK;
}
