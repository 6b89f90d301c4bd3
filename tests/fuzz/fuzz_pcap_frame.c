/*
 * libFuzzer target for the capture reader's frame walk: the first input
 * byte picks a link type, the rest is one captured frame.  Every payload
 * handed out must lie inside the frame.
 */
#include <pcap/dlt.h>
#include <stdlib.h>
#include <string.h>

#include "sensor_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int dlts[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW,
                           DLT_IPV4,   DLT_IPV6,      DLT_NULL,       DLT_LOOP};

struct bounds {
    const uint8_t *lo;
    const uint8_t *hi;
};

static void
check(void *arg, const struct fl_datagram *dg)
{
    const struct bounds *b = arg;

    if (dg->data < b->lo || dg->data + dg->len > b->hi) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_pcap_stats st = {0};
    struct bounds b;
    uint8_t *frame;

    if (size < 1) {
        return 0;
    }
    /* A copy of exactly the frame's size, so ASan sees any overread. */
    frame = malloc(size - 1 > 0 ? size - 1 : 1);
    if (frame == NULL) {
        return 0;
    }
    memcpy(frame, data + 1, size - 1);
    b.lo = frame;
    b.hi = frame + size - 1;
    fl_pcap_frame(dlts[data[0] % (sizeof(dlts) / sizeof(dlts[0]))], frame,
                  size - 1, 0, check, &b, &st);
    free(frame);
    return 0;
}
