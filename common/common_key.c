/*
 * Ed25519 keys (libsodium): generation, the small text files that hold
 * them, signing and verification.  Secret keys stay in sodium_malloc'd
 * memory and every buffer that held secret text is wiped.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SECKEY_MAGIC "fl0wer-secret-key 1"
#define PUBKEY_MAGIC "fl0wer-public-key 1"
#define KEYFILE_MAX 1024 /* a valid key file is under 250 bytes */

struct fl_seckey {
    struct fl_pubkey pub;
    uint8_t sk[FL_SECKEY_LEN]; /* libsodium form: seed || public key */
};

static void
key_id(const uint8_t pk[FL_PUBKEY_LEN], uint8_t id[FL_KEYID_LEN])
{
    uint8_t h[FL_HASH_LEN];

    fl_hash_sha256(pk, FL_PUBKEY_LEN, h);
    memcpy(id, h, FL_KEYID_LEN);
}

/* The text of a key file: magic, name, key id, then the key itself.
 * buf must hold 300 bytes; it is wiped by the caller for a secret. */
static int
key_text(char *buf, size_t cap, const char *magic, const char *name,
         const uint8_t id[FL_KEYID_LEN], const char *what, const uint8_t *key,
         size_t keylen)
{
    char idhex[2 * FL_KEYID_LEN + 1];
    char keyhex[2 * FL_SECKEY_LEN + 1];
    int n;

    fl_hex(id, FL_KEYID_LEN, idhex);
    fl_hex(key, keylen, keyhex);
    n = snprintf(buf, cap, "%s\nname: %s\nkey_id: %s\n%s: %s\n", magic, name,
                 idhex, what, keyhex);
    sodium_memzero(keyhex, sizeof(keyhex));
    return n > 0 && (size_t)n < cap ? n : -1;
}

static int
write_new(const char *path, mode_t mode, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int rc = FL_EIO;

    if (fd < 0) {
        return errno == EEXIST ? FL_EEXIST : FL_EIO;
    }
    /* The umask may have narrowed mode; the .pub is meant to be read. */
    if (fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len &&
        fsync(fd) == 0) {
        rc = FL_OK;
    }
    if (close(fd) != 0) {
        rc = FL_EIO;
    }
    if (rc != FL_OK) {
        unlink(path);
    }
    return rc;
}

int
fl_key_generate(const char *name, const char *dir, char *err, size_t errlen)
{
    uint8_t *sk = NULL;
    char *text = NULL;
    uint8_t pk[FL_PUBKEY_LEN];
    uint8_t id[FL_KEYID_LEN];
    char keypath[4096];
    char pubpath[4096];
    int n;
    int rc = FL_ENOMEM;

    /* libsodium must be set up before sodium_malloc; repeated calls are
     * cheap and thread-safe. */
    if (sodium_init() < 0) {
        return FL_EIO;
    }
    sk = sodium_malloc(FL_SECKEY_LEN);
    text = sodium_malloc(KEYFILE_MAX);
    if (sk == NULL || text == NULL) {
        goto out;
    }
    rc = FL_EINVAL;
    if (!fl_name_is_valid(name)) {
        fl_errf(err, errlen, "invalid key name \"%s\"", name);
        goto out;
    }
    dir = dir != NULL ? dir : ".";
    if ((size_t)snprintf(keypath, sizeof(keypath), "%s/%s.key", dir, name) >=
            sizeof(keypath) ||
        (size_t)snprintf(pubpath, sizeof(pubpath), "%s/%s.pub", dir, name) >=
            sizeof(pubpath)) {
        fl_errf(err, errlen, "directory name too long");
        goto out;
    }

    crypto_sign_ed25519_keypair(pk, sk);
    key_id(pk, id);

    n = key_text(text, KEYFILE_MAX, SECKEY_MAGIC, name, id, "secret", sk,
                 FL_SECKEY_LEN);
    rc = write_new(keypath, 0600, text, (size_t)n);
    if (rc != FL_OK) {
        fl_errf(err, errlen, "%s: %s", keypath,
                rc == FL_EEXIST ? "exists" : strerror(errno));
        goto out;
    }
    n = key_text(text, KEYFILE_MAX, PUBKEY_MAGIC, name, id, "public", pk,
                 FL_PUBKEY_LEN);
    rc = write_new(pubpath, 0644, text, (size_t)n);
    if (rc != FL_OK) {
        fl_errf(err, errlen, "%s: %s", pubpath,
                rc == FL_EEXIST ? "exists" : strerror(errno));
        unlink(keypath); /* no half pair */
    }
out:
    sodium_free(sk);
    sodium_free(text);
    return rc;
}

