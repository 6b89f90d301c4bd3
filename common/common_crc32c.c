/*
 * CRC-32C (Castagnoli) for block checksums: the SSE4.2 crc32 instruction
 * where the CPU has it (checksums are a large share of a query that
 * opens many segments), else table-driven, eight bytes a step
 * ("slicing-by-8"), with tables built once on first use.
 */
#include "common.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* table[0] is the bytewise table; table[k][b] advances table[k-1][b] by
 * one more zero byte, so eight lookups consume eight input bytes. */
static void
table_build(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;

        for (int bit = 0; bit < 8; bit++) {
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        table[0][b] = c;
    }
    for (int k = 1; k < 8; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t prev = table[k - 1][b];

            table[k][b] = (prev >> 8) ^ table[0][prev & 0xff];
        }
    }
}

static inline uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint32_t
fl_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    pthread_once(&table_once, table_build);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ load_le32(p);
        uint32_t hi = load_le32(p + 4);

        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
              table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p) & 0xff];
        p++;
        len--;
    }
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The instruction computes the same reflected CRC without the final
 * inversions; bytes are consumed lowest address first, as loaded. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;

    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p);
        p++;
        len--;
    }
    return ~(uint32_t)c;
}

static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void
impl_choose(void)
{
    __builtin_cpu_init();
    crc_impl =
        __builtin_cpu_supports("sse4.2") ? crc32c_sse42 : fl_crc32c_portable;
}

uint32_t
fl_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&impl_once, impl_choose);
    return crc_impl(crc, data, len);
}
#else
uint32_t
fl_crc32c(uint32_t crc, const void *data, size_t len)
{
    return fl_crc32c_portable(crc, data, len);
}
#endif
