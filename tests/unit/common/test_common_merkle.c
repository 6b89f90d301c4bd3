/*
 * Merkle trees against the RFC 6962 / RFC 9162 test vectors (checked
 * independently by tests/tools/merkle_vectors.py), inclusion paths for
 * every leaf of small trees, salts, hex and CRC-32C.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common.h"

/* The Certificate Transparency test leaves. */
static const struct {
    const char *data;
    size_t len;
} ct_leaves[8] = {
    {"", 0},
    {"\x00", 1},
    {"\x10", 1},
    {"\x20\x21", 2},
    {"\x30\x31", 2},
    {"\x40\x41\x42\x43", 4},
    {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
    {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};

static const char *sha256_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Same tree with BLAKE2b-256, from Python's hashlib.blake2b. */
static const char *blake2b_roots[9] = {
    "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314",
    "607844f4b0299f5c45d63dd035de1f8d697711c7f092b8fa82325f670f6d386a",
    "6ee5d7ded74104b2316b73f9843e14d16d9c5f553a39cbd7da7c3c8238fe0b0e",
    "dad1013557a71536d36ab10db2ea4847bed7ded78aa9d2682ffc0e221e758444",
    "a69507075082f2f7bd0e3e23bd31d7082c4c78ce98d87d897f7990eecf7d6ec5",
    "76840409bd8cc8be20c053d9569472d0bbea7b4f483cd5ae0624ef253c64f227",
    "ae8349a901b95ac305157e4ff4f5cf486653fed085ea4dd59a59c9375682933e",
    "59cc7108743d34853ea37ea07558da3407712c7f0fdb76e59753eb243e0c438e",
};

static void
check_roots(enum fl_hash_alg alg, const char **roots)
{
    uint8_t leaves[8][FL_HASH_LEN];
    uint8_t root[FL_HASH_LEN];
    char hex[2 * FL_HASH_LEN + 1];

    for (size_t i = 0; i < 8; i++) {
        fl_merkle_hash_leaf(alg, ct_leaves[i].data, ct_leaves[i].len,
                            leaves[i]);
    }
    for (size_t n = 0; n <= 8; n++) {
        cr_assert_eq(
            fl_merkle_root(alg, (const uint8_t(*)[FL_HASH_LEN])leaves, n, root),
            FL_OK);
        fl_hex(root, FL_HASH_LEN, hex);
        cr_expect_str_eq(hex, roots[n], "%s root of %zu leaves",
                         fl_hash_name(alg), n);
    }
}

Test(common_merkle, matches_rfc6962_sha256_roots)
{
    check_roots(FL_HASH_SHA256, sha256_roots);
}

Test(common_merkle, matches_independent_blake2b_roots)
{
    check_roots(FL_HASH_BLAKE2B, blake2b_roots);
}

/* Leaves of a tree of n made from the index, so every tree differs. */
static void
make_leaves(enum fl_hash_alg alg, uint8_t (*leaves)[FL_HASH_LEN], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t data[8];

        fl_put_be64(data, i * 7919 + n);
        fl_merkle_hash_leaf(alg, data, sizeof(data), leaves[i]);
    }
}

static void
check_all_paths(enum fl_hash_alg alg)
{
    uint8_t leaves[33][FL_HASH_LEN];
    uint8_t path[64][FL_HASH_LEN];
    uint8_t root[FL_HASH_LEN];
    size_t np;

    for (size_t n = 1; n <= 33; n++) {
        const uint8_t(*cl)[FL_HASH_LEN] = (const uint8_t(*)[FL_HASH_LEN])leaves;
        const uint8_t(*cp)[FL_HASH_LEN] = (const uint8_t(*)[FL_HASH_LEN])path;

        make_leaves(alg, leaves, n);
        cr_assert_eq(fl_merkle_root(alg, cl, n, root), FL_OK);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(fl_merkle_path(alg, cl, n, i, path, 64, &np), FL_OK);
            cr_assert_eq(
                fl_merkle_path_verify(alg, leaves[i], i, n, cp, np, root),
                FL_OK, "n=%zu i=%zu", n, i);
            /* Wrong index or wrong leaf: refused. */
            if (n > 1) {
                cr_assert_eq(fl_merkle_path_verify(alg, leaves[i], (i + 1) % n,
                                                   n, cp, np, root),
                             FL_EAUTH, "n=%zu i=%zu", n, i);
                cr_assert_eq(fl_merkle_path_verify(alg, leaves[(i + 1) % n], i,
                                                   n, cp, np, root),
                             FL_EAUTH);
            }
            /* An index past the size is refused before hashing. */
            cr_assert_eq(
                fl_merkle_path_verify(alg, leaves[i], n, n, cp, np, root),
                FL_EAUTH);
        }
    }
}

