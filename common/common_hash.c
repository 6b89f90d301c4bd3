/*
 * Hash functions named by statements (SHA-256 and BLAKE2b-256, both from
 * libsodium) and the hex text that statements and key files use.
 */
#include "common.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

void
fl_hash_sha256(const void *data, size_t len, uint8_t out[FL_HASH_LEN])
{
    crypto_hash_sha256(out, data, len);
}

void
fl_hash(enum fl_hash_alg alg, const void *data, size_t len,
        uint8_t out[FL_HASH_LEN])
{
    switch (alg) {
    case FL_HASH_SHA256:
        crypto_hash_sha256(out, data, len);
        return;
    case FL_HASH_BLAKE2B:
        crypto_generichash_blake2b(out, FL_HASH_LEN, data, len, NULL, 0);
        return;
    }
    assert(!"unknown hash");
}

const char *
fl_hash_name(enum fl_hash_alg alg)
{
    switch (alg) {
    case FL_HASH_SHA256:
        return "sha-256";
    case FL_HASH_BLAKE2B:
        return "blake2b-256";
    }
    return NULL;
}

int
fl_hash_from_name(const char *name, size_t len, enum fl_hash_alg *out)
{
    static const enum fl_hash_alg all[] = {FL_HASH_SHA256, FL_HASH_BLAKE2B};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *s = fl_hash_name(all[i]);

        if (strlen(s) == len && memcmp(s, name, len) == 0) {
            *out = all[i];
            return FL_OK;
        }
    }
    return FL_EFORMAT;
}

void
fl_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int
nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int
fl_unhex(const char *s, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]);
        int lo;

        if (hi < 0) {
            return FL_EFORMAT;
        }
        lo = nibble(s[2 * i + 1]);
        if (lo < 0) {
            return FL_EFORMAT;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    return s[2 * n] == '\0' ? FL_OK : FL_EFORMAT;
}
