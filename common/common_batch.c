/*
 * Signed batches: what a sensor ships and the archive keeps byte for
 * byte.  Building hashes every record into a Merkle root and signs a
 * statement; opening checks the signature before any parser sees the
 * statement, and records are handed out only after their root matched.
 */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define SALT_CHUNK 256              /* salts made per keystream call */
#define LEAF_HEAD (1 + FL_SALT_LEN) /* 0x00 || salt, then the canon bytes */

void
fl_chain_init(struct fl_chain *chain, const char *sensor)
{
    memset(chain, 0, sizeof(*chain));
    if (sodium_init() < 0) {
        abort(); /* no randomness: nothing safe to do */
    }
    snprintf(chain->sensor, sizeof(chain->sensor), "%s", sensor);
    randombytes_buf(chain->session, sizeof(chain->session));
}

/* Leaf hashes of n flows: one scratch buffer for the batch, salts made a
 * chunk at a time, each leaf hashed in one call over 0x00||salt||canon
 * (the same bytes fl_merkle_leaf hashes). */
static int
leaf_hashes(const uint8_t secret[FL_BATCH_SECRET_LEN],
            const struct fl_flow *flows, size_t n,
            uint8_t (*leaves)[FL_HASH_LEN])
{
    uint8_t salts[SALT_CHUNK][FL_SALT_LEN];
    size_t max_extra = 0;
    size_t cap;
    uint8_t *buf;
    int rc = FL_OK;

    for (size_t i = 0; i < n; i++) {
        if (flows[i].extra_len > max_extra) {
            max_extra = flows[i].extra_len;
        }
    }
    cap = LEAF_HEAD + FL_CANON_MAX + max_extra;
    buf = malloc(cap);
    if (buf == NULL) {
        return FL_ENOMEM;
    }
    buf[0] = 0x00;
    for (size_t i = 0; i < n; i++) {
        int len;

        if (i % SALT_CHUNK == 0) {
            size_t left = n - i;

            fl_merkle_leaf_salts(secret, i,
                                 left < SALT_CHUNK ? left : SALT_CHUNK, salts);
        }
        memcpy(buf + 1, salts[i % SALT_CHUNK], FL_SALT_LEN);
        len = fl_flow_canon(&flows[i], buf + LEAF_HEAD, cap - LEAF_HEAD);
        if (len < 0) {
            rc = len;
            break;
        }
        fl_hash(FL_HASH_BATCH, buf, LEAF_HEAD + (size_t)len, leaves[i]);
    }
    sodium_memzero(salts, sizeof(salts));
    free(buf);
    return rc;
}

/* The statement's fields that come from the flows and the chain. */
static void
statement_fill(struct fl_statement *st, const struct fl_seckey *k,
               const struct fl_chain *chain, const struct fl_flow *flows,
               size_t n, const struct fl_statement *st_losses)
{
    memset(st, 0, sizeof(*st));
    memcpy(st->sensor, chain->sensor, sizeof(st->sensor));
    memcpy(st->key_id, fl_seckey_public(k)->id, FL_KEYID_LEN);
    memcpy(st->session, chain->session, sizeof(st->session));
    st->sequence = chain->next_sequence;
    st->hash = FL_HASH_BATCH;
    memcpy(st->previous, chain->previous, FL_HASH_LEN);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || flows[i].time_start < st->time_first) {
            st->time_first = flows[i].time_start;
        }
        if (flows[i].time_end > st->time_last) {
            st->time_last = flows[i].time_end;
        }
    }
    st->created = fl_time_now_ms();
    st->records = (uint32_t)n;
    if (st_losses != NULL) {
        st->lost_socket = st_losses->lost_socket;
        st->lost_decode = st_losses->lost_decode;
        st->lost_sequence = st_losses->lost_sequence;
        st->lost_spool = st_losses->lost_spool;
    }
}

