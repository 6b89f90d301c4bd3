/*
 * Exporter sequence numbers: how many flows, packets or records went
 * missing between two messages of one source, with 32-bit wraparound.
 */
#include "sensor_int.h"

/* A forward jump of 2^31 or more is read as a step back, never as loss. */
#define SEQ_HALF 0x80000000u

/* Behind by less than this is reordering: UDP on one path rarely carries
 * more than a few hundred messages of records out of order.  Further
 * behind is a restart of the exporter's counter. */
#define SEQ_LATE_WINDOW 65536u

uint32_t
fl_seq_update(struct fl_seq *s, uint32_t seq, uint32_t units)
{
    uint32_t ahead;

    if (!s->started) {
        s->started = true;
        s->next = seq + units;
        return 0;
    }

    /* Unsigned subtraction is the distance modulo 2^32, across the wrap. */
    ahead = seq - s->next;
    if (ahead < SEQ_HALF) {
        s->next = seq + units;
        return ahead;
    }
    /* A late or duplicated message must not move the expected number
     * back, or the next message in order would be counted as a gap. */
    if (s->next - seq <= SEQ_LATE_WINDOW) {
        return 0;
    }
    s->next = seq + units;
    return 0;
}