Test(common_merkle, proves_every_leaf_of_trees_up_to_33_sha256)
{
    check_all_paths(FL_HASH_SHA256);
}

Test(common_merkle, proves_every_leaf_of_trees_up_to_33_blake2b)
{
    check_all_paths(FL_HASH_BLAKE2B);
}

Test(common_merkle, refuses_a_tampered_path)
{
    enum fl_hash_alg alg = FL_HASH_BLAKE2B;
    uint8_t leaves[21][FL_HASH_LEN];
    uint8_t path[64][FL_HASH_LEN];
    uint8_t root[FL_HASH_LEN];
    const uint8_t(*cl)[FL_HASH_LEN] = (const uint8_t(*)[FL_HASH_LEN])leaves;
    const uint8_t(*cp)[FL_HASH_LEN] = (const uint8_t(*)[FL_HASH_LEN])path;
    size_t np;

    make_leaves(alg, leaves, 21);
    fl_merkle_root(alg, cl, 21, root);
    cr_assert_eq(fl_merkle_path(alg, cl, 21, 13, path, 64, &np), FL_OK);
    cr_assert_eq(np, 5);
    for (size_t k = 0; k < np; k++) {
        for (size_t b = 0; b < FL_HASH_LEN; b++) {
            path[k][b] ^= 0x01;
            cr_assert_eq(
                fl_merkle_path_verify(alg, leaves[13], 13, 21, cp, np, root),
                FL_EAUTH);
            path[k][b] ^= 0x01;
        }
    }
    /* A short path and one with an extra hash are refused too. */
    cr_assert_eq(
        fl_merkle_path_verify(alg, leaves[13], 13, 21, cp, np - 1, root),
        FL_EAUTH);
    memcpy(path[np], path[0], FL_HASH_LEN);
    cr_assert_eq(
        fl_merkle_path_verify(alg, leaves[13], 13, 21, cp, np + 1, root),
        FL_EAUTH);
    cr_assert_eq(fl_merkle_path_verify(alg, leaves[13], 13, 21, cp, np, root),
                 FL_OK);
    cr_assert_eq(fl_merkle_path(alg, cl, 21, 13, path, 4, &np), FL_ELIMIT);
    cr_assert_eq(fl_merkle_path(alg, cl, 21, 21, path, 64, &np), FL_EINVAL);
}

Test(common_merkle, derives_salts_from_the_chacha20_keystream)
{
    /* Expected from Python's "cryptography" ChaCha20 (merkle_vectors.py). */
    static const struct {
        uint64_t index;
        const char *hex;
    } want[] = {
        {0, "39fd2b7dd9c5196a8dbd0377b8dc4a49"},
        {1, "8a35d86fbcde6accb2cc7d4cd8ea2492"},
        {2, "2b23cce7a26023ab3f0eef693ac87f64"},
        {5, "f8b1f3f5e1ad5b5cecf8fc122a35755c"},
    };
    uint8_t secret[FL_BATCH_SECRET_LEN];
    uint8_t zero[FL_BATCH_SECRET_LEN] = {0};
    uint8_t salt[FL_SALT_LEN];
    uint8_t bulk[300][FL_SALT_LEN];
    char hex[2 * FL_SALT_LEN + 1];

    for (size_t i = 0; i < sizeof(secret); i++) {
        secret[i] = (uint8_t)i;
    }
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        fl_merkle_leaf_salt(secret, want[i].index, salt);
        fl_hex(salt, FL_SALT_LEN, hex);
        cr_expect_str_eq(hex, want[i].hex);
    }
    /* RFC 8439 A.1 #1: key and nonce zero, block 0. */
    fl_merkle_leaf_salt(zero, 0, salt);
    fl_hex(salt, FL_SALT_LEN, hex);
    cr_expect_str_eq(hex, "76b8e0ada0f13d90405d6ae55386bd28");
    /* The bulk form gives the same salts, and no two are equal. */
    fl_merkle_leaf_salts(secret, 256, 300, bulk);
    for (size_t i = 0; i < 300; i++) {
        fl_merkle_leaf_salt(secret, 256 + i, salt);
        cr_assert_eq(memcmp(salt, bulk[i], FL_SALT_LEN), 0, "index %zu", i);
        if (i > 0) {
            cr_assert_neq(memcmp(bulk[i - 1], bulk[i], FL_SALT_LEN), 0);
        }
    }
}