/* header | statement | signature | payload, into one malloc'd buffer. */
static int
assemble(const struct fl_str *text, const uint8_t sig[FL_SIG_LEN],
         const uint8_t *payload, size_t plen, uint8_t **out, size_t *outlen)
{
    size_t total = FL_BATCH_HEADER_LEN + text->len + FL_SIG_LEN + plen;
    uint8_t *b;

    if (plen > FL_BATCH_MAX_BYTES || total > FL_BATCH_MAX_BYTES) {
        return FL_ELIMIT;
    }
    b = malloc(total);
    if (b == NULL) {
        return FL_ENOMEM;
    }
    memcpy(b, FL_BATCH_MAGIC, 8);
    fl_put_be32(b + 8, (uint32_t)text->len);
    fl_put_be32(b + 12, (uint32_t)plen);
    memcpy(b + FL_BATCH_HEADER_LEN, text->p, text->len);
    memcpy(b + FL_BATCH_HEADER_LEN + text->len, sig, FL_SIG_LEN);
    memcpy(b + FL_BATCH_HEADER_LEN + text->len + FL_SIG_LEN, payload, plen);
    *out = b;
    *outlen = total;
    return FL_OK;
}

int
fl_batch_build(const struct fl_seckey *k, struct fl_chain *chain,
               const struct fl_flow *flows, size_t n,
               const struct fl_statement *st_losses, uint8_t **out,
               size_t *outlen)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    uint8_t sig[FL_SIG_LEN];
    uint8_t(*leaves)[FL_HASH_LEN] = NULL;
    struct fl_statement st;
    struct fl_str text = {0};
    uint8_t *payload = NULL;
    size_t plen = 0;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (n > FL_BATCH_MAX_RECORDS || !fl_name_is_valid(chain->sensor)) {
        return FL_EINVAL;
    }
    if (sodium_init() < 0) {
        return FL_EIO;
    }
    randombytes_buf(secret, sizeof(secret));
    statement_fill(&st, k, chain, flows, n, st_losses);

    /* Merkle root over the salted canonical records. */
    rc = FL_ENOMEM;
    leaves = malloc((n > 0 ? n : 1) * sizeof(*leaves));
    if (leaves == NULL) {
        goto out;
    }
    rc = leaf_hashes(secret, flows, n, leaves);
    if (rc == FL_OK) {
        rc =
            fl_merkle_root(FL_HASH_BATCH, (const uint8_t(*)[FL_HASH_LEN])leaves,
                           n, st.merkle_root);
    }
    if (rc != FL_OK) {
        goto out;
    }

    /* The payload: columns under zstd, with the secret inside. */
    rc = fl_columns_encode(flows, n, secret, FL_BATCH_ZSTD_LEVEL, &payload,
                           &plen);
    if (rc != FL_OK) {
        goto out;
    }
    fl_hash(FL_HASH_BATCH, payload, plen, st.payload_hash);
    st.payload_len = plen;

    /* The statement, its signature, the bytes. */
    rc = fl_statement_format(&st, &text);
    if (rc == FL_OK) {
        rc = fl_sign(k, (const uint8_t *)text.p, text.len, sig);
    }
    if (rc == FL_OK) {
        rc = assemble(&text, sig, payload, plen, out, outlen);
    }
    if (rc != FL_OK) {
        goto out;
    }
    fl_hash(FL_HASH_BATCH, text.p, text.len, chain->previous);
    chain->next_sequence++;
out:
    sodium_memzero(secret, sizeof(secret));
    free(leaves);
    free(payload);
    fl_str_fini(&text);
    return rc;
}

/* The 16-byte header: the only bytes read before the signature checks. */
static int
split(const uint8_t *batch, size_t len, struct fl_batch_view *v, char *err,
      size_t errlen)
{
    struct fl_cursor c;
    const uint8_t *magic;
    uint32_t slen;
    uint32_t plen;

    fl_cursor_init(&c, batch, len);
    if (!fl_cursor_bytes(&c, 8, &magic) || !fl_cursor_u32(&c, &slen) ||
        !fl_cursor_u32(&c, &plen)) {
        fl_errf(err, errlen, "offset 0: batch shorter than its header");
        return FL_EFORMAT;
    }
    if (memcmp(magic, FL_BATCH_MAGIC, 8) != 0) {
        fl_errf(err, errlen, "offset 0: not a fl0wer batch");
        return FL_EFORMAT;
    }
    if (slen == 0 || slen > FL_STATEMENT_MAX) {
        fl_errf(err, errlen, "offset 8: statement length %lu out of range",
                (unsigned long)slen);
        return FL_EFORMAT;
    }
    if ((uint64_t)slen + FL_SIG_LEN + plen != c.left) {
        fl_errf(err, errlen,
                "offset 12: lengths %lu + %d + %lu do not add up to the "
                "%zu bytes after the header",
                (unsigned long)slen, FL_SIG_LEN, (unsigned long)plen, c.left);
        return FL_EFORMAT;
    }
    fl_cursor_bytes(&c, slen, &v->statement);
    fl_cursor_bytes(&c, FL_SIG_LEN, &v->signature);
    fl_cursor_bytes(&c, plen, &v->payload);
    v->statement_len = slen;
    v->payload_len = plen;
    return FL_OK;
}

