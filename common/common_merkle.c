/*
 * Merkle trees of RFC 6962 / RFC 9162 over any hash a statement may name:
 * roots, inclusion paths and their verification, and the per-record salts
 * that let one record be disclosed without its neighbours.
 */
#include "common.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01

/* An incremental hash over either function, for leaves given in parts. */
struct hasher {
    enum fl_hash_alg alg;
    union {
        crypto_hash_sha256_state sha;
        crypto_generichash_blake2b_state b2;
    } u;
};

static void
hasher_init(struct hasher *h, enum fl_hash_alg alg)
{
    h->alg = alg;
    if (alg == FL_HASH_SHA256) {
        crypto_hash_sha256_init(&h->u.sha);
    } else {
        assert(alg == FL_HASH_BLAKE2B);
        crypto_generichash_blake2b_init(&h->u.b2, NULL, 0, FL_HASH_LEN);
    }
}

static void
hasher_update(struct hasher *h, const void *data, size_t len)
{
    if (h->alg == FL_HASH_SHA256) {
        crypto_hash_sha256_update(&h->u.sha, data, len);
    } else {
        crypto_generichash_blake2b_update(&h->u.b2, data, len);
    }
}

static void
hasher_final(struct hasher *h, uint8_t out[FL_HASH_LEN])
{
    if (h->alg == FL_HASH_SHA256) {
        crypto_hash_sha256_final(&h->u.sha, out);
    } else {
        crypto_generichash_blake2b_final(&h->u.b2, out, FL_HASH_LEN);
    }
}

void
fl_merkle_leaf_salt(const uint8_t secret[FL_BATCH_SECRET_LEN], uint64_t index,
                    uint8_t salt[FL_SALT_LEN])
{
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
    uint8_t block[64] = {0};

    assert(index < ((uint64_t)1 << 34));
    crypto_stream_chacha20_ietf_xor_ic(block, block, sizeof(block), nonce,
                                       (uint32_t)(index / 4), secret);
    memcpy(salt, block + FL_SALT_LEN * (index % 4), FL_SALT_LEN);
    sodium_memzero(block, sizeof(block));
}

void
fl_merkle_leaf_salts(const uint8_t secret[FL_BATCH_SECRET_LEN], uint64_t first,
                     size_t n, uint8_t (*salts)[FL_SALT_LEN])
{
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];

    assert(first % 4 == 0 && first + n <= ((uint64_t)1 << 34));
    if (n == 0) {
        return;
    }
    /* The keystream is the salts laid end to end: one call makes them. */
    memset(salts, 0, n * FL_SALT_LEN);
    crypto_stream_chacha20_ietf_xor_ic((uint8_t *)salts, (uint8_t *)salts,
                                       n * FL_SALT_LEN, nonce,
                                       (uint32_t)(first / 4), secret);
}

void
fl_merkle_hash_leaf(enum fl_hash_alg alg, const void *data, size_t len,
                    uint8_t out[FL_HASH_LEN])
{
    static const uint8_t prefix = LEAF_PREFIX;
    struct hasher h;

    hasher_init(&h, alg);
    hasher_update(&h, &prefix, 1);
    hasher_update(&h, data, len);
    hasher_final(&h, out);
}

void
fl_merkle_leaf(enum fl_hash_alg alg, const uint8_t salt[FL_SALT_LEN],
               const uint8_t *canon, size_t len, uint8_t out[FL_HASH_LEN])
{
    static const uint8_t prefix = LEAF_PREFIX;
    struct hasher h;

    hasher_init(&h, alg);
    hasher_update(&h, &prefix, 1);
    hasher_update(&h, salt, FL_SALT_LEN);
    hasher_update(&h, canon, len);
    hasher_final(&h, out);
}