Test(common_merkle, salted_leaf_hashes_salt_then_record)
{
    uint8_t salt[FL_SALT_LEN];
    uint8_t data[FL_SALT_LEN + 5];
    uint8_t a[FL_HASH_LEN];
    uint8_t b[FL_HASH_LEN];

    memset(salt, 0xab, sizeof(salt));
    memcpy(data, salt, FL_SALT_LEN);
    memcpy(data + FL_SALT_LEN, "hello", 5);
    fl_merkle_leaf(FL_HASH_BLAKE2B, salt, (const uint8_t *)"hello", 5, a);
    fl_merkle_hash_leaf(FL_HASH_BLAKE2B, data, sizeof(data), b);
    cr_assert_eq(memcmp(a, b, FL_HASH_LEN), 0);
    fl_merkle_leaf(FL_HASH_SHA256, salt, (const uint8_t *)"hello", 5, b);
    cr_assert_neq(memcmp(a, b, FL_HASH_LEN), 0);
}

Test(common_hash, hex_round_trips_and_refuses_bad_digits)
{
    uint8_t b[4] = {0x00, 0x7f, 0xa5, 0xff};
    uint8_t back[4];
    char hex[9];
    enum fl_hash_alg alg;

    fl_hex(b, 4, hex);
    cr_assert_str_eq(hex, "007fa5ff");
    cr_assert_eq(fl_unhex(hex, back, 4), FL_OK);
    cr_assert_eq(memcmp(b, back, 4), 0);
    cr_assert_eq(fl_unhex("007FA5FF", back, 4), FL_EFORMAT);
    cr_assert_eq(fl_unhex("007fa5f", back, 4), FL_EFORMAT);
    cr_assert_eq(fl_unhex("007fa5ff0", back, 4), FL_EFORMAT);
    cr_assert_eq(fl_unhex("007fa5fg", back, 4), FL_EFORMAT);
    cr_assert_eq(fl_hash_from_name("blake2b-256", 11, &alg), FL_OK);
    cr_assert_eq(alg, FL_HASH_BLAKE2B);
    cr_assert_eq(fl_hash_from_name("sha-256", 7, &alg), FL_OK);
    cr_assert_eq(alg, FL_HASH_SHA256);
    cr_assert_eq(fl_hash_from_name("sha-2566", 8, &alg), FL_EFORMAT);
}

Test(common_crc32c, gives_the_standard_check_value)
{
    const char *s = "123456789";
    uint8_t big[1000];
    uint32_t whole;
    uint32_t bytewise = 0;

    cr_assert_eq(fl_crc32c(0, s, 9), 0xe3069283u);
    cr_assert_eq(fl_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros. */
    memset(big, 0, 32);
    cr_assert_eq(fl_crc32c(0, big, 32), 0x8a9136aau);
    /* Chained pieces of every alignment equal one pass. */
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 31 + 7);
    }
    whole = fl_crc32c(0, big, sizeof(big));
    for (size_t i = 0; i < sizeof(big); i++) {
        bytewise = fl_crc32c(bytewise, big + i, 1);
    }
    cr_assert_eq(whole, bytewise);
    cr_assert_eq(fl_crc32c(fl_crc32c(0, big, 3), big + 3, sizeof(big) - 3),
                 whole);
}

Test(common_crc32c, agrees_with_the_portable_path_at_every_length)
{
    uint8_t buf[600];
    uint64_t x = 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(x >> 56);
    }
    /* Every length and misalignment, chained from a non-zero CRC. */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= sizeof(buf); len += 7) {
            cr_assert_eq(fl_crc32c(0x1234u, buf + off, len),
                         fl_crc32c_portable(0x1234u, buf + off, len),
                         "off %zu len %zu", off, len);
        }
    }
    cr_assert_eq(fl_crc32c_portable(0, "123456789", 9), 0xe3069283u);
}