/* What the verified statement must say about the key and the payload. */
static int
check_claims(const struct fl_batch_view *v, const struct fl_pubkey *k,
             char *err, size_t errlen)
{
    uint8_t h[FL_HASH_LEN];
    size_t poff = FL_BATCH_HEADER_LEN + v->statement_len + FL_SIG_LEN;

    if (memcmp(v->st.key_id, k->id, FL_KEYID_LEN) != 0 ||
        strcmp(v->st.sensor, k->name) != 0) {
        fl_errf(err, errlen,
                "offset %d: statement names sensor %s, not "
                "the key's %s",
                FL_BATCH_HEADER_LEN, v->st.sensor, k->name);
        return FL_EAUTH;
    }
    if (v->st.payload_len != v->payload_len) {
        fl_errf(err, errlen,
                "offset %zu: payload of %zu bytes, statement "
                "says %llu",
                poff, v->payload_len, (unsigned long long)v->st.payload_len);
        return FL_EAUTH;
    }
    fl_hash(v->st.hash, v->payload, v->payload_len, h);
    if (sodium_memcmp(h, v->st.payload_hash, FL_HASH_LEN) != 0) {
        fl_errf(err, errlen,
                "offset %zu: payload hash does not match the "
                "statement",
                poff);
        return FL_EAUTH;
    }
    return FL_OK;
}

int
fl_batch_open(const uint8_t *batch, size_t len, const struct fl_pubkey *k,
              struct fl_batch_view *out, char *err, size_t errlen)
{
    struct fl_batch_view v;
    char why[160];
    int rc;

    memset(&v, 0, sizeof(v));
    rc = split(batch, len, &v, err, errlen);
    if (rc != FL_OK) {
        return rc;
    }
    if (fl_verify(k, v.statement, v.statement_len, v.signature) != FL_OK) {
        fl_errf(err, errlen,
                "offset %zu: signature does not verify with "
                "key %s",
                FL_BATCH_HEADER_LEN + v.statement_len, k->name);
        return FL_EAUTH;
    }
    rc = fl_statement_parse(v.statement, v.statement_len, &v.st, why,
                            sizeof(why));
    if (rc != FL_OK) {
        fl_errf(err, errlen, "offset %d: statement: %s", FL_BATCH_HEADER_LEN,
                why);
        return rc;
    }
    rc = check_claims(&v, k, err, errlen);
    if (rc != FL_OK) {
        return rc;
    }
    *out = v;
    return FL_OK;
}

int
fl_batch_peek(const uint8_t *batch, size_t len, char sensor[65],
              uint8_t key_id[FL_KEYID_LEN])
{
    struct fl_batch_view v;
    int rc;

    memset(&v, 0, sizeof(v));
    rc = split(batch, len, &v, NULL, 0);
    if (rc == FL_OK) {
        rc = fl_statement_parse(v.statement, v.statement_len, &v.st, NULL, 0);
    }
    if (rc != FL_OK) {
        return rc;
    }
    memcpy(sensor, v.st.sensor, sizeof(v.st.sensor));
    memcpy(key_id, v.st.key_id, FL_KEYID_LEN);
    return FL_OK;
}

void
fl_batch_id(const struct fl_batch_view *v, uint8_t id[FL_HASH_LEN])
{
    fl_hash(v->st.hash, v->statement, v->statement_len, id);
}