void
fl_merkle_hash_node(enum fl_hash_alg alg, const uint8_t left[FL_HASH_LEN],
                    const uint8_t right[FL_HASH_LEN], uint8_t out[FL_HASH_LEN])
{
    uint8_t buf[1 + 2 * FL_HASH_LEN];

    buf[0] = NODE_PREFIX;
    memcpy(buf + 1, left, FL_HASH_LEN);
    memcpy(buf + 1 + FL_HASH_LEN, right, FL_HASH_LEN);
    fl_hash(alg, buf, sizeof(buf), out);
}

/* The largest power of two strictly below n (n >= 2). */
static size_t
split_point(size_t n)
{
    size_t k = 1;

    while (k * 2 < n) {
        k *= 2;
    }
    return k;
}

/* MTH over n >= 1 leaf hashes; recursion depth is log2(n). */
static void
subtree_hash(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
             size_t n, uint8_t out[FL_HASH_LEN])
{
    uint8_t left[FL_HASH_LEN];
    uint8_t right[FL_HASH_LEN];
    size_t k;

    if (n == 1) {
        memcpy(out, leaves[0], FL_HASH_LEN);
        return;
    }
    k = split_point(n);
    subtree_hash(alg, leaves, k, left);
    subtree_hash(alg, leaves + k, n - k, right);
    fl_merkle_hash_node(alg, left, right, out);
}

int
fl_merkle_root(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
               size_t n, uint8_t root[FL_HASH_LEN])
{
    if (fl_hash_name(alg) == NULL) {
        return FL_EINVAL;
    }
    if (n == 0) {
        fl_hash(alg, "", 0, root);
        return FL_OK;
    }
    subtree_hash(alg, leaves, n, root);
    return FL_OK;
}

/* RFC 6962 PATH(m, D[n]): the deeper part first, then this level's
 * sibling subtree. */
static int
path_collect(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
             size_t n, size_t m, uint8_t (*path)[FL_HASH_LEN], size_t cap,
             size_t *npath)
{
    size_t k;
    int rc;

    if (n <= 1) {
        return FL_OK;
    }
    k = split_point(n);
    if (m < k) {
        rc = path_collect(alg, leaves, k, m, path, cap, npath);
    } else {
        rc = path_collect(alg, leaves + k, n - k, m - k, path, cap, npath);
    }
    if (rc != FL_OK) {
        return rc;
    }
    if (*npath >= cap) {
        return FL_ELIMIT;
    }
    if (m < k) {
        subtree_hash(alg, leaves + k, n - k, path[*npath]);
    } else {
        subtree_hash(alg, leaves, k, path[*npath]);
    }
    (*npath)++;
    return FL_OK;
}

int
fl_merkle_path(enum fl_hash_alg alg, const uint8_t (*leaves)[FL_HASH_LEN],
               size_t n, size_t index, uint8_t (*path)[FL_HASH_LEN], size_t cap,
               size_t *npath)
{
    *npath = 0;
    if (index >= n || fl_hash_name(alg) == NULL) {
        return FL_EINVAL;
    }
    return path_collect(alg, leaves, n, index, path, cap, npath);
}

int
fl_merkle_path_verify(enum fl_hash_alg alg, const uint8_t leaf[FL_HASH_LEN],
                      size_t index, size_t n,
                      const uint8_t (*path)[FL_HASH_LEN], size_t npath,
                      const uint8_t root[FL_HASH_LEN])
{
    uint8_t r[FL_HASH_LEN];
    uint64_t fn = index;
    uint64_t sn;

    if (index >= n || fl_hash_name(alg) == NULL) {
        return FL_EAUTH;
    }
    sn = (uint64_t)n - 1;
    memcpy(r, leaf, FL_HASH_LEN);
    for (size_t i = 0; i < npath; i++) {
        if (sn == 0) {
            return FL_EAUTH;
        }
        if ((fn & 1) != 0 || fn == sn) {
            fl_merkle_hash_node(alg, path[i], r, r);
            /* Skip the levels where this node is promoted unpaired. */
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            fl_merkle_hash_node(alg, r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(r, root, FL_HASH_LEN) != 0) {
        return FL_EAUTH;
    }
    return FL_OK;
}