/* Reads a whole small key file into buf (NUL-terminated); with private
 * set, refuses any group or other permission bit. */
static int
read_keyfile(const char *path, bool private, char *buf, size_t cap, size_t *len,
             char *err, size_t errlen)
{
    struct stat sb;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = FL_EIO;

    if (fd < 0) {
        fl_errf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? FL_ENOENT : FL_EIO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fl_errf(err, errlen, "%s: not a regular file", path);
        rc = FL_EFORMAT;
        goto out;
    }
    if (private && (sb.st_mode & 077) != 0) {
        fl_errf(err, errlen, "%s: permissions %04o, want 0600", path,
                (unsigned)(sb.st_mode & 07777));
        rc = FL_EAUTH;
        goto out;
    }
    n = read(fd, buf, cap - 1);
    if (n < 0) {
        fl_errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((size_t)n == cap - 1) {
        fl_errf(err, errlen, "%s: longer than a key file", path);
        rc = FL_EFORMAT;
        goto out;
    }
    buf[n] = '\0';
    *len = (size_t)n;
    rc = FL_OK;
out:
    close(fd);
    return rc;
}

/* Takes "key: value\n" off *p, checking the key; value is NUL-terminated
 * in place.  NULL when the line is not of that form. */
static char *
take_line(char **p, const char *key)
{
    size_t klen = strlen(key);
    char *line = *p;
    char *nl = strchr(line, '\n');

    if (nl == NULL) {
        return NULL;
    }
    *nl = '\0';
    *p = nl + 1;
    if (key[0] == '\0') {
        return line;
    }
    if (strncmp(line, key, klen) != 0 || line[klen] != ':' ||
        line[klen + 1] != ' ') {
        return NULL;
    }
    return line + klen + 2;
}

/* Parses a key file's text: name, key id, and the key of keylen bytes
 * under the label what.  Line number of a bad line in err. */
static int
parse_keyfile(char *text, const char *path, const char *magic, const char *what,
              struct fl_pubkey *pub, uint8_t *key, size_t keylen, char *err,
              size_t errlen)
{
    const char *labels[] = {"", "name", "key_id", what};
    char *vals[4];
    char *p = text;

    for (int i = 0; i < 4; i++) {
        vals[i] = take_line(&p, labels[i]);
        if (vals[i] == NULL) {
            fl_errf(err, errlen, "%s: line %d: expected %s", path, i + 1,
                    i == 0 ? magic : labels[i]);
            return FL_EFORMAT;
        }
    }
    if (strcmp(vals[0], magic) != 0) {
        fl_errf(err, errlen, "%s: line 1: not \"%s\"", path, magic);
        return FL_EFORMAT;
    }
    if (*p != '\0') {
        fl_errf(err, errlen, "%s: line 5: text after the key", path);
        return FL_EFORMAT;
    }
    if (!fl_name_is_valid(vals[1])) {
        fl_errf(err, errlen, "%s: line 2: invalid name", path);
        return FL_EFORMAT;
    }
    snprintf(pub->name, sizeof(pub->name), "%s", vals[1]);
    if (fl_unhex(vals[2], pub->id, FL_KEYID_LEN) != FL_OK) {
        fl_errf(err, errlen, "%s: line 3: want %d hex digits", path,
                2 * FL_KEYID_LEN);
        return FL_EFORMAT;
    }
    if (fl_unhex(vals[3], key, keylen) != FL_OK) {
        fl_errf(err, errlen, "%s: line 4: want %zu hex digits", path,
                2 * keylen);
        return FL_EFORMAT;
    }
    return FL_OK;
}

int
fl_pubkey_load(const char *path, struct fl_pubkey *out, char *err,
               size_t errlen)
{
    char text[KEYFILE_MAX];
    struct fl_pubkey pub;
    uint8_t id[FL_KEYID_LEN];
    size_t len;
    int rc;

    memset(&pub, 0, sizeof(pub));
    rc = read_keyfile(path, false, text, sizeof(text), &len, err, errlen);
    if (rc != FL_OK) {
        return rc;
    }
    rc = parse_keyfile(text, path, PUBKEY_MAGIC, "public", &pub, pub.key,
                       FL_PUBKEY_LEN, err, errlen);
    if (rc != FL_OK) {
        return rc;
    }
    key_id(pub.key, id);
    if (memcmp(id, pub.id, FL_KEYID_LEN) != 0) {
        fl_errf(err, errlen, "%s: key id does not match the key", path);
        return FL_EAUTH;
    }
    *out = pub;
    return FL_OK;
}

/* The public half stored in sk must be the one its seed makes. */
static bool
seckey_is_consistent(const struct fl_seckey *k)
{
    uint8_t pk[FL_PUBKEY_LEN];
    uint8_t *sk = sodium_malloc(FL_SECKEY_LEN);
    bool ok;

    if (sk == NULL) {
        return false;
    }
    crypto_sign_ed25519_seed_keypair(pk, sk, k->sk);
    ok = sodium_memcmp(sk, k->sk, FL_SECKEY_LEN) == 0;
    sodium_free(sk);
    return ok;
}

int
fl_seckey_load(const char *path, struct fl_seckey **out, char *err,
               size_t errlen)
{
    struct fl_seckey *k = NULL;
    char *text = NULL;
    uint8_t id[FL_KEYID_LEN];
    size_t len;
    int rc = FL_ENOMEM;

    *out = NULL;
    if (sodium_init() < 0) {
        return FL_EIO;
    }
    k = sodium_malloc(sizeof(*k));
    text = sodium_malloc(KEYFILE_MAX);
    if (k == NULL || text == NULL) {
        goto out;
    }
    memset(k, 0, sizeof(*k));
    rc = read_keyfile(path, true, text, KEYFILE_MAX, &len, err, errlen);
    if (rc != FL_OK) {
        goto out;
    }
    rc = parse_keyfile(text, path, SECKEY_MAGIC, "secret", &k->pub, k->sk,
                       FL_SECKEY_LEN, err, errlen);
    if (rc != FL_OK) {
        goto out;
    }

    rc = FL_EAUTH;
    if (!seckey_is_consistent(k)) {
        fl_errf(err, errlen, "%s: public half does not match the secret", path);
        goto out;
    }
    memcpy(k->pub.key, k->sk + 32, FL_PUBKEY_LEN);
    key_id(k->pub.key, id);
    if (memcmp(id, k->pub.id, FL_KEYID_LEN) != 0) {
        fl_errf(err, errlen, "%s: key id does not match the key", path);
        goto out;
    }
    *out = k;
    k = NULL;
    rc = FL_OK;
out:
    sodium_free(text); /* wipes */
    sodium_free(k);
    return rc;
}

void
fl_seckey_free(struct fl_seckey *k)
{
    sodium_free(k); /* accepts NULL; wipes */
}

const struct fl_pubkey *
fl_seckey_public(const struct fl_seckey *k)
{
    return &k->pub;
}

int
fl_sign(const struct fl_seckey *k, const uint8_t *msg, size_t len,
        uint8_t sig[FL_SIG_LEN])
{
    if (crypto_sign_ed25519_detached(sig, NULL, msg, len, k->sk) != 0) {
        return FL_EAUTH;
    }
    return FL_OK;
}

int
fl_verify(const struct fl_pubkey *k, const uint8_t *msg, size_t len,
          const uint8_t sig[FL_SIG_LEN])
{
    if (crypto_sign_ed25519_verify_detached(sig, msg, len, k->key) != 0) {
        return FL_EAUTH;
    }
    return FL_OK;
}
