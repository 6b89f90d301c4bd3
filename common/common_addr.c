/*
 * Addresses and prefixes in one 128-bit space: IPv4 lives IPv4-mapped, so
 * that a single comparison and a single prefix test serve both families.
 */
#include "common.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void
fl_addr_from_v4(struct fl_addr *a, uint32_t host_order)
{
    memcpy(a->b, v4_mapped, sizeof(v4_mapped));
    fl_put_be32(a->b + 12, host_order);
}

void
fl_addr_from_v4_bytes(struct fl_addr *a, const uint8_t b[4])
{
    memcpy(a->b, v4_mapped, sizeof(v4_mapped));
    memcpy(a->b + 12, b, 4);
}

void
fl_addr_from_v6(struct fl_addr *a, const uint8_t b[16])
{
    memcpy(a->b, b, 16);
}

bool
fl_addr_is_v4(const struct fl_addr *a)
{
    return memcmp(a->b, v4_mapped, sizeof(v4_mapped)) == 0;
}

bool
fl_addr_is_zero(const struct fl_addr *a)
{
    static const uint8_t zero[16];

    /* The unspecified address in either family counts as unset. */
    return memcmp(a->b, zero, 16) == 0 ||
           (fl_addr_is_v4(a) && memcmp(a->b + 12, zero, 4) == 0);
}

int
fl_addr_cmp(const struct fl_addr *a, const struct fl_addr *b)
{
    return memcmp(a->b, b->b, 16);
}

int
fl_addr_parse(const char *s, struct fl_addr *out)
{
    uint8_t b[16];

    if (strchr(s, ':') == NULL) {
        if (inet_pton(AF_INET, s, b) != 1) {
            return FL_EFORMAT;
        }
        fl_addr_from_v4_bytes(out, b);
        return FL_OK;
    }
    if (inet_pton(AF_INET6, s, b) != 1) {
        return FL_EFORMAT;
    }
    fl_addr_from_v6(out, b);
    return FL_OK;
}

char *
fl_addr_format(const struct fl_addr *a, char buf[FL_ADDR_STRLEN])
{
    /* glibc's inet_ntop follows RFC 5952: lower case, longest zero run. */
    if (fl_addr_is_v4(a)) {
        inet_ntop(AF_INET, a->b + 12, buf, FL_ADDR_STRLEN);
    } else {
        inet_ntop(AF_INET6, a->b, buf, FL_ADDR_STRLEN);
    }
    return buf;
}

static void
mask_host_bits(struct fl_addr *a, unsigned len)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bit = i * 8;

        if (bit >= len) {
            a->b[i] = 0;
        } else if (len - bit < 8) {
            a->b[i] &= (uint8_t)(0xff << (8 - (len - bit)));
        }
    }
}

/* A dotted netmask must be contiguous ones; returns its length or -1. */
static int
netmask_len(const char *s)
{
    uint8_t m[4];
    uint32_t v;
    int len = 0;

    if (inet_pton(AF_INET, s, m) != 1) {
        return -1;
    }
    v = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) |
        ((uint32_t)m[2] << 8) | m[3];
    while (len < 32 && (v & 0x80000000u) != 0) {
        v <<= 1;
        len++;
    }
    return v == 0 ? len : -1;
}

static int
parse_len(const char *s, bool v4, unsigned *len)
{
    char *end;
    unsigned long n;
    int m;

    if (v4 && strchr(s, '.') != NULL) {
        m = netmask_len(s);
        if (m < 0) {
            return FL_EFORMAT;
        }
        *len = (unsigned)m;
        return FL_OK;
    }
    if (*s < '0' || *s > '9') {
        return FL_EFORMAT;
    }
    n = strtoul(s, &end, 10);
    if (*end != '\0' || n > (v4 ? 32u : 128u)) {
        return FL_EFORMAT;
    }
    *len = (unsigned)n;
    return FL_OK;
}

int
fl_prefix_parse(const char *s, struct fl_prefix *out)
{
    char text[FL_ADDR_STRLEN + 20];
    char *slash;
    unsigned len;
    bool v4;
    int rc;

    if (strlen(s) >= sizeof(text)) {
        return FL_EFORMAT;
    }
    strcpy(text, s);
    slash = strchr(text, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    rc = fl_addr_parse(text, &out->addr);
    if (rc != FL_OK) {
        return rc;
    }
    v4 = fl_addr_is_v4(&out->addr) && strchr(text, ':') == NULL;
    len = v4 ? 32 : 128;
    if (slash != NULL) {
        rc = parse_len(slash + 1, v4, &len);
        if (rc != FL_OK) {
            return rc;
        }
    }
    /* Lists often carry host bits (1.2.3.4/24); they mean the network. */
    out->len = (uint8_t)(v4 ? 96 + len : len);
    mask_host_bits(&out->addr, out->len);
    return FL_OK;
}

char *
fl_prefix_format(const struct fl_prefix *p, char buf[FL_ADDR_STRLEN + 4])
{
    char a[FL_ADDR_STRLEN];
    bool v4 = fl_addr_is_v4(&p->addr) && p->len >= 96;

    fl_addr_format(&p->addr, a);
    snprintf(buf, FL_ADDR_STRLEN + 4, "%s/%u", a,
             v4 ? p->len - 96u : (unsigned)p->len);
    return buf;
}

bool
fl_prefix_contains(const struct fl_prefix *p, const struct fl_addr *a)
{
    unsigned full = p->len / 8;
    unsigned rest = p->len % 8;

    if (memcmp(p->addr.b, a->b, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    return ((p->addr.b[full] ^ a->b[full]) & (0xff << (8 - rest))) == 0;
}
