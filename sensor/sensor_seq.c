/*
 * Exporter sequence numbers: how many flows, packets or records went
 * missing between two messages of one source, with 32-bit wraparound.
 */
#include "sensor_int.h"

/* A forward jump of 2^31 or more is read as a step back, never as loss. */
#define SEQ_HALF 0x80000000u

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
    s->next = seq + units;
    if (ahead >= SEQ_HALF) {
        /* Duplicate, late arrival or exporter restart: resync, count none. */
        return 0;
    }
    return ahead;
}