/* Pass one of fl_batch_records: leaf hashes as the payload decodes. */
struct leaf_pass {
    enum fl_hash_alg alg;
    const uint8_t *secret; /* filled by the decoder before any record */
    uint8_t (*leaves)[FL_HASH_LEN];
    size_t n;
    size_t i;
    uint8_t salts[SALT_CHUNK][FL_SALT_LEN];
    uint8_t *buf;
    size_t cap;
    int rc;
};

static void
leaf_one(void *arg, const struct fl_flow *f)
{
    struct leaf_pass *lp = arg;
    size_t need = LEAF_HEAD + FL_CANON_MAX + (size_t)f->extra_len;
    int len;

    if (lp->rc != FL_OK || lp->i >= lp->n) {
        lp->rc = lp->rc != FL_OK ? lp->rc : FL_EFORMAT;
        return;
    }
    if (need > lp->cap) {
        uint8_t *p = realloc(lp->buf, need);

        if (p == NULL) {
            lp->rc = FL_ENOMEM;
            return;
        }
        lp->buf = p;
        lp->cap = need;
    }
    if (lp->i % SALT_CHUNK == 0) {
        size_t left = lp->n - lp->i;

        fl_merkle_leaf_salts(lp->secret, lp->i,
                             left < SALT_CHUNK ? left : SALT_CHUNK, lp->salts);
    }
    lp->buf[0] = 0x00;
    memcpy(lp->buf + 1, lp->salts[lp->i % SALT_CHUNK], FL_SALT_LEN);
    len = fl_flow_canon(f, lp->buf + LEAF_HEAD, lp->cap - LEAF_HEAD);
    if (len < 0) {
        lp->rc = len;
        return;
    }
    fl_hash(lp->alg, lp->buf, LEAF_HEAD + (size_t)len, lp->leaves[lp->i]);
    lp->i++;
}

/* A ceiling on decompressed columns: generous per record, never huge. */
static size_t
decode_ceiling(uint32_t records)
{
    uint64_t c = (uint64_t)records * 4096 + (1u << 20);

    return c > (1u << 30) ? (size_t)1 << 30 : (size_t)c;
}

static int
check_root(const struct fl_batch_view *v, uint8_t secret[FL_BATCH_SECRET_LEN])
{
    struct leaf_pass *lp = calloc(1, sizeof(*lp));
    uint32_t n = v->st.records;
    uint8_t root[FL_HASH_LEN];
    int rc = FL_ENOMEM;

    if (lp == NULL) {
        return FL_ENOMEM;
    }
    lp->alg = v->st.hash;
    lp->secret = secret;
    lp->n = n;
    lp->leaves = malloc((n > 0 ? n : 1) * sizeof(*lp->leaves));
    if (lp->leaves == NULL) {
        goto out;
    }
    rc = fl_columns_decode(v->payload, v->payload_len, n, decode_ceiling(n),
                           secret, leaf_one, lp);
    if (rc == FL_OK && (lp->rc != FL_OK || lp->i != n)) {
        rc = lp->rc != FL_OK ? lp->rc : FL_EFORMAT;
    }
    if (rc == FL_OK) {
        rc = fl_merkle_root(lp->alg, (const uint8_t(*)[FL_HASH_LEN])lp->leaves,
                            n, root);
    }
    if (rc == FL_OK &&
        sodium_memcmp(root, v->st.merkle_root, FL_HASH_LEN) != 0) {
        rc = FL_EAUTH;
    }
out:
    free(lp->leaves);
    free(lp->buf);
    sodium_memzero(lp, sizeof(*lp));
    free(lp);
    return rc;
}

int
fl_batch_records(const struct fl_batch_view *v,
                 void (*fn)(void *arg, const struct fl_flow *f), void *arg)
{
    uint8_t secret[FL_BATCH_SECRET_LEN];
    int rc;

    if (v->st.records > FL_BATCH_MAX_RECORDS) {
        return FL_EFORMAT;
    }
    rc = check_root(v, secret);
    if (rc == FL_OK) {
        /* Decoding is deterministic: the second pass sees the same flows
         * whose root just matched. */
        rc = fl_columns_decode(v->payload, v->payload_len, v->st.records,
                               decode_ceiling(v->st.records), secret, fn, arg);
    }
    sodium_memzero(secret, sizeof(secret));
    return rc;
}
