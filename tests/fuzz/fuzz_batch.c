/*
 * libFuzzer target for batches.  Input starting with 'P' is a payload
 * that the target signs into an otherwise valid batch (record count from
 * its next two bytes), so the payload decoder and the Merkle check behind
 * fl_batch_records are reached; any other input is opened as a batch as
 * it stands (header split, peek, signature refusal).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fl_seckey *key;

static void
count_flow(void *arg, const struct fl_flow *f)
{
    (void)f;
    (*(size_t *)arg)++;
}

/* A key made once per process in a private temporary directory. */
static const struct fl_seckey *
fuzz_key(void)
{
    char dir[] = "/tmp/fl-fuzz-XXXXXX";
    char path[64];

    if (key != NULL) {
        return key;
    }
    if (mkdtemp(dir) == NULL ||
        fl_key_generate("fuzz", dir, NULL, 0) != FL_OK) {
        abort();
    }
    snprintf(path, sizeof(path), "%s/fuzz.key", dir);
    if (fl_seckey_load(path, &key, NULL, 0) != FL_OK) {
        abort();
    }
    unlink(path);
    snprintf(path, sizeof(path), "%s/fuzz.pub", dir);
    unlink(path);
    rmdir(dir);
    return key;
}

/* Signs a statement over payload and assembles the batch bytes. */
static uint8_t *
sign_payload(const uint8_t *payload, size_t plen, uint32_t records, size_t *len)
{
    const struct fl_seckey *k = fuzz_key();
    struct fl_statement st;
    struct fl_str text = {0};
    uint8_t *b;

    memset(&st, 0, sizeof(st));
    strcpy(st.sensor, "fuzz");
    memcpy(st.key_id, fl_seckey_public(k)->id, FL_KEYID_LEN);
    st.hash = FL_HASH_BATCH;
    st.records = records;
    st.payload_len = plen;
    fl_hash(st.hash, payload, plen, st.payload_hash);
    if (fl_statement_format(&st, &text) != FL_OK) {
        abort();
    }
    *len = FL_BATCH_HEADER_LEN + text.len + FL_SIG_LEN + plen;
    b = malloc(*len);
    if (b == NULL) {
        abort();
    }
    memcpy(b, FL_BATCH_MAGIC, 8);
    fl_put_be32(b + 8, (uint32_t)text.len);
    fl_put_be32(b + 12, (uint32_t)plen);
    memcpy(b + 16, text.p, text.len);
    fl_sign(k, (const uint8_t *)text.p, text.len, b + 16 + text.len);
    memcpy(b + 16 + text.len + FL_SIG_LEN, payload, plen);
    fl_str_fini(&text);
    return b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fl_pubkey *pub = fl_seckey_public(fuzz_key());
    struct fl_batch_view v;
    char sensor[65];
    uint8_t id[FL_KEYID_LEN];
    uint8_t *b;
    size_t len;
    size_t n = 0;

    if (size >= 3 && data[0] == 'P') {
        uint32_t records = (uint32_t)(data[1] << 8 | data[2]);

        b = sign_payload(data + 3, size - 3, records, &len);
        if (fl_batch_open(b, len, pub, &v, NULL, 0) != FL_OK) {
            abort(); /* we signed it ourselves */
        }
        if (fl_batch_records(&v, count_flow, &n) == FL_OK && n != records) {
            abort();
        }
        free(b);
        return 0;
    }
    fl_batch_peek(data, size, sensor, id);
    if (fl_batch_open(data, size, pub, &v, NULL, 0) == FL_OK) {
        abort(); /* nothing but our own signature can verify */
    }
    return 0;
}
