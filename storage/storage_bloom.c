/*
 * The Bloom filter of a block's addresses: sized for a 1% false positive
 * rate over the block's distinct addresses, probed by double hashing of
 * two 64-bit hashes of the 16-byte address.
 */
#include <math.h>

#include "storage_int.h"

/*
 * The 64-bit finalizer of MurmurHash3: every input bit flips each output
 * bit with probability about 1/2, in five cheap operations.  The key is a
 * fixed 16 bytes, so a general-purpose hash over variable input would
 * only add loops and tail handling.
 */
static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

void
fl_bloom_hash(const struct fl_addr *a, uint64_t *h1, uint64_t *h2)
{
    uint64_t hi = fl_be_uint(a->b, 8);
    uint64_t lo = fl_be_uint(a->b + 8, 8);

    /* Two seeds and two orders of mixing make the hashes independent. */
    *h1 = mix64(hi ^ mix64(lo ^ 0x9e3779b97f4a7c15ull));
    *h2 = mix64(lo ^ mix64(hi ^ 0xd6e8feb86659fd93ull));
}

uint32_t
fl_bloom_bits(size_t n)
{
    /* m = -n ln p / (ln 2)^2 with p = 0.01 */
    double m = ceil((double)n * -log(0.01) / (M_LN2 * M_LN2));

    if (m < 64) {
        return 64;
    }
    if (m > 4294967040.0) {
        return 4294967040u;
    }
    return (uint32_t)m;
}

uint8_t
fl_bloom_k(uint32_t m, size_t n)
{
    double k;

    if (n == 0) {
        return 1;
    }
    k = round((double)m / (double)n * M_LN2);
    if (k < 1) {
        return 1;
    }
    if (k > 16) {
        return 16;
    }
    return (uint8_t)k;
}

/* Maps the upper 32 bits of g onto [0, m) without a division. */
static uint32_t
bit_of(uint64_t g, uint32_t m)
{
    return (uint32_t)(((g >> 32) * (uint64_t)m) >> 32);
}

void
fl_bloom_set(uint8_t *bits, uint32_t m, uint8_t k, uint64_t h1, uint64_t h2)
{
    uint64_t g = h1;

    for (uint8_t i = 0; i < k; i++) {
        uint32_t b = bit_of(g, m);

        bits[b >> 3] |= (uint8_t)(1u << (b & 7));
        g += h2;
    }
}

bool
fl_bloom_test(const uint8_t *bits, uint32_t m, uint8_t k, uint64_t h1,
              uint64_t h2)
{
    uint64_t g = h1;

    for (uint8_t i = 0; i < k; i++) {
        uint32_t b = bit_of(g, m);

        if (!(bits[b >> 3] & (1u << (b & 7)))) {
            return false;
        }
        g += h2;
    }
    return true;
}
